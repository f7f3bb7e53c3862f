"""Error versus discard characteristic (EDC) of quality scores, ISO/IEC 29794-1:2024.

Does a quality score predict recognition errors? Discard the comparisons of lowest quality and
watch the false non-match rate fall:

1. Each mated comparison gets the quality of its worse side: ``min(q_a, q_b)``.
2. The threshold is fixed *before* discarding: the one at the target FMR on all non-mated
   scores (:func:`faceprint.rates.threshold_at_fmr`), or one given.
3. Comparisons are discarded in increasing pair quality, a whole group of equal qualities at a
   time (one quality threshold step), and FNMR is recomputed on the rest at that threshold.
4. The partial area under the curve (stepwise) over discard fractions 0 to 20 %, divided by the
   starting FNMR, summarises it. Random discarding keeps FNMR where it started (on average), so
   its normalised pAUC is the limit itself (0.2); a useful quality score stays well below.
   ``ratio_to_random`` divides by that.

The ideal curve discards the false non-matches first. A :class:`EDCReport` holds the curve of
the unified score, of each component, and the ideal one; :class:`EDCDisplay` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..rates import threshold_at_fmr

__all__ = ["EDCCurve", "EDCReport", "edc_curve", "ideal_edc", "edc_report", "pair_quality", "EDCDisplay"]

FloatArray = npt.NDArray[np.float64]
#: discard fractions the summary pAUC covers (ISO/IEC 29794-1 reports 0-20 %)
DEFAULT_LIMIT = 0.2


def pair_quality(quality_a: npt.ArrayLike, quality_b: npt.ArrayLike) -> FloatArray:
    """Quality of each comparison: the lower of its two sides' qualities."""
    return np.minimum(np.asarray(quality_a, dtype=np.float64), np.asarray(quality_b, dtype=np.float64))


@dataclass(frozen=True)
class EDCCurve:
    """FNMR after discarding the lowest-quality fraction of mated comparisons (a step function).

    ``discard[i]`` is where step ``i`` starts and ``fnmr[i]`` its FNMR; the last point is
    (1, 0). ``fnmr0`` is the FNMR before discarding, ``n_mated`` the comparisons.
    """

    name: str
    discard: FloatArray
    fnmr: FloatArray
    threshold: float
    n_mated: int

    @property
    def fnmr0(self) -> float:
        return float(self.fnmr[0])

    def area(self, limit: float = DEFAULT_LIMIT) -> float:
        """Area under the step curve over discard fractions [0, ``limit``]."""
        if not 0.0 <= limit <= 1.0:
            raise ConfigurationError(f"the discard limit must lie in [0, 1], got {limit}")
        ends = np.minimum(np.append(self.discard[1:], 1.0), limit)
        starts = np.minimum(self.discard, limit)
        return float(np.sum(self.fnmr * np.maximum(0.0, ends - starts)))

    def pauc(self, limit: float = DEFAULT_LIMIT) -> float:
        """:meth:`area` divided by the starting FNMR (NaN when there is no error to start with)."""
        return self.area(limit) / self.fnmr0 if self.fnmr0 > 0 else math.nan

    def ratio_to_random(self, limit: float = DEFAULT_LIMIT) -> float:
        """:meth:`pauc` over random discarding's (``limit``): below 1 means the quality predicts errors."""
        return self.pauc(limit) / limit if limit > 0 else math.nan

    def fnmr_at(self, fraction: float) -> float:
        """FNMR after discarding ``fraction`` of the comparisons (the step that covers it)."""
        i = int(np.searchsorted(self.discard, fraction, side="right")) - 1
        return float(self.fnmr[max(0, i)])

    def to_dict(self, limit: float = DEFAULT_LIMIT) -> dict[str, Any]:
        p = self.pauc(limit)
        return {
            "name": self.name,
            "fnmr0": self.fnmr0,
            "pauc": None if math.isnan(p) else p,
            "ratio_to_random": None if math.isnan(p) else p / limit,
            "fnmr_at_10pct": self.fnmr_at(0.1),
            "fnmr_at_20pct": self.fnmr_at(0.2),
        }


def _mated(scores: npt.ArrayLike, mated: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(mated, dtype=bool)
    if s.ndim != 1 or m.shape != s.shape:
        raise ConfigurationError(f"scores and mated must be 1-D of equal length, got {s.shape} and {m.shape}")
    return s, m


def edc_curve(name: str, scores: npt.ArrayLike, quality: npt.ArrayLike, *, threshold: float) -> EDCCurve:
    """The EDC of mated comparison ``scores`` (n,) with pair ``quality`` (n,) at a fixed ``threshold``.

    Scores below ``threshold`` are false non-matches. NaN scores or qualities are not allowed
    (leave failed comparisons out before, and say so).
    """
    s = np.asarray(scores, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if s.ndim != 1 or q.shape != s.shape or s.size == 0:
        raise ConfigurationError(f"an EDC needs equal non-empty 1-D scores and qualities, got {s.shape}, {q.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(q))):
        raise ConfigurationError("EDC scores and qualities must be finite; leave failed comparisons out first")
    order = np.argsort(q, kind="stable")
    q, err = q[order], (s[order] < threshold)
    n = s.size
    remaining_errors = np.cumsum(err[::-1])[::-1]  # errors among comparisons k..n-1
    starts = np.concatenate([[0], np.flatnonzero(q[1:] != q[:-1]) + 1])
    fnmr = remaining_errors[starts] / (n - starts)
    discard = starts / n
    return EDCCurve(name, np.append(discard, 1.0), np.append(fnmr, 0.0), float(threshold), n)


def ideal_edc(scores: npt.ArrayLike, *, threshold: float) -> EDCCurve:
    """The best possible EDC: false non-matches are discarded first, one comparison at a time."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    errors = int(np.count_nonzero(s < threshold))
    k = np.arange(n)
    fnmr = np.maximum(0, errors - k) / (n - k)
    return EDCCurve("ideal", np.append(k / n, 1.0), np.append(fnmr, 0.0), float(threshold), n)


@dataclass(frozen=True)
class EDCReport:
    """EDCs of several quality measures on one score set, at one threshold.

    ``curves``: measure name → :class:`EDCCurve` (the unified score first, then components);
    ``ideal``: discarding errors first; ``excluded``: mated comparisons left out because a side
    has no quality (failed to acquire).
    """

    threshold: float
    fmr_target: float | None
    curves: dict[str, EDCCurve]
    ideal: EDCCurve
    limit: float = DEFAULT_LIMIT
    excluded: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fnmr0(self) -> float:
        return self.ideal.fnmr0

    def table(self) -> list[dict[str, Any]]:
        """One row per curve, ideal last: name, starting FNMR, pAUC, pAUC / random, FNMR at 10 % and 20 %."""
        return [c.to_dict(self.limit) for c in (*self.curves.values(), self.ideal)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "fmr_target": self.fmr_target,
            "discard_limit": self.limit,
            "pair_quality": "min",
            "n_mated": self.ideal.n_mated,
            "excluded_mated": self.excluded,
            "random_pauc": self.limit,
            "curves": self.table(),
            "notes": list(self.notes),
        }


def edc_report(
    scores: npt.ArrayLike,
    mated: npt.ArrayLike,
    qualities: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    fmr_target: float | None = 1e-3,
    threshold: float | None = None,
    limit: float = DEFAULT_LIMIT,
) -> EDCReport:
    """EDCs of each quality measure over the comparisons ``scores`` (n,) labelled ``mated`` (n,).

    ``qualities`` maps a measure's name to its (quality of side a, quality of side b), each (n,),
    NaN where a side has none. The threshold is ``threshold`` if given, else the one at
    ``fmr_target`` on the non-mated scores (before any discarding). Mated comparisons with a NaN
    score or a NaN quality in any measure are left out of every curve (counted in ``excluded``),
    so the curves compare on the same comparisons.
    """
    s, m = _mated(scores, mated)
    notes: list[str] = []
    target = fmr_target if threshold is None else None
    if threshold is None:
        if fmr_target is None:
            raise ConfigurationError("give a threshold or an FMR target")
        nonmated = s[~m & np.isfinite(s)]
        if nonmated.size == 0:
            raise ConfigurationError("an EDC threshold at a target FMR needs non-mated comparisons")
        threshold = threshold_at_fmr(nonmated, fmr_target, warn=False)
        if nonmated.size * fmr_target < 3:
            notes.append(
                f"only {nonmated.size} non-mated comparisons: the threshold at FMR {fmr_target:g} rests on "
                "very few false matches"
            )
    pq = {name: pair_quality(a, b)[m] for name, (a, b) in qualities.items()}
    ok = np.isfinite(s[m])
    for q in pq.values():
        ok &= np.isfinite(q)
    if not ok.any():
        raise ConfigurationError("no mated comparison has a score and a quality on both sides")
    sm = s[m][ok]
    curves = {name: edc_curve(name, sm, q[ok], threshold=float(threshold)) for name, q in pq.items()}
    ideal = ideal_edc(sm, threshold=float(threshold))
    if ideal.fnmr0 == 0:
        notes.append("no false non-match at this threshold: the EDC cannot show anything")
    return EDCReport(float(threshold), target, curves, ideal, limit, int((~ok).sum()), notes)


class EDCDisplay:
    """EDC plot: FNMR against the fraction of comparisons discarded, one line per quality measure.

    ``from_report(report, measures=None)`` draws the chosen curves (default: every curve), the
    ideal curve (dotted) and random discarding (flat, dashed). After ``plot()``: ``lines_``,
    ``ax_``, ``figure_``.
    """

    def __init__(self, *, curves: Mapping[str, EDCCurve], ideal: EDCCurve | None = None, limit: float = 1.0) -> None:
        self.curves = dict(curves)
        self.ideal = ideal
        self.limit = float(limit)

    @classmethod
    def from_report(
        cls,
        report: EDCReport,
        *,
        measures: list[str] | None = None,
        limit: float | None = None,
        ax: Any = None,
        **kwargs: Any,
    ) -> EDCDisplay:
        names = list(report.curves) if measures is None else measures
        curves = {n: report.curves[n] for n in names}
        return cls(curves=curves, ideal=report.ideal, limit=2 * report.limit if limit is None else limit).plot(
            ax=ax, **kwargs
        )

    def plot(self, ax: Any = None, *, title: str | None = None, **kwargs: Any) -> EDCDisplay:
        from .plots import pyplot

        if ax is None:
            self.figure_, self.ax_ = pyplot().subplots()
        else:
            self.figure_, self.ax_ = ax.figure, ax
        self.lines_ = {}
        start = next(iter(self.curves.values())).fnmr0 if self.curves else None
        for i, (name, c) in enumerate(self.curves.items()):
            style = {"linewidth": 2.2 if i == 0 else 1.0, "alpha": 1.0 if i == 0 else 0.75, **kwargs}
            label = f"{name} (pAUC {c.pauc():.3f})" if c.fnmr0 > 0 else name
            (self.lines_[name],) = self.ax_.step(c.discard, c.fnmr, where="post", label=label, **style)
        if self.ideal is not None:
            (self.lines_["ideal"],) = self.ax_.step(
                self.ideal.discard,
                self.ideal.fnmr,
                where="post",
                color="k",
                linestyle=":",
                label="ideal (errors first)",
            )
        if start is not None:
            self.lines_["random"] = self.ax_.axhline(start, color="grey", linestyle="--", label="random discard")
        self.ax_.axvline(DEFAULT_LIMIT, color="grey", linewidth=0.5)
        self.ax_.set_xlim(0.0, self.limit)
        self.ax_.set_ylim(bottom=0.0)
        self.ax_.set_xlabel("Fraction of comparisons discarded (lowest quality first)")
        self.ax_.set_ylabel("FNMR at the fixed threshold")
        self.ax_.grid(True, alpha=0.3)
        if title:
            self.ax_.set_title(title)
        self.ax_.legend(loc="upper right", fontsize="small")
        return self
