"""Quality of a protocol's images, and the EDC of an evaluation (``faceprint eval run --quality``).

Data flow::

    protocol images ──image_qualities (faceprint.batch, any executor)──▶ {key: QualityReport | None}
    EvaluationResult.scores + qualities ──evaluation_edc──▶ EDCReport (unified score, every component)

The qualities come from a second, detection-only pass over the images with the same detector
and face selection as the embeddings (quality assessment does not change the embeddings, so the
embedding cache is not involved).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from ..errors import ConfigurationError, FaceprintError
from ..io import ImageSource
from ..types import QualityReport
from .edc import DEFAULT_LIMIT, EDCReport, edc_report
from .pipeline_settings import worker_settings
from .protocols import ImageRef, VerificationProtocol
from .results import EvaluationResult

__all__ = ["image_qualities", "evaluation_edc", "add_quality", "UNIFIED"]

#: the measure name of the unified score in an EDC report
UNIFIED = "unified"


def _assess_task(pipe: Any, sources: list[ImageSource], select: str) -> list[QualityReport | None]:
    """Batch task: the quality of each source's selected face (None: no face, or the image failed)."""
    out: list[QualityReport | None] = []
    for src in sources:
        try:
            faces = pipe.assess_quality(src, select=select)
        except FaceprintError:
            out.append(None)
            continue
        out.append(faces[0].quality if faces else None)
    return out


def image_qualities(
    images: Sequence[ImageRef],
    pipeline_settings: Mapping[str, Any] | None = None,
    *,
    quality: str = "fiqa",
    quality_options: Mapping[str, Any] | None = None,
    select: str = "largest",
    workers: int | None = None,
    dask: Any = None,
    progress: Any = None,
    chunk_size: int = 16,
) -> dict[str, QualityReport | None]:
    """Image key → the quality of its selected face (``"largest"`` or ``"central"``), None without one.

    ``pipeline_settings`` are the evaluation's FacePipeline settings (detector, …); the
    assessor ``quality`` is added. Runs on :mod:`faceprint.batch` (``workers`` processes or Dask).
    """
    from .. import batch

    if select not in ("largest", "central"):
        raise ConfigurationError(f"select must be 'largest' or 'central', got {select!r}")
    settings = worker_settings(dict(pipeline_settings or {}))
    settings.update(quality=quality, quality_options=dict(quality_options or {}))
    executor = batch.executor_for(workers, dask)
    local = isinstance(executor, batch.InProcess)
    sources = (r.source if local else batch.portable(r.source) for r in images)
    out: dict[str, QualityReport | None] = {}
    keys = iter(r.key for r in images)
    task = partial(_assess_task, select=select)
    for _chunk, results in batch.run_chunks(
        settings, task, sources, executor=executor, chunk_size=chunk_size, progress=progress, total=len(images)
    ):
        for r in results:
            out[next(keys)] = r
    return out


def _measures(qualities: Mapping[str, QualityReport | None]) -> list[str]:
    names: dict[str, None] = {}
    for r in qualities.values():
        if r is not None:
            names.update(dict.fromkeys(r.components))
    return [UNIFIED, *names]


def _value(report: QualityReport | None, measure: str) -> float:
    if report is None:
        return float("nan")
    if measure == UNIFIED:
        return report.quality
    c = report.components.get(measure)
    return float("nan") if c is None else c.quality


def evaluation_edc(
    result: EvaluationResult,
    qualities: Mapping[str, QualityReport | None],
    *,
    fmr_target: float | None = 1e-3,
    threshold: float | None = None,
    limit: float = DEFAULT_LIMIT,
) -> EDCReport:
    """The EDC of the unified score and of every component over ``result``'s comparisons.

    Comparisons are matched to qualities by image key (the score file's probe and reference);
    template comparisons (IJB) have no image quality and are refused.
    """
    t = result.scores
    sides = (t.reference, t.probe)
    if any(str(k).startswith("template:") for side in sides for k in side[:1]):
        raise ConfigurationError("an EDC needs image-to-image comparisons; this protocol compares templates")
    qs = {
        m: (
            np.array([_value(qualities.get(str(k)), m) for k in t.reference]),
            np.array([_value(qualities.get(str(k)), m) for k in t.probe]),
        )
        for m in _measures(qualities)
    }
    return edc_report(t.score, t.mated, qs, fmr_target=fmr_target, threshold=threshold, limit=limit)


def add_quality(
    result: EvaluationResult,
    protocol: VerificationProtocol,
    pipeline_settings: Mapping[str, Any] | None = None,
    *,
    quality: str = "fiqa",
    select: str | None = None,
    fmr_target: float | None = 1e-3,
    workers: int | None = None,
    dask: Any = None,
    progress: Any = None,
) -> EvaluationResult:
    """``result`` with its EDC (``result.quality``): the protocol's images assessed with ``quality``.

    ``select`` as for :func:`~.runner.run_protocol` (None: the protocol's own face selection).
    Verification protocols of images only: not IJB templates, not pre-aligned crops.
    """
    from .runner import face_selection

    if result.verification is None or not isinstance(protocol, VerificationProtocol):
        raise ConfigurationError("--quality needs a verification protocol (the EDC is about false non-matches)")
    if protocol.prealigned is not None or protocol.templates is not None:
        raise ConfigurationError("--quality needs protocols of photographs with faces to detect, not aligned crops")
    sel = face_selection(protocol, select)["select"]
    quals = image_qualities(
        protocol.images, pipeline_settings, quality=quality, select=sel, workers=workers, dask=dask, progress=progress
    )
    edc = evaluation_edc(result, quals, fmr_target=fmr_target)
    provenance = {**result.provenance, "quality": {"assessor": quality, "select": sel, "images": len(quals)}}
    return dataclasses.replace(result, quality=edc, provenance=provenance)
