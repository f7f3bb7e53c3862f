"""Video throughput on the Hamilton clip: frames per second of ``analyze_video`` per setting,
against a face_recognition-style loop (detect + embed every frame, no tracking) in the same run.

Settings: detector (YuNet or the default dlib HOG → MMOD), detection on every frame or every
3rd with tracking in between, quality assessor (``fiqa``: components + embedding stability, about
seven embeddings a face; ``fiqa-fast``: components only), one process or two (frame ranges).
Every setting reads, tracks and reports the clip's frames (640×360; all 275, or the first
``--frames``); the annotated copy is not written. On a shared machine the wall-clock rate says
little, so each row also gives the CPU time of the run (this process and its workers) and the rate
two fully used cores would give, ``2 × frames / CPU s`` (the issue's "2 cores"): re-measure the
wall-clock column on a quiet machine. The peer is the loop of face_recognition's ``facerec_from_video_file.py`` example:
``face_locations`` (HOG, upsampled once) and ``face_encodings`` on every frame, with the
``face_recognition`` package when installed, else faceprint's own per-frame loop (default
detector, every face embedded). The target (issue 15): real time, 29.97 fps, with YuNet on 2 cores.

    FACEPRINT_MODEL_DIR=../shared/models nice python benchmarks/bench_video.py --data ../shared/data

``--tracking`` measures the tracks instead: YuNet + ``fiqa``, every frame and every 3rd, the ID
switches on the main face (Lin-Manuel Miranda, frames 82-210, the largest box) and the tracks
that run across the clip's camera cuts (frames 20, 82, 211), for the default tracker and for the
same detections tracked by IoU and motion alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import cv2

from faceprint import FacePipeline
from faceprint.media.tracking import Tracker, main_face_switches, tracks_across_cuts
from faceprint.media.video import VideoStats, analyze_video, tracker_for

CUTS = (20, 82, 211)
MAIN_SHOT = range(82, 211)

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


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the frame-range workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


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


def peer(clip: Path, frames: int | None) -> tuple[str, int, float, float, int]:
    """face_recognition's video example loop: every frame, HOG upsampled once, every face encoded."""
    cap = cv2.VideoCapture(str(clip))
    try:
        import face_recognition as fr

        name = f"face_recognition {fr.__version__} loop (HOG ×2 upsampling + encodings, every frame)"

        def step(rgb):  # noqa: ANN001, ANN202
            return fr.face_encodings(rgb, fr.face_locations(rgb))
    except ImportError:
        pipe = FacePipeline()
        name = "faceprint per-frame loop (default pipeline, every frame, no tracking)"

        def step(rgb):  # noqa: ANN001, ANN202
            return pipe.analyze(rgb)

    t0, c0, n, faces = time.perf_counter(), cpu_seconds(), 0, 0
    while frames is None or n < frames:
        ok, frame = cap.read()
        if not ok:
            break
        faces += len(step(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        n += 1
    return name, n, time.perf_counter() - t0, cpu_seconds() - c0, faces


class _Recording(Tracker):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.steps: list = []

    def update(self, frame, faces):  # noqa: ANN001, ANN201
        self.steps.append((frame, list(faces)))
        return super().update(frame, faces)


def tracking(clip: Path) -> None:
    keys = ("iou_threshold", "veto_threshold", "reid_threshold", "appearance_weight", "max_age", "min_hits")
    print("| detection | tracker | tracks | ID switches on the main face | tracks across a cut |")
    print("|---|---|---:|---:|---:|")
    pipe = FacePipeline("yunet", quality="fiqa")
    for every in (1, 3):
        default = tracker_for(pipe, fps=29.97, every=every)
        rec = _Recording(**{k: getattr(default, k) for k in keys})
        tracks = list(analyze_video(clip, pipe, every=every, tracker=rec))
        motion = Tracker(**{k: getattr(default, k) for k in keys if k not in ("veto_threshold", "reid_threshold")})
        alone = [t for f, faces in rec.steps for t in motion.update(f, faces)] + motion.finish()
        for name, got in (("default (IoU + motion + appearance)", tracks), ("IoU + motion only", alone)):
            sw, cross = main_face_switches(got, MAIN_SHOT), tracks_across_cuts(got, CUTS)
            print(f"| every {every} | {name} | {len(got)} | {sw} | {cross} |", flush=True)
    print(f"veto / re-find thresholds (cosine): {default.veto_threshold} / {default.reid_threshold}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--only", default="", help="run the settings whose label contains this text")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames (every setting and the peer)")
    ap.add_argument(
        "--default-frames", type=int, default=90, help="frames for the default-detector settings (slow: 0.5 s a frame)"
    )
    ap.add_argument("--tracking", action="store_true", help="measure the tracks (ID switches), not the speed")
    args = ap.parse_args()
    clip = args.data / "video" / "short_hamilton_clip.mp4"
    if args.tracking:
        tracking(clip)
        return
    print(f"clip: {clip}; cores: {os.cpu_count()}; load average at start: {os.getloadavg()[0]:.2f}")
    n, secs = decode_only(clip)
    print(f"decode only (OpenCV, BGR→RGB): {n} frames in {secs:.2f} s = {n / secs:.0f} fps")
    name, pn, psecs, pcpu, pfaces = peer(clip, args.frames or args.default_frames)
    peer_fps, peer_cpu_fps = pn / psecs, 2 * pn / pcpu
    print(f"peer: {name}: {pn} frames, {pfaces} faces, {psecs:.1f} s wall = {peer_fps:.2f} fps; CPU {pcpu:.1f} s")
    print()
    print("| setting | frames | detected | faces | tracks | wall s | fps (wall) | CPU s | fps 2 cores (CPU) | × peer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, det, every, quality, workers in SETTINGS:
        if args.only and args.only not in label:
            continue
        pipe = FacePipeline(det, quality=quality)
        stop = args.frames or (args.default_frames if det != "yunet" else None)
        st = VideoStats()
        c0 = cpu_seconds()
        for _ in analyze_video(clip, pipe, every=every, workers=workers, range_frames=100, stats=st, stop=stop):
            pass
        cpu = cpu_seconds() - c0
        cpu_fps = 2 * st.frames_read / cpu
        # the pool's workers live on after the run: their CPU time is not counted, so no CPU figures
        cpu_cols = "n/a | n/a | n/a" if workers > 1 else f"{cpu:.1f} | {cpu_fps:.1f} | {cpu_fps / peer_cpu_fps:.1f}"
        print(
            f"| {label} | {st.frames_read} | {st.frames_detected} | {st.faces} | {st.tracks} | {st.seconds:.1f} | "
            f"{st.fps:.1f} | {cpu_cols} |",
            flush=True,
        )
    print(f"\npeer on 2 cores (CPU): {peer_cpu_fps:.2f} fps; load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
