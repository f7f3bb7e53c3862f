"""``POST /v1/detect``, ``/v1/embed`` and ``/v1/verify``: stateless, images in, JSON out.

Each route authenticates first (no upload is parsed for an unknown caller), reads the form in
memory, checks every image's header, then runs the model work in the inference pool.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Depends, Query, Request

from ...errors import NoFaceError
from ...pipeline import FacePipeline, select_faces
from ...scoring import decide
from ...types import Face
from ..auth import APIKey, Role
from ..deps import get_state, require, upload_form
from ..schemas import DecisionOut, DetectResponse, EmbedFace, EmbedResponse, FaceOut, ImageSize, VerifyResponse
from ..uploads import check_image, decode_image
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


# --- work done in the inference threads --------------------------------------------------------


def faces_of(pipe: FacePipeline, img: npt.NDArray[np.uint8], select: str, *, embed: bool) -> list[Face]:
    dets = select_faces(pipe.detector.detect(img), img.shape, select)  # type: ignore[arg-type]
    if not embed:
        return [Face(d) for d in dets]
    return pipe.embed_detections(img, dets)


def main_face(pipe: FacePipeline, img: npt.NDArray[np.uint8], field: str, select: str) -> Face:
    faces = faces_of(pipe, img, select, embed=True)
    if not faces:
        raise NoFaceError(f"no face found in '{field}'; upload a photo in which a face is clearly visible")
    return faces[0]


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
    pool = state.require_pool()

    def job(pipe: FacePipeline) -> DetectResponse:
        img = decode_image(data, "image", max_pixels=s.max_pixels)
        faces = faces_of(pipe, img, "all", embed=False)
        return DetectResponse(
            width=int(img.shape[1]), height=int(img.shape[0]), faces=[FaceOut.from_face(f) for f in faces]
        )

    out = await pool.run("detect", job)
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
    pool = state.require_pool()

    def job(pipe: FacePipeline) -> EmbedResponse:
        img = decode_image(data, "image", max_pixels=s.max_pixels)
        faces = faces_of(pipe, img, select, embed=True)
        out = []
        for f in faces:
            assert f.embedding is not None
            out.append(EmbedFace(**f.detection.to_dict(), embedding=[float(x) for x in f.embedding.vector]))
        return EmbedResponse(
            model=pool.model, dim=pipe.embedder.dim, width=int(img.shape[1]), height=int(img.shape[0]), faces=out
        )

    result = await pool.run("embed", job)
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
    state = get_state(request)
    s = state.settings
    form = await upload_form(request, max_files=2)
    a = form.file("image_a")
    b = form.file("image_b")
    check_image(a, "image_a", max_bytes=s.max_image_bytes)
    check_image(b, "image_b", max_bytes=s.max_image_bytes)
    pool = state.require_pool()
    point = resolve_point(pool.embedder_model_id, operating_point, threshold)

    def job(pipe: FacePipeline) -> VerifyResponse:
        img_a = decode_image(a, "image_a", max_pixels=s.max_pixels)
        img_b = decode_image(b, "image_b", max_pixels=s.max_pixels)
        fa = main_face(pipe, img_a, "image_a", select)
        fb = main_face(pipe, img_b, "image_b", select)
        assert fa.embedding is not None and fb.embedding is not None
        d = decide(fa.embedding, fb.embedding, point)
        return VerifyResponse(
            **DecisionOut.fields_from(d),
            face_a=FaceOut.from_face(fa),
            face_b=FaceOut.from_face(fb),
            image_a=ImageSize(width=int(img_a.shape[1]), height=int(img_a.shape[0])),
            image_b=ImageSize(width=int(img_b.shape[1]), height=int(img_b.shape[0])),
        )

    return await pool.run("verify", job)
