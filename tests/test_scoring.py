"""Scores, thresholds and decisions: golden values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, EmbeddingMismatchError, InvalidEmbeddingError
from faceprint.models import OperatingPoint
from faceprint.scoring import (
    calibrate,
    cosine,
    decide,
    eer,
    fmr_fnmr,
    operating_point,
    similarity_matrix,
    threshold_at_fmr,
)
from faceprint.types import Embedding


def emb(v: list[float], model: str = "m", version: str = "1") -> Embedding:
    return Embedding(np.array(v, dtype=np.float32), model, version)


def test_cosine_of_known_vectors() -> None:
    assert cosine(emb([1, 0]), emb([0, 1])) == pytest.approx(0.0)
    assert cosine(emb([1, 1]), emb([2, 2])) == pytest.approx(1.0)
    assert cosine(emb([1, 0]), emb([-1, 0])) == pytest.approx(-1.0)
    assert cosine(emb([3, 4]), emb([4, 3])) == pytest.approx(24 / 25)


def test_embeddings_of_different_models_or_sizes_do_not_compare() -> None:
    with pytest.raises(EmbeddingMismatchError, match="m@1 and other@1"):
        cosine(emb([1, 0]), emb([1, 0], model="other"))
    with pytest.raises(EmbeddingMismatchError, match="m@1 and m@2"):
        cosine(emb([1, 0]), emb([1, 0], version="2"))
    with pytest.raises(EmbeddingMismatchError, match="dimensions"):
        cosine(emb([1, 0]), emb([1, 0, 0]))


@pytest.mark.parametrize("bad", [[np.nan, 1.0], [0.0, 0.0], [], [[1.0, 2.0]]])
def test_invalid_embeddings_are_refused(bad: list) -> None:
    with pytest.raises(InvalidEmbeddingError):
        Embedding(np.array(bad, dtype=np.float32), "m", "1")


def test_similarity_matrix_matches_pairwise_cosine_and_checks_input() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    s = similarity_matrix(a, b)
    ref = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    np.testing.assert_allclose(s, ref, atol=1e-6)
    with pytest.raises(EmbeddingMismatchError):
        similarity_matrix(a, rng.normal(size=(3, 7)))
    with pytest.raises(InvalidEmbeddingError):
        similarity_matrix(a, np.full((2, 8), np.nan))
    with pytest.raises(InvalidEmbeddingError):
        similarity_matrix(a[0], b)


def test_fmr_fnmr_golden() -> None:
    gen = [0.9, 0.8, 0.7, 0.4]
    imp = [0.1, 0.2, 0.5, 0.75]
    assert fmr_fnmr(gen, imp, 0.6) == (0.25, 0.25)
    assert fmr_fnmr(gen, imp, 0.75) == (0.25, 0.5)  # score == threshold matches
    assert fmr_fnmr(gen, imp, 0.0) == (1.0, 0.0)


def test_threshold_at_fmr_allows_at_most_the_target_share() -> None:
    imp = np.arange(1000) / 1000.0  # 0.000 … 0.999
    t = threshold_at_fmr(imp, 0.01)
    assert np.mean(imp >= t) == pytest.approx(0.01)
    assert 0.989 < t <= 0.990 + 1e-12
    t0 = threshold_at_fmr(imp, 0.0)
    assert np.mean(imp >= t0) == 0.0 and t0 > 0.999


def test_threshold_at_fmr_warns_when_too_few_impostors(caplog: pytest.LogCaptureFixture) -> None:
    threshold_at_fmr(np.linspace(0, 1, 100), 1e-3)
    assert "3000 are needed" in caplog.text


def test_eer_golden_and_analytic() -> None:
    # separable: EER 0
    rate, _ = eer([0.8, 0.9], [0.1, 0.2])
    assert rate == 0.0
    # two unit normals 2 apart: EER = Phi(-1) = 0.158655…
    rng = np.random.default_rng(0)
    g = rng.normal(1, 1, 200_000)
    i = rng.normal(-1, 1, 200_000)
    rate, thr = eer(g, i)
    assert rate == pytest.approx(0.158655, abs=0.002)
    assert thr == pytest.approx(0.0, abs=0.01)


def test_calibrate_names_points_and_bad_scores_are_refused() -> None:
    rng = np.random.default_rng(2)
    cal = calibrate(rng.normal(2, 1, 5000), rng.normal(0, 1, 5000), target_fmrs=(1e-2,), source="test")
    assert set(cal.points) == {"eer", "fmr=0.01"}
    assert cal.points["fmr=0.01"].fmr <= 0.01
    assert cal.points["eer"].fmr == pytest.approx(cal.points["eer"].fnmr, abs=0.01)
    with pytest.raises(ConfigurationError, match="NaN"):
        calibrate([np.nan], [0.1])
    with pytest.raises(ConfigurationError, match="no genuine"):
        calibrate([], [0.1])
    with pytest.raises(ConfigurationError):
        threshold_at_fmr([0.1], 1.5)


def test_decide_and_stored_operating_points() -> None:
    p = OperatingPoint("t", 0.5, 0.001, 0.1, "x")
    d = decide(emb([1, 0]), emb([1, 1]), p)
    assert d.match and d.score == pytest.approx(0.70710678, abs=1e-6) and d.threshold == 0.5
    assert not decide(emb([1, 0]), emb([0, 1]), p).match
    with pytest.raises(ConfigurationError, match="no operating point"):
        operating_point("dlib-resnet-v1", "fmr=0.5")
