"""`faceprint verify/embed/detect` options added for accuracy and speed: --tta, --select, --min-face."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faceprint.cli.recognize import IMAGES_PER_WORKER, auto_workers
from faceprint.export import read_embeddings
from faceprint.models import manifest

from .conftest import data_path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceprint", *args], capture_output=True, text=True, timeout=300)


def test_verify_with_tta_and_central_face_decides_at_the_flip_operating_point() -> None:
    img = data_path("lfw_view1", "Colin_Farrell", "Colin_Farrell_0003.jpg")  # a larger face in a corner
    other = data_path("lfw_view1", "Colin_Farrell", "Colin_Farrell_0001.jpg")
    res = run("verify", str(img), str(other), "--tta", "flip", "--select", "central", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["match"] is True and out["model"].startswith("dlib-resnet-v1+flip@")
    assert out["threshold"] == round(manifest()["dlib-resnet-v1+flip"].operating_points["fmr=0.001"].threshold, 6)
    bad = run("verify", str(img), str(other), "--tta", "sideways")
    assert bad.returncode == 2 and "flip" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_embed_and_detect_take_min_face(tmp_path: Path) -> None:
    group = data_path("group_photos", "facenet_pytorch_multiface.jpg")
    out = tmp_path / "e.npz"
    res = run("embed", str(group), "-o", str(out), "--min-face", "120", "--tta", "flip", "--json")
    assert res.returncode == 0, res.stderr
    table = read_embeddings(out)
    assert table.model.startswith("dlib-resnet-v1+flip@") and 1 <= len(table) <= 6
    det = run("detect", str(group), "--min-face", "10")
    assert det.returncode == 0, det.stderr
    assert len(json.loads(det.stdout)["faces"]) >= len(table)
    bad = run("detect", str(group), "--min-face", "1")
    assert bad.returncode == 2 and "min_face" in bad.stderr and "Traceback" not in bad.stderr


def test_small_inputs_are_embedded_without_worker_processes() -> None:
    assert auto_workers(0, 8) == auto_workers(120, 8) == auto_workers(IMAGES_PER_WORKER * 2 - 1, 8) == 1
    assert auto_workers(1000, 2) == 2 and auto_workers(1000, 16) == 1000 // IMAGES_PER_WORKER
    assert auto_workers(10**6, 4) == 4
