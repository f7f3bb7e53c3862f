"""``faceprint pad``: the default command, JSON lines, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceprint.cli import main

from ..conftest import data_path, shared_model_path

FAST = ["--face-detector", "dlib-hog"]

pytestmark = pytest.mark.slow  # each test loads the detectors and models in-process (seconds)


@pytest.fixture(scope="module")
def models() -> Path:
    return shared_model_path("minifasnet", "2.7_80x80_MiniFASNetV2.pth").parents[1]


def test_pad_img_is_pad_score_img_and_scores_the_samples(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = shared_model_path("minifasnet", "samples")
    code = main(["pad", str(samples), "--model-dir", str(models), "--json", *FAST])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(lines) == 3
    verdicts = {Path(x["source"]).stem: x["is_attack"] for x in lines}
    assert verdicts == {"image_F1": True, "image_F2": True, "image_T1": False}
    assert all(x["kind"] == "presentation" and set(x["details"]) == {"v2", "v1se"} for x in lines)
    same = main(["pad", "score", str(samples / "image_T1.jpg"), "--model-dir", str(models), "--json", *FAST])
    assert same == 0 and json.loads(capsys.readouterr().out)["score"] == lines[2]["score"]


def test_fail_on_attack_and_mesonet(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = shared_model_path("mesonet", "samples")
    code = main(
        ["pad", str(samples), "--detector", "mesonet", "--model-dir", str(models), "--json", "--fail-on-attack", *FAST]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(lines) == 4
    assert {Path(x["source"]).name.startswith("df_") for x in lines if x["is_attack"]} == {True}
    assert (
        main(
            [
                "pad",
                str(samples / "real_real00240.jpg"),
                "--detector",
                "mesonet",
                "--model-dir",
                str(models),
                "--fail-on-attack",
                *FAST,
            ]
        )
        == 0
    )


def test_missing_models_exit_5_naming_the_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    face = data_path("lfw_view1", "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")
    code = main(["pad", str(face), "--model-dir", str(tmp_path), *FAST])
    err = capsys.readouterr().err
    assert code == 5 and str(tmp_path) in err and "Traceback" not in err


def test_unreadable_and_faceless_images(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["pad", str(bad), "--model-dir", str(models), *FAST]) == 3
    noface = data_path("non_faces", "skimage_coffee.png")
    assert main(["pad", str(noface), "--model-dir", str(models), *FAST]) == 4
    assert "Traceback" not in capsys.readouterr().err


def test_bad_variant_is_a_usage_error(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    face = data_path("lfw_view1", "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")
    assert main(["pad", str(face), "--model-dir", str(models), "--variant", "v9", *FAST]) == 2
