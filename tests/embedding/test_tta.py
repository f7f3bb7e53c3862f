"""Test-time augmentation on real face chips with dlib's real network."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint import FacePipeline
from faceprint.alignment import align
from faceprint.embedding.tta import TtaEmbedder, _jitter_transforms, augment, parse_tta, with_tta
from faceprint.errors import ConfigurationError, EmbeddingMismatchError
from faceprint.io import load_image
from faceprint.models import get_spec, manifest
from faceprint.registry import embedders
from faceprint.scoring import cosine

from ..conftest import data_path


@pytest.fixture(scope="module")
def net():
    return embedders.create("dlib-resnet-onnx", threads=1)


@pytest.fixture(scope="module")
def chips(hog) -> np.ndarray:
    out = []
    for who in (("AJ_Cook", "AJ_Cook_0001.jpg"), ("Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")):
        img = load_image(data_path("lfw_view1", *who))
        out.append(align(img, hog.detect(img)[0], "dlib150").image)
    return np.stack(out)


def test_settings_parse_and_bad_ones_are_clear_errors() -> None:
    assert parse_tta(None).name == parse_tta("none").name == parse_tta(" NONE ").name == "none"
    assert parse_tta("flip").flip and parse_tta("flip").views == 2
    assert parse_tta("jitter8").jitters == 8 and parse_tta("jitter8").views == 8
    for bad in ("jitter0", "jitter65", "jitter", "mirror", "flip2", "jitter-3"):
        with pytest.raises(ConfigurationError, match="none.*flip.*jitter"):
            parse_tta(bad)


def test_flip_makes_the_embedding_mirror_invariant(net, chips: np.ndarray) -> None:
    flip = TtaEmbedder(net, "flip")
    a = flip.embed(list(chips))
    b = flip.embed(list(chips[:, :, ::-1]))
    np.testing.assert_allclose(a, b, atol=1e-5)  # a chip and its mirror give one embedding
    plain = net.embed(list(chips))
    plain_mirror = net.embed(list(chips[:, :, ::-1]))
    assert np.all(np.sum(plain * plain_mirror, axis=1) < 0.9999)  # … which the network alone does not
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = np.sum(a * plain, axis=1)
    assert np.all((cos > 0.95) & (cos < 0.99999))  # close to the plain embedding, not equal


def test_jitter_is_deterministic_batch_invariant_and_in_dlibs_ranges(net, chips: np.ndarray) -> None:
    jit = TtaEmbedder(net, "jitter4")
    together = jit.embed(list(chips))
    np.testing.assert_allclose(together, np.concatenate([jit.embed([c]) for c in chips]), atol=1e-5)
    np.testing.assert_array_equal(together, TtaEmbedder(net, "jitter4").embed(list(chips)))
    views = augment(chips, parse_tta("jitter4"))
    assert views.shape == (4, *chips.shape)
    assert all(not np.array_equal(v, chips) for v in views)
    for m in _jitter_transforms(16, 150):
        lin = m[:, :2]
        scale = np.sqrt(abs(np.linalg.det(lin)))
        assert 144 / 150 <= scale <= 144 / 150 / 0.97 + 1e-9  # the region is 0.97–1.0 of the shrunk chip
        angle = np.degrees(np.arctan2(abs(lin[1, 0]), abs(lin[0, 0])))
        assert angle <= 3.0 + 1e-9
    assert sum(np.linalg.det(m[:, :2]) < 0 for m in _jitter_transforms(64, 150)) in range(20, 45)  # ~½ mirrored


def test_augmented_embeddings_have_their_own_model_id(net, chips: np.ndarray) -> None:
    assert with_tta(net, "none") is net
    flip = with_tta(net, "flip")
    assert flip.model_id == "dlib-resnet-v1+flip" and flip.model_version == net.model_version
    assert (flip.dim, flip.template) == (net.dim, net.template)
    spec = get_spec("dlib-resnet-v1+jitter7")  # any valid setting names a model, uncalibrated
    assert spec.operating_points == {} and spec.files == get_spec("dlib-resnet-v1").files
    with pytest.raises(LookupError):
        get_spec("dlib-resnet-v1+none")
    with pytest.raises(ConfigurationError):
        get_spec("dlib-resnet-v1+mirror")
    with pytest.raises(ConfigurationError):
        TtaEmbedder(net, "none")


@pytest.mark.slow
def test_pipeline_setting_round_trips_and_decides_at_its_own_operating_point() -> None:
    pipe = FacePipeline(tta="flip")
    settings = pipe.settings()
    assert settings["tta"] == "flip"
    again = FacePipeline(**settings)  # how worker processes rebuild it
    a = data_path("faces_small", "obama", "obama.jpg")
    b = data_path("faces_small", "obama", "obama2.jpg")
    fa, fa2 = pipe.embed_one(a), again.embed_one(a)
    assert fa.embedding is not None and fa2.embedding is not None
    np.testing.assert_allclose(fa.embedding.vector, fa2.embedding.vector, atol=1e-6)
    assert fa.embedding.model == f"dlib-resnet-v1+flip@{fa.embedding.model_version}"
    res = pipe.verify(a, b)
    assert res.decision.match
    flip_point = manifest()["dlib-resnet-v1+flip"].operating_points["fmr=0.001"]
    plain_point = manifest()["dlib-resnet-v1"].operating_points["fmr=0.001"]
    assert res.decision.threshold == flip_point.threshold != plain_point.threshold
    plain = FacePipeline().embed_one(a)
    assert plain.embedding is not None
    with pytest.raises(EmbeddingMismatchError):
        cosine(fa.embedding, plain.embedding)
    with pytest.raises(ConfigurationError):
        FacePipeline(tta="sideways")
