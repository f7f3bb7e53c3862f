"""Video throughput on the Hamilton clip: frames per second of ``analyze_video`` per setting,
against a face_recognition-style loop (detect + embed every frame, no tracking) in the same run.

Settings: detector (YuNet or the default dlib HOG → MMOD), detection on every frame or every
3rd with tracking in between, quality assessor (``fiqa``: components + embedding stability, about
seven embeddings a face; ``fiqa-fast``: components only), one process or two (frame ranges).
Every setting reads, tracks and reports all 275 frames (640×360); the annotated copy is not
written. The peer is the loop of face_recognition's ``facerec_from_video_file.py`` example:
``face_locations`` (HOG, upsampled once) and ``face_encodings`` on every frame, with the
``face_recognition`` package when installed, else faceprint's own per-frame loop (default
detector, every face embedded). The target (issue 15): real time, 29.97 fps, with YuNet on 2 cores.

    FACEPRINT_MODEL_DIR=../shared/models nice python benchmarks/bench_video.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2

from faceprint import FacePipeline
from faceprint.media.video import VideoStats, analyze_video

#: (label, detector, every, quality, workers)
SETTINGS = [
    ("YuNet, every frame, fiqa-fast", "yunet", 1, "fiqa-fast", 1),
    ("YuNet, every 3rd + tracking, fiqa-fast", "yunet", 3, "fiqa-fast", 1),
    ("YuNet, every 3rd + tracking, fiqa-fast, 2 processes", "yunet", 3, "fiqa-fast", 2),
    ("YuNet, every 3rd + tracking, fiqa", "yunet", 3, "fiqa", 1),
    ("YuNet, every frame, fiqa", "yunet", 1, "fiqa", 1),
    ("default (dlib HOG→MMOD), every 3rd + tracking, fiqa-fast", "dlib-hog-mmod", 3, "fiqa-fast", 1),
    ("default (dlib HOG→MMOD), every frame, fiqa-fast", "dlib-hog-mmod", 1, "fiqa-fast", 1),
]


def decode_only(clip: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(clip))
    t0, n = time.perf_counter(), 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    return n, time.perf_counter() - t0


def peer(clip: Path, frames: int | None) -> tuple[str, int, float, int]:
    """face_recognition's video example loop: every frame, HOG upsampled once, every face encoded."""
    cap = cv2.VideoCapture(str(clip))
    try:
        import face_recognition as fr

        name = "face_recognition 1.3 loop (HOG ×2 upsampling + encodings, every frame)"

        def step(rgb):  # noqa: ANN001, ANN202
            return fr.face_encodings(rgb, fr.face_locations(rgb))
    except ImportError:
        pipe = FacePipeline()
        name = "faceprint per-frame loop (default pipeline, every frame, no tracking)"

        def step(rgb):  # noqa: ANN001, ANN202
            return pipe.analyze(rgb)

    t0, n, faces = time.perf_counter(), 0, 0
    while frames is None or n < frames:
        ok, frame = cap.read()
        if not ok:
            break
        faces += len(step(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        n += 1
    return name, n, time.perf_counter() - t0, faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--only", default="", help="run the settings whose label contains this text")
    ap.add_argument("--peer-frames", type=int, default=None, help="time the peer on the first N frames only")
    args = ap.parse_args()
    clip = args.data / "video" / "short_hamilton_clip.mp4"
    print(f"clip: {clip}; cores: {os.cpu_count()}; load average at start: {os.getloadavg()[0]:.2f}")
    n, secs = decode_only(clip)
    print(f"decode only (OpenCV, BGR→RGB): {n} frames in {secs:.2f} s = {n / secs:.0f} fps")
    name, pn, psecs, pfaces = peer(clip, args.peer_frames)
    peer_fps = pn / psecs
    print(f"peer: {name}: {pn} frames, {pfaces} faces, {psecs:.1f} s = {peer_fps:.2f} fps")
    print()
    print("| setting | frames detected | faces | tracks | s | fps | × peer | real time (29.97 fps) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, det, every, quality, workers in SETTINGS:
        if args.only and args.only not in label:
            continue
        pipe = FacePipeline(det, quality=quality)
        st = VideoStats()
        for _ in analyze_video(clip, pipe, every=every, workers=workers, range_frames=100, stats=st):
            pass
        rt = "yes" if st.fps >= 29.97 else "no"
        print(
            f"| {label} | {st.frames_detected} | {st.faces} | {st.tracks} | {st.seconds:.1f} | {st.fps:.1f} | "
            f"{st.fps / peer_fps:.1f} | {rt} |",
            flush=True,
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
