"""MiniFASNet: the checkpoint reader (formats, damage, unsafe pickles), the ONNX graph against a
numpy forward pass on tiny random checkpoints, the reference crop, and the real checkpoints on
the reference repository's three samples."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceprint.attacks.minifasnet import MODELS, MiniFASNet, crop_window, minifasnet_crop, minifasnet_onnx
from faceprint.attacks.torch_checkpoint import read_state_dict
from faceprint.errors import (
    ConfigurationError,
    ImageError,
    ModelChecksumError,
    ModelFormatError,
    ModelNotFoundError,
    ModelShapeError,
    UnsafeCheckpointError,
)
from faceprint.onnx_runtime import open_onnx_session
from faceprint.types import BBox, Detection

from ..conftest import shared_model_path
from ._tiny import (
    _global,
    _s,
    minifasnet_reference,
    tiny_minifasnet,
    write_pth_legacy,
    write_pth_zip,
)


def _det(x1: float, y1: float, x2: float, y2: float) -> Detection:
    return Detection(BBox(x1, y1, x2, y2), 0.99)


# --- the checkpoint reader ------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_pth_zip, write_pth_legacy], ids=["zip", "legacy"])
def test_reader_round_trips_both_torch_layouts(tmp_path: Path, writer) -> None:
    rng = np.random.default_rng(0)
    sd = tiny_minifasnet(rng, se=True)
    sd["module.strided"] = np.asfortranarray(rng.normal(size=(3, 4)).astype(np.float32))
    got = read_state_dict(writer(sd, tmp_path / "m.pth"))
    assert list(got) == list(sd)
    for k, v in sd.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)


def test_pickle_referencing_os_system_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = b"\x80\x02" + _global("os", "system") + b"(" + _s(f"touch {marker}") + b"tR."
    path = write_pth_zip({}, tmp_path / "evil.pth", pickle_bytes=evil)
    with pytest.raises(UnsafeCheckpointError, match="os.system"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("torch", "load"), ("numpy", "frombuffer")])
def test_any_other_global_is_refused(tmp_path: Path, module: str, name: str) -> None:
    bad = b"\x80\x02" + _global(module, name) + b"(" + _s("x") + b"tR."
    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        read_state_dict(write_pth_zip({}, tmp_path / "bad.pth", pickle_bytes=bad))


def test_corrupt_and_truncated_checkpoints_give_specific_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sd = tiny_minifasnet(rng, se=False)
    legacy = write_pth_legacy(sd, tmp_path / "l.pth").read_bytes()
    (tmp_path / "trunc.pth").write_bytes(legacy[:-100])
    with pytest.raises(ModelFormatError, match="truncated"):
        read_state_dict(tmp_path / "trunc.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelFormatError, match="not a PyTorch checkpoint"):
        read_state_dict(tmp_path / "junk.pth")
    zipped = write_pth_zip(sd, tmp_path / "z.pth").read_bytes()
    (tmp_path / "zcut.pth").write_bytes(zipped[: len(zipped) // 2])
    with pytest.raises(ModelFormatError):
        read_state_dict(tmp_path / "zcut.pth")
    # a storage shorter than its tensors claim
    with zipfile.ZipFile(tmp_path / "z.pth") as zin, zipfile.ZipFile(tmp_path / "short.pth", "w") as zout:
        for item in zin.namelist():
            blob = zin.read(item)
            zout.writestr(item, blob[: len(blob) // 2] if item == "archive/data/0" else blob)
    with pytest.raises(ModelFormatError, match="bytes, expected"):
        read_state_dict(tmp_path / "short.pth")


# --- the graph against numpy --------------------------------------------------------------------


@pytest.mark.parametrize(
    "se,steep", [(False, False), (True, False), (False, True)], ids=["V2-like", "V1SE-like", "PReLU-slope-above-1"]
)
def test_onnx_graph_matches_numpy_reference_on_random_weights(se: bool, steep: bool) -> None:
    rng = np.random.default_rng(2 + se)
    sd = tiny_minifasnet(rng, se=se)
    if steep:  # max(x, a x) is PReLU only for a <= 1: such a layer must keep ONNX's PRelu
        sd["module.conv_23.conv.prelu.weight"] = np.full_like(sd["module.conv_23.conv.prelu.weight"], 1.7)
        sd["module.conv1.prelu.weight"][0] = -0.4
    sess = open_onnx_session(minifasnet_onnx({"t": sd}), threads=1, providers=None)
    x = rng.uniform(0, 255, (3, 3, 80, 80)).astype(np.float32) / 64
    (got,) = sess.run(["probs_t"], {"crops_t": x})
    want = minifasnet_reference(sd, x)
    assert np.max(np.abs(got - want)) <= 1e-4
    assert want.std() > 1e-3  # the random net does not collapse to a constant


def test_wrong_tensor_shape_gives_model_shape_error() -> None:
    sd = tiny_minifasnet(np.random.default_rng(4), se=False)
    sd["module.conv_23.project.bn.weight"] = np.ones(3, np.float32)
    with pytest.raises(ModelShapeError, match="conv_23.project.bn.weight"):
        minifasnet_onnx({"t": sd})
    sd = tiny_minifasnet(np.random.default_rng(4), se=False)
    del sd["module.prob.weight"]
    with pytest.raises(ModelShapeError, match="prob.weight"):
        minifasnet_onnx({"t": sd})


def _tiny_model_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    (tmp_path / "minifasnet").mkdir()
    write_pth_legacy(tiny_minifasnet(rng, se=False), tmp_path / "minifasnet" / MODELS["v2"].filename)
    write_pth_zip(tiny_minifasnet(rng, se=True), tmp_path / "minifasnet" / MODELS["v1se"].filename)
    return tmp_path


def test_detector_on_tiny_checkpoints_is_the_mean_of_both_models(tmp_path: Path) -> None:
    d = _tiny_model_dir(tmp_path)
    det = MiniFASNet(model_dir=d, verify=False, threads=1)
    img = np.random.default_rng(6).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    face = _det(30, 30, 70, 80)
    s = det.score(img, face)
    sds = {t: read_state_dict(d / "minifasnet" / MODELS[t].filename) for t in ("v2", "v1se")}
    live = [
        minifasnet_reference(sds[t], minifasnet_crop(img, face, MODELS[t].scale)[None])[0, 1] for t in ("v2", "v1se")
    ]
    assert s.score == pytest.approx(1 - np.mean(live), abs=1e-4)
    assert s.details["v2"] == pytest.approx(1 - live[0], abs=1e-4)
    # the sha256 check is on by default: these are not the published files
    with pytest.raises(ModelChecksumError):
        MiniFASNet(model_dir=d)


def test_missing_model_file_names_the_model_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=str(tmp_path)):
        MiniFASNet(model_dir=tmp_path)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        MiniFASNet(models=("v3",), model_dir=tmp_path)
    with pytest.raises(ConfigurationError):
        MiniFASNet(threshold=1.5, model_dir=tmp_path)


# --- the reference crop ------------------------------------------------------------------------


def test_crop_window_is_the_reference_one_inside_the_image() -> None:
    # centred: 2.7 x a 40-px box about its centre (100, 100)
    assert crop_window(400, 400, (80, 80, 40, 40), 2.7) == (46, 46, 154, 154)
    # at the left/top border: shifted right/down, same size
    left, t, r, b = crop_window(400, 400, (0, 0, 40, 40), 4.0)
    assert (left, t) == (0, 0) and r - left == 160 and b - t == 160
    # at the right/bottom border and partly outside: shifted back inside
    left, t, r, b = crop_window(200, 150, (170, 120, 60, 60), 2.7)
    assert r == 199 and b == 149 and left >= 0 and t >= 0
    # an image too small for the scale: the scale drops to (side - 1) / box
    left, t, r, b = crop_window(100, 100, (30, 30, 40, 40), 4.0)
    assert (left, t, r, b) == (0, 0, 99, 99)


@pytest.mark.parametrize("box", [(-30, -30, 20, 25), (90, 100, 140, 160), (-500, 50, -400, 90), (0, 0, 1, 1)])
def test_border_faces_are_cropped_not_crashed_on(box) -> None:
    img = np.random.default_rng(7).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    crop = minifasnet_crop(img, _det(*box), 4.0)
    assert crop.shape == (3, 80, 80) and crop.dtype == np.float32
    assert 0 <= crop.min() and crop.max() <= 255


def test_crop_is_bgr_and_unnormalised() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[..., 0] = 200  # red
    crop = minifasnet_crop(img, _det(40, 40, 60, 60), 2.7)
    assert np.all(crop[2] == 200) and np.all(crop[0] == 0)


def test_bad_input_gives_image_errors(tmp_path: Path) -> None:
    det = MiniFASNet(model_dir=_tiny_model_dir(tmp_path), verify=False, threads=1)
    with pytest.raises(ImageError):
        det.score(np.zeros((10, 10), np.uint8), _det(1, 1, 5, 5))
    with pytest.raises(ImageError):
        det.score(np.zeros((10, 10, 3), np.float32), _det(1, 1, 5, 5))
    with pytest.raises(ConfigurationError):
        det.score_batch([np.zeros((10, 10, 3), np.uint8)], [])


# --- the real checkpoints ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_dir() -> Path:
    return shared_model_path("minifasnet", MODELS["v2"].filename).parents[1]


def test_real_checkpoints_classify_the_reference_samples(real_dir: Path, pipeline) -> None:
    det = MiniFASNet(model_dir=real_dir, threads=1)
    scores = {}
    for name in ("image_F1", "image_F2", "image_T1"):
        path = shared_model_path("minifasnet", "samples", f"{name}.jpg")
        img = pipeline.load(path)
        faces = pipeline.detect(img)
        assert faces, name
        scores[name] = det.score(img, faces[0])
    assert scores["image_F1"].is_attack and scores["image_F2"].is_attack
    assert not scores["image_T1"].is_attack
    assert scores["image_T1"].score < 0.05 and min(scores["image_F1"].score, scores["image_F2"].score) > 0.7


def test_real_checkpoint_copied_with_a_flipped_byte_is_refused(real_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "minifasnet").mkdir()
    for t in MODELS.values():
        shutil.copy(real_dir / "minifasnet" / t.filename, tmp_path / "minifasnet" / t.filename)
    p = tmp_path / "minifasnet" / MODELS["v2"].filename
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError):
        MiniFASNet(model_dir=tmp_path)
