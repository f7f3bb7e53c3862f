"""YuNet face detector (Wu et al., IJAC 2023): boxes and five landmarks from a 75k-parameter CNN.

The weights are not on PyPI: put ``yunet_s_dynamic.onnx`` (any input size; Apache-2.0, from
ShiqiYu/libfacedetection.train) in ``<model dir>/yunet/``, where the model directory is
``$FACEPRINT_MODEL_DIR`` (default ``~/.faceprint/models``), or pass ``model=`` a path. The
manifest (``faceprint models list``) pins its sha256, checked when the detector is built; a file
passed by path is checked against ``sha256=`` when given. OpenCV Zoo's
``face_detection_yunet_2023mar.onnx`` (a fixed 640×640 input) is the same network and works too:
images are then letterboxed into its input.

How a detection is made (OpenCV's ``FaceDetectorYN``, reproduced with ONNX Runtime so the
session releases the GIL and shares faceprint's ONNX settings):

1. The RGB image is resized by the scan scale (below), turned to BGR float32 in [0, 255] (no
   mean, no scaling) and zero-padded at the right and bottom to a multiple of 32.
2. For each stride s ∈ (8, 16, 32) and feature-map cell (row r, column c):
   ``score = sqrt(clip(cls, 0, 1) · clip(obj, 0, 1))``; box centre ``((c, r) + bbox[:2]) · s``,
   size ``exp(bbox[2:]) · s``; landmark k at ``((c, r) + kps[2k:2k+2]) · s``.
3. Scores ≥ ``score_threshold`` are kept, merged by non-maximum suppression, mapped back to the
   image and returned best first. YuNet's landmarks (right eye, left eye, nose tip, right and
   left mouth corner, of the person) are in faceprint's ``arcface5`` order (eye on the image's
   left first). By default (``landmarks="dlib5"``) each face instead gets dlib's 5-point
   landmarks, placed on its box: they align faces for dlib's network better (see the class).

Scan scale and cost. YuNet sees faces down to about 10 px at the scale it scans. Images whose
longer side exceeds ``max_side`` are shrunk to it, unless that would make a face of ``min_face``
pixels smaller than 10 px, in which case the scale is ``10 / min_face``; small images are
enlarged only when ``min_face`` < 10. So one image costs one network run on at most
``max(max_side², (10 / min_face)² · H · W)`` pixels (with the defaults, 640 × 640 for any image
up to 2,560 px).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ModelFormatError
from ..models import get_spec, model_path
from ..onnx_runtime import describe_nodes, dims, model_version_of, open_onnx_session, resolve_onnx_model
from ..registry import detectors
from ..types import BBox, Detection
from .base import check_image, to_detections
from .onnx_scrfd import nms

__all__ = ["YuNetDetector", "MODEL_NAME", "SMALLEST_FACE", "HOG_BOX_FROM_YUNET", "hog_box"]

log = logging.getLogger(__name__)

MODEL_NAME = "yunet"
#: Smallest face (px at the scanned scale) YuNet finds reliably: its finest anchors are 8 px apart.
SMALLEST_FACE = 10.0
#: The box dlib's HOG detector draws around a face, from YuNet's box of width w: centre moved by
#: (dx·w, dy·w), size (sx·w, sy·w). Medians over 3,415 LFW View 1 DevTrain faces both found
#: (benchmarks/tune_lfw.py, box_map); dlib's 5-point predictor expects boxes like HOG's.
HOG_BOX_FROM_YUNET = (-0.0323, 0.0525, 1.1393, 1.1308)
_STRIDES = (8, 16, 32)
_OUTPUTS = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in _STRIDES)


def hog_box(box: BBox) -> BBox:
    """The box dlib's HOG detector would draw for the face YuNet boxed as ``box``."""
    dx, dy, sx, sy = HOG_BOX_FROM_YUNET
    w = box.width
    cx, cy = box.center
    cx, cy = cx + dx * w, cy + dy * w
    return BBox(cx - sx * w / 2, cy - sy * w / 2, cx + sx * w / 2, cy + sy * w / 2)


@detectors.register("yunet")
class YuNetDetector:
    """YuNet ONNX face detector with five landmarks (``arcface5`` order).

    Settings (keyword-only):
        model: None (default) for the manifest's ``yunet/yunet_s_dynamic.onnx`` in the model
            directory, checked by sha256; or a path / a name relative to the model directory.
        sha256: expected sha256 of a ``model`` given by path; checked when given.
        threads: ONNX Runtime intra-op threads (default 1: the detector runs in ~3 ms per
            250 px image on one thread, and batch work runs one process per core).
        providers: ONNX Runtime execution providers in order of preference (default CPU).
        score_threshold: minimum face score in [0, 1].
        nms_threshold: IoU above which the lower-scored of two boxes is dropped, in (0, 1].
        min_face: smallest face wanted, in pixels of the input image (see the module docstring).
        max_side: longer side an image is shrunk to before scanning (unless ``min_face`` needs more).
        max_faces: keep at most this many faces (best scores), None for all.
        landmarks: ``"dlib5"`` (default): dlib's 5-point predictor placed on each box, after
            mapping it to the box dlib's HOG detector draws for the same face
            (:data:`HOG_BOX_FROM_YUNET`), ~1 ms per face; ``"yunet"``: YuNet's own five points
            (``arcface5``), which align faces for dlib's network less well (LFW View 1 DevTrain
            EER 1.31 % against 1.18 %; dlib's detector and points: 1.04 %).
    """

    name = "yunet"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        sha256: str | None = None,
        threads: int | None = 1,
        providers: Sequence[str] | None = None,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        min_face: float = 40.0,
        max_side: int = 640,
        max_faces: int | None = None,
        landmarks: str = "dlib5",
    ) -> None:
        if landmarks not in ("yunet", "dlib5"):
            raise ConfigurationError(f"landmarks must be 'yunet' or 'dlib5', got {landmarks!r}")
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ConfigurationError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        if not 0.0 < float(nms_threshold) <= 1.0:
            raise ConfigurationError(f"nms_threshold must be in (0, 1], got {nms_threshold!r}")
        if not float(min_face) >= 5.0:
            raise ConfigurationError(f"min_face must be at least 5 pixels, got {min_face!r}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 32:
            raise ConfigurationError(f"max_side must be an integer of at least 32 pixels, got {max_side!r}")
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1):
            raise ConfigurationError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_face = float(min_face)
        self.max_side = int(max_side)
        self.max_faces = max_faces
        if model is None:
            if sha256 is not None:
                raise ConfigurationError("sha256= checks a model given by path; the manifest's model has its own")
            self.path: Path = model_path(MODEL_NAME)  # verified against the manifest's sha256
            self.model_version = get_spec(MODEL_NAME).files[0].sha256[:12]
        else:
            self.path = resolve_onnx_model(model)
            self.model_version = model_version_of(self.path, sha256)
        self._session = open_onnx_session(self.path, threads=threads, providers=providers)
        self._inspect_graph()
        self.landmarks = landmarks
        self._dlib5: Any = None
        if landmarks == "dlib5":
            from .dlib_detectors import DlibLandmarker

            self._dlib5 = DlibLandmarker()
        log.info("loaded YuNet detector %s@%s", self.path.name, self.model_version)

    def _inspect_graph(self) -> None:
        inputs = self._session.get_inputs()
        names = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or len(dims(inputs[0].shape)) != 4 or dims(inputs[0].shape)[1] not in (None, 3):
            raise ModelFormatError(
                f"{self.path}: a YuNet graph has one (N, 3, H, W) input, found {describe_nodes(inputs)}"
            )
        missing = [n for n in _OUTPUTS if n not in names]
        if missing:
            raise ModelFormatError(
                f"{self.path}: not a YuNet graph: outputs {', '.join(missing)} are missing "
                f"(found {describe_nodes(self._session.get_outputs())})"
            )
        shape = dims(inputs[0].shape)
        self._input_name: str = inputs[0].name
        #: (width, height) of a fixed-size graph, None for a dynamic one
        self.fixed_size: tuple[int, int] | None = (shape[3], shape[2]) if shape[2] and shape[3] else None  # type: ignore[assignment]

    # -- scale -------------------------------------------------------------------------------------

    def scan_scale(self, height: int, width: int) -> float:
        """Factor (scanned / original) at which an image of this size is scanned."""
        longer = max(height, width)
        s = min(self.max_side / longer, 1.0)
        s = max(s, min(SMALLEST_FACE / self.min_face, 2.0))
        if self.fixed_size is not None:  # letterbox into the graph's input
            s = min(s, self.fixed_size[0] / width, self.fixed_size[1] / height)
        return s

    def _blob(self, image: npt.NDArray[np.uint8], s: float) -> tuple[npt.NDArray[np.float32], float, float]:
        import cv2

        h, w = image.shape[:2]
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        if (nw, nh) != (w, h):
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            image = np.asarray(cv2.resize(image, (nw, nh), interpolation=interp), dtype=np.uint8)
        if self.fixed_size is not None:
            pw, ph = self.fixed_size
        else:
            pw, ph = -(-nw // 32) * 32, -(-nh // 32) * 32
        canvas = np.zeros((3, ph, pw), dtype=np.float32)
        canvas[:, :nh, :nw] = image[:, :, ::-1].transpose(2, 0, 1)  # RGB → BGR, HWC → CHW
        return canvas[None], nw / w, nh / h

    # -- decoding ------------------------------------------------------------------------------------

    def _decode(
        self, outs: dict[str, npt.NDArray[Any]], pw: int, ph: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        scores_l, boxes_l, kps_l = [], [], []
        for s in _STRIDES:
            cols, rows = pw // s, ph // s
            n = rows * cols

            def out(kind: str, c: int, s: int = s, n: int = n) -> npt.NDArray[np.float32]:
                a = np.asarray(outs[f"{kind}_{s}"], dtype=np.float32).reshape(-1)
                if a.size != n * c:
                    raise ModelFormatError(
                        f"{self.path}: output {kind}_{s} has {a.size} values; expected {n * c} for a {pw}x{ph} input"
                    )
                return a.reshape(n, c)

            cls, obj = out("cls", 1)[:, 0], out("obj", 1)[:, 0]
            score = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
            pos = np.flatnonzero(score >= self.score_threshold)
            if pos.size == 0:
                continue
            bbox, kps = out("bbox", 4)[pos], out("kps", 10)[pos]
            cell = np.stack([pos % cols, pos // cols], axis=1).astype(np.float32)
            centre = (cell + bbox[:, :2]) * s
            size = np.exp(np.minimum(bbox[:, 2:], 10.0)) * s  # clamp: a garbage output must not overflow
            boxes_l.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            kps_l.append((cell[:, None, :] + kps.reshape(-1, 5, 2)) * s)
            scores_l.append(score[pos])
        if not scores_l:
            return np.zeros((0,), np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32)
        return np.concatenate(scores_l), np.concatenate(boxes_l), np.concatenate(kps_l)

    # -- public API ------------------------------------------------------------------------------------

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image, best score first; ``[]`` when there are none."""
        img = check_image(image, allow_empty=False)
        h, w = img.shape[:2]
        blob, sx, sy = self._blob(img, self.scan_scale(h, w))
        ph, pw = blob.shape[2:]
        outs = dict(zip(_OUTPUTS, self._session.run(list(_OUTPUTS), {self._input_name: blob}), strict=True))
        scores, boxes, kps = self._decode(outs, pw, ph)
        if scores.size == 0:
            return []
        keep = nms(boxes, scores, self.nms_threshold)
        if self.max_faces is not None:
            keep = keep[: self.max_faces]
        back = np.array([sx, sy], dtype=np.float32)
        scaled = np.asarray(boxes / np.tile(back, 2), dtype=np.float32)
        found = to_detections(scaled, scores, np.asarray(kps / back, dtype=np.float32), keep, img.shape, self.name)
        if self._dlib5 is None:
            return found
        return [
            Detection(d.bbox, d.score, self._dlib5(img, hog_box(d.bbox)), detector=self.name)  # type: ignore[arg-type]
            for d in found
        ]

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        """:meth:`detect` for each image (sizes differ, so one network run each)."""
        return [self.detect(im) for im in images]

    @classmethod
    def _conformance_cases(cls, name: str) -> list[Any]:
        """How :mod:`faceprint.testing` builds this detector: on the real YuNet weights, found in the
        suite's model folders (``yunet/yunet_s_dynamic.onnx``) or the model directory; skipped
        when neither holds them."""
        from ..testing import BackendCase

        return [BackendCase(name, lambda ctx: cls(model=ctx.model_file("yunet/yunet_s_dynamic.onnx")))]

    def __repr__(self) -> str:
        return (
            f"YuNetDetector(model={self.path.name!r}, score_threshold={self.score_threshold}, "
            f"min_face={self.min_face}, max_side={self.max_side})"
        )
