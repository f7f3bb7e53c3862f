"""``faceprint gallery …`` as a user runs it (in-process through ``main`` for exit codes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceprint.cli import main
from faceprint.cli.gallery import app as gallery_app

from ..conftest import data_path


def test_every_gallery_command_has_help_text() -> None:
    names = {c.name for c in gallery_app.registered_commands}
    assert {"create", "enroll", "identify", "verify", "remove", "list", "stats", "export", "import", "migrate"} <= names
    for c in gallery_app.registered_commands:
        assert c.callback is not None and (c.callback.__doc__ or "").strip(), c.name


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


@pytest.mark.slow
def test_gallery_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    people = tmp_path / "people"
    for who, files in {"obama": ["obama.jpg", "obama2.jpg"], "biden": ["biden.jpg"]}.items():
        (people / who).mkdir(parents=True)
        for f in files:
            shutil.copy(data_path("faces_small", who, f), people / who / f)
    g = str(tmp_path / "g")
    probe = str(data_path("faces_small", "obama", "obama3.jpg"))
    stranger = str(data_path("faces_small", "rose_leslie", "rose_img1.jpg"))

    assert main(["gallery", "create", g, "--json"]) == 0
    assert lines(capsys.readouterr().out)[0]["model"].startswith("dlib-resnet-v1@")
    assert main(["gallery", "create", g]) == 6  # exists already
    assert "already exists" in capsys.readouterr().err

    assert main(["gallery", "enroll", g, "--folders", str(people), "--json"]) == 0
    assert lines(capsys.readouterr().out)[0]["templates"] == 3
    assert main(["gallery", "enroll", g, "rose", str(data_path("faces_small", "rose_leslie", "rose_img2.jpg"))]) == 0
    capsys.readouterr()

    assert main(["gallery", "identify", g, probe, "--closed-set", "-k", "2", "--json"]) == 0
    out = lines(capsys.readouterr().out)[0]
    assert out["candidates"][0]["subject"] == "obama" and len(out["candidates"]) == 2
    assert main(["gallery", "identify", g, probe, "--threshold", "0.9999"]) == 1  # open set: nobody that close
    assert "not enrolled" in capsys.readouterr().out

    assert main(["gallery", "verify", g, probe, "obama", "--json"]) == 0
    assert lines(capsys.readouterr().out)[0]["match"] is True
    assert main(["gallery", "verify", g, stranger, "biden"]) == 1
    assert main(["gallery", "verify", g, probe, "nobody"]) == 6
    assert "nobody" in capsys.readouterr().err

    nonmated = tmp_path / "others"
    nonmated.mkdir()
    for who in ("kit_harington", "alex_lacamoire", "lin_manuel_miranda"):
        for f in data_path("faces_small", who).iterdir():
            shutil.copy(f, nonmated / f.name)
    assert main(["gallery", "calibrate", g, str(nonmated), "--fpir", "0.2", "--json"]) == 0
    cal = lines(capsys.readouterr().out)[0]
    assert cal["fpir"] == 0.2 and cal["n_nonmated"] >= 5

    assert main(["gallery", "list", g, "--json"]) == 0
    listed = lines(capsys.readouterr().out)
    assert [s["name"] for s in listed] == ["biden", "obama", "rose"] and listed[1]["templates"] == 2
    assert main(["gallery", "stats", g, "--json"]) == 0
    st = lines(capsys.readouterr().out)[0]
    assert st["subjects"] == 3 and st["templates"] == 4 and st["calibration"]["fpir"] == 0.2

    exp = tmp_path / "g.npz"
    assert main(["gallery", "export", g, str(exp), "--json"]) == 0 and exp.is_file()
    g2 = str(tmp_path / "copy.db")  # into milvus-lite
    assert main(["gallery", "import", g2, str(exp), "--json"]) == 0
    assert lines(capsys.readouterr().out)[-1]["templates"] == 4
    assert main(["gallery", "identify", g2, probe, "--closed-set", "-k", "1", "--json"]) == 0
    assert lines(capsys.readouterr().out)[0]["candidates"][0]["subject"] == "obama"

    assert main(["gallery", "remove", g, "rose", "--json"]) == 0
    assert lines(capsys.readouterr().out)[0]["removed"] == {"rose": 1}
    assert main(["gallery", "rename", g, "biden", "joe"]) == 0
    capsys.readouterr()

    # the gallery keeps no source images: migrate lists every template and changes nothing
    assert main(["gallery", "migrate", g, "--embedder", "dlib-resnet-onnx", "--json"]) == 6
    rep = lines(capsys.readouterr().out)[0]
    assert rep["applied"] is False and len(rep["missing"]) == 3
    assert {m["subject"] for m in rep["missing"]} == {"joe", "obama"}

    assert main(["gallery", "stats", str(tmp_path / "nothing-here")]) == 6
    assert "no gallery" in capsys.readouterr().err
