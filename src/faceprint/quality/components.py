"""The measured quality components: native values and their documented 0-100 mappings.

Pure functions on numpy arrays; no model, no state. The components follow the list of
ISO/IEC 29794-5 and of OFIQ (BSI's reference implementation), measured with the means a
5-point landmark detector gives; where our definition or mapping differs from OFIQ's the
list below says so. They are computed on the ``dlib150`` chip (150×150, eye centres 52.6 px apart,
see :mod:`faceprint.alignment`) inside a fixed face ellipse, except the ones that need the
original pixels (inter-eye distance, pose, blockiness, noise, crop), which use the image.

Each component: its native value (unit), then the quality mapping, higher is better.

- ``inter_eye_distance`` (px): between the eye centres in the image (dlib5: midpoints of the
  eye corners; arcface5: the eye centres). ``100·S((x − 30)/8)``: 50 at 30 px, 78 at 40 px,
  99 at 60 px. OFIQ centres its mapping at 70 px, the ICAO portrait size; faceprint's
  embedders work on chips with 35-53 px between the eyes, so the centre is lower.
- ``sharpness`` (ratio): mean |Laplacian| over the standard deviation of the grey chip, in the
  face ellipse, after a 3×3 Gaussian against noise. ``100·S((x − 0.055)/0.012)``.
- ``underexposure`` (fraction): face pixels with luminance ≤ 25 of 255.
  ``100·(1 − S((x − 0.10)/0.03))``, scaled so that 0 maps to 100.
- ``overexposure`` (fraction): face pixels with luminance ≥ 247.
  ``100·(1 − S((x − 0.05)/0.015))``, 0 → 100.
- ``dynamic_range`` (bits, 0-8): entropy of the face luminance histogram. ``12.5·x`` (OFIQ).
- ``luminance_mean`` (fraction): mean face luminance / 255.
  ``100·S((x − 0.2)/0.05)·(1 − S((x − 0.8)/0.05))`` (OFIQ).
- ``luminance_variance`` (fraction²): variance of luminance / 255.
  ``100·sin(π·60x / (60x + 1))`` (OFIQ).
- ``illumination_uniformity`` (fraction): intersection of the normalised luminance
  histograms of the left and right halves of the face. ``100·x^0.3`` (OFIQ).
- ``yaw`` (degrees, + when the nose points to the image's right), ``pitch`` (+ when the head
  tilts down), ``roll`` (+ when the face turns clockwise in the image). ``100·cos²(x)`` (OFIQ).
- ``blockiness`` (ratio, ≈ 1 without JPEG blocks): mean gradient on the strongest of the eight
  phases of an 8-px grid over the median phase, on the image's own pixels.
  ``100·(1 − S((x − 1.45)/0.1))``, 1 → 100.
- ``noise`` (grey levels): σ of the luminance noise, a robust Immerkær (1996) estimate on the
  image's own pixels. ``100·(1 − S((x − 5)/1.5))``, 0 → 100.
- ``crop`` (margin): the smallest margin between the eye centres and the image border, in
  units of what a whole face needs (1 inter-eye distance to the sides and above, 1.8 below):
  ≥ 1 when the face is in the frame, < 0 when an eye is outside it (OFIQ's four crop
  measures, folded into one). ``100·S((x − 0.75)/0.07)``, 1 → 100.
- ``embedding_stability`` (cosine, ``"fiqa"`` only, :mod:`.stability`): mean cosine between the
  chip's embedding and those of its six perturbed copies. ``100·S((x − 0.97)/0.006)``.

``S(t) = 1 / (1 + e^(−t))``. Each quality is rounded to 0.1 and clipped to [0, 100].

Head pose from five points (weak-perspective geometry, the canonical frontal face being the
alignment template of the scheme):

- roll: the angle of the line between the two eye centres (both schemes: eye corners' midpoints
  for dlib5, eye centres for arcface5).
- yaw: the nose point's offset along the eye line from the eyes' midpoint, in inter-eye
  distances, ``d = (D/IED)·tan(yaw)``. dlib5 uses the base of the nose (``D/IED`` = 0.35),
  arcface5 (YuNet, SCRFD) the nose tip (0.6): anthropometric depths of those points in front
  of the eyes, in inter-eye distances.
- pitch: the nose point's offset across the eye line, ``ρ = A·cos(pitch) + B·sin(pitch)``
  in (yaw-corrected) inter-eye distances, ``A`` from the template (0.774 dlib5, 0.572
  arcface5) and ``B = D/IED``. It is coarse: beyond ``atan(B/A)`` downwards (24° dlib5,
  46° arcface5) it reads too small. The mouth corners of arcface5 are not used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ..types import Landmarks, QualityComponent

__all__ = [
    "CHIP_TEMPLATE",
    "COMPONENTS",
    "MEASURED",
    "ComponentSpec",
    "component",
    "measure",
    "face_mask",
    "head_pose",
    "explain",
]

#: the alignment template the chip components are measured on
CHIP_TEMPLATE = "dlib150"
_CHIP = 150
#: face ellipse on the dlib150 chip: centre (x, y) and semi-axes (x, y), chip pixels
_ELLIPSE = ((74.0, 84.0), (42.0, 54.0))
#: window of the original image the noise and blockiness estimates read, px (cost bound)
_NOISE_WINDOW = 160
_BLOCK_WINDOW = 256

# canonical frontal face per landmark scheme: (A = nose drop / IED, D = nose depth / IED, x offset / IED);
# the offsets are 0 (a frontal face is symmetric; the templates are within 0.003 IED of it)
_FRONTAL = {"dlib5": (0.7735, 0.35, 0.0), "arcface5": (0.5715, 0.6, 0.0)}


def _s(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, t))))


def _falling(x: float, x0: float, w: float, best: float) -> float:
    """``100·(1 − S((x − x0)/w))``, scaled so that the best possible value ``best`` maps to 100."""
    return 100.0 * (1.0 - _s((x - x0) / w)) / (1.0 - _s((best - x0) / w))


def _rising(x: float, x0: float, w: float, best: float) -> float:
    """``100·S((x − x0)/w)``, scaled so that ``best`` (and above) maps to 100."""
    return 100.0 * _s((x - x0) / w) / _s((best - x0) / w)


def _q(x: float) -> float:
    return round(min(100.0, max(0.0, x)), 1)


@dataclass(frozen=True)
class ComponentSpec:
    """What a component measures: its unit, the mapping to 0-100, the words of ``--explain``."""

    unit: str
    mapping: Callable[[float], float]
    describe: Callable[[float], str]


def _cos2(x: float) -> float:
    return 100.0 * math.cos(math.radians(x)) ** 2


def _lum_phrase(x: float) -> str:
    return "too dark" if x < 0.5 else "too bright"


COMPONENTS: dict[str, ComponentSpec] = {
    "inter_eye_distance": ComponentSpec(
        "px", lambda x: 100 * _s((x - 30) / 8), lambda x: f"small face (eyes {x:.0f} px apart)"
    ),
    "sharpness": ComponentSpec("ratio", lambda x: 100 * _s((x - 0.055) / 0.012), lambda x: "blurred"),
    "underexposure": ComponentSpec(
        "fraction", lambda x: _falling(x, 0.10, 0.03, 0.0), lambda x: f"underexposed ({x:.0%} of the face dark)"
    ),
    "overexposure": ComponentSpec(
        "fraction", lambda x: _falling(x, 0.05, 0.015, 0.0), lambda x: f"overexposed ({x:.0%} of the face white)"
    ),
    "dynamic_range": ComponentSpec("bits", lambda x: 12.5 * x, lambda x: f"low dynamic range ({x:.1f} bits)"),
    "luminance_mean": ComponentSpec(
        "fraction", lambda x: 100 * _s((x - 0.2) / 0.05) * (1 - _s((x - 0.8) / 0.05)), _lum_phrase
    ),
    "luminance_variance": ComponentSpec(
        "fraction²",
        lambda x: 100 * math.sin(math.pi * 60 * x / (60 * x + 1)),
        lambda x: "low contrast" if x < 0.02 else "harsh contrast",
    ),
    "illumination_uniformity": ComponentSpec(
        "fraction", lambda x: 100 * max(0.0, x) ** 0.3, lambda x: "uneven lighting (left/right)"
    ),
    "yaw": ComponentSpec("degrees", _cos2, lambda x: f"yaw {x:.0f}°"),
    "pitch": ComponentSpec("degrees", _cos2, lambda x: f"pitch {x:.0f}°"),
    "roll": ComponentSpec("degrees", _cos2, lambda x: f"roll {x:.0f}°"),
    "blockiness": ComponentSpec("ratio", lambda x: _falling(x, 1.45, 0.1, 1.0), lambda x: "JPEG artefacts"),
    "noise": ComponentSpec(
        "grey levels", lambda x: _falling(x, 5.0, 1.5, 0.0), lambda x: f"noisy (σ {x:.0f} grey levels)"
    ),
    "crop": ComponentSpec(
        "margin",
        lambda x: _rising(x, 0.75, 0.07, 1.0),
        lambda x: "face cut off by the frame" if x < 0.5 else "face close to the frame's edge",
    ),
    # measured by the "fiqa" assessor only (faceprint.quality.stability), not by measure()
    "embedding_stability": ComponentSpec(
        "cosine", lambda x: 100 * _s((x - 0.97) / 0.006), lambda x: f"unstable embedding (cosine {x:.3f})"
    ),
}
#: the components :func:`measure` computes, in report order
MEASURED: tuple[str, ...] = tuple(n for n in COMPONENTS if n != "embedding_stability")


def component(name: str, value: float) -> QualityComponent:
    """The :class:`QualityComponent` of a native ``value`` through ``name``'s mapping."""
    return QualityComponent(float(value), _q(COMPONENTS[name].mapping(float(value))))


def explain(name: str, c: QualityComponent) -> str:
    """The words ``faceprint quality --explain`` uses for a component that pulls the score down."""
    spec = COMPONENTS.get(name)
    return spec.describe(c.value) if spec is not None else f"{name} {c.value:.3g}"


def face_mask() -> npt.NDArray[np.bool_]:
    """The face ellipse on the ``dlib150`` chip, (150, 150) bool (a new array)."""
    (cx, cy), (ax, ay) = _ELLIPSE
    yy, xx = np.mgrid[:_CHIP, :_CHIP].astype(np.float32)
    return np.asarray(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0)


_MASK = face_mask()
_MASK.setflags(write=False)
_LEFT = _MASK & (np.arange(_CHIP)[None, :] < _ELLIPSE[0][0])
_RIGHT = _MASK & ~_LEFT
#: margins a whole face needs from its eye centres, in inter-eye distances: (side, top, bottom)
_MARGINS = (1.0, 1.0, 1.8)


def _luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    f = rgb.astype(np.float32)
    return np.asarray(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2], dtype=np.float32)


def _hist(values: npt.NDArray[np.float32], bins: int) -> npt.NDArray[np.float64]:
    idx = np.clip((values * (bins / 256.0)).astype(np.intp), 0, bins - 1)
    h = np.bincount(idx, minlength=bins).astype(np.float64)
    return h / max(1.0, h.sum())


def _exposure(y_face: npt.NDArray[np.float32]) -> dict[str, float]:
    n = max(1, y_face.size)
    h = _hist(y_face, 256)
    nz = h[h > 0]
    mean = float(y_face.mean()) / 255.0 if y_face.size else 0.0
    return {
        "underexposure": float(np.count_nonzero(y_face <= 25.0)) / n,
        "overexposure": float(np.count_nonzero(y_face >= 247.0)) / n,
        "dynamic_range": float(-(nz * np.log2(nz)).sum()),
        "luminance_mean": mean,
        "luminance_variance": float(np.var(y_face / 255.0)) if y_face.size else 0.0,
    }


def _sharpness(grey: npt.NDArray[np.float32]) -> float:
    lap = cv2.Laplacian(cv2.GaussianBlur(grey, (3, 3), 0), cv2.CV_32F, ksize=1)
    sd = float(grey[_MASK].std())
    return float(np.abs(lap[_MASK]).mean()) / sd if sd > 1.0 else 0.0


def _uniformity(y: npt.NDArray[np.float32]) -> float:
    return float(np.minimum(_hist(y[_LEFT], 32), _hist(y[_RIGHT], 32)).sum())


def _window(
    image: npt.NDArray[np.uint8], box: tuple[float, float, float, float], size: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the part of ``box`` inside the image, cut to at most ``size``² around its centre."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 > size:
        x0 = (x0 + x1 - size) // 2
        x1 = x0 + size
    if y1 - y0 > size:
        y0 = (y0 + y1 - size) // 2
        y1 = y0 + size
    return x0, y0, x1, y1


def _grey(image: npt.NDArray[np.uint8], win: tuple[int, int, int, int]) -> npt.NDArray[np.float32]:
    x0, y0, x1, y1 = win
    return _luma(image[y0:y1, x0:x1])


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _noise(grey: npt.NDArray[np.float32]) -> float:
    """Robust Immerkær (1996) noise σ: the filter's output is 6σ for white Gaussian noise."""
    if min(grey.shape) < 8:
        return 0.0
    r = cv2.filter2D(grey, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.median(np.abs(r))) / (6.0 * 0.6745)


def _phase_ratio(means: npt.NDArray[np.float64], offset: int) -> float:
    """Mean gradient on the strongest of the 8 grid phases / the median phase."""
    if means.size < 24:
        return 1.0
    phases = np.array([means[(p - offset) % 8 :: 8].mean() for p in range(8)])
    med = float(np.median(phases))
    return float(phases.max()) / med if med > 1e-6 else 1.0


def _blockiness(grey: npt.NDArray[np.float32], x0: int, y0: int) -> float:
    """JPEG blocking: 8-px periodic gradient peaks, on the image's own pixel grid (``x0``, ``y0``: origin)."""
    if min(grey.shape) < 24:
        return 1.0
    dx = np.abs(np.diff(grey, axis=1)).mean(axis=0).astype(np.float64)
    dy = np.abs(np.diff(grey, axis=0)).mean(axis=1).astype(np.float64)
    return 0.5 * (_phase_ratio(dx, x0 % 8) + _phase_ratio(dy, y0 % 8))


def _crop(left: npt.NDArray[np.float32], right: npt.NDArray[np.float32], shape: tuple[int, ...]) -> float:
    """Smallest eye-to-border margin over the margin a whole face needs (see the module table)."""
    h, w = shape[:2]
    ied = max(1e-6, float(np.hypot(*(right - left))))
    side, top, bottom = _MARGINS
    eye_y = float(left[1] + right[1]) / 2.0
    x_lo, x_hi = float(min(left[0], right[0])), float(max(left[0], right[0]))
    margins = (x_lo / side, (w - x_hi) / side, eye_y / top, (h - eye_y) / bottom)
    return max(-1.0, min(2.0, min(margins) / ied))


def head_pose(landmarks: Landmarks) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from five landmarks (see the module docstring)."""
    left, right = landmarks.eye_centers()
    nose = landmarks.nose().astype(np.float64)
    left, right = left.astype(np.float64), right.astype(np.float64)
    axis = right - left
    ied = float(np.hypot(*axis))
    if ied < 1e-6:
        return 0.0, 0.0, 0.0
    ex = axis / ied
    ey = np.array([-ex[1], ex[0]])
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    a, depth, x0 = _FRONTAL[landmarks.scheme]
    rel = nose - (left + right) / 2.0
    yaw = math.degrees(math.atan((float(rel @ ex) / ied - x0) / depth))
    true_ied = ied / max(0.2, math.cos(math.radians(yaw)))
    rho = float(rel @ ey) / true_ied
    r = math.hypot(a, depth)
    alpha = math.atan2(depth, a)
    pitch = math.degrees(alpha - math.acos(max(-1.0, min(1.0, rho / r))))
    return yaw, pitch, roll


def measure(
    image: npt.NDArray[np.uint8],
    landmarks: Landmarks,
    box: tuple[float, float, float, float],
    chip: npt.NDArray[np.uint8],
) -> dict[str, QualityComponent]:
    """Every component of one face.

    Args:
        image: the decoded RGB uint8 image (H, W, 3).
        landmarks: the face's five landmarks in ``image`` coordinates.
        box: the face box (x1, y1, x2, y2) in ``image`` coordinates.
        chip: the face aligned to ``dlib150``, (150, 150, 3) uint8.
    """
    y = _luma(chip)
    left, right = landmarks.eye_centers()
    yaw, pitch, roll = head_pose(landmarks)
    values = {"inter_eye_distance": float(np.hypot(*(right - left))), "sharpness": _sharpness(y)}
    values.update(_exposure(y[_MASK]))
    values["illumination_uniformity"] = _uniformity(y)
    values.update(yaw=yaw, pitch=pitch, roll=roll)
    bw = _window(image, box, _BLOCK_WINDOW)
    values["blockiness"] = _blockiness(_grey(image, bw), bw[0], bw[1])
    nw = _window(image, box, _NOISE_WINDOW)
    values["noise"] = _noise(_grey(image, nw))
    values["crop"] = _crop(left, right, image.shape)
    return {name: component(name, values[name]) for name in MEASURED}
