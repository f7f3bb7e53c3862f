"""Aligned face crops and their pixel descriptors, shared by k-Same and deduplication."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import similarity_transform, template_points
from ..errors import ConfigurationError
from ..types import Detection

_DLIB150_PADDING = 0.25  # dlib's chips: the named "dlib150" template


def crop_transform_padded(det: Detection, size: int, padding: float) -> npt.NDArray[np.float64]:
    """(2, 3) image → crop matrix putting the five landmarks where dlib's mean face puts them in a
    ``size`` px crop with ``padding`` (dlib's chips: 0.25; wider crops show more around the face)."""
    if det.landmarks is None:
        raise ConfigurationError("aligning a face needs a detector that gives 5 landmarks")
    pts150, wts = template_points("dlib150", det.landmarks.scheme)
    unit = pts150 / 150.0 * (1.0 + 2.0 * _DLIB150_PADDING) - _DLIB150_PADDING
    dst = (unit + padding) / (1.0 + 2.0 * padding) * size
    return similarity_transform(det.landmarks.points, dst, wts)


def aligned_crop(image: npt.NDArray[np.uint8], det: Detection, size: int, padding: float) -> npt.NDArray[np.uint8]:
    """The (size, size, 3) aligned crop of a face; outside the image, edge pixels are repeated."""
    m = crop_transform_padded(det, size, padding)
    out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.uint8)


def pixel_descriptor(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(N, 1024): grey, 32×32, zero-mean, unit-norm pixels of (N, S, S, 3) crops (dot = correlation)."""
    out = np.empty((len(crops), 32 * 32), dtype=np.float32)
    for i, c in enumerate(crops):
        g = cv2.resize(
            cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA
        )
        v = g.astype(np.float32).ravel()
        v -= v.mean()
        out[i] = v / max(float(np.linalg.norm(v)), 1e-6)
    return out
