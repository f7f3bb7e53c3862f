"""Score files: CSV and Bob's 4/5-column text, round trips and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import DataFormatError
from faceprint.evaluation.protocols import ImageRef, VerificationProtocol
from faceprint.evaluation.scorefiles import ScoreTable, read_scores, write_scores


def table(**extra: object) -> ScoreTable:
    return ScoreTable(
        probe=np.array(["a/2.jpg", "b/1.jpg", "c/7.jpg"]),
        reference=np.array(["a/1.jpg", "a/1.jpg", "b/1.jpg"]),
        score=np.array([0.8123456789012345, -0.1, 1 / 3]),
        mated=np.array([True, False, False]),
        **extra,  # type: ignore[arg-type]
    )


def test_csv_round_trip_is_exact_with_optional_columns(tmp_path: Path) -> None:
    t = table(
        probe_subject=np.array(["a", "b", "c"]),
        reference_subject=np.array(["a", "a", "b"]),
        group=np.array(["F", "F|M", "M"]),
    )
    f = write_scores(tmp_path / "scores.csv", t)
    assert f.read_text().splitlines()[0] == "probe,reference,score,mated,probe_subject,reference_subject,group"
    r = read_scores(f)
    np.testing.assert_array_equal(r.score, t.score)  # bit-exact
    for c in ("probe", "reference", "mated", "probe_subject", "reference_subject", "group"):
        np.testing.assert_array_equal(getattr(r, c), getattr(t, c))
    plain = read_scores(write_scores(tmp_path / "plain.csv", table()))
    assert plain.group is None and plain.probe_subject is None
    np.testing.assert_array_equal(plain.genuine, [0.8123456789012345])


@pytest.mark.parametrize("fmt", ["4col", "5col"])
def test_bob_text_round_trip(tmp_path: Path, fmt: str) -> None:
    t = table(probe_subject=np.array(["a", "b", "c"]), reference_subject=np.array(["a", "a", "b"]))
    f = write_scores(tmp_path / "scores.txt", t, format=fmt)  # type: ignore[arg-type]
    first = f.read_text().splitlines()[0].split()
    assert first == (
        ["a", "a", "a/2.jpg", repr(0.8123456789012345)]
        if fmt == "4col"
        else ["a", "a/1.jpg", "a", "a/2.jpg", repr(0.8123456789012345)]
    )
    r = read_scores(f)  # 4 or 5 columns told apart from the first line
    np.testing.assert_array_equal(r.score, t.score)
    np.testing.assert_array_equal(r.mated, t.mated)
    np.testing.assert_array_equal(r.probe, t.probe)
    np.testing.assert_array_equal(r.probe_subject, t.probe_subject)
    np.testing.assert_array_equal(r.reference_subject, t.reference_subject)
    if fmt == "5col":
        np.testing.assert_array_equal(r.reference, t.reference)


def test_bob_without_subjects_keeps_mated_through_ids(tmp_path: Path) -> None:
    r = read_scores(write_scores(tmp_path / "s.txt", table()))
    np.testing.assert_array_equal(r.mated, [True, False, False])
    np.testing.assert_array_equal(r.probe, table().probe)


def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("probe,reference,score,mated\na,b,0.5,1\na,c,high,0\n")
    with pytest.raises(DataFormatError, match=r"s.csv:3: score 'high' is not a number"):
        read_scores(f)
    f.write_text("probe,reference,score,mated\na,b,0.5,1\n\na,c,0.1,2\n")
    with pytest.raises(DataFormatError, match=r"s.csv:4: mated must be"):
        read_scores(f)
    f.write_text("probe,reference,score\n")
    with pytest.raises(DataFormatError, match=r"s.csv:1: header lacks mated"):
        read_scores(f)
    f.write_text("probe,reference,score,mated\na,b,0.5\n")
    with pytest.raises(DataFormatError, match=r"s.csv:2: expected 4 fields"):
        read_scores(f)
    g = tmp_path / "s.txt"
    g.write_text("x x p1 0.5\nx y p2 0.1 extra\n")
    with pytest.raises(DataFormatError, match=r"s.txt:2: expected 4"):
        read_scores(g)
    g.write_text("x p1 0.5\n")
    with pytest.raises(DataFormatError, match=r"s.txt:1: a Bob score file has 4 columns"):
        read_scores(g)
    g.write_text("x x p1 inf\n")
    with pytest.raises(DataFormatError, match=r"s.txt:1: .*infinite"):
        read_scores(g)


def test_nan_scores_refused_unless_allowed(tmp_path: Path) -> None:
    t = ScoreTable(np.array(["p", "q"]), np.array(["r", "r"]), np.array([0.3, np.nan]), np.array([True, False]))
    with pytest.raises(DataFormatError, match="row 1 .* is NaN"):
        write_scores(tmp_path / "n.csv", t)
    f = write_scores(tmp_path / "n.csv", t, allow_nan=True)
    with pytest.raises(DataFormatError, match=r"n.csv:3: score is NaN"):
        read_scores(f)
    r = read_scores(f, allow_nan=True)
    assert np.isnan(r.score[1]) and len(r.dropna()) == 1
    write_scores(tmp_path / "ok.txt", t.dropna())


def test_bob_refuses_whitespace_and_inconsistent_subjects(tmp_path: Path) -> None:
    t = ScoreTable(np.array(["my photo.jpg"]), np.array(["r"]), np.array([0.3]), np.array([True]))
    with pytest.raises(DataFormatError, match="whitespace"):
        write_scores(tmp_path / "w.txt", t)
    bad = table(probe_subject=np.array(["a", "a", "c"]), reference_subject=np.array(["a", "a", "b"]))
    with pytest.raises(DataFormatError, match="row 1: mated=False"):
        write_scores(tmp_path / "b.txt", bad)


def test_from_protocol_uses_keys_and_subjects() -> None:
    ims = [ImageRef("a/1.jpg", data=b"1", subject="a"), ImageRef("b/1.jpg", data=b"2", subject="b")]
    p = VerificationProtocol(
        "p", ims, np.array([0]), np.array([1]), np.array([False]), subject_a=["a"], subject_b=["b"]
    )
    t = ScoreTable.from_protocol(p, [0.25])
    assert (t.probe[0], t.reference[0], t.probe_subject[0], t.reference_subject[0]) == ("b/1.jpg", "a/1.jpg", "b", "a")
