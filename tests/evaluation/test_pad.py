"""ISO/IEC 30107-3 metrics against hand-computed examples, and Bob's PAD score files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, DataFormatError
from faceprint.evaluation.pad import (
    Presentations,
    apcer,
    apcer_at_bpcer,
    bpcer,
    bpcer_at_apcer,
    d_eer,
    iapmr,
    iapmr_similarities,
    integrated_iapmr,
    non_response_rate,
    pad_name,
    pad_report,
    rates_at,
    read_bob_pad_scores,
    threshold_at_apcer,
    threshold_at_bpcer,
    write_bob_pad_scores,
)
from faceprint.rates import clopper_pearson

# attack scores: higher = attack; attack when score >= threshold
BONA = [0.1, 0.2, 0.3, 0.6]
PRINT = [0.9, 0.8, 0.4, 0.7]
REPLAY = [0.45, 0.2, 0.95, 0.85]


def test_apcer_per_species_their_maximum_and_bpcer_at_a_threshold() -> None:
    p = rates_at(BONA, {"print": PRINT, "replay": REPLAY}, 0.5, confidence=None)
    assert p.apcer["print"].rate == 0.25  # 0.4 < 0.5
    assert p.apcer["replay"].rate == 0.5  # 0.45 and 0.2 < 0.5
    assert p.apcer_max == 0.5 and p.worst_species == "replay"
    assert p.bpcer is not None and p.bpcer.rate == 0.25  # 0.6 >= 0.5
    assert (p.bpcer.errors, p.bpcer.n) == (1, 4)
    assert apcer(PRINT, 0.5) == 0.25 and bpcer(BONA, 0.5) == 0.25
    # a score equal to the threshold is an attack
    assert apcer([0.5], 0.5) == 0.0 and bpcer([0.5], 0.5) == 1.0


def test_intervals_are_clopper_pearson() -> None:
    p = rates_at(BONA, {"print": PRINT}, 0.5, confidence=0.9)
    assert p.apcer["print"].ci == pytest.approx(clopper_pearson(1, 4, 0.9))


def test_threshold_at_apcer_is_the_highest_where_every_species_meets_the_target() -> None:
    # k = floor(0.25 * 4) = 1 score may lie below: print -> 0.7, replay -> 0.45; the minimum is 0.45
    t = threshold_at_apcer({"print": PRINT, "replay": REPLAY}, 0.25)
    assert t == 0.45
    p = rates_at(BONA, {"print": PRINT, "replay": REPLAY}, t, confidence=None)
    assert p.apcer_max == 0.25 and p.bpcer is not None and p.bpcer.rate == 0.25
    assert apcer(REPLAY, np.nextafter(t, 1)) == 0.5  # any higher threshold breaks the target


def test_bpcer_at_apcer_names_and_values() -> None:
    assert [pad_name("BPCER", t) for t in (0.05, 0.10, 0.20)] == ["BPCER20", "BPCER10", "BPCER5"]
    assert pad_name("APCER", 0.01) == "APCER100"
    tile = lambda x: np.repeat(x, 3)  # noqa: E731 - 12 presentations each: enough for 25 % (rule of three)
    p = bpcer_at_apcer(tile(BONA), {"print": tile(PRINT), "replay": tile(REPLAY)}, 0.25)
    assert p.name == "BPCER4" and p.reason is None
    assert p.threshold == 0.45 and p.apcer_max == 0.25
    assert p.bpcer is not None and p.bpcer.rate == 0.25


def test_too_few_presentations_give_a_reason_not_a_number() -> None:
    p = bpcer_at_apcer(BONA, {"print": PRINT}, 0.05)
    assert p.bpcer is None and p.threshold is None
    assert "rule of three" in (p.reason or "") and "60" in (p.reason or "")
    q = apcer_at_bpcer(BONA, {"print": PRINT}, 0.05)
    assert q.bpcer is None and "bona fide" in (q.reason or "")


def test_apcer_at_bpcer() -> None:
    b = np.repeat(BONA, 3)
    t = threshold_at_bpcer(b, 0.25)  # 3 of 12 may reach it: just above 0.3
    assert 0.3 < t < 0.30001
    p = apcer_at_bpcer(b, {"print": np.repeat(PRINT, 3), "replay": np.repeat(REPLAY, 3)}, 0.25)
    assert p.name == "APCER4" and p.bpcer is not None and p.bpcer.rate == 0.25
    assert p.apcer["print"].rate == 0.0 and p.apcer["replay"].rate == 0.25  # only 0.2 lies below


def test_d_eer() -> None:
    # at thresholds in (0.35, 0.4]: APCER 1/4 (0.35), BPCER 1/4 (0.4)
    e = d_eer([0.1, 0.2, 0.3, 0.4], [0.35, 0.5, 0.6, 0.7])
    assert e.eer == pytest.approx(0.25)
    assert 0.35 <= e.threshold <= 0.4
    assert d_eer([0.1, 0.2], [0.8, 0.9]).eer == 0.0


def test_non_response_rates_and_report_on_presentations() -> None:
    assert non_response_rate(2, 10) == 0.2
    with pytest.raises(ConfigurationError):
        non_response_rate(3, 2)
    bona = Presentations(["a/1", "a/2", "b/1", "b/2", "c/1"], list("aabbc"), np.array([0.1, np.nan, 0.2, 0.3, 0.6]))
    atk = Presentations(["a/1", "b/1", "c/1"], list("abc"), np.array([0.9, np.nan, 0.4]))
    r = pad_report(bona, {"print": atk}, detector="x", threshold=0.5, synthetic=["print"])
    assert r.bpnrr == 0.2 and r.apnrr("print") == pytest.approx(1 / 3)
    assert r.at_threshold.apcer["print"].n == 2 and r.at_threshold.apcer["print"].rate == 0.5
    assert r.at_threshold.bpcer is not None and r.at_threshold.bpcer.rate == 0.25
    d = r.to_dict()
    assert d["label"] == "synthetic attacks" and d["synthetic_species"] == ["print"]
    with pytest.raises(ConfigurationError, match="no print attack"):
        pad_report(bona, {"print": Presentations(["x"], ["x"], np.array([np.nan]))}, detector="x", threshold=0.5)


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


def test_iapmr_compares_each_attack_with_another_image_of_its_subject() -> None:
    assert iapmr([0.95, 0.5, 0.93, 0.1], 0.9).rate == 0.5
    e = {"A1": _unit([1, 0]), "A2": _unit([1, 0.1]), "B1": _unit([0, 1])}
    bona = Presentations(
        ["A/A_1.jpg", "A/A_2.jpg", "B/B_1.jpg"],
        ["A", "A", "B"],
        np.array([0.1, 0.1, 0.1]),
        np.stack([e["A1"], e["A2"], e["B1"]]),
    )
    # attacks made from A_1 (compared with A_2) and from B_1 (B has no other image: left out)
    atk = Presentations(["A/A_1.jpg", "B/B_1.jpg"], ["A", "B"], np.array([0.2, 0.9]), np.stack([e["A1"], e["B1"]]))
    sims, rows = iapmr_similarities(bona, atk)
    assert rows.tolist() == [0]
    assert sims[0] == pytest.approx(float(np.dot(e["A1"], e["A2"])))
    out = integrated_iapmr(bona, {"print": atk}, threshold=0.9, pad_threshold=0.5, verifier="v", operating_point="p")
    s = out["species"]["print"]
    assert s["n"] == 1 and s["iapmr"]["rate"] == 1.0 and s["iapmr_with_pad"]["rate"] == 1.0  # 0.2 < 0.5: not flagged
    out = integrated_iapmr(bona, {"print": atk}, threshold=0.9, pad_threshold=0.1, verifier="v", operating_point="p")
    assert out["species"]["print"]["iapmr_with_pad"]["rate"] == 0.0


def test_bob_pad_score_file_round_trip(tmp_path: Path) -> None:
    bona = Presentations(["A/A_1.jpg", "B/B_1.jpg", "B/B_2.jpg"], ["A", "B", "B"], np.array([0.125, np.nan, 0.3]))
    atk = {
        "print": Presentations(["A/A_1.jpg"], ["A"], np.array([0.875])),
        "replay": Presentations(["B/B_2.jpg"], ["B"], np.array([0.25])),
    }
    path = write_bob_pad_scores(tmp_path / "scores.txt", bona, atk)
    lines = path.read_text().splitlines()
    # Bob: bona fide claimed_id == real_id; attacks carry the species in real_id; higher = bona fide
    assert lines[0] == "A A A/A_1.jpg 0.875"
    assert "A print A/A_1.jpg 0.125" in lines
    assert len(lines) == 4  # the non-response is left out
    b2, a2 = read_bob_pad_scores(path)
    assert b2.keys == ["A/A_1.jpg", "B/B_2.jpg"] and b2.scores == pytest.approx([0.125, 0.3])
    assert sorted(a2) == ["print", "replay"] and a2["replay"].scores == pytest.approx([0.25])
    assert a2["print"].subjects == ["A"]


def test_bob_pad_score_files_refuse_bad_input(tmp_path: Path) -> None:
    bad = Presentations(["a b.jpg"], ["A"], np.array([0.5]))
    with pytest.raises(DataFormatError, match="whitespace"):
        write_bob_pad_scores(tmp_path / "s.txt", bad, {})
    (tmp_path / "t.txt").write_text("A A x\n")
    with pytest.raises(DataFormatError, match="t.txt:1"):
        read_bob_pad_scores(tmp_path / "t.txt")
    (tmp_path / "u.txt").write_text("A A x high\n")
    with pytest.raises(DataFormatError, match="not a number"):
        read_bob_pad_scores(tmp_path / "u.txt")


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        apcer([], 0.5)
    with pytest.raises(ConfigurationError):
        bpcer([np.nan], 0.5)
    with pytest.raises(ConfigurationError):
        threshold_at_apcer({"print": PRINT}, 1.5)
    with pytest.raises(ConfigurationError):
        rates_at(BONA, {}, 0.5)
