"""``faceprint.media.video`` on the real Hamilton clip (275 frames, 640×360, three camera cuts).

The clip's shots, read from the frames (mean absolute difference of 64×36 thumbnails > 20):
frames 0-19 Lin-Manuel Miranda far away on stage, 20-81 the audience, 82-210 Miranda in a
medium shot (the main face), 211-274 the audience again. Tracking runs on YuNet (fast; its
weights from ../shared/models) with the default embedder and the ``fiqa`` quality assessor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from faceprint import FacePipeline
from faceprint.errors import (
    EmptyVideoError,
    TruncatedVideoError,
    UnsupportedVideoError,
    VideoNotFoundError,
    VideoTooLongError,
)
from faceprint.media.tracking import Tracker, tracks_across_cuts
from faceprint.media.tracking import main_face_switches as switches_in
from faceprint.media.video import TrackResult, VideoReader, VideoStats, analyze_video, tracker_for

from ..conftest import data_path, shared_model_path

CUTS = (20, 82, 211)
MAIN_SHOT = range(82, 211)


@pytest.fixture(scope="module")
def clip() -> Path:
    return data_path("video", "short_hamilton_clip.mp4")


@pytest.fixture(scope="module")
def yunet_dir() -> Iterator[None]:
    model = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEPRINT_MODEL_DIR", str(model.parent.parent))
        yield


@pytest.fixture(scope="module")
def fast_pipe(yunet_dir: None) -> FacePipeline:
    # the model path as a detector option, not only the environment: worker processes of a pool
    # started earlier in the session do not see a variable set now
    model = shared_model_path("yunet", "yunet_s_dynamic.onnx")
    return FacePipeline("yunet", detector_options={"model": str(model)}, quality="fiqa-fast")


# --- bad input: every error names the file and says what it is -----------------------------------


def reencoded(clip: Path, out: Path, fourcc: str = "MJPG", frames: int | None = None) -> Path:
    """The clip (or its first ``frames``) re-encoded as an MJPG AVI: a container whose header
    announces the frame count and that still opens when cut short."""
    cap = cv2.VideoCapture(str(clip))
    w = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), 29.97, (640, 360))
    n = 0
    while frames is None or n < frames:
        ok, f = cap.read()
        if not ok:
            break
        w.write(f)
        n += 1
    w.release()
    cap.release()
    return out


def test_reader_streams_every_frame_with_the_container_info(clip: Path) -> None:
    with VideoReader(clip) as r:
        assert (r.info.width, r.info.height, r.info.frame_count, r.info.codec) == (640, 360, 275, "h264")
        shapes = {f.shape for _, f in r}
        assert r.frames_read == 275 and not r.truncated
    assert shapes == {(360, 640, 3)}
    with VideoReader(clip, start=100, stop=103) as r:  # a frame range, as the worker processes read it
        assert [i for i, _ in r] == [100, 101, 102]


@pytest.mark.slow  # the quick loop has the CLI's truncated-video test
def test_truncated_video_reports_its_tracks_then_stops_with_the_frames_read(
    clip: Path, tmp_path: Path, fast_pipe: FacePipeline
) -> None:
    full = reencoded(clip, tmp_path / "clip.avi")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    stats = VideoStats()
    got: list[TrackResult] = []
    with pytest.raises(TruncatedVideoError) as err:
        for t in analyze_video(cut, fast_pipe, every=25, stats=stats):
            got.append(t)
    e = err.value
    assert 100 < e.frames_read < 275 and e.frames_expected == 275
    assert f"after frame {e.frames_read} of 275" in str(e) and "cut.avi" in str(e)
    assert stats.frames_read == e.frames_read
    assert got and all(t.last_frame < e.frames_read for t in got)  # the tracks before the break came out


def test_zero_frame_video(tmp_path: Path, fast_pipe: FacePipeline) -> None:
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64)).release()
    with pytest.raises(EmptyVideoError, match="no frame"):
        list(analyze_video(empty, fast_pipe))
    zero_bytes = tmp_path / "zero.mp4"
    zero_bytes.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="0 bytes"):
        VideoReader(zero_bytes)


def test_unsupported_codec_non_video_photo_and_missing_file(clip: Path, tmp_path: Path) -> None:
    avi = reencoded(clip, tmp_path / "clip.avi", frames=10)
    data = bytearray(avi.read_bytes())
    head = bytes(data[:4096]).replace(b"MJPG", b"XQ99").replace(b"mjpg", b"xq99")  # a codec nobody decodes
    data[:4096] = head
    odd = tmp_path / "odd_codec.avi"
    odd.write_bytes(bytes(data))
    with pytest.raises(UnsupportedVideoError, match="AVI file that OpenCV cannot open"):
        VideoReader(odd)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with pytest.raises(UnsupportedVideoError, match="not a video file"):
        VideoReader(text)
    with pytest.raises(UnsupportedVideoError, match="JPEG photo"):
        VideoReader(data_path("faces_small", "obama", "obama.jpg"))
    with pytest.raises(VideoNotFoundError):
        VideoReader(tmp_path / "missing.mp4")
    cut_mp4 = tmp_path / "cut.mp4"  # an MP4 keeps its index at the end: cut short, it cannot open
    cut_mp4.write_bytes(clip.read_bytes()[:200_000])
    with pytest.raises(UnsupportedVideoError, match="MP4/QuickTime file .* truncated or damaged"):
        VideoReader(cut_mp4)


def test_duration_limit_refuses_before_decoding(clip: Path, fast_pipe: FacePipeline) -> None:
    stats = VideoStats()
    with pytest.raises(VideoTooLongError, match="lasts 9.2 s; the limit is 5 s"):
        list(analyze_video(clip, fast_pipe, max_seconds=5, stats=stats))
    assert stats.frames_read == 0


# --- the clip, tracked ---------------------------------------------------------------------------


class RecordingTracker(Tracker):
    """The real tracker, remembering what it was given (to replay it with other settings)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.steps: list[tuple[int, list[Any]]] = []

    def update(self, frame: int, faces: Any) -> Any:
        self.steps.append((frame, list(faces)))
        return super().update(frame, faces)


def main_face_switches(tracks: list[Any]) -> tuple[int, int]:
    """(ID switches on the main face in its shot, tracks that run across a camera cut)."""
    return switches_in(tracks, MAIN_SHOT), tracks_across_cuts(tracks, CUTS)


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory, yunet_dir: None) -> Path:
    from faceprint.gallery import open_gallery

    path = tmp_path_factory.mktemp("video") / "people"
    people = ("lin_manuel_miranda", "alex_lacamoire")
    pairs = [(p, img) for p in people for img in sorted(data_path("faces_small", p).iterdir())]
    with open_gallery(path, create=True, pipeline=FacePipeline("yunet")) as g:
        rep = g.enroll_images(pairs)
    assert rep.templates == len(pairs)
    return path


@pytest.fixture(scope="module")
def tracked(clip: Path, gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run over the clip: every 3rd frame detected, identified, annotated."""
    from faceprint.gallery import open_gallery

    out = tmp_path_factory.mktemp("video") / "annotated.mp4"
    pipe = FacePipeline("yunet", quality="fiqa")
    tracker = tracker_for(pipe, fps=29.97, every=3)
    recorder = RecordingTracker(**{k: getattr(tracker, k) for k in _TRACKER_SETTINGS})
    stats = VideoStats()
    with open_gallery(gallery_dir) as g:
        tracks = list(analyze_video(clip, pipe, every=3, gallery=g, output=out, tracker=recorder, stats=stats))
    return {"tracks": tracks, "stats": stats, "output": out, "steps": recorder.steps, "recorder": recorder}


_TRACKER_SETTINGS = ("iou_threshold", "veto_threshold", "reid_threshold", "appearance_weight", "max_age", "min_hits")


@pytest.mark.slow
def test_main_face_keeps_one_track_through_its_shot(tracked: dict[str, Any]) -> None:
    switches, across = main_face_switches(tracked["tracks"])
    # measured on this clip (every 3rd frame, YuNet + dlib ResNet + fiqa): 0 switches, 0 tracks across a cut
    assert switches == 0
    assert across == 0
    st = tracked["stats"]
    assert st.frames_read == 275 and st.frames_detected == 92 and st.tracks == len(tracked["tracks"])


@pytest.mark.slow
def test_motion_alone_switches_identity_at_the_cuts(tracked: dict[str, Any]) -> None:
    """The same detections, tracked by IoU and motion only: tracks run across camera cuts
    (the appearance veto is what prevents it)."""
    rec = tracked["recorder"]
    tr = Tracker(**{k: getattr(rec, k) for k in _TRACKER_SETTINGS if k not in ("veto_threshold", "reid_threshold")})
    done = []
    for frame, faces in tracked["steps"]:
        done += tr.update(frame, faces)
    done += tr.finish()
    assert main_face_switches(done)[1] >= 1


@pytest.mark.slow
def test_main_track_is_identified_as_lin_manuel_miranda(tracked: dict[str, Any]) -> None:
    main = max(tracked["tracks"], key=lambda t: sum(o.frame in MAIN_SHOT for o in t.observations))
    assert main.first_frame >= 82 and main.last_frame <= 210 and len(main.observations) >= 40
    assert main.identity == "lin_manuel_miranda"
    assert main.score is not None and main.threshold is not None and main.score >= main.threshold
    # the best shot is the observation of highest quality, and its frame lies in the track
    qualities = {o.frame: o.quality for o in main.observations}
    assert main.best_frame in qualities and qualities[main.best_frame] == max(qualities.values())
    d = main.to_dict(fps=29.97)
    assert d["identity"] == "lin_manuel_miranda" and len(d["frames"]) == len(d["boxes"])
    assert "template" not in d and d["model"].startswith("dlib-resnet-v1")


@pytest.mark.slow
def test_annotated_video_is_readable_with_the_same_frame_count(tracked: dict[str, Any]) -> None:
    cap = cv2.VideoCapture(str(tracked["output"]))
    n, size = 0, set()
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
        size.add(f.shape)
    assert n == 275 and size == {(360, 640, 3)}


@pytest.mark.slow
def test_frame_ranges_in_two_processes_give_the_same_tracks(clip: Path, fast_pipe: FacePipeline) -> None:
    def run(workers: int) -> list[tuple[list[int], list[tuple[float, ...]]]]:
        got = analyze_video(clip, fast_pipe, every=5, workers=workers, range_frames=100)
        return [([o.frame for o in t.observations], [o.box for o in t.observations]) for t in got]

    one, two = run(1), run(2)
    assert one and [f for f, _ in two] == [f for f, _ in one]
    for (_, a), (_, b) in zip(one, two, strict=True):
        assert np.allclose(a, b, atol=1e-3)


def test_camera_index_that_does_not_exist() -> None:
    if os.path.exists("/dev/video9"):
        pytest.skip("a camera 9 exists here")
    with pytest.raises(VideoNotFoundError, match="camera 9"):
        VideoReader(9)
