"""The experiment runner: a protocol in, an :class:`~.results.EvaluationResult` out.

Data flow::

    protocol (+ calibration protocol) ──embed_images (cached)──▶ EmbeddingResults
        ──score_protocol / score_identification──▶ scores ──evaluate_scores / _identification──▶ result

:func:`run_protocol` is what ``faceprint eval run`` calls. The steps live in their own modules:
:mod:`.embedding` (images → embeddings, through the cache, here or on workers),
:mod:`.comparison` (embeddings → scores) and :mod:`.evaluate` (scores → metrics).

Before 0.2 this module also held the embedding and scoring functions; importing them from
here still works for one release (with a DeprecationWarning): import them from
:mod:`faceprint.evaluation` instead.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..rates import DEFAULT_FMR_TARGETS
from ..types import Embedding
from . import comparison as _comparison
from . import embedding as _embedding
from .cache import EmbeddingCache
from .evaluate import evaluate_identification, evaluate_scores
from .protocols import IdentificationProtocol, ImageRef, VerificationProtocol
from .provenance import ImageDigestMethod, file_entry, image_list_digest, model_provenance, software_versions
from .results import EvaluationResult, FailureCounts
from .scorefiles import ScoreTable

if TYPE_CHECKING:  # (not imported by name: the names of earlier releases resolve through __getattr__)
    from .embedding import EmbeddingResults, PipelineSpec, ProgressHook

__all__ = ["run_protocol", "face_selection"]

log = logging.getLogger(__name__)

AnyProtocol = VerificationProtocol | IdentificationProtocol


def __getattr__(name: str) -> Any:
    """The embedding and scoring names this module exported before 0.2 (deprecated here)."""
    for module in (_embedding, _comparison):
        if name in module.__all__:
            warnings.warn(
                f"{__name__}.{name} moved to {module.__name__} (import it from faceprint.evaluation); "
                "the old path goes in faceprint 0.3",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_protocol(
    protocol: AnyProtocol,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    workers: int | None = None,
    dask: Any = None,
    progress: ProgressHook | None = None,
    *,
    calibration: VerificationProtocol | None = None,
    protocol_files: Sequence[str | os.PathLike[str]] = (),
    threshold: float | None = None,
    select: Literal["largest", "central"] | None = None,
    fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
    confidence: float | None = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    image_digest: ImageDigestMethod = "content",
    chunk_size: int = 16,
) -> EvaluationResult:
    """Embed a protocol's images (through ``cache``), score its comparisons and evaluate them.

    Args:
        protocol: a verification or identification protocol (see :mod:`.protocols`).
        pipeline_settings, cache, workers, dask, progress: as :func:`~.embedding.embed_images`.
        calibration: a second protocol over (possibly) the same images on which the decision
            threshold is chosen (LFW View 1: ``pairsDevTrain.txt``); its images are embedded in
            the same pass and its scores reported beside the main ones.
        protocol_files: the files the protocol was read from, hashed into the provenance.
        threshold: the decision threshold (default: see :mod:`.evaluate`).
        select: the face to use from an image with several (default: the protocol's own,
            ``"central"`` for crops centred on the labelled face such as LFW, else ``"largest"``);
            the report says which was used and why.
        image_digest: how the image list is fingerprinted (:func:`~.provenance.image_list_digest`).
    """
    t_start = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    protocols = _with_calibration(protocol, calibration)
    images = _union_images(protocols)
    selection = face_selection(protocol, select)
    emb = _embedding.embed_images(
        images,
        pipeline_settings,
        cache,
        select="central" if selection["select"] == "central" and protocol.prealigned is None else "largest",
        prealigned=protocol.prealigned,
        workers=workers,
        chunk_size=chunk_size,
        dask=dask,
        progress=progress,
    )
    t_embed = time.perf_counter()
    metrics = {"fmr_targets": fmr_targets, "confidence": confidence, "n_bootstrap": n_bootstrap, "seed": seed}
    if isinstance(protocol, IdentificationProtocol):
        result, t_score = _identification(protocol, emb, protocol_files, started)
    else:
        result, t_score = _verification(protocol, calibration, emb, protocol_files, threshold, metrics)
        result.provenance["created"] = started
    t_metrics = time.perf_counter()
    _record_run(result, protocols, images, image_digest, emb, cache, workers, dask)
    if protocol.prealigned is None:
        result.provenance["face_selection"] = selection
    result.timing.update(
        embedding_s=t_embed - t_start,
        scoring_s=t_score - t_embed,
        metrics_s=t_metrics - t_score,
        total_s=time.perf_counter() - t_start,
    )
    log.info(
        "%s: %d comparisons evaluated in %.1f s (%d images: %d from the cache, %d computed)",
        protocol.name,
        len(result.scores),
        result.timing["total_s"],
        emb.stats.get("images", 0),
        emb.stats.get("cached", 0),
        emb.stats.get("computed", 0),
    )
    return result


def _with_calibration(protocol: AnyProtocol, calibration: VerificationProtocol | None) -> list[AnyProtocol]:
    """The protocols to embed in one pass: the protocol, and the calibration set if it fits."""
    if calibration is None:
        return [protocol]
    if isinstance(protocol, IdentificationProtocol):
        raise ConfigurationError("a calibration protocol applies to verification protocols only")
    if calibration.prealigned != protocol.prealigned:
        raise ConfigurationError("the calibration protocol and the protocol must agree on prealigned")
    return [protocol, calibration]


def face_selection(protocol: AnyProtocol, select: str | None) -> dict[str, str]:
    """Which face of an image with several the run uses, and why: ``{"select", "source", "description"}``."""
    if select is not None:
        return {"select": select, "source": "given", "description": f"{select}, as asked (--select / select=)"}
    if protocol.select is not None:
        return {
            "select": protocol.select,
            "source": "protocol",
            "description": f"{protocol.select}: the default of this protocol, whose images are crops centred on "
            "the labelled face (--select overrides)",
        }
    return {
        "select": "largest",
        "source": "default",
        "description": "largest: the default for images that are not known to be centred crops (--select overrides)",
    }


def _verification(
    protocol: VerificationProtocol,
    calibration: VerificationProtocol | None,
    emb: EmbeddingResults,
    protocol_files: Sequence[str | os.PathLike[str]],
    threshold: float | None,
    metrics: dict[str, Any],
) -> tuple[EvaluationResult, float]:
    """Score a 1:1 protocol (and its calibration set) and evaluate it; (result, time scoring ended)."""
    scores = _comparison.score_protocol(protocol, emb)
    table = ScoreTable.from_protocol(protocol, scores)
    cal_table = cal_failures = None
    if calibration is not None:
        cal_scores = _comparison.score_protocol(calibration, emb)
        cal_table = ScoreTable.from_protocol(calibration, cal_scores)
        cal_failures = _protocol_failures(calibration, emb, cal_scores)
    t_score = time.perf_counter()
    result = evaluate_scores(
        table,
        name=protocol.name,
        model=emb.model,
        settings=dict(emb.settings),
        folds=protocol.folds,
        calibration=cal_table,
        calibration_name=calibration.name if calibration is not None else "the calibration set",
        threshold=threshold,
        failures=_protocol_failures(protocol, emb, scores),
        calibration_failures=cal_failures,
        source_files=protocol_files,
        **metrics,
    )
    return result, t_score


def _identification(
    protocol: IdentificationProtocol,
    emb: EmbeddingResults,
    protocol_files: Sequence[str | os.PathLike[str]],
    started: str,
) -> tuple[EvaluationResult, float]:
    """Score a 1:N protocol and evaluate it; (result, time scoring ended)."""
    matrices = _comparison.score_identification(protocol, emb)
    t_score = time.perf_counter()
    ident, table, failures = evaluate_identification(protocol, matrices)
    kinds = [getattr(emb.get(im.key), "kind", None) for im in protocol.images]
    failures = dataclasses.replace(
        failures,
        images=len(protocol.images),
        images_no_face=kinds.count("no_face"),
        images_error=kinds.count("error"),
    )
    settings = dict(emb.settings)
    result = EvaluationResult(
        protocol=protocol.name,
        model=emb.model,
        settings=settings,
        scores=table,
        failures=failures,
        verification=None,
        identification=ident,
        provenance={
            "models": model_provenance(emb.model, settings),
            "dataset": {"files": [file_entry(p) for p in protocol_files]},
            "software": software_versions(),
            "created": started,
        },
    )
    return result, t_score


def _record_run(
    result: EvaluationResult,
    protocols: Sequence[AnyProtocol],
    images: Sequence[ImageRef],
    image_digest: ImageDigestMethod,
    emb: EmbeddingResults,
    cache: EmbeddingCache | None,
    workers: int | None,
    dask: Any,
) -> None:
    """Add the image-list digest, the protocols and the execution details to the provenance."""
    result.provenance["dataset"]["images"] = image_list_digest(images, image_digest)
    result.provenance["dataset"]["protocols"] = [
        {
            "name": p.name,
            "comparisons": len(p) if isinstance(p, VerificationProtocol) else None,
            "images": len(p.images),
        }
        for p in protocols
    ]
    result.provenance["execution"] = {
        "workers": workers,
        "dask": dask if dask is None or isinstance(dask, str) else type(dask).__name__,
        "embedding": dict(emb.stats),
        "pipeline_work": dict(emb.work),
        "cache": None
        if cache is None
        else {"path": str(cache.path), "hits": cache.hits, "misses": cache.misses, "writes": cache.writes},
    }


def _unit_ok(protocol: AnyProtocol, emb: EmbeddingResults) -> npt.NDArray[np.bool_]:
    img_ok = np.array([isinstance(emb.get(im.key), Embedding) for im in protocol.images], dtype=bool)
    t = protocol.templates
    if t is None:
        return img_ok
    ok = np.zeros(len(t), dtype=bool)
    np.logical_or.at(ok, t.template, img_ok[t.image])
    return ok


def _protocol_failures(
    protocol: VerificationProtocol, emb: EmbeddingResults, scores: npt.NDArray[np.float64]
) -> FailureCounts:
    """Failures per comparison, per image, per template, and per side when the sides are disjoint."""
    ok = _unit_ok(protocol, emb)
    refs = np.unique(protocol.a)
    probes = np.unique(protocol.b)
    disjoint = not np.intersect1d(refs, probes).size
    used = np.union1d(refs, probes)
    kinds = [getattr(emb.get(im.key), "kind", None) for im in protocol.images]
    nan = np.isnan(scores)
    templates = protocol.templates is not None
    return FailureCounts(
        comparisons=len(protocol),
        failed_mated=int(np.count_nonzero(nan & protocol.mated)),
        failed_nonmated=int(np.count_nonzero(nan & ~protocol.mated)),
        unit="template" if templates else "image",
        images=len(protocol.images),
        images_no_face=kinds.count("no_face"),
        images_error=kinds.count("error"),
        references=int(refs.size) if disjoint else None,
        references_failed=int((~ok[refs]).sum()) if disjoint else None,
        probes=int(probes.size) if disjoint else None,
        probes_failed=int((~ok[probes]).sum()) if disjoint else None,
        templates=int(used.size) if templates else None,
        templates_failed=int((~ok[used]).sum()) if templates else None,
    )


def _union_images(protocols: Sequence[AnyProtocol]) -> list[ImageRef]:
    seen: dict[str, ImageRef] = {}
    for p in protocols:
        for im in p.images:
            prev = seen.setdefault(im.key, im)
            if prev is not im and (prev.path != im.path or prev.data != im.data):
                raise ConfigurationError(f"two protocols name different images {im.key!r}")
    return list(seen.values())
