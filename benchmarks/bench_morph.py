"""Morphing attacks: time per morph (against embedding the same pair) and the default model's vulnerability.

    nice python benchmarks/bench_morph.py --data ../shared/data/lfw_view1 --cache /tmp/morph

1. **Time per morph**, one core (OpenCV limited to one thread), for 250 × 250 LFW pairs, for
   each method, interleaved with its peer measured in the same run: the default pipeline
   embedding the same two photos (detect, align, embed each). Ratio = morph / peer.
2. **Vulnerability** (:func:`faceprint.evaluation.morph.vulnerability`) of the default pipeline
   on morphs of LFW View 1 pairsDevTest people with >= 2 photos (contributor photo = the first;
   probes = up to ``--max-probes`` of the others): ``-n`` look-alike pairs and ``-n`` random
   pairs, each morphed by both methods (alpha 0.5, no post-processing); MMPMR, ProdAvg-MMPMR,
   RMMR and the same pairs' zero-effort FMR at the model's calibrated operating points (FMR 1e-3,
   1e-4, and the EER point standing in for 1e-2). Look-alike pairs also with a *balanced* alpha
   (:func:`faceprint.attacks.morph.morph_balanced`: of alphas 0.3-0.7, the morph whose lower score
   against the two contributor photos is highest, as an attacker with a face recogniser picks).

Photo embeddings are cached in ``CACHE/bench_emb.npz``; morphs are kept in memory only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceprint import FacePipeline
from faceprint.attacks.morph import Morpher, morph_balanced
from faceprint.attacks.morph_pairs import identity_images, protocol_identities, select_pairs
from faceprint.errors import FaceprintError
from faceprint.evaluation.morph import MorphEntry, operating_thresholds, vulnerability

ROOT = Path(__file__).resolve().parents[1]


def cached_embeddings(pipe: FacePipeline, paths: list[str], cache: Path) -> dict[str, np.ndarray | None]:
    have: dict[str, np.ndarray | None] = {}
    if cache.exists():
        z = np.load(cache)
        have = {p: (e if ok else None) for p, e, ok in zip(z["paths"].tolist(), z["emb"], z["ok"], strict=True)}
    todo = [p for p in paths if p not in have]
    for p, r in zip(todo, pipe.embed_many(todo, select="central", workers=1), strict=True):
        have[p] = r.faces[0].embedding.vector if r.ok and r.faces and r.faces[0].embedding is not None else None
    if todo:
        keys = sorted(have)
        dim = next(v.size for v in have.values() if v is not None)
        np.savez(
            cache,
            paths=np.array(keys),
            emb=np.stack([have[k] if have[k] is not None else np.zeros(dim, np.float32) for k in keys]),
            ok=np.array([have[k] is not None for k in keys]),
        )
    return have


def timing(
    pipe: FacePipeline, morphers: dict[str, Morpher], pairs: list[tuple[str, str]], repeats: int
) -> dict[str, Any]:
    """Median wall and CPU seconds (this process, every thread) per morph and per peer, interleaved."""
    out: dict[str, Any] = {}
    runs: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("peer", *morphers)}

    def timed(name: str, fn: Any) -> None:
        w, c = time.perf_counter(), time.process_time()
        fn()
        runs[name][0].append(time.perf_counter() - w)
        runs[name][1].append(time.process_time() - c)

    for a, b in pairs:
        for _ in range(repeats):
            timed("peer", lambda a=a, b=b: (pipe.embed_one(a, select="central"), pipe.embed_one(b, select="central")))
            for name, m in morphers.items():
                timed(name, lambda m=m, a=a, b=b: m.morph(a, b))
    for name, (wall, cpu) in runs.items():
        out[f"{name}_s"] = statistics.median(wall)
        out[f"{name}_cpu_s"] = statistics.median(cpu)
    for name in morphers:
        out[f"{name}_ratio"] = out[f"{name}_s"] / out["peer_s"]
        out[f"{name}_cpu_ratio"] = out[f"{name}_cpu_s"] / out["peer_cpu_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw_view1")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/morph"))
    ap.add_argument("-n", type=int, default=100, help="pairs per strategy")
    ap.add_argument("--max-probes", type=int, default=3)
    ap.add_argument("--timing-pairs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-only", action="store_true", help="only part 1")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    pipe = FacePipeline()
    morphers = {
        "flow": Morpher("flow", select="central"),
        "landmarks": Morpher("landmarks", select="central", allow_noncommercial=True),
    }
    names = protocol_identities(args.data / "pairsDevTest.txt")
    people = {k: v for k, v in identity_images(args.data, min_images=2).items() if k in names}
    ids = sorted(people)

    # 1. time per morph
    rng = np.random.default_rng(args.seed)
    tp = [
        tuple(str(people[ids[i]][0]) for i in rng.choice(len(ids), 2, replace=False)) for _ in range(args.timing_pairs)
    ]
    for a, b in tp[:1]:  # warm-up: models loaded, caches filled
        pipe.embed_one(a, select="central")
        for m in morphers.values():
            m.morph(a, b)
    tim = timing(pipe, morphers, tp, args.repeats)  # type: ignore[arg-type]
    print(f"## Time per morph, 250 px LFW pairs, one core ({args.timing_pairs} pairs × {args.repeats}, median)\n")
    print("| step | wall s | ratio | CPU s | ratio |\n|---|---:|---:|---:|---:|")
    print(
        f"| peer: embed both photos (default pipeline) | {tim['peer_s']:.3f} | 1.00 | {tim['peer_cpu_s']:.3f} | 1.00 |"
    )
    for k in morphers:
        print(
            f"| morph, {k} | {tim[k + '_s']:.3f} | {tim[k + '_ratio']:.2f} | "
            f"{tim[k + '_cpu_s']:.3f} | {tim[k + '_cpu_ratio']:.2f} |"
        )
    if args.timing_only:
        return 0

    # 2. vulnerability
    contrib = {k: str(v[0]) for k, v in people.items()}
    probes = {k: tuple(str(p) for p in v[1 : 1 + args.max_probes]) for k, v in people.items()}
    emb = cached_embeddings(
        pipe, sorted({*contrib.values(), *(p for ps in probes.values() for p in ps)}), args.cache / "bench_emb.npz"
    )
    usable = [k for k in ids if emb[contrib[k]] is not None]
    e = np.stack([emb[contrib[k]] for k in usable])  # type: ignore[misc]
    thresholds = operating_thresholds(pipe)
    report: dict[str, Any] = {"timing": tim, "thresholds": thresholds, "vulnerability": {}}
    print(
        f"\n## Vulnerability of {pipe.model_tag}: LFW View 1 DevTest people, {args.n} pairs per strategy, "
        f"up to {args.max_probes} probes per contributor\n"
    )
    print(
        "| pairs | method | operating point | threshold | MMPMR | ProdAvg-MMPMR | RMMR "
        "| zero-effort FMR of the pairs | morphs |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")

    def embed_image(img: np.ndarray) -> np.ndarray | None:
        faces = pipe.analyze(img, select="central")
        return faces[0].embedding.vector if faces and faces[0].embedding is not None else None

    runs = [(s, method, False) for s in ("lookalike", "random") for method in morphers]
    runs += [("lookalike", method, True) for method in morphers]
    for strategy, method, balanced in runs:
        m = morphers[method]
        pairs = select_pairs(usable, e, strategy=strategy, n=args.n, seed=args.seed)
        morph_emb: dict[str, np.ndarray | None] = {}
        entries = []
        for k, (i, j, _) in enumerate(pairs):
            a, b = usable[i], usable[j]
            key = f"morph:{strategy}:{method}:{balanced}:{k}"
            try:
                if balanced:
                    img = morph_balanced(m, contrib[a], contrib[b], embed_image).image
                else:
                    img = m.morph(contrib[a], contrib[b]).image
                morph_emb[key] = pipe.embed_one(img, select="central").embedding.vector  # type: ignore[union-attr]
            except FaceprintError:
                morph_emb[key] = None
            entries.append(MorphEntry(key, (contrib[a], contrib[b]), (probes[a], probes[b])))
        known = {**emb, **morph_emb}
        rep = vulnerability(entries, lambda ps, known=known: {p: known[p] for p in ps}, thresholds)
        label = f"{method}, balanced alpha" if balanced else method
        report["vulnerability"][f"{strategy}/{label}"] = rep
        for r in rep["points"]:
            print(
                f"| {strategy} | {label} | {r['operating_point']} | {r['threshold']:.4f} | {r['mmpmr']:.3f} | "
                f"{r['prodavg_mmpmr']:.3f} | {r['rmmr']:.3f} | {r['zero_effort_fmr']:.4f} | {rep['n_morphs']} |"
            )
    (args.cache / "bench_morph.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
