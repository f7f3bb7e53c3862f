"""The QualityAssessor protocol: an image, a detection and its aligned chip in, a QualityReport out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..types import AlignedFace, Detection, QualityReport

__all__ = ["QualityAssessor"]


@runtime_checkable
class QualityAssessor(Protocol):
    """A face image quality assessor (ISO/IEC 29794-5 style).

    ``assess(image, detection, aligned=None)`` takes the decoded RGB ``uint8`` image (H, W, 3),
    one :class:`~faceprint.types.Detection` in that image's pixel coordinates (with landmarks)
    and, optionally, the face's :class:`~faceprint.types.AlignedFace` chip as the pipeline made
    it (an assessor that needs another template aligns the face itself). It returns a
    :class:`~faceprint.types.QualityReport`: a unified score in [0, 100] that predicts how well
    the face will match (higher: fewer errors) and named components, each a native value and a
    0-100 quality.

    ``assess_batch(images, detections, aligned=None)`` does the same for parallel sequences
    (a face per entry; one image may appear for several faces) and returns one report per face,
    equal to ``assess`` one by one; ``[]`` for no faces.

    Contract: deterministic (the same input gives the same report), no state kept from one
    call to the next, the input arrays are not written to. A face partly or wholly outside
    the frame is normal input and gets a low score, not an exception. Input that is not an
    RGB uint8 image, or a detection without landmarks, raises a specific
    :class:`~faceprint.errors.FaceprintError`.
    """

    name: str

    def assess(
        self, image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None = None
    ) -> QualityReport: ...

    def assess_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        detections: Sequence[Detection],
        aligned: Sequence[AlignedFace | None] | None = None,
    ) -> list[QualityReport]: ...
