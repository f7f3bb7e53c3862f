"""``faceprint protect eval``: refuses to run without a secret; on real LFW faces prints the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceprint.cli.app import main

from ..conftest import data_path

PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Adam_Sandler", "Abel_Pacheco"]


def test_it_refuses_to_run_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FACEPRINT_PROTECT_SECRET", raising=False)
    args = ["protect", "eval", "--protocol", "folder", "--data", str(tmp_path), "--method", "iom"]
    assert main(args) == 6
    assert "no protection secret" in capsys.readouterr().err
    assert main([*args, "--secret-file", str(tmp_path / "missing")]) == 6
    assert "cannot read the secret file" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_text("abc\n")
    assert main([*args, "--secret-file", str(short)]) == 6
    assert "at least 12" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_on_a_folder_of_lfw_faces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "people"
    for person in PEOPLE:
        shutil.copytree(data_path("lfw_view1", person), data / person)
    monkeypatch.setenv("FACEPRINT_PROTECT_SECRET", "a test secret of enough length")
    out = tmp_path / "r.json"
    args = ["protect", "eval", "--protocol", "folder", "--data", str(data), "--method", "biohash", "-o", str(out)]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert doc == json.loads(out.read_text())
    assert set(doc["accuracy"]) == {"own_key", "stolen_key", "unprotected"}
    assert doc["pairs"]["mated"] > 0 and doc["pairs"]["non_mated"] > 0
    assert doc["scheme"] == "biohash@1(bits=128)" and doc["model"].startswith("dlib-resnet")
    assert 0 <= doc["unlinkability"]["d_sys"] <= 1 and 0 <= doc["unlinkability"]["noise_floor"] <= 1
    assert doc["revocability"]["renewed_match_rate"] == 0.0  # the same image under a new key is a stranger
    assert main([*args, "--report", str(tmp_path / "rep")]) == 0
    text = capsys.readouterr().out
    assert "| own key |" in text and "D<->sys" in text and "Revocability" in text
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        "protection.md",
        "protection.html",
        "protection.json",
        "linkability.png",
    }
