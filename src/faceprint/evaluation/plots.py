"""Plots of evaluation results as scikit-learn-style ``Display`` objects.

Each display holds the numbers it draws; ``from_scores(...)`` computes them (with
:mod:`faceprint.evaluation.metrics`), ``from_report(...)`` takes an already computed result,
and ``plot(ax=None, name=...)`` draws and returns the display with ``figure_``, ``ax_`` and the
drawn artists set. Example::

    disp = DETDisplay.from_scores(mated, nonmated, name="dlib-resnet")
    disp.figure_.savefig("det.png")

matplotlib (and scipy, for the DET axes) are imported only inside ``plot()``; importing this
module imports neither. Without a display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux) the
non-interactive Agg backend is selected before pyplot is first imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError
from . import metrics
from .fairness import GroupErrorRates, group_error_rates

__all__ = [
    "pyplot",
    "DETDisplay",
    "ROCDisplay",
    "ScoreHistogramDisplay",
    "CMCDisplay",
    "GroupBarDisplay",
    "DET_TICKS",
]

#: Candidate DET tick probabilities; those inside the axis limits are shown, labelled in %.
DET_TICKS: tuple[float, ...] = (
    1e-6,
    1e-5,
    1e-4,
    1e-3,
    1e-2,
    0.05,
    0.2,
    0.5,
    0.8,
    0.95,
    0.99,
    0.999,
)


def pyplot() -> Any:
    """``matplotlib.pyplot``, with the Agg backend chosen first when there is no display (Linux)."""
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailableError("plots need matplotlib: pip install matplotlib") from None
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    plt = pyplot()
    fig, ax = plt.subplots()
    return fig, ax


def _norm_ppf() -> Any:
    try:
        from scipy.stats import norm
    except ImportError:
        raise BackendUnavailableError("DET plots need scipy: pip install scipy") from None
    return norm.ppf


def _pct(p: float) -> str:
    return f"{100 * p:.10g}%"


def _det_limits(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Tick-aligned limits: the largest tick ≤ the smallest rate in (0, 1), the smallest tick ≥ the
    largest one (at least 50 %, at most the last tick). When every rate sits on one tick (tiny
    sets), the limits widen to the neighbouring ticks so the axis never collapses."""
    v = values[(values > 0) & (values < 1)]
    if v.size == 0:
        return DET_TICKS[0], 0.5
    lo_candidates = [t for t in DET_TICKS if t <= v.min()]
    hi_candidates = [t for t in DET_TICKS if t >= max(v.max(), 0.5)]
    lo = lo_candidates[-1] if lo_candidates else DET_TICKS[0]
    hi = hi_candidates[0] if hi_candidates else DET_TICKS[-1]
    if lo >= hi:
        k = DET_TICKS.index(lo) if lo in DET_TICKS else 0
        lo, hi = DET_TICKS[max(k - 1, 0)], DET_TICKS[min(k + 1, len(DET_TICKS) - 1)]
    return lo, hi


def _set_det_axes(ax: Any, fmr: npt.NDArray[np.float64], fnmr: npt.NDArray[np.float64]) -> None:
    """DET limits, ticks and tick labels (in %) on normal-deviate axes covering these rates."""
    ppf = _norm_ppf()
    for values, set_lim, set_ticks, set_labels in (
        (fmr, ax.set_xlim, ax.set_xticks, ax.set_xticklabels),
        (fnmr, ax.set_ylim, ax.set_yticks, ax.set_yticklabels),
    ):
        lo, hi = _det_limits(values)
        ticks = [t for t in DET_TICKS if lo <= t <= hi]
        set_lim(float(ppf(lo)), float(ppf(hi)))
        set_ticks(ppf(np.array(ticks)))
        set_labels([_pct(t) for t in ticks])


class DETDisplay:
    """Detection error trade-off: FNMR vs FMR on normal-deviate axes (``scipy.stats.norm.ppf``).

    ``fmr``, ``fnmr`` (K,) float64; points where either rate is 0 or 1 lie at ±∞ on these axes
    and are not drawn. Axis ticks are :data:`DET_TICKS` inside the limits, labelled in %.
    After ``plot()``: ``line_``, ``ax_``, ``figure_``.
    """

    def __init__(
        self,
        *,
        fmr: npt.ArrayLike,
        fnmr: npt.ArrayLike,
        thresholds: npt.ArrayLike | None = None,
        name: str | None = None,
    ) -> None:
        self.fmr = np.asarray(fmr, dtype=np.float64)
        self.fnmr = np.asarray(fnmr, dtype=np.float64)
        if self.fmr.shape != self.fnmr.shape or self.fmr.ndim != 1:
            raise ConfigurationError(
                f"fmr and fnmr must be 1-D of equal length, got {self.fmr.shape}, {self.fnmr.shape}"
            )
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        self.name = name

    @classmethod
    def from_scores(
        cls,
        mated: npt.ArrayLike,
        nonmated: npt.ArrayLike,
        *,
        name: str | None = None,
        ax: Any = None,
        max_points: int = 2000,
        **kwargs: Any,
    ) -> DETDisplay:
        """Compute the DET curve of mated (n,) and non-mated (m,) scores and plot it."""
        c = metrics.error_curve(mated, nonmated).thin(max_points)
        return cls(fmr=c.fmr, fnmr=c.fnmr, thresholds=c.thresholds, name=name).plot(ax=ax, **kwargs)

    @classmethod
    def from_report(
        cls, report: metrics.VerificationReport, *, name: str | None = None, ax: Any = None, **kwargs: Any
    ) -> DETDisplay:
        """Plot the (thinned) DET curve stored in a :class:`~faceprint.evaluation.metrics.VerificationReport`."""
        c = report.det
        return cls(fmr=c.fmr, fnmr=c.fnmr, thresholds=c.thresholds, name=name).plot(ax=ax, **kwargs)

    def plot(self, ax: Any = None, *, name: str | None = None, **kwargs: Any) -> DETDisplay:
        """Draw on ``ax`` (a new figure when None); ``kwargs`` go to ``ax.plot``."""
        ppf = _norm_ppf()
        self.figure_, self.ax_ = _new_axes(ax)
        name = self.name if name is None else name
        ok = (self.fmr > 0) & (self.fmr < 1) & (self.fnmr > 0) & (self.fnmr < 1)
        line_kwargs = {"label": name} if name else {}
        line_kwargs.update(kwargs)
        (self.line_,) = self.ax_.plot(ppf(self.fmr[ok]), ppf(self.fnmr[ok]), **line_kwargs)
        _set_det_axes(self.ax_, self.fmr, self.fnmr)
        self.ax_.set_xlabel("False match rate (FMR)")
        self.ax_.set_ylabel("False non-match rate (FNMR)")
        self.ax_.grid(True, alpha=0.3)
        if name:
            self.ax_.legend(loc="upper right")
        return self

    def mark(self, fmr: float, fnmr: float, **kwargs: Any) -> Any:
        """Mark one operating point (e.g. the decision threshold) on the drawn axes; returns the artist.

        ``kwargs`` go to ``ax.plot`` (default: a black dot). Rates of 0 or 1 lie at ±∞ on DET
        axes: nothing is drawn and None is returned.
        """
        if not (0 < fmr < 1 and 0 < fnmr < 1):
            return None
        ppf = _norm_ppf()
        style: dict[str, Any] = {"marker": "o", "color": "k", "linestyle": "none"}
        style.update(kwargs)
        (point,) = self.ax_.plot([float(ppf(fmr))], [float(ppf(fnmr))], **style)
        return point

    @staticmethod
    def fit_axes(displays: Sequence[DETDisplay]) -> None:
        """One set of DET limits and ticks covering every display's curve (all drawn on one axes).

        Each display's ``plot`` fits the axes to its own curve; call this after drawing several
        curves together (e.g. a calibration set and the reported set).
        """
        if not displays:
            return
        axes = {id(d.ax_): d.ax_ for d in displays}
        if len(axes) != 1:
            raise ConfigurationError("fit_axes needs displays drawn on the same axes")
        fmr = np.concatenate([d.fmr for d in displays])
        fnmr = np.concatenate([d.fnmr for d in displays])
        _set_det_axes(next(iter(axes.values())), fmr, fnmr)


class ROCDisplay:
    """ROC: true match rate (1 − FNMR) vs FMR, FMR on a log axis by default.

    After ``plot()``: ``line_``, ``ax_``, ``figure_``.
    """

    def __init__(
        self,
        *,
        fmr: npt.ArrayLike,
        tmr: npt.ArrayLike,
        thresholds: npt.ArrayLike | None = None,
        name: str | None = None,
        auc: float | None = None,
    ) -> None:
        self.fmr = np.asarray(fmr, dtype=np.float64)
        self.tmr = np.asarray(tmr, dtype=np.float64)
        if self.fmr.shape != self.tmr.shape or self.fmr.ndim != 1:
            raise ConfigurationError(f"fmr and tmr must be 1-D of equal length, got {self.fmr.shape}, {self.tmr.shape}")
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        self.name = name
        self.auc = auc

    @classmethod
    def from_scores(
        cls,
        mated: npt.ArrayLike,
        nonmated: npt.ArrayLike,
        *,
        name: str | None = None,
        ax: Any = None,
        max_points: int = 2000,
        **kwargs: Any,
    ) -> ROCDisplay:
        """Compute the ROC curve of mated (n,) and non-mated (m,) scores and plot it."""
        counts = metrics.ScoreCounts.from_scores(mated, nonmated)
        c = counts.error_curve().thin(max_points)
        return cls(fmr=c.fmr, tmr=c.tmr, thresholds=c.thresholds, name=name, auc=counts.auc()).plot(ax=ax, **kwargs)

    @classmethod
    def from_report(
        cls, report: metrics.VerificationReport, *, name: str | None = None, ax: Any = None, **kwargs: Any
    ) -> ROCDisplay:
        """Plot the ROC curve stored (thinned) in a VerificationReport."""
        c = report.det
        return cls(fmr=c.fmr, tmr=c.tmr, thresholds=c.thresholds, name=name, auc=report.auc).plot(ax=ax, **kwargs)

    def plot(self, ax: Any = None, *, name: str | None = None, log_fmr: bool = True, **kwargs: Any) -> ROCDisplay:
        """Draw on ``ax`` (a new figure when None); ``kwargs`` go to ``ax.plot``."""
        self.figure_, self.ax_ = _new_axes(ax)
        name = self.name if name is None else name
        label = name
        if self.auc is not None:
            label = f"{name} (AUC = {self.auc:.4f})" if name else f"AUC = {self.auc:.4f}"
        line_kwargs = {"label": label} if label else {}
        line_kwargs.update(kwargs)
        ok = self.fmr > 0 if log_fmr else np.ones(self.fmr.shape, bool)
        (self.line_,) = self.ax_.plot(self.fmr[ok], self.tmr[ok], **line_kwargs)
        if log_fmr:
            self.ax_.set_xscale("log")
        self.ax_.set_ylim(0.0, 1.0)
        self.ax_.set_xlabel("False match rate (FMR)")
        self.ax_.set_ylabel("True match rate (1 − FNMR)")
        self.ax_.grid(True, alpha=0.3)
        if label:
            self.ax_.legend(loc="lower right")
        return self


class ScoreHistogramDisplay:
    """Histograms of mated and non-mated scores, optionally with a threshold line.

    ``edges`` (B+1,), ``mated_hist`` and ``nonmated_hist`` (B,) densities (each integrates to 1).
    After ``plot()``: ``mated_patch_``, ``nonmated_patch_``, ``threshold_line_`` (or None),
    ``ax_``, ``figure_``.
    """

    def __init__(
        self,
        *,
        edges: npt.ArrayLike,
        mated_hist: npt.ArrayLike,
        nonmated_hist: npt.ArrayLike,
        threshold: float | None = None,
        name: str | None = None,
    ) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.mated_hist = np.asarray(mated_hist, dtype=np.float64)
        self.nonmated_hist = np.asarray(nonmated_hist, dtype=np.float64)
        if not (self.edges.size == self.mated_hist.size + 1 == self.nonmated_hist.size + 1):
            raise ConfigurationError("need B+1 edges and B values per histogram")
        self.threshold = threshold
        self.name = name

    @classmethod
    def _build(
        cls,
        values: npt.NDArray[np.float64],
        wm: npt.ArrayLike,
        wn: npt.ArrayLike,
        bins: int,
        threshold: float | None,
        name: str | None,
    ) -> ScoreHistogramDisplay:
        if bins < 1:
            raise ConfigurationError(f"bins must be >= 1, got {bins}")
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        hm, _ = np.histogram(values, edges, weights=wm, density=True)
        hn, _ = np.histogram(values, edges, weights=wn, density=True)
        return cls(edges=edges, mated_hist=hm, nonmated_hist=hn, threshold=threshold, name=name)

    @classmethod
    def from_scores(
        cls,
        mated: npt.ArrayLike,
        nonmated: npt.ArrayLike,
        *,
        threshold: float | None = None,
        bins: int = 100,
        name: str | None = None,
        ax: Any = None,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        """Histogram mated (n,) and non-mated (m,) scores on shared bins and plot them."""
        c = metrics.ScoreCounts.from_scores(mated, nonmated)
        return cls._build(c.values, c.mated, c.nonmated, bins, threshold, name).plot(ax=ax, **kwargs)

    @classmethod
    def from_report(
        cls,
        counts: metrics.ScoreCounts,
        *,
        threshold: float | None = None,
        bins: int = 100,
        name: str | None = None,
        ax: Any = None,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        """Histogram from exact :class:`~faceprint.evaluation.metrics.ScoreCounts` (e.g. accumulated)."""
        counts._require()
        return cls._build(counts.values, counts.mated, counts.nonmated, bins, threshold, name).plot(ax=ax, **kwargs)

    def plot(
        self, ax: Any = None, *, name: str | None = None, log: bool = False, **kwargs: Any
    ) -> ScoreHistogramDisplay:
        """Draw step histograms on ``ax``; ``log`` puts densities on a log scale."""
        self.figure_, self.ax_ = _new_axes(ax)
        name = self.name if name is None else name
        e = self.edges
        self.mated_patch_ = self.ax_.stairs(self.mated_hist, e, label="mated", **kwargs)
        self.nonmated_patch_ = self.ax_.stairs(self.nonmated_hist, e, label="non-mated", **kwargs)
        self.threshold_line_ = None
        if self.threshold is not None:
            self.threshold_line_ = self.ax_.axvline(
                self.threshold, color="k", linestyle="--", label=f"threshold {self.threshold:.4g}"
            )
        if log:
            self.ax_.set_yscale("log")
        self.ax_.set_xlabel("Score")
        self.ax_.set_ylabel("Density")
        if name:
            self.ax_.set_title(name)
        self.ax_.legend()
        return self


class CMCDisplay:
    """Cumulative match characteristic: identification rate vs rank (closed set).

    After ``plot()``: ``line_``, ``ax_``, ``figure_``.
    """

    def __init__(self, *, ranks: npt.ArrayLike, rates: npt.ArrayLike, name: str | None = None) -> None:
        self.ranks = np.asarray(ranks)
        self.rates = np.asarray(rates, dtype=np.float64)
        if self.ranks.shape != self.rates.shape or self.ranks.ndim != 1:
            raise ConfigurationError("ranks and rates must be 1-D of equal length")
        self.name = name

    @classmethod
    def from_scores(
        cls,
        scores: npt.ArrayLike,
        probe_ids: npt.ArrayLike,
        gallery_ids: npt.ArrayLike,
        *,
        max_rank: int | None = 20,
        name: str | None = None,
        ax: Any = None,
        **kwargs: Any,
    ) -> CMCDisplay:
        """CMC of a (P, G) score matrix with probe (P,) and gallery (G,) identity labels."""
        r = metrics.cmc(scores, probe_ids, gallery_ids, max_rank=max_rank)
        return cls(ranks=r.ranks, rates=r.rates, name=name).plot(ax=ax, **kwargs)

    @classmethod
    def from_report(
        cls, result: metrics.CMCResult, *, name: str | None = None, ax: Any = None, **kwargs: Any
    ) -> CMCDisplay:
        """Plot a :class:`~faceprint.evaluation.metrics.CMCResult`."""
        return cls(ranks=result.ranks, rates=result.rates, name=name).plot(ax=ax, **kwargs)

    def plot(self, ax: Any = None, *, name: str | None = None, **kwargs: Any) -> CMCDisplay:
        self.figure_, self.ax_ = _new_axes(ax)
        name = self.name if name is None else name
        line_kwargs: dict[str, Any] = {"marker": "o", "markersize": 3}
        if name:
            line_kwargs["label"] = name
        line_kwargs.update(kwargs)
        (self.line_,) = self.ax_.plot(self.ranks, self.rates, **line_kwargs)
        self.ax_.set_xlabel("Rank")
        self.ax_.set_ylabel("Identification rate")
        self.ax_.set_ylim(0.0, 1.0)
        self.ax_.grid(True, alpha=0.3)
        if name:
            self.ax_.legend(loc="lower right")
        return self


class GroupBarDisplay:
    """Per-group FMR and FNMR at one threshold as grouped bars (values in %).

    After ``plot()``: ``fmr_bars_``, ``fnmr_bars_``, ``ax_``, ``figure_``.
    """

    def __init__(
        self,
        *,
        groups: Any,
        fmr: npt.ArrayLike,
        fnmr: npt.ArrayLike,
        threshold: float | None = None,
        name: str | None = None,
    ) -> None:
        self.groups = [str(g) for g in groups]
        self.fmr = np.asarray(fmr, dtype=np.float64)
        self.fnmr = np.asarray(fnmr, dtype=np.float64)
        if not (len(self.groups) == self.fmr.size == self.fnmr.size):
            raise ConfigurationError("need one FMR and one FNMR per group")
        self.threshold = threshold
        self.name = name

    @classmethod
    def from_scores(
        cls,
        scores: npt.ArrayLike,
        mated: npt.ArrayLike,
        threshold: float,
        groups: npt.ArrayLike,
        groups_b: npt.ArrayLike | None = None,
        *,
        cross: str = "exclude",
        name: str | None = None,
        ax: Any = None,
        **kwargs: Any,
    ) -> GroupBarDisplay:
        """Per-group rates (see :func:`~faceprint.evaluation.fairness.group_error_rates`) and plot them."""
        r = group_error_rates(scores, mated, threshold, groups, groups_b, cross=cross)  # type: ignore[arg-type]
        return cls.from_report(r, name=name, ax=ax, **kwargs)

    @classmethod
    def from_report(
        cls, rates: GroupErrorRates, *, name: str | None = None, ax: Any = None, **kwargs: Any
    ) -> GroupBarDisplay:
        """Plot a :class:`~faceprint.evaluation.fairness.GroupErrorRates`."""
        return cls(groups=rates.groups, fmr=rates.fmr, fnmr=rates.fnmr, threshold=rates.threshold, name=name).plot(
            ax=ax, **kwargs
        )

    def plot(self, ax: Any = None, *, name: str | None = None, log: bool = False, **kwargs: Any) -> GroupBarDisplay:
        """Draw FMR and FNMR bars per group; ``log`` for a log y axis (zero rates then vanish)."""
        self.figure_, self.ax_ = _new_axes(ax)
        name = self.name if name is None else name
        x = np.arange(len(self.groups))
        w = 0.4
        self.fmr_bars_ = self.ax_.bar(x - w / 2, 100 * np.nan_to_num(self.fmr), w, label="FMR", **kwargs)
        self.fnmr_bars_ = self.ax_.bar(x + w / 2, 100 * np.nan_to_num(self.fnmr), w, label="FNMR", **kwargs)
        self.ax_.set_xticks(x)
        self.ax_.set_xticklabels(self.groups)
        self.ax_.set_ylabel("Error rate (%)")
        if log:
            self.ax_.set_yscale("log")
        title = name or ""
        if self.threshold is not None:
            title = f"{title} (threshold {self.threshold:.4g})" if title else f"threshold {self.threshold:.4g}"
        if title:
            self.ax_.set_title(title)
        self.ax_.legend()
        return self
