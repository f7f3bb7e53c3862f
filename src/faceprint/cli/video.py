"""``faceprint video IN.mp4|CAMERA``: face tracks of a video, identified against a gallery.

A few lines around :func:`faceprint.media.video.analyze_video`: one line (text or JSON) per
track as it finishes, a summary at the end, the annotated copy with ``-o``. A truncated or
damaged video ends with exit code 3 *after* the tracks of the frames read were printed (the
``--json`` summary line then carries the error).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app_common import done_counter, progress_bar

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import ExitStack

    from ..gallery import Gallery
    from ..media.video import TrackResult, VideoStats
    from ..pipeline import FacePipeline


def register(app: typer.Typer) -> None:
    app.command("video")(video)


def _source(text: str) -> str | int:
    """A camera index (``0``) or a path."""
    return int(text) if text.isdigit() else text


def _text(r: TrackResult) -> str:
    d = r.to_dict()
    who = f"{r.identity} ({r.score:.3f})" if r.identity else ("unknown" if r.threshold is not None else "")
    q = f", quality {d['best_quality']:.0f}" if d["best_quality"] is not None else ""
    return (
        f"track {r.id}: frames {r.first_frame}-{r.last_frame} ({len(r.observations)} detections), "
        f"best frame {r.best_frame}{q}" + (f": {who}" if who else "")
    )


def _summary(stats: VideoStats) -> str:
    ids = ", ".join(f"{k} ×{v}" for k, v in sorted(stats.identified.items()))
    return (
        f"{stats.frames_read} frames ({stats.frames_detected} detected), {stats.faces} faces, "
        f"{stats.tracks} tracks" + (f"; identified: {ids}" if ids else "") + f"; {stats.fps:.1f} frames/s"
    )


def video(
    source: Annotated[str, typer.Argument(help="Video file, or a camera index (0, 1, …).", show_default=False)],
    gallery: Annotated[
        str | None, typer.Option("--gallery", "-g", help="Identify each track in this gallery (open set).")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write an annotated copy (boxes, track ids, names), .mp4.")
    ] = None,
    every: Annotated[int, typer.Option("--every", min=1, help="Detect every N-th frame; tracking fills the rest.")] = 3,
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector backend (default: the gallery's, else dlib-hog-mmod).")
    ] = None,
    quality: Annotated[
        str,
        typer.Option(
            "--quality", help="Quality assessor for best shots and template weights: fiqa, fiqa-fast or none."
        ),
    ] = "fiqa",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Processes; > 1 splits a file into frame ranges.")
    ] = 1,
    dask: Annotated[
        str | None, typer.Option("--dask", help="Run the frame ranges on Dask (scheduler address or 'local').")
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=0.0, help="Refuse longer videos; stop a camera there.")
    ] = None,
    templates: Annotated[
        bool, typer.Option("--templates", help="Include each track's fused template in the JSON (biometric data).")
    ] = False,
    backend: Annotated[str | None, typer.Option("--backend", help="Gallery backend: sqlite or milvus.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines: one per track, then a summary.")] = False,
) -> None:
    """Track the faces of a video: per track, its frames and boxes, best shot, fused template and identity."""
    from contextlib import ExitStack

    from ..errors import VideoError
    from ..media.video import VideoStats, analyze_video

    src = _source(source)
    stats = VideoStats()
    with ExitStack() as stack:
        progress = _progress(stack, src)  # opens the file first: a bad one fails before the models load
        g, pipe = _gallery_and_pipeline(stack, gallery, backend, detector, None if quality == "none" else quality)
        runner = analyze_video(
            src,
            pipe,
            every=every,
            gallery=g,
            output=output,
            workers=workers,
            dask=dask,
            max_seconds=max_seconds,
            progress=progress,
            stats=stats,
        )
        try:
            for r in runner:
                fps = stats.info.fps if stats.info else None
                typer.echo(json.dumps(r.to_dict(with_embedding=templates, fps=fps)) if json_out else _text(r))
        except VideoError as exc:
            if stats.frames_read:  # what was processed before the error, then the error
                _finish(stats, json_out, output, error=exc)
            raise
    _finish(stats, json_out, output)


def _gallery_and_pipeline(
    stack: ExitStack, gallery: str | None, backend: str | None, detector: str | None, quality: str | None
) -> tuple[Gallery | None, FacePipeline]:
    """The opened gallery (closed with ``stack``) and the pipeline: the gallery's, with ``quality``."""
    from ..pipeline import DEFAULT_DETECTOR, FacePipeline
    from .gallery import _open, _pipeline

    if gallery is None:
        return None, FacePipeline(detector or DEFAULT_DETECTOR, quality=quality)
    g = stack.enter_context(_open(gallery, backend))
    return g, _pipeline(detector, None, quality=quality, stored=g.settings.pipeline) or g.get_pipeline()


def _progress(stack: ExitStack, src: str | int) -> Callable[[int, int | None], None]:
    """A progress bar over the frames of a file (none for a camera: it is opened once, by the run)."""
    from ..media.video import VideoReader

    if isinstance(src, int):
        return lambda done, total: None
    with VideoReader(src) as probe:
        total = probe.info.frame_count
    if not total:
        return lambda done, total: None
    return done_counter(stack.enter_context(progress_bar(total, "frames")))


def _finish(stats: VideoStats, json_out: bool, output: str | None, error: Exception | None = None) -> None:
    doc: dict[str, Any] = stats.to_dict()
    if output is not None:
        doc["annotated"] = output
    if error is not None:
        from .app import error_code

        doc["error"] = {"code": error_code(error), "message": str(error)}
    if json_out:
        typer.echo(json.dumps({"summary": doc}))
    else:
        typer.echo(_summary(stats) + (f"; annotated video: {output}" if output else ""), err=error is not None)
