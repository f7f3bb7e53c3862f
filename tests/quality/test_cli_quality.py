"""``faceprint quality`` and ``faceprint eval run --quality`` on the shared photographs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceprint.cli import main
from faceprint.io import load_image

from ..conftest import data_path

#: the quick settings: components-only assessor, HOG detector (no slow MMOD pass on face-less images)
FAST = ["--assessor", "fiqa-fast", "--detector", "dlib-hog"]


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


def test_json_lines_one_per_face(capsys: pytest.CaptureFixture[str]) -> None:
    group = data_path("group_photos", "face_recognition_two_people.jpg")
    code = main(["quality", str(lfw("Aaron_Peirsol", 1)), str(group), "--json", *FAST])
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and len(out) == 3
    assert [o["face"] for o in out] == [0, 0, 1] and out[0]["source"].endswith("Aaron_Peirsol_0001.jpg")
    for o in out:
        assert {"source", "bbox", "quality", "components"} <= set(o) and len(o["bbox"]) == 4
        assert 0 <= o["quality"] <= 100 and {"value", "quality"} == set(o["components"]["sharpness"])


def test_table_explains_what_pulls_the_score_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = cv2.GaussianBlur(load_image(lfw("Aaron_Peirsol", 1)), (0, 0), 3.5)
    dark = (255 * (img / 255.0) ** 3.5).astype(np.uint8)
    Image.fromarray(dark).save(tmp_path / "dark_blurred.png")
    Image.fromarray(load_image(lfw("Bill_Gates", 4))).save(tmp_path / "turned.png")  # yaw about 38°
    code = main(["quality", str(tmp_path), "--explain", *FAST])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0].startswith("image\tface")
    row = {line.split("\t")[0].rsplit("/", 1)[-1]: line.split("\t") for line in lines[1:]}
    assert "blurred" in row["dark_blurred.png"][-1] and "underexposed" in row["dark_blurred.png"][-1]
    assert "yaw" in row["turned.png"][-1]
    assert float(row["dark_blurred.png"][3]) < float(row["turned.png"][3])


def test_exit_codes_as_for_detect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noface = main(["quality", str(data_path("non_faces", "skimage_coffee.png")), *FAST])
    err = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert noface == 4 and err["error"] == "NoFaceError"
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    assert main(["quality", str(tiny), "--json", *FAST]) == 4
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "no_face"  # --json: the failure on stdout too
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code = main(["quality", str(empty), str(lfw("Aaron_Peirsol", 1)), "--json", *FAST])
    cap = capsys.readouterr()
    assert code == 3 and len(cap.out.splitlines()) == 1 and "EmptyImageError" in cap.err


@pytest.mark.slow
def test_a_user_error_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "faceprint", "quality", str(tmp_path / "missing.jpg")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 3 and "Traceback" not in r.stderr and "missing.jpg" in r.stderr


@pytest.mark.slow
def test_eval_run_with_quality_adds_an_edc_section(tmp_path: Path) -> None:
    root = data_path("lfw_view1")
    pairs = [x.split("\t") for x in (root / "pairsDevTest.txt").read_text().splitlines()[1:]]
    rows = ["image_a,image_b,mated"]
    for p in pairs[:30] + pairs[500:530]:
        if len(p) == 3:
            rows.append(f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg,{p[0]}/{p[0]}_{int(p[2]):04d}.jpg,1")
        else:
            rows.append(f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg,{p[2]}/{p[2]}_{int(p[3]):04d}.jpg,0")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "rep"
    args = ["eval", "run", "--protocol", "csv", "--data", str(root), "--pairs", str(csv), "-o", str(out)]
    code = main(
        [*args, "--no-cache", "--workers", "1", "--bootstrap", "0", "--quality", "--quality-assessor", "fiqa-fast"]
    )
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    q = m["quality"]
    assert q["pair_quality"] == "min" and q["n_mated"] + q["excluded_mated"] == 30
    names = [c["name"] for c in q["curves"]]
    assert names[0] == "unified" and "sharpness" in names and names[-1] == "ideal"
    assert (out / "edc.png").stat().st_size > 5000
    assert "Quality: error versus discard" in (out / "report.md").read_text()
    assert m["provenance"]["quality"]["assessor"] == "fiqa-fast"
