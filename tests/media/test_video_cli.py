"""``faceprint video`` end to end, in-process: JSON lines per track, the summary, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from faceprint.cli import main

from ..conftest import data_path, shared_model_path
from .test_video import reencoded


@pytest.fixture()
def yunet(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    model = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(model.parent.parent))
    return ["--detector", "yunet", "--quality", "fiqa-fast"]


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.strip()]


@pytest.mark.slow
def test_tracks_identified_against_a_gallery(
    tmp_path: Path, yunet: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    gal = str(tmp_path / "g")
    assert main(["gallery", "create", gal, "--detector", "yunet"]) == 0
    for who in ("lin_manuel_miranda", "alex_lacamoire"):
        assert main(["gallery", "enroll", gal, who, str(data_path("faces_small", who))]) == 0
    capsys.readouterr()
    clip = data_path("video", "short_hamilton_clip.mp4")
    out = tmp_path / "annotated.mp4"
    code = main(["video", str(clip), "--gallery", gal, "-o", str(out), "--every", "5", "--quality", "fiqa", "--json"])
    assert code == 0
    docs = lines(capsys.readouterr().out)
    tracks, summary = docs[:-1], docs[-1]["summary"]
    assert summary["frames_read"] == 275 and summary["tracks"] == len(tracks) and summary["annotated"] == str(out)
    main_track = max(tracks, key=lambda t: sum(82 <= f < 211 for f in t["frames"]))
    assert main_track["identity"] == "lin_manuel_miranda" and main_track["score"] >= main_track["threshold"]
    assert all(len(t["frames"]) == len(t["boxes"]) and "template" not in t for t in tracks)
    assert summary["identified"].get("lin_manuel_miranda", 0) >= 1
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 275


def test_truncated_video_prints_what_was_processed_then_exits_3(
    tmp_path: Path, yunet: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    avi = reencoded(data_path("video", "short_hamilton_clip.mp4"), tmp_path / "clip.avi", frames=120)
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    code = main(["video", str(cut), "--every", "20", "--json", *yunet])
    assert code == 3
    captured = capsys.readouterr()
    summary = lines(captured.out)[-1]["summary"]
    assert summary["error"]["code"] == "truncated_video"
    assert 30 < summary["frames_read"] < 120 and f"after frame {summary['frames_read']} of 120" in captured.err
    assert captured.err.count("error:") == 1 and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("make", "code_name"),
    [
        (lambda p: p.write_text("just text\n" * 20), "unsupported_video"),
        (lambda p: cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64)).release(), "empty_video"),
    ],
    ids=["not-a-video", "zero-frames"],
)
def test_bad_files_end_with_one_error_line(
    tmp_path: Path, yunet: list[str], capsys: pytest.CaptureFixture[str], make, code_name: str
) -> None:
    bad = tmp_path / "bad.avi"
    make(bad)
    assert main(["video", str(bad), "--json", *yunet]) == 3
    captured = capsys.readouterr()
    assert lines(captured.out) == [
        {"error": {"code": code_name, "message": lines(captured.out)[0]["error"]["message"], "exit_code": 3}}
    ]
    assert "bad.avi" in captured.err and "Traceback" not in captured.err
