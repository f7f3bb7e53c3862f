"""D<->sys of Gomez-Barrero et al. on score sets whose answer is known, and its noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation.protection import linkability, noise_floor

RNG = np.random.default_rng(7)


def test_identical_distributions_are_unlinkable() -> None:
    x, y = RNG.normal(0.5, 0.05, 50_000), RNG.normal(0.5, 0.05, 50_000)
    r = linkability(x, y)
    assert r.d_sys < 0.02
    assert r.d_local.shape == r.bin_centres.shape == (100,)


def test_disjoint_distributions_are_fully_linkable() -> None:
    assert linkability(RNG.uniform(0.8, 1.0, 2000), RNG.uniform(0.0, 0.6, 2000)).d_sys == pytest.approx(1.0)


def test_mated_scores_below_the_non_mated_are_linkable_too() -> None:
    """The likelihood ratio has no direction: mated scores that are all lower still link."""
    assert linkability(RNG.uniform(0.0, 0.3, 2000), RNG.uniform(0.5, 1.0, 2000)).d_sys == pytest.approx(1.0)


def test_known_overlap() -> None:
    """Mated uniform on [0, 2], non-mated on [0, 1]: D = 0 on [0, 1] (LR = 1/2), 1 on [1, 2] -> D<->sys = 1/2."""
    r = linkability(RNG.uniform(0, 2, 200_000), RNG.uniform(0, 1, 200_000), bins=40)
    assert r.d_sys == pytest.approx(0.5, abs=0.01)


def test_linkability_grows_with_separation() -> None:
    n = RNG.normal(0, 1, 20_000)
    d = [linkability(RNG.normal(mu, 1, 20_000), n).d_sys for mu in (0.5, 1.5, 3.0)]
    assert d[0] < d[1] < d[2]


def test_noise_floor_shrinks_with_more_scores() -> None:
    small, large = noise_floor(RNG.normal(0, 1, 200)), noise_floor(RNG.normal(0, 1, 100_000))
    assert large < 0.02 < small < 0.5


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        linkability([], [0.1, 0.2])
    with pytest.raises(ConfigurationError):
        linkability([np.nan, 0.2], [0.1, 0.2])
    with pytest.raises(ConfigurationError):
        noise_floor([0.1, 0.2])
