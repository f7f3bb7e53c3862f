"""SCRFD face detector from InsightFace ONNX model packs (``det_10g.onnx``, ``det_500m.onnx`` …).

The user puts the ``.onnx`` file in the local model directory or passes its path; nothing is
downloaded.

How a detection is made (InsightFace's SCRFD conventions):

1. Letterbox: the image is resized keeping its aspect ratio to fit the input size and placed
   at the top-left of a zero canvas; pixels become ``(x - 127.5) / 128``, RGB, NCHW.
2. The graph has 6 outputs (no keypoints) or 9 (five keypoints), ordered
   ``scores(s8, s16, s32), bboxes(s8, s16, s32)[, kps(s8, s16, s32)]``. Each has one row per
   anchor, (H/s · W/s · 2, C), optionally with a leading batch dimension of 1; rows run over
   feature-map rows, then columns, then the 2 anchors of a location.
3. Anchor centres are ``(column · s, row · s)``; boxes are ``centre ∓ distance · s``
   (left, top, right, bottom), keypoints ``centre + offset · s``.
4. Scores ≥ ``score_threshold`` are kept, mapped back to the original image, merged by
   non-maximum suppression and returned best first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ModelFormatError
from ..onnx_runtime import (
    describe_nodes,
    dims,
    float_dtype,
    model_version_of,
    open_onnx_session,
    resolve_onnx_model,
)
from ..registry import detectors
from ..types import Detection
from .base import check_image, to_detections

if TYPE_CHECKING:
    from ..testing import BackendCase

__all__ = ["OnnxScrfdDetector", "nms"]

log = logging.getLogger(__name__)

_STRIDES = (8, 16, 32)
_NUM_ANCHORS = 2


@lru_cache(maxsize=64)
def _anchor_centres(height: int, width: int, stride: int) -> npt.NDArray[np.float32]:
    """(height · width · 2, 2) anchor centres (x, y) in input pixels, read-only."""
    ys, xs = np.mgrid[:height, :width]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    centres = np.repeat(centres, _NUM_ANCHORS, axis=0)
    centres.setflags(write=False)
    return centres


def nms(
    boxes: npt.NDArray[np.floating[Any]], scores: npt.NDArray[np.floating[Any]], iou_threshold: float
) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) as x1, y1, x2, y2.
        scores: (N,).
        iou_threshold: a box is dropped when its IoU with a better kept box exceeds this.

    Returns:
        Indices of the kept boxes, best score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


@detectors.register("onnx-scrfd")
class OnnxScrfdDetector:
    """InsightFace SCRFD ONNX detector giving boxes and, for 9-output graphs, arcface5 landmarks.

    Settings (keyword-only):
        model: path to the ``.onnx`` file, or a name relative to the model directory
            (``"buffalo_l/det_10g.onnx"``).
        sha256: expected sha256 of the file; checked when given.
        threads: ONNX Runtime intra-op threads (None: its default).
        providers: ONNX Runtime execution providers in order of preference (default CPU).
        input_size: network input (width, height), multiples of 32; a graph with a fixed
            spatial size overrides it.
        score_threshold: minimum face score in [0, 1].
        nms_threshold: IoU above which the lower-scored of two boxes is dropped, in (0, 1].
        max_faces: keep at most this many faces (best scores), None for all.
    """

    name = "onnx-scrfd"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str],
        sha256: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        input_size: tuple[int, int] = (640, 640),
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_faces: int | None = None,
    ) -> None:
        try:
            iw, ih = (int(v) for v in input_size)
        except (TypeError, ValueError):
            raise ConfigurationError(f"input_size must be (width, height), got {input_size!r}") from None
        if iw < 32 or ih < 32 or iw % 32 or ih % 32:
            raise ConfigurationError(f"input_size must be positive multiples of 32, got {input_size!r}")
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ConfigurationError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        if not 0.0 < float(nms_threshold) <= 1.0:
            raise ConfigurationError(f"nms_threshold must be in (0, 1], got {nms_threshold!r}")
        if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1):
            raise ConfigurationError(f"max_faces must be a positive integer or None, got {max_faces!r}")
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_faces = max_faces
        self.path = resolve_onnx_model(model)
        self.model_version = model_version_of(self.path, sha256)
        self._session = open_onnx_session(self.path, threads=threads, providers=providers)
        self.input_size: tuple[int, int] = (iw, ih)
        self._inspect_graph()
        log.info(
            "loaded SCRFD detector %s@%s: input %dx%d, keypoints %s",
            self.path.name,
            self.model_version,
            *self.input_size,
            self.has_keypoints,
        )

    def _inspect_graph(self) -> None:
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1:
            raise ModelFormatError(
                f"{self.path}: a SCRFD detector needs exactly one input, found {len(inputs)}: {describe_nodes(inputs)}"
            )
        inp = inputs[0]
        shape = dims(inp.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ModelFormatError(
                f"{self.path}: expected an NCHW image input (N, 3, H, W), found {describe_nodes(inputs)}"
            )
        if shape[0] not in (None, 1):
            raise ModelFormatError(f"{self.path}: expected batch size 1 or dynamic, found {describe_nodes(inputs)}")
        if shape[2] is not None and shape[3] is not None:
            fixed = (shape[3], shape[2])
            if fixed != self.input_size:
                log.warning(
                    "%s has a fixed input size %dx%d; using it instead of %dx%d",
                    self.path,
                    *fixed,
                    *self.input_size,
                )
                self.input_size = fixed
            if fixed[0] % 32 or fixed[1] % 32:
                raise ModelFormatError(f"{self.path}: input size {fixed} is not a multiple of 32")
        elif shape[2] is not None or shape[3] is not None:
            raise ModelFormatError(
                f"{self.path}: input has one fixed and one dynamic spatial size: {describe_nodes(inputs)}"
            )
        self._in_dtype = float_dtype(inp.type, self.path, "the input")
        if len(outputs) not in (6, 9):
            raise ModelFormatError(
                f"{self.path}: a SCRFD graph has 6 outputs (no keypoints) or 9 (with keypoints) for strides "
                f"8/16/32, found {len(outputs)}: {describe_nodes(outputs)}"
            )
        self.has_keypoints: bool = len(outputs) == 9
        self._input_name: str = inp.name
        self._output_names: list[str] = [o.name for o in outputs]

    # -- pre/post-processing ------------------------------------------------------------------

    def _letterbox(self, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[Any], float, float]:
        """(1, 3, H_in, W_in) blob and the (x, y) scale factors input/original."""
        import cv2

        h, w = image.shape[:2]
        iw, ih = self.input_size
        if h / w > ih / iw:
            nh = ih
            nw = max(1, min(iw, int(nh * w / h)))
        else:
            nw = iw
            nh = max(1, min(ih, int(nw * h / w)))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
        canvas = np.zeros((ih, iw, 3), dtype=np.float32)
        canvas[:nh, :nw] = resized
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        return np.ascontiguousarray(blob, dtype=self._in_dtype), nw / w, nh / h

    def _rows(self, out: npt.NDArray[Any], index: int, rows: int, cols: int) -> npt.NDArray[np.float32]:
        """One output as (rows, cols), accepting (rows, cols) or (1, rows, cols)."""
        a = np.asarray(out, dtype=np.float32)
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 2 or a.shape != (rows, cols):
            raise ModelFormatError(
                f"{self.path}: output {index} ({self._output_names[index]!r}) has shape {a.shape}; expected "
                f"({rows}, {cols}) or (1, {rows}, {cols}) for input {self.input_size[0]}x{self.input_size[1]}"
            )
        return a

    def _decode(
        self, outs: Sequence[npt.NDArray[Any]]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Raw outputs → scores (M,), boxes (M, 4), keypoints (M, 5, 2) or None, in input pixels."""
        iw, ih = self.input_size
        scores_l, boxes_l, kps_l = [], [], []
        for k, stride in enumerate(_STRIDES):
            fh, fw = ih // stride, iw // stride
            n = fh * fw * _NUM_ANCHORS
            scores = self._rows(outs[k], k, n, 1)[:, 0]
            pos = np.flatnonzero(scores >= self.score_threshold)
            dist = self._rows(outs[k + 3], k + 3, n, 4)
            kps = self._rows(outs[k + 6], k + 6, n, 10) if self.has_keypoints else None
            if pos.size == 0:
                continue
            centres = _anchor_centres(fh, fw, stride)[pos]
            d = dist[pos] * stride
            boxes_l.append(np.concatenate([centres - d[:, :2], centres + d[:, 2:]], axis=1))
            scores_l.append(scores[pos])
            if kps is not None:
                kps_l.append(centres[:, None, :] + kps[pos].reshape(-1, 5, 2) * stride)
        if not scores_l:
            return (
                np.zeros((0,), np.float32),
                np.zeros((0, 4), np.float32),
                np.zeros((0, 5, 2), np.float32) if self.has_keypoints else None,
            )
        return (
            np.concatenate(scores_l),
            np.concatenate(boxes_l),
            np.concatenate(kps_l) if self.has_keypoints else None,
        )

    # -- public API -----------------------------------------------------------------------------

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image, best score first; ``[]`` when there are none."""
        img = check_image(image, allow_empty=False)
        blob, sx, sy = self._letterbox(img)
        outs = self._session.run(self._output_names, {self._input_name: blob})
        scores, boxes, kps = self._decode(outs)
        if scores.size == 0:
            return []
        boxes = np.asarray(boxes / np.array([sx, sy, sx, sy], dtype=np.float32), dtype=np.float32)
        if kps is not None:
            kps = np.asarray(kps / np.array([sx, sy], dtype=np.float32), dtype=np.float32)
        keep = nms(boxes, scores, self.nms_threshold)
        if self.max_faces is not None:
            keep = keep[: self.max_faces]
        return to_detections(boxes, scores, kps, keep, img.shape, self.name)

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        """:meth:`detect` for each image (run one at a time: SCRFD exports have a batch of 1)."""
        return [self.detect(im) for im in images]

    @classmethod
    def _conformance_cases(cls, name: str) -> list[BackendCase]:
        """How :mod:`faceprint.testing` builds this detector: on a tiny graph with one planted face."""
        from ..testing.onnx_graphs import SCRFD_FACE_A, build_scrfd, tiny_graph_case

        planted = "the synthetic graph returns its one planted face for every image"
        write = partial(build_scrfd, faces=[SCRFD_FACE_A])
        return [tiny_graph_case(name, cls, write, check_detect_finds_faces=planted, check_detect_no_face=planted)]

    def __repr__(self) -> str:
        return (
            f"OnnxScrfdDetector(model={self.path.name!r}, input_size={self.input_size}, "
            f"score_threshold={self.score_threshold}, nms_threshold={self.nms_threshold})"
        )
