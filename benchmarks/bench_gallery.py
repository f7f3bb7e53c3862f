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

The peer is that same exact numpy scan (single query, ``X @ q`` then ``argpartition``): the
ratio printed is gallery latency / numpy latency.

    nice -n 10 python benchmarks/bench_gallery.py --n 1000000 --dim 128
    nice -n 10 python benchmarks/bench_gallery.py --n 100000 --dim 128 --backend milvus
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
    from faceprint.gallery import open_gallery

    rng = np.random.default_rng(args.seed)
    work = Path(args.dir or tempfile.mkdtemp(prefix="fp-bench-gallery-"))
    loc = work / ("g.db" if args.backend == "milvus" else "gallery")
    if loc.exists():
        shutil.rmtree(loc) if loc.is_dir() else loc.unlink()
    out: dict = {
        "backend": args.backend,
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "noise": args.noise,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": len(os.sched_getaffinity(0)),
    }
    t0 = time.perf_counter()
    x = unit(rng, args.n, args.dim)
    subjects = [f"s{i:07d}" for i in range(args.n)]
    q, mate = noisy_queries(rng, x, args.queries, args.noise)
    out["mate_cosine_mean"] = round(float(np.mean(np.sum(q * x[mate], axis=1))), 3)
    print(
        f"data: {args.n} x {args.dim} in {time.perf_counter() - t0:.1f} s; query–mate cosine {out['mate_cosine_mean']}",
        flush=True,
    )

    # --- the peer: exact numpy scan (ground truth, and single-query latency) ---------------
    t0 = time.perf_counter()
    truth = exact_top(x, q, 10)
    out["exact_batch_s"] = round(time.perf_counter() - t0, 2)
    lat = []
    for i in range(min(50, args.queries)):
        t1 = time.perf_counter()
        s = x @ q[i]
        np.argpartition(-s, 9)[:10]
        lat.append(time.perf_counter() - t1)
    out["numpy_exact_single_p50_ms"] = round(pct(lat, 50), 3)
    print(
        f"exact numpy scan: {args.queries} queries in {out['exact_batch_s']} s; "
        f"single query p50 {out['numpy_exact_single_p50_ms']} ms",
        flush=True,
    )

    # --- enrolment --------------------------------------------------------------------------
    opts = (
        {"collection": "bench"} if args.backend == "milvus" else {"synchronous": "normal" if args.fast_sync else "full"}
    )
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
    bt = np.asarray(batch_times)
    slow = bt > 5 * np.median(bt)
    out["enrol"] = {
        "total_s": round(enrol_s, 1),
        "templates_per_s": round(args.n / enrol_s),
        "batch": args.batch,
        "median_batch_s": round(float(np.median(bt)), 3),
        "rate_without_index_rebuilds_per_s": round(args.n * (1 - slow.mean()) / float(bt[~slow].sum()))
        if (~slow).any()
        else None,
        "index_rebuild_batches": int(slow.sum()),
        "index_rebuild_s": round(float(bt[slow].sum() - slow.sum() * np.median(bt)), 1),
    }
    print(f"enrolled {args.n} in {enrol_s:.1f} s = {args.n / enrol_s:,.0f}/s", flush=True)
    t0 = time.perf_counter()
    stats = g.stats()
    g.close()
    out["close_s"] = round(time.perf_counter() - t0, 1)
    del x
    gc.collect()

    # --- reopen --------------------------------------------------------------------------------
    t0 = time.perf_counter()
    g = open_gallery(
        str(loc), backend=args.backend, create=False, **({"collection": "bench"} if args.backend == "milvus" else {})
    )
    out["open_s"] = round(time.perf_counter() - t0, 2)
    stats = g.stats()
    out["index"] = stats.get("index")
    out["disk_mb"] = round(dir_mb(loc), 1)
    if "disk_bytes" in stats:
        out["disk_mb_parts"] = {k: round(v / 2**20, 1) for k, v in stats["disk_bytes"].items()}

    # --- single-query search latency and recall ------------------------------------------
    ids_by_tpl: dict[int, int] = {}
    found = np.full((args.queries, 10), -1, np.int64)
    lat = []
    for i in range(args.queries):
        t1 = time.perf_counter()
        _d, ids = g.search(q[i], 10)
        lat.append(time.perf_counter() - t1)
        found[i] = ids[0]
    # template id → gallery row: enrolment order
    if args.backend == "sqlite":
        found_rows = found - 1  # SQLite ids are 1..N in enrolment order
    else:
        owners = g._template_owners(sorted({int(i) for i in found.ravel() if i >= 0}))
        ids_by_tpl = {t: int(name[1:]) for t, (_s, name) in owners.items()}
        found_rows = np.vectorize(lambda t: ids_by_tpl.get(int(t), -1))(found)
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
    lat = []
    for i in range(args.queries):
        t1 = time.perf_counter()
        g.identify_many(q[i : i + 1], 10, threshold=-math.inf)
        lat.append(time.perf_counter() - t1)
    out["identify"] = {"p50_ms": round(pct(lat, 50), 3), "p99_ms": round(pct(lat, 99), 3)}
    print(json.dumps(out["search"]), json.dumps(out["identify"]), flush=True)

    if args.nprobe_sweep and stats.get("index", {}).get("kind") == "ivf":
        import faiss

        st = g._state  # type: ignore[attr-defined]
        ivf = faiss.extract_index_ivf(st.index)
        sweep = []
        for nprobe in (16, 32, 48, 64, 80, 96, 128, 256):
            if nprobe > ivf.nlist:
                break
            ivf.nprobe = nprobe
            lat, got = [], np.full((args.queries, 10), -1, np.int64)
            for i in range(args.queries):
                t1 = time.perf_counter()
                _d, ids = g.search(q[i], 10)
                lat.append(time.perf_counter() - t1)
                got[i] = ids[0] - 1
            sweep.append(
                {
                    "nprobe": nprobe,
                    "p50_ms": round(pct(lat, 50), 3),
                    "p99_ms": round(pct(lat, 99), 3),
                    "recall@10": round(float(np.mean([truth[i, 0] in got[i] for i in range(args.queries)])), 4),
                }
            )
            print("  nprobe sweep:", sweep[-1], flush=True)
        out["nprobe_sweep"] = sweep
    g.close()
    if args.backend == "milvus":  # milvus-lite keeps its file locked until this process exits
        out["rss_mb"] = {"benchmark_process": round(rss_mb()), "note": "whole benchmark process (data included)"}
    else:
        out["rss_mb"] = rss_of_open_gallery(loc, args.backend, args.dim)  # a fresh process
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


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

    from faceprint.gallery.sqlite import EXACT_BUDGET, auto_nlist, auto_nprobe

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
    ap.add_argument("--fast-sync", action="store_true", help="SQLite synchronous=NORMAL instead of FULL")
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
