"""Gallery 1:N search at scale: enrol rate, single-query latency, recall@10, memory and disk.

Synthetic data: N random unit vectors of dimension D, enrolled from embeddings (no images),
one template per subject. Queries are *noisy copies* of random gallery vectors (Gaussian noise
of total norm ``--noise`` before re-normalising; 0.5 gives cosine ≈ 0.89 to the mate), because
real probes lie near their mates; for queries that are themselves random, the "true" top-10 are
all at cosine ≈ 0.1–0.3 from the query and no approximate index finds them reliably.

Two recall figures, against an exact numpy scan run in the same process:

* ``recall@10`` (faiss's 1-recall@10): share of queries whose exact nearest neighbour is among
  the 10 returned — the mate, for these queries; this is what identification depends on;
* ``overlap@10`` (10-recall@10): share of the exact top-10 returned. Ranks 2–10 of a random
  gallery are near-ties far below any open-set threshold, so this figure is low by nature.

Two peers, measured in the same run:

* an exact numpy scan (single query, ``X @ q`` then ``argpartition``), also the recall truth;
* a plain faiss index built by hand (``--peer``, on by default): the factory string the gallery
  ended with, trained once on the same number of sample vectors with faiss's own k-means, then
  filled in batches of ``--batch`` — what a faiss user who knew the final size in advance would
  do, with no database, no durability and no retraining. Its build rate is the peer of the
  gallery's enrolment rate, and its single-query search (same nprobe) the peer of the gallery's.

Enrolment is timed twice: until the last ``enroll_many`` returns (every template committed and
searchable, index rebuilds possibly still running in the background), and until the index has
settled (``flush()``: background rebuilds swapped in, index file written).

    nice -n 10 python benchmarks/bench_gallery.py --n 1000000 --dim 128
    nice -n 10 python benchmarks/bench_gallery.py --n 1000000 --dim 512
    nice -n 10 python benchmarks/bench_gallery.py --n 100000 --dim 128 --backend milvus --no-peer
    nice -n 10 python benchmarks/bench_gallery.py --sweep --dim 512     # exact vs IVF switch-over
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = "synthetic-random@1"


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def dir_mb(p: Path) -> float:
    if p.is_file():
        return p.stat().st_size / 2**20
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20


def unit(rng: np.random.Generator, n: int, d: int, chunk: int = 100_000) -> np.ndarray:
    x = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x[s:e] = rng.standard_normal((e - s, d), dtype=np.float32)
        x[s:e] /= np.linalg.norm(x[s:e], axis=1, keepdims=True)
    return x


def noisy_queries(rng: np.random.Generator, x: np.ndarray, nq: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.choice(x.shape[0], nq, replace=False)
    q = x[idx] + rng.standard_normal((nq, x.shape[1]), dtype=np.float32) * (noise / math.sqrt(x.shape[1]))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32), idx


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k row indices of x for each query (numpy, chunked over the gallery)."""
    best_s = np.full((q.shape[0], k), -np.inf, np.float32)
    best_i = np.full((q.shape[0], k), -1, np.int64)
    for s in range(0, x.shape[0], 200_000):
        sc = q @ x[s : s + 200_000].T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        cs = np.take_along_axis(sc, part, axis=1)
        allv = np.concatenate([best_s, cs], axis=1)
        alli = np.concatenate([best_i, part + s], axis=1)
        top = np.argpartition(-allv, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(allv, top, axis=1)
        best_i = np.take_along_axis(alli, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def pct(a: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(a) * 1e3, p))


def run(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    work = Path(args.dir or tempfile.mkdtemp(prefix="fp-bench-gallery-"))
    loc = work / ("g.db" if args.backend == "milvus" else "gallery")
    if loc.exists():
        shutil.rmtree(loc) if loc.is_dir() else loc.unlink()
    out: dict = {
        "backend": args.backend,
        "index_spec": args.index,
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "noise": args.noise,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    t0 = time.perf_counter()
    x = unit(rng, args.n, args.dim)
    q, mate = noisy_queries(rng, x, args.queries, args.noise)
    out["mate_cosine_mean"] = round(float(np.mean(np.sum(q * x[mate], axis=1))), 3)
    print(
        f"data: {args.n} x {args.dim} in {time.perf_counter() - t0:.1f} s; query–mate cosine {out['mate_cosine_mean']}",
        flush=True,
    )
    truth = numpy_peer(x, q, out)
    enrol(args, loc, x, out)
    if args.peer and args.backend == "sqlite":
        faiss_peer(args, x, q, truth, out)
    del x
    gc.collect()
    search(args, loc, q, truth, mate, out)
    if args.backend == "milvus":  # milvus-lite keeps its file locked until this process exits
        out["rss_mb"] = {"benchmark_process": round(rss_mb()), "note": "whole benchmark process (data included)"}
    else:
        out["rss_mb"] = rss_of_open_gallery(loc, args.backend, args.dim)  # a fresh process
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def numpy_peer(x: np.ndarray, q: np.ndarray, out: dict) -> np.ndarray:
    """The exact numpy scan: ground truth (top-10 per query) and single-query latency."""
    t0 = time.perf_counter()
    truth = exact_top(x, q, 10)
    out["exact_batch_s"] = round(time.perf_counter() - t0, 2)
    lat = []
    for i in range(min(50, q.shape[0])):
        t1 = time.perf_counter()
        s = x @ q[i]
        np.argpartition(-s, 9)[:10]
        lat.append(time.perf_counter() - t1)
    out["numpy_exact_single_p50_ms"] = round(pct(lat, 50), 3)
    print(
        f"exact numpy scan: {q.shape[0]} queries in {out['exact_batch_s']} s; "
        f"single query p50 {out['numpy_exact_single_p50_ms']} ms",
        flush=True,
    )
    return truth


def enrol(args: argparse.Namespace, loc: Path, x: np.ndarray, out: dict) -> None:
    """Enrol every row in batches; time until the last batch is committed and until the index settles."""
    from faceprint.gallery import open_gallery

    opts: dict = {"collection": "bench"} if args.backend == "milvus" else {"synchronous": args.sync}
    if args.index and args.backend == "sqlite":
        opts["index"] = args.index
    subjects = [f"s{i:07d}" for i in range(args.n)]
    g = open_gallery(str(loc), backend=args.backend, create=True, **opts)
    batch_times = []
    t0 = time.perf_counter()
    for s in range(0, args.n, args.batch):
        t1 = time.perf_counter()
        g.enroll_many(subjects[s : s + args.batch], x[s : s + args.batch], model=MODEL, batch_size=args.batch)
        batch_times.append(time.perf_counter() - t1)
        if (s // args.batch) % 10 == 0:
            print(
                f"  enrolled {s + args.batch:>8} ({(s + args.batch) / (time.perf_counter() - t0):,.0f}/s)", flush=True
            )
    enrol_s = time.perf_counter() - t0
    flush = getattr(g, "flush", None)
    if flush is not None:
        flush()  # background rebuilds swapped in, index file written
    settled_s = time.perf_counter() - t0
    bt = np.asarray(batch_times)
    out["enrol"] = {
        "total_s": round(enrol_s, 1),
        "templates_per_s": round(args.n / enrol_s),
        "settled_s": round(settled_s, 1),
        "templates_per_s_settled": round(args.n / settled_s),
        "batch": args.batch,
        "median_batch_s": round(float(np.median(bt)), 3),
        "max_batch_s": round(float(np.max(bt)), 3),
    }
    print(
        f"enrolled {args.n} in {enrol_s:.1f} s = {args.n / enrol_s:,.0f}/s; index settled after {settled_s:.1f} s",
        flush=True,
    )
    t0 = time.perf_counter()
    out["index"] = g.stats().get("index")
    g.close()
    out["close_s"] = round(time.perf_counter() - t0, 1)


def faiss_peer(args: argparse.Namespace, x: np.ndarray, q: np.ndarray, truth: np.ndarray, out: dict) -> None:
    """A plain faiss index built by hand with the factory the gallery ended with: train once, add all, search."""
    import faiss

    idx = out.get("index") or {}
    factory = idx.get("factory") or "Flat"
    nlist = int(idx.get("nlist") or 0)
    rng = np.random.default_rng(args.seed + 1)
    t0 = time.perf_counter()
    if factory == "Flat":
        index = faiss.IndexFlatIP(args.dim)
    else:
        index = faiss.index_factory(args.dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10
        n_train = min(args.n, nlist * 32)
        index.train(x[np.sort(rng.choice(args.n, n_train, replace=False))])
    train_s = time.perf_counter() - t0
    for s in range(0, args.n, args.batch):
        index.add(x[s : s + args.batch])
    build_s = time.perf_counter() - t0
    if idx.get("nprobe"):
        faiss.extract_index_ivf(index).nprobe = int(idx["nprobe"])
    faiss.omp_set_num_threads(1)  # as the gallery searches (search_threads=1)
    lat, found = [], np.full((q.shape[0], 10), -1, np.int64)
    for i in range(q.shape[0]):
        t1 = time.perf_counter()
        _d, ids = index.search(q[i : i + 1], 10)
        lat.append(time.perf_counter() - t1)
        found[i] = ids[0]
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    out["faiss_peer"] = {
        "factory": factory,
        "nprobe": idx.get("nprobe"),
        "train_s": round(train_s, 1),
        "build_s": round(build_s, 1),
        "templates_per_s": round(args.n / build_s),
        "search_p50_ms": round(pct(lat, 50), 3),
        "search_p99_ms": round(pct(lat, 99), 3),
        "recall@10": round(float(np.mean([truth[i, 0] in found[i] for i in range(q.shape[0])])), 4),
    }
    e = out["enrol"]
    out["faiss_peer"]["gallery_enrol_rate_ratio"] = round(
        e["templates_per_s"] / out["faiss_peer"]["templates_per_s"], 2
    )
    out["faiss_peer"]["gallery_settled_rate_ratio"] = round(
        e["templates_per_s_settled"] / out["faiss_peer"]["templates_per_s"], 2
    )
    print("faiss peer:", json.dumps(out["faiss_peer"]), flush=True)
    del index
    gc.collect()


def search(args: argparse.Namespace, loc: Path, q: np.ndarray, truth: np.ndarray, mate: np.ndarray, out: dict) -> None:
    """Reopen the gallery; single-query search and identify latency, recall against the exact scan."""
    from faceprint.gallery import open_gallery

    t0 = time.perf_counter()
    opts = {"collection": "bench"} if args.backend == "milvus" else {}
    g = open_gallery(str(loc), backend=args.backend, create=False, **opts)
    out["open_s"] = round(time.perf_counter() - t0, 2)
    stats = g.stats()
    out["index"] = stats.get("index")
    out["disk_mb"] = round(dir_mb(loc), 1)
    if "disk_bytes" in stats:
        out["disk_mb_parts"] = {k: round(v / 2**20, 1) for k, v in stats["disk_bytes"].items()}
    found = np.full((args.queries, 10), -1, np.int64)
    lat = []
    for i in range(args.queries):
        t1 = time.perf_counter()
        _d, ids = g.search(q[i], 10)
        lat.append(time.perf_counter() - t1)
        found[i] = ids[0]
    found_rows = rows_of(g, args.backend, found)
    out["search"] = {
        "p50_ms": round(pct(lat, 50), 3),
        "p99_ms": round(pct(lat, 99), 3),
        "recall@10": round(float(np.mean([truth[i, 0] in found_rows[i] for i in range(args.queries)])), 4),
        "overlap@10": round(
            float(np.mean([len(set(truth[i]) & set(found_rows[i])) / 10 for i in range(args.queries)])), 4
        ),
        "mate_at_rank1": round(float(np.mean(found_rows[:, 0] == mate)), 4),
    }
    out["search"]["speedup_vs_numpy"] = round(out["numpy_exact_single_p50_ms"] / max(out["search"]["p50_ms"], 1e-9), 1)
    if "faiss_peer" in out:
        out["search"]["ratio_to_faiss_peer"] = round(out["search"]["p50_ms"] / out["faiss_peer"]["search_p50_ms"], 2)
    lat = []
    for i in range(args.queries):
        t1 = time.perf_counter()
        g.identify_many(q[i : i + 1], 10, threshold=-math.inf)
        lat.append(time.perf_counter() - t1)
    out["identify"] = {"p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3)}
    print(json.dumps(out["search"]), json.dumps(out["identify"]), flush=True)
    if args.nprobe_sweep and (out["index"] or {}).get("kind") == "ivf":
        out["nprobe_sweep"] = nprobe_sweep(g, q, truth, args.queries)
    g.close()


def rows_of(g: object, backend: str, found: np.ndarray) -> np.ndarray:
    """Template ids → gallery rows (enrolment order)."""
    if backend == "sqlite":
        return found - 1  # SQLite ids are 1..N in enrolment order
    owners = g._template_owners(sorted({int(i) for i in found.ravel() if i >= 0}))  # type: ignore[attr-defined]
    ids_by_tpl = {t: int(name[1:]) for t, (_s, name) in owners.items()}
    return np.vectorize(lambda t: ids_by_tpl.get(int(t), -1))(found)


def nprobe_sweep(g: object, q: np.ndarray, truth: np.ndarray, nq: int) -> list[dict]:
    """Search (refinement included) at several nprobe through the gallery's spec."""
    sweep = []
    nlist = int(g.stats()["index"]["nlist"])  # type: ignore[attr-defined]
    for nprobe in (16, 32, 48, 64, 80, 96, 128, 256):
        if nprobe > nlist:
            break
        g.configure(index={"nprobe": nprobe})  # type: ignore[attr-defined]
        lat, got = [], np.full((nq, 10), -1, np.int64)
        for i in range(nq):
            t1 = time.perf_counter()
            _d, ids = g.search(q[i], 10)  # type: ignore[attr-defined]
            lat.append(time.perf_counter() - t1)
            got[i] = ids[0] - 1
        sweep.append(
            {
                "nprobe": nprobe,
                "p50_ms": round(pct(lat, 50), 3),
                "p99_ms": round(pct(lat, 99), 3),
                "recall@10": round(float(np.mean([truth[i, 0] in got[i] for i in range(nq)])), 4),
            }
        )
        print("  nprobe sweep:", sweep[-1], flush=True)
    return sweep


def rss_of_open_gallery(loc: Path, backend: str, dim: int) -> dict:
    """RSS of a fresh process before and after opening the gallery and searching it once."""
    import subprocess

    code = (
        "import json, sys, numpy as np; sys.path.insert(0, sys.argv[1]); from bench_gallery import rss_mb; "
        "from faceprint.gallery import open_gallery; import faiss; a = rss_mb(); "
        "opts = {'collection': 'bench'} if sys.argv[3] == 'milvus' else {}; "
        "g = open_gallery(sys.argv[2], backend=sys.argv[3], create=False, **opts); "
        "g.search(np.ones(int(sys.argv[4]), np.float32), 10); b = rss_mb(); "
        "print(json.dumps({'process_before_open': round(a), 'after_open_and_search': round(b), "
        "'gallery': round(b - a)})); g.close()"
    )
    argv = [sys.executable, "-c", code, str(Path(__file__).parent), str(loc), backend, str(dim)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        return {"error": res.stderr[-500:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def sweep(args: argparse.Namespace) -> dict:
    """Exact vs IVF single-query latency by gallery size (what sets EXACT_BUDGET)."""
    import faiss

    from faceprint.gallery.spec import EXACT_BUDGET, auto_nlist, auto_nprobe

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in (2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000):
        x = unit(rng, n, args.dim)
        q, _ = noisy_queries(rng, x, 300, args.noise)
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(x)
        nlist = max(1, min(auto_nlist(n), n // 8))
        km = faiss.Kmeans(
            args.dim, nlist, niter=10, spherical=True, seed=1, max_points_per_centroid=32, min_points_per_centroid=16
        )
        km.train(x)
        quant = faiss.IndexFlatIP(args.dim)
        quant.add(km.centroids)
        ivf = faiss.IndexIVFFlat(quant, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.add(x)
        ivf.nprobe = auto_nprobe(nlist, n, args.dim)
        res = {"n": n, "n_x_dim": n * args.dim}
        _, truth = flat.search(q, 10)
        for name, idx in (("exact", flat), ("ivf", ivf)):
            lat, got = [], []
            for i in range(q.shape[0]):
                t1 = time.perf_counter()
                _d, ids = idx.search(q[i : i + 1], 10)
                lat.append(time.perf_counter() - t1)
                got.append(ids[0])
            res[f"{name}_p50_ms"] = round(pct(lat, 50), 3)
            res[f"{name}_recall@10"] = round(float(np.mean([truth[i, 0] in got[i] for i in range(q.shape[0])])), 4)
        rows.append(res)
        print(res, flush=True)
    return {"dim": args.dim, "exact_budget": EXACT_BUDGET, "sizes": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="templates in the gallery")
    ap.add_argument("--dim", type=int, default=128, help="embedding dimension")
    ap.add_argument("--backend", choices=("sqlite", "milvus"), default="sqlite")
    ap.add_argument("--queries", type=int, default=1000, help="single queries timed (≥ 1000 for p99)")
    ap.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to make a query from its mate")
    ap.add_argument("--batch", type=int, default=10_000, help="templates per enrolment transaction")
    ap.add_argument("--sync", choices=("full", "normal"), default="full", help="SQLite synchronous mode")
    ap.add_argument("--index", default="", help="index spec of the SQLite gallery (default: the gallery's default)")
    ap.add_argument("--no-peer", dest="peer", action="store_false", help="skip the hand-built faiss peer")
    ap.add_argument("--nprobe-sweep", action="store_true", help="also time IVF at several nprobe")
    ap.add_argument("--sweep", action="store_true", help="only measure exact vs IVF latency by size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the gallery on disk")
    ap.add_argument("--json-out", help="also write the results to this JSON file")
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.INFO if os.environ.get("FP_BENCH_VERBOSE") else logging.WARNING, stream=sys.stderr
    )
    res = sweep(args) if args.sweep else run(args)
    print(json.dumps(res, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
