"""Occlusion maps on real LFW pairs: they point where the similarity comes from."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation.faithfulness import masked_drop
from faceprint.explain.base import Explanation
from faceprint.explain.occlusion import OcclusionExplainer, window_boxes

from .conftest import devtest_pairs

#: The issue's criterion: hiding the top-ranked 10 % of the area lowers the similarity more than
#: hiding a random 10 %, on at least this share of 50 DevTest mated pairs.
MIN_SHARE = 0.9


def test_windows_cover_the_chip_evenly() -> None:
    boxes = window_boxes(150, 7, 0.25)
    assert len(boxes) == 49 and boxes[0] == (0, 0, 38) and boxes[-1] == (112, 112, 38)
    covered = np.zeros((150, 150), int)
    for y, x, s in boxes:
        covered[y : y + s, x : x + s] += 1
    assert covered.min() >= 1  # every pixel is hidden by some window


def test_settings_are_checked() -> None:
    for bad in ({"cells": 1}, {"cells": 40}, {"window": 0.01}, {"window": 0.9}, {"fill": "noise"}):
        with pytest.raises(ConfigurationError):
            OcclusionExplainer(**bad)  # type: ignore[arg-type]


def test_map_is_the_drop_when_a_window_is_hidden(peirsol, embedder) -> None:  # type: ignore[no-untyped-def]
    a, b = peirsol
    ex = OcclusionExplainer(cells=4, window=0.25)
    e = ex.explain(a, b, embedder)
    assert e.settings["embeddings"] == 2 * 16 + 2
    # recompute one window's drop by hand: hide window 5 of A, compare with B
    y, x, s = window_boxes(150, 4, 0.25)[5]
    hidden = a.copy()
    hidden[y : y + s, x : x + s] = a.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    v = embedder.embed([a, b, hidden]).astype(np.float64)
    assert e.grids["drop_a"].ravel()[5] == pytest.approx(v[0] @ v[1] - v[2] @ v[1], abs=1e-5)
    assert e.score == pytest.approx(v[0] @ v[1], abs=1e-6)


@pytest.mark.slow
def test_top_ranked_tenth_lowers_similarity_more_than_a_random_tenth(chips_of, embedder) -> None:  # type: ignore[no-untyped-def]
    """50 DevTest mated pairs; the same pairs with each map turned upside down (least important
    first) must do far worse, so the criterion can fail."""
    ex = OcclusionExplainer()
    wins, upside_down_wins = [], []
    for path_a, path_b in devtest_pairs(True, 50):
        a, b = chips_of(path_a), chips_of(path_b)
        e = ex.explain(a, b, embedder)
        top, rand = masked_drop(a, b, e, embedder, fraction=0.1, seed=len(wins))
        wins.append(top > rand)
        flipped = Explanation(e.method, e.score, -e.map_a, -e.map_b, e.model)
        top, rand = masked_drop(a, b, flipped, embedder, fraction=0.1, seed=len(wins))
        upside_down_wins.append(top > rand)
    assert len(wins) == 50
    assert np.mean(wins) >= MIN_SHARE, f"top 10 % beat a random 10 % on {np.mean(wins):.0%} of 50 pairs"
    assert np.mean(upside_down_wins) < 0.5
