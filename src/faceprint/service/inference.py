"""Run inference off the event loop: a thread pool, one detector per thread, one shared embedder.

dlib detectors are not safe to share between threads, so each worker thread gets a
:class:`~faceprint.pipeline.FacePipeline` of its own detector; the embedder (an onnxruntime
session, which is thread-safe and releases the GIL) is built once and shared. A job waits at
most ``inference_timeout_s`` (504), and at most ``max_pending`` jobs are queued or running
(503 with Retry-After beyond that), so a burst cannot grow an unbounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import ServiceTimeoutError, ServiceUnavailableError
from ..pipeline import FacePipeline
from ..registry import detectors
from .metrics import Metrics
from .settings import ServiceSettings

__all__ = ["InferencePool", "build_pipelines"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def build_pipelines(settings: ServiceSettings) -> list[FacePipeline]:
    """``settings.worker_count`` pipelines: separate detectors, one shared embedder (loads models)."""
    n = settings.worker_count
    emb_opts: dict[str, Any] = dict(settings.embedder_options)
    if "threads" not in emb_opts and settings.embedder.endswith("onnx"):
        # concurrent runs from the worker threads; each run uses its caller's thread
        emb_opts["threads"] = 1 if n > 1 else None
    first = FacePipeline(
        settings.detector,
        settings.embedder,
        detector_options=settings.detector_options,
        embedder_options=emb_opts,
        max_pixels=settings.max_pixels,
    )
    pipes = [first]
    for _ in range(n - 1):
        det = detectors.create(settings.detector, **settings.detector_options)
        pipes.append(FacePipeline(det, first.embedder, max_pixels=settings.max_pixels))
    return pipes


class InferencePool:
    """A fixed set of pipelines lent to worker threads, one job each at a time."""

    def __init__(self, pipelines: list[FacePipeline], settings: ServiceSettings, metrics: Metrics) -> None:
        if not pipelines:
            raise ValueError("an inference pool needs at least one pipeline")
        self.settings = settings
        self.metrics = metrics
        self.model = f"{pipelines[0].embedder.model_id}@{pipelines[0].embedder.model_version}"
        self.embedder_model_id = pipelines[0].embedder.model_id
        self.detector_name = getattr(pipelines[0].detector, "name", type(pipelines[0].detector).__name__)
        self._free: queue.SimpleQueue[FacePipeline] = queue.SimpleQueue()
        for p in pipelines:
            self._free.put(p)
        self._executor = ThreadPoolExecutor(max_workers=len(pipelines), thread_name_prefix="faceprint-infer")
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def size(self) -> int:
        return self._executor._max_workers

    @property
    def pending(self) -> int:
        return self._pending

    def _call(self, operation: str, fn: Callable[[FacePipeline], T]) -> T:
        pipe = self._free.get()
        start = time.perf_counter()
        try:
            return fn(pipe)
        finally:
            self._free.put(pipe)
            self.metrics.inference.labels(operation).observe(time.perf_counter() - start)

    async def run(self, operation: str, fn: Callable[[FacePipeline], T]) -> T:
        """Run ``fn(pipeline)`` in a worker thread and await its result."""
        with self._lock:
            if self._closed:
                raise ServiceUnavailableError("the service is shutting down", retry_after=5)
            if self._pending >= self.settings.max_pending:
                raise ServiceUnavailableError(
                    f"{self._pending} inference jobs are waiting; try again shortly", retry_after=1
                )
            self._pending += 1
            self.metrics.inference_pending.set(self._pending)
        try:
            future = self._executor.submit(self._call, operation, fn)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.settings.inference_timeout_s)
            except TimeoutError:
                future.cancel()  # drops it if it has not started; a running job finishes unobserved
                raise ServiceTimeoutError(
                    f"{operation} took longer than {self.settings.inference_timeout_s:g} s"
                ) from None
        finally:
            with self._lock:
                self._pending -= 1
                self.metrics.inference_pending.set(self._pending)

    def close(self, *, wait: bool = True) -> None:
        """Refuse new jobs and (by default) wait for the running ones."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=not wait)
