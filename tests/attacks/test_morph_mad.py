"""Morphing-attack detectors: model files (JSON, no pickle), features, and the built-in models on real morphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceprint.attacks import AttackDetector, DifferentialAttackDetector
from faceprint.attacks.mad import (
    DMad,
    DMadScore,
    LinearModel,
    SMad,
    dmad_features,
    embedding_difference_features,
    smad_chip,
    smad_features,
)
from faceprint.attacks.morph import Morpher
from faceprint.errors import ConfigurationError, ImageDimensionError, ModelFormatError, ModelNotFoundError
from faceprint.io import load_image
from faceprint.registry import attack_detectors
from tests.conftest import data_path

A = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
A_PROBE = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg")
B = ("lfw_view1", "Adam_Scott", "Adam_Scott_0001.jpg")


def _model(kind: str, n: int) -> LinearModel:
    rng = np.random.default_rng(0)
    return LinearModel(kind, "1", rng.normal(size=n), rng.uniform(0.5, 2, size=n), rng.normal(size=n), 0.3, 0.4)


def test_model_json_round_trip_predicts_the_same(tmp_path) -> None:
    m = _model("dmad", 5)
    m.save(tmp_path / "m.json")
    back = LinearModel.load(tmp_path / "m.json", "dmad")
    x = np.random.default_rng(1).normal(size=(4, 5))
    assert np.allclose(back.predict(x), m.predict(x))
    z = ((x - m.mean) / m.scale) @ m.coef + m.intercept
    assert np.allclose(m.predict(x), 1 / (1 + np.exp(-z)))
    assert json.loads((tmp_path / "m.json").read_text())["format"] == "faceprint-mad-model"


def test_model_file_errors(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="nope.json"):
        LinearModel.load(tmp_path / "nope.json", "dmad")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        LinearModel.load(tmp_path / "bad.json", "dmad")
    _model("smad", 3).save(tmp_path / "s.json")
    with pytest.raises(ModelFormatError, match="smad model, not dmad"):
        LinearModel.load(tmp_path / "s.json", "dmad")
    d = _model("dmad", 3).to_dict()
    d["scale"] = [1.0, 0.0, 1.0]
    (tmp_path / "z.json").write_text(json.dumps(d))
    with pytest.raises(ModelFormatError):
        LinearModel.load(tmp_path / "z.json", "dmad")
    with pytest.raises(ConfigurationError, match="expects 3 features"):
        _model("dmad", 3).predict(np.zeros((1, 4)))


def test_dmad_features() -> None:
    s = np.array([[1.0, 0.0]])
    t = np.array([[0.6, 0.8]])
    assert np.allclose(embedding_difference_features(s, t), [[0.4, -0.8, 0.16, 0.64, 0.6]])
    assert np.allclose(dmad_features(s, t, [[7.0, 8.0]]), [[0.16, 0.64, 0.6, 7.0, 8.0]])
    with pytest.raises(ConfigurationError):
        dmad_features(s, t, np.zeros((2, 2)))


def test_smad_features_are_deterministic_and_see_blur() -> None:
    import cv2

    img = load_image(data_path(*A))
    from faceprint.registry import detectors

    det = detectors.create("dlib-hog").detect(img)[0]
    chip = smad_chip(img, det)
    f1, f2 = smad_features(chip), smad_features(chip.copy())
    assert f1.shape == f2.shape and np.array_equal(f1, f2) and np.isfinite(f1).all()
    blurred = smad_features(cv2.GaussianBlur(chip, (0, 0), 1.5))
    assert not np.allclose(blurred, f1)


@pytest.fixture(scope="module")
def morph_and_bona_fide():
    m = Morpher("flow", select="central")
    return m.morph(data_path(*A), data_path(*B)).image, m.aligned(data_path(*A))


def _face(pipeline, img):
    return pipeline.analyze(img, select="central")[0].detection


def test_registered_backends_follow_the_protocol() -> None:
    for name in ("smad", "dmad", "dmad-score"):
        det = attack_detectors.create(name)
        assert isinstance(det, AttackDetector) and det.kind == "morph"
    assert isinstance(attack_detectors.create("dmad"), DifferentialAttackDetector)


@pytest.mark.slow
def test_dmad_scores_a_morph_above_the_bona_fide_photo(pipeline, morph_and_bona_fide) -> None:
    morph, bona = morph_and_bona_fide
    trusted = load_image(data_path(*A_PROBE))
    td = _face(pipeline, trusted)
    for det in (DMad(), DMadScore()):
        s_morph = det.score_pair(morph, _face(pipeline, morph), trusted, td)
        s_bona = det.score_pair(bona, _face(pipeline, bona), trusted, td)
        assert 0.0 <= s_bona.score < s_morph.score <= 1.0, det.name
        assert s_morph.kind == "morph" and s_morph.is_attack == (s_morph.score >= det.threshold)


@pytest.mark.slow
def test_smad_and_the_single_image_fallback(pipeline, morph_and_bona_fide) -> None:
    morph, bona = morph_and_bona_fide
    smad, dmad = SMad(), DMad()
    d = _face(pipeline, morph)
    s = smad.score(morph, d)
    assert 0.0 <= s.score <= 1.0 and s.detector.startswith("smad@")
    assert dmad.score(morph, d).to_dict() == s.to_dict()  # no trusted photo: D-MAD answers with S-MAD
    assert smad.score_batch([morph, bona], [d, _face(pipeline, bona)])[0].to_dict() == s.to_dict()
    with pytest.raises(ImageDimensionError):
        smad.score(morph[..., 0], d)


def test_dmad_refuses_another_embedder(tmp_path) -> None:
    m = LinearModel("dmad", "1", np.zeros(3), np.ones(3), np.zeros(3), 0.0, meta={"embedder": "some-other-model"})
    m.save(tmp_path / "d.json")
    with pytest.raises(ConfigurationError, match="some-other-model"):
        DMad(tmp_path / "d.json")
