"""Evaluation statistics over ISO/IEC 19795-1 rates: bootstrap intervals, the verification report,
k-fold accuracy, system-level rates with failures, and memory-bounded scoring of large N × M sets.

The rate estimators themselves (:class:`ScoreCounts`, FMR/FNMR, EER, FNMR@FMR, AUC, CMC,
FPIR/FNIR, Clopper–Pearson) live in :mod:`faceprint.rates`, at the bottom of the import graph,
and are re-exported here unchanged: ``faceprint.evaluation.metrics.eer is faceprint.rates.eer``.

Confidence intervals need scipy; everything else needs only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .. import rates
from ..errors import ConfigurationError, EmbeddingMismatchError, InvalidEmbeddingError
from ..rates import *  # noqa: F403 - the rate estimators, re-exported unchanged
from ..rates import (
    DEFAULT_FMR_TARGETS,
    EERResult,
    ErrorCurve,
    FloatArray,
    FNMRAtFMR,
    ScoreCounts,
    _bool_labels,
    _compact,
    _confidence,
    _fmt,
    _labels,
    _rate_target,
    _scores,
    min_nonmated_for,
)

__all__ = [
    "VerificationReport",
    "BootstrapResult",
    "KFoldAccuracy",
    "SystemErrorRates",
    "ScoreBlock",
    "ScoreAccumulator",
    "subject_bootstrap",
    "contiguous_folds",
    "kfold_accuracy",
    "system_error_rates",
    "iter_score_blocks",
    "accumulate_blocks",
    "accumulate_scores",
]
__all__ += rates.__all__


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Subject-level bootstrap of EER and FNMR@FMR.

    ``eer_samples`` (B,), ``fnmr_samples`` (B, T) (NaN where a replicate had too few non-mated
    comparisons); ``eer_ci`` and ``fnmr_ci[target]`` are percentile intervals (None where fewer
    than 2 valid replicates).
    """

    eer_ci: tuple[float, float] | None
    fnmr_ci: dict[float, tuple[float, float] | None]
    eer_samples: FloatArray
    fnmr_samples: FloatArray
    fmr_targets: tuple[float, ...]
    n_subjects: int
    n_bootstrap: int
    confidence: float
    seed: int | None
    method: str = field(default="")


def subject_bootstrap(
    mated: npt.ArrayLike,
    nonmated: npt.ArrayLike,
    mated_subjects: npt.ArrayLike,
    nonmated_subjects: npt.ArrayLike,
    *,
    fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Percentile bootstrap CIs for EER and FNMR@FMR, resampling *subjects*, not comparisons.

    Comparisons of one person are correlated, so resampling comparisons gives intervals that
    are too narrow. Here each replicate draws S subjects with replacement from the S distinct
    ids in ``mated_subjects`` (n,) ∪ ``nonmated_subjects`` (m,) (one id per comparison, e.g. the
    probe's subject) and weights every comparison by how often its subject was drawn. The
    threshold for FNMR@FMR is recalibrated in every replicate. Cost: O(n + m) per replicate
    after one sort.
    """
    conf = _confidence(confidence)
    if int(n_bootstrap) < 2:
        raise ConfigurationError(f"n_bootstrap must be at least 2, got {n_bootstrap}")
    g = _scores(mated, "mated")
    i = _scores(nonmated, "non-mated")
    sg = _labels(mated_subjects, g.size, "mated_subjects")
    si = _labels(nonmated_subjects, i.size, "nonmated_subjects")
    targets = tuple(_rate_target(t) for t in fmr_targets)
    subjects, inv = np.unique(np.concatenate((sg, si)), return_inverse=True)
    inv_g, inv_i = inv[: g.size], inv[g.size :]
    base = ScoreCounts.from_scores(g, i)
    idx_g = np.searchsorted(base.values, g)
    idx_i = np.searchsorted(base.values, i)
    k = base.values.size
    s = subjects.size
    rng = np.random.default_rng(seed)
    b = int(n_bootstrap)
    eers = np.full(b, np.nan)
    fn = np.full((b, len(targets)), np.nan)
    for r in range(b):
        mult = np.bincount(rng.integers(0, s, s), minlength=s).astype(np.float64)
        cm = np.bincount(idx_g, weights=mult[inv_g], minlength=k)
        cn = np.bincount(idx_i, weights=mult[inv_i], minlength=k)
        if cm.sum() == 0 or cn.sum() == 0:
            continue  # a replicate without mated or without non-mated comparisons says nothing
        keep = (cm + cn) > 0
        c = ScoreCounts(base.values[keep], cm[keep], cn[keep])
        eers[r] = c.eer().eer
        ni = c.n_nonmated
        for j, t in enumerate(targets):
            if ni >= min_nonmated_for(t):
                fn[r, j] = c._threshold_at(t)[2]
    a = (1 - conf) / 2

    def pct(x: FloatArray) -> tuple[float, float] | None:
        x = x[np.isfinite(x)]
        if x.size < 2:
            return None
        lo, hi = np.quantile(x, [a, 1 - a])
        return float(lo), float(hi)

    method = f"subject-level percentile bootstrap, {b} replicates over {s} subjects, {conf:.0%}, seed={seed}"
    return BootstrapResult(
        pct(eers),
        {t: pct(fn[:, j]) for j, t in enumerate(targets)},
        eers,
        fn,
        targets,
        int(s),
        b,
        conf,
        seed,
        method,
    )


# --- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VerificationReport:
    """1:1 verification performance in ISO/IEC 19795-1 terms, ready for JSON (:meth:`to_dict`).

    ``det`` is the DET curve thinned to about ``curve_points`` points (for plots).
    """

    n_mated: int
    n_nonmated: int
    eer: EERResult
    auc: float
    fnmr_at_fmr: tuple[FNMRAtFMR, ...]
    confidence: float | None
    det: ErrorCurve

    @classmethod
    def from_counts(
        cls,
        counts: ScoreCounts,
        *,
        fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
        confidence: float | None = 0.95,
        curve_points: int = 1000,
    ) -> VerificationReport:
        """Report from exact counts (e.g. accumulated block by block). FNMR CIs: Clopper–Pearson."""
        counts._require()
        if confidence is not None:
            _confidence(confidence)
        e = counts.eer()
        e = EERResult(e.eer, e.threshold, e.method, None, "none: pass subject ids for a subject-level bootstrap")
        points = tuple(counts.fnmr_at_fmr(t, confidence=confidence) for t in fmr_targets)
        return cls(
            int(counts.n_mated),
            int(counts.n_nonmated),
            e,
            counts.auc(),
            points,
            confidence,
            counts.error_curve().thin(curve_points),
        )

    @classmethod
    def from_scores(
        cls,
        mated: npt.ArrayLike,
        nonmated: npt.ArrayLike,
        *,
        fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
        confidence: float | None = 0.95,
        mated_subjects: npt.ArrayLike | None = None,
        nonmated_subjects: npt.ArrayLike | None = None,
        n_bootstrap: int = 1000,
        seed: int | None = 0,
        curve_points: int = 1000,
    ) -> VerificationReport:
        """Report from mated (n,) and non-mated (m,) scores.

        With ``mated_subjects``/``nonmated_subjects`` (one subject id per comparison) and a
        ``confidence``, EER and FNMR@FMR get subject-level bootstrap CIs
        (:func:`subject_bootstrap`); otherwise FNMR@FMR gets a Clopper–Pearson CI at the fixed
        threshold and the EER none.
        """
        report = cls.from_counts(
            ScoreCounts.from_scores(mated, nonmated),
            fmr_targets=fmr_targets,
            confidence=confidence,
            curve_points=curve_points,
        )
        if (mated_subjects is None) != (nonmated_subjects is None):
            raise ConfigurationError("pass both mated_subjects and nonmated_subjects, or neither")
        if confidence is None or mated_subjects is None:
            return report
        boot = subject_bootstrap(
            mated,
            nonmated,
            mated_subjects,
            nonmated_subjects,  # type: ignore[arg-type]
            fmr_targets=[p.target_fmr for p in report.fnmr_at_fmr if p.fnmr is not None],
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
        e = report.eer
        eer_r = EERResult(e.eer, e.threshold, e.method, boot.eer_ci, boot.method)
        pts = tuple(
            p
            if p.fnmr is None
            else FNMRAtFMR(p.target_fmr, p.threshold, p.fmr, p.fnmr, boot.fnmr_ci.get(p.target_fmr), boot.method, None)
            for p in report.fnmr_at_fmr
        )
        return cls(report.n_mated, report.n_nonmated, eer_r, report.auc, pts, confidence, report.det)

    def at(self, target_fmr: float) -> FNMRAtFMR:
        """The FNMR@FMR entry for ``target_fmr``."""
        for p in self.fnmr_at_fmr:
            if math.isclose(p.target_fmr, target_fmr, rel_tol=1e-9):
                return p
        known = ", ".join(_fmt(p.target_fmr) for p in self.fnmr_at_fmr)
        raise ConfigurationError(f"no FNMR at FMR={_fmt(target_fmr)} in this report (have: {known})")

    def to_dict(self, *, include_curve: bool = True) -> dict[str, Any]:
        """Plain JSON-serialisable dict (floats, ints, strings, lists, None)."""
        d: dict[str, Any] = {
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "eer": self.eer.eer,
            "eer_threshold": self.eer.threshold,
            "eer_method": self.eer.method,
            "eer_ci": list(self.eer.ci) if self.eer.ci is not None else None,
            "eer_ci_method": self.eer.ci_method,
            "auc": self.auc,
            "confidence": self.confidence,
            "fnmr_at_fmr": [p.to_dict() for p in self.fnmr_at_fmr],
        }
        if include_curve:
            d["det"] = self.det.to_dict()
        return d


# --- LFW-style k-fold accuracy -----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class KFoldAccuracy:
    """Accuracy on each test fold with the threshold chosen on the other folds.

    ``accuracies``, ``thresholds``: (F,) float64, in the order of ``folds`` (F,).
    ``std`` is the population standard deviation (ddof=0), as InsightFace and the LFW
    results page report it.
    """

    mean: float
    std: float
    accuracies: FloatArray
    thresholds: FloatArray
    folds: npt.NDArray[Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "accuracies": self.accuracies.tolist(),
            "thresholds": [float(t) if np.isfinite(t) else None for t in self.thresholds],
            "folds": self.folds.tolist(),
        }


def contiguous_folds(n: int, n_folds: int = 10) -> npt.NDArray[np.int64]:
    """Fold id per comparison (n,): consecutive blocks, like ``KFold(n_folds, shuffle=False)``.

    LFW View 2 ``pairs.txt`` lists its 10 folds one after the other, so this reproduces them.
    """
    if n_folds < 2 or n < n_folds:
        raise ConfigurationError(
            f"need n_folds >= 2 and at least one comparison per fold, got n={n}, n_folds={n_folds}"
        )
    sizes = np.full(n_folds, n // n_folds, dtype=np.int64)
    sizes[: n % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)


def _best_accuracy_threshold(s: FloatArray, y: npt.NDArray[np.bool_]) -> float:
    """Threshold maximising accuracy of ``score >= t`` on (s, y); ties → the lowest threshold.

    Candidates: −inf, the midpoints between adjacent distinct scores, and +inf.
    """
    c = ScoreCounts._from_sorted(np.sort(s[y]), np.sort(s[~y]))
    gb, ib = c._below
    ng = gb[-1]
    correct = (ng - gb) + ib  # for candidate j (j = 0..K): mated >= c_j plus non-mated < c_j
    j = int(np.argmax(correct))
    v = c.values
    if j == 0:
        return -math.inf
    if j == v.size:
        return math.inf
    return float((v[j - 1] + v[j]) / 2)


def kfold_accuracy(scores: npt.ArrayLike, mated: npt.ArrayLike, folds: npt.ArrayLike) -> KFoldAccuracy:
    """LFW "unrestricted" / InsightFace ``verification.py`` protocol, exact.

    For each fold f: the threshold that maximises accuracy on all other folds (candidates: every
    midpoint between adjacent distinct training scores, plus ±inf; ties → lowest) is applied to
    fold f. ``scores`` (n,), ``mated`` (n,) bool, ``folds`` (n,) fold ids (see
    :func:`contiguous_folds`). Returns mean ± std (ddof=0) of the per-fold accuracies.
    """
    s = _scores(scores, "comparison")
    y = _bool_labels(mated, s.size, "mated")
    f = _labels(folds, s.size, "folds")
    ids = np.unique(f)
    if ids.size < 2:
        raise ConfigurationError("k-fold accuracy needs at least 2 folds; see contiguous_folds(n, 10)")
    acc = np.empty(ids.size)
    thr = np.empty(ids.size)
    for j, fid in enumerate(ids):
        test = f == fid
        t = _best_accuracy_threshold(s[~test], y[~test])
        acc[j] = np.mean((s[test] >= t) == y[test])
        thr[j] = t
    return KFoldAccuracy(float(acc.mean()), float(acc.std()), acc, thr, ids)


# --- failure to enrol / acquire -----------------------------------------------------------------


@dataclass(frozen=True)
class SystemErrorRates:
    """Error rates at one threshold with failed attempts counted (ISO/IEC 19795-1).

    ``fmr``/``fnmr``: system level, over *all* attempts; ``comparison_fmr``/``comparison_fnmr``:
    over the attempts that produced a score (the algorithm's rates). ``fta``: failed share of
    all attempts. Identities: fnmr = fta_m + (1 − fta_m)·comparison_fnmr and
    fmr = (1 − fta_n)·comparison_fmr, where fta_m/fta_n are the failure shares among mated /
    non-mated attempts.
    """

    threshold: float
    fmr: float
    fnmr: float
    fta: float
    comparison_fmr: float
    comparison_fnmr: float
    n_mated: int
    n_nonmated: int
    n_failed_mated: int
    n_failed_nonmated: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def system_error_rates(
    scores: npt.ArrayLike,
    mated: npt.ArrayLike,
    threshold: float,
    failed: npt.ArrayLike | None = None,
) -> SystemErrorRates:
    """FMR/FNMR at ``threshold`` counting failures to enrol or acquire (FTE/FTA) as non-matches.

    ``scores`` (n,): one per attempted comparison; entries where ``failed`` (n,) bool is True are
    ignored and may be NaN (no template could be made, so no score). Per ISO/IEC 19795-1 a
    failed attempt yields no match decision, i.e. a *non-match*: a failed mated attempt is a
    false non-match (it raises FNMR), a failed non-mated attempt is a correct non-match (it
    cannot raise FMR but stays in its denominator, so it lowers the system FMR).
    """
    raw = np.asarray(scores, dtype=np.float64).ravel()
    y = _bool_labels(mated, raw.size, "mated")
    fl = np.zeros(raw.size, bool) if failed is None else _bool_labels(failed, raw.size, "failed")
    ok = ~fl
    _scores(raw[ok], "comparison", allow_empty=True)  # finite where not failed
    t = float(threshold)
    if math.isnan(t):
        raise ConfigurationError("threshold is NaN")
    n_m, n_n = int(y.sum()), int((~y).sum())
    if n_m == 0 or n_n == 0:
        raise ConfigurationError("need at least one mated and one non-mated attempt")
    f_m, f_n = int((fl & y).sum()), int((fl & ~y).sum())
    s_ok = raw[ok]
    y_ok = y[ok]
    fm_ok = int(np.count_nonzero(s_ok[~y_ok] >= t))
    fnm_ok = int(np.count_nonzero(s_ok[y_ok] < t))
    return SystemErrorRates(
        threshold=t,
        fmr=fm_ok / n_n,
        fnmr=(fnm_ok + f_m) / n_m,
        fta=(f_m + f_n) / raw.size,
        comparison_fmr=fm_ok / (n_n - f_n) if n_n > f_n else math.nan,
        comparison_fnmr=fnm_ok / (n_m - f_m) if n_m > f_m else math.nan,
        n_mated=n_m,
        n_nonmated=n_n,
        n_failed_mated=f_m,
        n_failed_nonmated=f_n,
    )


# --- memory-bounded scoring of large N × M comparisons ------------------------------------------------


class ScoreBlock(NamedTuple):
    """One block of a score matrix: ``scores[rows, cols]`` as a (r, c) float32 array."""

    rows: slice
    cols: slice
    scores: npt.NDArray[np.floating[Any]]


def _unit_rows(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    z = np.asarray(x, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] == 0:
        raise InvalidEmbeddingError(f"{name} must be a non-empty 2-D (N, D) array, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise InvalidEmbeddingError(f"{name} contains NaN or infinite values")
    n = np.linalg.norm(z, axis=1, keepdims=True)
    if (n == 0).any():
        raise InvalidEmbeddingError(f"{name} has a zero-norm row")
    return z / n


def iter_score_blocks(a: npt.ArrayLike, b: npt.ArrayLike | None = None, *, block: int = 4096) -> Iterator[ScoreBlock]:
    """Cosine-similarity blocks of rows of ``a`` (N, D) against ``b`` (M, D), block × block at a time.

    With ``b=None`` compares ``a`` with itself and yields only blocks on or above the diagonal
    (the consumer drops the lower triangle of diagonal blocks; :func:`accumulate_scores` does).
    Memory: the two normalised matrices plus one block.
    """
    if block < 1:
        raise ConfigurationError(f"block must be >= 1, got {block}")
    x = _unit_rows(a, "a")
    y = x if b is None else _unit_rows(b, "b")
    if x.shape[1] != y.shape[1]:
        raise EmbeddingMismatchError(f"embedding dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    for r0 in range(0, x.shape[0], block):
        rows = slice(r0, min(r0 + block, x.shape[0]))
        c_start = r0 if b is None else 0
        for c0 in range(c_start, y.shape[0], block):
            cols = slice(c0, min(c0 + block, y.shape[0]))
            yield ScoreBlock(rows, cols, np.clip(x[rows] @ y[cols].T, -1.0, 1.0))


class ScoreAccumulator:
    """Accumulates mated and non-mated scores as exact distinct-value counts.

    Memory grows with the number of *distinct* scores, not comparisons; float32 cosine scores
    have a bounded number of distinct values. ``resolution`` (e.g. 1e-6) rounds every score to
    a multiple of it first, bounding memory to 2/resolution values at the cost of exactness
    (thresholds then carry that rounding error).
    """

    def __init__(self, *, resolution: float | None = None) -> None:
        if resolution is not None and not (resolution > 0 and math.isfinite(resolution)):
            raise ConfigurationError(f"resolution must be a positive number or None, got {resolution}")
        self.resolution = resolution
        self._parts: tuple[list[FloatArray], list[npt.NDArray[np.int64]], list[npt.NDArray[np.int64]]] = ([], [], [])
        self._pending = 0
        self._counts = ScoreCounts(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))

    def add(self, mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> None:
        """Add a batch of mated (n,) and non-mated (m,) scores (either may be empty)."""
        for x, name, is_mated in ((mated, "mated", True), (nonmated, "non-mated", False)):
            s = _scores(x, name, allow_empty=True)
            if s.size == 0:
                continue
            if self.resolution is not None:
                s = np.round(s / self.resolution) * self.resolution
            v, c = np.unique(s, return_counts=True)
            z = np.zeros_like(c)
            self._parts[0].append(v)
            self._parts[1].append(c if is_mated else z)
            self._parts[2].append(z if is_mated else c)
            self._pending += v.size
        if self._pending > max(self._counts.values.size, 1 << 22):
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            v, m, n = self._parts
            self._counts = _compact([self._counts.values, *v], [self._counts.mated, *m], [self._counts.nonmated, *n])
            self._parts = ([], [], [])
            self._pending = 0

    def counts(self) -> ScoreCounts:
        """Everything added so far."""
        self._flush()
        return self._counts


def accumulate_blocks(
    blocks: Iterable[ScoreBlock] | Callable[[], Iterable[ScoreBlock]],
    ids_a: npt.ArrayLike,
    ids_b: npt.ArrayLike | None = None,
    *,
    resolution: float | None = None,
) -> ScoreCounts:
    """Exact mated / non-mated counts from score blocks (e.g. computed on a GPU).

    ``blocks``: :class:`ScoreBlock` items (or a callable returning them) with plain
    ``slice(start, stop)`` rows/cols. ``ids_a`` (N,) and ``ids_b`` (M,) are subject ids of the
    rows and columns; a pair is mated when they are equal. ``ids_b=None`` means an all-vs-all
    comparison of one set: only pairs i < j are counted (each unordered pair once, no
    self-comparisons), whatever blocks are given.
    """
    ia = np.asarray(ids_a)
    symmetric = ids_b is None
    ib = ia if ids_b is None else np.asarray(ids_b)
    if ia.ndim != 1 or ib.ndim != 1:
        raise ConfigurationError("ids_a and ids_b must be 1-D arrays of subject ids")
    _, codes = np.unique(np.concatenate((ia, ib)), return_inverse=True)
    ca, cb = codes[: ia.size], codes[ia.size :]
    acc = ScoreAccumulator(resolution=resolution)
    it = blocks() if callable(blocks) else blocks
    for rows, cols, s in it:
        s = np.asarray(s)
        r = range(*rows.indices(ca.size))
        c = range(*cols.indices(cb.size))
        if r.step != 1 or c.step != 1 or s.shape != (len(r), len(c)):
            raise ConfigurationError(f"block for rows {rows} and cols {cols} has shape {s.shape} (or a stepped slice)")
        same = ca[r.start : r.stop, None] == cb[None, c.start : c.stop]
        if symmetric and r.stop > c.start + 1:  # not entirely above the diagonal: keep only i < j
            keep = np.arange(r.start, r.stop)[:, None] < np.arange(c.start, c.stop)[None, :]
            acc.add(s[same & keep], s[~same & keep])
        else:
            acc.add(s[same], s[~same])
    return acc.counts()


def accumulate_scores(
    a: npt.ArrayLike,
    ids_a: npt.ArrayLike,
    b: npt.ArrayLike | None = None,
    ids_b: npt.ArrayLike | None = None,
    *,
    block: int = 4096,
    resolution: float | None = None,
) -> ScoreCounts:
    """Cosine scores of ``a`` (N, D) vs ``b`` (M, D) (or ``a`` vs itself, pairs i < j) as counts.

    The N × M matrix is never materialised: see :func:`iter_score_blocks` and
    :func:`accumulate_blocks`. Feed the result to :meth:`VerificationReport.from_counts`.
    """
    if (b is None) != (ids_b is None):
        raise ConfigurationError("pass both b and ids_b, or neither (all-vs-all of a)")
    n_a = np.asarray(a).shape[0] if np.ndim(a) else 0
    if np.asarray(ids_a).shape != (n_a,):
        raise ConfigurationError(f"ids_a must have one id per row of a ({n_a}), got shape {np.shape(ids_a)}")
    if b is not None and np.asarray(ids_b).shape != (np.asarray(b).shape[0],):
        raise ConfigurationError("ids_b must have one id per row of b")
    return accumulate_blocks(iter_score_blocks(a, b, block=block), ids_a, ids_b, resolution=resolution)
