"""Colour-texture features for presentation-attack detection (Boulkenafet et al. 2016).

A recaptured face (a print, a screen) loses fine texture and gains halftone dots, moiré and a
narrower gamut; these show up in the *chroma* channels more than in the luminance. The features
here are uniform local binary pattern (LBP) histograms of each channel of the face crop in the
HSV and YCbCr colour spaces, at several radii (Määttä et al. 2011 used several LBP scales on
grey levels; Boulkenafet et al., "Face spoofing detection using colour texture analysis",
IEEE TIFS 2016, showed that colour spaces separating luminance and chroma work better).

Everything is numpy and OpenCV (for the colour conversions and the resize); no scikit-image.

The face crop is the detector's box scaled by ``box_scale`` about its centre, made square and
resized to ``size`` × ``size`` pixels; the part outside the image is filled by replicating the
border, so faces at the border are cropped, not refused. No landmarks are needed, so any
detector works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ImageDimensionError
from ..types import Detection

__all__ = ["TextureSettings", "face_crop", "uniform_lbp_histogram", "colour_texture_features", "COLOUR_SPACES"]

#: colour spaces the features can use, and the OpenCV conversion from RGB for each
COLOUR_SPACES = ("hsv", "ycrcb", "rgb", "grey")


@dataclass(frozen=True)
class TextureSettings:
    """How features are computed; stored in a texture model so training and use agree.

    Attributes:
        size: side of the square face crop in pixels.
        box_scale: the detector's box is scaled by this about its centre before cropping.
        radii: LBP radii (one histogram per radius and channel).
        points: sampling points on each circle (8: 59 uniform-pattern bins per histogram).
        colour_spaces: names from :data:`COLOUR_SPACES`; every channel of each is used.
    """

    size: int = 64
    box_scale: float = 1.2
    radii: tuple[int, ...] = (1, 2, 3)
    points: int = 8
    colour_spaces: tuple[str, ...] = ("hsv", "ycrcb")

    def __post_init__(self) -> None:
        if not 16 <= int(self.size) <= 512:
            raise ConfigurationError(f"texture crop size must be 16..512 pixels, got {self.size}")
        if not 0.5 <= float(self.box_scale) <= 4.0:
            raise ConfigurationError(f"box_scale must be 0.5..4, got {self.box_scale}")
        if not self.radii or any(not 1 <= int(r) < self.size // 4 for r in self.radii):
            raise ConfigurationError(f"LBP radii must be integers 1..{self.size // 4 - 1}, got {self.radii}")
        if int(self.points) != 8:
            raise ConfigurationError(f"only 8-point LBP is implemented, got points={self.points}")
        bad = [c for c in self.colour_spaces if c not in COLOUR_SPACES]
        if not self.colour_spaces or bad:
            raise ConfigurationError(f"unknown colour space(s) {bad}; choose from {', '.join(COLOUR_SPACES)}")
        object.__setattr__(self, "radii", tuple(int(r) for r in self.radii))
        object.__setattr__(self, "colour_spaces", tuple(self.colour_spaces))

    @property
    def n_features(self) -> int:
        channels = sum(1 if c == "grey" else 3 for c in self.colour_spaces)
        return channels * len(self.radii) * _n_bins(self.points)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["radii"] = list(self.radii)
        d["colour_spaces"] = list(self.colour_spaces)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextureSettings:
        try:
            return cls(
                size=int(d["size"]),
                box_scale=float(d["box_scale"]),
                radii=tuple(int(r) for r in d["radii"]),
                points=int(d["points"]),
                colour_spaces=tuple(str(c) for c in d["colour_spaces"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"texture feature settings are incomplete or not numeric: {exc}") from None


def _n_bins(points: int) -> int:
    return points * (points - 1) + 3  # uniform patterns + one bin for all non-uniform ones


@lru_cache(maxsize=4)
def _uniform_lut(points: int) -> npt.NDArray[np.int64]:
    """Pattern code (0 .. 2^P-1) → histogram bin: one bin per uniform pattern, the last for the rest."""
    lut = np.full(2**points, _n_bins(points) - 1, dtype=np.int64)
    nxt = 0
    for code in range(2**points):
        bits = [(code >> i) & 1 for i in range(points)]
        transitions = sum(bits[i] != bits[(i + 1) % points] for i in range(points))
        if transitions <= 2:
            lut[code] = nxt
            nxt += 1
    return lut


def face_crop(image: npt.NDArray[np.uint8], detection: Detection, size: int, box_scale: float) -> npt.NDArray[np.uint8]:
    """The square face crop (size, size, 3) uint8 RGB around ``detection``'s box (border replicated)."""
    import cv2

    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageDimensionError(
            "expected an RGB uint8 (H, W, 3) image, got "
            + (f"{image.dtype} of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__)
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageDimensionError(f"the image has no pixels (shape {image.shape})")
    if not isinstance(detection, Detection):
        raise ConfigurationError(f"expected a faceprint Detection, got {type(detection).__name__}")
    cx, cy = detection.bbox.center
    side = max(detection.bbox.width, detection.bbox.height) * box_scale
    if not np.isfinite(side) or side < 2:
        raise ConfigurationError(f"the face box {detection.bbox.as_list()} is too small to crop")
    scale = size / side
    # image -> crop: x' = (x - (cx - side/2)) * scale
    m = np.array([[scale, 0.0, -(cx - side / 2) * scale], [0.0, scale, -(cy - side / 2) * scale]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)


def _channels(crop: npt.NDArray[np.uint8], space: str) -> npt.NDArray[np.float32]:
    import cv2

    x: npt.NDArray[Any]
    if space == "rgb":
        x = crop
    elif space == "grey":
        x = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None]
    elif space == "hsv":
        x = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    else:
        x = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    return np.asarray(x, dtype=np.float32)


def uniform_lbp_histogram(channel: npt.ArrayLike, radius: int, points: int = 8) -> npt.NDArray[np.float64]:
    """Normalised histogram of uniform LBP codes of a 2-D channel; (P(P-1)+3,) float64, sums to 1.

    Neighbours lie on a circle of ``radius`` around each pixel, sampled bilinearly (the
    rotation-variant ``LBP^{u2}_{P,R}`` of Ojala et al. 2002); a neighbour ≥ the centre sets its
    bit. Only pixels at least ``radius + 1`` from the border are coded.
    """
    c = np.asarray(channel, dtype=np.float32)
    if c.ndim != 2:
        raise ConfigurationError(f"an LBP channel must be 2-D, got shape {c.shape}")
    h, w = c.shape
    m = radius + 1
    if h <= 2 * m or w <= 2 * m:
        raise ConfigurationError(f"a {h}x{w} channel is too small for LBP radius {radius}")
    centre = c[m : h - m, m : w - m]
    code = np.zeros(centre.shape, dtype=np.int64)
    for p in range(points):
        a = 2 * np.pi * p / points
        dy, dx = -radius * np.sin(a), radius * np.cos(a)
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0

        def at(oy: int, ox: int) -> npt.NDArray[np.float32]:
            return c[m + oy : h - m + oy, m + ox : w - m + ox]

        v = (
            (1 - fy) * (1 - fx) * at(y0, x0)
            + (1 - fy) * fx * at(y0, x0 + 1)
            + fy * (1 - fx) * at(y0 + 1, x0)
            + fy * fx * at(y0 + 1, x0 + 1)
        )
        code |= (v >= centre - 1e-4).astype(np.int64) << p
    hist = np.bincount(_uniform_lut(points)[code].ravel(), minlength=_n_bins(points)).astype(np.float64)
    return hist / hist.sum()  # type: ignore[no-any-return]


def colour_texture_features(crop: npt.NDArray[np.uint8], settings: TextureSettings) -> npt.NDArray[np.float64]:
    """The feature vector (settings.n_features,) float64 of one face crop (from :func:`face_crop`)."""
    parts = []
    for space in settings.colour_spaces:
        x = _channels(crop, space)
        for ch in range(x.shape[2]):
            for r in settings.radii:
                parts.append(uniform_lbp_histogram(x[:, :, ch], r, settings.points))
    return np.concatenate(parts)
