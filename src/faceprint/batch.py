"""The one batch engine: a pipeline over many inputs, in chunks, here, in worker processes, or on Dask.

Data flow::

    inputs ──chunks of chunk_size──▶ executor ──task(pipeline, chunk) on a worker──▶ results
        ──in input order, at most ~2 × workers chunks in flight──▶ caller (+ progress(done, total))

A *task* is a module-level function ``task(pipeline, chunk) -> list`` (one result per item,
extra options bound with :func:`functools.partial`), so it pickles by reference. Every
worker builds its :class:`~faceprint.pipeline.FacePipeline` once from the whole
``FacePipeline.settings()`` dict - new pipeline settings reach the workers without this
module knowing them - and keeps it. The executors:

* :class:`InProcess` - this process, with the pipeline object itself (custom backends work);
* :class:`ProcessPool` - N local worker processes (``forkserver`` where available);
* :class:`DaskCluster` - a ``distributed.Client``, a scheduler address (``tcp://host:8786``), or
  ``"local"`` (a ``LocalCluster`` for the call). Workers need faceprint and the same model
  files; a worker embedding with another model version is refused.

Built-in tasks: :func:`detect_embed` (decode → detect → align → embed) and
:func:`embed_prealigned` (images that already are aligned crops). Both report an error on one
input in that input's result, so one bad file never stops a batch.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ._pool import bounded_ordered_map
from .alignment import TEMPLATES
from .embedding.base import model_tag as embedder_tag
from .errors import BackendUnavailableError, ConfigurationError, EmbeddingMismatchError, FaceprintError
from .types import BBox, Detection, Landmarks

if TYPE_CHECKING:
    from .io import ImageSource
    from .pipeline import FacePipeline, ImageResult, Selection

__all__ = [
    "ProgressHook",
    "Task",
    "BatchExecutor",
    "InProcess",
    "ProcessPool",
    "DaskCluster",
    "executor_for",
    "cpu_count",
    "model_tag",
    "run_chunks",
    "detect_embed",
    "embed_prealigned",
    "template_detection",
    "portable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``progress(done, total)``: items finished so far, and the total when known (else None)
ProgressHook = Callable[[int, int | None], None]
#: ``task(pipeline, chunk) -> one result per item``; a module-level function (or a partial of one)
Task = Callable[["FacePipeline", list[Any]], list[Any]]


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def model_tag(pipeline: FacePipeline) -> str:
    """``model_id@version`` of the pipeline's embedder: what every worker must embed with."""
    return embedder_tag(pipeline.embedder)


# --- the worker side ---------------------------------------------------------------------------

_LOCAL = threading.local()


def _pipeline_for(settings_json: str) -> FacePipeline:
    """This process's (and thread's) pipeline for these settings, built on first use and kept."""
    from .pipeline import FacePipeline

    cache: dict[str, FacePipeline] | None = getattr(_LOCAL, "pipelines", None)
    if cache is None:
        cache = _LOCAL.pipelines = {}
    pipe = cache.get(settings_json)
    if pipe is None:
        pipe = cache[settings_json] = FacePipeline(**json.loads(settings_json))
    return pipe


def _run_task(settings_json: str, task: Task, chunk: list[Any]) -> tuple[str, list[Any]]:
    """Worker entry point (process pool and Dask): (model tag, one result per item)."""
    pipe = _pipeline_for(settings_json)
    return model_tag(pipe), task(pipe, chunk)


def _settings_json(pipeline: FacePipeline | Mapping[str, Any]) -> str:
    from .pipeline import FacePipeline

    settings = pipeline.settings(worker_threads=1) if isinstance(pipeline, FacePipeline) else dict(pipeline)
    try:
        return json.dumps(settings, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"pipeline settings must be JSON-able to reach worker processes: {exc}") from exc


# --- executors ------------------------------------------------------------------------------------


class BatchExecutor(ABC):
    """Where the chunks of a batch run. ``map`` yields ``(model tag, results)`` per chunk, in order."""

    @abstractmethod
    def map(
        self, pipeline: FacePipeline | Mapping[str, Any], task: Task, chunks: Iterable[list[Any]]
    ) -> Iterator[tuple[str, list[Any]]]:
        """Run ``task`` on each chunk with a pipeline built from ``pipeline``; lazily, in input order."""

    def describe(self) -> str:
        return type(self).__name__


class InProcess(BatchExecutor):
    """This process, one chunk at a time, with the pipeline object itself (or one built from settings)."""

    def map(
        self, pipeline: FacePipeline | Mapping[str, Any], task: Task, chunks: Iterable[list[Any]]
    ) -> Iterator[tuple[str, list[Any]]]:
        from .pipeline import FacePipeline

        pipe = pipeline if isinstance(pipeline, FacePipeline) else FacePipeline(**pipeline)
        tag = model_tag(pipe)
        for chunk in chunks:
            yield tag, task(pipe, chunk)


class _FuturesExecutor(BatchExecutor):
    """Shared by the process pool and Dask: a ``concurrent.futures.Executor`` fed by bounded_ordered_map."""

    def _run(
        self,
        pool: Executor,
        n_workers: int,
        pipeline: FacePipeline | Mapping[str, Any],
        task: Task,
        chunks: Iterable[list[Any]],
    ) -> Iterator[tuple[str, list[Any]]]:
        fn = partial(_run_task, _settings_json(pipeline), task)
        for _chunk, out in bounded_ordered_map(pool, fn, chunks, 2 * max(n_workers, 1)):
            yield out


class ProcessPool(_FuturesExecutor):
    """``workers`` local processes (None: one per CPU), each building the pipeline once."""

    def __init__(self, workers: int | None = None) -> None:
        n = cpu_count() if workers is None else int(workers)
        if n < 1:
            raise ConfigurationError(f"workers must be ≥ 1, got {workers}")
        self.workers = n

    def describe(self) -> str:
        return f"{self.workers} worker processes"

    def map(
        self, pipeline: FacePipeline | Mapping[str, Any], task: Task, chunks: Iterable[list[Any]]
    ) -> Iterator[tuple[str, list[Any]]]:
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_quiet_worker) as pool:
            yield from self._run(pool, self.workers, pipeline, task, chunks)


def _quiet_worker() -> None:
    logging.basicConfig(level=logging.WARNING)


class DaskCluster(_FuturesExecutor):
    """A Dask cluster: a ``distributed.Client``, a scheduler address, or ``"local"``.

    ``"local"`` starts a ``LocalCluster`` of ``workers`` single-threaded processes (None: one per
    CPU) for each ``map`` and closes it after; an address or a client is used as it is (a client
    given by the caller stays open).
    """

    def __init__(self, scheduler: Any, workers: int | None = None) -> None:
        if not (scheduler == "local" or (isinstance(scheduler, str) and "://" in scheduler) or _is_client(scheduler)):
            raise ConfigurationError(
                "dask must be 'local', a scheduler address like 'tcp://host:8786' or a distributed.Client, "
                f"got {scheduler!r}"
            )
        self.scheduler = scheduler
        self.workers = workers

    def describe(self) -> str:
        return f"dask {self.scheduler if isinstance(self.scheduler, str) else type(self.scheduler).__name__}"

    def map(
        self, pipeline: FacePipeline | Mapping[str, Any], task: Task, chunks: Iterable[list[Any]]
    ) -> Iterator[tuple[str, list[Any]]]:
        distributed = _distributed()
        cluster = None
        if _is_client(self.scheduler):
            client, own = self.scheduler, False
        elif self.scheduler == "local":
            n = self.workers or cpu_count()
            cluster = distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client, own = distributed.Client(cluster), True
        else:
            try:
                client, own = distributed.Client(self.scheduler, timeout="30s"), True
            except OSError as exc:
                raise ConfigurationError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from exc
        try:
            n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
            yield from self._run(client.get_executor(pure=False), n_workers, pipeline, task, chunks)
        finally:
            if own:
                client.close()
            if cluster is not None:
                cluster.close()


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise BackendUnavailableError(
            "running on a Dask cluster needs distributed: pip install 'dask[distributed]'"
        ) from exc
    return distributed


def _is_client(x: object) -> bool:
    return type(x).__module__.startswith("distributed") and type(x).__name__ == "Client"


def executor_for(workers: int | None = None, dask: Any = None) -> BatchExecutor:
    """The executor the ``workers`` / ``dask`` options of the library and the CLI mean.

    ``dask`` (a client, an address, or ``"local"``) wins; else ``workers=1`` runs here and any
    other count (None: one per CPU) in local worker processes.
    """
    if workers is not None and int(workers) < 1:
        raise ConfigurationError(f"workers must be ≥ 1, got {workers}")
    if dask is not None:
        return DaskCluster(dask, workers)
    if workers == 1:
        return InProcess()
    return ProcessPool(workers)


# --- the engine ------------------------------------------------------------------------------------


def _chunked(items: Iterable[T], n: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for x in items:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_chunks(
    pipeline: FacePipeline | Mapping[str, Any],
    task: Task,
    items: Iterable[T] | Iterable[list[T]],
    *,
    executor: BatchExecutor | None = None,
    chunk_size: int | None = 16,
    expected_model: str | None = None,
    progress: ProgressHook | None = None,
    total: int | None = None,
) -> Iterator[tuple[list[T], list[Any]]]:
    """Stream ``(chunk, results)`` for ``items`` in input order (one result per item).

    Args:
        pipeline: a :class:`~faceprint.pipeline.FacePipeline` (workers rebuild it from its
            ``settings()``; in-process runs use the object) or its keyword settings.
        task: see :data:`Task`.
        items: the inputs; with ``chunk_size=None`` they are already chunks (lists).
        executor: where to run (default: :func:`executor_for` ``()``, one process per CPU).
        expected_model: the ``model_id@version`` every worker must report (default: the
            first chunk's); a mismatch raises :class:`EmbeddingMismatchError`.
        progress: called as ``progress(done, total)`` after each chunk.

    Memory stays bounded: items are read lazily and at most about ``2 × workers`` chunks are
    in flight. Stopping the iteration early cancels the chunks not yet started.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ConfigurationError(f"chunk_size must be ≥ 1, got {chunk_size}")
    ex = executor if executor is not None else executor_for()
    chunks: Iterator[list[T]] = (
        iter(items) if chunk_size is None else _chunked(items, chunk_size)  # type: ignore[arg-type]
    )
    pending: deque[list[T]] = deque()

    def remember(source: Iterator[list[T]]) -> Iterator[list[T]]:
        for c in source:
            pending.append(c)
            yield c

    done = 0
    for tag, results in ex.map(pipeline, task, remember(chunks)):
        chunk = pending.popleft()
        if expected_model is None:
            expected_model = tag
        elif tag != expected_model:
            raise EmbeddingMismatchError(
                f"a worker embeds with {tag} but this run expects {expected_model}; install the same "
                "faceprint and model files on every worker"
            )
        if len(results) != len(chunk):
            raise FaceprintError(f"a worker returned {len(results)} results for {len(chunk)} inputs")
        done += len(chunk)
        yield chunk, results
        if progress is not None:
            progress(done, total)


# --- built-in tasks ----------------------------------------------------------------------------------


def detect_embed(pipe: FacePipeline, sources: list[ImageSource], select: Selection = "all") -> list[ImageResult]:
    """Decode → detect → select → align → embed each source (one network call per chunk).

    An error on one source is reported in its result; an unexpected exception on the chunk is
    retried source by source, so only the source that raises it fails.
    """
    try:
        return pipe.process_batch(sources, select=select)
    except Exception:  # noqa: BLE001 - narrowed below, one source at a time
        if len(sources) == 1:
            return [_failed(sources[0], _unexpected())]
        return [r for s in sources for r in detect_embed(pipe, [s], select)]


def embed_prealigned(pipe: FacePipeline, sources: list[ImageSource], template: str) -> list[ImageResult]:
    """Embed images that already are crops aligned to ``template`` (``"arcface112"``): no detection.

    Each crop is aligned with the template's own landmark positions scaled to its size (an
    identity warp when the embedder uses the same template), through
    :meth:`~faceprint.pipeline.FacePipeline.embed_detections`, so every pipeline setting of the
    embedding step applies.
    """
    from .pipeline import ImageResult

    out: list[ImageResult] = []
    for src in sources:
        try:
            img = pipe.load(src)
            faces = pipe.embed_detections(img, [template_detection(img.shape, template)])
        except FaceprintError as exc:
            out.append(_failed(src, exc))
            continue
        except Exception:  # noqa: BLE001 - one bad crop must not stop the batch
            out.append(_failed(src, _unexpected()))
            continue
        out.append(ImageResult(_label(src), faces, None, int(img.shape[1]), int(img.shape[0])))
    return out


def template_detection(shape: Sequence[int], template: str) -> Detection:
    """A detection covering the whole image with the template's landmarks, scaled to the image."""
    if template not in TEMPLATES:
        raise ConfigurationError(f"unknown alignment template {template!r}; use one of {', '.join(TEMPLATES)}")
    t = TEMPLATES[template]
    h, w = int(shape[0]), int(shape[1])
    scale = np.array([w / t.size, h / t.size])
    if t.arcface5 is not None:
        lm = Landmarks((t.arcface5 * scale).astype(np.float32), "arcface5")
    else:
        lm = Landmarks((t.dlib5 * scale).astype(np.float32), "dlib5")
    return Detection(BBox(0.0, 0.0, float(w), float(h)), 1.0, lm, f"prealigned:{template}")


def portable(source: ImageSource) -> ImageSource:
    """A source as sent to another process: a path as ``str``, a file object read into bytes."""
    if hasattr(source, "read") and not isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        return source.read()  # type: ignore[union-attr, no-any-return]
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    return source


def _label(src: object) -> str:
    from .io import describe_source

    return describe_source(src)


def _unexpected() -> FaceprintError:
    """The exception being handled, as the error of one input's result (and logged)."""
    exc = sys.exc_info()[1]
    log.warning("unexpected %s while processing an input: %s", type(exc).__name__, exc)
    return FaceprintError(f"unexpected {type(exc).__name__}: {exc}")


def _failed(src: object, exc: FaceprintError) -> ImageResult:
    from .pipeline import ImageResult

    return ImageResult(_label(src), [], exc)
