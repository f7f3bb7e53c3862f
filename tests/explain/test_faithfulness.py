"""Deletion / insertion curves, their baselines, and the randomised-weights sanity check."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation.faithfulness import (
    ORDERS,
    Curve,
    block_labels,
    block_means,
    block_ranking,
    evaluate_pairs,
    faithfulness_curves,
    randomisation_correlation,
    randomised_copy,
    rank_correlation,
)
from faceprint.explain.occlusion import OcclusionExplainer
from faceprint.explain.xcos import XCosExplainer

from .conftest import devtest_pairs

#: Sanity-check bound: the mean Spearman correlation between the map of a pair under the trained
#: network and under a copy with random weights. Measured on LFW DevTest pairs (RESULTS.md): about
#: 0.1 for occlusion and about -0.1 for xcos; a map that ignored the weights would be near 1.
MAX_RANDOMISED_RHO = 0.5


def test_blocks_tile_the_chip() -> None:
    labels = block_labels(150, 15)
    assert labels.shape == (150, 150) and labels.min() == 0 and labels.max() == 224
    assert np.all(np.bincount(labels.ravel()) == 100)
    odd = block_labels(112, 15)  # not a multiple: blocks of 7 or 8 pixels, none empty
    assert set(np.bincount(odd.ravel()).tolist()) <= {49, 56, 64} and odd.max() == 224
    m = np.zeros((150, 150))
    m[:10, :10] = 1.0
    assert block_means(m, 15)[0] == 1.0 and block_means(m, 15)[1:].sum() == 0


def test_orders() -> None:
    rng = np.random.default_rng(0)
    m = np.arange(150 * 150, dtype=np.float64).reshape(150, 150)
    assert block_ranking(m, 15, "map", rng)[0] == 224  # the largest values are bottom right
    centre = block_ranking(None, 15, "centre", rng)
    assert centre[0] == 7 * 15 + 7 and set(centre[-4:].tolist()) == {0, 14, 210, 224}
    r1, r2 = block_ranking(None, 15, "random", rng), block_ranking(None, 15, "random", rng)
    assert sorted(r1.tolist()) == list(range(225)) and not np.array_equal(r1, r2)
    with pytest.raises(ConfigurationError):
        block_ranking(None, 15, "map", rng)


def test_curve_auc() -> None:
    x = np.linspace(0, 1, 11)
    assert Curve("deletion", "map", x, np.ones(11)).auc == pytest.approx(1.0)
    assert Curve("deletion", "map", x, 1 - x).auc == pytest.approx(0.5)


@pytest.mark.slow
def test_curves_share_their_ends_and_the_map_beats_its_negation(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    a, b = peirsol
    e = OcclusionExplainer().explain(a, b, embedder)
    rng = np.random.default_rng(0)
    rankings = {
        "map": (block_ranking(e.map_a, 15, "map", rng), block_ranking(e.map_b, 15, "map", rng)),
        "random": (block_ranking(None, 15, "random", rng), block_ranking(None, 15, "random", rng)),
        "centre": (block_ranking(None, 15, "centre", rng),) * 2,
    }
    curves = faithfulness_curves(a, b, rankings, embedder)  # type: ignore[arg-type]
    assert [(c.kind, c.order) for c in curves] == [(k, o) for o in ORDERS for k in ("deletion", "insertion")]
    deletion = {c.order: c for c in curves if c.kind == "deletion"}
    insertion = {c.order: c for c in curves if c.kind == "insertion"}
    for c in curves:
        assert c.fractions[0] == 0 and c.fractions[-1] == 1 and len(c.scores) == 11
    start = deletion["map"].scores[0]
    assert start == pytest.approx(e.score, abs=1e-5)  # nothing deleted yet: the pair's own score
    assert all(c.scores[0] == pytest.approx(start) for c in deletion.values())
    assert all(c.scores[-1] == pytest.approx(deletion["map"].scores[-1]) for c in deletion.values())
    assert all(c.scores[-1] == pytest.approx(start, abs=1e-5) for c in insertion.values())  # all back
    upside_down = {"map": (rankings["map"][0][::-1].copy(), rankings["map"][1][::-1].copy())}
    worst = faithfulness_curves(a, b, upside_down, embedder)  # type: ignore[arg-type]
    assert deletion["map"].auc < worst[0].auc  # most important first falls faster than least first
    assert insertion["map"].auc > worst[1].auc


def test_rank_correlation() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(size=(150, 150)).astype(np.float32)
    assert rank_correlation(m, m) == pytest.approx(1.0)
    assert rank_correlation(m, -m) == pytest.approx(-1.0)
    assert rank_correlation(m, np.zeros_like(m)) == 0.0


def test_randomised_copy_is_another_network(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    a, b = peirsol
    rand = randomised_copy(embedder, seed=3)
    assert rand.model_id == "dlib-resnet-v1+random3" and rand.dim == 128
    v0, v1 = embedder.embed([a, b]), rand.embed([a, b])
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)
    assert abs(float(v0[0] @ v1[0])) < 0.9  # not the trained embedding any more
    same = randomised_copy(embedder, seed=3).embed([a])
    assert np.allclose(same, v1[:1], atol=1e-6)  # seeded


@pytest.mark.slow
@pytest.mark.parametrize("method", ["occlusion", "xcos"])
def test_randomising_the_weights_changes_the_map(method: str, chips_of, embedder) -> None:  # type: ignore[no-untyped-def]
    """Adebayo et al.: over 10 DevTest pairs (5 mated, 5 non-mated) the maps under random weights
    correlate with the trained maps by less than the bound; the same network gives rho = 1."""
    ex = OcclusionExplainer() if method == "occlusion" else XCosExplainer()
    rand = randomised_copy(embedder, seed=0)
    rhos = []
    for mated in (True, False):
        for path_a, path_b in devtest_pairs(mated, 5):
            a, b = chips_of(path_a), chips_of(path_b)
            e = ex.explain(a, b, embedder)
            rhos.append(randomisation_correlation(ex, a, b, embedder, rand, original=e))
            if len(rhos) == 1:
                assert randomisation_correlation(ex, a, b, embedder, embedder, original=e) == pytest.approx(1.0)
    assert np.mean(rhos) < MAX_RANDOMISED_RHO, f"mean rank correlation {np.mean(rhos):.3f}"


@pytest.mark.slow
def test_evaluate_pairs_reports_both_kinds_of_pair(chips_of, embedder) -> None:  # type: ignore[no-untyped-def]
    pairs = [(chips_of(a), chips_of(b), m) for m in (True, False) for a, b in devtest_pairs(m, 2)]
    report = evaluate_pairs(pairs, {"occlusion": OcclusionExplainer()}, embedder, sanity_pairs=1, protocol="lfw")
    doc = report.to_dict()
    assert [(s["method"], s["pairs"], s["n"]) for s in doc["summaries"]] == [
        ("occlusion", "mated", 2),
        ("occlusion", "non-mated", 2),
    ]
    s = doc["summaries"][0]
    assert set(s["deletion_auc"]) == set(ORDERS) and s["randomisation_pairs"] == 1
    assert s["reconstruction_mae"] is None
    assert "| occlusion | mated | 2 |" in report.markdown()
