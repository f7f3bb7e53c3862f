"""dlib's face-recognition ResNet converted to ONNX gives dlib's descriptors, on real faces.

Reference: ``dlib.face_recognition_model_v1.compute_face_descriptor(chip)`` on chips cut by
``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` after dlib's HOG detector and 5-point
shape predictor, from ``faces_small`` and a spread of ``lfw_view1`` photographs
(``$FACEPRINT_TEST_DATA``, default ``../shared/data``).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import dlib
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from faceprint.embedding.dlib_export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    DlibReader,
    dlib_resnet_to_onnx,
    read_dlib_network,
)
from faceprint.errors import ModelError, ModelFormatError, ModelNotFoundError
from faceprint.models import model_path

DATA = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
N_LFW = 20  # LFW images sampled across the alphabet, on top of the faces_small photos


@pytest.fixture(scope="module")
def net_path() -> Path:
    try:
        return model_path("dlib-resnet-v1")
    except ModelError as e:
        pytest.skip(f"dlib's ResNet model is not available: {e}")


@pytest.fixture(scope="module")
def model(net_path: Path) -> onnx.ModelProto:
    return dlib_resnet_to_onnx(net_path)


@pytest.fixture(scope="module")
def session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def chips(net_path: Path) -> np.ndarray:
    """Aligned 150x150 face chips of real photographs, cut the way dlib's own pipeline cuts them."""
    from PIL import Image

    if not DATA.is_dir():
        pytest.skip(f"test data {DATA} not found (set FACEPRINT_TEST_DATA)")
    files = sorted(DATA.glob("faces_small/*/*.jpg"))
    lfw = sorted(DATA.glob("lfw_view1/*/*.jpg"))
    files += lfw[:: max(1, len(lfw) // N_LFW)][:N_LFW]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(net_path.parent / "shape_predictor_5_face_landmarks.dat"))
    out = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        dets = detector(img, 1 if max(img.shape) < 1000 else 0)
        if len(dets):
            out.append(np.asarray(dlib.get_face_chip(img, predictor(img, dets[0]), size=150, padding=0.25)))
    if len(out) < 20:
        pytest.skip(f"only {len(out)} faces found under {DATA}; the equality test wants at least 20")
    return np.stack(out)


@pytest.fixture(scope="module")
def reference(net_path: Path, chips: np.ndarray) -> np.ndarray:
    rec = dlib.face_recognition_model_v1(str(net_path))
    return np.array([np.array(rec.compute_face_descriptor(c)) for c in chips], dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# --- equality with dlib -------------------------------------------------------------------------


@pytest.mark.slow
def test_every_face_matches_dlib(session: ort.InferenceSession, chips: np.ndarray, reference: np.ndarray) -> None:
    out = session.run(None, {INPUT_NAME: chips})[0]
    assert out.shape == (len(chips), 128) and out.dtype == np.float32
    cos = cosine(out.astype(np.float64), reference)
    assert cos.min() >= 0.9999, f"worst cosine {cos.min():.6f} at face {cos.argmin()}"
    # dlib's descriptors are unnormalised (norm ~1.4); the difference is float rounding only
    assert np.abs(out - reference).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-5)


@pytest.mark.slow
def test_batch_equals_one_by_one(session: ort.InferenceSession, chips: np.ndarray) -> None:
    batch = session.run(None, {INPUT_NAME: chips})[0]
    single = np.concatenate([session.run(None, {INPUT_NAME: c[None]})[0] for c in chips])
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_distinct_faces_stay_distinct(session: ort.InferenceSession, chips: np.ndarray) -> None:
    """Guards against a graph that ignores its input (a constant output would match nothing)."""
    out = session.run(None, {INPUT_NAME: chips})[0]
    cos = cosine(out[:-1], out[1:])
    assert cos.min() < 0.95


# --- the graph ------------------------------------------------------------------------------------


def test_graph_signature(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == INPUT_NAME and out.name == OUTPUT_NAME
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert isinstance(in_dims[0], str) and in_dims[1:] == [150, 150, 3]
    assert isinstance(out_dims[0], str) and out_dims[1:] == [128]


def test_parsed_network(net_path: Path) -> None:
    net = read_dlib_network(net_path)
    assert net.loss == "loss_metric_2"
    assert (net.input.rows, net.input.cols) == (150, 150)
    np.testing.assert_allclose(net.input.mean_rgb, (122.782, 117.001, 104.298), rtol=1e-6)
    names = [type(layer).__name__ for layer in net.layers]
    assert names.count("Conv") == 29 and names.count("AddPrev") == 14 and names[-1] == "FullyConnected"


# --- dlib's primitives -------------------------------------------------------------------------------


def test_reader_primitives() -> None:
    data = bytes([0x01, 0x02, 0x82, 0x2C, 0x01]) + b"\x01\x05hello" + b"10"
    data += bytes([0x03, 0x9A, 0x99, 0x99, 0x81, 0x18])  # dlib's float 0.6: 0x99999a * 2**-24
    r = DlibReader(data)
    assert r.read_int() == 2
    assert r.read_int() == -300
    assert r.read_string() == "hello"
    assert r.read_bool() is True and r.read_bool() is False
    assert np.float32(r.read_float()) == np.float32(0.6)
    assert r.remaining == 0
    with pytest.raises(ModelFormatError, match="end of file"):
        r.read_int()


def test_reader_tensor() -> None:
    values = np.arange(6, dtype="<f4")
    data = bytes([0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x01]) + values.tobytes()
    t = DlibReader(data).read_tensor()
    assert t.shape == (1, 2, 3, 1)
    np.testing.assert_array_equal(t.reshape(-1), values)
    with pytest.raises(ModelFormatError, match="end of file"):
        DlibReader(data[:-1]).read_tensor()


# --- bad files ------------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.dat"
    p.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty"):
        dlib_resnet_to_onnx(p)


@pytest.mark.parametrize("fraction", [0.0001, 0.001, 0.01, 0.3, 0.5, 0.9, 0.999999])
def test_truncated_file(net_path: Path, tmp_path: Path, fraction: float) -> None:
    data = net_path.read_bytes()
    p = tmp_path / "truncated.dat"
    p.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFormatError, match="truncated or corrupt"):
        dlib_resnet_to_onnx(p)


def test_file_missing_its_last_byte(net_path: Path, tmp_path: Path) -> None:
    p = tmp_path / "short.dat"
    p.write_bytes(net_path.read_bytes()[:-1])
    with pytest.raises(ModelFormatError):
        dlib_resnet_to_onnx(p)


def test_trailing_garbage(net_path: Path, tmp_path: Path) -> None:
    p = tmp_path / "long.dat"
    p.write_bytes(net_path.read_bytes() + b"\x00garbage")
    with pytest.raises(ModelFormatError, match="unexpected bytes after the network"):
        dlib_resnet_to_onnx(p)


@pytest.mark.parametrize("size", [1, 7, 100, 4096, 1 << 20])
def test_random_bytes(tmp_path: Path, size: int) -> None:
    p = tmp_path / "random.dat"
    p.write_bytes(random.Random(size).randbytes(size))
    with pytest.raises(ModelFormatError):
        dlib_resnet_to_onnx(p)


def test_header_corruption_raises_only_model_format_errors(net_path: Path, tmp_path: Path) -> None:
    """Random bytes written over the layer structure: a ModelFormatError or a parse, nothing else."""
    data = net_path.read_bytes()
    rng = random.Random(1234)
    p = tmp_path / "corrupt.dat"
    refused = parsed = 0
    for _ in range(40):
        buf = bytearray(data)
        for _ in range(3):
            buf[rng.randrange(0x200)] = rng.randrange(256)
        p.write_bytes(bytes(buf))
        try:
            read_dlib_network(p)  # any exception but ModelFormatError fails the test
            parsed += 1
        except ModelFormatError as exc:
            assert str(exc), "a ModelFormatError must say what is wrong"
            refused += 1
    assert refused + parsed == 40 and refused > 0  # the corruption reached the structure in some cases


def test_other_dlib_models_are_refused(net_path: Path) -> None:
    for name in ("shape_predictor_5_face_landmarks.dat", "mmod_human_face_detector.dat"):
        other = net_path.parent / name
        if other.is_file():
            with pytest.raises(ModelFormatError):
                dlib_resnet_to_onnx(other)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        dlib_resnet_to_onnx(tmp_path / "nope.dat")
