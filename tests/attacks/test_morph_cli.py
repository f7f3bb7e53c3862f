"""`faceprint morph` as a user runs it (in process): make, batch, pairs, eval, and its usage errors."""

from __future__ import annotations

import json

import cv2
import pytest

from faceprint.cli import main
from tests.conftest import data_path

A = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
B = ("lfw_view1", "Adam_Scott", "Adam_Scott_0001.jpg")
PEOPLE = ("Aaron_Sorkin", "Adam_Scott", "Abdullah_Gul", "Al_Gore")

#: the CLI files are in the slow set (tests/conftest.py): each command builds its models
pytestmark = pytest.mark.slow


def test_morph_a_b_writes_the_morph(tmp_path, capsys) -> None:
    out = tmp_path / "m.png"
    assert main(["morph", str(data_path(*A)), str(data_path(*B)), "-o", str(out), "--select", "central", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["method"] == "flow" and doc["alpha"] == 0.5 and (doc["width"], doc["height"]) == (256, 256)
    assert cv2.imread(str(out)).shape == (256, 256, 3)


def test_sheet_shows_both_contributors_with_scores(tmp_path, capsys) -> None:
    sheet = tmp_path / "sheet.png"
    args = ["morph", str(data_path(*A)), str(data_path(*B)), "-o", str(tmp_path / "m.png"), "--select", "central"]
    assert main([*args, "--sheet", str(sheet), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert 0.5 < scores["a"] <= 1.0 and 0.5 < scores["b"] <= 1.0 and scores["operating_point"] == "fmr=0.001"
    h, w = cv2.imread(str(sheet)).shape[:2]
    assert w == 3 * 256 and h > 256


def test_passport_post_processing_size(tmp_path) -> None:
    out = tmp_path / "m.png"
    assert main(["morph", str(data_path(*A)), str(data_path(*B)), "-o", str(out), "--passport", "--jpeg", "80"]) == 0
    assert cv2.imread(str(out)).shape == (531, 413, 3)


@pytest.mark.parametrize("alpha", ["1.5", "-0.2"])
def test_alpha_outside_0_1_is_a_usage_error(tmp_path, alpha: str) -> None:
    assert main(["morph", str(data_path(*A)), str(data_path(*B)), "-o", str(tmp_path / "m.png"), "--alpha", alpha]) == 2
    assert not (tmp_path / "m.png").exists()


def test_no_face_exit_code_names_the_image(tmp_path, capsys) -> None:
    cat = next(p for p in sorted(data_path("non_faces").iterdir()) if p.is_file())
    assert main(["morph", str(cat), str(data_path(*B)), "-o", str(tmp_path / "m.png")]) == 4
    assert cat.name in capsys.readouterr().err


def test_landmarks_without_licence_opt_in_is_refused(tmp_path, capsys) -> None:
    rc = main(["morph", str(data_path(*A)), str(data_path(*B)), "-o", str(tmp_path / "m.png"), "--method", "landmarks"])
    assert rc == 2
    assert "commercial" in capsys.readouterr().err


def test_pairs_batch_eval(tmp_path, capsys) -> None:
    lfw = data_path("lfw_view1")
    data = tmp_path / "people"
    data.mkdir()
    for p in PEOPLE:
        (data / p).symlink_to(lfw / p, target_is_directory=True)
    pairs = tmp_path / "pairs.tsv"
    assert (
        main(
            ["morph", "pairs", str(data), "--strategy", "lookalike", "-n", "2", "-o", str(pairs), "--select", "central"]
        )
        == 0
    )
    lines = pairs.read_text().splitlines()
    assert lines[0] == "a\tb\tsimilarity" and len(lines) == 3
    firsts = {line.split("\t")[0].split("/")[-2] for line in lines[1:]} | {
        line.split("\t")[1].split("/")[-2] for line in lines[1:]
    }
    assert firsts == set(PEOPLE)  # each person once
    out = tmp_path / "morphs"
    assert main(["morph", "--pairs", str(pairs), "-o", str(out), "--select", "central"]) == 0
    listed = (out / "morphs.tsv").read_text().splitlines()
    assert len(listed) == 3 and all((out / row.split("\t")[0]).is_file() for row in listed[1:])
    capsys.readouterr()
    assert main(["morph", "eval", str(out / "morphs.tsv"), "--select", "central", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_morphs"] == 2 and rep["skipped"] == {"morph_no_face": 0, "contributor_no_probe": 0}
    assert {p["operating_point"] for p in rep["points"]} >= {"fmr=0.001", "fmr=0.0001"}
    for p in rep["points"]:
        assert 0.0 <= p["prodavg_mmpmr"] <= 1.0 and p["mmpmr"] <= p["prodavg_mmpmr"] + 1e-12
