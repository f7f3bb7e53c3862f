"""``POST /v1/morph/detect``: is this (passport) photo a morph?

With a ``trusted`` photo of the claimed person (a live capture at the gate), differential
detection (``dmad``); without one, single-image detection (``smad``, weak across morphing tools).
The same checks as ``/v1/verify`` (authenticate first, magic bytes, sizes), then the model work
in an inference worker process, charged to the caller's key. Role: ``recognize``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..deps import get_state, upload_form
from ..uploads import check_image
from . import AUTH_ERRORS, UPLOAD_ERRORS, multipart_body, problems
from .recognition import Recognize, SelectOne

if TYPE_CHECKING:
    from ...pipeline import FacePipeline

router = APIRouter(prefix="/v1", tags=["attacks"])


class MorphDetectResponse(BaseModel):
    score: float = Field(description="morph score in [0, 1]: higher = more likely a morph")
    is_morph: bool = Field(description="score >= threshold")
    threshold: float
    detector: str = Field(description="dmad@… (with a trusted photo) or smad@… (without)")
    differential: bool = Field(description="whether a trusted photo was used (D-MAD)")
    note: str = Field(description="what the verdict can and cannot say")


_NOTE_SMAD = (
    "single-image detection (S-MAD) learns the traces of the morphing tools it was trained on and is weak "
    "against others; send a trusted live photo of the claimed person for differential detection"
)
_NOTE_DMAD = "differential detection (D-MAD) against the trusted photo"


def detect_job(
    pipe: FacePipeline, image: bytes, trusted: bytes | None, select: str, max_pixels: int
) -> MorphDetectResponse:
    """Score one photo (and its trusted counterpart) in an inference worker."""
    from ...attacks.mad import DMad, SMad
    from ..jobs import main_face
    from ..uploads import decode_image

    img = decode_image(image, "image", max_pixels=max_pixels)
    face = main_face(pipe, img, "image", select)
    if trusted is None:
        s = SMad().score(img, face.detection)
        note = _NOTE_SMAD
    else:
        timg = decode_image(trusted, "trusted", max_pixels=max_pixels)
        tface = main_face(pipe, timg, "trusted", select)
        s = DMad(embedder=pipe.embedder).score_pair(img, face.detection, timg, tface.detection)
        note = _NOTE_DMAD
    return MorphDetectResponse(
        score=s.score,
        is_morph=s.is_attack,
        threshold=s.threshold,
        detector=s.detector,
        differential=trusted is not None,
        note=note,
    )


@router.post(
    "/morph/detect",
    response_model=MorphDetectResponse,
    summary="Is this photo a face morph? (D-MAD with a trusted photo, S-MAD without)",
    openapi_extra=multipart_body(
        {"image": "the suspected photo (e.g. presented for enrolment)", "trusted": "optional: a trusted live photo"},
        required=["image"],
    ),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS),
)
async def morph_detect(request: Request, key: Recognize, select: SelectOne = "largest") -> MorphDetectResponse:
    state = get_state(request)
    form = await upload_form(request, max_files=2)
    image = form.file("image")
    check_image(image, "image", max_bytes=state.settings.max_image_bytes)
    trusted = form.files.get("trusted")
    trusted_bytes = form.file("trusted") if trusted else None
    if trusted_bytes is not None:
        check_image(trusted_bytes, "trusted", max_bytes=state.settings.max_image_bytes)
    pool = state.require_pool()
    max_pixels = state.settings.max_pixels
    return await pool.run("morph_detect", detect_job, image, trusted_bytes, select, max_pixels, owner=key.id)
