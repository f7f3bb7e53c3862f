"""``POST /v1/explain``: verify two photos and say where the similarity comes from.

The same checks as ``/v1/verify`` (authenticate first, magic bytes, sizes), then the model work
(:func:`..jobs.explain`: detect, align, explain, draw) in an inference worker process, charged
to the caller's key and bounded by the same time limit. Role: ``recognize``, like verify: the
answer holds nothing the caller did not upload, only maps of the two faces they sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from .. import jobs
from ..schemas import ExplainResponse
from . import AUTH_ERRORS, UPLOAD_ERRORS, multipart_body, problems, resolve_point
from .recognition import OperatingPointQ, Recognize, SelectOne, ThresholdQ, two_photos

router = APIRouter(prefix="/v1", tags=["recognition"])

MethodQ = Annotated[
    Literal["occlusion", "xcos"],
    Query(
        description="occlusion: hide each region and measure the drop (any model; about 100 embeddings); "
        "xcos: patch cosines at a late layer (dlib ResNet), with correspondences"
    ),
]
MapSizeQ = Annotated[int, Query(ge=2, le=64, description="cells per side of the returned maps")]


@router.post(
    "/explain",
    response_model=ExplainResponse,
    summary="Why do two faces match (or not)? Similarity maps and a picture (1:1)",
    description="A map shows where the model's similarity comes from, not why a person is who they are "
    "(see `limits` in the answer).",
    openapi_extra=multipart_body(
        {"image_a": "first photo", "image_b": "second photo"}, required=["image_a", "image_b"]
    ),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS),
)
async def explain(
    request: Request,
    key: Recognize,
    method: MethodQ = "occlusion",
    operating_point: OperatingPointQ = "fmr=0.001",
    threshold: ThresholdQ = None,
    select: SelectOne = "largest",
    map_size: MapSizeQ = 30,
) -> ExplainResponse:
    state, a, b = await two_photos(request)
    pool = state.require_pool()
    point = resolve_point(pool.embedder_model_id, operating_point, threshold)
    max_pixels = state.settings.max_pixels
    return await pool.run("explain", jobs.explain, a, b, select, point, method, map_size, max_pixels, owner=key.id)
