"""OnnxArcFaceEmbedder against tiny ONNX graphs built here (nothing downloaded, nothing committed).

The test network is ``mean over H, W`` → ``MatMul W (3, 8)`` → ``+ b (8,)``; the bias makes the
result depend on ``input_std`` even after L2 normalisation, and the distinct rows of ``W`` make it
depend on the channel order. The graph builder lives in :mod:`faceprint.testing.onnx_graphs`,
where the conformance suite uses it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceprint.embedding import Embedder
from faceprint.embedding.onnx_arcface import OnnxArcFaceEmbedder
from faceprint.errors import (
    ConfigurationError,
    ImageDimensionError,
    InvalidEmbeddingError,
    ModelChecksumError,
    ModelFormatError,
    ModelNotFoundError,
)
from faceprint.models import sha256_file
from faceprint.testing.onnx_graphs import ARCFACE_B as B
from faceprint.testing.onnx_graphs import ARCFACE_W as W
from faceprint.testing.onnx_graphs import build_arcface as build_model


def reference(crops: np.ndarray, mean: float = 127.5, std: float = 127.5, bgr: bool = False) -> np.ndarray:
    """The same network in numpy on (N, S, S, 3) uint8 RGB crops, L2-normalised."""
    x = crops.astype(np.float64)
    if bgr:
        x = x[..., ::-1]
    x = (x - mean) / std
    y = x.mean(axis=(1, 2)) @ W.astype(np.float64) + B
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)


def random_crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, size=(n, 112, 112, 3), dtype=np.uint8)
    # distinct per-channel levels so that channel order and normalisation matter
    crops[..., 0] //= 4
    crops[..., 2] = 255 - crops[..., 2] // 3
    return crops


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return build_model(tmp_path / "tiny_r50.onnx")


def test_matches_numpy_reference_and_protocol(model_path: Path) -> None:
    emb = OnnxArcFaceEmbedder(model=model_path)
    assert isinstance(emb, Embedder)
    assert emb.dim == 8 and emb.input_size == 112 and emb.template == "arcface112"
    assert emb.model_id == "tiny_r50"
    assert emb.model_version == sha256_file(model_path)[:12]
    crops = random_crops(5)
    out = emb.embed(list(crops))
    assert out.dtype == np.float32 and out.shape == (5, 8)
    np.testing.assert_allclose(out, reference(crops), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_preprocessing_settings_are_applied(model_path: Path) -> None:
    crops = random_crops(3, seed=1)
    default = OnnxArcFaceEmbedder(model=model_path).embed(list(crops))
    bgr = OnnxArcFaceEmbedder(model=model_path, bgr=True).embed(list(crops))
    ada = OnnxArcFaceEmbedder(model=model_path, input_mean=0.0, input_std=255.0).embed(list(crops))
    np.testing.assert_allclose(bgr, reference(crops, bgr=True), atol=1e-5)
    np.testing.assert_allclose(ada, reference(crops, mean=0.0, std=255.0), atol=1e-5)
    # each setting really changes the result (so the reference comparison can fail)
    assert not np.allclose(default, bgr, atol=1e-3)
    assert not np.allclose(default, ada, atol=1e-3)
    assert not np.allclose(default, reference(crops, bgr=True), atol=1e-3)
    assert not np.allclose(default, reference(crops, std=1.0), atol=1e-3)


def test_batch_equals_one_by_one_and_chunks(model_path: Path) -> None:
    emb = OnnxArcFaceEmbedder(model=model_path)
    crops = random_crops(70, seed=2)  # more than one chunk of 32
    batch = emb.embed(list(crops))
    singles = np.concatenate([emb.embed([c]) for c in crops])
    np.testing.assert_allclose(batch, singles, atol=1e-6)
    np.testing.assert_array_equal(batch, emb.embed(list(crops)))  # deterministic


def test_empty_batch(model_path: Path) -> None:
    out = OnnxArcFaceEmbedder(model=model_path).embed([])
    assert out.shape == (0, 8) and out.dtype == np.float32


def test_fixed_batch_of_one(tmp_path: Path) -> None:
    path = build_model(tmp_path / "fixed.onnx", input_shape=[1, 3, 112, 112], output_shape=[1, 8])
    emb = OnnxArcFaceEmbedder(model=path)
    crops = random_crops(4, seed=3)
    np.testing.assert_allclose(emb.embed(list(crops)), reference(crops), atol=1e-5)


def test_fixed_batch_of_three_pads_last_chunk(tmp_path: Path) -> None:
    path = build_model(tmp_path / "fixed3.onnx", input_shape=[3, 3, 112, 112], output_shape=[3, 8])
    crops = random_crops(4, seed=4)
    np.testing.assert_allclose(OnnxArcFaceEmbedder(model=path).embed(list(crops)), reference(crops), atol=1e-5)


def test_dynamic_spatial_and_embedding_dims(tmp_path: Path) -> None:
    path = build_model(tmp_path / "dyn.onnx", input_shape=["N", 3, "H", "W"], output_shape=["N", "D"])
    emb = OnnxArcFaceEmbedder(model=path, model_id="dyn-model")
    assert emb.input_size == 112 and emb.dim == 8 and emb.model_id == "dyn-model"
    crops = random_crops(2, seed=5)
    np.testing.assert_allclose(emb.embed(list(crops)), reference(crops), atol=1e-5)


def test_other_network_size_resizes_112_crops(tmp_path: Path) -> None:
    path = build_model(tmp_path / "big.onnx", input_shape=["N", 3, 128, 128])
    emb = OnnxArcFaceEmbedder(model=path)
    assert emb.input_size == 128
    flat = np.empty((1, 112, 112, 3), dtype=np.uint8)
    flat[...] = (10, 200, 90)  # a flat colour survives resizing exactly
    np.testing.assert_allclose(emb.embed(list(flat)), reference(flat), atol=1e-5)


@pytest.mark.parametrize(
    "crop",
    [
        np.zeros((112, 112), np.uint8),
        np.zeros((112, 112, 4), np.uint8),
        np.zeros((150, 150, 3), np.uint8),
        np.zeros((112, 112, 3), np.float32),
    ],
)
def test_wrong_crop_shape_or_dtype(model_path: Path, crop: np.ndarray) -> None:
    emb = OnnxArcFaceEmbedder(model=model_path)
    with pytest.raises(ImageDimensionError):
        emb.embed([crop])


def test_nan_output_raises(tmp_path: Path) -> None:
    bias = B.copy()
    bias[3] = np.nan
    path = build_model(tmp_path / "nan.onnx", bias=bias)
    emb = OnnxArcFaceEmbedder(model=path)
    with pytest.raises(InvalidEmbeddingError):
        emb.embed(list(random_crops(2)))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"extra_output": True}, "exactly one output"),
        ({"input_shape": ["N", 3, 112], "reduce_axes": [2]}, "NCHW"),
        ({"input_shape": ["N", 1, 112, 112], "weight": W[:1]}, "NCHW"),
        ({"input_shape": ["N", 3, 112, 96]}, "square"),
        ({"output_shape": ["N", 8, 1]}, "(N, D)"),
    ],
    ids=["two-outputs", "rank3-input", "one-channel", "not-square", "rank3-output"],
)
def test_bad_graphs_raise_model_format_error(tmp_path: Path, kwargs: dict, needle: str) -> None:
    if kwargs.get("output_shape") == ["N", 8, 1]:
        # a graph whose output really is rank 3
        path = tmp_path / "bad.onnx"
        graph = helper.make_graph(
            [
                helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
                helper.make_node("MatMul", ["m", "w"], ["p"]),
                helper.make_node("Unsqueeze", ["p", "ax"], ["y"]),
            ],
            "bad",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 112, 112])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 1])],
            initializer=[numpy_helper.from_array(W, "w"), numpy_helper.from_array(np.array([2], np.int64), "ax")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(path))
    else:
        path = build_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelFormatError, match="found") as info:
        OnnxArcFaceEmbedder(model=path)
    assert needle in str(info.value)


def test_not_onnx_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf\x00\xff" * 20)
    with pytest.raises(ModelFormatError):
        OnnxArcFaceEmbedder(model=path)


def test_missing_file_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(tmp_path / "models"))
    with pytest.raises(ModelNotFoundError) as info:
        OnnxArcFaceEmbedder(model="buffalo_l/w600k_r50.onnx")
    assert str(tmp_path / "models" / "buffalo_l" / "w600k_r50.onnx") in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_sha256(model_path: Path) -> None:
    good = sha256_file(model_path)
    emb = OnnxArcFaceEmbedder(model=model_path, sha256=good.upper())
    assert emb.model_version == good[:12]
    with pytest.raises(ModelChecksumError):
        OnnxArcFaceEmbedder(model=model_path, sha256="0" * 64)
    with pytest.raises(ConfigurationError):
        OnnxArcFaceEmbedder(model=model_path, sha256="abc")


def test_name_resolved_from_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mdir = tmp_path / "models"
    build_model(mdir / "buffalo_l" / "w600k_r50.onnx")
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(mdir))
    monkeypatch.chdir(tmp_path)
    emb = OnnxArcFaceEmbedder(model="buffalo_l/w600k_r50.onnx")
    assert emb.model_id == "w600k_r50"
    assert emb.path == (mdir / "buffalo_l" / "w600k_r50.onnx").resolve()
    # the suffix may be left out
    assert OnnxArcFaceEmbedder(model="buffalo_l/w600k_r50").path == emb.path


def test_model_version_changes_with_the_file(tmp_path: Path) -> None:
    path = build_model(tmp_path / "m.onnx")
    v1 = OnnxArcFaceEmbedder(model=path).model_version
    build_model(path, bias=B + 1.0)
    v2 = OnnxArcFaceEmbedder(model=path).model_version
    assert len(v1) == len(v2) == 12 and v1 != v2


def test_bad_settings(model_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        OnnxArcFaceEmbedder(model=model_path, input_std=0.0)
    with pytest.raises(ConfigurationError):
        OnnxArcFaceEmbedder(model=model_path, threads=0)
    with pytest.raises(ConfigurationError):
        OnnxArcFaceEmbedder(model=model_path, providers=["NoSuchExecutionProvider"])


def test_threads_and_provider_fallback(model_path: Path) -> None:
    emb = OnnxArcFaceEmbedder(
        model=model_path, threads=1, providers=["NoSuchExecutionProvider", "CPUExecutionProvider"]
    )
    crops = random_crops(2, seed=6)
    np.testing.assert_allclose(emb.embed(list(crops)), reference(crops), atol=1e-5)


def test_registered_name() -> None:
    from faceprint.registry import embedders

    try:
        assert embedders.get("onnx-arcface") is OnnxArcFaceEmbedder
    except ModuleNotFoundError as exc:  # another built-in backend module is not written yet
        pytest.skip(f"registry cannot load every built-in backend: {exc}")
