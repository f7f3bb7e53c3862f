"""Seeded near-duplicates: the edits a collection's copies go through, to measure deduplication."""

from __future__ import annotations

import io

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from ..errors import ConfigurationError

#: the edits of issue 15's deduplication test
NEAR_DUPLICATE_KINDS: tuple[str, ...] = ("resize", "jpeg30", "crop8", "blur", "flip", "rotate")


def near_duplicate(image: npt.NDArray[np.uint8], kind: str) -> npt.NDArray[np.uint8]:
    """A copy of an RGB image edited one way: ``resize`` (to 60 %), ``jpeg30`` (JPEG quality 30),
    ``crop8`` (8 px off every side), ``blur`` (Gaussian σ 1.2), ``flip`` (mirror) or ``rotate`` (5°)."""
    h, w = image.shape[:2]
    if kind == "resize":
        out = cv2.resize(image, (round(w * 0.6), round(h * 0.6)), interpolation=cv2.INTER_AREA)
    elif kind == "jpeg30":
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=30)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    elif kind == "crop8":
        out = image[8 : h - 8, 8 : w - 8]
    elif kind == "blur":
        out = cv2.GaussianBlur(image, (0, 0), 1.2)
    elif kind == "flip":
        out = image[:, ::-1]
    elif kind == "rotate":
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 5.0, 1.0)
        out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    else:
        raise ConfigurationError(
            f"unknown near-duplicate kind {kind!r}; choose one of: {', '.join(NEAR_DUPLICATE_KINDS)}"
        )
    return np.ascontiguousarray(out, dtype=np.uint8)
