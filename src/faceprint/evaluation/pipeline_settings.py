"""Pipeline settings as the evaluation sees them: what workers rebuild, and what keys the cache.

Everything here is generic over :class:`~faceprint.pipeline.FacePipeline`'s keyword settings
(read from its signature): a setting added to the pipeline (say ``tta=`` or ``min_face=``)
reaches the workers and the cache keys without this module naming it. The only settings named
are those known to touch the embedding step alone (:data:`EMBEDDING_ONLY`): they are left out of
the key of the detections, so changing them re-embeds faces without detecting them again.
Unknown settings go into both keys (safe: at worst a cache miss).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, FacePipeline

__all__ = [
    "EMBEDDING_ONLY",
    "RUNTIME_OPTIONS",
    "PipelineSpec",
    "pipeline_parameters",
    "worker_settings",
    "resolved_settings",
    "cache_settings",
    "cache_keys",
]

PipelineSpec = FacePipeline | Mapping[str, Any] | None

#: settings that change the embedding of a given face but not which faces are found
EMBEDDING_ONLY: tuple[str, ...] = ("embedder", "embedder_options", "tta")
#: backend options that change where and how fast a model runs, never its results
RUNTIME_OPTIONS: tuple[str, ...] = ("threads", "providers", "device")
_DETECTION_ONLY: tuple[str, ...] = ("detector", "detector_options")


def pipeline_parameters() -> dict[str, inspect.Parameter]:
    """FacePipeline's keyword settings (name → parameter, with its default)."""
    params = dict(inspect.signature(FacePipeline.__init__).parameters)
    params.pop("self", None)
    return {k: p for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _spec_name(spec: object) -> str:
    if isinstance(spec, str):
        return spec
    return str(getattr(spec, "name", "") or getattr(spec, "model_id", "") or type(spec).__qualname__)


def worker_settings(spec: PipelineSpec, *, threads: int | None = 1) -> dict[str, Any]:
    """FacePipeline keyword settings a worker process rebuilds the pipeline from (``FacePipeline(**s)``).

    ``spec``: a FacePipeline (its :meth:`~FacePipeline.settings`), a mapping of its keyword
    settings (unknown names are refused, naming the known ones), or None for the defaults.
    ``threads``: ONNX threads of each worker's embedder unless the settings name them (None: the
    backend's default, for a pipeline in this process).
    """
    if isinstance(spec, FacePipeline):
        return spec.settings(worker_threads=threads or 1)
    known = pipeline_parameters()
    d: dict[str, Any] = {"detector": DEFAULT_DETECTOR, "embedder": DEFAULT_EMBEDDER}
    if spec is not None:
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown pipeline settings {unknown}; this faceprint's FacePipeline takes {', '.join(known)}"
            )
        # None means "the default" except for max_pixels, where it means "no limit"
        d.update({k: v for k, v in spec.items() if v is not None or k == "max_pixels"})
    if not isinstance(d["detector"], str) or not isinstance(d["embedder"], str):
        raise ConfigurationError("pipeline settings name backends by string; pass a FacePipeline for objects")
    d["detector_options"] = dict(d.get("detector_options") or {})
    emb = dict(d.get("embedder_options") or {})
    if threads is not None and "threads" not in emb and str(d["embedder"]).endswith("onnx"):
        emb["threads"] = threads
    d["embedder_options"] = emb
    return d


def resolved_settings(spec: PipelineSpec) -> dict[str, Any]:
    """Every FacePipeline setting with its value (defaults filled in, backends by name), without
    the runtime options that do not change results: what a result depends on."""
    params = pipeline_parameters()
    if isinstance(spec, FacePipeline):
        try:
            given = spec.settings()
        except ConfigurationError:  # built from backend objects: read what the object holds
            given = {k: getattr(spec, k, p.default) for k, p in params.items()}
            given["detector"], given["embedder"] = _spec_name(spec.detector_spec), _spec_name(spec.embedder_spec)
    else:
        given = worker_settings(spec, threads=None)
    out = {k: given.get(k, p.default) for k, p in params.items()}
    for k in ("detector_options", "embedder_options"):
        out[k] = {o: v for o, v in dict(out.get(k) or {}).items() if o not in RUNTIME_OPTIONS}
    return out


def cache_settings(spec: PipelineSpec, *, select: str = "largest", prealigned: str | None = None) -> dict[str, Any]:
    """The settings an evaluation's embeddings depend on, as its report shows them.

    Every pipeline setting, the face ``select``-ion (applied after the cache), or for images
    that are already aligned crops the ``prealigned`` template instead of the detector.
    """
    s = resolved_settings(spec)
    if prealigned is not None:
        s = {k: v for k, v in s.items() if k not in _DETECTION_ONLY}
        return {"prealigned": prealigned, **s}
    return {**s, "select": select}


def cache_keys(spec: PipelineSpec, *, prealigned: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(acquisition settings, embedding settings): what keys the detections of an image, and what
    keys the embedding of one of its faces. Face selection is in neither."""
    s = resolved_settings(spec)
    if prealigned is not None:
        embedding = {"prealigned": prealigned, **{k: v for k, v in s.items() if k not in _DETECTION_ONLY}}
        return {"prealigned": prealigned, "max_pixels": s.get("max_pixels")}, embedding
    acquisition = {k: v for k, v in s.items() if k not in EMBEDDING_ONLY}
    return acquisition, s
