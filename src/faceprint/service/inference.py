"""Run inference where it cannot stall the server: worker processes, bounded and fair.

``faceprint serve`` runs the models in ``workers`` child processes, each with a
:class:`~faceprint.pipeline.FacePipeline` of its own. The event loop only ships the uploaded
bytes to a worker and awaits its answer (a courier thread waits on the pipe), so ``/healthz``,
``/readyz`` and every other request keep being answered while a worker chews on a hard image
(a large face-less photo sends dlib's detectors through every fallback, with the GIL held).

Limits, each answered with a problem+json error rather than a stalled server:

- **time**: a job has ``inference_timeout_s`` from the moment it is submitted (504 after). A job
  still running then is stopped: its worker process is killed and a fresh one started, so one
  request never costs more than that;
- **queue**: at most ``max_pending`` jobs queued or running (503 with Retry-After beyond);
- **fairness**: one API key has at most ``max_jobs_per_key`` jobs running (default: all workers
  but one) and ``max_pending_per_key`` queued or running; so one client cannot occupy every
  worker, and the others' requests keep their latency.

Jobs are module-level functions ``fn(pipeline, *args)`` (see :mod:`faceprint.service.jobs`), so
they can be sent to a process. Apps built around pipelines made by the caller (tests,
benchmarks: ``create_app(pipelines=...)``) run the same jobs on in-process threads instead, with
the same queueing and limits, except that a timed-out job cannot be stopped there.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import pickle
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..embedding.base import model_tag
from ..errors import FaceprintError, ModelError, ServiceTimeoutError, ServiceUnavailableError
from ..pipeline import FacePipeline
from ..registry import detectors
from .metrics import Metrics
from .settings import ServiceSettings

__all__ = ["InferencePool", "PipelineSpec", "build_pipelines"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_START_TIMEOUT_S = 300.0  # loading the models in a fresh worker process
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PipelineSpec:
    """What a worker process needs to build its pipeline (no keys, no paths: nothing secret)."""

    detector: str
    embedder: str
    detector_options: dict[str, Any] = field(default_factory=dict)
    embedder_options: dict[str, Any] = field(default_factory=dict)
    max_pixels: int | None = None
    quality: str | None = None
    min_quality: float | None = None
    pad: str | None = None
    refuse_attacks: bool = False

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> PipelineSpec:
        emb_opts: dict[str, Any] = dict(settings.embedder_options)
        if "threads" not in emb_opts and settings.embedder.endswith("onnx") and settings.worker_count > 1:
            emb_opts["threads"] = 1  # the workers already use every core between them
        return cls(
            settings.detector,
            settings.embedder,
            dict(settings.detector_options),
            emb_opts,
            settings.max_pixels,
            settings.quality,
            settings.min_quality,
            settings.pad,
            settings.refuse_attacks,
        )

    def build(self) -> FacePipeline:
        return FacePipeline(
            self.detector,
            self.embedder,
            detector_options=self.detector_options,
            embedder_options=self.embedder_options,
            max_pixels=self.max_pixels,
            quality=self.quality,
            min_quality=self.min_quality,
            pad=self.pad,
            pad_options={"threads": 1} if self.pad else None,
            refuse_attacks=self.refuse_attacks,
        )


def build_pipelines(settings: ServiceSettings) -> list[FacePipeline]:
    """``settings.worker_count`` in-process pipelines: separate detectors, one shared embedder
    (loads models). For benchmarks and embedding the service in-process; ``serve`` uses processes."""
    n = settings.worker_count
    spec = PipelineSpec.from_settings(settings)
    first = spec.build()
    pipes = [first]
    for _ in range(n - 1):
        det = detectors.create(settings.detector, **settings.detector_options)
        pipes.append(
            FacePipeline(
                det,
                first.embedder,
                max_pixels=settings.max_pixels,
                quality=first.quality,
                min_quality=settings.min_quality,
                pad=next(iter(first.pad.values()), None),
                refuse_attacks=first.refuse_attacks,
            )
        )
    return pipes


def _describe(pipe: FacePipeline) -> dict[str, Any]:
    e = pipe.embedder
    return {
        "model": model_tag(e),
        "embedder_model_id": e.model_id,
        "detector": getattr(pipe.detector, "name", type(pipe.detector).__name__),
        "quality": getattr(getattr(pipe, "quality", None), "name", None),
        "min_quality": getattr(pipe, "min_quality", None),
        "pad": next(iter(getattr(pipe, "pad", {}) or {}), None),
        "refuse_attacks": getattr(pipe, "refuse_attacks", False),
    }


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a plain error with its text (sent to the parent)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        cls = FaceprintError if isinstance(exc, FaceprintError) else RuntimeError
        return cls(f"{type(exc).__name__}: {exc}")


def _worker_main(conn: Any, spec: PipelineSpec) -> None:
    """A worker process: build the pipeline, then answer ``(fn, args)`` jobs until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    try:
        pipe = spec.build()
    except BaseException as exc:
        conn.send(("error", _portable(exc)))
        return
    conn.send(("ready", _describe(pipe)))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the server went away
            return
        if msg is None:
            return
        fn, args = msg
        try:
            out: tuple[str, Any] = ("ok", fn(pipe, *args))
        except BaseException as exc:
            if not isinstance(exc, FaceprintError):
                log.exception("inference job %s failed", getattr(fn, "__name__", fn))
            out = ("error", _portable(exc))
        try:
            conn.send(out)
        except Exception as exc:  # an unpicklable result: a bug in the job
            conn.send(("error", RuntimeError(f"result of {getattr(fn, '__name__', fn)} cannot be sent: {exc}")))


class _Worker(Protocol):
    killable: bool

    @property
    def alive(self) -> bool: ...

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any: ...

    def restart(self) -> None: ...

    def close(self) -> None: ...


class _ThreadWorker:
    """A pipeline built by the caller, used from a courier thread (cannot be stopped mid-job)."""

    killable = False
    alive = True

    def __init__(self, pipe: FacePipeline) -> None:
        self.pipe = pipe

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        return fn(self.pipe, *args)

    def restart(self) -> None:  # pragma: no cover - never dies
        pass

    def close(self) -> None:
        pass


class _ProcessWorker:
    """One child process with its own pipeline, spoken to over a pipe by one courier at a time."""

    killable = True

    def __init__(self, ctx: Any, spec: PipelineSpec, index: int) -> None:
        self._ctx = ctx
        self._spec = spec
        self._index = index
        self._proc: Any = None
        self._conn: Any = None
        self.info: dict[str, Any] = {}
        self.restart()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def restart(self) -> None:
        """(Re)start the process and wait until its models are loaded."""
        self.kill()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main, args=(child, self._spec), name=f"faceprint-infer-{self._index}", daemon=True
        )
        proc.start()
        child.close()
        try:
            if not parent.poll(_START_TIMEOUT_S):
                raise ModelError(f"an inference worker did not load its models in {_START_TIMEOUT_S:g} s")
            status, payload = parent.recv()
        except (EOFError, OSError):
            payload, status = ModelError(f"an inference worker exited while loading (code {proc.exitcode})"), "error"
        except BaseException:
            proc.kill()
            proc.join()
            parent.close()
            raise
        if status != "ready":
            proc.join(_STOP_TIMEOUT_S)
            parent.close()
            raise payload
        self._proc, self._conn, self.info = proc, parent, payload

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        if not self.alive:
            raise ServiceUnavailableError("an inference worker is restarting; try again shortly", retry_after=2)
        try:
            self._conn.send((fn, args))
            ready = self._conn.poll(timeout)
        except (OSError, EOFError):
            ready = None
        if ready is False:
            self.kill()  # the only way to stop a detector that does not return: bounded cost per request
            raise ServiceTimeoutError(f"inference took longer than {timeout:.3g} s; the job was stopped")
        try:
            if ready is None:
                raise EOFError
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            self.kill()
            log.error("inference worker %d died during a job (exit code %s)", self._index, code)
            raise ServiceUnavailableError("an inference worker stopped; try again", retry_after=2) from None
        if status == "ok":
            return payload
        raise payload

    def kill(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            proc.kill()
            proc.join(_STOP_TIMEOUT_S)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        proc, conn = self._proc, self._conn
        if proc is None:
            return
        try:
            conn.send(None)
            proc.join(_STOP_TIMEOUT_S)
        except (OSError, EOFError):
            pass
        self.kill()


def _context() -> Any:
    # never fork the server itself: it has threads and an event loop
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


class InferencePool:
    """A fixed set of workers lent to one job at a time, with the limits described above."""

    def __init__(
        self,
        pipelines: list[FacePipeline] | None,
        settings: ServiceSettings,
        metrics: Metrics,
        *,
        workers: list[_Worker] | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        if workers is None:
            if not pipelines:
                raise ValueError("an inference pool needs at least one pipeline")
            workers = [_ThreadWorker(p) for p in pipelines]
            info = _describe(pipelines[0])
        assert info is not None
        self.settings = settings
        self.metrics = metrics
        self.model: str = info["model"]
        self.embedder_model_id: str = info["embedder_model_id"]
        self.detector_name: str = info["detector"]
        #: the workers' quality assessor (None: off) and quality gate (see ServiceSettings.quality)
        self.quality: str | None = info.get("quality")
        self.min_quality: float | None = info.get("min_quality")
        self._workers = workers
        self._free: asyncio.Queue[_Worker] | None = None
        self._couriers = ThreadPoolExecutor(max_workers=2 * len(workers), thread_name_prefix="faceprint-courier")
        self._pending = 0
        self._by_owner: dict[str, list[Any]] = {}  # owner -> [running-slots semaphore, jobs queued or running]
        self._lock = threading.Lock()
        self._closed = False
        n = len(workers)
        self.max_jobs_per_key = settings.max_jobs_per_key or max(1, n - 1)

    @classmethod
    def start(cls, settings: ServiceSettings, metrics: Metrics) -> InferencePool:
        """``settings.worker_count`` worker processes, started in parallel (loads the models)."""
        spec = PipelineSpec.from_settings(settings)
        ctx = _context()
        n = settings.worker_count
        with ThreadPoolExecutor(max_workers=n) as ex:
            futures = [ex.submit(_ProcessWorker, ctx, spec, i) for i in range(n)]
        started: list[_ProcessWorker] = []
        error: BaseException | None = None
        for f in futures:
            try:
                started.append(f.result())
            except BaseException as exc:
                error = error or exc
        if error is not None:
            for w in started:
                w.close()
            raise error
        log.info("started %d inference worker process(es)", n)
        return cls(None, settings, metrics, workers=list(started), info=started[0].info)

    @property
    def size(self) -> int:
        return len(self._workers)

    @property
    def pending(self) -> int:
        return self._pending

    def _queue(self) -> asyncio.Queue[_Worker]:
        if self._free is None:  # made on first use, inside the server's event loop
            self._free = asyncio.Queue()
            for w in self._workers:
                self._free.put_nowait(w)
        return self._free

    def _admit(self, owner: str) -> list[Any]:
        s = self.settings
        with self._lock:
            if self._closed:
                raise ServiceUnavailableError("the service is shutting down", retry_after=5)
            if self._pending >= s.max_pending:
                raise ServiceUnavailableError(
                    f"{self._pending} inference jobs are waiting; try again shortly", retry_after=1
                )
            entry = self._by_owner.get(owner)
            if owner and entry is not None and entry[1] >= s.max_pending_per_key:
                raise ServiceUnavailableError(
                    f"this API key has {entry[1]} inference jobs waiting or running; wait for them", retry_after=1
                )
            if entry is None:  # jobs without an owner (internal ones) may use every worker
                slots = self.max_jobs_per_key if owner else len(self._workers)
                entry = self._by_owner[owner] = [asyncio.Semaphore(slots), 0]
            entry[1] += 1
            self._pending += 1
            self.metrics.inference_pending.set(self._pending)
            return entry

    def _done(self, owner: str, entry: list[Any]) -> None:
        with self._lock:
            entry[1] -= 1
            if entry[1] == 0 and self._by_owner.get(owner) is entry:
                del self._by_owner[owner]
            self._pending -= 1
            self.metrics.inference_pending.set(self._pending)

    def _call(self, worker: _Worker, operation: str, fn: Callable[..., T], args: tuple[Any, ...], timeout: float) -> T:
        start = time.perf_counter()
        try:
            return worker.call(fn, args, timeout)  # type: ignore[no-any-return]
        finally:
            self.metrics.inference.labels(operation).observe(time.perf_counter() - start)

    def _release(self, worker: _Worker, then: Callable[[], None]) -> None:
        """Back to the free queue, then ``then()`` (in the event loop). A killed worker is restarted
        first, and ``then`` (which frees the job's key slot) waits for it: a key whose job had to be
        stopped cannot take another worker while that one reloads its models."""
        if worker.alive or self._closed:
            self._queue().put_nowait(worker)
            then()
            return
        loop = asyncio.get_running_loop()

        def restarted(f: Future[None]) -> None:
            if f.exception() is not None:
                log.error("restarting an inference worker failed: %s; retrying in 5 s", f.exception())
                loop.call_soon_threadsafe(then)
                loop.call_soon_threadsafe(loop.call_later, 5.0, self._release, worker, lambda: None)
            else:
                loop.call_soon_threadsafe(self._release, worker, then)  # alive now

        self._couriers.submit(worker.restart).add_done_callback(restarted)

    async def run(self, operation: str, fn: Callable[..., T], *args: Any, owner: str | None = None) -> T:
        """Run ``fn(pipeline, *args)`` on a free worker and await its result (see the module doc)."""
        loop = asyncio.get_running_loop()
        timeout = self.settings.inference_timeout_s
        deadline = loop.time() + timeout
        key = owner or ""
        entry = self._admit(key)
        sem: asyncio.Semaphore = entry[0]
        worker: _Worker | None = None
        try:
            async with asyncio.timeout_at(deadline):
                await sem.acquire()
                try:
                    worker = await self._queue().get()
                except BaseException:
                    sem.release()
                    raise
        except TimeoutError:
            self._done(key, entry)
            raise ServiceTimeoutError(f"{operation} waited longer than {timeout:g} s for a free worker") from None
        except BaseException:
            self._done(key, entry)
            raise
        held = worker

        def finished(_f: Future[T]) -> None:  # the worker and the key's slot are held until the job ends
            def free_slot() -> None:
                sem.release()
                self._done(key, entry)

            loop.call_soon_threadsafe(self._release, held, free_slot)

        remaining = max(0.001, deadline - loop.time())
        cfut = self._couriers.submit(self._call, worker, operation, fn, args, remaining)
        cfut.add_done_callback(finished)
        grace = 0.0 if not worker.killable else 5.0  # a process worker stops itself at the deadline
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(cfut)), remaining + grace)
        except TimeoutError:
            raise ServiceTimeoutError(f"{operation} took longer than {timeout:g} s") from None

    def close(self, *, wait: bool = True) -> None:
        """Refuse new jobs, (by default) wait for the running ones, and stop the workers."""
        with self._lock:
            self._closed = True
        self._couriers.shutdown(wait=wait, cancel_futures=not wait)
        for w in self._workers:
            w.close()
