"""MesoNet: the ONNX graphs against a numpy Keras forward pass on random weights, the face crop,
bad files, and the real weights on the reference repository's 2 + 2 samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.attacks.mesonet import INPUT_SIZE, MesoNet, mesonet_crop, mesonet_onnx, read_keras_weights
from faceprint.errors import ModelFormatError, ModelNotFoundError, ModelShapeError
from faceprint.onnx_runtime import open_onnx_session
from faceprint.types import BBox, Detection, Landmarks

from ..conftest import shared_model_path
from ._tiny import meso_reference, random_meso, write_keras_h5


@pytest.mark.parametrize("inception", [False, True], ids=["Meso4", "MesoInception4"])
def test_onnx_graph_matches_keras_forward_on_random_weights(tmp_path: Path, inception: bool) -> None:
    rng = np.random.default_rng(10 + inception)
    layers = random_meso(rng, inception)
    path = write_keras_h5(layers, tmp_path / "m.h5")
    sess = open_onnx_session(mesonet_onnx(read_keras_weights(path)), threads=1, providers=None)
    x = rng.uniform(0, 1, (2, INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)
    (got,) = sess.run(["real"], {"faces": x.transpose(0, 3, 1, 2).copy()})
    want = meso_reference(layers, x)
    assert np.max(np.abs(got - want)) <= 1e-4
    assert 1e-3 < want.min() and want.max() < 1 - 1e-3  # the sigmoid is not saturated: the check can fail


def test_wrong_shapes_and_layer_counts_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    layers = random_meso(rng, False)
    name, ws = layers[1]
    layers[1] = (name, [ws[0][:, :, :, :4], ws[1][:4]])
    with pytest.raises(ModelShapeError, match="conv kernel"):
        mesonet_onnx(read_keras_weights(write_keras_h5(layers, tmp_path / "a.h5")))
    layers = random_meso(rng, False)[1:]
    with pytest.raises(ModelShapeError, match="conv layers"):
        mesonet_onnx(read_keras_weights(write_keras_h5(layers, tmp_path / "b.h5")))


def test_damaged_or_missing_file(tmp_path: Path) -> None:
    (tmp_path / "mesonet").mkdir()
    (tmp_path / "mesonet" / "Meso4_DF.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    with pytest.raises(ModelFormatError):
        MesoNet(model_dir=tmp_path, verify=False)
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "elsewhere")):
        MesoNet(model_dir=tmp_path / "elsewhere")


def _face(scheme: str = "arcface5", dx: float = 0.0) -> Detection:
    pts = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32) + [dx, 0]
    return Detection(BBox(25 + dx, 25, 95 + dx, 110), 0.9, Landmarks(pts, scheme))  # type: ignore[arg-type]


def test_crop_is_centred_upright_and_padded_by_reflection() -> None:
    img = np.zeros((140, 120, 3), np.uint8)
    img[:, :60] = 255  # left half white
    crop = mesonet_crop(img, _face())
    assert crop.shape == (INPUT_SIZE, INPUT_SIZE, 3) and crop.dtype == np.uint8
    # the face's centre (x = 60) maps to the middle column: white left, black right
    assert crop[:, : INPUT_SIZE // 2 - 4].mean() > 250 and crop[:, INPUT_SIZE // 2 + 4 :].mean() < 5
    # a face at the border: reflected, not refused
    crop = mesonet_crop(img, _face(dx=-60))
    assert crop.shape == (INPUT_SIZE, INPUT_SIZE, 3)


@pytest.fixture(scope="module")
def real_dir() -> Path:
    return shared_model_path("mesonet", "Meso4_DF.h5").parents[1]


@pytest.mark.parametrize("variant", ["Meso4_DF", "MesoInception_DF"])
def test_real_weights_on_the_reference_samples(real_dir: Path, variant: str, pipeline) -> None:
    det = MesoNet(model_dir=real_dir, variant=variant, threads=1)
    samples = sorted(shared_model_path("mesonet", "samples").glob("*.jpg"))
    assert len(samples) == 4
    for path in samples:
        img = pipeline.load(path)
        crop_score = det.score_crop(img)  # the samples are face crops already
        face_score = det.score(img, pipeline.detect(img)[0])  # re-cropped around the detected face
        fake = path.name.startswith("df_")
        assert crop_score.is_attack == fake and face_score.is_attack == fake, (path.name, crop_score, face_score)
        assert crop_score.kind == "deepfake"
    if variant == "Meso4_DF":  # the figures the shared models' README gives: ~0.05 fake, ~0.99 real
        real = {p.name: 1 - det.score_crop(pipeline.load(p)).score for p in samples}
        assert all(v < 0.1 for k, v in real.items() if k.startswith("df_"))
        assert all(v > 0.95 for k, v in real.items() if k.startswith("real_"))
