"""``POST /v1/video``: upload → job id → status → result, on the Hamilton clip, in-process.

The app runs YuNet (fast; weights from ../shared/models) with the default embedder; the gallery
holds Lin-Manuel Miranda and Alex Lacamoire from ``faces_small``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import data_path, shared_model_path
from ..media.test_video import reencoded
from .conftest import Keys, make_keys

pytestmark = pytest.mark.slow


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Keys, Path]]:
    from fastapi.testclient import TestClient

    from faceprint import FacePipeline
    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    model = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(model.parent.parent))
    ram = tmp_path / "ram"
    ram.mkdir()
    monkeypatch.setenv("FACEPRINT_RAM_DIR", str(ram))
    monkeypatch.setenv("FACEPRINT_VIDEO_MAX_SECONDS", "60")
    settings = ServiceSettings(data_dir=tmp_path / "data")
    keys = make_keys(settings.keys_db)
    with TestClient(create_app(settings, pipelines=[FacePipeline("yunet")]), raise_server_exceptions=False) as c:
        yield c, keys, ram


def wait(client: Any, job_id: str, token: str, timeout: float = 300.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = client.get(f"/v1/video/{job_id}", headers=Keys.header(token)).json()
        if st["status"] in ("done", "failed"):
            return st
        time.sleep(0.5)
    raise AssertionError(f"video job {job_id} did not finish in {timeout} s")


def test_upload_job_status_result_with_identification(app: tuple[Any, Keys, Path]) -> None:
    client, keys, ram = app
    assert client.post("/v1/galleries", json={"name": "alpha"}, headers=keys.header(keys.admin)).status_code == 201
    for who in ("lin_manuel_miranda", "alex_lacamoire"):
        files = [
            ("images", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(data_path("faces_small", who).iterdir())
        ]
        r = client.post(f"/v1/galleries/alpha/subjects/{who}/templates", files=files, headers=keys.header(keys.enroll))
        assert r.status_code == 201, r.text
    clip = data_path("video", "short_hamilton_clip.mp4").read_bytes()
    h = keys.header(keys.recognize)
    r = client.post("/v1/video?gallery=alpha&every=5", files={"video": ("clip.mp4", clip, "video/mp4")}, headers=h)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running", "done") and job["frames_total"] == 275
    # another key does not see it; the result is not there before the job ends (or is, if it already did)
    assert client.get(f"/v1/video/{job['job_id']}", headers=keys.header(keys.scoped_recognize)).status_code == 404
    st = wait(client, job["job_id"], keys.recognize)
    assert st["status"] == "done" and st["frames_done"] == 275, st
    res = client.get(f"/v1/video/{job['job_id']}/result", headers=h).json()
    assert res["frames_read"] == 275 and res["frames_detected"] == 55 and res["error"] is None
    main = max(res["tracks"], key=lambda t: sum(82 <= f < 211 for f in t["frames"]))
    assert main["identity"] == "lin_manuel_miranda" and main["score"] >= main["threshold"]
    assert main["first_frame"] >= 82 and main["last_frame"] <= 210
    assert list(ram.iterdir()) == []  # the upload's RAM file is gone
    audit = (ram.parent / "data" / "audit.jsonl").read_text()
    events = [json.loads(x) for x in audit.splitlines() if '"video_identify"' in x]
    assert [(e["gallery"], e["outcome"], e["key_id"] is not None) for e in events] == [("alpha", "identified", True)]
    assert 'lin_manuel_miranda"' not in "".join(x for x in audit.splitlines() if "video" in x)  # no names logged
    scoped = keys.header(keys.scoped_recognize)  # limited to gallery "alpha": another gallery is refused
    r = client.post("/v1/video?gallery=beta", files={"video": ("c.mp4", clip, "video/mp4")}, headers=scoped)
    assert r.status_code == 403


def test_bad_uploads_are_refused_before_a_job_starts(app: tuple[Any, Keys, Path], tmp_path: Path) -> None:
    client, keys, ram = app
    h = keys.header(keys.recognize)
    photo = data_path("faces_small", "obama", "obama.jpg").read_bytes()
    r = client.post("/v1/video", files={"video": ("a.mp4", photo, "video/mp4")}, headers=h)
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_video")
    short = reencoded(data_path("video", "short_hamilton_clip.mp4"), tmp_path / "c.avi", frames=30)
    cut = short.read_bytes()[:-40_000]  # header says 30 frames; fewer are there
    empty = tmp_path / "empty.avi"
    import cv2

    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64)).release()
    r = client.post("/v1/video", files={"video": ("e.avi", empty.read_bytes(), "video/avi")}, headers=h)
    assert (r.status_code, r.json()["code"]) == (422, "empty_video")
    assert client.post("/v1/video", files={"video": ("c.avi", cut, "video/avi")}).status_code == 401
    r = client.post("/v1/video?every=10", files={"video": ("c.avi", cut, "video/avi")}, headers=h)
    assert r.status_code == 202, r.text
    st = wait(client, r.json()["job_id"], keys.recognize)
    res = client.get(f"/v1/video/{r.json()['job_id']}/result", headers=h).json()
    assert st["status"] == "done" and res["error"]["code"] == "truncated_video" and 0 < res["frames_read"] < 30
    assert list(ram.iterdir()) == []


def test_duration_limit(app: tuple[Any, Keys, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    client, keys, ram = app
    client.app.state.faceprint_video_jobs = None  # the limits are read again, from this environment
    monkeypatch.setenv("FACEPRINT_VIDEO_MAX_SECONDS", "5")
    clip = data_path("video", "short_hamilton_clip.mp4").read_bytes()
    r = client.post("/v1/video", files={"video": ("c.mp4", clip, "video/mp4")}, headers=keys.header(keys.recognize))
    assert (r.status_code, r.json()["code"]) == (413, "video_too_long")
    assert "9.2 s; the limit is 5 s" in r.json()["detail"]
    assert list(ram.iterdir()) == []
