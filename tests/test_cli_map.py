"""``faceprint map fit|info|screen`` and ``faceprint gallery migrate --map`` from the command line."""

from __future__ import annotations

import json

import pytest

from faceprint.cli import main

from .conftest import data_path

pytestmark = pytest.mark.slow  # fits on real photos with two pipelines


def test_fit_info_screen_and_migrate(tmp_path, capsys) -> None:
    faces = data_path("faces_small")
    out = tmp_path / "map.npz"
    # dlib's ONNX backend and dlib's own code: two backends of one model (the map is close to identity)
    args = [
        "map",
        "fit",
        "--from",
        "dlib-resnet-onnx",
        "--to",
        "dlib-resnet-onnx",
        "--data",
        str(faces),
        "-o",
        str(out),
    ]
    assert main([*args, "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["faces"] >= 15 and fitted["source"] == fitted["target"]
    assert main(["map", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backends"] == {
        "source": "dlib-resnet-onnx",
        "target": "dlib-resnet-onnx",
    }
    code = main(["map", "screen", str(out), str(faces / "obama"), "--quantile", "0.99", "--factor", "3", "--json"])
    screened = json.loads(capsys.readouterr().out)
    assert code == 0 and len(screened["results"]) == 6 and not any(r["flagged"] for r in screened["results"])

    g = tmp_path / "g"
    assert main(["gallery", "create", str(g)]) == 0
    assert main(["gallery", "enroll", str(g), "obama", str(faces / "obama" / "obama.jpg")]) == 0
    capsys.readouterr()
    # a map fitted for other models is refused by model id, with one line and exit 6; nothing changes
    other = tmp_path / "other.npz"
    from faceprint.mapping import load_map

    m = load_map(out)
    from dataclasses import replace

    replace(m, source="facenet-20180408@x", target="dlib-resnet-v1@x").save(other)
    code = main(["gallery", "migrate", str(g), "--embedder", "dlib-resnet-onnx", "--map", str(other), "--json"])
    err = json.loads(capsys.readouterr().out)["error"]
    assert code == 6 and "fitted from 'facenet-20180408@x'" in err["message"]
    assert main(["gallery", "migrate", str(g), "--embedder", "dlib-resnet-onnx", "--map", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["applied"] and rep["migrated"] == 1


def test_bad_map_input_is_refused(tmp_path, capsys) -> None:
    assert main(["map", "info", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    assert main(["map", "info", str(junk), "--json"]) == 2
    assert "not a faceprint embedding map" in json.loads(capsys.readouterr().out)["error"]["message"]
    args = ["map", "fit", "--from", "dlib-resnet-onnx", "--to", "dlib-resnet-onnx", "--data", str(tmp_path)]
    assert main([*args, "-o", str(tmp_path / "m.txt")]) == 2
