"""Contributor pair selection: look-alikes by similarity, random by seed, never one person twice."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.attacks.morph_pairs import MorphPair, read_pairs, select_pairs, write_pairs
from faceprint.errors import ConfigurationError, DataFormatError


def _emb(deg: list[float]) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


IDS = ["p", "p", "q", "r", "s"]
EMB = _emb([0, 1, 5, 60, 62])  # p twice (0°, 1°), q near p, r and s near each other


def test_lookalike_takes_the_most_similar_pairs_of_different_people() -> None:
    pairs = select_pairs(IDS, EMB, strategy="lookalike", n=5)
    assert [(i, j) for i, j, _ in pairs] == [(3, 4), (1, 2)]  # r+s (2°), p(1°)+q (4°); p+p is never a pair
    assert pairs[0][2] == pytest.approx(np.cos(np.deg2rad(2)))


def test_max_uses_allows_reuse() -> None:
    pairs = select_pairs(IDS, EMB, strategy="lookalike", n=3, max_uses=2)
    assert len(pairs) == 3 and all(IDS[i] != IDS[j] for i, j, _ in pairs)


def test_random_is_seeded_and_respects_attributes() -> None:
    a = select_pairs(IDS, EMB, strategy="random", n=2, seed=1)
    assert a == select_pairs(IDS, EMB, strategy="random", n=2, seed=1)
    labels = ["f", "f", "m", "f", "m"]
    for i, j, _ in select_pairs(IDS, EMB, strategy="random", n=5, seed=3, max_uses=5, attributes=labels):
        assert labels[i] == labels[j] and IDS[i] != IDS[j]


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="strategy"):
        select_pairs(IDS, EMB, strategy="best")
    with pytest.raises(ConfigurationError):
        select_pairs(IDS[:2], EMB)


def test_pairs_file_round_trip(tmp_path) -> None:
    pairs = [MorphPair(str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), 0.5), MorphPair("x/c.jpg", "y/d.jpg")]
    write_pairs(pairs, tmp_path / "p.tsv")
    back = read_pairs(tmp_path / "p.tsv")
    assert back[0] == pairs[0]
    assert back[1].a == str(tmp_path / "x" / "c.jpg") and np.isnan(back[1].similarity)
    (tmp_path / "bad.tsv").write_text("a b\nonly_one\n")
    with pytest.raises(DataFormatError, match="bad.tsv:2"):
        read_pairs(tmp_path / "bad.tsv")


def test_backend_defaults_follow_the_pipeline() -> None:
    from faceprint import pipeline
    from faceprint.attacks import mad, morph

    assert morph.DEFAULT_DETECTOR == pipeline.DEFAULT_DETECTOR
    assert mad.DEFAULT_EMBEDDER == pipeline.DEFAULT_EMBEDDER
