"""Demographic differentials: per-group FMR and FNMR at one global threshold, and their summaries.

Every group is judged at the **same** threshold (the one the system is deployed with), as
ISO/IEC 19795-10 and NIST FRVT demographic reports do.

Which comparisons belong to a group: give ``groups`` (one label per comparison) when each
comparison already has a group; or ``groups`` and ``groups_b`` (the group of each side) when
pairs may cross groups. By default only **same-group** pairs are counted (``cross="exclude"``):
a non-mated pair of two different groups is not an impostor attempt against either group.
With ``cross="bucket"`` those pairs form an extra group (``cross_label``, default ``"cross"``)
that is reported but left out of the summary measures (ratios, FDR, GARBE), which compare
demographic groups only.

Summary measures (``a`` = FMRs of the groups, ``b`` = FNMRs):

* max/min ratios ``max(a) / min(a)`` and ``max(b) / min(b)`` (``inf`` when only the minimum is 0,
  1 when all are 0);
* Fairness Discrepancy Rate (de Freitas Pereira & Marcel, 2021)
  ``FDR = 1 − (α·max|a_i − a_j| + (1 − α)·max|b_i − b_j|)``, 1 = perfectly fair;
* GARBE (Howard et al., 2022) ``α·G(a) + (1 − α)·G(b)`` with the Gini coefficient and its
  small-sample correction ``G(x) = n/(n−1) · Σ_i Σ_j |x_i − x_j| / (2 n² mean(x))``,
  0 = perfectly fair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from .metrics import _bool_labels, _labels, _scores, clopper_pearson

__all__ = [
    "GroupErrorRates",
    "group_error_rates",
    "max_min_ratio",
    "fairness_discrepancy_rate",
    "gini",
    "garbe",
]


def _alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ConfigurationError(f"alpha must be in [0, 1], got {alpha}")
    return a


def _rates(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size < 2:
        raise ConfigurationError(f"{name}: at least 2 groups are needed to compare groups, got {a.size}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
        raise ConfigurationError(f"{name} must be rates in [0, 1] (no NaN); got {a.tolist()}")
    return a


def max_min_ratio(rates: npt.ArrayLike) -> float:
    """``max / min`` of per-group rates (G,): ``inf`` when only the minimum is 0, 1.0 when all are 0."""
    a = _rates(rates, "rates")
    hi, lo = float(a.max()), float(a.min())
    if lo == 0.0:
        return 1.0 if hi == 0.0 else math.inf
    return hi / lo


def fairness_discrepancy_rate(fmr: npt.ArrayLike, fnmr: npt.ArrayLike, alpha: float = 0.5) -> float:
    """FDR = 1 − (α·max_ij |FMR_i − FMR_j| + (1 − α)·max_ij |FNMR_i − FNMR_j|), in [0, 1]; 1 is fair.

    ``fmr`` and ``fnmr``: (G,) per-group rates at one threshold (de Freitas Pereira & Marcel 2021).
    """
    a, b = _rates(fmr, "fmr"), _rates(fnmr, "fnmr")
    w = _alpha(alpha)
    return float(1.0 - (w * (a.max() - a.min()) + (1.0 - w) * (b.max() - b.min())))


def gini(x: npt.ArrayLike, *, correction: bool = True) -> float:
    """Gini coefficient of non-negative values (G,), with the n/(n−1) small-sample correction.

    ``Σ_i Σ_j |x_i − x_j| / (2 n² mean)``, times ``n/(n−1)`` when ``correction``; 0 when all
    values are equal (including all 0).
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size < 2:
        raise ConfigurationError(f"the Gini coefficient needs at least 2 values, got {a.size}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ConfigurationError(f"the Gini coefficient needs finite non-negative values, got {a.tolist()}")
    n = a.size
    mean = a.mean()
    if mean == 0:
        return 0.0
    s = np.sort(a)
    # Σ_i Σ_j |x_i − x_j| = 2 Σ_k (2k − n + 1) s_k for sorted s (k from 0)
    total = 2.0 * float(np.dot(2 * np.arange(n) - n + 1, s))
    g = total / (2.0 * n * n * mean)
    return g * n / (n - 1) if correction else g


def garbe(fmr: npt.ArrayLike, fnmr: npt.ArrayLike, alpha: float = 0.5) -> float:
    """GARBE = α·Gini(FMR) + (1 − α)·Gini(FNMR) with the n/(n−1) correction; 0 is fair (Howard et al.)."""
    a, b = _rates(fmr, "fmr"), _rates(fnmr, "fnmr")
    w = _alpha(alpha)
    return float(w * gini(a) + (1.0 - w) * gini(b))


@dataclass(frozen=True, eq=False)
class GroupErrorRates:
    """Per-group FMR and FNMR at one threshold.

    ``groups`` (G,) labels (sorted; the cross bucket, if any, last); ``fmr``, ``fnmr`` (G,)
    float64 (NaN where a group has no comparisons of that kind); ``n_*`` (G,) int64 counts.
    ``cross_label`` names the cross-group bucket when ``cross="bucket"``, else None.
    """

    threshold: float
    groups: tuple[Any, ...]
    fmr: npt.NDArray[np.float64]
    fnmr: npt.NDArray[np.float64]
    n_mated: npt.NDArray[np.int64]
    n_nonmated: npt.NDArray[np.int64]
    n_false_match: npt.NDArray[np.int64]
    n_false_nonmatch: npt.NDArray[np.int64]
    cross_label: Any | None = None
    n_excluded: int = 0

    def _demographic(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """FMRs and FNMRs of the demographic groups that have comparisons of each kind."""
        keep = np.array([g != self.cross_label or self.cross_label is None for g in self.groups])
        a = self.fmr[keep & (self.n_nonmated > 0)]
        b = self.fnmr[keep & (self.n_mated > 0)]
        if a.size < 2 or b.size < 2:
            raise ConfigurationError(
                "fairness measures need at least 2 groups with both mated and non-mated comparisons; "
                f"have {a.size} groups with non-mated and {b.size} with mated comparisons"
            )
        return a, b

    def fmr_ratio(self) -> float:
        """max/min FMR over the demographic groups."""
        return max_min_ratio(self._demographic()[0])

    def fnmr_ratio(self) -> float:
        """max/min FNMR over the demographic groups."""
        return max_min_ratio(self._demographic()[1])

    def fdr(self, alpha: float = 0.5) -> float:
        """Fairness Discrepancy Rate over the demographic groups."""
        a, b = self._demographic()
        return fairness_discrepancy_rate(a, b, alpha)

    def garbe(self, alpha: float = 0.5) -> float:
        """GARBE over the demographic groups."""
        a, b = self._demographic()
        return garbe(a, b, alpha)

    def confidence_intervals(self, confidence: float = 0.95) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Clopper–Pearson intervals: ``(fmr_ci, fnmr_ci)``, each (G, 2), NaN for empty groups."""
        out = []
        for k, n in ((self.n_false_match, self.n_nonmated), (self.n_false_nonmatch, self.n_mated)):
            ci = np.full((len(self.groups), 2), np.nan)
            ok = n > 0
            if ok.any():
                lo, hi = clopper_pearson(k[ok], n[ok], confidence)
                ci[ok, 0], ci[ok, 1] = lo, hi
            out.append(ci)
        return out[0], out[1]

    def to_dict(self, *, alpha: float = 0.5) -> dict[str, Any]:
        """JSON-ready dict; summary measures are None when fewer than 2 groups qualify."""

        def f(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        d: dict[str, Any] = {
            "threshold": self.threshold,
            "cross_label": self.cross_label,
            "n_excluded": self.n_excluded,
            "groups": [
                {
                    "group": g if isinstance(g, (str, int, float, bool)) else str(g),
                    "fmr": f(self.fmr[j]),
                    "fnmr": f(self.fnmr[j]),
                    "n_mated": int(self.n_mated[j]),
                    "n_nonmated": int(self.n_nonmated[j]),
                    "n_false_match": int(self.n_false_match[j]),
                    "n_false_nonmatch": int(self.n_false_nonmatch[j]),
                }
                for j, g in enumerate(self.groups)
            ],
            "alpha": alpha,
        }
        try:
            d.update(
                fmr_ratio=f(self.fmr_ratio()),
                fnmr_ratio=f(self.fnmr_ratio()),
                fdr=self.fdr(alpha),
                garbe=self.garbe(alpha),
            )
        except ConfigurationError:
            d.update(fmr_ratio=None, fnmr_ratio=None, fdr=None, garbe=None)
        return d


def group_error_rates(
    scores: npt.ArrayLike,
    mated: npt.ArrayLike,
    threshold: float,
    groups: npt.ArrayLike,
    groups_b: npt.ArrayLike | None = None,
    *,
    cross: Literal["exclude", "bucket"] = "exclude",
    cross_label: Any = "cross",
) -> GroupErrorRates:
    """FMR and FNMR of each group at one global ``threshold`` (match when ``score >= threshold``).

    ``scores`` (n,), ``mated`` (n,) bool, ``groups`` (n,) the group of each comparison (or of
    its first side when ``groups_b`` (n,) gives the second). Pairs whose sides differ in group are
    excluded (``cross="exclude"``, default) or pooled into ``cross_label`` (``cross="bucket"``).
    """
    s = _scores(scores, "comparison")
    y = _bool_labels(mated, s.size, "mated")
    ga = _labels(groups, s.size, "groups")
    t = float(threshold)
    if math.isnan(t):
        raise ConfigurationError("threshold is NaN")
    if cross not in ("exclude", "bucket"):
        raise ConfigurationError(f"cross must be 'exclude' or 'bucket', got {cross!r}")
    same = np.ones(s.size, dtype=bool)
    if groups_b is not None:
        gb = _labels(groups_b, s.size, "groups_b")
        same = ga == gb
    labels, inv = np.unique(ga[same], return_inverse=True)
    if cross_label in set(labels.tolist()) and cross == "bucket" and not same.all():
        raise ConfigurationError(f"a group is already called {cross_label!r}; pass another cross_label")
    n_groups = labels.size
    code = np.full(s.size, -1, dtype=np.int64)
    code[same] = inv
    names: list[Any] = labels.tolist()
    n_excluded = int((~same).sum())
    use_cross = cross == "bucket" and n_excluded > 0
    if use_cross:
        code[~same] = n_groups
        n_groups += 1
        names.append(cross_label)
        n_excluded = 0
    if n_groups == 0:
        raise ConfigurationError("no same-group comparisons: check groups / groups_b, or use cross='bucket'")
    keep = code >= 0
    c, yy, ss = code[keep], y[keep], s[keep]
    n_m = np.bincount(c[yy], minlength=n_groups)
    n_n = np.bincount(c[~yy], minlength=n_groups)
    fnm = np.bincount(c[yy & (ss < t)], minlength=n_groups)
    fm = np.bincount(c[~yy & (ss >= t)], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        fmr = np.where(n_n > 0, fm / np.maximum(n_n, 1), np.nan)
        fnmr = np.where(n_m > 0, fnm / np.maximum(n_m, 1), np.nan)
    return GroupErrorRates(
        t,
        tuple(names),
        fmr,
        fnmr,
        n_m.astype(np.int64),
        n_n.astype(np.int64),
        fm.astype(np.int64),
        fnm.astype(np.int64),
        cross_label if use_cross else None,
        n_excluded,
    )
