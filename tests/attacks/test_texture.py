"""The texture-lbp detector: LBP features against hand-worked patterns, the model file (no pickle,
checked), and training on real photographs with synthetic attacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.attacks.features import TextureSettings, _uniform_lut, face_crop, uniform_lbp_histogram
from faceprint.attacks.texture import (
    MODEL_VERSION,
    TextureLBPDetector,
    fit_texture,
    largest_face,
    load_texture_model,
    train_texture,
)
from faceprint.errors import (
    ConfigurationError,
    ModelChecksumError,
    ModelFormatError,
    ModelNotFoundError,
    ModelVersionError,
)
from faceprint.registry import attack_detectors
from faceprint.types import BBox, Detection

from ..conftest import data_path

SMALL = TextureSettings(size=32, radii=(1, 2), colour_spaces=("hsv",))


def test_uniform_lbp_of_a_gradient_is_one_pattern() -> None:
    # value = x: the neighbours at dx >= 0 (points 0, 1, 2, 6, 7) are >= the centre -> code 199,
    # a uniform pattern (two 0/1 transitions round the circle)
    ramp = np.tile(np.arange(20, dtype=np.float32), (20, 1))
    h = uniform_lbp_histogram(ramp, radius=1)
    assert h.shape == (59,) and h.sum() == pytest.approx(1.0)
    assert h[_uniform_lut(8)[199]] == pytest.approx(1.0)
    flat = uniform_lbp_histogram(np.full((10, 10), 7.0), radius=2)
    assert flat[_uniform_lut(8)[255]] == pytest.approx(1.0)  # every neighbour equals the centre


def test_uniform_lut_has_58_uniform_bins() -> None:
    lut = _uniform_lut(8)
    assert len(set(lut.tolist())) == 59 and (lut == 58).sum() == 256 - 58


def test_face_crop_pads_faces_at_the_border() -> None:
    img = np.zeros((50, 60, 3), np.uint8)
    img[:, :30] = 200
    crop = face_crop(img, Detection(BBox(-20, -20, 30, 30), 1.0), 32, 1.2)
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    with pytest.raises(ConfigurationError):
        face_crop(img, Detection(BBox(5, 5, 5.5, 5.5), 1.0), 32, 1.0)


def _model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = SMALL.n_features
    m = fit_texture(rng.normal(0, 1, (20, n)), rng.normal(0.5, 1, (20, n)), SMALL)
    return m.save(tmp_path / "model.json")


def test_model_file_round_trip_without_pickle(tmp_path: Path) -> None:
    path = _model(tmp_path)
    text = path.read_text()
    doc = json.loads(text)  # plain JSON: numbers and strings
    assert doc["format"] == "faceprint-pad-texture" and doc["version"] == MODEL_VERSION and len(doc["sha256"]) == 64
    m = load_texture_model(path)
    x = np.random.default_rng(1).normal(0, 1, (5, SMALL.n_features))
    assert m.settings == SMALL
    assert np.all((m.probability(x) >= 0) & (m.probability(x) <= 1))
    det = attack_detectors.create("texture-lbp", model=path)
    assert det.kind == "presentation" and det.threshold == 0.5


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda d: d["model"]["coef"].__setitem__(0, d["model"]["coef"][0] + 1), ModelChecksumError),
        (lambda d: d.__setitem__("version", MODEL_VERSION + 1), ModelVersionError),
        (lambda d: d.__setitem__("format", "something-else"), ModelFormatError),
        (lambda d: d.__setitem__("model", {**d["model"], "coef": [1.0]}), ModelChecksumError),
    ],
)
def test_damaged_or_foreign_model_files_are_refused(tmp_path: Path, edit, error) -> None:
    path = _model(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(error):
        load_texture_model(path)


def test_truncated_wrong_shape_and_missing_model_files(tmp_path: Path) -> None:
    path = _model(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFormatError, match="not JSON"):
        load_texture_model(path)
    # a consistent checksum over arrays of the wrong length is still refused
    from faceprint.attacks.texture import _digest

    doc = json.loads(text)
    doc["model"]["coef"] = [1.0, 2.0]
    doc["sha256"] = _digest(doc["model"])
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="'coef'"):
        load_texture_model(path)
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "nowhere")):
        load_texture_model(tmp_path / "nowhere" / "model.json")
    with pytest.raises(ModelNotFoundError, match="pad train"):
        attack_detectors.create("texture-lbp")


def _lfw(n: int) -> list[Path]:
    root = data_path("lfw_view1")
    return sorted(root.glob("A*/*.jpg"))[:n]


@pytest.mark.slow
def test_trained_on_real_photos_it_separates_held_out_synthetic_prints(tmp_path: Path) -> None:
    from faceprint.attacks.synthetic import make_attack
    from faceprint.io import load_image
    from faceprint.registry import detectors

    imgs = [load_image(p) for p in _lfw(24)]
    attacks = [make_attack(im, "print", seed=i) for i, im in enumerate(imgs)]
    model = train_texture(imgs[:16], attacks[:16], settings=SMALL)
    assert model.training["n_bona_fide"] + model.training["bona_fide_no_face"] == 16
    det = TextureLBPDetector(model=model.save(tmp_path / "m.json"))
    face = detectors.create("dlib-hog-mmod")
    found = [(im, largest_face(face, im), i < 8) for i, im in enumerate(imgs[16:] + attacks[16:])]
    pairs = [(im, d, bona) for im, d, bona in found if d is not None]
    scores = det.score_batch([p[0] for p in pairs], [p[1] for p in pairs])
    one_by_one = [det.score(im, d) for im, d, _ in pairs]
    assert [s.score for s in scores] == pytest.approx([s.score for s in one_by_one])
    is_bona = np.array([p[2] for p in pairs])
    values = np.array([s.score for s in scores])
    bona, atk = values[is_bona], values[~is_bona]
    assert bona.size >= 6 and atk.size >= 6
    assert atk.min() > bona.max()  # held-out prints all score above every held-out bona fide face
    assert all(s.is_attack == (s.score >= det.threshold) for s in scores)
    assert det.score_batch([], []) == []
