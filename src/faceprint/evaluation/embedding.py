"""Embedding a protocol's images: each image once, through the cache, here or on workers.

Data flow::

    images ──read + sha256──▶ cache hit? ──no──▶ chunks ──▶ pipeline (here, worker processes,
    or Dask workers) ──▶ Embedding | Failure ──▶ cache

:func:`embed_images` gives every image an :class:`~faceprint.types.Embedding` or a
:class:`Failure` (no face found, or the image could not be processed: a failure to acquire in
ISO/IEC 19795-1 terms).

Where the work runs:

* ``workers=1`` - this process, with the pipeline object given (custom backends work).
* ``workers=N`` - N local worker processes, each building the pipeline once from its settings.
* ``dask="local"`` - a ``distributed.LocalCluster`` started for the call; ``dask="tcp://host:port"``
  - an existing scheduler; or a ``distributed.Client``. Each worker process builds one pipeline
  per settings (and thread) and keeps it; chunks travel as encoded bytes, so workers need not
  see this machine's files, and results come back as plain numpy arrays. Workers must have
  faceprint and the same model files installed; a different model version is refused.

Every image is read once here to hash it for the cache; the same bytes are what gets embedded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .. import batch
from ..batch import ProgressHook
from ..errors import (
    ConfigurationError,
    ImageError,
    ImageNotFoundError,
)
from ..io import MAX_FILE_BYTES
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, FacePipeline, ImageResult, Selection
from ..types import Embedding
from .cache import CachedResult, EmbeddingCache, settings_id, sha256_bytes
from .protocols import PREALIGNED_TEMPLATES, IdentificationProtocol, ImageRef, VerificationProtocol

__all__ = [
    "Failure",
    "EmbeddingResults",
    "ProgressHook",
    "embed_images",
    "embed_protocol",
    "cache_settings",
]

log = logging.getLogger(__name__)

PipelineSpec = FacePipeline | Mapping[str, Any] | None

#: images read and looked up in the cache at a time
_LOOKUP_BLOCK = 256
_TOO_BIG = f"file is larger than {MAX_FILE_BYTES:,} bytes; faceprint does not load such images"


@dataclass(frozen=True, slots=True)
class Failure:
    """An image that gave no embedding: ``kind`` ``"no_face"`` (nothing detected) or ``"error"``
    (the image could not be read or decoded; ``error_type`` is the exception class name)."""

    kind: Literal["no_face", "error"]
    message: str = ""
    error_type: str = ""

    def __str__(self) -> str:
        if self.kind == "no_face":
            return "no face found"
        return f"{self.error_type}: {self.message}" if self.error_type else self.message


class EmbeddingResults(Mapping[str, "Embedding | Failure"]):
    """Image key → :class:`Embedding` or :class:`Failure`, as :func:`embed_images` returns it.

    Attributes:
        model: the model tag ``model_id@version`` of every embedding.
        settings: the pipeline settings the embeddings depend on (the cache's settings).
        stats: counts - ``images``, ``cached`` (found in the cache), ``computed``, ``no_face``, ``error``.
    """

    def __init__(
        self,
        items: Mapping[str, Embedding | Failure],
        model: str,
        settings: Mapping[str, Any],
        stats: Mapping[str, int] | None = None,
    ) -> None:
        self._items = dict(items)
        self.model = model
        self.settings = dict(settings)
        self.stats = dict(stats or {})

    def __getitem__(self, key: str) -> Embedding | Failure:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"EmbeddingResults({len(self)} images, model={self.model!r}, stats={self.stats})"

    @property
    def failures(self) -> dict[str, Failure]:
        return {k: v for k, v in self._items.items() if isinstance(v, Failure)}

    def matrix(self, keys: Sequence[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Embeddings of ``keys`` as float32 (N, D) (NaN rows for failures) and bool (N,) acquired."""
        from .comparison import embedding_matrix

        return embedding_matrix(self, keys)


# --- settings -------------------------------------------------------------------------------------


def _spec_name(spec: object) -> str:
    if isinstance(spec, str):
        return spec
    return str(getattr(spec, "name", "") or getattr(spec, "model_id", "") or type(spec).__qualname__)


def _worker_settings(spec: PipelineSpec, *, threads: int | None = 1) -> dict[str, Any]:
    """FacePipeline keyword settings a worker process rebuilds the pipeline from.

    ``threads``: ONNX threads of each worker's embedder unless the settings name them (None: the
    backend's default, for a pipeline in this process).
    """
    if isinstance(spec, FacePipeline):
        return spec.settings(worker_threads=threads or 1)
    d: dict[str, Any] = {
        "detector": DEFAULT_DETECTOR,
        "embedder": DEFAULT_EMBEDDER,
        "detector_options": {},
        "embedder_options": {},
    }
    if spec is not None:
        unknown = set(spec) - {"detector", "embedder", "detector_options", "embedder_options", "max_pixels"}
        if unknown:
            raise ConfigurationError(
                f"unknown pipeline settings {sorted(unknown)}; use detector, embedder, detector_options, "
                "embedder_options, max_pixels"
            )
        d.update({k: v for k, v in spec.items() if v is not None or k == "max_pixels"})
    if not isinstance(d["detector"], str) or not isinstance(d["embedder"], str):
        raise ConfigurationError("pipeline settings name backends by string; pass a FacePipeline for objects")
    d["detector_options"] = dict(d.get("detector_options") or {})
    emb = dict(d.get("embedder_options") or {})
    if threads is not None and "threads" not in emb and str(d["embedder"]).endswith("onnx"):
        emb["threads"] = threads
    d["embedder_options"] = emb
    return d


def cache_settings(
    spec: PipelineSpec, *, select: Selection = "largest", prealigned: str | None = None
) -> dict[str, Any]:
    """The settings that change an embedding, as stored in (and hashed for) the cache.

    Thread counts and other settings that do not change results are left out.
    """
    if isinstance(spec, FacePipeline):
        det: object = spec.detector_spec
        emb: object = spec.embedder_spec
        det_opts, emb_opts, max_pixels = spec.detector_options, spec.embedder_options, spec.max_pixels
    else:
        w = _worker_settings(spec)
        det, emb = w["detector"], w["embedder"]
        det_opts, emb_opts, max_pixels = w["detector_options"], w["embedder_options"], w.get("max_pixels", "default")
    emb_opts = {k: v for k, v in dict(emb_opts).items() if k not in ("threads", "providers", "device")}
    if prealigned is not None:
        acquisition: dict[str, Any] = {"prealigned": prealigned}
    else:
        acquisition = {"detector": _spec_name(det), "detector_options": dict(det_opts), "select": select}
    return {
        **acquisition,
        "embedder": _spec_name(emb),
        "embedder_options": emb_opts,
        "max_pixels": max_pixels,
    }


# --- the work on one chunk (here, in a worker process, or on a Dask worker: faceprint.batch) ----

#: (status, vector or None, error type, message)
_Raw = tuple[str, "npt.NDArray[np.float32] | None", str, str]


def _message(exc: BaseException) -> str:
    """An error's message without the ``<source>: `` prefix (results are labelled by image key)."""
    text = str(exc)
    src = getattr(exc, "source", None)
    if src and text.startswith(f"{src}: "):
        return text[len(src) + 2 :]
    return text


def _raw(r: ImageResult) -> _Raw:
    """One image's result as the cache keeps it: the embedding of its face, no face, or the error."""
    if r.error is not None:
        return ("error", None, type(r.error).__name__, _message(r.error))
    if not r.faces or r.faces[0].embedding is None:
        return ("no_face", None, "", "")
    return ("ok", np.asarray(r.faces[0].embedding.vector, dtype=np.float32), "", "")


def _on_data(task: batch.Task, pipe: FacePipeline, chunk: list[_Miss]) -> list[_Raw]:
    """Worker task: ``task`` on the image bytes of a chunk of misses."""
    return [_raw(r) for r in task(pipe, [data for _, data, _ in chunk])]


# --- embedding a set of images ----------------------------------------------------------------------


def _as_ref(x: ImageRef | str | os.PathLike[str] | bytes) -> ImageRef:
    if isinstance(x, ImageRef):
        return x
    if isinstance(x, (str, os.PathLike)):
        return ImageRef.from_path(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        return ImageRef(key=f"sha256:{sha256_bytes(b)}", data=b)
    raise ConfigurationError(f"an image must be an ImageRef, a path or encoded bytes, got {type(x).__name__}")


def _to_value(raw: _Raw, model_id: str, model_version: str) -> Embedding | Failure:
    status, vec, etype, msg = raw
    if status == "ok":
        return Embedding(np.asarray(vec, dtype=np.float32), model_id, model_version)
    if status == "no_face":
        return Failure("no_face")
    return Failure("error", msg, etype)


def _to_cached(raw: _Raw) -> CachedResult:
    status, vec, etype, msg = raw
    if status == "ok":
        return CachedResult("ok", vec)
    if status == "no_face":
        return CachedResult("no_face")
    return CachedResult("error", None, f"{etype}: {msg}" if etype else msg)


def _from_cached(c: CachedResult, model_id: str, model_version: str) -> Embedding | Failure:
    if c.status == "ok":
        return Embedding(np.asarray(c.vector, dtype=np.float32), model_id, model_version)
    if c.status == "no_face":
        return Failure("no_face")
    etype, _, msg = (c.error or "").partition(": ")
    return Failure("error", msg, etype) if msg else Failure("error", etype)


def _model_tag(spec: PipelineSpec, local: FacePipeline | None) -> tuple[str, str]:
    if local is not None:
        return local.embedder.model_id, local.embedder.model_version
    from ..registry import embedders

    w = _worker_settings(spec)
    emb = embedders.create(w["embedder"], **w["embedder_options"])
    return str(emb.model_id), str(emb.model_version)  # type: ignore[attr-defined]


def embed_images(
    images: Iterable[ImageRef | str | os.PathLike[str] | bytes],
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    *,
    select: Selection = "largest",
    prealigned: str | None = None,
    workers: int | None = None,
    chunk_size: int = 16,
    dask: Any = None,
    progress: ProgressHook | None = None,
) -> EmbeddingResults:
    """Embed each image once: key → :class:`Embedding` or :class:`Failure`.

    Args:
        images: :class:`ImageRef` objects (keys must be unique), paths or encoded bytes.
        pipeline_settings: a :class:`FacePipeline`, or its keyword settings (``detector``,
            ``embedder``, ``detector_options``, ``embedder_options``, ``max_pixels``), or None
            for the default pipeline.
        cache: results are looked up here first and every new result (failures included) is
            stored; commits come in batches, so an interrupted run resumes where it stopped.
        select: which face of an image with several: ``"largest"`` or ``"central"``.
        prealigned: the images are already crops aligned to this template (``"arcface112"``):
            detection is skipped. A protocol's ``prealigned`` goes here (see :func:`embed_protocol`).
        workers: local processes (None: one per core; 1: this process, with the pipeline object
            itself). Ignored when ``dask`` is given.
        chunk_size: images per task.
        dask: None, ``"local"`` (a LocalCluster of ``workers`` single-threaded processes for this
            call), a scheduler address ``"tcp://host:port"``, or a ``distributed.Client``.
        progress: called as ``progress(done, total)`` as images complete (cache hits included).

    Images that cannot be read here (missing file) become failures and are not cached; every
    result the pipeline produced is.
    """
    if select not in ("largest", "central"):
        raise ConfigurationError(f"select must be 'largest' or 'central' (one face per image), got {select!r}")
    if prealigned is not None and prealigned not in PREALIGNED_TEMPLATES:
        raise ConfigurationError(f"prealigned must be one of {', '.join(PREALIGNED_TEMPLATES)} or None")
    if chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be ≥ 1, got {chunk_size}")
    refs = _unique_refs(images)
    executor = batch.executor_for(workers, dask)
    local: FacePipeline | None = None
    if isinstance(pipeline_settings, FacePipeline):
        local = pipeline_settings
    elif isinstance(executor, batch.InProcess):
        local = FacePipeline(**_worker_settings(pipeline_settings, threads=None))
    model_id, model_version = _model_tag(pipeline_settings, local)
    key_settings = cache_settings(pipeline_settings, select=select, prealigned=prealigned)
    run = _EmbeddingRun(refs, model_id, model_version, key_settings, cache, progress)
    task: batch.Task = (
        partial(batch.detect_embed, select=select)
        if prealigned is None
        else partial(batch.embed_prealigned, template=prealigned)
    )
    try:
        for chunk, raws in batch.run_chunks(
            local if local is not None else _worker_settings(pipeline_settings),
            partial(_on_data, task),
            run.misses(),
            executor=executor,
            chunk_size=chunk_size,
            expected_model=run.model,
        ):
            run.absorb(chunk, raws)
    finally:
        if cache is not None:
            cache.flush()
    return run.result()


def _unique_refs(images: Iterable[ImageRef | str | os.PathLike[str] | bytes]) -> dict[str, ImageRef]:
    refs: dict[str, ImageRef] = {}
    for x in images:
        r = _as_ref(x)
        prev = refs.setdefault(r.key, r)
        if prev is not r and (prev.path != r.path or prev.data != r.data):
            raise ConfigurationError(f"two different images share the key {r.key!r}")
    return refs


#: an image still to compute: (sha256 of its bytes, the bytes, keys of every image with that content)
_Miss = tuple[str, bytes, list[str]]


class _EmbeddingRun:
    """The bookkeeping of one :func:`embed_images` call: cache lookups, shared content, results, progress."""

    def __init__(
        self,
        refs: dict[str, ImageRef],
        model_id: str,
        model_version: str,
        key_settings: dict[str, Any],
        cache: EmbeddingCache | None,
        progress: ProgressHook | None,
    ) -> None:
        self.refs = refs
        self.model_id, self.model_version = model_id, model_version
        self.model = f"{model_id}@{model_version}"
        self.key_settings = key_settings
        self.cache = cache
        self.sid = cache.register_settings(key_settings) if cache is not None else settings_id(key_settings)
        self.progress = progress
        self.results: dict[str, Embedding | Failure] = {}
        self.stats = {"images": len(refs), "cached": 0, "computed": 0, "no_face": 0, "error": 0}
        self.done = 0
        # content already computed in this call, and content on its way (sha256 → keys sharing it)
        self.by_sha: dict[str, Embedding | Failure] = {}
        self.pending: dict[str, list[str]] = {}

    def report(self, n: int) -> None:
        self.done += n
        if self.progress is not None and n:
            self.progress(self.done, len(self.refs))

    def finish(self, keys: list[str], value: Embedding | Failure) -> None:
        for k in keys:
            self.results[k] = value
            if isinstance(value, Failure):
                self.stats[value.kind] += 1

    def _read(self, ref: ImageRef) -> bytes | None:
        """The image bytes, or None after recording why they cannot be read (not cached)."""
        try:
            if ref.path is not None and os.path.getsize(ref.path) > MAX_FILE_BYTES:
                self.finish([ref.key], Failure("error", _TOO_BIG, "ImageTooLargeError"))
                self.report(1)
                return None
            return ref.read_bytes()
        except OSError as exc:
            err: ImageError = (
                ImageNotFoundError("file not found", source=ref.key)
                if isinstance(exc, FileNotFoundError)
                else ImageError(f"cannot read: {exc.strerror or exc}", source=ref.key)
            )
            self.finish([ref.key], Failure("error", _message(err), type(err).__name__))
            self.report(1)
            return None

    def misses(self) -> Iterator[_Miss]:
        """Images still to compute, reading and looking up ``_LOOKUP_BLOCK`` images at a time."""
        items = iter(self.refs.values())
        while True:
            block: list[tuple[ImageRef, str, bytes]] = []
            for ref in items:
                data = self._read(ref)
                if data is not None:
                    block.append((ref, sha256_bytes(data), data))
                    if len(block) >= _LOOKUP_BLOCK:
                        break
            if not block:
                return
            yield from self._lookup(block)

    def _lookup(self, block: list[tuple[ImageRef, str, bytes]]) -> Iterator[_Miss]:
        cache = self.cache
        hits = cache.get_many([s for _, s, _ in block], self.model, self.sid) if cache is not None else {}
        fresh: dict[str, tuple[bytes, list[str]]] = {}
        for ref, sha, data in block:
            if sha in hits:
                self.finish([ref.key], _from_cached(hits[sha], self.model_id, self.model_version))
                self.stats["cached"] += 1
                self.report(1)
            elif sha in self.by_sha:  # same content as an image computed earlier in this call
                self.finish([ref.key], self.by_sha[sha])
                self.report(1)
            elif sha in self.pending:  # same content already on its way
                self.pending[sha].append(ref.key)
            elif sha in fresh:
                fresh[sha][1].append(ref.key)
            else:
                fresh[sha] = (data, [ref.key])
        for sha, (data, keys) in fresh.items():
            self.pending[sha] = keys
            yield sha, data, keys

    def absorb(self, chunk: list[_Miss], raws: list[_Raw]) -> None:
        """Take a worker's results for a chunk: record, cache and report them."""
        for (sha, _data, keys_), raw in zip(chunk, raws, strict=True):
            keys = self.pending.pop(sha, keys_)
            value = self.by_sha[sha] = _to_value(raw, self.model_id, self.model_version)
            self.finish(keys, value)
            self.stats["computed"] += 1
            if self.cache is not None:
                self.cache.put(sha, self.model, self.sid, _to_cached(raw))
            self.report(len(keys))

    def result(self) -> EmbeddingResults:
        s = self.stats
        log.info(
            "embedded %d images with %s: %d from the cache, %d computed, %d without a face, %d errors",
            s["images"],
            self.model,
            s["cached"],
            s["computed"],
            s["no_face"],
            s["error"],
        )
        return EmbeddingResults(self.results, self.model, self.key_settings, s)


def embed_protocol(
    protocol: VerificationProtocol | IdentificationProtocol,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    **options: Any,
) -> EmbeddingResults:
    """:func:`embed_images` over a protocol's images, honouring its ``prealigned`` flag
    (an explicit ``prealigned=`` option wins)."""
    options.setdefault("prealigned", protocol.prealigned)
    return embed_images(protocol.images, pipeline_settings, cache, **options)
