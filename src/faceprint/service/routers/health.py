"""``/healthz`` (the process answers), ``/readyz`` (models loaded) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ..deps import get_state
from ..schemas import Health, Readiness
from . import problems

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: models loaded, ready for traffic",
    responses={503: {"model": Readiness, "description": "Not ready yet (or shutting down)"}},
)
async def readyz(request: Request) -> Response:
    state = get_state(request)
    ready = state.ready and not state.draining and state.pool is not None
    body = Readiness(
        ready=ready,
        detector=state.pool.detector_name if state.pool else None,
        model=state.pool.model if state.pool else None,
        workers=state.pool.size if state.pool else None,
        pending=state.pool.pending if state.pool else None,
        gallery=state.galleries is not None,
        template_encryption=state.settings.template_key is not None,
        quality=state.pool.quality if state.pool else None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics: request counts, latencies, inference time",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}, **problems()},
)
async def metrics(request: Request) -> Response:
    return Response(get_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
