"""Seeded image degradations, to test and train quality measures on real photographs.

Each degradation takes an RGB uint8 image and a severity in [0, 1] and returns a new image.
:func:`degrade_set` degrades a seeded fraction of a list of images, each with a seeded kind
and severity, as the quality tests and benchmarks do (``benchmarks/bench_quality.py``).

=============== ==========================================================================
kind            what severity s in [0, 1] does
=============== ==========================================================================
``blur``        Gaussian blur, σ = 1 + 3s px
``noise``       additive Gaussian noise per channel, σ = 6 + 20s grey levels (seeded)
``jpeg``        JPEG re-encoding at quality 30 − 25s
``downscale``   resize (area) by 1 / (2 + 4s): the face has fewer pixels
``occlusion``   a flat grey or black rectangle over 25 + 25 % s of the face area (eyes or mouth)
``underexpose`` gamma 2 + 2s, then gain 1 − 0.4s: most of the face dark
``overexpose``  gain 1.4 + 1.2s, then gamma 0.6 − 0.3s: much of the face clipped to white
=============== ==========================================================================
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError

__all__ = ["KINDS", "degrade", "degrade_set", "Degraded"]

Image = npt.NDArray[np.uint8]
#: (x1, y1, x2, y2) of the face, or None for the central third of the image
Box = tuple[float, float, float, float] | None


def _blur(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), 1.0 + 3.0 * s), dtype=np.uint8)


def _noise(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    n = rng.normal(0.0, 6.0 + 20.0 * s, img.shape)
    return np.clip(img.astype(np.float64) + n, 0, 255).astype(np.uint8)


def _jpeg(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(img).save(buf, "JPEG", quality=int(round(30 - 25 * s)))
    with PILImage.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _downscale(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    f = 1.0 / (2.0 + 4.0 * s)
    h, w = img.shape[:2]
    size = (max(1, int(round(w * f))), max(1, int(round(h * f))))
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _occlusion(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    h, w = img.shape[:2]
    x1, y1, x2, y2 = box if box is not None else (w / 3, h / 3, 2 * w / 3, 2 * h / 3)
    fw, fh = x2 - x1, y2 - y1
    frac = 0.25 + 0.25 * s  # share of the face area covered
    band = fh * frac
    top = y1 + (0.15 * fh if rng.random() < 0.5 else 0.6 * fh - band / 2)  # eyes, or nose and mouth
    out = img.copy()
    ya, yb = int(max(0, top)), int(min(h, top + band))
    xa, xb = int(max(0, x1 - 0.1 * fw)), int(min(w, x2 + 0.1 * fw))
    out[ya:yb, xa:xb] = int(rng.choice([0, 96, 160]))
    return out


def _gamma(img: Image, gamma: float, gain: float) -> Image:
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma * gain, 0, 255).astype(np.uint8)
    return lut[img]


def _underexpose(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    return _gamma(img, 2.0 + 2.0 * s, 1.0 - 0.4 * s)


def _overexpose(img: Image, s: float, rng: np.random.Generator, box: Box) -> Image:
    gain = 1.4 + 1.2 * s
    lut = np.clip(255.0 * np.minimum(1.0, gain * np.arange(256) / 255.0) ** (0.6 - 0.3 * s), 0, 255)
    return lut.astype(np.uint8)[img]


_FUNCS: dict[str, Callable[[Image, float, np.random.Generator, Box], Image]] = {
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
    "downscale": _downscale,
    "occlusion": _occlusion,
    "underexpose": _underexpose,
    "overexpose": _overexpose,
}
#: the degradation kinds, in a fixed order
KINDS: tuple[str, ...] = tuple(_FUNCS)


def degrade(image: Image, kind: str, severity: float, *, seed: int = 0, box: Box = None) -> Image:
    """A degraded copy of ``image`` (RGB uint8); ``seed`` fixes the noise and occlusion draws."""
    if kind not in _FUNCS:
        raise ConfigurationError(f"unknown degradation {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0.0 <= severity <= 1.0:
        raise ConfigurationError(f"severity must lie in [0, 1], got {severity}")
    return _FUNCS[kind](np.asarray(image, dtype=np.uint8), float(severity), np.random.default_rng(seed), box)


class Degraded:
    """The plan of a degraded image set: which images get which degradation (kind, severity, seed)."""

    def __init__(self, n: int, *, fraction: float = 0.3, seed: int = 0, kinds: Sequence[str] = KINDS) -> None:
        rng = np.random.default_rng(seed)
        chosen = rng.random(n) < fraction
        self.plan: dict[int, tuple[str, float, int]] = {}
        for i in np.flatnonzero(chosen):
            kind = str(kinds[int(rng.integers(len(kinds)))])
            self.plan[int(i)] = (kind, float(rng.uniform(0.0, 1.0)), int(rng.integers(2**31)))

    def __call__(self, index: int, image: Image, box: Box = None) -> Image:
        """Image ``index`` of the set: degraded when the plan says so, else ``image`` itself."""
        if index not in self.plan:
            return image
        kind, severity, seed = self.plan[index]
        return degrade(image, kind, severity, seed=seed, box=box)

    def kind(self, index: int) -> str:
        return self.plan[index][0] if index in self.plan else "none"


def degrade_set(images: Sequence[Image], *, fraction: float = 0.3, seed: int = 0) -> list[Image]:
    """Degrade a seeded ``fraction`` of ``images`` (each with a seeded kind and severity)."""
    plan = Degraded(len(images), fraction=fraction, seed=seed)
    return [plan(i, img) for i, img in enumerate(images)]
