"""Post-processing of morphs as attackers apply it: sharpening, JPEG re-compression, print-scan
simulation and resizing to a passport-photo size. Pure functions of (image, settings, seed).

Every step is deterministic: the only randomness (the print-scan noise and colour cast) comes
from ``numpy.random.default_rng(seed)``, so one seed gives byte-identical output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError

__all__ = ["PostProcess", "PASSPORT_SIZE", "postprocess", "sharpen", "jpeg", "print_scan", "passport_resize"]

#: ICAO 9303 passport photo, 35 × 45 mm at 300 dpi: (width, height) in pixels.
PASSPORT_SIZE = (413, 531)


@dataclass(frozen=True, slots=True)
class PostProcess:
    """What to do to a morph after blending, in this order: sharpen, passport resize, print-scan, JPEG.

    Attributes:
        sharpen: unsharp-mask amount (0 = none; 0.5 to 1.5 is what morphing tools use to hide
            the blend's softness).
        passport: crop to the 35:45 passport aspect around the face and resize to 413 × 531.
        print_scan: simulate printing and scanning (tone curve, ink blur, colour cast, noise,
            slight rotation, re-sampling).
        jpeg_quality: re-compress as JPEG at this quality (None = none; 1-100).
    """

    sharpen: float = 0.0
    passport: bool = False
    print_scan: bool = False
    jpeg_quality: int | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.sharpen) and 0.0 <= self.sharpen <= 5.0):
            raise ConfigurationError(f"sharpen must lie in [0, 5], got {self.sharpen}")
        if self.jpeg_quality is not None and not (1 <= int(self.jpeg_quality) <= 100):
            raise ConfigurationError(f"JPEG quality must lie in [1, 100], got {self.jpeg_quality}")

    @property
    def is_identity(self) -> bool:
        return self.sharpen == 0 and not self.passport and not self.print_scan and self.jpeg_quality is None

    def tag(self) -> str:
        """A short name for reports: ``none``, ``sharpen1+jpeg75`` …"""
        parts = []
        if self.sharpen:
            parts.append(f"sharpen{self.sharpen:g}")
        if self.passport:
            parts.append("passport")
        if self.print_scan:
            parts.append("printscan")
        if self.jpeg_quality is not None:
            parts.append(f"jpeg{self.jpeg_quality}")
        return "+".join(parts) or "none"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def sharpen(image: npt.NDArray[np.uint8], amount: float, sigma: float = 1.0) -> npt.NDArray[np.uint8]:
    """Unsharp mask: ``image + amount · (image − blur(image))``."""
    f = image.astype(np.float32)
    blur = cv2.GaussianBlur(f, (0, 0), sigma)
    return np.clip(np.rint(f + amount * (f - blur)), 0, 255).astype(np.uint8)


def jpeg(image: npt.NDArray[np.uint8], quality: int) -> npt.NDArray[np.uint8]:
    """Encode as baseline JPEG at ``quality`` and decode again (libjpeg: deterministic)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 RGB image
        raise ConfigurationError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - what OpenCV just encoded it decodes
        raise ConfigurationError("JPEG decoding failed")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def print_scan(image: npt.NDArray[np.uint8], rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A print-and-scan simulation: printer tone curve (gamma), ink spread (blur), a slight colour
    cast, scanner re-sampling with a small rotation, and sensor noise. Parameters are drawn from
    ``rng`` within ranges typical of office printers and flatbed scanners at 300-600 dpi."""
    h, w = image.shape[:2]
    f = image.astype(np.float32) / 255.0
    gamma = float(rng.uniform(0.85, 1.15))
    f = np.power(f, gamma)
    # compressed dynamic range of paper: black is not black, white not white
    lo, hi = float(rng.uniform(0.03, 0.08)), float(rng.uniform(0.90, 0.97))
    f = lo + (hi - lo) * f
    cast = rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    f = f + cast[None, None, :]
    f = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(0.6, 1.0)))
    angle = float(rng.uniform(-0.7, 0.7))
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    f = np.asarray(
        cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101), dtype=np.float32
    )
    f = f + rng.normal(0.0, float(rng.uniform(0.008, 0.02)), size=f.shape).astype(np.float32)
    return np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)


def passport_resize(image: npt.NDArray[np.uint8], size: tuple[int, int] = PASSPORT_SIZE) -> npt.NDArray[np.uint8]:
    """Crop the centred 35:45 (width:height) part of a face canvas and resize it to ``size`` (w, h)."""
    h, w = image.shape[:2]
    tw, th = size
    cw = min(w, round(h * tw / th))
    ch = min(h, round(cw * th / tw))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    interp = cv2.INTER_AREA if tw < cw else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(crop, (tw, th), interpolation=interp), dtype=np.uint8)


def postprocess(image: npt.NDArray[np.uint8], post: PostProcess, seed: int = 0) -> npt.NDArray[np.uint8]:
    """Apply ``post`` to ``image`` (H, W, 3) uint8 RGB; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    out = image
    if post.sharpen:
        out = sharpen(out, post.sharpen)
    if post.passport:
        out = passport_resize(out)
    if post.print_scan:
        out = print_scan(out, rng)
    if post.jpeg_quality is not None:
        out = jpeg(out, post.jpeg_quality)
    return out
