"""The Detector protocol: RGB uint8 image in, list of :class:`~faceprint.types.Detection` out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..types import Detection

__all__ = ["Detector"]


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
