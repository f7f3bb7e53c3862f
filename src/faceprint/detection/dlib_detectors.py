"""dlib detectors: HOG, MMOD-CNN and HOG→MMOD fallback, each with dlib's 5-point landmarks.

The weights come from the ``face_recognition_models`` package (MMOD, 5-point predictor),
verified by sha256 when a detector is built; the HOG model is compiled into dlib itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, ImageDimensionError
from ..models import model_path
from ..registry import detectors
from ..types import BBox, Detection, Landmarks

__all__ = ["DlibLandmarker", "DlibHogDetector", "DlibMmodDetector", "DlibFallbackDetector"]

log = logging.getLogger(__name__)


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - dlib-bin is a hard dependency
        raise BackendUnavailableError("the dlib backends need dlib: pip install dlib-bin") from exc
    return dlib


def _check_image(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ImageDimensionError(
            f"detectors take RGB uint8 arrays of shape (H, W, 3), got {a.shape} {a.dtype}; "
            "decode images with faceprint.io.load_image"
        )
    return np.ascontiguousarray(a)


def _resize_for_detection(image: npt.NDArray[np.uint8], max_side: int | None) -> tuple[npt.NDArray[np.uint8], float]:
    """Shrink so the longer side is at most ``max_side``; returns (image, factor original/small)."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image, 1.0
    import cv2

    f = max(h, w) / float(max_side)
    small = cv2.resize(image, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8), f


#: Smallest image side (after upsampling) MMOD's CNN can scan; its faces are at least ~40 px.
_MMOD_MIN_SIDE = 40


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

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        raise NotImplementedError

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        img = _check_image(image)
        h, w = img.shape[:2]
        small, f = _resize_for_detection(img, self.max_side)
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


@detectors.register("dlib-hog")
class DlibHogDetector(_DlibBase):
    """dlib's HOG + linear SVM frontal face detector.

    Args:
        upsample: times the image is doubled before scanning (finds faces down to ~40 px at 1;
            each step costs ~4× time).
        threshold: SVM score threshold (dlib's ``adjust_threshold``); lower finds more faces.
        landmarks: run the 5-point predictor on each face.
        max_side: shrink larger images to this longer side before detection (None: never).
    """

    name = "dlib-hog"

    def __init__(
        self, *, upsample: int = 1, threshold: float = 0.0, landmarks: bool = True, max_side: int | None = 1600
    ) -> None:
        if upsample < 0 or upsample > 4:
            raise ConfigurationError(f"upsample must be between 0 and 4, got {upsample}")
        super().__init__(landmarks=landmarks, max_side=max_side)
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._det = _dlib().get_frontal_face_detector()

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        rects, scores, _ = self._det.run(image, self.upsample, self.threshold)
        return [
            (BBox(r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]


@detectors.register("dlib-mmod")
class DlibMmodDetector(_DlibBase):
    """dlib's MMOD CNN face detector (slower than HOG, finds more faces, rotated and small ones).

    Args:
        upsample: times the image is doubled before detection; None (default) doubles images whose
            longer side is under 600 px and leaves larger ones as they are (the CNN's cost grows
            with the pixel count: ~0.3 s for a 250×250 image doubled, ~1 s at 1000×1000).
        threshold: minimum confidence kept.
        landmarks: run the 5-point predictor on each face.
        max_side: shrink larger images to this longer side first.
    """

    name = "dlib-mmod"

    def __init__(
        self,
        *,
        upsample: int | None = None,
        threshold: float = 0.0,
        landmarks: bool = True,
        max_side: int | None = 1000,
    ) -> None:
        if upsample is not None and (upsample < 0 or upsample > 3):
            raise ConfigurationError(f"upsample must be between 0 and 3, got {upsample}")
        super().__init__(landmarks=landmarks, max_side=max_side)
        self.upsample = upsample
        self.threshold = float(threshold)
        self._det = _dlib().cnn_face_detection_model_v1(str(model_path("dlib-mmod")))

    def _raw(self, image: npt.NDArray[np.uint8]) -> list[tuple[BBox, float]]:
        up = self.upsample if self.upsample is not None else int(max(image.shape[:2]) < 600)
        if min(image.shape[:2]) * 2**up < _MMOD_MIN_SIDE:
            return []  # smaller than the network's receptive field: dlib would raise, and no face fits
        found = self._det(image, up)
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
    """

    name = "dlib-hog-mmod"

    def __init__(
        self,
        *,
        upsample: int = 1,
        threshold: float = 0.0,
        mmod_upsample: int | None = None,
        landmarks: bool = True,
        max_side: int | None = 1600,
    ) -> None:
        self.hog = DlibHogDetector(upsample=upsample, threshold=threshold, landmarks=landmarks, max_side=max_side)
        self._mmod: DlibMmodDetector | None = None
        self._mmod_args = {"upsample": mmod_upsample, "landmarks": landmarks}

    @property
    def mmod(self) -> DlibMmodDetector:
        if self._mmod is None:  # built on first need: most images never reach it
            self._mmod = DlibMmodDetector(**self._mmod_args)  # type: ignore[arg-type]
        return self._mmod

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        found = self.hog.detect(image)
        if found:
            return found
        log.debug("HOG found no face; trying MMOD")
        return self.mmod.detect(image)

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        return [self.detect(im) for im in images]
