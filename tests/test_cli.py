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


# --- hardening: every failure is one clear line, with its own exit code and a JSON object -------


def _json_commands() -> set[str]:
    """Every command that has a --json option, as 'group command'."""
    import typer.main

    found: set[str] = set()

    def walk(c, path):  # type: ignore[no-untyped-def]
        if any("--json" in getattr(p, "opts", []) for p in getattr(c, "params", [])):
            found.add(" ".join(path))
        for name, sub in getattr(c, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def _failing_json_calls(tmp: Path) -> dict[str, list[str]]:
    """One failing call per --json command (cheap failures: no model is loaded for most)."""
    afile = tmp / "afile"
    afile.write_text("not a folder")
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    nogal = str(tmp / "no-gallery")
    obama = str(data_path("faces_small", "obama", "obama.jpg"))
    return {
        "verify": ["verify", obama, str(data_path("non_faces", "skimage_coffee.png"))],  # no face: exit 4
        "embed": ["embed", str(empty), "-o", str(tmp / "x.npz")],
        "cluster": ["cluster", str(tmp / "missing"), "-o", str(tmp / "c.json")],
        "keys create": ["keys", "create", "--role", "superuser", "--data-dir", str(tmp / "d")],
        "keys list": ["keys", "list", "--data-dir", str(afile)],
        "models list": ["models", "list", "--no-such-option"],
        "gallery create": ["gallery", "create", str(afile)],
        "gallery enroll": ["gallery", "enroll", nogal, "bob", obama],
        "gallery identify": ["gallery", "identify", nogal, obama],
        "gallery verify": ["gallery", "verify", nogal, obama, "bob"],
        "gallery remove": ["gallery", "remove", nogal, "bob"],
        "gallery rename": ["gallery", "rename", nogal, "bob", "rob"],
        "gallery list": ["gallery", "list", nogal],
        "gallery stats": ["gallery", "stats", nogal],
        "gallery calibrate": ["gallery", "calibrate", nogal, obama],
        "gallery export": ["gallery", "export", nogal, str(tmp / "e.npz")],
        "gallery import": ["gallery", "import", nogal, str(tmp / "missing.npz")],
        "gallery migrate": ["gallery", "migrate", nogal, "--embedder", "onnx-arcface"],
        "eval run": ["eval", "run", "--protocol", "folder", "--data", str(empty), "-o", str(tmp / "r")],
        "eval scores": ["eval", "scores", str(tmp / "missing.csv"), "-o", str(tmp / "r2")],
        "gallery check": ["gallery", "check", nogal],
        "gallery destroy": ["gallery", "destroy", nogal, "--yes"],
        "quality": ["quality", str(tmp / "missing.jpg")],
        "explain pair": ["explain", "pair", str(tmp / "missing.jpg"), obama],
        "explain eval": ["explain", "eval", "--protocol", "folder", "--data", str(empty)],
        "protect eval": ["protect", "eval", "--protocol", "folder", "--data", str(empty), "--method", "biohash"],
        "pad score": ["pad", "score", str(tmp / "missing.jpg"), "--model-dir", str(empty)],
        "morph make": ["morph", "make", str(tmp / "missing.jpg"), obama, "-o", str(tmp / "m.png")],
        "morph eval": ["morph", "eval", str(tmp / "missing.tsv")],
        "pad eval": ["pad", "eval", "--bona-fide", str(tmp / "missing"), "--attack", str(empty), "-o", str(tmp / "p")],
        "pad train": ["pad", "train", "--bona-fide", str(tmp / "missing"), "--attack", str(empty), "-o", str(afile)],
        "video": ["video", str(tmp / "missing.mp4")],
        "attributes": ["attributes", str(tmp / "missing.jpg")],
        "map fit": ["map", "fit", "--from", "facenet", "--to", "dlib-resnet-onnx", "--data", str(tmp / "missing")]
        + ["-o", str(tmp / "m.npz")],
        "map info": ["map", "info", str(tmp / "missing.npz")],
        "map screen": ["map", "screen", str(tmp / "missing.npz"), obama],
        "gallery rekey": ["gallery", "rekey", nogal],
        "anonymize image": ["anonymize", "image", str(tmp / "missing.jpg")],
        "anonymize eval": ["anonymize", "eval", "--data", str(empty), "--methods", "swirl"],
        "dedup": ["dedup", str(afile), "-o", str(tmp / "d.json")],
    }


def test_every_json_command_prints_a_json_error_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _failing_json_calls(tmp_path)
    assert set(calls) == _json_commands(), "give every command with --json a failing call here"
    for name, args in calls.items():
        code = main([*args, "--json"])
        out = capsys.readouterr().out
        assert code not in (0, 1), name
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, f"{name} --json printed nothing on stdout"
        doc = json.loads(lines[-1])
        if name == "gallery check":  # its report is the result: a failed check says so itself
            assert doc["ok"] is False and doc["error"]["message"] and code == 6, doc  # 6: no gallery there (7: damaged)
            continue
        assert set(doc) == {"error"}, name
        err = doc["error"]
        assert err["exit_code"] == code and err["code"] and err["code"].replace("_", "").isalpha(), (name, err)
        assert err["message"] and "Traceback" not in err["message"], name
    # the same error codes as the REST API
    assert main(["verify", *calls["verify"][1:], "--json"]) == 4
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "no_face"


def test_embed_of_face_less_images_writes_an_empty_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    folder = tmp_path / "nofaces"
    folder.mkdir()
    for name, colour in (("white.png", "white"), ("grey.jpg", "grey")):  # small: the detectors' fallback is quick
        Image.new("RGB", (160, 120), colour).save(folder / name)
    for suffix in (".npz", ".parquet"):
        out = tmp_path / f"x{suffix}"
        code = main(["embed", str(folder), "-o", str(out), "--workers", "1", "--json"])
        cap = capsys.readouterr()
        assert code == 4 and "Traceback" not in cap.err and "no face found in any of the 2 images" in cap.err
        summary = json.loads(cap.out)
        assert summary["images"] == 2 and summary["faces"] == 0 and summary["images_without_face"] == 2
        t = read_embeddings(out)
        assert len(t) == 0 and t.embeddings.shape == (0, 128) and t.landmarks.shape == (0, 5, 2)
        assert t.model.startswith("dlib-resnet-v1@")


def test_embed_loses_nothing_when_no_image_can_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.npz"
    out.write_bytes(b"an earlier result")
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    assert main(["embed", str(junk), str(tmp_path / "missing.jpg"), "-o", str(out), "--workers", "1"]) == 3
    assert "was not written" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier result"
    (tmp_path / "empty").mkdir()
    assert main(["embed", str(tmp_path / "empty"), "-o", str(out)]) == 2
    assert "no images in" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "empty")]) == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_verify_refuses_a_threshold_that_is_not_a_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    o = data_path("faces_small", "obama")
    assert main(["verify", str(o / "obama.jpg"), str(o / "obama2.jpg"), "--threshold", value]) == 2
    assert "finite number" in capsys.readouterr().err


def test_help_is_not_truncated_at_80_columns() -> None:
    """Rich cuts a word longer than its column with '…': render every command's help at 80
    columns and find no '…' that the help text itself does not contain."""
    import typer.main
    from typer.testing import CliRunner

    runner = CliRunner()

    def walk(c, path):  # type: ignore[no-untyped-def]
        yield path, c
        for name, sub in getattr(c, "commands", {}).items():
            yield from walk(sub, [*path, name])

    truncated = []
    for path, c in walk(typer.main.get_command(app), []):
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}, terminal_width=80)
        assert res.exit_code == 0, path
        assert max(len(line) for line in res.output.splitlines()) <= 80, path
        source = " ".join([c.help or ""] + [getattr(p, "help", None) or "" for p in c.params])
        if res.output.count("…") > source.count("…"):
            truncated.append(" ".join(path) + ": " + next(x for x in res.output.splitlines() if "…" in x).strip())
    assert not truncated, "\n".join(truncated)


def test_a_data_dir_that_is_a_file_is_one_usage_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (["keys", "list", "--data-dir", str(afile)], ["serve", "--data-dir", str(afile)]):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "is a file, not a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_serve_refuses_a_port_out_of_range_and_a_busy_port(tmp_path: Path) -> None:
    import socket

    for port in ("99999", "0", "-1"):
        r = run("serve", "--port", port, "--data-dir", str(tmp_path / "d"))
        assert r.returncode == 2 and "Traceback" not in r.stderr and "--port" in r.stderr, (port, r.stderr)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        r = run("serve", "--port", port, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["detect", "{missing}"],
        ["detect", "{junk}"],
        ["detect", "{obama}", "--max-pixels", "-5"],
        ["detect", "{obama}", "--detector", "nope"],
        ["embed", "{missing}", "-o", "{tmp}/x.npz"],
        ["embed", "{obama}", "-o", "{tmp}"],
        ["embed", "{obama}", "-o", "{tmp}/no/x.npz"],
        ["embed", "{obama}", "-o", "{tmp}/x.npz", "--embedder", "nope"],
        ["verify", "{obama}", "{tmp}"],
        ["verify", "{obama}", "{trunc}"],
        ["verify", "{obama}", "{obama}", "-p", "fmr=abc"],
        ["keys", "create", "--role", "admin", "--gallery", "../x", "--data-dir", "{tmp}/d"],
        ["keys", "create", "--role", "admin", "--data-dir", "{junk}/d"],
        ["serve", "--workers", "-3", "--data-dir", "{tmp}/d"],
    ],
)
def test_bad_input_gives_one_clear_error_not_a_traceback(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obama = data_path("faces_small", "obama", "obama.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(obama.read_bytes()[:3000])
    values = {"missing": tmp_path / "missing.jpg", "junk": junk, "trunc": trunc, "obama": obama, "tmp": tmp_path}
    code = main([a.format(**values) for a in args])
    err = capsys.readouterr().err
    assert code in (2, 3, 5), (code, err)
    assert "Traceback" not in err and "internal error" not in err and err.strip(), err
