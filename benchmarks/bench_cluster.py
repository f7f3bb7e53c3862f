"""Identity clustering on LFW View 1: every person with at least two images.

What is measured: the images of the ``lfw_view1/<Person>/*.jpg`` folders of people with ≥ 2
images are embedded once (``FacePipeline().embed_many(paths, select="largest")``, default
detector and embedder) and cached in a ``.npz`` in the temp folder, so reruns only cluster.
Each method of :func:`faceprint.cluster.cluster_embeddings` then runs at its default and at a
small sweep of cosine thresholds; for each run the script prints pairwise and BCubed
precision / recall / F1 against the true identities, the number of clusters (≥ 2 faces) and of
singletons against the number of identities, and the clustering wall time (embedding excluded).
Images where no face is found are left out of the clustering and counted.

The thresholds of the sweep include the embedder's calibrated operating points; these were
calibrated on LFW View 1 ``pairsDevTrain.txt``, whose people overlap this set, so the figures
at those thresholds are optimistic for unseen data. Treat the sweep as showing the shape of
the trade-off, not as a held-out result.

Usage::

    nice -n 10 python benchmarks/bench_cluster.py                 # embeds once (minutes), then clusters
    python benchmarks/bench_cluster.py --no-write                 # print only, leave RESULTS.md alone

Results are written to ``benchmarks/RESULTS.md`` under
``## Clustering (LFW View 1, people with ≥ 2 images)`` (that section only is replaced).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SECTION = "## Clustering (LFW View 1, people with ≥ 2 images)"


def people_with_two_or_more(root: Path) -> tuple[list[str], list[str]]:
    """(image paths, identity of each), sorted, for every folder with at least two JPEGs."""
    paths: list[str] = []
    names: list[str] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = sorted(d.glob("*.jpg"))
        if len(imgs) >= 2:
            paths += [str(p) for p in imgs]
            names += [d.name] * len(imgs)
    return paths, names


def embed_cached(paths: list[str], cache: Path, workers: int | None) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(embeddings (N, D) with NaN rows where no face, found mask, model tag, seconds spent embedding)."""
    key = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                print(f"embeddings from cache {cache}", file=sys.stderr)
                return z["emb"], z["found"], str(z["model"]), float(z["seconds"])
    from faceprint import FacePipeline

    pipe = FacePipeline()
    emb = np.full((len(paths), pipe.embedder.dim), np.nan, np.float32)
    found = np.zeros(len(paths), bool)
    model = ""
    t0 = time.perf_counter()

    def progress(done: int, total: int | None) -> None:
        if done % 256 < 16 or done == total:
            print(f"  embedded {done}/{total} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    for k, res in enumerate(
        pipe.embed_many(paths, select="largest", workers=workers, progress=progress, total=len(paths))
    ):
        if res.faces and res.faces[0].embedding is not None:
            emb[k] = res.faces[0].embedding.vector
            found[k] = True
            model = res.faces[0].embedding.model
    seconds = time.perf_counter() - t0
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, emb=emb, found=found, model=np.array(model), key=np.array(key), seconds=np.array(seconds))
    os.replace(tmp, cache)
    return emb, found, model, seconds


def run_all(x: np.ndarray, y: np.ndarray, model_id: str) -> list[dict[str, Any]]:
    import inspect

    from faceprint.cluster import bcubed_f1, cluster_embeddings, pairwise_prf
    from faceprint.scoring import operating_point

    default_point = inspect.signature(cluster_embeddings).parameters["operating_point"].default
    points = {name: operating_point(model_id, name).threshold for name in ("eer", "fmr=0.001", "fmr=0.0001")}
    sweep = sorted({0.88, 0.92, 0.95, *points.values()})
    runs: list[tuple[str, dict[str, Any], str]] = []
    for method in ("chinese-whispers", "agglomerative"):
        runs.append((method, {"model": model_id}, f"default: {points[default_point]:.3f} ({default_point})"))
        for t in sweep:
            if t == points[default_point]:
                continue
            name = next((k for k, v in points.items() if v == t), "")
            runs.append((method, {"threshold": t}, f"{t:.3f}" + (f" ({name})" if name else "")))
    runs.append(("hdbscan", {"model": model_id}, "default: none"))
    for name in ("fmr=0.001", "fmr=0.0001"):
        runs.append(("hdbscan", {"threshold": points[name]}, f"{points[name]:.3f} ({name}), membership check"))

    import sklearn.cluster  # noqa: F401  - imported before timing, as dlib already is

    rows: list[dict[str, Any]] = []
    for method, kw, label in runs:
        t0 = time.perf_counter()
        r = cluster_embeddings(x, method=method, **kw)
        seconds = time.perf_counter() - t0
        pp, pr, pf = pairwise_prf(y, r.labels)
        bp, br, bf = bcubed_f1(y, r.labels)
        row = {
            "method": method,
            "threshold": label,
            "clusters": r.n_clusters,
            "singletons": r.n_singletons,
            "pair_p": pp,
            "pair_r": pr,
            "pair_f1": pf,
            "b3_p": bp,
            "b3_r": br,
            "b3_f1": bf,
            "seconds": seconds,
        }
        rows.append(row)
        print(
            f"{method:17s} {label:34s} clusters {r.n_clusters:5d} singletons {r.n_singletons:5d}  "
            f"pairwise P {pp:.3f} R {pr:.3f} F1 {pf:.3f}  BCubed P {bp:.3f} R {br:.3f} F1 {bf:.3f}  {seconds:6.2f} s",
            flush=True,
        )
    return rows


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        SECTION,
        "",
        f"Run {info['date']} on {info['machine']}: `{info['command']}`",
        "",
        f"{info['images']} images of {info['identities']} people with ≥ 2 images in `lfw_view1/`; "
        f"a face was found in {info['faces']} ({info['no_face']} without a face are left out, so "
        f"{info['identities_found']} identities remain). Embedded once with "
        f'`FacePipeline().embed_many(paths, select="largest")` ({info["model"]}, '
        f"{info['embed_seconds']:.0f} s, cached); times below are clustering only. "
        "Singletons are faces in no cluster of ≥ 2 (label −1); a person with one usable face is a "
        "correct singleton. The operating points were calibrated on View 1 pairsDevTrain, which "
        "shares people with this set: read the sweep as the shape of the trade-off. "
        "Why the default is not the verification EER point: N faces make N²/2 comparisons, so at "
        "FMR f each face meets about f·N impostors above the threshold (~40 here at the EER "
        "point), enough for chinese whispers to chain most people into a few giant clusters.",
        "",
        "| method | threshold (cosine) | clusters | singletons | pairwise P | pairwise R | pairwise F1 "
        "| BCubed P | BCubed R | BCubed F1 | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['threshold']} | {r['clusters']} | {r['singletons']} | {r['pair_p']:.3f} "
            f"| {r['pair_r']:.3f} | {r['pair_f1']:.3f} | {r['b3_p']:.3f} | {r['b3_r']:.3f} | {r['b3_f1']:.3f} "
            f"| {r['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it; create the file if missing)."""
    if not path.exists():
        path.write_text("# Benchmark results\n\n" + text, encoding="utf-8")
        return
    old = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: text + "\n", old, count=1).rstrip("\n") + "\n"
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    default_data = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data / "lfw_view1", help="LFW View 1 folder")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "faceprint_bench_cluster_lfw.npz",
        help="embeddings cache (.npz)",
    )
    ap.add_argument("--workers", type=int, default=0, help="embedding processes (0: one per core)")
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    paths, names = people_with_two_or_more(args.data)
    if not paths:
        print(f"no LFW person folders under {args.data}", file=sys.stderr)
        return 2
    emb, found, model, embed_seconds = embed_cached(paths, args.cache, args.workers or None)
    x = emb[found]
    y = np.array(names)[found]
    print(
        f"{len(paths)} images, {len(set(names))} people; faces in {int(found.sum())} images "
        f"({len(set(y.tolist()))} identities); model {model}; embedding took {embed_seconds:.0f} s",
        flush=True,
    )
    rows = run_all(x, y, model.split("@", 1)[0])
    if not args.no_write:
        info = {
            "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}",
            "command": "python "
            + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__), *(argv or sys.argv[1:])]),
            "images": len(paths),
            "identities": len(set(names)),
            "faces": int(found.sum()),
            "no_face": int((~found).sum()),
            "identities_found": len(set(y.tolist())),
            "model": model,
            "embed_seconds": embed_seconds,
        }
        write_section(args.results, markdown(rows, info))
        print(f"wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
