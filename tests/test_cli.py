"""The CLI as a user runs it: a real subprocess for exit codes, in-process for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.cli import app, main
from faceprint.export import read_embeddings

from .conftest import data_path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=300)


def test_verify_exit_codes_distinguish_match_no_match_and_errors(tmp_path: Path) -> None:
    o = data_path("faces_small", "obama")
    same = run("verify", str(o / "obama.jpg"), str(o / "obama2.jpg"), "--json")
    assert same.returncode == 0, same.stderr
    out = json.loads(same.stdout)
    assert out["match"] is True and out["operating_point"] == "fmr=0.001" and out["model"].startswith("dlib-resnet-v1@")
    other = run("verify", str(o / "obama.jpg"), str(data_path("faces_small", "biden", "biden.jpg")))
    assert other.returncode == 1 and other.stdout.startswith("NO MATCH")
    junk = tmp_path / "junk.jpg"
    junk.write_text("hello")
    bad = run("verify", str(o / "obama.jpg"), str(junk))
    assert bad.returncode == 3 and "Traceback" not in bad.stderr and "junk.jpg" in bad.stderr
    noface = run("verify", str(o / "obama.jpg"), str(data_path("non_faces", "skimage_coffee.png")))
    assert noface.returncode == 4 and "no face" in noface.stderr and "Traceback" not in noface.stderr
    missing = run("verify", str(o / "obama.jpg"), str(tmp_path / "nope.jpg"))
    assert missing.returncode == 3 and "not found" in missing.stderr
    unknown = run("verify", str(o / "obama.jpg"), str(o / "obama2.jpg"), "--embedder", "nope")
    assert unknown.returncode == 5 and "dlib-resnet-onnx" in unknown.stderr


def test_detect_prints_json_lines_and_reports_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    code = main(["detect", str(data_path("group_photos", "face_recognition_two_people.jpg")), str(bad)])
    cap = capsys.readouterr()
    lines = [json.loads(x) for x in cap.out.splitlines()]
    assert len(lines) == 1 and len(lines[0]["faces"]) == 2
    assert len(lines[0]["faces"][0]["landmarks"]) == 5
    err = json.loads(cap.err.strip().splitlines()[-1])
    assert err["error"] == "EmptyImageError" and "empty.png" in err["image"]
    assert code == 3


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_embed_folder_writes_a_readable_file(tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = data_path("faces_small", "obama")
    out = tmp_path / f"emb{suffix}"
    code = main(["embed", str(folder), "-o", str(out), "--workers", "1", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    n_images = len(list(folder.iterdir()))
    assert summary["images"] == n_images and summary["faces"] >= n_images
    t = read_embeddings(out)
    assert len(t) == summary["faces"] and t.embeddings.shape == (len(t), 128)
    assert t.model.startswith("dlib-resnet-v1@")
    np.testing.assert_allclose(np.linalg.norm(t.embeddings, axis=1), 1.0, atol=1e-5)
    assert set(Path(p).parent for p in t.paths) == {folder}
    assert np.all(t.bboxes[:, 2] > t.bboxes[:, 0]) and t.landmarks.shape == (len(t), 5, 2)
    assert not list(tmp_path.glob(".faceprint-*"))  # no temporary file left behind


def test_embed_refuses_an_unknown_output_type_before_working(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["embed", str(data_path("faces_small", "biden")), "-o", str(tmp_path / "x.csv")])
    assert code == 2 and ".npz or .parquet" in capsys.readouterr().err


def test_models_list_shows_licences(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in out["models"]}
    assert by_name["dlib-68pt"]["commercial_use"] is False and not by_name["dlib-68pt"]["default"]
    assert by_name["dlib-resnet-v1"]["commercial_use"] is True
    assert "fmr=0.001" in by_name["dlib-resnet-v1"]["operating_points"]
    assert "dlib-hog-mmod" in out["detectors"] and "onnx-arcface" in out["embedders"]


def test_every_command_has_help_text() -> None:
    import typer.main

    cmd = typer.main.get_command(app)

    def walk(c, path):  # type: ignore[no-untyped-def]
        yield path, c
        for name, sub in getattr(c, "commands", {}).items():
            yield from walk(sub, [*path, name])

    for path, c in walk(cmd, []):
        assert (c.help or "").strip(), f"command {' '.join(path) or 'faceprint'} has no help"


def test_usage_errors_exit_2_without_a_traceback() -> None:
    missing = run("verify")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "image_a" in missing.stderr.lower()
    unknown = run("no-such-command")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
