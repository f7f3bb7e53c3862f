"""MMPMR, ProdAvg-MMPMR, RMMR and the ISO/IEC 30107-3 detection rates on hand-computed tables."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, DataFormatError
from faceprint.evaluation.morph import (
    MorphEntry,
    apcer_bpcer,
    bpcer_at_apcer,
    detection_report,
    markdown,
    mmpmr,
    prodavg_mmpmr,
    read_morph_list,
    rmmr,
    vulnerability,
)

# per morph, per contributor: that contributor's probe scores against the morph
TABLE = [
    [[0.95, 0.90], [0.93]],  # m1: A passes one of two probes at 0.92
    [[0.80], [0.99, 0.97, 0.60]],  # m2: A never passes above 0.80
    [[0.96], [0.94]],  # m3: passes both down to 0.94
]


@pytest.mark.parametrize(
    "threshold,want_mmpmr,want_prodavg",
    [
        (0.92, 1 / 3, (0.5 * 1 + 0 + 1) / 3),  # m1: min(A)=0.90 fails, A share 1/2; m3 passes
        (0.85, 2 / 3, 2 / 3),  # m1 passes (0.90, 0.93); m2 fails on A
        (0.50, 1.0, 1.0),
        (0.935, 1 / 3, (0 + 0 + 1) / 3),  # m1: B 0.93 < 0.935
        (0.96, 0.0, (0 + 0 + 0) / 3),
    ],
)
def test_mmpmr_and_prodavg_on_a_hand_computed_table(threshold: float, want_mmpmr: float, want_prodavg: float) -> None:
    assert mmpmr(TABLE, threshold) == pytest.approx(want_mmpmr)
    assert prodavg_mmpmr(TABLE, threshold) == pytest.approx(want_prodavg)


def test_one_probe_per_contributor_makes_both_equal() -> None:
    t = [[[0.9], [0.95]], [[0.7], [0.99]], [[0.93], [0.91]]]
    for thr in (0.6, 0.9, 0.92, 0.95):
        assert mmpmr(t, thr) == prodavg_mmpmr(t, thr)


def test_match_is_score_at_or_above_threshold() -> None:
    assert mmpmr([[[0.9], [0.9]]], 0.9) == 1.0


def test_rmmr() -> None:
    assert rmmr(1 / 3, 0.1) == pytest.approx(1 + 1 / 3 - 0.9)
    assert rmmr(0.5, 0.0) == pytest.approx(0.5)  # a verifier that accepts every genuine user: RMMR = MMPMR


@pytest.mark.parametrize("bad", [[], [[[0.9]]], [[[0.9], []]], [[[0.9], [float("nan")]]]])
def test_bad_tables_are_refused(bad) -> None:
    with pytest.raises(ConfigurationError):
        mmpmr(bad, 0.5)


ATTACKS = [0.9, 0.8, 0.7, 0.2]
BONA = [0.1, 0.3, 0.75]


def test_apcer_bpcer_by_hand() -> None:
    assert apcer_bpcer(ATTACKS, BONA, 0.75) == pytest.approx((2 / 4, 1 / 3))  # 0.7, 0.2 missed; 0.75 flagged
    assert apcer_bpcer(ATTACKS, BONA, 0.0) == pytest.approx((0.0, 1.0))


def test_bpcer_at_apcer_by_hand() -> None:
    assert bpcer_at_apcer(ATTACKS, BONA, 0.25) == pytest.approx((1 / 3, 0.7))  # one attack (0.2) may be missed
    assert bpcer_at_apcer(ATTACKS, BONA, 0.10) == pytest.approx((2 / 3, 0.2))  # none may be missed
    with pytest.raises(ConfigurationError):
        bpcer_at_apcer(ATTACKS, BONA, 1.0)


def test_detection_report_separable_and_not() -> None:
    r = detection_report([0.9, 0.8], [0.1, 0.2, 0.3], threshold=0.5)
    assert r["d_eer"] == pytest.approx(0.0) and r["bpcer10"] == 0.0 and r["apcer"] == 0.0 and r["bpcer"] == 0.0
    same = detection_report([0.4, 0.6], [0.4, 0.6])
    assert same["d_eer"] == pytest.approx(0.5)


def _unit(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)], dtype=np.float32)


def test_vulnerability_counts_and_rates() -> None:
    # A at 0°, B at 40°, the morph half way (20°); probes near their own person; cos 20° = 0.94
    emb = {
        "m": _unit(20), "a": _unit(0), "b": _unit(40), "a2": _unit(2), "b2": _unit(38),
        "m_noface": None, "c": _unit(90), "c2": None,
    }  # fmt: skip
    entries = [
        MorphEntry("m", ("a", "b"), (("a2",), ("b2",))),
        MorphEntry("m_noface", ("a", "b"), (("a2",), ("b2",))),
        MorphEntry("m", ("a", "c"), (("a2",), ("c2",))),  # c's only probe has no face
    ]

    def embed(paths):
        return {p: emb[p] for p in paths}

    rep = vulnerability(entries, embed, {"loose": 0.9, "strict": 0.99})
    assert rep["n_morphs"] == 1
    assert rep["skipped"] == {"morph_no_face": 1, "contributor_no_probe": 1}
    loose, strict = rep["points"]
    assert loose["mmpmr"] == 1.0 and strict["mmpmr"] == 0.0  # cos 18° = 0.951
    assert loose["contributor_fnmr"] == 0.0  # cos 2° = 0.9994
    assert loose["zero_effort_fmr"] == 0.0  # a vs b2: cos 38° = 0.79
    assert loose["rmmr"] == pytest.approx(1.0)
    assert "| loose |" in markdown(rep)


def test_read_morph_list(tmp_path) -> None:
    for person, n in (("P", 2), ("Q", 1)):
        (tmp_path / person).mkdir()
        for i in range(n):
            (tmp_path / person / f"{person}_{i}.jpg").write_bytes(b"x")
    (tmp_path / "morphs.tsv").write_text("morph\ta\tb\nm.png\tP/P_0.jpg\tQ/Q_0.jpg\tflow\n")
    [e] = read_morph_list(tmp_path / "morphs.tsv")
    assert e.morph == str(tmp_path / "m.png")
    assert e.probes == ((str(tmp_path / "P" / "P_1.jpg"),), ())
    (tmp_path / "bad.tsv").write_text("m.png only\n")
    with pytest.raises(DataFormatError, match="bad.tsv:1"):
        read_morph_list(tmp_path / "bad.tsv")
