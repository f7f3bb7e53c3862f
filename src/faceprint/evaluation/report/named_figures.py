"""The figures of an evaluation, each named by what it is, headline first (``eval run --json``).

Names say what a figure measures and at which threshold: ``kfold_accuracy`` (mean over folds,
each fold's threshold chosen on the others), ``accuracy_at_fmr_1e-3`` (at the model's
threshold calibrated to FMR 10⁻³), ``accuracy_at_calibration_threshold`` (at the threshold
chosen on the protocol's calibration set, LFW View 1 DevTrain), ``fnmr_at_fmr_1e-4``,
``system_fnmr_at_fmr_1e-3``, ``rank1_G1``… The protocol's headline figure comes first:
k-fold accuracy when the protocol has folds (LFW View 2, InsightFace ``.bin``), accuracy at the
calibration threshold when it has a calibration set (LFW View 1), rank-1 for identification,
else the EER.
"""

from __future__ import annotations

import math
from typing import Any

from ..results import EvaluationResult
from .format import fmr_label

__all__ = ["summary", "headline_figure"]

#: how the accuracy at the decision threshold is named, by where the threshold came from
_AT_THRESHOLD = {
    "operating-point": "fmr_1e-3",
    "calibration": "calibration_threshold",
    "given": "given_threshold",
    "eer": "eer_threshold",
}


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _at_threshold(result: EvaluationResult) -> str:
    assert result.threshold is not None
    return _AT_THRESHOLD.get(result.threshold.source, "decision_threshold")


def headline_figure(result: EvaluationResult) -> tuple[str, float | None, str]:
    """(name, value, description) of the figure a reader of this protocol looks for first."""
    if result.kfold is not None:
        n = len(result.kfold.accuracies)
        return "kfold_accuracy", result.kfold.mean, f"{n}-fold accuracy (threshold chosen on the other folds)"
    if result.calibration is not None and result.accuracy is not None:
        return (
            "accuracy_at_calibration_threshold",
            result.accuracy.value,
            f"accuracy at the threshold of best accuracy on {result.calibration.name}",
        )
    if result.identification is not None:
        for g in result.identification.galleries.values():
            if g.cmc is not None:
                return f"rank1_{g.gallery}", g.cmc.rate_at(1), f"rank-1 identification rate, gallery {g.gallery}"
    rep = result.verification
    return "eer", None if rep is None else rep.eer.eer, "equal error rate"


def summary(result: EvaluationResult) -> dict[str, Any]:
    """Every figure of ``result`` by name (JSON-ready), the headline first."""
    name, value, description = headline_figure(result)
    out: dict[str, Any] = {"headline": {"name": name, "value": _f(value), "description": description}}
    out.update(protocol=result.protocol, model=result.model)
    if result.kfold is not None:
        out.update(kfold_accuracy=result.kfold.mean, kfold_accuracy_std=result.kfold.std)
        out["kfold_folds"] = len(result.kfold.accuracies)
    rep = result.verification
    if rep is not None:
        out.update(eer=rep.eer.eer, eer_threshold=rep.eer.threshold, auc=rep.auc)
        out["eer_ci"] = None if rep.eer.ci is None else list(rep.eer.ci)
        for p in rep.fnmr_at_fmr:
            out[f"fnmr_at_fmr_{fmr_label(p.target_fmr)}"] = p.fnmr
    if result.threshold is not None:
        at = _at_threshold(result)
        if result.accuracy is not None:
            out[f"accuracy_at_{at}"] = _f(result.accuracy.value)
        if result.system is not None:
            out[f"system_fmr_at_{at}"] = _f(result.system.fmr)
            out[f"system_fnmr_at_{at}"] = _f(result.system.fnmr)
        out["decision_threshold"] = result.threshold.to_dict()
    if result.identification is not None:
        for g in result.identification.galleries.values():
            if g.cmc is not None:
                out[f"rank1_{g.gallery}"] = g.cmc.rate_at(1)
                out[f"rank5_{g.gallery}"] = g.cmc.rate_at(5)
            for q in g.fnir_at_fpir:
                out[f"fnir_at_fpir_{fmr_label(q.target_fpir)}_{g.gallery}"] = q.fnir
    _counts(result, out)
    return out


def _counts(result: EvaluationResult, out: dict[str, Any]) -> None:
    f = result.failures
    out.update(comparisons=f.comparisons, failed_comparisons=f.failed, scored_comparisons=f.scored)
    if f.images is not None:
        out.update(images=f.images, images_failed=f.images_failed, image_fta_rate=f.image_fta_rate)
    sel = result.provenance.get("face_selection")
    if sel:
        out["face_selection"] = sel["select"]
    out["seconds"] = result.timing.get("total_s")
