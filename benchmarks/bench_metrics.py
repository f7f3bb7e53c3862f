"""Evaluation metrics at scale: a full VerificationReport and DET curve from 10 million scores.

    nice -n 10 python benchmarks/bench_metrics.py                 # 1M mated + 9M non-mated, float64
    nice -n 10 python benchmarks/bench_metrics.py --dtype float32 # float32 scores: many ties

Prints (1) the time of faceprint's exact, sort-based metrics (report with EER, AUC, FNMR at
FMR 1e-1…1e-6 with Clopper–Pearson CIs, plus the full DET arrays), and of scikit-learn's
``roc_curve`` + ``roc_auc_score`` on the same scores as a peer; (2) peak memory (tracemalloc,
numpy allocations included, inputs excluded; and the process max RSS); (3) agreement with slow,
obviously-correct reference implementations on a 200k subsample: a loop over 2,000 thresholds
(FMR/FNMR must equal the fast ones exactly there; the grid EER must be within the grid's
resolution), a pure-Python walk over every distinct score (EER must equal the fast one), and
FNMR@FMR from the sorted-list definition (must be equal).
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import tracemalloc

import numpy as np

from faceprint.evaluation import metrics as M


def fast(g: np.ndarray, i: np.ndarray) -> tuple[M.VerificationReport, tuple[np.ndarray, ...]]:
    counts = M.ScoreCounts.from_scores(g, i)
    report = M.VerificationReport.from_counts(counts)
    curve = counts.error_curve()
    return report, (curve.fmr, curve.fnmr, curve.thresholds)


def reference_grid(g: np.ndarray, i: np.ndarray, n: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """FMR/FNMR by brute force at n thresholds; EER at the grid point where they are closest."""
    grid = np.linspace(min(g.min(), i.min()), max(g.max(), i.max()), n)
    fmr = np.empty(n)
    fnmr = np.empty(n)
    for k, t in enumerate(grid):
        fmr[k] = np.count_nonzero(i >= t) / i.size
        fnmr[k] = np.count_nonzero(g < t) / g.size
    j = int(np.argmin(np.abs(fmr - fnmr)))
    return grid, fmr, fnmr, (fmr[j] + fnmr[j]) / 2


def reference_eer_walk(g: np.ndarray, i: np.ndarray) -> float:
    """The documented EER method, one distinct score at a time in plain Python."""
    events = sorted([(float(x), 0) for x in g] + [(float(x), 1) for x in i])
    ng, ni = len(g), len(i)
    below_g = below_i = 0
    prev = None  # (fmr, fnmr) at the previous distinct score
    k = 0
    while k < len(events):
        t = events[k][0]
        fmr, fnmr = (ni - below_i) / ni, below_g / ng
        if fmr - fnmr <= 0:
            if prev is None:
                return max(fmr, fnmr)
            d0, d1 = prev[0] - prev[1], fmr - fnmr
            w = d0 / (d0 - d1) if d0 != d1 else 0.5
            return (1 - w) * (prev[0] + prev[1]) / 2 + w * (fmr + fnmr) / 2
        prev = (fmr, fnmr)
        while k < len(events) and events[k][0] == t:
            below_g += events[k][1] == 0
            below_i += events[k][1] == 1
            k += 1
    return max(prev)  # type: ignore[arg-type]


def reference_fnmr_at_fmr(g: np.ndarray, i: np.ndarray, target: float) -> float | None:
    s = sorted(i.tolist(), reverse=True)
    if len(s) < math.ceil(3 / target * (1 - 1e-12)):
        return None
    t = float(np.nextafter(s[math.floor(target * len(s) + 1e-9)], np.inf))
    return sum(x < t for x in g.tolist()) / len(g)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mated", type=int, default=1_000_000)
    ap.add_argument("--nonmated", type=int, default=9_000_000)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--separation", type=float, default=2.5, help="d' between the two unit normals")
    ap.add_argument("--no-peer", action="store_true", help="skip scikit-learn")
    ap.add_argument(
        "--bootstrap", type=int, default=200, help="subject-bootstrap replicates on the subsample (0: skip)"
    )
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    g = rng.normal(args.separation, 1.0, args.mated).astype(args.dtype)
    i = rng.normal(0.0, 1.0, args.nonmated).astype(args.dtype)
    n = g.size + i.size
    print(f"{args.mated:,} mated + {args.nonmated:,} non-mated = {n:,} scores ({args.dtype}), d'={args.separation}")

    t0 = time.perf_counter()
    import scipy.stats  # noqa: F401  (Clopper-Pearson; imported once per process)

    print(f"scipy.stats import: {time.perf_counter() - t0:.2f} s (not counted below)")

    t0 = time.perf_counter()
    report, (fmr, fnmr, thr) = fast(g, i)
    t_fast = time.perf_counter() - t0
    print(f"faceprint report + DET arrays ({thr.size:,} distinct thresholds): {t_fast:.2f} s")
    e = report.eer
    analytic = _phi(-args.separation / 2)
    print(f"  EER {e.eer:.6f} at {e.threshold:.6f} (analytic Phi(-d/2) = {analytic:.6f}); AUC {report.auc:.6f}")
    for p in report.fnmr_at_fmr:
        if p.fnmr is None:
            print(f"  FNMR@FMR={p.target_fmr:g}: None ({p.reason})")
        else:
            ci = f"[{p.ci[0]:.6f}, {p.ci[1]:.6f}]"
            print(f"  FNMR@FMR={p.target_fmr:g}: {p.fnmr:.6f}  CI {ci}  threshold {p.threshold:.6f}")

    if not args.no_peer:
        from sklearn.metrics import roc_auc_score, roc_curve

        y = np.r_[np.ones(g.size, bool), np.zeros(i.size, bool)]
        s = np.r_[g, i]
        t0 = time.perf_counter()
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        auc_sk = roc_auc_score(y, s)
        t_sk = time.perf_counter() - t0
        print(
            f"scikit-learn roc_curve + roc_auc_score: {t_sk:.2f} s (faceprint is {t_sk / t_fast:.1f}x as fast, "
            f"and also computes EER, FNMR@FMR and CIs); |AUC diff| = {abs(auc_sk - report.auc):.2e}; "
            f"max |FMR diff| = {np.max(np.abs(fpr[1:][::-1] - fmr)):.2e}"
        )
        del y, s, fpr, tpr

    del fmr, fnmr, thr, report
    tracemalloc.start()
    fast(g, i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    inputs = (g.nbytes + i.nbytes) / 2**20
    print(
        f"peak memory of the fast path: {peak / 2**20:.0f} MiB traced (inputs {inputs:.0f} MiB excluded); "
        f"process max RSS {rss:.0f} MiB (includes the scikit-learn peer)"
    )

    # --- correctness against slow references on a subsample ------------------------------
    sub = np.random.default_rng(1)
    gs = sub.choice(g, 20_000, replace=False).astype(np.float64)
    is_ = sub.choice(i, 180_000, replace=False).astype(np.float64)
    t0 = time.perf_counter()
    grid, rf, rn, eer_grid = reference_grid(gs, is_)
    t_ref = time.perf_counter() - t0
    ff, fn = M.fmr_fnmr(gs, is_, grid)
    exact = bool(np.array_equal(ff, rf) and np.array_equal(fn, rn))
    eer_fast = M.eer(gs, is_).eer
    step = grid[1] - grid[0]
    print(
        f"200k subsample: 2,000-threshold loop {t_ref:.2f} s; FMR/FNMR equal at all 2,000 thresholds: {exact}; "
        f"grid EER {eer_grid:.6f} vs fast {eer_fast:.6f} (|diff| {abs(eer_grid - eer_fast):.1e}, grid step {step:.1e})"
    )
    t0 = time.perf_counter()
    eer_walk = reference_eer_walk(gs, is_)
    t_walk = time.perf_counter() - t0
    eq = math.isclose(eer_walk, eer_fast, rel_tol=1e-12, abs_tol=1e-15)
    print(f"  pure-Python walk over every distinct score ({t_walk:.2f} s): EER {eer_walk!r} vs fast {eer_fast!r}: {eq}")
    rep_sub = M.VerificationReport.from_scores(gs, is_, confidence=None)
    same = all(reference_fnmr_at_fmr(gs, is_, p.target_fmr) == p.fnmr for p in rep_sub.fnmr_at_fmr)
    print(f"  FNMR@FMR 1e-1…1e-6 equal to the sorted-list definition (None where < 3/FMR non-mated): {same}")
    if args.bootstrap:
        subj_g = sub.integers(0, 2000, gs.size)
        subj_i = sub.integers(0, 2000, is_.size)
        t0 = time.perf_counter()
        b = M.subject_bootstrap(gs, is_, subj_g, subj_i, n_bootstrap=args.bootstrap, seed=0)
        print(
            f"  subject bootstrap, {args.bootstrap} replicates over 2,000 subjects on the 200k subsample: "
            f"{time.perf_counter() - t0:.2f} s; EER CI {b.eer_ci}"
        )
    if not (exact and same and eq):
        raise SystemExit("MISMATCH with the reference implementation")


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


if __name__ == "__main__":
    main()
