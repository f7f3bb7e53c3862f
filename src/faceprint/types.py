"""The values that flow between pipeline stages: frozen dataclasses, no behaviour that loads models.

Data flow::

    image ──io──▶ RGB uint8 (H, W, 3) ──detection──▶ [Detection]
          ──alignment──▶ AlignedFace ──quality──▶ QualityReport
          ──embedding──▶ Embedding ──scoring──▶ Decision
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import ConfigurationError, EmbeddingMismatchError, InvalidEmbeddingError

__all__ = [
    "BBox",
    "Landmarks",
    "Detection",
    "AlignedFace",
    "Embedding",
    "Face",
    "Decision",
    "LandmarkScheme",
    "QualityComponent",
    "QualityReport",
    "AttackScore",
]

#: Names of the 5-point landmark orders faceprint understands.
#:
#: ``"dlib5"``: dlib's shape_predictor_5 order (outer and inner corner of the eye on the
#: image's right, outer and inner corner of the eye on the image's left, base of the nose).
#: ``"arcface5"``: InsightFace order (centre of the eye on the image's left, centre of the eye
#: on the image's right, nose tip, left mouth corner, right mouth corner).
LandmarkScheme = Literal["dlib5", "arcface5"]


@dataclass(frozen=True, slots=True)
class BBox:
    """Axis-aligned box in pixel coordinates of the decoded image, ``x2``/``y2`` exclusive."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass(frozen=True, slots=True, eq=False)
class Landmarks:
    """Five facial points, ``points`` float32 of shape (5, 2) as (x, y), in a named order."""

    points: npt.NDArray[np.float32]
    scheme: LandmarkScheme

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32)
        if pts.shape != (5, 2):
            raise ValueError(f"landmarks must have shape (5, 2), got {pts.shape}")
        object.__setattr__(self, "points", pts)

    def eye_centers(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(eye on the image's left, eye on the image's right) centres, each (2,)."""
        p = self.points
        if self.scheme == "arcface5":
            return p[0], p[1]
        a = (p[0] + p[1]) / 2.0
        b = (p[2] + p[3]) / 2.0
        return (a, b) if a[0] <= b[0] else (b, a)

    def nose(self) -> npt.NDArray[np.float32]:
        return self.points[2] if self.scheme == "arcface5" else self.points[4]

    def as_list(self) -> list[list[float]]:
        return [[float(x), float(y)] for x, y in self.points]


@dataclass(frozen=True, slots=True, eq=False)
class Detection:
    """One face found in an image."""

    bbox: BBox
    score: float
    landmarks: Landmarks | None = None
    detector: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": [round(v, 2) for v in self.bbox.as_list()],
            "score": round(float(self.score), 4),
            "landmarks": None
            if self.landmarks is None
            else [[round(x, 2), round(y, 2)] for x, y in self.landmarks.as_list()],
            "landmark_scheme": None if self.landmarks is None else self.landmarks.scheme,
            "detector": self.detector,
        }


@dataclass(frozen=True, slots=True, eq=False)
class AlignedFace:
    """A canonical face crop: ``image`` uint8 (S, S, 3) RGB, made by ``transform`` (2, 3)
    which maps source-image pixel coordinates to crop coordinates."""

    image: npt.NDArray[np.uint8]
    template: str
    transform: npt.NDArray[np.float64]
    detection: Detection | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Embedding:
    """A face template: ``vector`` float32 of shape (D,), L2-normalised, tagged with its model.

    Embeddings from different ``model_id`` or ``model_version`` are not comparable;
    :meth:`check_compatible` raises :class:`EmbeddingMismatchError` for such pairs.
    """

    vector: npt.NDArray[np.float32]
    model_id: str
    model_version: str

    def __post_init__(self) -> None:
        v = np.asarray(self.vector, dtype=np.float32)
        if v.ndim != 1 or v.size == 0:
            raise InvalidEmbeddingError(f"an embedding must be a non-empty 1-D vector, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise InvalidEmbeddingError("embedding contains NaN or infinite values")
        n = float(np.linalg.norm(v))
        if n == 0.0:
            raise InvalidEmbeddingError("embedding has zero norm and cannot be compared")
        if abs(n - 1.0) > 1e-3:
            v = v / n
        v.setflags(write=False)
        object.__setattr__(self, "vector", v)

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    @property
    def model(self) -> str:
        """``model_id@model_version``, the tag stored beside templates."""
        return f"{self.model_id}@{self.model_version}"

    def check_compatible(self, other: Embedding) -> None:
        if self.model_id != other.model_id or self.model_version != other.model_version:
            raise EmbeddingMismatchError(
                f"cannot compare embeddings of {self.model} and {other.model}: re-embed both faces with the same model"
            )
        if self.dim != other.dim:
            raise EmbeddingMismatchError(f"embedding dimensions differ: {self.dim} vs {other.dim}")


@dataclass(frozen=True, slots=True)
class QualityComponent:
    """One measured quality component of a face image (ISO/IEC 29794-5 style).

    ``value`` is the native measurement in its own unit (pixels, degrees, a fraction, bits…);
    ``quality`` is that value mapped to 0–100 (higher is better) by the component's documented
    mapping (see :mod:`faceprint.quality.components`).
    """

    value: float
    quality: float

    def __post_init__(self) -> None:
        v, q = float(self.value), float(self.quality)
        if not (math.isfinite(v) and math.isfinite(q) and 0.0 <= q <= 100.0):
            raise ConfigurationError(
                f"a quality component needs a finite value and a quality in [0, 100], got {v}, {q}"
            )
        object.__setattr__(self, "value", v)
        object.__setattr__(self, "quality", q)

    def to_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "quality": round(self.quality, 1)}


@dataclass(frozen=True, slots=True, eq=False)
class QualityReport:
    """How usable one face image is for recognition.

    Attributes:
        quality: the unified quality score, 0–100, higher predicts fewer recognition errors.
        components: component name → :class:`QualityComponent`, in a fixed order.
        assessor: the backend and model that made the report (``"fiqa@2"``); scores of
            different assessors are not on one scale.
    """

    quality: float
    components: Mapping[str, QualityComponent]
    assessor: str = ""

    def __post_init__(self) -> None:
        q = float(self.quality)
        if not (math.isfinite(q) and 0.0 <= q <= 100.0):
            raise ConfigurationError(f"a unified quality score must lie in [0, 100], got {q}")
        object.__setattr__(self, "quality", q)
        object.__setattr__(self, "components", dict(self.components))

    def __getitem__(self, name: str) -> QualityComponent:
        return self.components[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.components)

    def weakest(self, n: int = 3, *, below: float = 100.0) -> list[tuple[str, QualityComponent]]:
        """The ``n`` components of lowest quality that are under ``below``, worst first."""
        low = [(k, c) for k, c in self.components.items() if c.quality < below]
        return sorted(low, key=lambda kc: kc[1].quality)[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality": round(self.quality, 1),
            "components": {k: c.to_dict() for k, c in self.components.items()},
            "assessor": self.assessor,
        }


@dataclass(frozen=True, slots=True, eq=False)
class AttackScore:
    """One attack detector's verdict on one face.

    Attributes:
        score: the attack score in [0, 1]. **Higher = more likely an attack** (a presentation
            attack, a deepfake or a morph); this is the one direction every attack detector uses.
        is_attack: ``score >= threshold``.
        threshold: the decision threshold the verdict used.
        detector: the backend and model that scored (``"minifasnet@1"``); scores of different
            detectors are not on one scale.
        kind: what is screened for: ``"presentation"``, ``"deepfake"`` or ``"morph"``.
        details: named sub-scores (e.g. each model of an ensemble), each in [0, 1].
    """

    score: float
    is_attack: bool
    threshold: float
    detector: str = ""
    kind: str = "presentation"
    details: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = float(self.score)
        if not (math.isfinite(s) and 0.0 <= s <= 1.0):
            raise ConfigurationError(f"an attack score must lie in [0, 1], got {s}")
        object.__setattr__(self, "score", s)
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "details", {k: float(v) for k, v in self.details.items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "is_attack": bool(self.is_attack),
            "threshold": round(self.threshold, 4),
            "detector": self.detector,
            "kind": self.kind,
            "details": {k: round(v, 4) for k, v in self.details.items()},
        }


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """Everything the pipeline knows about one face in one image."""

    detection: Detection
    embedding: Embedding | None = None
    aligned: AlignedFace | None = field(default=None, repr=False)
    quality: QualityReport | None = None
    #: attack screening (``FacePipeline(pad=...)``): one :class:`AttackScore` for one detector, or
    #: a mapping detector name → AttackScore when the pipeline runs several; None when not screened
    attack: AttackScore | Mapping[str, AttackScore] | None = None

    def to_dict(self, *, with_embedding: bool = False) -> dict[str, Any]:
        d = self.detection.to_dict()
        if self.embedding is not None:
            d["model"] = self.embedding.model
            if with_embedding:
                d["embedding"] = [float(x) for x in self.embedding.vector]
        if self.quality is not None:
            d["quality"] = self.quality.to_dict()
        if isinstance(self.attack, AttackScore):
            d["attack"] = self.attack.to_dict()
        elif self.attack is not None:
            d["attack"] = {k: v.to_dict() for k, v in self.attack.items()}
        return d


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of a 1:1 comparison at a named operating point."""

    score: float
    threshold: float
    operating_point: str
    fmr: float
    match: bool
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "operating_point": self.operating_point,
            "fmr": self.fmr,
            "match": self.match,
            "model": self.model,
        }
