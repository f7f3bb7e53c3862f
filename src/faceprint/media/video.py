"""Faces in video: decode as a stream, detect every N-th frame, track, fuse, identify, annotate.

Data flow (one frame at a time; the video is never held in memory)::

    file / camera ──OpenCV──▶ frame (RGB) ──every N-th: detect + embed + quality──▶ [Face]
        ──Tracker (IoU + motion, appearance)──▶ tracks ──on finish──▶ TrackResult
        (best shot by quality, fused template = quality-weighted mean of embeddings,
         identity from the gallery at its open-set threshold)        ──▶ JSON line per track
        (optional) every frame, boxes + ids + names drawn ──▶ annotated video, same frame count

:func:`analyze_video` is the one entry point; it yields each track when it finishes, so a
long video streams its results. With ``workers > 1`` (or ``dask=``), the frames are split into
ranges of ``range_frames`` frames, each range detected by a worker process that seeks to it
(:func:`scan_ranges`, run by :mod:`faceprint.batch`), and the tracker runs here on the ordered
results: the tracks are the same as in one process (as long as the container seeks exactly, as
MP4/H.264 files from OpenCV and ffmpeg do).

Bad input: a missing file, something that is not a video or a codec OpenCV cannot decode, a
video without frames and a truncated one each raise their own :class:`~faceprint.errors.VideoError`.
A truncated video raises :class:`~faceprint.errors.TruncatedVideoError` *after* the tracks of
the frames that could be decoded have been yielded (and the annotated video closed), and the
error says how many frames that was.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import (
    ConfigurationError,
    EmptyVideoError,
    TruncatedVideoError,
    UnsupportedVideoError,
    VideoNotFoundError,
    VideoTooLongError,
)
from ..types import Face
from .tracking import Observation, Track, Tracker

if TYPE_CHECKING:
    from ..gallery import Gallery
    from ..pipeline import FacePipeline

__all__ = [
    "VideoSource",
    "VideoInfo",
    "VideoReader",
    "VideoStats",
    "TrackResult",
    "analyze_video",
    "faces_in_frame",
    "scan_ranges",
    "tracker_for",
    "tracker_settings",
    "sniff_container",
    "RangeResult",
    "truncated_video_error",
]

log = logging.getLogger(__name__)

VideoSource = str | os.PathLike[str] | int
ProgressHook = Callable[[int, int | None], None]

#: a container's frame count may be estimated (duration × fps): fewer frames than announced by at
#: most this many (or 1 %) is the end of the stream, not a truncation
_COUNT_SLACK = 2


def _cv2() -> Any:
    import cv2

    return cv2


def _label(source: VideoSource) -> str:
    return f"camera {source}" if isinstance(source, int) else str(source)


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container says: frame size, rate, count (0 when unknown, e.g. a camera) and codec."""

    source: str
    width: int
    height: int
    fps: float
    frame_count: int
    codec: str

    @property
    def duration_s(self) -> float | None:
        return self.frame_count / self.fps if self.frame_count > 0 and self.fps > 0 else None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("source", "width", "height", "fps", "frame_count", "codec")}
        d["duration_s"] = None if self.duration_s is None else round(self.duration_s, 3)
        return d


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else str(code)


_CONTAINERS: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/QuickTime"),
    (4, b"moov", "MP4/QuickTime"),
    (4, b"mdat", "MP4/QuickTime"),
    (8, b"AVI ", "AVI"),
    (0, b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
)


def sniff_container(head: bytes) -> str | None:
    """The video container named by a file's first 16 bytes (None: none that faceprint knows)."""
    for offset, magic, name in _CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            return name
    return "MPEG-TS" if head[:1] == b"\x47" else None


def _container(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            return sniff_container(f.read(16))
    except OSError:
        return None


def _refuse_still_image(path: Path, label: str) -> None:
    """OpenCV opens a JPEG or PNG as a one-frame video; faceprint says it is a photo instead."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt, frames = im.format, int(getattr(im, "n_frames", 1))
    except (UnidentifiedImageError, OSError, ValueError):
        return
    if frames <= 1:
        raise UnsupportedVideoError(
            f"is a {fmt} photo, not a video: use `faceprint detect` or `faceprint embed` for photos", source=label
        )


class VideoReader:
    """Frames of a video file or camera, one at a time, as RGB uint8 (H, W, 3) arrays.

    ``start``/``stop`` read a range of frame indices (seeking to ``start``). Iterating yields
    ``(index, frame)``; :attr:`frames_read` counts them, and :attr:`truncated` says, once the
    iteration has ended, whether the stream ended before the container's announced frame count.

    Raises (on opening): :class:`VideoNotFoundError`, :class:`UnsupportedVideoError` (not a
    video, or an undecodable codec), :class:`EmptyVideoError` (no frame at all).
    """

    def __init__(self, source: VideoSource, *, start: int = 0, stop: int | None = None) -> None:
        cv2 = _cv2()
        self.source = source
        self.label = _label(source)
        if isinstance(source, bool) or not isinstance(source, (int, str, os.PathLike)):
            raise ConfigurationError(f"a video source is a path or a camera index, not {type(source).__name__}")
        if not isinstance(source, int):
            p = Path(source)
            if not p.exists():
                raise VideoNotFoundError("no such file", source=self.label)
            if p.is_dir():
                raise UnsupportedVideoError("is a folder, not a video file", source=self.label)
            if p.stat().st_size == 0:
                raise EmptyVideoError("the file is empty (0 bytes)", source=self.label)
            _refuse_still_image(p, self.label)
        cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not cap.isOpened():
            cap.release()
            if isinstance(source, int):
                raise VideoNotFoundError("no camera with this index could be opened", source=self.label)
            kind = _container(Path(source))
            if kind is None:
                raise UnsupportedVideoError("not a video file (no known container format)", source=self.label)
            why = " (an MP4 cut short loses its index, at the end)" if kind == "MP4/QuickTime" else ""
            raise UnsupportedVideoError(
                f"a {kind} file that OpenCV cannot open: truncated or damaged{why}, or in a codec it does not decode",
                source=self.label,
            )
        self._cap = cap
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.info = VideoInfo(
            self.label,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            int(count) if math.isfinite(count) and count > 0 else 0,
            _fourcc(cap.get(cv2.CAP_PROP_FOURCC)),
        )
        self.start = max(0, int(start))
        self.stop = stop
        if self.start:
            cap.set(cv2.CAP_PROP_POS_FRAMES, self.start)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            if self.start:
                raise TruncatedVideoError(
                    f"no frame could be decoded at frame {self.start}",
                    source=self.label,
                    frames_read=self.start,
                    frames_expected=self.info.frame_count,
                )
            if self.info.frame_count > 0:  # frames announced, none decodable
                raise UnsupportedVideoError(
                    f"its {self.info.frame_count} frames (codec {self.info.codec}) cannot be decoded by OpenCV",
                    source=self.label,
                )
            raise EmptyVideoError("the video holds no frame", source=self.label)
        self._first: npt.NDArray[np.uint8] | None = first
        self.frames_read = 0
        self.truncated = False

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cap.release()

    def __iter__(self) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
        cv2 = _cv2()
        index = self.start
        frame = self._first
        self._first = None
        while frame is not None:
            if self.stop is not None and index >= self.stop:
                return
            self.frames_read += 1
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
            ok, frame = self._cap.read()
            if not ok:
                frame = None
        expected = self.info.frame_count if self.stop is None else min(self.stop, self.info.frame_count or self.stop)
        if expected and index < expected - max(_COUNT_SLACK, expected // 100):
            self.truncated = True

    def truncation_error(self) -> TruncatedVideoError:
        """The error to raise for a :attr:`truncated` stream, with what was processed."""
        return truncated_video_error(self.label, self.start + self.frames_read, self.info.frame_count)


# --- per-frame work ------------------------------------------------------------------------------


def faces_in_frame(pipe: FacePipeline, frame: npt.NDArray[np.uint8]) -> list[Face]:
    """Every face of a frame that has landmarks: detected, aligned, embedded and (with the
    pipeline's quality assessor) assessed, in one batched network call."""
    dets = [d for d in pipe.detector.detect(frame) if d.landmarks is not None]
    return pipe.embed_detections(frame, dets) if dets else []


@dataclass(frozen=True, slots=True)
class RangeResult:
    """What a worker made of frames ``start``..``start + frames_read``: faces at the detected frames."""

    start: int
    frames_read: int
    truncated: bool
    detections: list[tuple[int, list[Face]]]


def scan_ranges(pipe: FacePipeline, ranges: list[tuple[str, int, int, int]]) -> list[RangeResult]:
    """Batch task (:mod:`faceprint.batch`): for each ``(path, start, stop, every)``, the faces of
    the frames ``start ≤ i < stop`` with ``i % every == 0``."""
    out = []
    for path, start, stop, every in ranges:
        try:
            r = VideoReader(path, start=start, stop=stop)
        except TruncatedVideoError:  # the file ends before this range
            out.append(RangeResult(start, 0, True, []))
            continue
        with r:
            found = [(i, faces_in_frame(pipe, f)) for i, f in r if i % every == 0]
            out.append(RangeResult(start, r.frames_read, r.truncated, found))
    return out


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackResult:
    """One finished track: where the face was, its best shot, its fused template and identity.

    ``observations`` are the detected frames (boxes between them are predictions, drawn in the
    annotated video but not listed). ``identity`` is the gallery's answer for the fused
    template at the gallery's open-set threshold (None: not enrolled, or no gallery).
    """

    id: int
    observations: list[Observation]
    best_frame: int
    best_face: Face | None
    template: Any  # Embedding | None
    identity: str | None = None
    score: float | None = None
    threshold: float | None = None

    @classmethod
    def from_track(
        cls, track: Track, identity: str | None = None, score: float | None = None, threshold: float | None = None
    ) -> TrackResult:
        return cls(
            track.id,
            list(track.observations),
            track.best_frame,
            track.best_face,
            track.template(),
            identity,
            score,
            threshold,
        )

    @property
    def first_frame(self) -> int:
        return self.observations[0].frame

    @property
    def last_frame(self) -> int:
        return self.observations[-1].frame

    def to_dict(self, *, with_embedding: bool = False, fps: float | None = None) -> dict[str, Any]:
        best = self.best_face
        d: dict[str, Any] = {
            "track": self.id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": [o.frame for o in self.observations],
            "boxes": [[round(v, 1) for v in o.box] for o in self.observations],
            "scores": [round(o.score, 4) for o in self.observations],
            "qualities": [None if o.quality is None else round(o.quality, 1) for o in self.observations],
            "best_frame": self.best_frame,
            "best_box": None if best is None else [round(v, 1) for v in best.detection.bbox.as_list()],
            "best_quality": None if best is None or best.quality is None else round(best.quality.quality, 1),
            "identity": self.identity,
            "score": None if self.score is None else round(self.score, 6),
            "threshold": None if self.threshold is None else round(self.threshold, 6),
        }
        if fps:
            d["start_s"], d["end_s"] = round(self.first_frame / fps, 3), round(self.last_frame / fps, 3)
        if self.template is not None:
            d["model"] = self.template.model
            if with_embedding:
                d["template"] = [float(x) for x in self.template.vector]
        return d


@dataclass
class VideoStats:
    """Filled in by :func:`analyze_video` as it runs: what was read, detected and reported."""

    info: VideoInfo | None = None
    frames_read: int = 0
    frames_detected: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    every: int = 1
    workers: int = 1
    identified: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": None if self.info is None else self.info.to_dict(),
            "frames_read": self.frames_read,
            "frames_detected": self.frames_detected,
            "faces": self.faces,
            "tracks": self.tracks,
            "identified": dict(self.identified),
            "every": self.every,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
        }


def tracker_settings(model_id: str, detector: str | None, *, fps: float, every: int = 1) -> dict[str, Any]:
    """:class:`Tracker` settings for an embedder (its calibrated operating points) and frame rate.

    A motion match is vetoed below the model's calibrated EER threshold: faces of one person in
    successive frames score far above it (0.99 and more for dlib's ResNet on the Hamilton clip),
    another person found at the same place after a camera cut below it (0.87-0.90 there).
    Re-finding a lost face by appearance alone takes the stricter FMR 1e-4 threshold, since
    small, blurred faces of different people in one shot score up to 0.95. A track survives
    one second without detection (at least three detection steps). A model without calibrated
    operating points is tracked by motion alone.
    """
    from ..models import operating_points_for

    opts: dict[str, Any] = {"max_age": max(int(round(fps or 30.0)), 3 * every)}
    try:
        points = operating_points_for(model_id, detector)
    except (LookupError, ConfigurationError):
        points = {}
    if "eer" in points:
        opts["veto_threshold"] = points["eer"].threshold
    if "fmr=0.0001" in points:
        opts["reid_threshold"] = points["fmr=0.0001"].threshold
    if not points:
        log.info("no calibrated operating points for %s: tracking by motion only", model_id)
    return opts


def tracker_for(pipe: FacePipeline, *, fps: float, every: int = 1, **overrides: Any) -> Tracker:
    """A :class:`Tracker` for the pipeline's embedder and the video's frame rate (:func:`tracker_settings`)."""
    spec = pipe.detector_spec
    detector = spec if isinstance(spec, str) else getattr(pipe.detector, "name", None)
    return Tracker(**{**tracker_settings(pipe.embedder.model_id, detector, fps=fps, every=every), **overrides})


# --- the run -------------------------------------------------------------------------------------


class _Identifier:
    """Identify fused templates against a gallery at its open-set threshold (cached per track state)."""

    def __init__(self, gallery: Gallery | None, threshold: float | None) -> None:
        self.gallery = gallery
        self.threshold = threshold
        self.last_threshold: float | None = None

    def __call__(self, track: Track) -> tuple[str | None, float | None]:
        t = track.template()
        if self.gallery is None or t is None:
            return None, None
        r = self.gallery.identify(t, 1, threshold=self.threshold)
        self.last_threshold = r.threshold
        best = r.best
        track.identity, track.identity_score = (best.subject, best.score) if best else (None, None)
        return track.identity, track.identity_score


def _result(track: Track, identify: _Identifier) -> TrackResult:
    name, score = identify(track)
    return TrackResult.from_track(track, name, score, identify.last_threshold if identify.gallery else None)


def analyze_video(
    source: VideoSource,
    pipeline: FacePipeline,
    *,
    every: int = 1,
    gallery: Gallery | None = None,
    threshold: float | None = None,
    output: str | os.PathLike[str] | None = None,
    tracker: Tracker | None = None,
    workers: int = 1,
    dask: Any = None,
    range_frames: int = 300,
    max_seconds: float | None = None,
    stop: int | None = None,
    progress: ProgressHook | None = None,
    stats: VideoStats | None = None,
) -> Iterator[TrackResult]:
    """Yield each face track of a video as it finishes (see the module doc).

    Args:
        source: a video file, or a camera index (``0``).
        pipeline: detector + embedder (+ quality assessor: ``FacePipeline(quality="fiqa")`` for
            best shots and quality-weighted templates; without one, detector scores and equal weights).
        every: detect every N-th frame (1: all); the tracker predicts the boxes in between.
        gallery: identify each track's fused template in it (open set, at ``threshold`` or the
            gallery's calibrated threshold); the gallery's model must be the pipeline's.
        output: write an annotated copy (boxes, track ids, names) with every frame, as MP4.
        tracker: a :class:`Tracker` (default: :func:`tracker_for` the pipeline and frame rate).
        workers: processes for detection; > 1 splits the frames into ranges of ``range_frames``
            (files only). ``dask``: a Dask client or scheduler address instead (workers must see the file).
        stop: read only the frames before this index (the start of a long file).
        max_seconds: refuse a file announced longer, or running longer (:class:`VideoTooLongError`);
            a camera stops there.
        progress: ``progress(frames_done, total_frames or None)``.
        stats: filled in while running (:class:`VideoStats`).
    """
    if every < 1:
        raise ConfigurationError(f"every must be ≥ 1, got {every}")
    if workers < 1 or range_frames < 1:
        raise ConfigurationError(f"workers and range_frames must be ≥ 1, got {workers} and {range_frames}")
    if output is not None and not str(output).lower().endswith((".mp4", ".m4v", ".mov", ".avi")):
        raise ConfigurationError(f"the annotated video must be a .mp4 (or .mov/.avi) file, got {output}")
    stats = stats if stats is not None else VideoStats()
    stats.every, stats.workers = every, workers if dask is None else 0
    run = _Run(source, pipeline, every, max_seconds, stats, stop)
    try:
        trk = tracker or tracker_for(pipeline, fps=run.info.fps, every=every)
        identify = _Identifier(gallery, threshold)
        writer = _Annotator(output, run.info) if output is not None else None
        try:
            frames, detections = run.streams(workers, dask, range_frames, annotate=writer is not None)
            for index, frame, faces in run.steps(frames, detections):
                if faces is not None:
                    for t in trk.update(index, faces):
                        yield _count(stats, _result(t, identify))
                    if writer is not None and gallery is not None:  # names drawn as tracks grow
                        for t in trk.active:
                            if t.last_frame == index:
                                identify(t)
                if writer is not None and frame is not None:
                    writer.write(frame, index, trk.active, every)
                if progress is not None and (index % 10 == 0 or index + 1 == run.info.frame_count):
                    progress(index + 1, run.info.frame_count or None)
            truncation = run.truncation(detections)
            for t in trk.finish():
                yield _count(stats, _result(t, identify))
        finally:
            if writer is not None:
                writer.close()
    finally:
        run.close()
    if truncation is not None:
        raise truncation


class _Run:
    """The reading side of :func:`analyze_video`: frames, the faces of detected ones, limits, stats."""

    def __init__(
        self,
        source: VideoSource,
        pipeline: FacePipeline,
        every: int,
        max_seconds: float | None,
        stats: VideoStats,
        stop: int | None = None,
    ) -> None:
        self.source, self.pipeline, self.every, self.stats, self.stop = source, pipeline, every, stats, stop
        self.started = time.perf_counter()
        self.reader = VideoReader(source, stop=stop)
        self.info = stats.info = self.reader.info
        self.max_seconds = max_seconds
        self.max_frames: int | None = None
        if max_seconds is not None:
            dur = self.info.duration_s
            if dur is not None and dur > max_seconds:
                self.reader.close()
                msg = f"the video lasts {dur:.1f} s; the limit is {max_seconds:g} s"
                raise VideoTooLongError(msg, source=self.label)
            self.max_frames = int(math.ceil(max_seconds * (self.info.fps or 30.0)))

    @property
    def label(self) -> str:
        return self.reader.label

    def streams(
        self, workers: int, dask: Any, range_frames: int, *, annotate: bool
    ) -> tuple[Iterator[tuple[int, npt.NDArray[np.uint8] | None]], _ParallelDetections | None]:
        """(frames, faces of detected frames from workers or None: detect here)."""
        parallel = (workers > 1 or dask is not None) and not isinstance(self.source, int) and self.info.frame_count > 0
        if not parallel:
            return iter(self.reader), None
        self.reader.close()
        end = self.info.frame_count if self.stop is None else min(self.stop, self.info.frame_count)
        if self.max_frames is not None:  # one frame past the limit, to say so
            end = min(end, self.max_frames + 1)
        detections = _parallel_detections(self.pipeline, str(self.source), self.every, workers, dask, range_frames, end)
        if annotate:  # the frames to draw on, decoded here
            self.reader = VideoReader(self.source, stop=self.stop)
            return iter(self.reader), detections
        return _no_frames(detections.frames), detections

    def steps(
        self, frames: Iterator[tuple[int, npt.NDArray[np.uint8] | None]], detections: _ParallelDetections | None
    ) -> Iterator[tuple[int, npt.NDArray[np.uint8] | None, list[Face] | None]]:
        """``(index, frame or None, faces or None when not a detected frame)`` for every frame."""
        pending: tuple[int, list[Face]] | None = None
        for index, frame in frames:
            if self.max_frames is not None and index >= self.max_frames:
                if isinstance(self.source, int):  # a camera: the limit is where the run stops
                    return
                raise VideoTooLongError(f"the video runs past the limit of {self.max_seconds:g} s", source=self.label)
            faces: list[Face] | None = None
            if index % self.every == 0:
                if detections is None:
                    assert frame is not None
                    faces = faces_in_frame(self.pipeline, frame)
                else:
                    if pending is None or pending[0] < index:
                        pending = next(detections, None)
                    if pending is not None and pending[0] == index:
                        faces = pending[1]
            if faces is not None:
                self.stats.frames_detected += 1
                self.stats.faces += len(faces)
            self.stats.frames_read = index + 1
            yield index, frame, faces

    def truncation(self, detections: _ParallelDetections | None) -> TruncatedVideoError | None:
        if detections is not None:
            end = detections.truncated_at
            return None if end is None else truncated_video_error(self.label, end, self.info.frame_count)
        return self.reader.truncation_error() if self.reader.truncated else None

    def close(self) -> None:
        self.reader.close()
        self.stats.seconds = time.perf_counter() - self.started


def _count(stats: VideoStats, r: TrackResult) -> TrackResult:
    stats.tracks += 1
    if r.identity is not None:
        stats.identified[r.identity] = stats.identified.get(r.identity, 0) + 1
    return r


def truncated_video_error(label: str, end: int, count: int) -> TruncatedVideoError:
    """The error of a video that stopped decoding after ``end`` of its announced ``count`` frames."""
    return TruncatedVideoError(
        f"decoding stopped after frame {end} of {count} (truncated or damaged file); "
        f"the tracks of the {end} frames read were reported",
        source=label,
        frames_read=end,
        frames_expected=count,
    )


def _no_frames(counter: Callable[[], Iterator[int]]) -> Iterator[tuple[int, None]]:
    for i in counter():
        yield i, None


class _ParallelDetections:
    """Faces of the detected frames, in order, from worker processes scanning frame ranges."""

    def __init__(self, results: Iterator[tuple[list[Any], list[Any]]], ranges: list[tuple[str, int, int, int]]) -> None:
        self._results = results
        self._ranges = ranges
        self.truncated_at: int | None = None
        self._buffer: list[tuple[int, list[Face]]] = []
        self._read_upto = 0

    def __iter__(self) -> Iterator[tuple[int, list[Face]]]:
        return self

    def _fill(self) -> bool:
        if self.truncated_at is not None:
            return False
        got = next(self._results, None)
        if got is None:
            return False
        _chunk, results = got
        rr: RangeResult = results[0]
        self._buffer.extend(rr.detections)
        self._read_upto = rr.start + rr.frames_read
        if rr.truncated:
            self.truncated_at = self._read_upto
        return True

    def __next__(self) -> tuple[int, list[Face]]:
        while not self._buffer:
            if not self._fill():
                raise StopIteration
        return self._buffer.pop(0)

    def frames(self) -> Iterator[int]:
        """Frame indices read by the workers, in order (for a run that does not annotate)."""
        i = 0
        while True:
            while i >= self._read_upto:
                if not self._fill():
                    return
            yield i
            i += 1


def _parallel_detections(
    pipe: FacePipeline, path: str, every: int, workers: int, dask: Any, range_frames: int, end: int
) -> _ParallelDetections:
    """Frames ``0 ≤ i < end`` in ranges of ``range_frames``, detected by workers (:func:`scan_ranges`)."""
    from .. import batch

    ranges = [(path, s, min(s + range_frames, end), every) for s in range(0, end, range_frames)]
    executor = batch.executor_for(workers, dask)
    chunks: list[list[Any]] = [[r] for r in ranges]
    results: Iterator[tuple[list[Any], list[Any]]] = batch.run_chunks(
        pipe,
        scan_ranges,
        chunks,
        executor=executor,
        chunk_size=None,
        expected_model=batch.model_tag(pipe),
    )
    return _ParallelDetections(results, ranges)


# --- the annotated copy --------------------------------------------------------------------------

_COLOURS = [(66, 135, 245), (245, 66, 93), (66, 245, 138), (245, 200, 66), (180, 66, 245), (66, 230, 245)]


class _Annotator:
    """Writes every frame with each live track's box (measured or predicted), id and name."""

    def __init__(self, path: str | os.PathLike[str], info: VideoInfo) -> None:
        cv2 = _cv2()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self._w = cv2.VideoWriter(str(self.path), fourcc, info.fps or 30.0, (info.width, info.height))
        if not self._w.isOpened():
            raise ConfigurationError(f"cannot write a video to {self.path}")
        self.size = (info.width, info.height)

    def write(self, rgb: npt.NDArray[np.uint8], index: int, tracks: list[Track], every: int) -> None:
        cv2 = _cv2()
        img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if (img.shape[1], img.shape[0]) != self.size:  # a stream that changes size mid-way
            img = cv2.resize(img, self.size)
        for t in tracks:
            if index - t.last_frame >= every:  # not seen at the last detection step: no box
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in t.predict(index))
            colour = _COLOURS[t.id % len(_COLOURS)]
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            text = f"#{t.id}" + (f" {t.identity}" if t.identity else "")
            cv2.putText(img, text, (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        self._w.write(img)

    def close(self) -> None:
        self._w.release()
