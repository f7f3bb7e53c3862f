"""Rate estimators of ISO/IEC 19795-1, exact and vectorised: the one implementation faceprint uses.

This module sits at the bottom of the import graph (it needs only numpy, and scipy for
confidence intervals): :mod:`faceprint.scoring` (1:1 decisions), :mod:`faceprint.evaluation`
(reports) and the gallery (open-set thresholds) all take their rates from here.

Scores are similarities: higher means more alike and a comparison *matches* when
``score >= threshold``. For a threshold ``t``:

* FMR(t)  = share of non-mated comparisons (two different people) with ``score >= t``;
* FNMR(t) = share of mated comparisons (one person) with ``score < t``; TMR = 1 − FNMR;
* FPIR(t) = share of non-mated searches (identity not enrolled) whose top score is ``>= t``;
* FNIR(t) = share of mated searches whose mate is not returned at rank ≤ r with ``score >= t``.

Every curve is computed at **every distinct observed score** from one sort of the scores
(O((n+m) log(n+m)), float64); nothing is binned. The shared representation is
:class:`ScoreCounts` (distinct values with mated / non-mated counts at each).

Rates estimated from too few comparisons are not reported: FNMR at a target FMR needs at least
``3 / target`` non-mated comparisons (the *rule of three*: with zero observed false matches
in n trials the 95 % upper bound on FMR is about 3/n); below that the result is ``None``
together with the reason.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .errors import BackendUnavailableError, ConfigurationError

__all__ = [
    "DEFAULT_FMR_TARGETS",
    "EER_METHOD",
    "ScoreCounts",
    "ErrorCurve",
    "EERResult",
    "FNMRAtFMR",
    "CMCResult",
    "OpenSetScores",
    "OpenSetCurve",
    "FNIRAtFPIR",
    "error_curve",
    "det_curve",
    "roc_curve",
    "fmr_fnmr",
    "threshold_at_fmr",
    "eer",
    "auc",
    "fnmr_at_fmr",
    "min_nonmated_for",
    "clopper_pearson",
    "cmc",
    "open_set_scores",
    "fpir_fnir",
    "fpir_fnir_at",
    "threshold_at_fpir",
    "fnir_at_fpir",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

DEFAULT_FMR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)

EER_METHOD = (
    "FMR(t) and FNMR(t) evaluated at every distinct observed score and linearly interpolated "
    "between the two adjacent thresholds that bracket their crossing; EER is the common value "
    "where the interpolated curves meet"
)

_RULE_OF_THREE = 3.0


# --- input checks ----------------------------------------------------------------------------


def _scores(x: npt.ArrayLike, name: str, *, allow_empty: bool = False) -> FloatArray:
    """1-D float64 copy-free view of finite scores, or a ConfigurationError saying what is wrong."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{name} scores must be numbers: {exc}") from None
    if a.ndim != 1:
        if a.ndim == 0:
            raise ConfigurationError(f"{name} scores must be a 1-D array, got a scalar")
        a = a.ravel()
    if a.size == 0 and not allow_empty:
        raise ConfigurationError(f"no {name} scores given: at least one {name} comparison is needed")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ConfigurationError(
            f"{name} scores contain NaN or infinite values ({int(bad.sum())} of {a.size}, first at index "
            f"{int(np.argmax(bad))}); drop those comparisons or mark them as failed (see system_error_rates)"
        )
    return a


def _labels(x: npt.ArrayLike, n: int, name: str) -> npt.NDArray[Any]:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise ConfigurationError(f"{name} must be a 1-D array with one entry per comparison ({n}), got shape {a.shape}")
    return a


def _bool_labels(x: npt.ArrayLike, n: int, name: str) -> npt.NDArray[np.bool_]:
    a = _labels(x, n, name)
    if a.dtype != np.bool_:
        if not np.isin(a, (0, 1)).all():
            raise ConfigurationError(f"{name} must be booleans (or 0/1), got values like {a[~np.isin(a, (0, 1))][:3]}")
        a = a.astype(bool)
    return a


def _rate_target(target: float, name: str = "target FMR") -> float:
    t = float(target)
    if not 0.0 <= t < 1.0:
        raise ConfigurationError(f"{name} must be in [0, 1), got {target}")
    return t


def _confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ConfigurationError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}")
    return c


def min_nonmated_for(target: float) -> float:
    """Non-mated comparisons needed to estimate a rate of ``target``: ⌈3 / target⌉ (rule of three).

    ``inf`` for a target of 0, which no finite test can estimate.
    """
    if target <= 0:
        return math.inf
    return float(math.ceil(_RULE_OF_THREE / target * (1 - 1e-12)))


def _too_few(n: float, target: float, what: str, rate: str) -> str:
    if target <= 0:
        return f"{rate}=0 cannot be estimated from a finite number of {what}; use a positive target"
    need = int(min_nonmated_for(target))
    return f"only {int(n)} {what}: at least {need} are needed to estimate {rate}={_fmt(target)} (rule of three)"


def _allowed(target: float, n: float) -> float:
    """Largest number of false matches (weighted count) allowed at ``target`` out of ``n``."""
    return math.floor(target * n + 1e-9)


def _fmt(x: float) -> str:
    return f"{x:g}"


# --- the shared exact representation --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScoreCounts:
    """Distinct score values with the number of mated and non-mated comparisons at each.

    ``values`` (K,) float64, strictly increasing; ``mated`` and ``nonmated`` (K,) counts
    (int64, or float64 weights in a bootstrap replicate). Every metric in this module is a
    function of these three arrays, so scores may be given raw (:meth:`from_scores`) or
    accumulated block by block (:class:`ScoreAccumulator`).
    """

    values: FloatArray
    mated: npt.NDArray[Any]
    nonmated: npt.NDArray[Any]

    # construction ---------------------------------------------------------------------------

    @classmethod
    def from_scores(cls, mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> ScoreCounts:
        """Exact counts from raw scores: mated (n,) and non-mated (m,), any float dtype."""
        g = _scores(mated, "mated")
        i = _scores(nonmated, "non-mated")
        return cls._from_sorted(np.sort(g), np.sort(i))

    @classmethod
    def _from_sorted(cls, sg: FloatArray, si: FloatArray) -> ScoreCounts:
        # Merge two sorted arrays in O(n): insert the smaller one into the larger one.
        swap = sg.size > si.size
        small, large = (si, sg) if swap else (sg, si)
        n = sg.size + si.size
        pos = np.searchsorted(large, small, side="left")
        pos += np.arange(small.size)
        in_small = np.zeros(n, dtype=bool)
        in_small[pos] = True
        merged = np.empty(n, dtype=np.float64)
        merged[pos] = small
        merged[~in_small] = large
        dtype = np.int32 if n < 2**31 else np.int64
        dup = merged[1:] == merged[:-1]
        if not dup.any():  # all scores distinct (typical for float64 scores): one count per value
            values = merged
            c_small = in_small.astype(dtype)
            c_large = np.logical_not(in_small).astype(dtype)
        else:
            np.logical_not(dup, out=dup)
            starts = np.flatnonzero(dup)
            starts += 1
            starts = np.concatenate(([0], starts))
            values = merged[starts]
            grp = np.searchsorted(starts, pos, side="right") - 1
            c_small = np.bincount(grp, minlength=starts.size).astype(dtype)
            c_large = np.diff(starts, append=n).astype(dtype)
            np.subtract(c_large, c_small, out=c_large)
        mated_c, nonmated_c = (c_large, c_small) if swap else (c_small, c_large)
        return cls(values, mated_c, nonmated_c)

    @classmethod
    def from_arrays(cls, values: npt.ArrayLike, mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> ScoreCounts:
        """Counts from (possibly unsorted, repeated) values with per-value counts; compacted."""
        v = _scores(values, "score", allow_empty=True)
        cm = np.asarray(mated)
        cn = np.asarray(nonmated)
        if cm.shape != v.shape or cn.shape != v.shape:
            raise ConfigurationError(
                f"values, mated and nonmated counts must have the same length, got {v.shape}, {cm.shape}, {cn.shape}"
            )
        if (cm < 0).any() or (cn < 0).any():
            raise ConfigurationError("counts must be non-negative")
        return _compact([v], [cm], [cn])

    def merge(self, other: ScoreCounts) -> ScoreCounts:
        """Counts of both score sets together."""
        return _compact([self.values, other.values], [self.mated, other.mated], [self.nonmated, other.nonmated])

    # sizes and cumulative counts ------------------------------------------------------------

    @cached_property
    def _below(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """(K+1,) numbers of mated / non-mated scores strictly below values[k] (last = total)."""
        out = []
        for c in (self.mated, self.nonmated):
            dt = np.float64 if c.dtype.kind == "f" else np.int64
            b = np.empty(c.size + 1, dtype=dt)
            b[0] = 0
            np.cumsum(c, dtype=dt, out=b[1:])
            out.append(b)
        return out[0], out[1]

    @property
    def n_mated(self) -> float:
        return self._below[0][-1].item()

    @property
    def n_nonmated(self) -> float:
        return self._below[1][-1].item()

    def _require(self, mated: bool = True, nonmated: bool = True) -> None:
        if mated and self.n_mated <= 0:
            raise ConfigurationError("no mated scores given: at least one mated comparison is needed")
        if nonmated and self.n_nonmated <= 0:
            raise ConfigurationError("no non-mated scores given: at least one non-mated comparison is needed")

    # metrics ---------------------------------------------------------------------------------

    def error_curve(self) -> ErrorCurve:
        """FMR and FNMR at every distinct score (ascending thresholds)."""
        self._require()
        gb, ib = self._below
        ng, ni = gb[-1], ib[-1]
        fnmr = np.divide(gb[:-1], ng, dtype=np.float64)
        fmr = np.subtract(ni, ib[:-1], dtype=np.float64)
        fmr /= ni
        return ErrorCurve(self.values, fmr, fnmr, int(ng), int(ni))

    def rates_at(self, threshold: float | npt.ArrayLike) -> tuple[Any, Any]:
        """(FMR, FNMR) at ``threshold`` (scalar → floats; array → arrays of the same shape)."""
        self._require()
        t = np.asarray(threshold, dtype=np.float64)
        if np.isnan(t).any():
            raise ConfigurationError("threshold is NaN")
        gb, ib = self._below
        k = np.searchsorted(self.values, t, side="left")
        fmr = (ib[-1] - ib[k]) / ib[-1]
        fnmr = gb[k] / gb[-1]
        if t.ndim == 0:
            return float(fmr), float(fnmr)
        return fmr.astype(np.float64), fnmr.astype(np.float64)

    def eer(self) -> EERResult:
        """Equal error rate; see :data:`EER_METHOD` for the interpolation. O(log K)."""
        self._require()
        gb, ib = self._below
        t = self.values
        ng, ni = gb[-1].item(), ib[-1].item()

        def rates(k: int) -> tuple[float, float]:
            return (ni - ib[k].item()) / ni, gb[k].item() / ng

        # d(k) = FMR - FNMR is non-increasing in k with d(0) = 1: find the first k with d <= 0,
        # comparing cross-multiplied counts (exact for integer counts).
        lo, hi = 0, t.size
        while lo < hi:
            mid = (lo + hi) // 2
            if (ni - ib[mid].item()) * ng <= gb[mid].item() * ni:
                hi = mid
            else:
                lo = mid + 1
        k = lo
        if k == 0:
            fm, fn = rates(0)
            return EERResult(float(max(fm, fn)), float(t[0]), EER_METHOD)
        if k >= t.size:
            # the curves never cross at an observed score (e.g. all scores tied): report the
            # larger error at the highest score rather than inventing a crossing
            fm, fn = rates(t.size - 1)
            return EERResult(
                float(max(fm, fn)),
                float(t[-1]),
                "no crossing at any observed score: the larger of FMR and FNMR at the highest score",
            )
        fm0, fn0 = rates(k - 1)
        fm1, fn1 = rates(k)
        d0, d1 = fm0 - fn0, fm1 - fn1
        w = d0 / (d0 - d1) if d0 != d1 else 0.5
        rate = (1 - w) * (fm0 + fn0) / 2 + w * (fm1 + fn1) / 2
        thr = (1 - w) * t[k - 1] + w * t[k]
        return EERResult(float(rate), float(thr), EER_METHOD)

    def auc(self) -> float:
        """Area under the ROC curve (TMR vs FMR) = P(mated > non-mated) + ½ P(tie)."""
        self._require()
        gb, ib = self._below
        below = np.dot(self.mated, ib[:-1]).item()  # Σ mated × non-mated strictly below
        ties = np.dot(self.mated, self.nonmated.astype(np.float64)).item()
        return float((below + 0.5 * ties) / (gb[-1].item() * ib[-1].item()))

    def _threshold_at(self, target: float) -> tuple[float, float, float]:
        """(threshold, FMR, FNMR) at the lowest threshold with FMR ≤ target (FNMR nan without mated)."""
        gb, ib = self._below
        ng, ni = gb[-1], ib[-1]
        m = _allowed(target, float(ni))
        # first k with (non-mated >= values[k]) = ni - ib[k] <= m
        k = int(np.searchsorted(ib[:-1], ni - m, side="left"))
        if k == 0:
            thr = float(self.values[0])
        elif k >= self.values.size:
            thr = float(np.nextafter(self.values[-1], np.inf))
        else:
            thr = float(np.nextafter(self.values[k - 1], np.inf))
        fmr = float((ni - ib[k]) / ni)
        fnmr = float(gb[k] / ng) if ng > 0 else math.nan
        return thr, fmr, fnmr

    def threshold_at_fmr(self, target_fmr: float) -> float:
        """Lowest threshold whose FMR on these non-mated scores is ≤ ``target_fmr``."""
        self._require(mated=False)
        return self._threshold_at(_rate_target(target_fmr))[0]

    def fnmr_at_fmr(self, target_fmr: float, *, confidence: float | None = 0.95) -> FNMRAtFMR:
        """FNMR at the threshold calibrated to ``target_fmr`` on these scores (None if too few)."""
        self._require()
        target = _rate_target(target_fmr)
        ni, ng = self.n_nonmated, self.n_mated
        if ni < min_nonmated_for(target):
            return FNMRAtFMR(target, None, None, None, None, None, _too_few(ni, target, "non-mated comparisons", "FMR"))
        thr, fmr, fnmr = self._threshold_at(target)
        ci = None
        method = None
        if confidence is not None:
            k = round(fnmr * ng)
            ci = clopper_pearson(k, int(ng), confidence)
            method = (
                f"Clopper-Pearson {confidence:.0%} on FNMR at the fixed threshold (threshold uncertainty not included)"
            )
        return FNMRAtFMR(target, thr, fmr, fnmr, ci, method, None)


def _compact(
    values: Sequence[FloatArray], mated: Sequence[npt.NDArray[Any]], nonmated: Sequence[npt.NDArray[Any]]
) -> ScoreCounts:
    """Merge value/count lists into one ScoreCounts of distinct values (drops zero-count values)."""
    v = np.concatenate(values) if values else np.empty(0)
    cm = np.concatenate(mated) if mated else np.empty(0, np.int64)
    cn = np.concatenate(nonmated) if nonmated else np.empty(0, np.int64)
    dtype = np.result_type(cm.dtype, cn.dtype, np.int64)
    if v.size == 0:
        return ScoreCounts(np.empty(0), np.empty(0, dtype), np.empty(0, dtype))
    order = np.argsort(v, kind="stable")
    v = v[order]
    first = np.empty(v.size, dtype=bool)
    first[0] = True
    np.not_equal(v[1:], v[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    cm = np.add.reduceat(cm[order].astype(dtype), starts)
    cn = np.add.reduceat(cn[order].astype(dtype), starts)
    v = v[starts]
    keep = (cm + cn) > 0
    if not keep.all():
        v, cm, cn = v[keep], cm[keep], cn[keep]
    return ScoreCounts(v, cm, cn)


# --- result types -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ErrorCurve:
    """FMR and FNMR at each threshold.

    ``thresholds``, ``fmr``, ``fnmr``: (K,) float64, thresholds ascending (FMR non-increasing,
    FNMR non-decreasing). ``n_mated`` / ``n_nonmated``: the comparison counts behind them.
    """

    thresholds: FloatArray
    fmr: FloatArray
    fnmr: FloatArray
    n_mated: int
    n_nonmated: int

    @property
    def tmr(self) -> FloatArray:
        """True match rate (TAR) = 1 − FNMR, (K,)."""
        return 1.0 - self.fnmr

    def __len__(self) -> int:
        return int(self.thresholds.size)

    def thin(self, max_points: int = 1000) -> ErrorCurve:
        """At most about ``max_points`` points, spaced evenly in log FMR and log FNMR (for plots)."""
        k = self.thresholds.size
        if k <= max_points:
            return self
        half = max(max_points // 2, 2)
        lo_m = 1.0 / max(self.n_nonmated, 1)
        lo_g = 1.0 / max(self.n_mated, 1)
        # fmr is non-increasing: first index with fmr <= x = K - #(fmr <= x)
        idx_fmr = k - np.searchsorted(self.fmr[::-1], np.geomspace(lo_m, 1.0, half), side="right")
        idx_fnmr = np.searchsorted(self.fnmr, np.geomspace(lo_g, 1.0, half), side="left")
        idx = np.unique(np.concatenate(([0, k - 1], idx_fmr, idx_fnmr)).clip(0, k - 1))
        return ErrorCurve(self.thresholds[idx], self.fmr[idx], self.fnmr[idx], self.n_mated, self.n_nonmated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds.tolist(),
            "fmr": self.fmr.tolist(),
            "fnmr": self.fnmr.tolist(),
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
        }


@dataclass(frozen=True)
class EERResult:
    """Equal error rate ``eer`` at ``threshold``; ``method`` says how it was interpolated."""

    eer: float
    threshold: float
    method: str
    ci: tuple[float, float] | None = None
    ci_method: str | None = None

    # ``faceprint.scoring.eer`` returned a plain ``(eer, threshold)`` tuple before 0.2; unpacking
    # and indexing keep working for one release, with a DeprecationWarning.
    def __iter__(self) -> Iterator[float]:
        _tuple_deprecated()
        return iter((self.eer, self.threshold))

    def __getitem__(self, i: int) -> float:
        _tuple_deprecated()
        return (self.eer, self.threshold)[i]

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple):  # the pre-0.2 ``scoring.eer(...) == (eer, threshold)``
            _tuple_deprecated()
            return (self.eer, self.threshold) == other
        if not isinstance(other, EERResult):
            return NotImplemented
        mine = (self.eer, self.threshold, self.method, self.ci, self.ci_method)
        return mine == (other.eer, other.threshold, other.method, other.ci, other.ci_method)


def _tuple_deprecated() -> None:
    warnings.warn(
        "using an EERResult as an (eer, threshold) tuple is deprecated and will be removed in faceprint 0.3; "
        "read .eer and .threshold",
        DeprecationWarning,
        stacklevel=3,
    )


@dataclass(frozen=True)
class FNMRAtFMR:
    """FNMR at the threshold calibrated to ``target_fmr`` (= 1 − TAR@FAR).

    ``threshold``/``fmr``/``fnmr`` are None, and ``reason`` says why, when the non-mated
    comparisons are too few to estimate the target (rule of three). ``fmr`` is the FMR actually
    achieved (≤ target). ``ci`` is a (low, high) interval on FNMR, ``ci_method`` says which.
    """

    target_fmr: float
    threshold: float | None
    fmr: float | None
    fnmr: float | None
    ci: tuple[float, float] | None
    ci_method: str | None
    reason: str | None

    @property
    def tmr(self) -> float | None:
        """TAR/TMR at the target FMR, or None."""
        return None if self.fnmr is None else 1.0 - self.fnmr

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fmr": self.target_fmr,
            "threshold": self.threshold,
            "fmr": self.fmr,
            "fnmr": self.fnmr,
            "tmr": self.tmr,
            "ci": list(self.ci) if self.ci is not None else None,
            "ci_method": self.ci_method,
            "reason": self.reason,
        }


# --- functional API on raw scores -----------------------------------------------------------


def error_curve(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> ErrorCurve:
    """FMR and FNMR at every distinct score of mated (n,) and non-mated (m,) scores."""
    return ScoreCounts.from_scores(mated, nonmated).error_curve()


def det_curve(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """DET points ``(fmr, fnmr, thresholds)``, each (K,) float64, thresholds ascending.

    One point per distinct score (nothing is dropped, unlike :func:`sklearn.metrics.det_curve`).
    """
    c = error_curve(mated, nonmated)
    return c.fmr, c.fnmr, c.thresholds


def roc_curve(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ROC points ``(fmr, tmr, thresholds)``, each (K+1,) float64, in scikit-learn's order.

    Thresholds descend from ``+inf`` (FMR = TMR = 0) through every distinct score, as
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` returns them.
    """
    c = error_curve(mated, nonmated)
    fmr = np.concatenate(([0.0], c.fmr[::-1]))
    tmr = np.concatenate(([0.0], c.tmr[::-1]))
    thr = np.concatenate(([np.inf], c.thresholds[::-1]))
    return fmr, tmr, thr


def fmr_fnmr(mated: npt.ArrayLike, nonmated: npt.ArrayLike, threshold: float | npt.ArrayLike) -> tuple[Any, Any]:
    """(FMR, FNMR) at ``threshold`` (a float, or an array of thresholds → two arrays)."""
    t = np.asarray(threshold, dtype=np.float64)
    g = _scores(mated, "mated")
    i = _scores(nonmated, "non-mated")
    if t.ndim == 0:
        if np.isnan(t):
            raise ConfigurationError("threshold is NaN")
        return float(np.count_nonzero(i >= t) / i.size), float(np.count_nonzero(g < t) / g.size)
    return ScoreCounts._from_sorted(np.sort(g), np.sort(i)).rates_at(t)


def threshold_at_fmr(nonmated: npt.ArrayLike, target_fmr: float, *, warn: bool = True) -> float:
    """Lowest threshold whose empirical FMR on ``nonmated`` (m,) scores is ≤ ``target_fmr``.

    With m scores at most ``floor(target_fmr * m)`` may reach the threshold; it is placed just
    above (``nextafter``) the next-highest non-mated score. When ``m < 3 / target_fmr`` the
    estimate rests on almost no observed false matches and, with ``warn``, a warning says so.
    """
    target = _rate_target(target_fmr)
    i = np.sort(_scores(nonmated, "non-mated"))
    if warn and i.size * target < _RULE_OF_THREE * (1 - 1e-12):
        log.warning(
            "only %d non-mated comparisons for a target FMR of %g: about %d are needed for a reliable threshold",
            i.size,
            target,
            math.ceil(_RULE_OF_THREE / max(target, 1e-12)),
        )
    return ScoreCounts._from_sorted(np.empty(0), i)._threshold_at(target)[0]


def eer(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> EERResult:
    """Equal error rate with its threshold and interpolation method (:data:`EER_METHOD`)."""
    return ScoreCounts.from_scores(mated, nonmated).eer()


def auc(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> float:
    """Area under the ROC curve; equals ``sklearn.metrics.roc_auc_score`` (ties count ½)."""
    return ScoreCounts.from_scores(mated, nonmated).auc()


def fnmr_at_fmr(
    mated: npt.ArrayLike,
    nonmated: npt.ArrayLike,
    target_fmrs: float | Sequence[float] = DEFAULT_FMR_TARGETS,
    *,
    confidence: float | None = 0.95,
) -> list[FNMRAtFMR]:
    """FNMR (= 1 − TAR) at each target FMR; entries are None-valued with a reason when too few."""
    targets = [target_fmrs] if isinstance(target_fmrs, (int, float)) else list(target_fmrs)
    c = ScoreCounts.from_scores(mated, nonmated)
    return [c.fnmr_at_fmr(t, confidence=confidence) for t in targets]


# --- confidence intervals -----------------------------------------------------------------------


def _beta() -> Any:
    try:
        from scipy.stats import beta
    except ImportError:  # pragma: no cover - scipy is installed in the test environment
        raise BackendUnavailableError(
            "confidence intervals need scipy: pip install scipy (or pass confidence=None)"
        ) from None
    return beta


def clopper_pearson(k: Any, n: Any, confidence: float = 0.95) -> Any:
    """Exact (Clopper–Pearson) two-sided interval for a rate k/n.

    ``k``, ``n``: ints or broadcastable integer arrays, 0 ≤ k ≤ n, n ≥ 1. Returns ``(low, high)``
    as floats (or arrays). Uses ``scipy.stats.beta``: low = B⁻¹(α/2; k, n−k+1) (0 when k = 0),
    high = B⁻¹(1−α/2; k+1, n−k) (1 when k = n), α = 1 − confidence.
    """
    conf = _confidence(confidence)
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    if np.isnan(kk).any() or np.isnan(nn).any():
        raise ConfigurationError("k and n must be numbers, got NaN")
    if (nn < 1).any() or (kk < 0).any() or (kk > nn).any() or (kk != np.round(kk)).any():
        raise ConfigurationError(f"need integers 0 <= k <= n and n >= 1, got k={k}, n={n}")
    beta = _beta()
    a = (1.0 - conf) / 2
    with np.errstate(all="ignore"):
        lo = np.where(kk == 0, 0.0, beta.ppf(a, np.maximum(kk, 1), nn - kk + 1))
        hi = np.where(kk == nn, 1.0, beta.ppf(1 - a, kk + 1, np.maximum(nn - kk, 1)))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


# --- identification (1:N) -------------------------------------------------------------------------


def _score_matrix(
    scores: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery_ids: npt.ArrayLike
) -> tuple[FloatArray, npt.NDArray[Any], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """(identity scores (P, K), identities (K,), mate column per probe (P,), has-mate mask (P,)).

    Gallery entries of one identity are collapsed to their best score (max), so ranks count
    identities, not images.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ConfigurationError(f"scores must be a non-empty (probes, gallery) matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ConfigurationError("the score matrix contains NaN or infinite values")
    p = _labels(probe_ids, s.shape[0], "probe_ids (one per score-matrix row)")
    g = _labels(gallery_ids, s.shape[1], "gallery_ids (one per score-matrix column)")
    idents, inv = np.unique(g, return_inverse=True)
    if idents.size == g.size and (np.diff(inv) > 0).all():
        ident_scores = s
    else:
        order = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
        ident_scores = np.maximum.reduceat(s[:, order], starts, axis=1)
    col = np.searchsorted(idents, p).clip(0, idents.size - 1)
    has = idents[col] == p
    return ident_scores, idents, col, has


@dataclass(frozen=True, eq=False)
class CMCResult:
    """Closed-set identification: ``rates[r-1]`` = share of probes whose mate is at rank ≤ r.

    ``ranks`` (R,) = 1..R; ``rates`` (R,) float64; ``probe_ranks`` (P,) rank of each probe's
    mate (ties counted against the probe: rank = 1 + #non-mated identities scoring ≥ the mate).
    """

    ranks: npt.NDArray[np.int64]
    rates: FloatArray
    probe_ranks: npt.NDArray[np.int64]
    n_probes: int

    def rate_at(self, rank: int) -> float:
        """Rank-``rank`` identification rate."""
        if not 1 <= rank:
            raise ConfigurationError(f"rank must be >= 1, got {rank}")
        return float(np.mean(self.probe_ranks <= rank))

    def to_dict(self) -> dict[str, Any]:
        return {"ranks": self.ranks.tolist(), "rates": self.rates.tolist(), "n_probes": self.n_probes}


def _mate_ranks(ident_scores: FloatArray, col: npt.NDArray[np.intp]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    rows = np.arange(ident_scores.shape[0])
    mate = ident_scores[rows, col]
    rank = np.count_nonzero(ident_scores >= mate[:, None], axis=1).astype(np.int64)
    return mate, rank


def cmc(
    scores: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery_ids: npt.ArrayLike, *, max_rank: int | None = None
) -> CMCResult:
    """Cumulative match characteristic of a probe × gallery score matrix (P, G), closed set.

    ``probe_ids`` (P,) and ``gallery_ids`` (G,) are identity labels; several gallery entries
    of one identity count as one candidate (their best score). Every probe must have a mate.
    """
    ident, idents, col, has = _score_matrix(scores, probe_ids, gallery_ids)
    if not has.all():
        raise ConfigurationError(
            f"{int((~has).sum())} probes have no mate in the gallery; closed-set CMC needs a mate for every "
            "probe: drop them, or use fpir_fnir for open-set identification"
        )
    _, rank = _mate_ranks(ident, col)
    r = idents.size if max_rank is None else int(max_rank)
    if r < 1:
        raise ConfigurationError(f"max_rank must be >= 1, got {max_rank}")
    ranks = np.arange(1, r + 1, dtype=np.int64)
    hist = np.bincount(np.minimum(rank, r + 1), minlength=r + 2)[1 : r + 1]
    return CMCResult(ranks, np.cumsum(hist) / rank.size, rank, int(rank.size))


class OpenSetScores(NamedTuple):
    """Per-probe scores for open-set identification.

    ``mated`` (Pm,): each mated probe's mate score, −inf where the mate is ranked below
    ``rank``; ``nonmated`` (Pn,): each non-mated probe's top score.
    """

    mated: FloatArray
    nonmated: FloatArray


def open_set_scores(
    scores: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery_ids: npt.ArrayLike, *, rank: int = 1
) -> OpenSetScores:
    """Split probes into mated (identity enrolled) and non-mated; see :class:`OpenSetScores`."""
    if rank < 1:
        raise ConfigurationError(f"rank must be >= 1, got {rank}")
    ident, _, col, has = _score_matrix(scores, probe_ids, gallery_ids)
    mate, r = _mate_ranks(ident[has], col[has])
    mated = np.where(r <= rank, mate, -np.inf)
    nonmated = ident[~has].max(axis=1) if (~has).any() else np.empty(0)
    return OpenSetScores(mated, nonmated)


@dataclass(frozen=True, eq=False)
class OpenSetCurve:
    """FPIR and FNIR versus threshold (ascending ``thresholds``, all (K,) float64).

    FPIR(t) = share of non-mated probes whose top score ≥ t; FNIR(t) = share of mated probes
    whose mate is not returned at rank ≤ ``rank`` with score ≥ t.
    """

    thresholds: FloatArray
    fpir: FloatArray
    fnir: FloatArray
    rank: int
    n_mated: int
    n_nonmated: int


def _open_set_counts(o: OpenSetScores) -> ScoreCounts:
    if o.mated.size == 0:
        raise ConfigurationError("no mated probes: open-set rates need probes whose identity is in the gallery")
    if o.nonmated.size == 0:
        raise ConfigurationError("no non-mated probes: open-set rates need probes whose identity is not in the gallery")
    return ScoreCounts._from_sorted(np.sort(o.mated), np.sort(o.nonmated))


def fpir_fnir(
    scores: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery_ids: npt.ArrayLike, *, rank: int = 1
) -> OpenSetCurve:
    """Open-set FPIR and FNIR at every distinct finite probe score (see :class:`OpenSetCurve`)."""
    counts = _open_set_counts(open_set_scores(scores, probe_ids, gallery_ids, rank=rank))
    curve = counts.error_curve()
    finite = np.isfinite(curve.thresholds)  # a −inf threshold would "return" missed mates
    return OpenSetCurve(
        curve.thresholds[finite], curve.fmr[finite], curve.fnmr[finite], rank, curve.n_mated, curve.n_nonmated
    )


@dataclass(frozen=True)
class FNIRAtFPIR:
    """FNIR at the threshold calibrated to ``target_fpir`` (None with ``reason`` when too few)."""

    target_fpir: float
    rank: int
    threshold: float | None
    fpir: float | None
    fnir: float | None
    reason: str | None


def fnir_at_fpir(
    scores: npt.ArrayLike,
    probe_ids: npt.ArrayLike,
    gallery_ids: npt.ArrayLike,
    target_fpir: float,
    *,
    rank: int = 1,
) -> FNIRAtFPIR:
    """FNIR at the lowest threshold whose FPIR is ≤ ``target_fpir`` (rule of three on non-mated probes)."""
    target = _rate_target(target_fpir, "target FPIR")
    counts = _open_set_counts(open_set_scores(scores, probe_ids, gallery_ids, rank=rank))
    if counts.n_nonmated < min_nonmated_for(target):
        reason = _too_few(counts.n_nonmated, target, "non-mated probes", "FPIR")
        return FNIRAtFPIR(target, rank, None, None, None, reason)
    thr, fpir, fnir = counts._threshold_at(target)
    return FNIRAtFPIR(target, rank, thr, fpir, fnir, None)


def fpir_fnir_at(mated: npt.ArrayLike, nonmated: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(FPIR, FNIR) at one ``threshold`` from per-search scores (ISO/IEC 19795-1, any rank).

    ``mated`` (Pm,): for each search whose identity is enrolled, the score of the true subject
    when it was returned at the rank considered, ``-inf`` (or NaN) when it was not - such a
    search is a miss whatever the threshold (:func:`open_set_scores` gives this array).
    ``nonmated`` (Pn,): the top score of each search whose identity is not enrolled.
    """
    m = np.nan_to_num(np.asarray(mated, dtype=np.float64).ravel(), nan=-np.inf)
    n = _scores(nonmated, "non-mated top", allow_empty=True)
    t = float(threshold)
    if math.isnan(t):
        raise ConfigurationError("threshold is NaN")
    if m.size == 0 or n.size == 0:
        raise ConfigurationError("FPIR and FNIR need at least one mated and one non-mated search")
    if np.isposinf(m).any():
        raise ConfigurationError("mated scores contain +inf")
    return float(np.count_nonzero(n >= t) / n.size), float(np.count_nonzero(~(m >= t)) / m.size)


def threshold_at_fpir(nonmated: npt.ArrayLike, target_fpir: float, *, warn: bool = True) -> float:
    """Lowest threshold whose FPIR on the top scores of non-mated searches (n,) is ≤ ``target_fpir``.

    The same estimator as :func:`threshold_at_fmr`, on one top score per search (and the same
    warning below ``3 / target_fpir`` searches). FPIR grows with the gallery: recalibrate after
    the gallery grows a lot.
    """
    _rate_target(target_fpir, "target FPIR")
    return threshold_at_fmr(nonmated, target_fpir, warn=warn)
