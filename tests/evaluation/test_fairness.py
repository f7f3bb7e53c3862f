"""Per-group error rates and fairness summaries: golden values computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation import fairness as F

# At threshold 0.5:
#   A: mated .9 .4 → FNMR 1/2;  non-mated .6 .1 .2 .3 → FMR 1/4
#   B: mated .8 .7 .6 .2 → FNMR 1/4;  non-mated .1 .2 → FMR 0
#   one non-mated pair A–B scoring .9 (a cross-group pair)
SCORES = [0.9, 0.4, 0.6, 0.1, 0.2, 0.3, 0.8, 0.7, 0.6, 0.2, 0.1, 0.2, 0.9]
MATED = [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
GA = ["A"] * 6 + ["B"] * 6 + ["A"]
GB = ["A"] * 6 + ["B"] * 6 + ["B"]


def test_group_rates_golden_cross_pairs_excluded_by_default() -> None:
    r = F.group_error_rates(SCORES, MATED, 0.5, GA, GB)
    assert r.groups == ("A", "B") and r.cross_label is None and r.n_excluded == 1
    np.testing.assert_allclose(r.fmr, [0.25, 0.0])
    np.testing.assert_allclose(r.fnmr, [0.5, 0.25])
    assert r.n_mated.tolist() == [2, 4] and r.n_nonmated.tolist() == [4, 2]
    assert r.fmr_ratio() == math.inf and r.fnmr_ratio() == pytest.approx(2.0)
    # FDR = 1 − (.5·|.25 − 0| + .5·|.5 − .25|) = 0.75
    assert r.fdr() == pytest.approx(0.75)
    assert r.fdr(alpha=1.0) == pytest.approx(0.75) and r.fdr(alpha=0.0) == pytest.approx(0.75)
    # Gini(.25, 0) = 2/1 · (2·.25)/(2·4·.125) = 1;  Gini(.5, .25) = 2 · .5/(8·.375) = 1/3
    assert r.garbe() == pytest.approx((1 + 1 / 3) / 2)
    assert r.garbe(alpha=0.25) == pytest.approx(0.25 * 1 + 0.75 / 3)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["fmr_ratio"] is None and d["fnmr_ratio"] == 2.0 and d["groups"][0]["n_false_match"] == 1


def test_cross_bucket_is_reported_but_not_summarised() -> None:
    r = F.group_error_rates(SCORES, MATED, 0.5, GA, GB, cross="bucket")
    assert r.groups == ("A", "B", "cross") and r.cross_label == "cross"
    np.testing.assert_allclose(r.fmr, [0.25, 0.0, 1.0])
    assert math.isnan(r.fnmr[2]) and r.n_mated[2] == 0
    assert r.fdr() == pytest.approx(0.75)  # the cross bucket is not a demographic group
    fmr_ci, fnmr_ci = r.confidence_intervals()
    assert fmr_ci.shape == (3, 2) and np.isnan(fnmr_ci[2]).all()
    assert fmr_ci[0, 0] <= 0.25 <= fmr_ci[0, 1]
    # one group label per comparison: the cross pair simply counts for A
    one = F.group_error_rates(SCORES, MATED, 0.5, GA)
    np.testing.assert_allclose(one.fmr, [2 / 5, 0.0])


def test_fdr_gini_garbe_golden() -> None:
    fmr, fnmr = [0.01, 0.02, 0.04], [0.1, 0.1, 0.2]
    assert F.fairness_discrepancy_rate(fmr, fnmr) == pytest.approx(1 - (0.5 * 0.03 + 0.5 * 0.1))
    # Σ|xi−xj| = 2(.01+.03+.02) = .12; mean 7/300; 3/2 · .12/(2·9·7/300) = 3/7
    assert F.gini(fmr) == pytest.approx(3 / 7)
    assert F.gini(fmr, correction=False) == pytest.approx(2 / 7)
    assert F.gini(fnmr) == pytest.approx(0.25)
    assert F.garbe(fmr, fnmr) == pytest.approx(0.5 * 3 / 7 + 0.5 * 0.25)
    assert F.gini([0.0, 0.0]) == 0.0 and F.gini([0.3, 0.3, 0.3]) == 0.0
    assert F.max_min_ratio([0.0, 0.0]) == 1.0 and F.max_min_ratio([0.1, 0.4]) == pytest.approx(4.0)
    # brute force Gini against the double sum
    x = np.random.default_rng(0).random(7)
    ref = np.abs(x[:, None] - x[None, :]).sum() / (2 * 49 * x.mean()) * 7 / 6
    assert F.gini(x) == pytest.approx(ref)


def test_fairness_bad_inputs() -> None:
    with pytest.raises(ConfigurationError, match="at least 2 groups"):
        F.fairness_discrepancy_rate([0.1], [0.2])
    with pytest.raises(ConfigurationError, match="alpha"):
        F.garbe([0.1, 0.2], [0.1, 0.2], alpha=2)
    with pytest.raises(ConfigurationError, match="rates in"):
        F.fairness_discrepancy_rate([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ConfigurationError, match="one entry per comparison"):
        F.group_error_rates(SCORES, MATED, 0.5, GA[:-1])
    with pytest.raises(ConfigurationError, match="cross must be"):
        F.group_error_rates(SCORES, MATED, 0.5, GA, GB, cross="keep")  # type: ignore[arg-type]
    only_a = F.group_error_rates(SCORES[:6], MATED[:6], 0.5, GA[:6])
    with pytest.raises(ConfigurationError, match="at least 2 groups"):
        only_a.fdr()
