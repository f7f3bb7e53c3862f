"""evaluate_protection on real LFW View 1 DevTest pairs: protected templates unlink, renew, still verify."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation.protection import evaluate_protection
from faceprint.protection import derive_key
from faceprint.registry import template_protectors

from .conftest import devtest_pairs

KEY = derive_key("a test secret of enough length", "tests")


@pytest.fixture(scope="module")
def pairs(embed):  # type: ignore[no-untyped-def]
    rows = devtest_pairs(40)
    a = np.stack([embed(r[0]) for r in rows])
    b = np.stack([embed(r[1]) for r in rows])
    return a, b, np.array([r[2] for r in rows]), np.array([r[3] for r in rows]), np.array([r[4] for r in rows])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["biohash", "iom"])
def test_protected_templates_unlink_renew_and_still_verify(method: str, pairs) -> None:  # type: ignore[no-untyped-def]
    r = evaluate_protection(template_protectors.create(method), *pairs, KEY)
    assert r.n_mated == r.n_nonmated == 40
    # the unprotected embeddings link a person across applications almost surely; the protected do not
    assert r.unlinkability_unprotected.d_sys > 0.8
    assert r.unlinkability.d_sys < r.noise_floor + 0.15
    # a renewed template is a stranger to the old one
    assert r.renewed_match_rate <= r.zero_effort_rate
    # protected comparison still separates mated from non-mated pairs, with a stolen key too
    for mode in ("own_key", "stolen_key", "unprotected"):
        assert r.accuracy[mode].eer < 0.15, (mode, r.accuracy[mode].eer)
    assert r.accuracy["own_key"].eer <= r.accuracy["stolen_key"].eer + 1e-9


def test_one_kind_of_pair_only_is_refused(pairs) -> None:  # type: ignore[no-untyped-def]
    a, b, mated, sa, sb = pairs
    with pytest.raises(ConfigurationError):
        evaluate_protection(
            template_protectors.create("iom"), a[mated], b[mated], mated[mated], sa[mated], sb[mated], KEY
        )
