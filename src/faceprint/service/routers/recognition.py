"""``POST /v1/detect``, ``/v1/embed`` and ``/v1/verify``: stateless, images in, JSON out.

Each route authenticates first (no upload is parsed for an unknown caller), reads the form in
memory, checks every image's magic bytes, then runs the model work (:mod:`..jobs`: decode,
detect, embed) in an inference worker process, charged to the caller's key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from .. import jobs
from ..auth import APIKey, Role
from ..deps import ServiceState, get_state, require, upload_form
from ..schemas import DetectResponse, EmbedResponse, VerifyResponse
from ..uploads import check_image
from . import AUTH_ERRORS, OPERATING_POINT_PATTERN, UPLOAD_ERRORS, multipart_body, problems, resolve_point

router = APIRouter(prefix="/v1", tags=["recognition"])

Recognize = Annotated[APIKey, Depends(require(Role.RECOGNIZE))]
OperatingPointQ = Annotated[
    str,
    Query(pattern=OPERATING_POINT_PATTERN, description="calibrated threshold: 'fmr=0.001' or 'eer'"),
]
ThresholdQ = Annotated[
    float | None, Query(ge=-1.0, le=1.0, description="explicit cosine threshold (overrides operating_point)")
]
SelectOne = Annotated[
    Literal["largest", "central"], Query(description="which face of a photo with several: largest or central")
]


# --- routes ------------------------------------------------------------------------------------


@router.post(
    "/detect",
    response_model=DetectResponse,
    summary="Find the faces in a photo (boxes, scores, 5 landmarks)",
    openapi_extra=multipart_body({"image": "the photo"}, required=["image"]),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS),
)
async def detect(request: Request, key: Recognize) -> DetectResponse:
    state = get_state(request)
    s = state.settings
    form = await upload_form(request, max_files=1)
    data = form.file("image")
    check_image(data, "image", max_bytes=s.max_image_bytes)
    out = await state.require_pool().run("detect", jobs.detect, data, s.max_pixels, owner=key.id)
    state.metrics.faces.inc(len(out.faces))
    return out


@router.post(
    "/embed",
    response_model=EmbedResponse,
    summary="Face templates (embeddings) of a photo",
    description="Templates are biometric data: store them like passwords, or better, not at all.",
    openapi_extra=multipart_body({"image": "the photo"}, required=["image"]),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS),
)
async def embed(
    request: Request,
    key: Recognize,
    select: Annotated[Literal["all", "largest", "central"], Query(description="faces to embed")] = "all",
) -> EmbedResponse:
    state = get_state(request)
    s = state.settings
    form = await upload_form(request, max_files=1)
    data = form.file("image")
    check_image(data, "image", max_bytes=s.max_image_bytes)
    result = await state.require_pool().run("embed", jobs.embed, data, select, s.max_pixels, owner=key.id)
    state.metrics.faces.inc(len(result.faces))
    return result


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Are the main faces of two photos the same person? (1:1)",
    openapi_extra=multipart_body(
        {"image_a": "first photo", "image_b": "second photo"}, required=["image_a", "image_b"]
    ),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS),
)
async def verify(
    request: Request,
    key: Recognize,
    operating_point: OperatingPointQ = "fmr=0.001",
    threshold: ThresholdQ = None,
    select: SelectOne = "largest",
) -> VerifyResponse:
    state, a, b = await two_photos(request)
    pool = state.require_pool()
    point = resolve_point(pool.embedder_model_id, operating_point, threshold)
    return await pool.run("verify", jobs.verify, a, b, select, point, state.settings.max_pixels, owner=key.id)


async def two_photos(request: Request) -> tuple[ServiceState, bytes, bytes]:
    """The service state and the ``image_a`` and ``image_b`` files of a 1:1 request, checked."""
    state = get_state(request)
    form = await upload_form(request, max_files=2)
    a, b = form.file("image_a"), form.file("image_b")
    check_image(a, "image_a", max_bytes=state.settings.max_image_bytes)
    check_image(b, "image_b", max_bytes=state.settings.max_image_bytes)
    return state, a, b
