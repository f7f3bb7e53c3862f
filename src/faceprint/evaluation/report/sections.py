"""The sections of report.md / report.html, each a function that adds its blocks to a :class:`Document`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..metrics import VerificationReport
from ..results import CANDIDATES_PER_PROBE, Accuracy, EvaluationResult, FailureCounts
from .document import Document
from .format import ci, fmr_label, num, pct
from .headline_rows import headline
from .quality_section import quality_section

__all__ = ["results_sections", "reproduce_sections"]

_FNMR_HEADER = ["target FMR", "FNMR", "95% CI", "threshold", "achieved FMR", "CI method / reason"]


def results_sections(doc: Document, result: EvaluationResult) -> list[dict[str, str]]:
    """Title, headline, score sets, FNMR@FMR, k-fold, failures, groups, identification; returns the headline."""
    rows = headline(result)
    doc.h(1, f"Evaluation report: {result.protocol}")
    doc.p(
        f"{result.kind.capitalize()} evaluation of {result.model or 'an external system (score file)'} on "
        f"{result.protocol}, {result.provenance.get('created', '')}. Numbers below are also in metrics.json."
    )
    doc.h(2, "Headline")
    doc.table(["metric", "value", "95% CI", "note"], [[r["metric"], r["value"], r["ci"], r["note"]] for r in rows])
    if result.threshold is not None:
        doc.p(f"Decision threshold {num(result.threshold.value)}: {result.threshold.description}.")
    _verification(doc, result)
    if result.kfold is not None:
        k = result.kfold
        doc.h(2, "k-fold accuracy")
        folds = zip(k.folds.tolist(), k.accuracies, k.thresholds, strict=True)
        doc.table(["fold", "accuracy", "threshold"], [[str(fid), pct(a, 2), num(t)] for fid, a, t in folds])
    _failures(doc, result.failures)
    _fairness(doc, result)
    _identification(doc, result)
    quality_section(doc, result)
    return rows


def _fnmr_rows(rep: VerificationReport) -> list[list[str]]:
    rows = []
    for p in rep.fnmr_at_fmr:
        if p.fnmr is None:
            rows.append([fmr_label(p.target_fmr), "not reported", "", "", "", p.reason or ""])
        else:
            rows.append(
                [fmr_label(p.target_fmr), pct(p.fnmr), ci(p.ci), num(p.threshold), pct(p.fmr, 4), p.ci_method or ""]
            )
    return rows


def _set_row(name: str, rep: VerificationReport, f: FailureCounts, acc: Accuracy | None) -> list[str]:
    return [
        name,
        f"{rep.n_mated:,}",
        f"{rep.n_nonmated:,}",
        f"{f.failed:,}",
        f"{pct(rep.eer.eer)} {ci(rep.eer.ci)}".strip(),
        f"{rep.auc:.6f}",
        pct(acc.value, 2) if acc is not None else "n/a",
    ]


def _verification(doc: Document, result: EvaluationResult) -> None:
    rep = result.verification
    if rep is None:
        return
    c = result.calibration
    if c is not None:
        doc.h(2, "Score sets")
        doc.p(
            f"The decision threshold is chosen on {c.name} and applied to {result.protocol}; the headline "
            f"metrics are those of {result.protocol}."
        )
        doc.table(
            ["score set", "mated", "non-mated", "failed", "EER [CI]", "AUC", "accuracy at threshold"],
            [
                _set_row(f"{c.name} (calibration)", c.verification, c.failures, c.accuracy),
                _set_row(f"{result.protocol} (reported)", rep, result.failures, result.accuracy),
            ],
        )
    doc.h(2, "FNMR at each FMR target")
    doc.p(
        "The threshold for each target is the lowest one whose FMR on these non-mated scores is at most the "
        "target; a target needs at least 3/FMR non-mated comparisons (rule of three), otherwise it is not "
        f"reported. EER method: {rep.eer.method}."
    )
    doc.table(_FNMR_HEADER, _fnmr_rows(rep))
    if c is not None:
        doc.p(f"Same table on {c.name}:")
        doc.table(_FNMR_HEADER, _fnmr_rows(c.verification))


def _failures(doc: Document, f: FailureCounts) -> None:
    doc.h(2, "Failures to acquire and enrol")
    frows = [
        ["attempted comparisons", f"{f.comparisons:,}"],
        ["scored comparisons", f"{f.scored:,}"],
        ["failed mated comparisons", f"{f.failed_mated:,}"],
        ["failed non-mated comparisons", f"{f.failed_nonmated:,}"],
    ]
    if f.images is not None:
        frows += [
            ["images", f"{f.images:,}"],
            ["images acquired", f"{f.images_acquired:,}"],
            ["images without a face", f"{f.images_no_face:,}"],
            ["images that could not be read", f"{f.images_error:,}"],
        ]
    if f.templates is not None:
        frows.append(["templates without an acquired image", f"{f.templates_failed:,} of {f.templates:,}"])
    if f.probes is not None:
        frows += [
            [f"FTA: failed probe {f.unit}s", f"{f.probes_failed:,} of {f.probes:,} ({pct(f.fta_rate, 2)})"],
            [
                f"FTE: failed reference {f.unit}s",
                f"{f.references_failed:,} of {f.references:,} ({pct(f.fte_rate, 2)})",
            ],
        ]
    doc.table(["", "count"], frows)
    doc.p(
        "A comparison with a failed side has no score (nan in scores.csv). It is left out of the error curves, "
        "EER and FNMR@FMR (algorithm-level), and counted as a non-match in the accuracy and the system-level "
        "FMR/FNMR (ISO/IEC 19795-1). Per-side (probe/reference) counts are given only when the two sides are "
        "disjoint sets of images or templates."
    )


def _fairness(doc: Document, result: EvaluationResult) -> None:
    fr = result.fairness
    if fr is None:
        return
    doc.h(2, "Per-group error rates")
    fm_ci, fn_ci = fr.confidence_intervals()
    doc.table(
        ["group", "mated", "non-mated", "FMR", "FMR 95% CI", "FNMR", "FNMR 95% CI"],
        [
            [
                str(g),
                f"{int(fr.n_mated[j]):,}",
                f"{int(fr.n_nonmated[j]):,}",
                pct(float(fr.fmr[j])),
                ci(fm_ci[j].tolist()) if np.isfinite(fm_ci[j]).all() else "",
                pct(float(fr.fnmr[j])),
                ci(fn_ci[j].tolist()) if np.isfinite(fn_ci[j]).all() else "",
            ]
            for j, g in enumerate(fr.groups)
        ],
    )
    fd = fr.to_dict()
    doc.p(
        f"At threshold {num(fr.threshold)}; {fr.n_excluded:,} scored pairs across two groups are left out. "
        f"FMR max/min {num(fd['fmr_ratio'], 2)}, FNMR max/min {num(fd['fnmr_ratio'], 2)}, "
        f"FDR {num(fd['fdr'])}, GARBE {num(fd['garbe'])} (alpha {fd['alpha']})."
    )
    _groups_note(doc, result.provenance.get("groups") or {})


def _groups_note(doc: Document, info: dict[str, Any]) -> None:
    """Where the groups came from (``eval run --labels`` / ``--groups`` / ``--impostors``)."""
    from ..groups import describe_groups

    for sentence in describe_groups(info):
        doc.p(sentence)


def _identification(doc: Document, result: EvaluationResult) -> None:
    if result.identification is None:
        return
    doc.h(2, "Identification")
    doc.table(
        ["gallery", "probes (mated / non-mated)", "failed probes", "gallery", "failed gallery", "rank-1", "rank-5"],
        [
            [
                g.gallery,
                f"{g.n_mated_probes:,} / {g.n_nonmated_probes:,}",
                f"{g.probes_failed:,}",
                f"{g.gallery_size:,}",
                f"{g.gallery_failed:,}",
                pct(g.cmc.rate_at(1), 2) if g.cmc else "n/a",
                pct(g.cmc.rate_at(5), 2) if g.cmc else "n/a",
            ]
            for g in result.identification.galleries.values()
        ],
    )
    doc.p(
        f"scores.csv holds, for every probe and gallery, the top {CANDIDATES_PER_PROBE} candidates and the mates "
        "(column group = gallery)."
    )


def reproduce_sections(doc: Document, result: EvaluationResult, command: str, files: Sequence[str]) -> None:
    """Command and settings, models, dataset, software and the list of files."""
    doc.h(2, "Reproduce")
    doc.p("Command:")
    doc.code(command)
    doc.p("Pipeline settings (everything that changes an embedding):")
    doc.code(json.dumps(result.settings, indent=2, sort_keys=True, default=str))
    ex = result.provenance.get("execution")
    if ex:
        doc.p("Execution:")
        doc.code(json.dumps(ex, indent=2, default=str))
    _models(doc, result.provenance.get("models", {}))
    _dataset(doc, result.provenance)
    doc.h(2, "Software")
    doc.table(["", "version"], [[k, str(v)] for k, v in result.provenance.get("software", {}).items()])
    doc.h(2, "Files")
    doc.p(", ".join(sorted([*files, "report.md", "report.html"])))


def _models(doc: Document, mi: dict[str, Any]) -> None:
    doc.h(2, "Models")
    det_text = mi.get("detector_backend") or (
        f"none: images prealigned to {mi['prealigned']}" if mi.get("prealigned") else "n/a"
    )
    mrows = [
        ["embedding model", str(mi.get("embedding_model") or "n/a (score file)")],
        ["embedder backend", str(mi.get("embedder_backend") or "n/a")],
        ["detector backend", str(det_text)],
    ]
    for m in mi.get("manifest", []):
        label = f"{m['name']} v{m['version']} ({m['kind']})"
        if not m["files"]:
            mrows.append([label, "built into the library (no model file)"])
        for fl in m["files"]:
            mrows.append([label, f"{fl['filename']}, sha256 {fl['sha256']}"])
    doc.table(["", ""], mrows)


def _dataset(doc: Document, provenance: dict[str, Any]) -> None:
    doc.h(2, "Dataset")
    ds = provenance.get("dataset", {})
    src = provenance.get("protocol_source")
    if src:
        doc.p(f"Protocol: {src['description']} (--protocol {src['kind']} --data {src['data']}).")
    drows = [[str(x["path"]), x["sha256"], f"{x['bytes']:,}"] for x in ds.get("files", [])]
    if drows:
        doc.table(["protocol file", "sha256", "bytes"], drows)
    else:
        doc.p("No protocol file: the comparisons were generated from the image folder.")
    im = ds.get("images")
    if im:
        doc.p(
            f"Image list: {im['count']:,} images ({im['missing']} missing), digest {im['sha256']}. "
            f"Method: {im['description']}."
        )
