"""dlib detectors: HOG, MMOD-CNN and HOG→MMOD fallback, each with dlib's 5-point landmarks.

The weights come from the ``face_recognition_models`` package (MMOD, 5-point predictor),
verified by sha256 when a detector is built; the HOG model is compiled into dlib itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError
from ..models import model_path
from ..registry import detectors
from ..types import BBox, Detection, Landmarks
from .base import check_image

__all__ = ["DlibLandmarker", "DlibHogDetector", "DlibMmodDetector", "DlibFallbackDetector"]

log = logging.getLogger(__name__)


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - dlib-bin is a hard dependency
        raise BackendUnavailableError("the dlib backends need dlib: pip install dlib-bin") from exc
    return dlib


def _resize(image: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    """``image`` resized by ``scale`` (area averaging to shrink, bilinear to enlarge)."""
    if scale == 1.0:
        return image
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interp), dtype=np.uint8)


def _resize_for_detection(image: npt.NDArray[np.uint8], max_side: int | None) -> tuple[npt.NDArray[np.uint8], float]:
    """Shrink so the longer side is at most ``max_side``; returns (image, factor original/small)."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image, 1.0
    f = max(h, w) / float(max_side)
    return _resize(image, 1.0 / f), f


#: The smallest face (box side, px) dlib's HOG detector finds in the image it scans: its sliding
#: window is 80 × 80. Each upsampling (doubling) halves it in original pixels.
HOG_WINDOW = 80
#: The same for the MMOD CNN, trained with a 40 × 40 window.
MMOD_WINDOW = 40
#: Default smallest face wanted, px: what ``upsample=1``, the old fixed setting, found.
DEFAULT_MIN_FACE = 40.0
#: The most pixels one HOG scan may cover (4 × 1600²: upsample 1 of a 1600 px image).
HOG_MAX_SCAN_PIXELS = 4 * 1600 * 1600
#: The most pixels MMOD scans per image when chosen as the detector (its cost is linear in them;
#: see DlibMmodDetector): faces down to ~55 px are found in a 700 px photograph.
MMOD_MAX_PIXELS = 512 * 512
#: The same when MMOD is only the fallback of ``dlib-hog-mmod`` (images where HOG found nothing):
#: a face-less image must stay cheap, and a 250 px LFW image still fits whole.
MMOD_FALLBACK_MAX_PIXELS = 256 * 256

#: Smallest image side (after scaling) MMOD's CNN can scan; its faces are at least ~40 px.
_MMOD_MIN_SIDE = 40


def _check_min_face(min_face: float | None) -> float:
    if min_face is None:
        return DEFAULT_MIN_FACE
    if isinstance(min_face, bool) or not isinstance(min_face, (int, float)) or not min_face >= 5:
        raise ConfigurationError(f"min_face must be a number of pixels ≥ 5, got {min_face!r}")
    return float(min_face)


def hog_levels(height: int, width: int, min_face: float, max_upsample: int = 4) -> int:
    """Upsampling HOG needs to find faces of ``min_face`` px in an image of this size (already
    shrunk for detection), capped so that one scan covers at most :data:`HOG_MAX_SCAN_PIXELS`."""
    k = max(0, math.ceil(math.log2(HOG_WINDOW / min_face) - 1e-9))
    while k > 0 and height * width * 4**k > HOG_MAX_SCAN_PIXELS:
        k -= 1
    return min(k, max_upsample)


class DlibLandmarker:
    """dlib's 5-point shape predictor (commercial use allowed; the 68-point one is not used)."""

    scheme = "dlib5"

    def __init__(self, *, model: str = "dlib-5pt") -> None:
        self._predictor = _dlib().shape_predictor(str(model_path(model)))

    def __call__(self, image: npt.NDArray[np.uint8], box: BBox) -> Landmarks:
        dlib = _dlib()
        rect = dlib.rectangle(round(box.x1), round(box.y1), round(box.x2) - 1, round(box.y2) - 1)
        shape = self._predictor(image, rect)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float32)
        return Landmarks(pts, "dlib5")


class _DlibBase:
    name = "dlib"

    def __init__(self, *, landmarks: bool, max_side: int | None) -> None:
        if max_side is not None and max_side < 32:
            raise ConfigurationError(f"max_side must be at least 32 pixels, got {max_side}")
        self.max_side = max_side
        self._landmarker = DlibLandmarker() if landmarks else None

    def _scan_image(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
        """The image the detector scans and the factor original / scanned."""
        return _resize_for_detection(image, self.max_side)

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        raise NotImplementedError

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        img = check_image(image)
        h, w = img.shape[:2]
        small, f = self._scan_image(img)
        out: list[Detection] = []
        for box, score in self._raw(small):
            b = BBox(max(0.0, box.x1 * f), max(0.0, box.y1 * f), min(float(w), box.x2 * f), min(float(h), box.y2 * f))
            if b.width <= 1 or b.height <= 1:
                continue
            # landmarks on the full-resolution image, from the unclipped box scaled back
            full = BBox(box.x1 * f, box.y1 * f, box.x2 * f, box.y2 * f)
            lm = self._landmarker(img, full) if self._landmarker is not None else None
            out.append(Detection(b, float(score), lm, self.name))
        out.sort(key=lambda d: -d.score)
        return out

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        return [self.detect(im) for im in images]


def _frontal_face_detector() -> Any:
    """dlib's HOG face detector, read from faceprint's copy of it in dlib's own file format.

    ``dlib.get_frontal_face_detector()`` decodes the model from a compressed string compiled into
    dlib, which takes about 0.9 s; reading the same model from the file ``dlib.fhog_object_detector``
    writes takes about 3 ms. The copy (``faceprint/data/dlib_frontal_face_detector.svm``, BSL-1.0
    like dlib) is checked by sha256, and a test checks it is byte for byte what dlib's built-in
    detector serialises to. Should a future dlib not read it, the built-in one is used.
    """
    dlib = _dlib()
    path = model_path("dlib-hog")
    try:
        return dlib.fhog_object_detector(str(path))
    except RuntimeError as exc:  # pragma: no cover - a dlib whose format changed
        log.warning("dlib could not read %s (%s); decoding its built-in HOG detector instead", path, exc)
        return dlib.get_frontal_face_detector()


@detectors.register("dlib-hog")
class DlibHogDetector(_DlibBase):
    """dlib's HOG + linear SVM frontal face detector.

    Args:
        min_face: smallest face wanted, px of the input image (default 40). The detector upsamples
            (doubles) the image as often as that needs: its window finds faces ≥ 80 px unscaled,
            ≥ 40 px upsampled once, ≥ 20 px twice (each step costs ~4× time).
        exhaustive: False (default): coarse to fine, stop at the first upsampling level that finds
            a face. The faces a finer level adds are smaller than the ones found (≤ 80 px vs
            ≥ 80 px unscaled), so the *largest* face is the same as with the exhaustive search;
            but in an image with a large face, smaller ones are not looked for. True: scan once at
            the finest level, every face down to ``min_face`` (group photos with small faces).
        upsample: a fixed number of doublings instead of ``min_face`` (one exhaustive scan).
        threshold: SVM score threshold (dlib's ``adjust_threshold``); lower finds more faces.
        landmarks: run the 5-point predictor on each face.
        max_side: shrink larger images to this longer side before detection (None: never).

    Cost: one scan per level tried, the finest covering at most :data:`HOG_MAX_SCAN_PIXELS`
    (fewer levels are used in very large images, so faces below ``min_face`` × (longer side /
    max_side) may be missed there). ``levels(h, w)`` says which levels an image gets.
    """

    name = "dlib-hog"

    def __init__(
        self,
        *,
        min_face: float | None = None,
        exhaustive: bool = False,
        upsample: int | None = None,
        threshold: float = 0.0,
        landmarks: bool = True,
        max_side: int | None = 1600,
    ) -> None:
        if upsample is not None and (
            isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 4
        ):
            raise ConfigurationError(f"upsample must be between 0 and 4, got {upsample}")
        super().__init__(landmarks=landmarks, max_side=max_side)
        self.min_face = _check_min_face(min_face)
        self.exhaustive = bool(exhaustive)
        self.upsample = upsample
        self.threshold = float(threshold)
        self._det = _frontal_face_detector()

    def levels(self, height: int, width: int) -> list[int]:
        """Upsampling levels scanned, in order, for an image of this size (as given to ``detect``)."""
        if self.upsample is not None:
            return [self.upsample]
        f = 1.0 if self.max_side is None else max(1.0, max(height, width) / self.max_side)
        sh, sw = round(height / f), round(width / f)
        k = hog_levels(sh, sw, self.min_face / f)
        return [k] if self.exhaustive else list(range(k + 1))

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        h, w = image.shape[:2]
        rects: Any = []
        scores: Any = []
        for up in self.levels(h, w):  # ``image`` is already shrunk: levels() sees f == 1
            rects, scores, _ = self._det.run(image, up, self.threshold)
            if len(rects):
                break
        return [
            (BBox(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]


@detectors.register("dlib-mmod")
class DlibMmodDetector(_DlibBase):
    """dlib's MMOD CNN face detector (slower than HOG, finds more faces, rotated and small ones).

    The CNN's cost is linear in the pixels it scans (this build of dlib has no BLAS: about 8 µs of
    CPU per pixel on the 2-core machine of benchmarks/RESULTS.md). The image is scaled so that a
    face of ``min_face`` px becomes 40 px, the network's window, and then, if it is still larger
    than ``max_pixels``, shrunk to that many pixels. The worst case per image is therefore one
    scan of ``max_pixels`` (default 512 × 512 = 262,144 px, ~2 s of CPU), whatever the input: a
    blank 1000 × 1000 image is scanned at 512 × 512, and a 250 px LFW image at full size. Faces
    smaller than ``40 · sqrt(H · W / max_pixels)`` px can be missed in larger images (raise
    ``max_pixels``, e.g. ``mmod_max_pixels`` of ``dlib-hog-mmod``, where time allows).

    Args:
        min_face: smallest face wanted, px of the input image (default 40: no scaling).
        upsample: a fixed number of doublings instead of ``min_face`` (the pixel cap still applies).
        threshold: minimum confidence kept.
        landmarks: run the 5-point predictor on each face.
        max_pixels: the most pixels one scan may cover.
        max_side: also shrink so the longer side is at most this (None: only ``max_pixels`` counts).
    """

    name = "dlib-mmod"

    def __init__(
        self,
        *,
        min_face: float | None = None,
        upsample: int | None = None,
        threshold: float = 0.0,
        landmarks: bool = True,
        max_pixels: int = MMOD_MAX_PIXELS,
        max_side: int | None = None,
    ) -> None:
        if upsample is not None and (
            isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 3
        ):
            raise ConfigurationError(f"upsample must be between 0 and 3, got {upsample}")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < _MMOD_MIN_SIDE**2:
            raise ConfigurationError(f"max_pixels must be an integer ≥ {_MMOD_MIN_SIDE**2}, got {max_pixels!r}")
        super().__init__(landmarks=landmarks, max_side=max_side)
        self.min_face = _check_min_face(min_face)
        self.upsample = upsample
        self.threshold = float(threshold)
        self.max_pixels = int(max_pixels)
        self._det = _dlib().cnn_face_detection_model_v1(str(model_path("dlib-mmod")))

    def scan_scale(self, height: int, width: int) -> float:
        """Factor (scanned / original) for an image of this size; see the class docstring."""
        s = float(2**self.upsample) if self.upsample is not None else MMOD_WINDOW / self.min_face
        if height <= 0 or width <= 0:
            return s  # no pixels: nothing is scanned
        if self.max_side is not None:
            s = min(s, self.max_side / max(height, width))
        return min(s, math.sqrt(self.max_pixels / (height * width)))

    def _scan_image(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
        h, w = image.shape[:2]
        s = self.scan_scale(h, w)
        scanned = _resize(image, s)
        sh, sw = scanned.shape[:2]
        return scanned, w / sw if sw else 1.0

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        if min(image.shape[:2]) < _MMOD_MIN_SIDE:
            return []  # smaller than the network's receptive field: dlib would raise, and no face fits
        found = self._det(image, 0)
        out = []
        for d in found:
            if d.confidence < self.threshold:
                continue
            r = d.rect
            out.append((BBox(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(d.confidence)))
        return out


@detectors.register("dlib-hog-mmod")
class DlibFallbackDetector:
    """Fast → accurate: HOG first; MMOD only on images where HOG finds no face.

    On LFW, HOG alone misses a fraction of a percent of the faces MMOD finds; this keeps HOG's
    speed on the easy images and MMOD's recall on the rest. ``detector`` on each result says
    which stage found it.

    ``min_face`` (smallest face wanted, px, default 40) sets both stages' scales and
    ``exhaustive`` HOG's search order (see :class:`DlibHogDetector`); ``upsample`` and
    ``mmod_upsample`` fix them instead. Worst case per image with the defaults, for an image of
    up to 1600 px: HOG unscaled, HOG upsampled once, and MMOD on at most 65,536 pixels.
    """

    name = "dlib-hog-mmod"

    def __init__(
        self,
        *,
        min_face: float | None = None,
        exhaustive: bool = False,
        upsample: int | None = None,
        threshold: float = 0.0,
        mmod_upsample: int | None = None,
        mmod_max_pixels: int = MMOD_FALLBACK_MAX_PIXELS,
        landmarks: bool = True,
        max_side: int | None = 1600,
    ) -> None:
        self.hog = DlibHogDetector(
            min_face=min_face,
            exhaustive=exhaustive,
            upsample=upsample,
            threshold=threshold,
            landmarks=landmarks,
            max_side=max_side,
        )
        self._mmod: DlibMmodDetector | None = None
        self._mmod_args: dict[str, Any] = {
            "min_face": min_face,
            "upsample": mmod_upsample,
            "landmarks": landmarks,
            "max_pixels": mmod_max_pixels,
        }

    @property
    def mmod(self) -> DlibMmodDetector:
        if self._mmod is None:  # built on first need: most images never reach it
            self._mmod = DlibMmodDetector(**self._mmod_args)
        return self._mmod

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        found = self.hog.detect(image)
        if found:
            return found
        log.debug("HOG found no face; trying MMOD")
        return self.mmod.detect(image)

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        return [self.detect(im) for im in images]
