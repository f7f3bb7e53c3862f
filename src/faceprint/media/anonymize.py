"""Anonymisation: cover every detected face of a photo or a video frame.

Four methods, each applied to the face box widened by a safety ``margin`` (a share of the box
size on every side, because detector boxes are tight and leave forehead, ears and jaw visible):

``blur``
    Gaussian blur whose σ is ``strength`` × the longer side of the widened box, so a large face
    is blurred as much, relative to its size, as a small one. A fixed σ is not enough: σ = 6 px
    leaves most LFW faces recognisable (see ``faceprint anonymize eval``).
``pixelate``
    The box shrunk to ``blocks`` cells across its longer side and scaled back up.
``mask``
    A solid fill.
``ksame``
    k-Same (Newton, Sweeney & Malin, IEEE TKDE 2005): the face is replaced by the average of the
    ``k`` reference faces closest to it (aligned, in pixel space), warped back into the face
    region and blended with a feathered ellipse. Whoever the person is, the face shown is an
    average of ``k`` other people, so a recogniser matches it to none of them with probability
    above ``1/k``, and a face is still there for downstream detection. Needs a reference set of
    faces of people who are not in the photos (:meth:`KSameReference.from_images`).

:class:`Anonymizer` detects and covers the faces of one image; :func:`anonymize_frames` does it
for a stream of video frames and keeps a face covered for ``carry`` frames after the detector
last saw it, so a face missed in one frame is not shown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, NoFaceError
from ..types import BBox, Detection
from ._crops import aligned_crop, crop_transform_padded, pixel_descriptor

if TYPE_CHECKING:
    from ..detection.base import Detector
    from ..io import ImageSource

__all__ = [
    "METHODS",
    "DEFAULT_METHOD",
    "DEFAULT_MARGIN",
    "DEFAULT_BLUR_STRENGTH",
    "DEFAULT_PIXELATE_BLOCKS",
    "Method",
    "Anonymizer",
    "AnonymizedImage",
    "KSameReference",
    "expand_box",
    "blur_region",
    "pixelate_region",
    "mask_region",
    "anonymize_frames",
    "box_iou",
]

log = logging.getLogger(__name__)

Method = Literal["blur", "pixelate", "mask", "ksame"]
METHODS: tuple[str, ...] = ("blur", "pixelate", "mask", "ksame")
#: chosen by measurement (``faceprint anonymize eval --protocol lfw``, benchmarks/RESULTS.md):
#: the method that keeps the most of the picture among those re-identifying ≤ 5 % at FMR 1e-2
DEFAULT_METHOD: Method = "blur"
#: share of the box's width / height added on each side
DEFAULT_MARGIN = 0.25
#: blur σ as a share of the longer side of the widened box
DEFAULT_BLUR_STRENGTH = 0.25
#: pixelation cells across the longer side of the widened box
DEFAULT_PIXELATE_BLOCKS = 6
DEFAULT_K = 10
#: side of the aligned k-Same face crops, px
KSAME_SIZE = 96
#: padding of the k-Same crop around dlib's 5-point mean face (dlib's chips use 0.25): wider, so the
#: replaced region covers what a recogniser's own crop sees
KSAME_PADDING = 0.45


def _check_unit(name: str, value: float, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise ConfigurationError(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return float(value)


def expand_box(bbox: BBox, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` integer pixel box: ``bbox`` widened by ``margin`` × its size on each
    side, clipped to an image of ``shape`` (H, W, …); may be empty for a box outside the image."""
    h, w = int(shape[0]), int(shape[1])
    mx, my = margin * bbox.width, margin * bbox.height
    x1 = int(np.clip(np.floor(bbox.x1 - mx), 0, w))
    y1 = int(np.clip(np.floor(bbox.y1 - my), 0, h))
    x2 = int(np.clip(np.ceil(bbox.x2 + mx), x1, w))
    y2 = int(np.clip(np.ceil(bbox.y2 + my), y1, h))
    return x1, y1, x2, y2


def box_iou(a: BBox, b: BBox) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def blur_region(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], strength: float) -> None:
    """Gaussian-blur ``box`` of ``image`` in place, σ = ``strength`` × the box's longer side.

    Large σ are applied to a shrunk copy (the result is the same to within a grey level and the
    cost no longer grows with the face size).
    """
    x1, y1, x2, y2 = box
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    region = image[y1:y2, x1:x2]
    side = max(x2 - x1, y2 - y1)
    sigma = strength * side
    if sigma <= 0:
        return
    # work at a scale where σ is ~4 px: cheap, and a Gaussian that wide has nothing above that band
    f = min(1.0, 4.0 / sigma)
    small = region
    if f < 1.0:
        sw, sh = max(2, round((x2 - x1) * f)), max(2, round((y2 - y1) * f))
        small = np.asarray(cv2.resize(region, (sw, sh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        sigma_s = sigma * sw / (x2 - x1)
    else:
        sigma_s = sigma
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma_s, sigmaY=sigma_s, borderType=cv2.BORDER_REFLECT)
    if f < 1.0:
        blurred = cv2.resize(blurred, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    image[y1:y2, x1:x2] = blurred


def pixelate_region(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], blocks: int) -> None:
    """Replace ``box`` of ``image`` in place by ``blocks`` cells across its longer side."""
    x1, y1, x2, y2 = box
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    w, h = x2 - x1, y2 - y1
    side = max(w, h)
    bw, bh = max(1, round(blocks * w / side)), max(1, round(blocks * h / side))
    small = cv2.resize(image[y1:y2, x1:x2], (bw, bh), interpolation=cv2.INTER_AREA)
    image[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def mask_region(
    image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], colour: tuple[int, int, int] = (0, 0, 0)
) -> None:
    """Fill ``box`` of ``image`` in place with a solid colour."""
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = np.asarray(colour, dtype=np.uint8)


# --- k-Same ------------------------------------------------------------------------------------


def ksame_transform(det: Detection) -> npt.NDArray[np.float64]:
    """The (2, 3) image → k-Same crop matrix of a detection with landmarks."""
    return crop_transform_padded(det, KSAME_SIZE, KSAME_PADDING)


def _ksame_crop(image: npt.NDArray[np.uint8], det: Detection) -> npt.NDArray[np.uint8]:
    return aligned_crop(image, det, KSAME_SIZE, KSAME_PADDING)


def _feather_mask() -> npt.NDArray[np.float32]:
    """An ellipse inscribed in the k-Same crop, 1 inside, fading to 0 at its edge."""
    s = KSAME_SIZE
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    c = (s - 1) / 2.0
    r = np.sqrt(((xx - c) / (0.47 * s)) ** 2 + ((yy - c) / (0.49 * s)) ** 2)
    return np.clip((1.0 - r) / 0.15, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class KSameReference:
    """Aligned reference faces for k-Same: ``crops`` uint8 (N, S, S, 3) RGB, S = :data:`KSAME_SIZE`.

    The people in the reference set must not be the people to anonymise (k-Same's guarantee is
    that the face shown is an average of ``k`` reference people).
    """

    crops: npt.NDArray[np.uint8]
    sources: tuple[str, ...] = ()
    descriptors: npt.NDArray[np.float32] = field(init=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.crops, dtype=np.uint8)
        if c.ndim != 4 or c.shape[1:] != (KSAME_SIZE, KSAME_SIZE, 3):
            raise ConfigurationError(
                f"k-Same reference crops must be (N, {KSAME_SIZE}, {KSAME_SIZE}, 3), got {c.shape}"
            )
        object.__setattr__(self, "crops", c)
        object.__setattr__(self, "descriptors", pixel_descriptor(c))

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    @classmethod
    def from_images(
        cls, images: Iterable[ImageSource], detector: Detector, *, max_faces: int | None = None
    ) -> KSameReference:
        """Align the largest face of each image (images without a face or unreadable are skipped)."""
        from ..errors import FaceprintError
        from ..io import describe_source, load_image

        crops: list[npt.NDArray[np.uint8]] = []
        names: list[str] = []
        for src in images:
            if max_faces is not None and len(crops) >= max_faces:
                break
            try:
                img = load_image(src)
            except FaceprintError as exc:
                log.warning("k-Same reference %s skipped: %s", describe_source(src), exc)
                continue
            dets = [d for d in detector.detect(img) if d.landmarks is not None]
            if not dets:
                continue
            crops.append(_ksame_crop(img, max(dets, key=lambda d: d.bbox.area)))
            names.append(describe_source(src))
        if not crops:
            raise NoFaceError("the k-Same reference set has no usable face; give a folder of face photos")
        return cls(np.stack(crops), tuple(names))

    def average(self, crop: npt.NDArray[np.uint8], k: int) -> npt.NDArray[np.float32]:
        """The mean of the ``k`` reference crops closest to ``crop`` (float32, S×S×3)."""
        if k > len(self):
            raise ConfigurationError(f"k-Same with k={k} needs at least {k} reference faces, the set has {len(self)}")
        d = self.descriptors @ pixel_descriptor(crop[None])[0]
        idx = np.argsort(-d, kind="stable")[:k]
        return np.asarray(self.crops[idx].astype(np.float32).mean(axis=0), dtype=np.float32)


def ksame_face(image: npt.NDArray[np.uint8], det: Detection, reference: KSameReference, k: int) -> None:
    """Replace the face ``det`` of ``image`` in place by its k-Same average, warped back and blended."""
    m = ksame_transform(det)
    crop = _ksame_crop(image, det)
    avg = reference.average(crop, k)
    alpha = _feather_mask()
    # match the average's colour to the face it replaces (its mean per channel inside the ellipse),
    # so the blend has no visible seam; the person's features are not carried over
    wsum = float(alpha.sum())
    for ch in range(3):
        shift = float((crop[..., ch] * alpha).sum() - (avg[..., ch] * alpha).sum()) / wsum
        avg[..., ch] += shift
    h, w = image.shape[:2]
    inv = cv2.invertAffineTransform(m)
    back = cv2.warpAffine(np.clip(avg, 0, 255), inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpAffine(alpha, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ys, xs = np.nonzero(a > 0)
    if len(ys) == 0:
        return
    y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    aa = a[y1:y2, x1:x2, None]
    region = image[y1:y2, x1:x2].astype(np.float32)
    image[y1:y2, x1:x2] = np.clip(region * (1.0 - aa) + back[y1:y2, x1:x2] * aa + 0.5, 0, 255).astype(np.uint8)


# --- one image ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class AnonymizedImage:
    """An anonymised copy of an image and the faces that were covered (detections, best first)."""

    image: npt.NDArray[np.uint8]
    faces: tuple[Detection, ...]
    carried: int = 0  #: faces covered from earlier frames (video), not detected in this one


class Anonymizer:
    """Detect every face and cover it.

    Args:
        detector: a Detector (e.g. ``FacePipeline().detector``).
        method: ``"blur"``, ``"pixelate"``, ``"mask"`` or ``"ksame"``.
        margin: share of the box size added on each side (0–2).
        strength: blur σ as a share of the widened box's longer side (0.01–2).
        blocks: pixelation cells across the widened box's longer side (1–64).
        reference: the k-Same reference faces (needed for ``"ksame"``).
        k: faces averaged by k-Same (≥ 1; the guarantee is re-identification ≤ 1/k).
    """

    def __init__(
        self,
        detector: Detector,
        method: str = DEFAULT_METHOD,
        *,
        margin: float = DEFAULT_MARGIN,
        strength: float = DEFAULT_BLUR_STRENGTH,
        blocks: int = DEFAULT_PIXELATE_BLOCKS,
        reference: KSameReference | None = None,
        k: int = DEFAULT_K,
    ) -> None:
        if method not in METHODS:
            raise ConfigurationError(f"unknown anonymisation method {method!r}; choose one of: {', '.join(METHODS)}")
        self.detector = detector
        self.method = method
        self.margin = _check_unit("margin", margin, 0.0, 2.0)
        self.strength = _check_unit("blur strength", strength, 0.01, 2.0)
        if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= 64:
            raise ConfigurationError(f"pixelation blocks must be an integer between 1 and 64, got {blocks!r}")
        self.blocks = blocks
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be an integer ≥ 1, got {k!r}")
        if method == "ksame":
            if reference is None:
                raise ConfigurationError("k-Same needs a reference set of faces: pass --reference DIR")
            if k > len(reference):
                raise ConfigurationError(f"k={k} is more than the {len(reference)} reference faces")
        self.reference = reference
        self.k = k

    def cover(self, image: npt.NDArray[np.uint8], faces: Sequence[Detection]) -> npt.NDArray[np.uint8]:
        """A copy of ``image`` with ``faces`` covered (the input is never modified)."""
        out = np.array(image, dtype=np.uint8, copy=True)
        for det in faces:
            if self.method == "ksame" and det.landmarks is not None:
                assert self.reference is not None
                ksame_face(out, det, self.reference, self.k)
                continue
            box = expand_box(det.bbox, self.margin, out.shape)
            if self.method == "blur":
                blur_region(out, box, self.strength)
            elif self.method == "pixelate":
                pixelate_region(out, box, self.blocks)
            else:  # mask, and k-Same faces without landmarks (nothing to align)
                mask_region(out, box)
        return out

    def anonymize(self, image: npt.NDArray[np.uint8]) -> AnonymizedImage:
        """Detect the faces of a decoded RGB image and cover every one."""
        faces = tuple(self.detector.detect(image))
        return AnonymizedImage(self.cover(image, faces), faces)

    def settings(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method, "margin": self.margin}
        if self.method == "blur":
            out["strength"] = self.strength
        elif self.method == "pixelate":
            out["blocks"] = self.blocks
        elif self.method == "ksame":
            out["k"] = self.k
            out["reference_faces"] = len(self.reference) if self.reference is not None else 0
        return out


# --- video frames ------------------------------------------------------------------------------


def anonymize_frames(
    frames: Iterable[npt.NDArray[np.uint8]], anonymizer: Anonymizer, *, carry: int = 5, iou: float = 0.3
) -> Iterator[AnonymizedImage]:
    """Anonymise a stream of RGB frames, one at a time.

    A face detected in a frame stays covered for the next ``carry`` frames even where the
    detector misses it (a box seen again, IoU ≥ ``iou`` with a detection, is refreshed). This is
    a plain box carry-over, not a tracker: a face moving fast while undetected can slip out.
    """
    if isinstance(carry, bool) or not isinstance(carry, int) or carry < 0:
        raise ConfigurationError(f"carry must be an integer ≥ 0, got {carry!r}")
    recent: list[tuple[Detection, int]] = []  # (detection, frames since it was last seen)
    for frame in frames:
        dets = list(anonymizer.detector.detect(frame))
        kept = [
            (d, age + 1) for d, age in recent if age + 1 <= carry and all(box_iou(d.bbox, x.bbox) < iou for x in dets)
        ]
        faces = dets + [d for d, _ in kept]
        yield AnonymizedImage(anonymizer.cover(frame, faces), tuple(faces), carried=len(kept))
        recent = [(d, 0) for d in dets] + kept
