"""What the attack backends share: building an ONNX graph from numpy weights, finding model files,
cropping faces, and checking inputs."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

from ..errors import ConfigurationError, ModelNotFoundError, ModelShapeError
from ..models import model_dir, verify_file
from ..onnx_runtime import GraphParts
from ..quality.fiqa import check_image
from ..types import Detection

__all__ = ["GraphBuilder", "find_model_file", "check_inputs", "OPSET", "BN_EPS_TORCH"]

OPSET = 17
BN_EPS_TORCH = 1e-5


class GraphBuilder(GraphParts):
    """Collects nodes and initialisers; ``const`` and ``op`` return the names of new values."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def expect(self, array: npt.NDArray[Any], shape: tuple[int, ...], what: str) -> npt.NDArray[np.float32]:
        """``array`` as float32 when it has ``shape``; else :class:`ModelShapeError`."""
        if tuple(array.shape) != tuple(shape):
            raise ModelShapeError(
                f"{self.source}: {what} has shape {tuple(array.shape)}, expected {tuple(shape)}; "
                "the file is another model or variant, or damaged"
            )
        return np.asarray(array, dtype=np.float32)

    def model(self, name: str, inputs: list[Any], outputs: list[Any]) -> bytes:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="faceprint")
        m.ir_version = min(m.ir_version, 8)
        onnx.checker.check_model(m)
        return bytes(m.SerializeToString())


def float_input(name: str, shape: Sequence[int | str]) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def find_model_file(
    subdir: str, filename: str, sha256: str | None, given_dir: str | os.PathLike[str] | None, what: str
) -> Path:
    """``<model dir>/<subdir>/<filename>`` (the model dir: ``given_dir`` or ``$FACEPRINT_MODEL_DIR``),
    checked against ``sha256`` when given; :class:`ModelNotFoundError` naming the directory."""
    base = Path(given_dir).expanduser() if given_dir is not None else model_dir()
    for cand in (base / subdir / filename, base / filename):
        if cand.is_file():
            return verify_file(cand, sha256) if sha256 else cand
    how = "pass model_dir= (--model-dir)" if given_dir is not None else "set FACEPRINT_MODEL_DIR or pass model_dir="
    raise ModelNotFoundError(
        f"{what} needs {subdir}/{filename} in the model directory {base}, and it is not there; copy the file "
        f"into {base / subdir} (it is not on PyPI and faceprint never downloads it) or {how}"
    )


def check_inputs(
    images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
) -> list[npt.NDArray[np.uint8]]:
    """Parallel image/detection sequences checked: RGB uint8 images, Detection objects, same length."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise ConfigurationError("score_batch takes a sequence of images; use score() for one image")
    imgs = list(images)
    dets = list(detections)
    if len(imgs) != len(dets):
        raise ConfigurationError(f"score_batch got {len(imgs)} images but {len(dets)} detections")
    for d in dets:
        if not isinstance(d, Detection):
            raise ConfigurationError(f"expected a faceprint Detection, got {type(d).__name__}")
    return [check_image(im) for im in imgs]


def check_settings(threshold: object, batch_size: object) -> float:
    """A detector's ``threshold`` (in [0, 1], returned as float) and ``batch_size`` (a positive int), checked."""
    try:
        t = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise ConfigurationError(f"threshold must lie in [0, 1], got {threshold!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
    return t


def box_of(det: Detection) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a detection's box, with a finite positive size (else ConfigurationError)."""
    b = det.bbox
    x, y, w, h = float(b.x1), float(b.y1), float(b.width), float(b.height)
    if not all(np.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ConfigurationError(f"the detection's box {b.as_list()} has no area")
    return x, y, w, h
