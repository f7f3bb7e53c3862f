"""The built-in quality assessors: ``"fiqa"`` (components + embedding stability) and ``"fiqa-fast"``.

Both measure every component of :mod:`.components` and give a unified 0-100 score from the
regressor of :mod:`.unified`. ``"fiqa"`` also embeds the chip and five seeded perturbations
of it with dlib's ResNet (:mod:`.stability`), which predicts recognition errors better and
costs about six embeddings per face; ``"fiqa-fast"`` uses the components alone (a few ms per
face on one core). ``benchmarks/bench_quality.py`` measures both.

The unified score is never above the crop component's quality: the part of a face outside
the frame carries no information, however stable the rest of it looks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..alignment import align
from ..embedding.base import Embedder
from ..errors import ConfigurationError, EmptyImageError, ImageDimensionError
from ..registry import embedders, quality_assessors
from ..types import AlignedFace, Detection, Landmarks, QualityComponent, QualityReport
from . import components as comp
from .stability import Perturber, stability_embeddings
from .unified import UnifiedModel, feature_vector, load_model

__all__ = ["FiqaAssessor", "fiqa_fast", "check_image", "measure_faces", "Measured", "STABILITY_COMPONENT"]

#: the component name of the stability measure in ``"fiqa"`` reports
STABILITY_COMPONENT = "embedding_stability"
_DEFAULT_EMBEDDER = "dlib-resnet-onnx"


def check_image(image: object) -> npt.NDArray[np.uint8]:
    """``image`` as an RGB uint8 (H, W, 3) array, or a specific error saying what it is instead."""
    if not isinstance(image, np.ndarray):
        raise ImageDimensionError(f"expected an RGB uint8 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageDimensionError(
            f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} of shape {image.shape}; "
            "decode it with faceprint.io.load_image"
        )
    if image.size == 0:
        raise EmptyImageError(f"the image of shape {image.shape} has no pixels")
    return image


def _landmarks(detection: object) -> Landmarks:
    if not isinstance(detection, Detection):
        raise ConfigurationError(f"expected a faceprint Detection, got {type(detection).__name__}")
    if not isinstance(detection.landmarks, Landmarks):
        raise ConfigurationError(
            "quality assessment needs the face's five landmarks; use a detector that gives landmarks"
        )
    return detection.landmarks


def _chip(image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None) -> AlignedFace:
    if aligned is not None and not isinstance(aligned, AlignedFace):
        raise ConfigurationError(f"aligned must be an AlignedFace or None, got {type(aligned).__name__}")
    if aligned is not None and aligned.template == comp.CHIP_TEMPLATE and aligned.image.shape == (150, 150, 3):
        return aligned
    return align(image, detection, comp.CHIP_TEMPLATE)


@dataclass(frozen=True)
class Measured:
    """What :func:`measure_faces` found: components per face; with an embedder, the stability
    features (N, 6) and the chips' own embeddings (N, D)."""

    components: list[dict[str, QualityComponent]]
    stability: npt.NDArray[np.float64] | None = None
    embeddings: npt.NDArray[np.float32] | None = None


def measure_faces(
    images: Sequence[npt.NDArray[np.uint8]],
    detections: Sequence[Detection],
    aligned: Sequence[AlignedFace | None] | None = None,
    *,
    embedder: Embedder | None = None,
    perturber: Perturber | None = None,
) -> Measured:
    """Components of each face and, with an embedder, its stability features and embedding.

    The training script (``benchmarks/train_quality.py``) and the assessors share this, so the
    regressor sees the same features in training and in use.
    """
    if len(images) != len(detections) or (aligned is not None and len(aligned) != len(detections)):
        raise ConfigurationError("images, detections and aligned must have one entry per face")
    comps: list[dict[str, QualityComponent]] = []
    chips: list[npt.NDArray[np.uint8]] = []
    for i, (img, det) in enumerate(zip(images, detections, strict=True)):
        img = check_image(img)
        lm = _landmarks(det)
        chip = _chip(img, det, None if aligned is None else aligned[i])
        comps.append(comp.measure(img, lm, tuple(det.bbox.as_list()), chip.image))  # type: ignore[arg-type]
        chips.append(chip.image)
    if embedder is None:
        return Measured(comps)
    return Measured(comps, *stability_embeddings(embedder, perturber or Perturber(150), chips))


@quality_assessors.register("fiqa")
class FiqaAssessor:
    """Face image quality: ISO/IEC 29794-5-style components and a unified score learned from recognition.

    Settings (keyword-only):
        stability: embed the chip and its perturbations to measure embedding stability (the
            ``"fiqa"`` model); False uses the components-only model (``"fiqa-fast"``).
        embedder: the embedder of the stability features: a registered name or an Embedder with
            the model id the regressor was trained with (dlib's ResNet).
        embedder_options: settings for a named embedder (e.g. ``{"threads": 1}``).
        model: a quality model JSON file (default: the one shipped in faceprint).
    """

    def __init__(
        self,
        *,
        stability: bool = True,
        embedder: str | Embedder = _DEFAULT_EMBEDDER,
        embedder_options: Mapping[str, Any] | None = None,
        model: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = "fiqa" if stability else "fiqa-fast"
        self.model: UnifiedModel = load_model(self.name, None if model is None else os.fspath(model))
        self.assessor = f"{self.name}@{self.model.version}"
        self._embedder_spec = embedder
        self._embedder_options = dict(embedder_options or {})
        self._embedder: Embedder | None = None
        self._perturber: Perturber | None = None
        if self.model.needs_stability and not isinstance(embedder, str):
            self._use(embedder)

    def _use(self, embedder: Embedder) -> Embedder:
        if self.model.embedder and embedder.model_id != self.model.embedder:
            raise ConfigurationError(
                f"the {self.name} quality model was trained on {self.model.embedder} embeddings, "
                f"not {embedder.model_id}; pass embedder={_DEFAULT_EMBEDDER!r}"
            )
        if embedder.template != comp.CHIP_TEMPLATE:
            raise ConfigurationError(f"the stability embedder must take {comp.CHIP_TEMPLATE} chips")
        self._embedder, self._perturber = embedder, Perturber(150)
        return embedder

    def _stability_embedder(self) -> Embedder | None:
        if not self.model.needs_stability:
            return None
        if self._embedder is None:
            spec = self._embedder_spec
            self._use(embedders.create(spec, **self._embedder_options) if isinstance(spec, str) else spec)
        return self._embedder

    def assess(
        self, image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None = None
    ) -> QualityReport:
        """The quality of one face of ``image`` (see :class:`~faceprint.quality.base.QualityAssessor`)."""
        return self.assess_batch([image], [detection], None if aligned is None else [aligned])[0]

    def assess_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        detections: Sequence[Detection],
        aligned: Sequence[AlignedFace | None] | None = None,
    ) -> list[QualityReport]:
        """One report per face (one batched embedding call for all of them)."""
        if len(detections) == 0 and len(images) == 0:
            return []
        emb = self._stability_embedder()
        return self.reports(measure_faces(images, detections, aligned, embedder=emb, perturber=self._perturber))

    def reports(self, measured: Measured) -> list[QualityReport]:
        """The reports of measured faces: the unified score (capped by the crop quality) and the components."""
        comps, stab = measured.components, measured.stability
        if not comps:
            return []
        if self.model.needs_stability and stab is None:
            raise ConfigurationError(f"the {self.name} model needs the faces' stability features")
        x = np.stack(
            [feature_vector(self.model.features, c, None if stab is None else stab[i]) for i, c in enumerate(comps)]
        )
        scores = self.model.score(x)
        out = []
        for i, c in enumerate(comps):
            parts = dict(c)
            if stab is not None and self.model.needs_stability:
                parts[STABILITY_COMPONENT] = comp.component(STABILITY_COMPONENT, float(stab[i, -1]))
            out.append(QualityReport(min(float(scores[i]), c["crop"].quality), parts, self.assessor))
        return out

    def __repr__(self) -> str:
        return f"FiqaAssessor(name={self.name!r}, model={self.assessor!r})"


@quality_assessors.register("fiqa-fast")
def fiqa_fast(**settings: Any) -> FiqaAssessor:
    """The components-only assessor: ``FiqaAssessor(stability=False, ...)``."""
    return FiqaAssessor(stability=False, **settings)
