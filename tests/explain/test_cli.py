"""``faceprint explain`` as a user runs it: the figure, --json, and specific errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceprint.cli import main

from ..conftest import data_path
from .conftest import lfw


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_figure_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = lfw("Aaron_Peirsol", 1), lfw("Aaron_Peirsol", 2)
    out = tmp_path / "out.png"
    code = main(["explain", str(a), str(b), "-o", str(out), "--json", "--map-size", "15"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["figure"] == str(out)
    assert doc["match"] is True and doc["explanation"]["method"] == "occlusion"
    assert np.array(doc["explanation"]["map_a"]).shape == (15, 15) and doc["explanation"]["chip_size"] == 150
    assert doc["face_a"]["landmarks"] and "not why a person is who they are" in doc["limits"]
    from PIL import Image

    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > img.size[1] > 300

    # xcos, full-resolution maps, no figure; the same score; the default command spelled out
    code = main(["explain", "pair", str(a), str(b), "--method", "xcos", "--json"])
    x = json.loads(capsys.readouterr().out)
    assert code == 0 and x["figure"] is None and x["score"] == pytest.approx(doc["score"], abs=1e-6)
    ex = x["explanation"]
    assert np.array(ex["map_a"]).shape == (150, 150) and ex["reconstructed_score"] is not None
    assert len(ex["correspondences"]) == 8 and set(ex["grids"]) == {"patch_cosine", "attention", "contribution"}


@pytest.mark.slow
def test_errors_are_specific_and_json(tmp_path: Path) -> None:
    a = lfw("Aaron_Peirsol", 1)
    noface = run("explain", str(a), str(data_path("non_faces", "skimage_coffee.png")), "--json")
    assert noface.returncode == 4 and "Traceback" not in noface.stderr
    assert json.loads(noface.stdout)["error"]["code"] == "no_face"
    same = run("explain", str(a), str(a), "-o", str(tmp_path / "x.png"), "--json")
    assert same.returncode == 6 and json.loads(same.stdout)["error"]["code"] == "identical_images"
    assert not (tmp_path / "x.png").exists()  # nothing written on failure
    neither = run("explain", str(a), str(lfw("Aaron_Peirsol", 2)))
    assert neither.returncode == 2 and "-o out.png, --json" in neither.stderr
    folder = run("explain", str(a), str(lfw("Aaron_Peirsol", 2)), "-o", str(tmp_path), "--json")
    assert folder.returncode == 2 and json.loads(folder.stdout)["error"]["code"] == "invalid_argument"
    method = run("explain", str(a), str(lfw("Aaron_Peirsol", 2)), "--method", "gradcam", "--json")
    assert method.returncode == 2 and json.loads(method.stdout)["error"]["code"] == "usage_error"


@pytest.mark.slow
def test_explain_eval_on_lfw(tmp_path: Path) -> None:
    data = data_path("lfw_view1")
    out = tmp_path / "faith.json"
    r = run(
        "explain", "eval", "--protocol", "lfw", "--data", str(data), "--mated", "2", "--nonmated", "2",
        "--sanity-pairs", "1", "--methods", "occlusion,xcos", "-o", str(out), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads(out.read_text())
    assert doc["protocol"] == "lfw-view1-devtest" and doc["skipped_pairs"] == 0
    kinds = [(s["method"], s["pairs"], s["n"]) for s in doc["summaries"]]
    assert kinds == [
        ("occlusion", "mated", 2),
        ("occlusion", "non-mated", 2),
        ("xcos", "mated", 2),
        ("xcos", "non-mated", 2),
    ]
    xm = doc["summaries"][2]
    assert xm["reconstruction_mae"] < 0.1 and xm["randomisation_pairs"] == 1
    bad = run("explain", "eval", "--protocol", "lfw", "--data", str(data), "--methods", "nope", "--json")
    assert bad.returncode == 2 and "unknown --methods" in json.loads(bad.stdout)["error"]["message"]
