"""The headline table of a report: one row per figure a reader looks for first."""

from __future__ import annotations

from collections.abc import Callable

from ..results import EvaluationResult
from .format import ci, fmr_label, num, pct

__all__ = ["headline"]

_Add = Callable[..., None]


def headline(result: EvaluationResult) -> list[dict[str, str]]:
    """The headline table rows ``{"metric", "value", "ci", "note"}``, as report.md shows them."""
    rows: list[dict[str, str]] = []

    def add(metric: str, value: str, interval: str = "", note: str = "") -> None:
        rows.append({"metric": metric, "value": value, "ci": interval, "note": note})

    _verification_rows(result, add)
    _accuracy_rows(result, add)
    _selection_row(result, add)
    _failure_rows(result, add)
    _system_and_fairness_rows(result, add)
    _identification_rows(result, add)
    if result.timing.get("total_s") is not None:
        t = result.timing
        add(
            "Time",
            f"{t['total_s']:.1f} s",
            "",
            f"embedding {t.get('embedding_s', 0):.1f} s, scoring {t.get('scoring_s', 0):.1f} s, "
            f"metrics {t.get('metrics_s', 0):.1f} s",
        )
    return rows


def _verification_rows(result: EvaluationResult, add: _Add) -> None:
    rep = result.verification
    if rep is None:
        return
    f = result.failures
    add(
        "Comparisons",
        f"{rep.n_mated:,} mated + {rep.n_nonmated:,} non-mated",
        "",
        f"scored, of {f.comparisons:,} attempted ({f.failed:,} with a side that failed to acquire)",
    )
    e = rep.eer
    add(
        "EER",
        pct(e.eer),
        ci(e.ci),
        f"at threshold {num(e.threshold)}"
        + (f"; CI: {e.ci_method}" if e.ci is not None else "; no CI: " + (e.ci_method or "not computed")),
    )
    for p in rep.fnmr_at_fmr:
        if p.fnmr is None:
            add(f"FNMR @ FMR={fmr_label(p.target_fmr)}", "not reported", "", p.reason or "")
        else:
            add(
                f"FNMR @ FMR={fmr_label(p.target_fmr)}",
                pct(p.fnmr),
                ci(p.ci),
                f"threshold {num(p.threshold)}, achieved FMR {pct(p.fmr, 4)}",
            )
    add("AUC", f"{rep.auc:.6f}", "", "area under the ROC curve")


def _accuracy_rows(result: EvaluationResult, add: _Add) -> None:
    if result.kfold is not None:
        k = result.kfold
        add(
            f"Accuracy ({len(k.accuracies)}-fold)",
            f"{pct(k.mean, 2)} ± {pct(k.std, 2)}",
            "",
            "mean ± std (ddof=0) over folds, threshold of best accuracy on the other folds; "
            "failed comparisons count as non-matches",
        )
    if result.accuracy is not None and result.threshold is not None:
        a = result.accuracy
        add(
            "Accuracy at the decision threshold",
            pct(a.value, 2),
            "",
            f"{a.n_correct:,} of {a.n:,} correct at {num(a.threshold)}, the decision threshold "
            f"({result.threshold.source}; see below); {pct(a.comparison_value, 2)} over scored comparisons only",
        )


def _failure_rows(result: EvaluationResult, add: _Add) -> None:
    """Failures per image (when known) and per comparison, each adding up to its total."""
    f = result.failures
    if f.images is not None:
        add(
            "FTA (images)",
            f"{f.images_failed:,} of {f.images:,} images",
            "",
            f"{pct(f.image_fta_rate, 2)}; {f.images_no_face:,} without a face + {f.images_error:,} unreadable; "
            f"{f.images_acquired:,} acquired",
        )
    if f.templates is not None:
        add("FTA (templates)", f"{f.templates_failed:,} of {f.templates:,} templates", "", "no image acquired")
    if f.probes is not None:  # only when references and probes are two disjoint sets
        add("FTA (probes)", f"{f.probes_failed:,} of {f.probes:,} {f.unit}s", "", pct(f.fta_rate, 2))
        add("FTE (references)", f"{f.references_failed:,} of {f.references:,} {f.unit}s", "", pct(f.fte_rate, 2))
    note = f"{f.failed_mated:,} mated + {f.failed_nonmated:,} non-mated; {f.scored:,} scored"
    if f.images is None:
        note += " (NaN scores in the score file)"
    add("Failed comparisons", f"{f.failed:,} of {f.comparisons:,}", "", note)


def _selection_row(result: EvaluationResult, add: _Add) -> None:
    sel = result.provenance.get("face_selection")
    if sel:
        add("Face selection", str(sel["select"]), "", str(sel["description"]))


def _system_and_fairness_rows(result: EvaluationResult, add: _Add) -> None:
    if result.system is not None:
        s = result.system
        add(
            "System FMR / FNMR",
            f"{pct(s.fmr)} / {pct(s.fnmr)}",
            "",
            f"at {num(s.threshold)}, failures counted as non-matches (ISO/IEC 19795-1); comparison-level "
            f"{pct(s.comparison_fmr)} / {pct(s.comparison_fnmr)}",
        )
    if result.fairness is not None:
        d = result.fairness.to_dict()
        add(
            "Fairness (FDR / GARBE)",
            f"{num(d['fdr'])} / {num(d['garbe'])}" if d["fdr"] is not None else "n/a",
            "",
            f"over {len(result.fairness.groups)} groups at {num(result.fairness.threshold)}; "
            "FDR 1 and GARBE 0 are fair",
        )


def _identification_rows(result: EvaluationResult, add: _Add) -> None:
    if result.identification is None:
        return
    for g in result.identification.galleries.values():
        if g.cmc is not None:
            add(
                f"Rank-1 / rank-5 ({g.gallery})",
                f"{pct(g.cmc.rate_at(1), 2)} / {pct(g.cmc.rate_at(5), 2)}",
                "",
                f"closed set over {g.cmc.n_probes:,} mated probes",
            )
        for q in g.fnir_at_fpir:
            add(
                f"FNIR @ FPIR={fmr_label(q.target_fpir)} ({g.gallery})",
                pct(q.fnir) if q.fnir is not None else "not reported",
                "",
                q.reason or f"threshold {num(q.threshold)}",
            )
