"""ISO/IEC 19795-1 metrics: golden values computed by hand, and agreement with scikit-learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faceprint import scoring
from faceprint.errors import ConfigurationError, InvalidEmbeddingError
from faceprint.evaluation import metrics as M

# mated 0.9 0.8 0.7 0.4 / non-mated 0.1 0.2 0.5 0.75; by hand, at each distinct score t:
#   t     0.1  0.2  0.4  0.5  0.7  0.75 0.8  0.9
#   FMR   1    .75  .5   .5   .25  .25  0    0
#   FNMR  0    0    0    .25  .25  .5   .5   .75
GEN = [0.9, 0.8, 0.7, 0.4]
IMP = [0.1, 0.2, 0.5, 0.75]


def test_error_curve_golden() -> None:
    c = M.error_curve(GEN, IMP)
    np.testing.assert_array_equal(c.thresholds, [0.1, 0.2, 0.4, 0.5, 0.7, 0.75, 0.8, 0.9])
    np.testing.assert_array_equal(c.fmr, [1, 0.75, 0.5, 0.5, 0.25, 0.25, 0, 0])
    np.testing.assert_array_equal(c.fnmr, [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75])
    np.testing.assert_array_equal(c.tmr, 1 - c.fnmr)
    assert (c.n_mated, c.n_nonmated) == (4, 4)
    fmr, fnmr, thr = M.det_curve(GEN, IMP)
    np.testing.assert_array_equal(thr, c.thresholds)
    assert M.fmr_fnmr(GEN, IMP, 0.75) == (0.25, 0.5)  # score == threshold matches
    fm, fn = M.fmr_fnmr(GEN, IMP, [0.0, 0.6, 1.0])
    np.testing.assert_array_equal(fm, [1, 0.25, 0])
    np.testing.assert_array_equal(fn, [0, 0.25, 1])


def test_ties_are_counted_once_per_distinct_score() -> None:
    c = M.ScoreCounts.from_scores([0.5, 0.5, 0.7], [0.5, 0.1, 0.1])
    np.testing.assert_array_equal(c.values, [0.1, 0.5, 0.7])
    np.testing.assert_array_equal(c.mated, [0, 2, 1])
    np.testing.assert_array_equal(c.nonmated, [2, 1, 0])
    merged = c.merge(M.ScoreCounts.from_scores([0.7], [0.2]))
    np.testing.assert_array_equal(merged.values, [0.1, 0.2, 0.5, 0.7])
    np.testing.assert_array_equal(merged.mated, [0, 0, 2, 2])
    again = M.ScoreCounts.from_arrays([0.7, 0.5, 0.1, 0.5], [1, 2, 0, 0], [0, 0, 2, 1])
    np.testing.assert_array_equal(again.values, c.values)
    np.testing.assert_array_equal(again.mated, c.mated)
    np.testing.assert_array_equal(again.nonmated, c.nonmated)
    assert again.eer().eer == c.eer().eer and again.auc() == c.auc()


def test_eer_auc_golden() -> None:
    r = M.eer(GEN, IMP)  # FMR = FNMR = 0.25 exactly at t = 0.7
    assert (r.eer, r.threshold) == (0.25, 0.7)
    assert "interpolated" in r.method and r.method == M.EER_METHOD
    assert M.auc(GEN, IMP) == 13 / 16  # pairs mated > non-mated: 4 + 4 + 3 + 2
    assert M.eer([0.6, 0.9], [0.1, 0.3]).eer == 0.0  # separable
    # mated .6 .9, non-mated .1 .5 .7: at t=.6 FMR 1/3, FNMR 0; at t=.7 FMR 1/3, FNMR 1/2.
    # FMR − FNMR goes 1/3 → −1/6, so w = (1/3)/(1/2) = 2/3 of the way: EER 1/3 at t = .6 + (2/3)·.1
    r = M.eer([0.6, 0.9], [0.1, 0.5, 0.7])
    assert r.eer == pytest.approx(1 / 3) and r.threshold == pytest.approx(0.6 + 0.2 / 3)
    r0 = M.eer(GEN, IMP)
    assert scoring.eer(GEN, IMP) == (r0.eer, r0.threshold)


def test_eer_of_two_normals_is_analytic() -> None:
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    d = 3.0
    r = M.eer(rng.normal(d, 1, 200_000), rng.normal(0, 1, 200_000))
    assert r.eer == pytest.approx(norm.cdf(-d / 2), abs=0.003)
    assert r.threshold == pytest.approx(d / 2, abs=0.02)


def test_fnmr_at_fmr_golden_and_rule_of_three() -> None:
    imp = np.arange(30) / 100  # 0.00 … 0.29
    gen = [0.1, 0.255, 0.265, 0.5, 0.9]
    p, q = M.fnmr_at_fmr(gen, imp, [0.1, 0.01])
    # 30 × 0.1 = 3 false matches allowed: threshold just above the 4th highest (0.26)
    assert p.threshold == np.nextafter(0.26, 1) and p.fmr == pytest.approx(0.1)
    assert p.fnmr == pytest.approx(2 / 5) and p.tmr == pytest.approx(3 / 5) and p.reason is None
    assert p.ci is not None and p.ci[0] <= p.fnmr <= p.ci[1]
    # FMR = 0.01 needs 300 non-mated comparisons: no number, a reason
    assert q.fnmr is None and q.threshold is None and q.ci is None
    assert "only 30 non-mated" in q.reason and "300" in q.reason and "rule of three" in q.reason
    z = M.ScoreCounts.from_scores(gen, imp).fnmr_at_fmr(0.0)
    assert z.fnmr is None and "cannot be estimated" in z.reason


def test_threshold_at_fmr_matches_the_sorted_definition() -> None:
    rng = np.random.default_rng(3)
    imp = rng.normal(size=5000)
    for target in (0.1, 0.01, 0.003, 1e-3):
        t = M.threshold_at_fmr(imp, target)
        assert np.mean(imp >= t) <= target
        assert np.mean(imp >= np.nextafter(t, -np.inf) - 1e-12) > target  # the lowest such threshold
        assert t == scoring.threshold_at_fmr(imp, target)


def test_roc_curve_and_auc_agree_with_sklearn() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    rng = np.random.default_rng(7)
    for decimals in (None, 1):  # continuous scores, then heavy ties
        g = rng.normal(1, 1, 3000)
        i = rng.normal(0, 1, 5000)
        if decimals is not None:
            g, i = np.round(g, decimals), np.round(i, decimals)
        y = np.r_[np.ones(g.size), np.zeros(i.size)]
        s = np.r_[g, i]
        fpr, tpr, thr = sk_roc(y, s, drop_intermediate=False)
        fmr, tmr, t = M.roc_curve(g, i)
        np.testing.assert_allclose(fmr, fpr, atol=1e-12)
        np.testing.assert_allclose(tmr, tpr, atol=1e-12)
        np.testing.assert_array_equal(t[1:], thr[1:])
        assert M.auc(g, i) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="NaN"):
        M.eer([0.1, np.nan], [0.2])
    with pytest.raises(ConfigurationError, match="no mated"):
        M.det_curve([], [0.2])
    with pytest.raises(ConfigurationError, match="no non-mated"):
        M.VerificationReport.from_scores([0.2], [])
    with pytest.raises(ConfigurationError, match="target FMR"):
        M.fnmr_at_fmr(GEN, IMP, 1.5)
    with pytest.raises(ConfigurationError, match="one entry per comparison"):
        M.kfold_accuracy([0.1, 0.2, 0.3], [True, False], [0, 1, 1])
    with pytest.raises(ConfigurationError, match="one entry per comparison"):
        M.system_error_rates([0.1, 0.2], [True], 0.5)
    with pytest.raises(ConfigurationError, match="gallery_ids"):
        M.cmc(np.zeros((2, 3)), ["a", "b"], ["a", "b"])
    with pytest.raises(ConfigurationError, match="both mated_subjects and nonmated_subjects"):
        M.VerificationReport.from_scores(GEN, IMP, mated_subjects=[1, 2, 3, 4])
    with pytest.raises(ConfigurationError, match="mated_subjects"):
        M.subject_bootstrap(GEN, IMP, [1, 2], [1, 2, 3, 4])
    with pytest.raises(ConfigurationError, match="confidence"):
        M.clopper_pearson(1, 10, 1.5)


def test_clopper_pearson_known_values() -> None:
    assert M.clopper_pearson(0, 10) == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))  # 0.308497
    assert M.clopper_pearson(10, 10) == pytest.approx((0.025 ** (1 / 10), 1.0))
    assert M.clopper_pearson(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)  # R binom.test
    lo, hi = M.clopper_pearson(np.array([0, 1]), np.array([3000, 3000]))
    assert hi[0] == pytest.approx(1 - 0.025 ** (1 / 3000)) and lo[0] == 0.0
    with pytest.raises(ConfigurationError):
        M.clopper_pearson(3, 2)


def _subject_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_subj = 120
    effect = rng.normal(0, 0.5, n_subj)  # per-subject shift: comparisons of one subject correlate
    sm = np.repeat(np.arange(n_subj), 10)
    g = rng.normal(2.5 + effect[sm], 1.0)
    sn = np.repeat(np.arange(n_subj), 50)
    i = rng.normal(0, 1.0, sn.size)
    return g, i, sm, sn


def test_subject_bootstrap_contains_estimate_and_is_reproducible() -> None:
    g, i, sm, sn = _subject_data()
    b1 = M.subject_bootstrap(g, i, sm, sn, fmr_targets=(1e-2, 1e-5), n_bootstrap=200, seed=5)
    b2 = M.subject_bootstrap(g, i, sm, sn, fmr_targets=(1e-2, 1e-5), n_bootstrap=200, seed=5)
    assert b1.eer_ci == b2.eer_ci and b1.fnmr_ci == b2.fnmr_ci
    np.testing.assert_array_equal(b1.eer_samples, b2.eer_samples)
    e = M.eer(g, i).eer
    assert b1.eer_ci[0] <= e <= b1.eer_ci[1]
    f = M.fnmr_at_fmr(g, i, 1e-2)[0].fnmr
    assert b1.fnmr_ci[1e-2][0] <= f <= b1.fnmr_ci[1e-2][1]
    assert b1.fnmr_ci[1e-5] is None  # 6000 non-mated cannot support FMR = 1e-5
    b3 = M.subject_bootstrap(g, i, sm, sn, fmr_targets=(1e-2,), n_bootstrap=200, seed=6)
    assert b3.eer_ci != b1.eer_ci
    assert b1.n_subjects == 120 and "subject-level" in b1.method


def test_verification_report_bundles_everything_and_serialises() -> None:
    g, i, sm, sn = _subject_data(1)
    rep = M.VerificationReport.from_scores(g, i, mated_subjects=sm, nonmated_subjects=sn, n_bootstrap=100, seed=0)
    assert (rep.n_mated, rep.n_nonmated) == (1200, 6000)
    assert rep.eer.eer == M.eer(g, i).eer and rep.eer.ci is not None and rep.auc == M.auc(g, i)
    assert [p.target_fmr for p in rep.fnmr_at_fmr] == list(M.DEFAULT_FMR_TARGETS)
    assert rep.at(1e-3).fnmr is not None and rep.at(1e-3).ci is not None
    assert rep.at(1e-4).fnmr is None and "rule of three" in rep.at(1e-4).reason
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["fnmr_at_fmr"][3]["fnmr"] is None and d["eer_method"] == M.EER_METHOD
    assert len(d["det"]["fmr"]) <= 1100
    plain = M.VerificationReport.from_scores(g, i)
    assert plain.eer.ci is None and "Clopper-Pearson" in plain.at(0.1).ci_method
    nci = M.VerificationReport.from_scores(g, i, confidence=None)
    assert nci.at(0.1).ci is None and nci.at(0.1).fnmr == plain.at(0.1).fnmr


def test_kfold_accuracy_golden() -> None:
    # fold 0: mated .9 .6, non-mated .5 .2;  fold 1: mated .8 .3, non-mated .4 .1
    # train on fold 1 → best threshold (.1+.3)/2 = .2 (3/4, lowest of the ties) → fold 0 acc 2/4
    # train on fold 0 → best threshold (.5+.6)/2 = .55 (4/4) → fold 1 acc 3/4
    s = [0.9, 0.6, 0.5, 0.2, 0.8, 0.3, 0.4, 0.1]
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    f = [0, 0, 0, 0, 1, 1, 1, 1]
    r = M.kfold_accuracy(s, y, f)
    np.testing.assert_allclose(r.thresholds, [0.2, 0.55])
    np.testing.assert_allclose(r.accuracies, [0.5, 0.75])
    assert r.mean == pytest.approx(0.625) and r.std == pytest.approx(0.125)


def test_kfold_accuracy_matches_a_brute_force_threshold_sweep() -> None:
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(11)
    n = 600
    y = rng.random(n) < 0.5
    s = np.round(rng.normal(y * 1.5, 1.0), 2)
    folds = M.contiguous_folds(n, 10)
    sk = np.empty(n, int)
    for j, (_, te) in enumerate(KFold(10, shuffle=False).split(s)):
        sk[te] = j
    np.testing.assert_array_equal(folds, sk)
    r = M.kfold_accuracy(s, y, folds)
    for j in range(10):
        tr, te = folds != j, folds == j
        u = np.unique(s[tr])
        cands = np.r_[-np.inf, (u[1:] + u[:-1]) / 2, np.inf]
        accs = [np.mean((s[tr] >= c) == y[tr]) for c in cands]
        best = cands[int(np.argmax(accs))]
        assert r.thresholds[j] == best
        assert r.accuracies[j] == np.mean((s[te] >= best) == y[te])


def test_failure_to_acquire_counts_as_non_match() -> None:
    scores = [0.9, np.nan, 0.3, 0.8, np.nan, 0.1]
    mated = [True, True, True, False, False, False]
    failed = [False, True, False, False, True, False]
    r = M.system_error_rates(scores, mated, 0.5, failed)
    assert r.fnmr == pytest.approx(2 / 3) and r.comparison_fnmr == pytest.approx(1 / 2)
    assert r.fmr == pytest.approx(1 / 3) and r.comparison_fmr == pytest.approx(1 / 2)
    assert r.fta == pytest.approx(2 / 6) and (r.n_failed_mated, r.n_failed_nonmated) == (1, 1)
    with pytest.raises(ConfigurationError, match="NaN"):
        M.system_error_rates(scores, mated, 0.5)  # NaN scores must be marked failed


def test_cmc_golden() -> None:
    gallery = ["a", "b", "c"]
    probes = ["a", "b", "c", "a"]
    s = np.array(
        [
            [0.9, 0.1, 0.2],  # rank 1
            [0.5, 0.4, 0.3],  # rank 2
            [0.6, 0.7, 0.5],  # rank 3
            [0.3, 0.3, 0.1],  # tie with b: counted against the probe → rank 2
        ]
    )
    r = M.cmc(s, probes, gallery)
    np.testing.assert_array_equal(r.probe_ranks, [1, 2, 3, 2])
    np.testing.assert_allclose(r.rates, [0.25, 0.75, 1.0])
    assert r.rate_at(1) == 0.25 and r.rate_at(2) == 0.75
    # two gallery images of "a" count as one candidate with the best score
    s2 = np.array([[0.1, 0.5, 0.6]])
    assert M.cmc(s2, ["a"], ["a", "b", "a"]).probe_ranks.tolist() == [1]
    assert M.cmc(s2, ["b"], ["a", "b", "a"]).probe_ranks.tolist() == [2]
    with pytest.raises(ConfigurationError, match="no mate"):
        M.cmc(s, ["a", "b", "c", "z"], gallery)


def test_open_set_fpir_fnir_golden() -> None:
    gallery = ["a", "b"]
    probes = ["a", "b", "a", "x", "y"]
    s = np.array([[0.9, 0.2], [0.6, 0.5], [0.4, 0.1], [0.3, 0.7], [0.2, 0.1]])
    c = M.fpir_fnir(s, probes, gallery, rank=1)
    # mated: .9 (rank 1), b's mate at rank 2 → missed, .4; non-mated tops: .7, .2
    np.testing.assert_array_equal(c.thresholds, [0.2, 0.4, 0.7, 0.9])
    np.testing.assert_allclose(c.fpir, [1, 0.5, 0.5, 0])
    np.testing.assert_allclose(c.fnir, [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    c2 = M.fpir_fnir(s, probes, gallery, rank=2)
    np.testing.assert_allclose(c2.fnir[c2.thresholds == 0.4], [0.0])
    r = M.fnir_at_fpir(s, probes, gallery, 0.5)
    assert r.fnir is None and "non-mated probes" in r.reason
    # six non-mated probes with tops .1 .2 .3 .35 .7 .8 → FPIR .5 allows 3: threshold just above .3
    s6 = np.vstack([s[:3], [[0.1, 0], [0.2, 0], [0.3, 0], [0.35, 0], [0.7, 0], [0.8, 0]]])
    r = M.fnir_at_fpir(s6, ["a", "b", "a", "u", "v", "w", "x", "y", "z"], gallery, 0.5)
    assert r.threshold == np.nextafter(0.3, 1) and r.fpir == 0.5 and r.fnir == pytest.approx(1 / 3)


def test_block_accumulation_equals_the_full_matrix() -> None:
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 8, 53)
    a = rng.normal(size=(53, 16)) + 2 * rng.normal(size=(8, 16))[ids]
    b_ids = rng.integers(0, 8, 31)
    b = rng.normal(size=(31, 16)) + 2 * rng.normal(size=(8, 16))[b_ids]
    full = np.empty((53, 31))
    for rows, cols, blk in M.iter_score_blocks(a, b, block=7):
        full[rows, cols] = blk
    np.testing.assert_allclose(full, scoring.similarity_matrix(a, b), atol=1e-6)  # float32 BLAS rounding
    same = ids[:, None] == b_ids[None, :]
    ref = M.ScoreCounts.from_scores(full[same], full[~same])
    got = M.accumulate_scores(a, ids, b, b_ids, block=7)
    np.testing.assert_array_equal(got.values, ref.values)
    np.testing.assert_array_equal(got.mated, ref.mated)
    np.testing.assert_array_equal(got.nonmated, ref.nonmated)
    # all-vs-all of one set: each unordered pair once, no self-comparisons
    sq = np.full((53, 53), np.nan)
    for rows, cols, blk in M.iter_score_blocks(a, block=10):
        sq[rows, cols] = blk
    iu = np.triu_indices(53, 1)
    m = (ids[:, None] == ids[None, :])[iu]
    sym = M.accumulate_scores(a, ids, block=10)
    assert (sym.n_mated, sym.n_nonmated) == (int(m.sum()), int((~m).sum()))
    assert M.VerificationReport.from_counts(sym).eer.eer == M.eer(sq[iu][m], sq[iu][~m]).eer
    assert sum(1 for _ in M.iter_score_blocks(a, block=10)) == 6 * 7 // 2
    coarse = M.accumulate_scores(a, ids, resolution=0.01)
    assert coarse.values.size <= 201 and coarse.n_nonmated == sym.n_nonmated
    with pytest.raises(InvalidEmbeddingError):
        next(M.iter_score_blocks(np.zeros((2, 3))))


def test_scoring_delegates_to_metrics() -> None:
    rng = np.random.default_rng(2)
    g, i = rng.normal(2, 1, 2000), rng.normal(0, 1, 2000)
    cal = scoring.calibrate(g, i, target_fmrs=(1e-2,))
    assert cal.points["eer"].threshold == M.eer(g, i).threshold
    t = M.threshold_at_fmr(i, 1e-2)
    assert cal.points["fmr=0.01"].threshold == t
    assert (cal.points["fmr=0.01"].fmr, cal.points["fmr=0.01"].fnmr) == M.fmr_fnmr(g, i, t)
    assert math.isclose(M.min_nonmated_for(1e-3), 3000)
