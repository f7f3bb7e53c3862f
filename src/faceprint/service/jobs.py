"""The model work of each route, as plain functions ``job(pipeline, *args)`` that an inference
worker process runs (:mod:`faceprint.service.inference`): decode the uploaded bytes, detect,
align, embed, and return a small picklable result. Nothing here touches a gallery or a key.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from ..attacks.policy import refuse_attack
from ..embedding.base import model_tag
from ..errors import FaceprintError, NoFaceError
from ..models import OperatingPoint
from ..pipeline import FacePipeline, select_faces
from ..quality.select import flag, refuse_low_quality
from ..scoring import decide
from ..types import Embedding, Face
from .schemas import (
    CorrespondenceOut,
    DecisionOut,
    DetectResponse,
    EmbedFace,
    EmbedResponse,
    ExplainResponse,
    FaceOut,
    ImageSize,
    VerifyResponse,
)
from .uploads import decode_image

__all__ = [
    "detect",
    "embed",
    "verify",
    "explain",
    "probe",
    "enrol_faces",
    "faces_of",
    "main_face",
    "embedding_of",
    "quality_flags",
]

Select = Literal["all", "largest", "central"]


def embedding_of(face: Face) -> Embedding:
    """The embedding of a face a job embedded (they all are)."""
    if face.embedding is None:  # pragma: no cover - main_face always embeds
        raise FaceprintError("the pipeline returned a face without an embedding")
    return face.embedding


def faces_of(pipe: FacePipeline, img: npt.NDArray[np.uint8], select: str, *, embed: bool) -> list[Face]:
    """The faces of a decoded photo: embedded, or (``embed=False``) only detected; each with its
    quality when the pipeline has a quality assessor (faces without landmarks cannot be assessed)."""
    dets = select_faces(pipe.detector.detect(img), img.shape, select)  # type: ignore[arg-type]
    if embed:
        return pipe.embed_detections(img, dets)
    if pipe.quality is None:
        return [Face(d) for d in dets]
    usable = [d for d in dets if d.landmarks is not None]
    reports = dict(zip(map(id, usable), pipe.quality.assess_batch([img] * len(usable), usable), strict=True))
    return [Face(d, quality=reports.get(id(d))) for d in dets]


def quality_flags(min_quality: float | None, **faces: Face) -> list[str]:
    """A line for each face below ``min_quality`` (keyword: the name the line gives it)."""
    return [m for what, f in faces.items() if (m := flag(f.quality, min_quality, what.replace("_", " ")))]


def main_face(pipe: FacePipeline, img: npt.NDArray[np.uint8], field: str, select: str) -> Face:
    """The main face, embedded (and screened when the pipeline has ``pad``); with the pipeline's
    ``refuse_attacks``, :class:`~faceprint.errors.AttackDetectedError` when it scores as an attack."""
    faces = faces_of(pipe, img, select, embed=True)
    if not faces:
        raise NoFaceError(f"no face found in '{field}'; upload a photo in which a face is clearly visible")
    return refuse_attack(faces[0], getattr(pipe, "refuse_attacks", False), f"'{field}'")


def detect(pipe: FacePipeline, data: bytes, max_pixels: int) -> DetectResponse:
    img = decode_image(data, "image", max_pixels=max_pixels)
    faces = faces_of(pipe, img, "all", embed=False)
    return DetectResponse(
        width=int(img.shape[1]), height=int(img.shape[0]), faces=[FaceOut.from_face(f) for f in faces]
    )


def embed(pipe: FacePipeline, data: bytes, select: Select, max_pixels: int) -> EmbedResponse:
    img = decode_image(data, "image", max_pixels=max_pixels)
    out = []
    for f in faces_of(pipe, img, select, embed=True):
        assert f.embedding is not None
        out.append(EmbedFace(**FaceOut.fields_of(f), embedding=[float(x) for x in f.embedding.vector]))
    e = pipe.embedder
    return EmbedResponse(
        model=model_tag(e),
        dim=e.dim,
        width=int(img.shape[1]),
        height=int(img.shape[0]),
        faces=out,
    )


def verify(
    pipe: FacePipeline, a: bytes, b: bytes, select: str, point: OperatingPoint, max_pixels: int
) -> VerifyResponse:
    img_a = decode_image(a, "image_a", max_pixels=max_pixels)
    img_b = decode_image(b, "image_b", max_pixels=max_pixels)
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
        flags=quality_flags(pipe.min_quality, image_a=fa, image_b=fb),
    )


def explain(
    pipe: FacePipeline,
    a: bytes,
    b: bytes,
    select: str,
    point: OperatingPoint,
    method: str,
    map_size: int,
    max_pixels: int,
) -> ExplainResponse:
    """Verify two photos and explain the score (occlusion: about 100 embeddings; xcos: one pass)."""
    import base64

    from ..explain.base import LIMITS
    from ..explain.pair import explain_pair
    from ..explain.render import composite, png_bytes
    from ..registry import explainers

    img_a = decode_image(a, "image_a", max_pixels=max_pixels)
    img_b = decode_image(b, "image_b", max_pixels=max_pixels)
    fa = main_face(pipe, img_a, "image_a", select)
    fb = main_face(pipe, img_b, "image_b", select)
    options = {"threads": pipe.embedder_options.get("threads")} if method == "xcos" else {}
    pe = explain_pair(
        img_a, fa.detection, img_b, fb.detection, pipe.embedder, explainers.create(method, **options), point
    )
    e = pe.explanation.to_dict(map_size=map_size, decimals=5)
    return ExplainResponse(
        **DecisionOut.fields_from(pe.decision),
        method=e["method"],
        reconstructed_score=e["reconstructed_score"],
        chip_size=e["chip_size"],
        map_size=e["map_size"],
        map_a=e["map_a"],
        map_b=e["map_b"],
        correspondences=[CorrespondenceOut(**c) for c in e["correspondences"]],
        png=base64.b64encode(png_bytes(composite(pe))).decode("ascii"),
        limits=LIMITS,
        face_a=FaceOut.from_face(fa),
        face_b=FaceOut.from_face(fb),
        image_a=ImageSize(width=int(img_a.shape[1]), height=int(img_a.shape[0])),
        image_b=ImageSize(width=int(img_b.shape[1]), height=int(img_b.shape[0])),
    )


def probe(pipe: FacePipeline, data: bytes, field: str, select: str, max_pixels: int) -> tuple[Face, int, int]:
    """The main face of one photo, embedded, with the photo's width and height."""
    img = decode_image(data, field, max_pixels=max_pixels)
    return main_face(pipe, img, field, select), int(img.shape[1]), int(img.shape[0])


def enrol_faces(pipe: FacePipeline, images: list[bytes], select: str, max_pixels: int) -> list[tuple[Face, int, int]]:
    """:func:`probe` of every photo of an enrolment: all must show a face, of at least the
    pipeline's ``min_quality`` (:class:`~faceprint.errors.LowQualityError` otherwise)."""
    out = []
    for i, data in enumerate(images):
        face, w, h = probe(pipe, data, f"images[{i}]", select, max_pixels)
        out.append((refuse_low_quality(face, pipe.min_quality, f"images[{i}]"), w, h))
    return out
