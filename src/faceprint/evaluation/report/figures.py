"""The report's figures (PNG), drawn with the Display classes of :mod:`..plots` (matplotlib inside)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import plots
from ..results import EvaluationResult
from .quality_section import quality_figure

__all__ = ["figures"]

#: (the PNG written, its caption)
Figure = tuple[Path, str]
_Save = Callable[[Any, str, str], None]


def figures(result: EvaluationResult, out: Path) -> list[Figure]:
    """Draw every figure the result calls for into ``out``; returns (path, caption) in report order."""
    plt = plots.pyplot()
    made: list[Figure] = []

    def save(fig: Any, name: str, caption: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append((path, caption))

    if result.verification is not None:
        _verification_figures(result, plt, save)
    if result.fairness is not None:
        fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(result.fairness.groups) + 2), 4.6))
        plots.GroupBarDisplay.from_report(result.fairness, name="per-group error rates", ax=ax)
        save(fig, "groups.png", "FMR and FNMR per group at the decision threshold")
    if result.identification is not None:
        _identification_figures(result, plt, save)
    quality_figure(result, plt, save)
    return made


def _verification_figures(result: EvaluationResult, plt: Any, save: _Save) -> None:
    """DET (with the decision threshold marked), ROC and score histograms, calibration set beside."""
    rep, cal, main_name = result.verification, result.calibration, result.protocol
    assert rep is not None
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    curves = []
    if cal is not None:
        name = f"{cal.name} (calibration)"
        curves.append(plots.DETDisplay.from_report(cal.verification, name=name, ax=ax, linestyle="--"))
    curves.append(plots.DETDisplay.from_report(rep, name=main_name, ax=ax))
    plots.DETDisplay.fit_axes(curves)
    if result.system is not None:
        s = result.system
        curves[-1].mark(s.comparison_fmr, s.comparison_fnmr, label=f"decision threshold {s.threshold:.4f}")
    ax.legend(loc="upper right")
    ax.set_title(f"DET: {main_name}")
    save(fig, "det.png", "DET curve (FNMR vs FMR on normal-deviate axes)")

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if cal is not None:
        plots.ROCDisplay.from_report(cal.verification, name=f"{cal.name} (calibration)", ax=ax, linestyle="--")
    plots.ROCDisplay.from_report(rep, name=main_name, ax=ax)
    ax.set_title(f"ROC: {main_name}")
    save(fig, "roc.png", "ROC curve (TMR vs FMR, log FMR axis)")

    thr = result.threshold.value if result.threshold is not None and math.isfinite(result.threshold.value) else None
    sets = ([(cal.name, cal.scores)] if cal is not None else []) + [(main_name, result.scores)]
    fig, axes = plt.subplots(1, len(sets), figsize=(6.4 * len(sets), 4.6), squeeze=False)
    for ax, (nm, tab) in zip(axes[0], sets, strict=True):
        plots.ScoreHistogramDisplay.from_scores(
            tab.mated_scores, tab.nonmated_scores, threshold=thr, name=nm, ax=ax, bins=60
        )
    save(fig, "scores.png", "Score distributions (mated vs non-mated) with the decision threshold")


def _identification_figures(result: EvaluationResult, plt: Any, save: _Save) -> None:
    """CMC per gallery, and FNIR vs FPIR (rank 1) on DET axes."""
    assert result.identification is not None
    galleries = list(result.identification.galleries.values())
    with_cmc = [(g.gallery, g.cmc) for g in galleries if g.cmc is not None]
    if with_cmc:
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for name, c in with_cmc:
            plots.CMCDisplay.from_report(c, name=name, ax=ax)
        ax.set_title(f"CMC: {result.protocol}")
        save(fig, "cmc.png", "Cumulative match characteristic (closed set)")
    open_set = [(g.gallery, g.open_set) for g in galleries if g.open_set is not None]
    if open_set:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        curves = [plots.DETDisplay(fmr=c.fpir, fnmr=c.fnir, name=name).plot(ax=ax) for name, c in open_set]
        plots.DETDisplay.fit_axes(curves)
        ax.set_xlabel("False positive identification rate (FPIR)")
        ax.set_ylabel("False negative identification rate (FNIR)")
        ax.set_title(f"FPIR / FNIR (rank 1): {result.protocol}")
        save(fig, "fpir_fnir.png", "Open-set FNIR vs FPIR at rank 1 (normal-deviate axes)")
