"""EDC (ISO/IEC 29794-1:2024): golden values on a hand-worked example, ties, the ideal curve, pAUC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation import EDCDisplay, edc_curve, edc_report, ideal_edc, pair_quality

# six mated comparisons at threshold 0.5: two false non-matches (0.2 and 0.4)
SCORES = np.array([0.2, 0.9, 0.4, 0.8, 0.7, 0.6])


def test_golden_curve_with_a_tie() -> None:
    q = np.array([3, 5, 1, 5, 2, 4])  # ascending: 0.4, 0.7, 0.2, 0.6, then 0.9 and 0.8 tied at 5
    c = edc_curve("q", SCORES, q, threshold=0.5)
    assert c.discard.tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 1])  # the tie is one step
    assert c.fnmr.tolist() == pytest.approx([2 / 6, 1 / 5, 1 / 4, 0, 0, 0])
    assert c.area(0.5) == pytest.approx((2 / 6 + 1 / 5 + 1 / 4) / 6)
    assert c.pauc(0.5) == pytest.approx((2 / 6 + 1 / 5 + 1 / 4) / 6 / (2 / 6))
    assert c.fnmr_at(0.25) == pytest.approx(1 / 5) and c.fnmr_at(0.0) == pytest.approx(2 / 6)


def test_ideal_curve_discards_errors_first() -> None:
    i = ideal_edc(SCORES, threshold=0.5)
    assert i.fnmr[:4].tolist() == pytest.approx([2 / 6, 1 / 5, 0, 0])
    assert i.area(0.5) == pytest.approx((2 / 6 + 1 / 5) / 6)
    worst = edc_curve("worst", SCORES, -SCORES, threshold=0.5)  # discards the best comparisons first
    assert i.pauc(0.5) < edc_curve("q", SCORES, np.array([3, 5, 1, 5, 2, 4]), threshold=0.5).pauc(0.5) < worst.pauc(0.5)


def test_a_quality_that_predicts_errors_beats_random_discard() -> None:
    rng = np.random.default_rng(0)
    q = rng.random(20000)
    s = q + rng.normal(0, 0.3, q.size)  # higher quality, higher mated score
    good = edc_curve("good", s, q, threshold=0.2)
    noise = edc_curve("noise", s, rng.random(q.size), threshold=0.2)
    assert noise.ratio_to_random() == pytest.approx(1.0, abs=0.02)  # random discard: flat, pAUC = the limit
    assert good.ratio_to_random() < 0.85
    assert ideal_edc(s, threshold=0.2).ratio_to_random() < good.ratio_to_random()


def test_report_threshold_is_fixed_at_the_fmr_target_before_discarding() -> None:
    rng = np.random.default_rng(1)
    mated = np.r_[np.ones(500, bool), np.zeros(5000, bool)]
    scores = np.r_[rng.normal(0.7, 0.1, 500), rng.normal(0.2, 0.1, 5000)]
    qa, qb = rng.random(5500), rng.random(5500)
    qa[3] = np.nan  # a side without a face: that mated comparison is left out of every curve
    rep = edc_report(scores, mated, {"u": (qa, qb), "v": (qb, qa)}, fmr_target=1e-2)
    nonmated = np.sort(scores[~mated])
    assert np.mean(nonmated >= rep.threshold) <= 1e-2 < np.mean(nonmated >= rep.threshold - 1e-6) + 1e-2
    assert rep.excluded == 1 and rep.ideal.n_mated == 499
    assert rep.curves["u"].fnmr0 == pytest.approx(np.mean(np.delete(scores[:500], 3) < rep.threshold))
    assert [r["name"] for r in rep.table()] == ["u", "v", "ideal"]
    assert rep.to_dict()["pair_quality"] == "min" and rep.to_dict()["random_pauc"] == 0.2
    assert pair_quality([1, 5], [3, 2]).tolist() == [1, 2]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        edc_curve("x", [0.1, 0.2], [1.0], threshold=0.5)
    with pytest.raises(ConfigurationError, match="finite"):
        edc_curve("x", [0.1, np.nan], [1.0, 2.0], threshold=0.5)
    with pytest.raises(ConfigurationError, match="threshold or an FMR target"):
        edc_report([0.1], [True], {"q": ([1.0], [1.0])}, fmr_target=None)
    with pytest.raises(ConfigurationError, match="discard limit"):
        edc_curve("x", [0.1], [1.0], threshold=0.5).area(1.5)


def test_display_draws_every_curve(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    mated = np.r_[np.ones(300, bool), np.zeros(3000, bool)]
    scores = np.r_[rng.normal(0.6, 0.15, 300), rng.normal(0.2, 0.1, 3000)]
    q = rng.random(scores.size)
    rep = edc_report(scores, mated, {"unified": (q, q), "sharpness": (1 - q, q)}, threshold=0.45)
    disp = EDCDisplay.from_report(rep)
    assert set(disp.lines_) == {"unified", "sharpness", "ideal", "random"}
    disp.figure_.savefig(tmp_path / "edc.png")
    assert (tmp_path / "edc.png").stat().st_size > 5000
