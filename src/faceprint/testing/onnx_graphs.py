"""Tiny ONNX graphs with planted outputs, for testing model loaders without model files.

Nothing here is trained: the graphs compute a fixed, known function of their input, so a test
knows exactly what a loader must return. :func:`build_scrfd` writes an SCRFD-shaped detector
(InsightFace layout: scores, boxes, keypoints for strides 8, 16, 32, two anchors per location)
that finds the planted faces in every image; :func:`build_arcface` writes an ArcFace-shaped
embedder ``mean over H, W → @ weight (3, D) → + bias (D,)``. The conformance cases of the ONNX
backends use them (see :mod:`faceprint.testing`), and so do the backends' own unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    from ._cases import BackendCase

__all__ = [
    "SCRFD_STRIDES",
    "PlantedFace",
    "SCRFD_FACE_A",
    "SCRFD_FACE_B",
    "build_scrfd",
    "ARCFACE_W",
    "ARCFACE_B",
    "build_arcface",
    "tiny_graph_case",
]

SCRFD_STRIDES = (8, 16, 32)


@dataclass
class PlantedFace:
    """A face planted at one anchor of a tiny SCRFD graph; distances and offsets in stride units."""

    stride: int
    row: int  # feature-map row
    col: int  # feature-map column
    anchor: int  # 0 or 1
    score: float
    dist: tuple[float, float, float, float]  # left, top, right, bottom, in stride units
    kps: tuple[float, ...] = (-1.0, -1.0, 1.0, -1.0, 0.0, 0.0, -0.8, 1.0, 0.8, 1.0)  # 5 (dx, dy), stride units

    def centre(self) -> npt.NDArray[np.float64]:
        return np.array([self.col * self.stride, self.row * self.stride], dtype=np.float64)

    def box_in_input(self) -> npt.NDArray[np.float64]:
        c, d = self.centre(), np.array(self.dist) * self.stride
        return np.array([c[0] - d[0], c[1] - d[1], c[0] + d[2], c[1] + d[3]])

    def kps_in_input(self) -> npt.NDArray[np.float64]:
        return self.centre() + np.array(self.kps).reshape(5, 2) * self.stride


def _planted_outputs(
    faces: Sequence[PlantedFace], size: tuple[int, int], score_from_red: bool
) -> tuple[dict[str, list[npt.NDArray[np.float32]]], list[npt.NDArray[np.float32]]]:
    """Per stride: score, bbox and kps rows with the faces planted, and a mask of their rows."""
    w, h = size
    arrays: dict[str, list[npt.NDArray[np.float32]]] = {"score": [], "bbox": [], "kps": []}
    masks: list[npt.NDArray[np.float32]] = []
    for s in SCRFD_STRIDES:
        n = (h // s) * (w // s) * 2
        sc, bb, kp, mk = (np.zeros((n, c), np.float32) for c in (1, 4, 10, 1))
        for f in faces:
            if f.stride != s:
                continue
            i = (f.row * (w // s) + f.col) * 2 + f.anchor
            sc[i, 0] = 0.0 if score_from_red else f.score
            mk[i, 0] = 1.0
            bb[i] = f.dist
            kp[i] = f.kps
        arrays["score"].append(sc)
        arrays["bbox"].append(bb)
        arrays["kps"].append(kp)
        masks.append(mk)
    return arrays, masks


def _save(path: Path, nodes: list[Any], name: str, inputs: list[Any], outputs: list[Any], inits: list[Any]) -> Path:
    """Check and write an opset-17 ONNX model; returns ``path``."""
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_scrfd(
    path: Path,
    faces: Sequence[PlantedFace],
    *,
    size: tuple[int, int] = (640, 640),  # (width, height)
    keypoints: bool = True,
    batched: bool = False,
    input_shape: list[int | str] | None = None,
    drop_outputs: int = 0,
    score_from_red: bool = False,
) -> Path:
    """Write an SCRFD-like graph that outputs ``faces`` whatever the image; returns ``path``.

    The keyword settings shape the graph for loader tests: ``size`` (width, height) of the
    input the outputs are laid out for, 9 outputs or 6 (``keypoints``), a leading batch
    dimension on each output (``batched``), the declared ``input_shape``, the last
    ``drop_outputs`` outputs removed, and ``score_from_red``, which makes every planted face's
    score the mean of the network's channel 0 (so the pre-processing shows in the score).
    """
    arrays, masks = _planted_outputs(faces, size, score_from_red)
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean_all"], keepdims=0),
        helper.make_node("Mul", ["mean_all", "zero"], ["nothing"]),
        helper.make_node("Slice", ["input.1", "c0", "c1", "c_axis"], ["red"]),
        helper.make_node("ReduceMean", ["red"], ["red_mean"], keepdims=0),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "c_axis"),
    ]
    outputs = []
    kinds = ["score", "bbox"] + (["kps"] if keypoints else [])
    for kind in kinds:
        for k, s in enumerate(SCRFD_STRIDES):
            arr = arrays[kind][k]
            const, out = f"{kind}_{s}_const", f"{kind}_{s}"
            inits.append(numpy_helper.from_array(arr, const))
            flat = out + "_flat" if batched else out
            if kind == "score" and score_from_red:
                inits.append(numpy_helper.from_array(masks[k], f"mask_{s}"))
                nodes.append(helper.make_node("Mul", ["red_mean", f"mask_{s}"], [f"masked_{s}"]))
                nodes.append(helper.make_node("Add", [const, f"masked_{s}"], [flat]))
            else:
                nodes.append(helper.make_node("Add", [const, "nothing"], [flat]))
            if batched:
                nodes.append(helper.make_node("Unsqueeze", [flat, "batch_axis0"], [out]))
                shape: list[int | str] = [1, *arr.shape]
            else:
                shape = list(arr.shape)
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    if batched:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "batch_axis0"))
    if drop_outputs:
        outputs = outputs[:-drop_outputs]
    inputs = [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, input_shape or [1, 3, "?", "?"])]
    return _save(path, nodes, "tiny_scrfd", inputs, outputs, inits)


#: Two faces at known anchors (stride 8 and stride 32).
SCRFD_FACE_A = PlantedFace(stride=8, row=20, col=30, anchor=0, score=0.9, dist=(5, 6, 7, 8))
SCRFD_FACE_B = PlantedFace(stride=32, row=12, col=5, anchor=1, score=0.8, dist=(2, 2.5, 2, 3))

#: Weights (3, 8) and bias (8,) of the default tiny ArcFace graph.
ARCFACE_W = np.array(
    [
        [1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 0.25, 2.0],
        [-0.5, 1.0, 2.0, -3.0, 0.0, 1.5, -1.0, 0.75],
        [2.0, 0.5, -1.0, 1.0, -2.0, 0.0, 1.25, -0.5],
    ],
    dtype=np.float32,
)
ARCFACE_B = np.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.2, -0.1, 0.05], dtype=np.float32)


def build_arcface(
    path: Path,
    *,
    input_shape: list[int | str] | None = None,
    output_shape: list[int | str] | None = None,
    weight: npt.NDArray[np.float32] = ARCFACE_W,
    bias: npt.NDArray[np.float32] = ARCFACE_B,
    reduce_axes: list[int] | None = None,
    extra_output: bool = False,
) -> Path:
    """Write ``x (N,3,S,S) → mean_{H,W} → @ weight → + bias → y (N,D)`` as an ONNX file."""
    input_shape = input_shape if input_shape is not None else ["N", 3, 112, 112]
    output_shape = output_shape if output_shape is not None else ["N", weight.shape[1]]
    axes = reduce_axes if reduce_axes is not None else [2, 3]
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["p"]),
        helper.make_node("Add", ["p", "b"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["m"], ["m_out"]))
        outputs.append(helper.make_tensor_value_info("m_out", TensorProto.FLOAT, ["N", 3]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)]
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")]
    return _save(path, nodes, "tiny_arcface", inputs, outputs, inits)


def tiny_graph_case(
    name: str, cls: Callable[..., object], write_graph: Callable[[Path], Path], **expected_failures: str
) -> BackendCase:
    """A conformance case building ``cls(model=<graph written by write_graph>)`` in the work folder.

    For the ``_conformance_cases`` hook of ONNX backends; ``expected_failures`` maps check names
    to why a synthetic graph cannot pass them.
    """
    from ._cases import BackendCase

    return BackendCase(name, lambda ctx: cls(model=write_graph(ctx.workdir / f"{name}.onnx")), None, expected_failures)
