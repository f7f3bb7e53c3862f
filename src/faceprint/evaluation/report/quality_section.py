"""The report's quality section (``eval run --quality``): EDC table and figure (ISO/IEC 29794-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..edc import EDCDisplay, EDCReport
from ..results import EvaluationResult
from .document import Document
from .format import num, pct

__all__ = ["quality_section", "quality_figure"]

#: components drawn beside the unified score in the EDC figure (the table lists all of them)
_FIGURE_CURVES = 5


def quality_section(doc: Document, result: EvaluationResult) -> None:
    """EDC summary: pAUC (0-20 % discarded, / starting FNMR) of the unified score, each component, ideal."""
    rep: EDCReport | None = result.quality
    if rep is None:
        return
    doc.h(2, "Quality: error versus discard (EDC)")
    target = f" (FMR target {rep.fmr_target:g} on this protocol's non-mated scores)" if rep.fmr_target else ""
    doc.p(
        f"Mated comparisons are discarded in increasing pair quality (the lower of the two images'); FNMR is "
        f"recomputed at the fixed threshold {num(rep.threshold)}{target}, starting at {pct(rep.fnmr0, 2)} on "
        f"{rep.ideal.n_mated:,} mated comparisons ({rep.excluded:,} left out: a side without a face). pAUC is "
        f"the area over 0-{rep.limit:.0%} discarded divided by the starting FNMR: random discarding scores "
        f"{rep.limit:g}, lower is better (ISO/IEC 29794-1:2024)."
    )
    rows = []

    def order(r: dict[str, Any]) -> tuple[bool, bool, float]:  # unified first, ideal last, components by pAUC
        return r["name"] == "ideal", r["name"] != "unified", r["pauc"] if r["pauc"] is not None else 9.0

    for r in sorted(rep.table(), key=order):
        ratio = "n/a" if r["ratio_to_random"] is None else f"{r['ratio_to_random']:.2f}×"
        p = "n/a" if r["pauc"] is None else f"{r['pauc']:.3f}"
        rows.append([r["name"], p, ratio, pct(r["fnmr_at_10pct"], 2), pct(r["fnmr_at_20pct"], 2)])
    doc.table(["quality measure", "pAUC", "vs random", "FNMR, 10 % discarded", "FNMR, 20 % discarded"], rows)
    for note in rep.notes:
        doc.p(f"Note: {note}.")


def quality_figure(result: EvaluationResult, plt: Any, save: Callable[[Any, str, str], None]) -> None:
    """edc.png: the unified score, the best components, ideal and random discarding."""
    rep = result.quality
    if rep is None:
        return
    others = sorted((c for n, c in rep.curves.items() if n != "unified" and c.fnmr0 > 0), key=lambda c: c.pauc())
    names = [n for n in ("unified",) if n in rep.curves] + [c.name for c in others[:_FIGURE_CURVES]]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    EDCDisplay.from_report(rep, measures=names, ax=ax, title=f"EDC: {result.protocol}")
    save(fig, "edc.png", "Error versus discard characteristic of the unified quality score and the best components")
