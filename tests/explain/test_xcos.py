"""xcos: patch cosines at a late layer of the dlib ResNet, and how well they reconstruct the score.

Measured (benchmarks/bench_explain.py, RESULTS.md): at ``block13`` the weighted patch cosines
reconstruct the final cosine with a mean absolute error of about 0.02 and at most about 0.08 on
LFW View 1 pairs (scores 0.6–1.0). The tolerances below leave headroom over those figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.embedding.onnx_arcface import OnnxArcFaceEmbedder
from faceprint.errors import ConfigurationError, LayerNotFoundError
from faceprint.explain.features import OnnxFeatureModel, feature_source
from faceprint.explain.xcos import XCosExplainer
from faceprint.testing.onnx_graphs import build_arcface

from .conftest import devtest_pairs

#: Mean and largest |reconstructed - score| allowed over 100 + 100 DevTest pairs.
MEAN_TOLERANCE = 0.03
MAX_TOLERANCE = 0.10


def test_xcos_explains_a_mated_pair(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    a, b = peirsol
    e = XCosExplainer().explain(a, b, embedder)
    assert e.settings["grid"] == [4, 4] and e.settings["projected"] is True
    att, cos, contribution = e.grids["attention"], e.grids["patch_cosine"], e.grids["contribution"]
    assert att.shape == (4, 4) and att.sum() == pytest.approx(1.0, abs=1e-5) and np.all(att > 0)
    assert np.allclose(att * cos, contribution, atol=1e-6)
    assert e.reconstructed_score == pytest.approx(float(contribution.sum()), abs=1e-5)
    assert abs(e.reconstructed_score - e.score) < MAX_TOLERANCE
    assert 0 < len(e.correspondences) <= 8
    weights = [c.weight for c in e.correspondences]
    assert weights == sorted(weights, reverse=True)
    for c in e.correspondences:
        assert 0 <= c.a[0] <= 150 and 0 <= c.b[1] <= 150 and -1 <= c.similarity <= 1


@pytest.mark.slow
def test_weighted_patch_cosines_reconstruct_the_score(chips_of, embedder) -> None:  # type: ignore[no-untyped-def]
    ex = XCosExplainer()
    recon, scores = [], []
    for mated in (True, False):
        for path_a, path_b in devtest_pairs(mated, 100):
            e = ex.explain(chips_of(path_a), chips_of(path_b), embedder)
            assert e.reconstructed_score is not None
            recon.append(e.reconstructed_score)
            scores.append(e.score)
    err = np.abs(np.array(recon) - np.array(scores))
    assert len(err) == 200
    assert err.mean() <= MEAN_TOLERANCE and err.max() <= MAX_TOLERANCE, f"mean {err.mean():.4f}, max {err.max():.4f}"
    # it tracks the score rather than sitting near its mean: it orders the pairs nearly alike
    assert np.corrcoef(recon, scores)[0, 1] > 0.9


def test_a_layer_the_model_does_not_have(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    a, b = peirsol
    with pytest.raises(LayerNotFoundError, match=r"no layer 'block99'.*block1, block2"):
        XCosExplainer(layer="block99").explain(a, b, embedder)
    with pytest.raises(ConfigurationError):
        XCosExplainer(layer="")


def test_a_model_without_intermediate_layers(tmp_path: Path) -> None:
    emb = OnnxArcFaceEmbedder(model=str(build_arcface(tmp_path / "tiny.onnx")))
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(2))
    with pytest.raises(LayerNotFoundError, match="exposes no intermediate layers.*occlusion"):
        XCosExplainer().explain(a, b, emb)


def test_feature_model_matches_the_embedder_and_is_built_once(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    source = feature_source(embedder)
    assert source is feature_source(embedder) and isinstance(source, OnnxFeatureModel)
    assert source.feature_layers == tuple(f"block{i}" for i in range(1, 15))
    a, b = peirsol
    desc, maps = source.feature_maps([a, b], "block13")
    assert maps.shape == (2, 256, 4, 4) and np.all(maps >= 0)  # after a ReLU
    assert np.allclose(desc, embedder.embed([a, b]), atol=1e-5)
    assert source.feature_head("block13").shape == (256, 128)
    assert source.feature_head("block10") is None  # 128 channels do not reach the final layer directly
