"""Embedding a protocol's images: each image once, through the cache, here or on workers.

Data flow::

    images ──read + sha256──▶ cache: detections of the image? embedding of the selected face?
        ──missing──▶ chunks ──▶ faceprint.batch (here, worker processes, or Dask workers):
        acquisition.acquire (detect once, embed the candidate faces) ──▶ cache
        ──select the face (largest / central)──▶ Embedding | Failure

:func:`embed_images` gives every image an :class:`~faceprint.types.Embedding` or a
:class:`Failure` (no face found, or the image could not be processed: a failure to acquire in
ISO/IEC 19795-1 terms). The cache keeps detections per image and embeddings per face, and the
face selection is applied after it: another ``select`` embeds nothing again, another embedding
setting (e.g. test-time augmentation) detects nothing again.

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
from ..errors import ConfigurationError, ImageError, ImageNotFoundError
from ..io import MAX_FILE_BYTES
from ..pipeline import FacePipeline, Selection
from ..types import Embedding
from .acquisition import Acquired, Work, acquire, error_message, selected_face
from .cache import CachedImage, EmbeddingCache, settings_id, sha256_bytes
from .pipeline_settings import PipelineSpec, cache_keys, cache_settings, worker_settings
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
        stats: counts of images - ``images``, ``cached`` (found in the cache), ``computed`` (sent
            to the pipeline), ``no_face``, ``error``.
        work: what the pipeline did - ``images_detected`` (images run through the detector) and
            ``faces_embedded`` (face embeddings computed). A re-run with another face selection
            does neither.
    """

    def __init__(
        self,
        items: Mapping[str, Embedding | Failure],
        model: str,
        settings: Mapping[str, Any],
        stats: Mapping[str, int] | None = None,
        work: Mapping[str, int] | None = None,
    ) -> None:
        self._items = dict(items)
        self.model = model
        self.settings = dict(settings)
        self.stats = dict(stats or {})
        self.work = dict(work or {})

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


def _as_ref(x: ImageRef | str | os.PathLike[str] | bytes) -> ImageRef:
    if isinstance(x, ImageRef):
        return x
    if isinstance(x, (str, os.PathLike)):
        return ImageRef.from_path(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        return ImageRef(key=f"sha256:{sha256_bytes(b)}", data=b)
    raise ConfigurationError(f"an image must be an ImageRef, a path or encoded bytes, got {type(x).__name__}")


def _model_tag(spec: PipelineSpec, local: FacePipeline | None) -> tuple[str, str]:
    if local is not None:
        return local.embedder.model_id, local.embedder.model_version
    from ..registry import embedders

    w = worker_settings(spec)
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
            ``embedder``, ``detector_options``, ``embedder_options``, ``max_pixels``, and any
            other ``FacePipeline`` setting), or None for the default pipeline.
        cache: detections and face embeddings are looked up here first and every new result
            (failures included) is stored; commits come in batches, so an interrupted run
            resumes where it stopped.
        select: which face of an image with several: ``"largest"`` or ``"central"``. Applied
            after the cache: the faces both would pick are embedded once and kept.
        prealigned: the images are already crops aligned to this template (``"arcface112"``):
            detection is skipped. A protocol's ``prealigned`` goes here (see :func:`embed_protocol`).
        workers: local processes (None: one per core; 1: this process, with the pipeline object
            itself). With ``dask``, the size of a ``"local"`` cluster.
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
        local = FacePipeline(**worker_settings(pipeline_settings, threads=None))
    model_id, model_version = _model_tag(pipeline_settings, local)
    run = _EmbeddingRun(refs, model_id, model_version, cache, progress, select=select, prealigned=prealigned)
    run.settings = cache_settings(pipeline_settings, select=select, prealigned=prealigned)
    run.register_keys(*cache_keys(pipeline_settings, prealigned=prealigned))
    try:
        for chunk, acquired in batch.run_chunks(
            local if local is not None else worker_settings(pipeline_settings),
            partial(acquire, prealigned=prealigned),
            run.misses(),
            executor=executor,
            chunk_size=chunk_size,
            expected_model=run.model,
        ):
            run.absorb(chunk, acquired)
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


def _failure(status: str, error: str | None) -> Failure:
    """The failure of a cached image: no face, or the error kept as ``"ErrorClass: message"``."""
    if status == "no_face":
        return Failure("no_face")
    etype, _, message = (error or "").partition(": ")
    return Failure("error", message, etype) if message else Failure("error", etype)


class _EmbeddingRun:
    """The bookkeeping of one :func:`embed_images` call: cache lookups, face selection, shared
    content, results, progress."""

    def __init__(
        self,
        refs: dict[str, ImageRef],
        model_id: str,
        model_version: str,
        cache: EmbeddingCache | None,
        progress: ProgressHook | None,
        *,
        select: str,
        prealigned: str | None,
    ) -> None:
        self.refs = refs
        self.model_id, self.model_version = model_id, model_version
        self.model = f"{model_id}@{model_version}"
        self.cache = cache
        self.progress = progress
        self.select, self.prealigned = select, prealigned
        self.settings: dict[str, Any] = {}
        self.acq_sid = self.emb_sid = ""
        self.results: dict[str, Embedding | Failure] = {}
        self.stats = {"images": len(refs), "cached": 0, "computed": 0, "no_face": 0, "error": 0}
        self.work = {"images_detected": 0, "faces_embedded": 0}
        self.done = 0
        # content already computed in this call, and content on its way (sha256 → keys sharing it)
        self.by_sha: dict[str, Embedding | Failure] = {}
        self.pending: dict[str, list[str]] = {}

    def register_keys(self, acquisition: dict[str, Any], embedding: dict[str, Any]) -> None:
        """Settings ids of the detections and of the face embeddings (stored readable in the cache)."""
        register = self.cache.register_settings if self.cache is not None else settings_id
        self.acq_sid, self.emb_sid = register(acquisition), register(embedding)

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
            self.finish([ref.key], Failure("error", error_message(err), type(err).__name__))
            self.report(1)
            return None

    def misses(self) -> Iterator[Work]:
        """Images the pipeline must see, reading and looking up ``_LOOKUP_BLOCK`` images at a time."""
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

    def _value(self, image: CachedImage, vectors: Mapping[int, npt.NDArray[np.float32]]) -> Embedding | Failure | int:
        """The image's result, or the index of the face whose embedding is still missing."""
        if image.status != "ok":
            return _failure(image.status, image.error)
        if self.prealigned is not None:
            k: int | None = 0
        else:
            k = selected_face(image.detections, (image.height, image.width), self.select)
        if k is None:
            return Failure("no_face")
        if k not in vectors:
            return k
        return Embedding(np.asarray(vectors[k], dtype=np.float32), self.model_id, self.model_version)

    def _lookup(self, block: list[tuple[ImageRef, str, bytes]]) -> Iterator[Work]:
        cache, shas = self.cache, [s for _, s, _ in block]
        images = cache.get_images(shas, self.acq_sid) if cache is not None else {}
        ok = [s for s in shas if s in images and images[s].status == "ok"]
        faces = cache.get_faces(ok, self.emb_sid, self.model) if cache is not None and ok else {}
        fresh: dict[str, Work] = {}
        for ref, sha, data in block:
            if sha in self.by_sha:  # same content as an image computed earlier in this call
                self.finish([ref.key], self.by_sha[sha])
                self.report(1)
            elif sha in self.pending:  # same content already on its way
                self.pending[sha].append(ref.key)
            elif sha in fresh:
                fresh[sha].keys.append(ref.key)
            elif sha in images:
                value = self._value(images[sha], faces.get(sha, {}))
                if isinstance(value, int):  # detections cached, this face's embedding not
                    fresh[sha] = Work(sha, data, [ref.key], images[sha], (value,))
                else:
                    self.by_sha[sha] = value
                    self.finish([ref.key], value)
                    self.stats["cached"] += 1
                    self.report(1)
            else:
                fresh[sha] = Work(sha, data, [ref.key])
        for sha, w in fresh.items():
            self.pending[sha] = w.keys
            yield w

    def absorb(self, chunk: list[Work], acquired: list[Acquired]) -> None:
        """Take a worker's results for a chunk: cache them, select the face, report."""
        for w, a in zip(chunk, acquired, strict=True):
            keys = self.pending.pop(w.sha, w.keys)
            image, cache = a.cached(), self.cache
            if cache is not None and w.image is None:
                cache.put_image(w.sha, self.acq_sid, image, a.vectors, face_settings=self.emb_sid, model=self.model)
            elif cache is not None:
                cache.put_faces(w.sha, self.emb_sid, self.model, a.vectors)
            self.work["images_detected"] += int(w.image is None and self.prealigned is None and a.status != "error")
            self.work["faces_embedded"] += len(a.vectors)
            value = self._value(image, a.vectors)
            if isinstance(value, int):  # the face could not be embedded after all
                value = Failure("no_face")
            self.by_sha[w.sha] = value
            self.finish(keys, value)
            self.stats["computed"] += 1
            self.report(len(keys))

    def result(self) -> EmbeddingResults:
        s = self.stats
        log.info(
            "embedded %d images with %s: %d from the cache, %d computed (%d detected, %d faces embedded), "
            "%d without a face, %d errors",
            s["images"],
            self.model,
            s["cached"],
            s["computed"],
            self.work["images_detected"],
            self.work["faces_embedded"],
            s["no_face"],
            s["error"],
        )
        return EmbeddingResults(self.results, self.model, self.settings, s, self.work)


def embed_protocol(
    protocol: VerificationProtocol | IdentificationProtocol,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    **options: Any,
) -> EmbeddingResults:
    """:func:`embed_images` over a protocol's images, honouring its ``prealigned`` flag and its
    default face selection (explicit ``prealigned=`` / ``select=`` options win)."""
    options.setdefault("prealigned", protocol.prealigned)
    if protocol.select is not None:
        options.setdefault("select", protocol.select)
    return embed_images(protocol.images, pipeline_settings, cache, **options)
