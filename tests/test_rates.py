"""faceprint.rates: the one set of rate estimators, below scoring and evaluation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from faceprint import rates, scoring
from faceprint.errors import ConfigurationError
from faceprint.evaluation import metrics


def test_scoring_loads_no_evaluation_and_pipeline_neither() -> None:
    code = (
        "import sys, faceprint.scoring, faceprint.pipeline;"
        "sys.exit(1 if any(m.startswith('faceprint.evaluation') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_one_implementation_behind_scoring_metrics_and_rates() -> None:
    for name in ("eer", "fmr_fnmr", "threshold_at_fmr", "fpir_fnir", "ScoreCounts", "EERResult", "clopper_pearson"):
        assert getattr(metrics, name) is getattr(rates, name), name
    rng = np.random.default_rng(3)
    m, n = rng.normal(1, 1, 500), rng.normal(-1, 1, 700)
    r = scoring.eer(m, n)
    assert isinstance(r, rates.EERResult) and r == metrics.eer(m, n)
    assert r.method == rates.EER_METHOD


def test_the_tuple_form_of_scoring_eer_still_works_with_a_warning() -> None:
    r = scoring.eer([0.6, 0.9], [0.1, 0.5, 0.7])
    with pytest.warns(DeprecationWarning, match="read .eer and .threshold"):
        rate, thr = r
    assert (rate, thr) == (r.eer, r.threshold)
    with pytest.warns(DeprecationWarning):
        assert r[0] == r.eer and r == (r.eer, r.threshold)


def test_genuine_impostor_keywords_are_deprecated_aliases() -> None:
    m, n = [0.9, 0.8, 0.7, 0.4], [0.1, 0.2, 0.5, 0.75]
    with pytest.warns(DeprecationWarning, match="use mated="):
        old = scoring.fmr_fnmr(genuine=m, impostor=n, threshold=0.6)
    assert old == scoring.fmr_fnmr(mated=m, nonmated=n, threshold=0.6) == (0.25, 0.25)
    with pytest.warns(DeprecationWarning, match="use nonmated="):
        assert scoring.threshold_at_fmr(impostor=n, target_fmr=0.25) == scoring.threshold_at_fmr(n, 0.25)
    with pytest.raises(TypeError, match="both genuine= and mated="):
        scoring.eer(m, genuine=m, mated=m)
    cal = scoring.calibrate(np.linspace(0.5, 1, 50), np.linspace(0, 0.6, 5000), target_fmrs=(1e-2,))
    assert (cal.n_mated, cal.n_nonmated) == (50, 5000)
    with pytest.warns(DeprecationWarning, match="n_mated"):
        assert cal.n_genuine == 50


def test_fpir_fnir_at_one_threshold_agrees_with_the_curve() -> None:
    rng = np.random.default_rng(5)
    s = rng.uniform(0, 1, (40, 12))
    gallery = np.array([f"g{i}" for i in range(12)])
    probes = np.array([f"g{i % 12}" if i < 30 else f"x{i}" for i in range(40)])
    s[np.arange(30), np.arange(30) % 12] += 0.4
    o = rates.open_set_scores(s, probes, gallery, rank=1)
    curve = rates.fpir_fnir(s, probes, gallery, rank=1)
    for k in range(0, len(curve.thresholds), 7):
        t = float(curve.thresholds[k])
        assert rates.fpir_fnir_at(o.mated, o.nonmated, t) == pytest.approx((curve.fpir[k], curve.fnir[k]))
    # the gallery's convention: NaN or -inf is a miss at any threshold
    assert rates.fpir_fnir_at([0.9, np.nan, -np.inf, 0.5], [0.2, 0.6], 0.4) == (0.5, 0.5)
    with pytest.raises(ConfigurationError, match="at least one mated and one non-mated"):
        rates.fpir_fnir_at([], [0.1], 0.5)
    with pytest.raises(ConfigurationError, match="NaN"):
        rates.fpir_fnir_at([0.5], [np.nan], 0.5)


def test_threshold_at_fpir_is_the_fmr_estimator_on_top_scores(caplog: pytest.LogCaptureFixture) -> None:
    tops = np.arange(200) / 200.0
    t = rates.threshold_at_fpir(tops, 0.05)
    assert np.mean(tops >= t) == pytest.approx(0.05) and t == rates.threshold_at_fmr(tops, 0.05)
    rates.threshold_at_fpir(tops, 1e-3)
    assert "3000 are needed" in caplog.text
    with pytest.raises(ConfigurationError, match="target FPIR"):
        rates.threshold_at_fpir(tops, 1.0)
