"""Request and response bodies of the REST API (pydantic models; they make the OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..attacks.policy import attack_scores
from ..pipeline import ImageResult
from ..types import Decision, Face, QualityReport

__all__ = [
    "Problem",
    "ValidationIssue",
    "QualityComponentOut",
    "QualityOut",
    "FaceOut",
    "DetectResponse",
    "EmbedFace",
    "EmbedResponse",
    "DecisionOut",
    "VerifyResponse",
    "Health",
    "Readiness",
    "GalleryCreate",
    "GalleryOut",
    "GalleryList",
    "SubjectOut",
    "SubjectList",
    "EnrolFace",
    "EnrolResponse",
    "Candidate",
    "IdentifyResponse",
    "SubjectVerifyResponse",
    "Deleted",
    "CorrespondenceOut",
    "ExplainResponse",
]

_strict = ConfigDict(extra="forbid")


class ValidationIssue(BaseModel):
    loc: list[str]
    msg: str
    type: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details). Branch on ``code``: it is stable per error class."""

    type: str = Field(description="URI naming the problem type: urn:faceprint:problem:<code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. no_face, image_decode_error, forbidden")
    instance: str | None = None
    request_id: str | None = None
    errors: list[ValidationIssue] | None = None


class QualityComponentOut(BaseModel):
    value: float = Field(description="the native measurement, in its own unit (pixels, degrees, a fraction…)")
    quality: float = Field(description="that value mapped to 0-100 (higher is better)")


class QualityOut(BaseModel):
    """Face image quality in the manner of ISO/IEC 29794-5 (see ``faceprint quality``)."""

    quality: float = Field(description="unified quality 0-100: higher predicts fewer recognition errors")
    components: dict[str, QualityComponentOut] = Field(
        description="measured components (inter-eye distance, sharpness, exposure, pose, compression, noise, crop…)"
    )
    assessor: str = Field(description="the assessor and model version that made the report, e.g. fiqa-fast@1")
    reasons: list[str] = Field(
        default_factory=list, description="the weakest components in words (e.g. 'blurred', 'yaw 38°')"
    )

    @classmethod
    def from_report(cls, report: QualityReport) -> QualityOut:
        from ..quality.select import reasons

        d = report.to_dict()
        return cls(**d, reasons=reasons(report))


class AttackOut(BaseModel):
    """An attack detector's verdict on a face (see ``faceprint pad``): higher = more likely an attack."""

    score: float = Field(description="attack score in [0, 1]; higher = more likely an attack")
    is_attack: bool = Field(description="score >= threshold")
    threshold: float
    detector: str = Field(description="the backend and model that scored (scores of different detectors differ)")
    kind: str = Field(description="presentation (liveness), deepfake or morph")
    details: dict[str, float] = Field(default_factory=dict, description="sub-scores, e.g. each model of an ensemble")


class FaceOut(BaseModel):
    bbox: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the decoded (EXIF-rotated) image")
    score: float
    landmarks: list[list[float]] | None = Field(None, description="5 points [x, y]")
    landmark_scheme: str | None = None
    detector: str = ""
    quality: QualityOut | None = Field(
        None, description="the face's image quality, when the server runs a quality assessor (FACEPRINT_QUALITY)"
    )
    liveness: AttackOut | None = Field(
        None, description="the face's attack screening, when the server runs an attack detector (FACEPRINT_PAD)"
    )

    @staticmethod
    def fields_of(face: Face) -> dict[str, Any]:
        """The fields of a face: its detection and, when assessed, its quality."""
        q = None if face.quality is None else QualityOut.from_report(face.quality)
        attacks = attack_scores(face.attack)
        live = AttackOut(**attacks[0].to_dict()) if attacks else None
        return {**face.detection.to_dict(), "quality": q, "liveness": live}

    @classmethod
    def from_face(cls, face: Face) -> FaceOut:
        return cls(**cls.fields_of(face))


class DetectResponse(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]


class EmbedFace(FaceOut):
    embedding: list[float] = Field(description="L2-normalised template of the face's embedder")


class EmbedResponse(BaseModel):
    model: str = Field(description="model_id@model_version: embeddings are comparable only within one model")
    dim: int
    width: int
    height: int
    faces: list[EmbedFace]

    @classmethod
    def from_result(cls, model: str, dim: int, result: ImageResult) -> EmbedResponse:
        faces = []
        for f in result.faces:
            assert f.embedding is not None
            faces.append(EmbedFace(**FaceOut.fields_of(f), embedding=[float(x) for x in f.embedding.vector]))
        return cls(model=model, dim=dim, width=result.width, height=result.height, faces=faces)


class DecisionOut(BaseModel):
    match: bool
    score: float = Field(description="cosine similarity, higher is more alike")
    threshold: float
    operating_point: str = Field(description="'fmr=0.001', 'eer' or 'custom'")
    fmr: float | None = Field(None, description="false match rate calibrated at this threshold (null if custom)")
    model: str

    @staticmethod
    def fields_from(d: Decision) -> dict[str, Any]:
        fmr = None if d.fmr != d.fmr else float(d.fmr)
        return {
            "match": bool(d.match),
            "score": round(float(d.score), 6),
            "threshold": round(float(d.threshold), 6),
            "operating_point": d.operating_point,
            "fmr": fmr,
            "model": d.model,
        }


class ImageSize(BaseModel):
    width: int
    height: int


class VerifyResponse(DecisionOut):
    face_a: FaceOut
    face_b: FaceOut
    image_a: ImageSize
    image_b: ImageSize
    flags: list[str] = Field(
        default_factory=list,
        description="a face below the server's min_quality, and why (e.g. 'image a: quality 31 below 40 (blurred)'); "
        "it is compared all the same",
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    detector: str | None = None
    model: str | None = None
    workers: int | None = None
    pending: int | None = None
    gallery: bool = Field(False, description="whether gallery routes are available")
    template_encryption: bool = False
    quality: str | None = Field(None, description="the quality assessor faces are assessed with (null: off)")


# --- galleries -------------------------------------------------------------------------------


class GalleryCreate(BaseModel):
    model_config = _strict
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="letters, digits, '_', '.', '-'")
    keep_source_images: bool | None = Field(
        None, description="keep enrolled photos on disk (default: the service setting, normally false)"
    )
    protect: Literal["biohash", "iom", "ckks"] | None = Field(
        None,
        description="store only protected templates (docs/template-protection.md): biohash or iom (cancelable "
        "hashes, Hamming search) or ckks (encrypted, linear scan); the key derives from the server's secret "
        "(FACEPRINT_PROTECT_SECRET_FILE), never sent in a request. Fixed at creation.",
    )


class GalleryOut(BaseModel):
    name: str
    status: Literal["ok", "damaged", "locked"] = Field(
        "ok",
        description="damaged: its data cannot be read (see problem); an admin can delete it. locked: a "
        "protected gallery this server's protection secret does not open",
    )
    problem: str | None = Field(None, description="what is wrong with a damaged gallery")
    model: str | None = None
    subjects: int | None = None
    templates: int | None = None
    keep_source_images: bool | None = None
    encrypted: bool | None = None
    protection: str | None = Field(None, description="biohash, iom or ckks for a protected gallery; null: plain")
    threshold: float | None = Field(None, description="a protected gallery's decision threshold on its own score")
    created_at: str | None = None


class GalleryList(BaseModel):
    galleries: list[GalleryOut]


class SubjectOut(BaseModel):
    id: str
    templates: int | None = None
    created_at: str | None = None
    updated_at: str | None = None


class SubjectList(BaseModel):
    gallery: str
    subjects: list[SubjectOut]
    total: int


class EnrolFace(FaceOut):
    image: int = Field(description="index of the uploaded image this face comes from")
    image_width: int | None = None
    image_height: int | None = None
    template_id: int


class EnrolResponse(BaseModel):
    gallery: str
    subject: str
    added: int = Field(description="templates added by this request")
    templates: int | None = Field(None, description="templates the subject has now")
    faces: list[EnrolFace]


class Candidate(BaseModel):
    subject: str
    score: float = Field(description="subject score: max (or mean) cosine over its templates")
    rank: int


class IdentifyResponse(BaseModel):
    gallery: str
    identified: str | None = Field(description="best candidate at or above the threshold, else null (not enrolled)")
    candidates: list[Candidate] = Field(
        description="up to top_k subjects whose score reaches the open-set threshold, best first; "
        "subjects below it are never returned"
    )
    threshold: float | None = Field(description="open-set threshold used (null for an empty gallery)")
    threshold_source: str
    model: str
    face: FaceOut
    width: int
    height: int
    flags: list[str] = Field(
        default_factory=list,
        description="a face below the server's min_quality, and why (e.g. 'image a: quality 31 below 40 (blurred)'); "
        "it is compared all the same",
    )


class SubjectVerifyResponse(DecisionOut):
    gallery: str
    subject: str
    face: FaceOut
    width: int
    height: int
    flags: list[str] = Field(
        default_factory=list,
        description="a face below the server's min_quality, and why (e.g. 'image a: quality 31 below 40 (blurred)'); "
        "it is compared all the same",
    )


class Deleted(BaseModel):
    deleted: str
    templates: int | None = Field(None, description="templates removed with it")


# --- explanations ----------------------------------------------------------------------------


class CorrespondenceOut(BaseModel):
    a: list[float] = Field(description="[x, y] centre of the patch in aligned chip A (pixels)")
    b: list[float] = Field(description="[x, y] centre of the best-matching patch in aligned chip B")
    similarity: float = Field(description="cosine of the two patches' feature vectors")
    weight: float = Field(description="strength of the correspondence (larger: stronger)")


class ExplainResponse(DecisionOut):
    method: str = Field(description="occlusion or xcos")
    reconstructed_score: float | None = Field(
        None, description="xcos: the weighted sum of patch cosines, the method's estimate of score"
    )
    chip_size: int = Field(description="side of the aligned face chips the maps cover, in pixels")
    map_size: int = Field(description="cells per side of map_a and map_b (block means of the per-pixel maps)")
    map_a: list[list[float]] = Field(
        description="rows of cells over chip A: higher = more of the similarity comes from there; "
        "negative = that region pulls the faces apart"
    )
    map_b: list[list[float]] = Field(description="the same for chip B")
    correspondences: list[CorrespondenceOut] = Field(description="xcos: strongest patch matches, strongest first")
    png: str = Field(
        description="base64 PNG: both aligned faces side by side with the maps overlaid (red: "
        "similarity comes from there, blue: pulls apart) and the correspondences as lines"
    )
    limits: str = Field(description="what a map means and what it does not")
    face_a: FaceOut
    face_b: FaceOut
    image_a: ImageSize
    image_b: ImageSize
