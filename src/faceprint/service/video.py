"""``POST /v1/video``: face tracks of an uploaded video, as an asynchronous job.

upload → ``202 {"job_id"}`` → ``GET /v1/video/{job_id}`` (status, progress) → ``GET
/v1/video/{job_id}/result`` (the tracks, once done). The same checks as the photo routes come
first: the key (role ``recognize``; with ``gallery=``, scoped to that gallery), the request and
file byte limits (the form is read in memory), then the content (a known video container, 415
otherwise), the duration (``FACEPRINT_VIDEO_MAX_SECONDS``, 413 above) and the frame size
(``max_pixels``), all before the job is accepted.

The video's bytes are written to one 0600 file in RAM (``$FACEPRINT_RAM_DIR``, default
``/dev/shm``: OpenCV decodes from a path), removed when the job ends, fails or is cancelled;
nothing reaches a disk. The job's result stays in memory for ``FACEPRINT_VIDEO_RESULT_TTL_S``
(1 h) and is seen only by the key that made it (and admins; others get 404).

The model work is cut into ranges of ``RANGE_FRAMES`` frames, each an ordinary inference job
(:func:`scan`, in a worker process, with the per-request time limit and the key's fair share of
the workers); the tracker, the fused templates and the gallery search run here. Best shots use
the workers' quality assessor, or ``fiqa-fast`` when the service runs without one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from ..errors import (
    FaceprintError,
    GalleryNotFoundError,
    RequestTooLargeError,
    ServiceUnavailableError,
    UnsupportedVideoError,
    VideoTooLongError,
)
from ..media.tracking import Track, Tracker
from ..media.video import (
    RangeResult,
    TrackResult,
    VideoReader,
    VideoStats,
    scan_ranges,
    sniff_container,
    tracker_settings,
    truncated_video_error,
)
from ..pipeline import FacePipeline
from .auth import GALLERY_NAME_RE, APIKey, Role
from .deps import ServiceState, audit, check_access, get_state, require, upload_form
from .problems import problem_spec
from .routers import AUTH_ERRORS, UPLOAD_ERRORS, multipart_body, problems

__all__ = ["router", "VideoLimits", "VideoJob", "VideoResult", "VideoTrack", "scan"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/video", tags=["video"])

Recognize = Annotated[APIKey, Depends(require(Role.RECOGNIZE))]

#: frames per inference job: a few seconds of video, well inside the per-job time limit
RANGE_FRAMES = 60


@dataclass(frozen=True)
class VideoLimits:
    """The video route's own limits, from the environment (the photo limits apply as well)."""

    max_seconds: float = 120.0
    max_jobs: int = 4
    max_jobs_per_key: int = 1
    result_ttl_s: float = 3600.0
    max_results: int = 100

    @classmethod
    def from_env(cls) -> VideoLimits:
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name)
            return float(raw) if raw else default

        return cls(
            max_seconds=num("FACEPRINT_VIDEO_MAX_SECONDS", cls.max_seconds),
            max_jobs=int(num("FACEPRINT_VIDEO_MAX_JOBS", cls.max_jobs)),
            max_jobs_per_key=int(num("FACEPRINT_VIDEO_MAX_JOBS_PER_KEY", cls.max_jobs_per_key)),
            result_ttl_s=num("FACEPRINT_VIDEO_RESULT_TTL_S", cls.result_ttl_s),
        )


# --- bodies ----------------------------------------------------------------------------------------


class VideoTrack(BaseModel):
    track: int
    first_frame: int
    last_frame: int
    start_s: float | None = None
    end_s: float | None = None
    frames: list[int] = Field(description="frames where the face was detected")
    boxes: list[list[float]] = Field(description="x1, y1, x2, y2 at each of those frames")
    scores: list[float]
    qualities: list[float | None]
    best_frame: int
    best_box: list[float] | None
    best_quality: float | None
    identity: str | None = Field(description="the gallery's subject for the fused template (None: not enrolled)")
    score: float | None
    threshold: float | None
    model: str | None = None


class VideoResult(BaseModel):
    video: dict[str, Any]
    frames_read: int
    frames_detected: int
    faces: int
    tracks: list[VideoTrack]
    gallery: str | None = None
    error: dict[str, Any] | None = Field(
        default=None,
        description="a video that stops early (truncated, damaged): the tracks are those of the frames read",
    )


class VideoJob(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed"]
    frames_done: int = 0
    frames_total: int = 0
    gallery: str | None = None
    every: int = 3
    created: float = Field(description="Unix time the job was accepted")
    finished: float | None = None
    error: dict[str, Any] | None = Field(None, description="problem details of a failed job")


# --- jobs ------------------------------------------------------------------------------------------


def scan(pipe: FacePipeline, path: str, start: int, stop: int, every: int) -> RangeResult:
    """Inference job: the faces of frames ``start ≤ i < stop`` (``i % every == 0``) of the file."""
    if pipe.quality is None:  # best shots need a quality score: the cheap assessor
        pipe = FacePipeline(pipe.detector, pipe.embedder, max_pixels=pipe.max_pixels, quality="fiqa-fast")
    return scan_ranges(pipe, [(path, start, stop, every)])[0]


@dataclass
class _Job:
    id: str
    owner: str
    gallery: str | None
    every: int
    total: int
    created: float = field(default_factory=time.time)
    state: Literal["queued", "running", "done", "failed"] = "queued"
    done: int = 0
    finished: float | None = None
    result: VideoResult | None = None
    error: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = None

    def out(self) -> VideoJob:
        return VideoJob(
            job_id=self.id,
            status=self.state,
            frames_done=self.done,
            frames_total=self.total,
            gallery=self.gallery,
            every=self.every,
            created=self.created,
            finished=self.finished,
            error=self.error,
        )


class _Jobs:
    """The app's video jobs, in memory: admission limits, expiry of old results."""

    def __init__(self, limits: VideoLimits) -> None:
        self.limits = limits
        self.jobs: dict[str, _Job] = {}

    def expire(self) -> None:
        now = time.time()
        ended = sorted((j for j in self.jobs.values() if j.finished is not None), key=lambda j: j.finished or 0.0)
        for j in ended:
            if now - (j.finished or now) > self.limits.result_ttl_s or len(ended) > self.limits.max_results:
                del self.jobs[j.id]
                ended = ended[1:]

    def admit(self, owner: str, gallery: str | None, every: int, total: int) -> _Job:
        self.check(owner)
        job = _Job(secrets.token_urlsafe(16), owner, gallery, every, total)
        self.jobs[job.id] = job
        return job

    def check(self, owner: str) -> None:
        """503 when the service, or this key, has as many video jobs running as allowed."""
        self.expire()
        active = [j for j in self.jobs.values() if j.finished is None]
        if len(active) >= self.limits.max_jobs:
            raise ServiceUnavailableError(f"{len(active)} video jobs are running; try again later", retry_after=10)
        if sum(j.owner == owner for j in active) >= self.limits.max_jobs_per_key:
            raise ServiceUnavailableError(
                "this API key already has a video job running; wait for it to finish", retry_after=10
            )

    def get(self, job_id: str, key: APIKey) -> _Job:
        job = self.jobs.get(job_id)
        if job is None or (job.owner != key.id and not key.allows(Role.ADMIN)):  # another key's: as if absent
            raise HTTPException(404, "no such video job (it may have expired)")
        return job


def _jobs(request: Request) -> _Jobs:
    app_state = request.app.state
    jobs = getattr(app_state, "faceprint_video_jobs", None)
    if jobs is None:
        jobs = app_state.faceprint_video_jobs = _Jobs(VideoLimits.from_env())
    return jobs  # type: ignore[no-any-return]


def _ram_file(data: bytes, suffix: str) -> Path:
    """The upload in a 0600 file in RAM (removed by the job)."""
    from ..errors import ConfigurationError
    from .galleries import ram_dir

    try:
        folder = ram_dir()
    except ConfigurationError:
        log.error("video uploads need a RAM folder: set FACEPRINT_RAM_DIR to a writable tmpfs mount")
        raise ServiceUnavailableError("video uploads are not available on this server", retry_after=3600) from None
    fd, name = tempfile.mkstemp(prefix="faceprint-video-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _probe(path: Path, max_seconds: float, max_pixels: int) -> int:
    """The frame count, after the checks that need the decoder: opens, has frames, within limits."""
    with VideoReader(path) as r:
        info = r.info
    label = "'video'"
    if info.width * info.height > max_pixels:
        raise RequestTooLargeError(f"{label}: frames of {info.width}x{info.height} are over {max_pixels:,} pixels")
    dur = info.duration_s
    if dur is None:
        raise UnsupportedVideoError("the container states no frame count or frame rate", source=label)
    if dur > max_seconds:
        raise VideoTooLongError(f"the video lasts {dur:.1f} s; the limit is {max_seconds:g} s", source=label)
    return info.frame_count


async def _run(state: ServiceState, request: Request, job: _Job, path: Path, key: APIKey) -> None:
    """Scan the ranges on the inference workers, track here, identify, keep the result."""
    try:
        pool = state.require_pool()
        job.state = "running"
        info = await state.read(lambda: _info(path))
        tracker = Tracker(**tracker_settings(pool.embedder_model_id, pool.detector_name, fps=info.fps, every=job.every))
        tracks: list[Track] = []
        stats = VideoStats(info=info, every=job.every)
        for start in range(0, job.total, RANGE_FRAMES):
            stop = min(start + RANGE_FRAMES, job.total)
            rr = await pool.run("video", scan, str(path), start, stop, job.every, owner=key.id)
            for frame, faces in rr.detections:
                stats.frames_detected += 1
                stats.faces += len(faces)
                tracks += tracker.update(frame, faces)
            job.done = stats.frames_read = start + rr.frames_read
            if rr.truncated:
                break
        tracks += tracker.finish()
        job.result = await _identify(state, request, job, key, tracks, stats)
        if stats.frames_read < job.total:
            exc = truncated_video_error("'video'", stats.frames_read, job.total)
            job.result.error = {"code": problem_spec(exc).code, "detail": str(exc)}
        job.state = "done"
    except FaceprintError as exc:
        spec = problem_spec(exc)
        job.state, job.error = "failed", {"code": spec.code, "status": spec.status, "detail": str(exc)}
    except Exception as exc:  # a bug: logged; the caller gets the code only
        log.exception("video job %s failed", job.id)
        job.state, job.error = "failed", {"code": "internal_error", "status": 500, "detail": type(exc).__name__}
    finally:
        job.finished = time.time()
        path.unlink(missing_ok=True)


def _info(path: Path) -> Any:
    with VideoReader(path) as r:
        return r.info


async def _identify(
    state: ServiceState, request: Request, job: _Job, key: APIKey, tracks: list[Track], stats: VideoStats
) -> VideoResult:
    """Each track's fused template searched in the job's gallery (the identify route's threshold rules)."""
    out: list[VideoTrack] = []
    fps = stats.info.fps if stats.info else None
    floor = not key.allows(Role.ADMIN)
    identified = 0
    for t in tracks:
        r = TrackResult.from_track(t)
        if job.gallery is not None and r.template is not None:
            store, name, template = state.galleries, job.gallery, r.template
            ident = await state.read(lambda: store.identify(name, template, 1, None, floor=floor))  # noqa: B023
            best = ident.best
            r = TrackResult.from_track(t, best.subject if best else None, best.score if best else None, ident.threshold)
            identified += best is not None
        out.append(VideoTrack(**r.to_dict(fps=fps)))
    if job.gallery is not None:
        outcome = "identified" if identified else "not_identified"  # never names or scores: counts only
        await audit(
            request, "video_identify", key_id=key.id, gallery=job.gallery, outcome=outcome, candidates=identified
        )
    return VideoResult(
        video=stats.info.to_dict() if stats.info else {},
        frames_read=stats.frames_read,
        frames_detected=stats.frames_detected,
        faces=stats.faces,
        tracks=out,
        gallery=job.gallery,
    )


# --- routes ----------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VideoJob,
    summary="Track, fuse and identify the faces of a video (asynchronous job)",
    description="Send the video as multipart field `video` (the photo routes' byte limits apply). The "
    "answer names a job: poll `GET /v1/video/{job_id}`, then read `GET /v1/video/{job_id}/result`. "
    "With `gallery`, each track's fused template is identified there at the gallery's open-set threshold "
    "(the key must reach that gallery).",
    openapi_extra=multipart_body({"video": "the video (MP4, AVI, MKV, WebM, MOV…)"}, required=["video"]),
    responses=problems(*AUTH_ERRORS, *UPLOAD_ERRORS, 404),
)
async def submit(
    request: Request,
    key: Recognize,
    gallery: Annotated[
        str | None, Query(pattern=GALLERY_NAME_RE.pattern, description="identify the tracks in this gallery")
    ] = None,
    every: Annotated[int, Query(ge=1, le=30, description="detect every N-th frame; tracking fills the rest")] = 3,
) -> VideoJob:
    state = get_state(request)
    jobs = _jobs(request)
    if gallery is not None:
        await check_access(request, key, Role.RECOGNIZE, gallery)
        store = state.galleries
        if store is None or not await state.read(lambda: store.exists(gallery)):
            raise GalleryNotFoundError(f"no gallery {gallery!r}")
    state.require_pool()
    jobs.check(key.id)  # before reading the upload
    form = await upload_form(request, max_files=1)
    data = form.file("video")
    kind = sniff_container(data[:16])
    if kind is None:
        raise UnsupportedVideoError("'video' is not a video file (no known container format)")
    path = await state.read(lambda: _ram_file(data, ".avi" if kind == "AVI" else ".mp4"))
    try:
        limits = jobs.limits
        total = await state.read(lambda: _probe(path, limits.max_seconds, state.settings.max_pixels))
        job = jobs.admit(key.id, gallery, every, total)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job.task = asyncio.get_running_loop().create_task(_run(state, request, job, path, key))
    return job.out()


JobId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="the job id from POST /v1/video")]


@router.get("/{job_id}", response_model=VideoJob, summary="A video job's status", responses=problems(*AUTH_ERRORS, 404))
async def job_status(request: Request, job_id: JobId, key: Recognize) -> VideoJob:
    return _jobs(request).get(job_id, key).out()


@router.get(
    "/{job_id}/result",
    response_model=VideoResult,
    summary="A finished video job's tracks",
    responses=problems(*AUTH_ERRORS, 404, 409),
)
async def job_result(request: Request, job_id: JobId, key: Recognize) -> VideoResult:
    job = _jobs(request).get(job_id, key)
    if job.result is None:
        what = f"failed ({job.error['code']})" if job.error else f"is {job.state}"
        raise HTTPException(409, f"the job {what}: see GET /v1/video/{job_id}")
    return job.result
