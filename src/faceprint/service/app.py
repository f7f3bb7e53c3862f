"""``create_app(settings)``: the FastAPI app of ``faceprint serve``.

Request path: ServiceMiddleware (request id, metrics, security headers) → BodyLimitMiddleware
(413 before reading an oversized body) → route: auth dependency (401/403/429) → in-memory
multipart form → header check (415/413/422) → inference pool thread → JSON, or problem+json.

Importing this module loads no model; the lifespan builds the pipelines (one detector per
worker thread, one shared embedder) and opens the galleries, and on shutdown stops taking
writes, waits for the enrolments in flight, then closes the pool.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import ConfigurationError, CorruptStoreError
from ..pipeline import FacePipeline
from .audit import AuditLog
from .auth import Authenticator, KeyStore
from .deps import ServiceState
from .errors import PROBLEM_JSON, install_error_handlers
from .inference import InferencePool
from .metrics import Metrics, ServiceMiddleware
from .settings import ServiceSettings, ensure_private_dir
from .uploads import BodyLimitMiddleware

__all__ = ["create_app", "prepare", "openapi_json", "API_DESCRIPTION"]

log = logging.getLogger(__name__)

API_DESCRIPTION = """\
Face detection, verification (1:1) and identification (1:N) over HTTP.

**Authentication**: every `/v1` route needs an API key, sent as `Authorization: Bearer fp_<id>_<secret>`
or `X-API-Key: fp_<id>_<secret>`. Keys are made with `faceprint keys create --role admin|enroll|recognize
[--gallery NAME]`. 401: no key, or a malformed, unknown or revoked one (an unknown id and a wrong secret get
the same answer); 403: the key's role or gallery scope does not allow the request; 429: the key's rate limit,
or too many failed authentications from the client address (see `Retry-After`). Keys below admin cannot
loosen the thresholds of gallery searches, and get at most 10 identify candidates.

**Inference** runs in worker processes: a slow image never stalls the other requests. One key has at most
all workers but one busy; a job running past the time limit is stopped (504).

**Uploads**: images are sent as `multipart/form-data`, held in memory only, and identified by their
content (magic bytes), never by the declared type. Limits: request bytes, bytes per image and pixels per
image (413), non-images (415), broken images (422).

**Errors** are `application/problem+json` with a stable `code` (e.g. `no_face`, `image_decode_error`,
`embedding_mismatch`, `unauthorized`, `forbidden`, `rate_limited`, `payload_too_large`).
"""


def _gallery_router() -> Any:
    try:
        from .routers import galleries
    except ImportError as exc:  # faceprint.gallery not installed / not importable
        log.warning("gallery routes disabled: %s", exc)
        return None
    return galleries


def _lifespan(
    settings: ServiceSettings, metrics: Metrics, galleries_mod: Any
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up (galleries, inference workers) and shut-down (drain enrolments, stop workers)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: ServiceState = app.state.faceprint
        state.draining = False
        state.writes_idle = asyncio.Event()
        state.writes_idle.set()
        await anyio.to_thread.run_sync(lambda: prepare(app))
        assert state.pool is not None
        state.ready = True
        metrics.ready.set(1)
        log.info(
            "faceprint service ready: %s, %d worker(s), data dir %s",
            state.pool.model,
            state.pool.size,
            settings.data_dir,
        )
        try:
            yield
        finally:
            state.draining = True
            state.ready = False
            metrics.ready.set(0)
            if state.writes_in_flight:
                log.info("waiting for %d enrolment(s) in flight", state.writes_in_flight)
                try:
                    await asyncio.wait_for(state.writes_idle.wait(), settings.shutdown_timeout_s)
                except TimeoutError:
                    log.error(
                        "%d enrolment(s) still running after %gs", state.writes_in_flight, settings.shutdown_timeout_s
                    )
            pool = state.pool
            await anyio.to_thread.run_sync(lambda: pool.close(wait=True))
            if state.galleries is not None and galleries_mod is not None:
                await anyio.to_thread.run_sync(galleries_mod.close_store, state.galleries)
            log.info("faceprint service stopped")

    return lifespan


def create_app(
    settings: ServiceSettings | None = None,
    *,
    pipelines: Sequence[FacePipeline] | None = None,
) -> FastAPI:
    """Build the service app. ``pipelines`` (already built) skips model loading, for tests and
    benchmarks that run several apps in one process; their number sets the worker count."""
    settings = settings or ServiceSettings()
    metrics = Metrics()
    galleries_mod = _gallery_router()

    lifespan = _lifespan(settings, metrics, galleries_mod)

    app = FastAPI(
        title="faceprint",
        version=__version__,
        summary="Face recognition you can measure: detect, verify, identify.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not in a locked-down service
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    ensure_private_dir(settings.data_dir)
    keys = KeyStore(settings.keys_db)
    app.state.faceprint_pipelines = list(pipelines) if pipelines else None
    app.state.faceprint = ServiceState(
        settings=settings,
        metrics=metrics,
        keys=keys,
        auth=Authenticator(
            keys,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            failures_per_minute=settings.auth_failures_per_minute,
        ),
        audit=AuditLog(settings.audit_log),
    )
    install_error_handlers(app)

    from .routers import explain, health, morph, recognition, web

    app.include_router(health.router)
    app.include_router(recognition.router)
    app.include_router(explain.router)
    app.include_router(importlib.import_module(".video", __package__).router)  # POST /v1/video (issue 15)
    app.include_router(morph.router)
    if galleries_mod is not None:
        app.include_router(galleries_mod.router)
    if settings.enable_web_page:
        app.include_router(web.router)
        app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(ServiceMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def prepare(app: FastAPI) -> None:
    """Open the galleries and start the inference workers (loads the models), blocking.

    ``faceprint serve`` calls it before the server listens, so a locked or damaged store, or a
    missing model, ends the command with one clear error; the lifespan calls it otherwise (it
    does nothing the second time). Refuses to start (raises) when the galleries are locked
    (encrypted without the key, or the wrong key) or the encrypted store is damaged; any other
    trouble with the gallery folder leaves the recognition routes working.
    """
    state: ServiceState = app.state.faceprint
    settings = state.settings
    galleries_mod = _gallery_router()
    if galleries_mod is not None and state.galleries is None and state.gallery_error is None:
        try:
            state.galleries = galleries_mod.open_store(settings)
            log.info("galleries: %s", ", ".join(state.galleries.names()) or "(none yet)")
        except (ConfigurationError, CorruptStoreError):
            raise
        except Exception as exc:  # a damaged gallery folder: the recognition routes still work
            state.gallery_error = str(exc)
            log.error("cannot open the galleries in %s: %s", settings.gallery_dir, exc)
    if state.pool is None:
        pipelines = app.state.faceprint_pipelines
        try:
            if pipelines:
                state.pool = InferencePool(pipelines, settings, state.metrics)
            else:
                state.pool = InferencePool.start(settings, state.metrics)
        except BaseException:
            if state.galleries is not None and galleries_mod is not None:
                galleries_mod.close_store(state.galleries)
                state.galleries = None
            raise


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec, with every error response as application/problem+json only."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    replaced = {"#/components/schemas/Problem", "#/components/schemas/HTTPValidationError"}
    for path_item in spec.get("paths", {}).values():
        for op in path_item.values():
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content") or {}
                refs = {(c.get("schema") or {}).get("$ref") for c in content.values()}
                if status.isdigit() and int(status) >= 400 and refs & replaced:
                    resp["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
                    if status == "422" and resp.get("description") == "Validation Error":
                        resp["description"] = "Invalid request (problem+json with code validation_error)"
    schemas = spec.get("components", {}).get("schemas", {})
    text = json.dumps(spec.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"#/components/schemas/{name}" not in text:
            del schemas[name]
    app.openapi_schema = spec
    return spec


def openapi_json(settings: ServiceSettings | None = None) -> str:
    """The OpenAPI document as committed in ``service/openapi.json`` (stable text, newline-terminated)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="faceprint-openapi-") as tmp:  # the spec never depends on data_dir
        base = settings or ServiceSettings(data_dir=Path(tmp))
        app = create_app(base.with_(data_dir=Path(tmp)))
        return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
