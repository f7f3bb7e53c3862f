"""The Detector protocol: RGB uint8 image in, list of :class:`~faceprint.types.Detection` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import EmptyImageError, ImageDimensionError
from ..types import BBox, Detection, Landmarks

__all__ = ["Detector", "check_image", "to_detections"]


@runtime_checkable
class Detector(Protocol):
    """A face detector.

    ``detect`` takes an RGB ``uint8`` array of shape (H, W, 3) and returns every face it finds,
    best score first, each with a bbox in that image's pixel coordinates and, where the
    backend provides them, five landmarks. An image without faces gives ``[]``.
    Implementations must be deterministic and must not keep per-image state.
    """

    name: str

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]: ...

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]: ...


def check_image(image: npt.NDArray[np.uint8], *, allow_empty: bool = True) -> npt.NDArray[np.uint8]:
    """The image as a C-contiguous RGB uint8 (H, W, 3) array; a clear error for anything else."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ImageDimensionError(
            f"detectors take RGB uint8 arrays of shape (H, W, 3), got {a.shape} {a.dtype}; "
            "decode images with faceprint.io.load_image"
        )
    if not allow_empty and (a.shape[0] == 0 or a.shape[1] == 0):
        raise EmptyImageError(f"image has no pixels (shape {a.shape})")
    return np.ascontiguousarray(a)


def to_detections(
    boxes: npt.NDArray[np.floating[Any]],
    scores: npt.NDArray[np.floating[Any]],
    keypoints: npt.NDArray[np.floating[Any]] | None,
    keep: Sequence[int] | npt.NDArray[np.intp],
    image_shape: tuple[int, ...],
    name: str,
) -> list[Detection]:
    """Detections for rows ``keep`` (best first) of boxes (N, 4) and ``arcface5`` keypoints (N, 5, 2)
    in image pixels; boxes are clipped to the image and dropped when nothing of them is inside."""
    h, w = int(image_shape[0]), int(image_shape[1])
    lim = np.array([w, h, w, h], dtype=np.float32)
    result: list[Detection] = []
    for i in keep:
        x1, y1, x2, y2 = (float(v) for v in np.clip(boxes[i], 0.0, lim))
        if x2 <= x1 or y2 <= y1:  # entirely outside the image (letterbox padding)
            continue
        lm = Landmarks(np.asarray(keypoints[i], np.float32), "arcface5") if keypoints is not None else None
        result.append(Detection(BBox(x1, y1, x2, y2), float(scores[i]), lm, detector=name))
    return result
