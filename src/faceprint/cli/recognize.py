"""``faceprint detect | embed | verify``: each a few lines around one library call."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..errors import ConfigurationError, ImageError
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, FacePipeline, ImageResult, Selection
from .app_common import (
    EXIT_BAD_INPUT,
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    IMAGE_SUFFIXES,
    emit_error_line,
    finite_float,
    iter_images,
    progress_bar,
)

log = logging.getLogger(__name__)

DetectorOpt = Annotated[str, typer.Option("--detector", help="Detector backend (see `faceprint models list`).")]
EmbedderOpt = Annotated[str, typer.Option("--embedder", help="Embedder backend (see `faceprint models list`).")]
UpsampleOpt = Annotated[
    int | None, typer.Option("--upsample", help="dlib detectors: times to double the image (overrides --min-face).")
]
MinFaceOpt = Annotated[
    float | None,
    typer.Option(
        "--min-face",
        help="Smallest face wanted, in pixels (dlib and yunet detectors; default 40). "
        "Detection cost grows as it shrinks.",
    ),
]
TtaOpt = Annotated[
    str,
    typer.Option(
        "--tta",
        help="Test-time augmentation: none, flip (chip + mirror image) or jitterN; its own model id and thresholds.",
    ),
]
MaxPixelsOpt = Annotated[
    int, typer.Option("--max-pixels", help="Refuse images with more pixels than this (0: no limit).", min=0)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
FaceSelectOpt = Annotated[
    Literal["all", "largest", "central"], typer.Option(help="Faces per image: all, largest or central.")
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="SCHEDULER",
        help="Run on a Dask cluster: a scheduler address (tcp://host:8786) or 'local'. "
        "Workers need faceprint and the same models.",
    ),
]


#: Images per worker process below which ``embed`` runs in this process: a worker costs about a
#: second to start (imports, models), the time to embed ~100 images on one core.
IMAGES_PER_WORKER = 150


def auto_workers(n_images: int, cores: int) -> int:
    """Worker processes for ``n_images``: one per core, but no more than the images pay for."""
    return max(1, min(cores, n_images // IMAGES_PER_WORKER))


def _detector_options(upsample: int | None, min_face: float | None) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if upsample is not None:
        opts["upsample"] = upsample
    if min_face is not None:
        opts["min_face"] = min_face
    return opts


def _pipeline(
    detector: str,
    embedder: str,
    upsample: int | None,
    max_pixels: int,
    *,
    min_face: float | None = None,
    tta: str = "none",
) -> FacePipeline:
    det_opts = _detector_options(upsample, min_face)
    return FacePipeline(detector, embedder, detector_options=det_opts, max_pixels=max_pixels or None, tta=tta)


def _image_paths(inputs: list[Path]) -> list[Path]:
    """The image files of the inputs (folders walked); a usage error when there are none."""
    paths = list(iter_images(inputs))
    if not paths:
        raise ConfigurationError(
            f"no images in {', '.join(map(str, inputs))} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return paths


def detect(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    detector: DetectorOpt = DEFAULT_DETECTOR,
    upsample: UpsampleOpt = None,
    min_face: MinFaceOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
) -> None:
    """Print the faces in each image as JSON lines: {"image", "faces": [{"bbox", "score", "landmarks"}]}."""
    from ..io import load_image
    from ..registry import detectors

    paths = _image_paths(images)
    det = detectors.create(detector, **_detector_options(upsample, min_face))
    failed = 0
    for path in paths:
        try:
            img = load_image(path, max_pixels=max_pixels or None)
            faces = det.detect(img)
        except Exception as exc:  # report and go on: one bad file must not stop the run
            failed += 1
            emit_error_line(str(path), exc)
            continue
        line = {
            "image": str(path),
            "width": img.shape[1],
            "height": img.shape[0],
            "faces": [f.to_dict() for f in faces],
        }
        sys.stdout.write(json.dumps(line) + "\n")
    if failed:
        raise typer.Exit(code=3)


def embed(
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file: .npz, or .parquet (needs pyarrow).")],
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    min_face: MinFaceOpt = None,
    tta: TtaOpt = "none",
    select: Annotated[Selection, typer.Option(help="Faces per image: all, largest or central.")] = "all",
    workers: Annotated[
        int, typer.Option(help="Worker processes (0: one per core, fewer for small inputs; 1: this process).")
    ] = 0,
    dask: DaskOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Embed every face of every image and save embeddings with path, bbox, landmarks and model id."""
    from ..export import EmbeddingWriter, check_output_path
    from ..pipeline import _cpu_count

    check_output_path(output)  # before any work
    paths = _image_paths(inputs)
    pipe = _pipeline(detector, embedder, upsample, max_pixels, min_face=min_face, tta=tta)
    emb = pipe.embedder
    writer = EmbeddingWriter(output, model=pipe.model_tag, dim=emb.dim)
    failed: list[ImageResult] = []
    with progress_bar(len(paths), "embedding") as advance:
        for res in pipe.embed_many(
            paths,
            select=select,
            workers=workers or auto_workers(len(paths), _cpu_count()),
            progress=None,
            total=len(paths),  # type: ignore[arg-type]
            dask=dask,
        ):
            if res.error is not None:
                failed.append(res)
                emit_error_line(res.source, res.error)
            writer.add(res)
            advance(1)
    if len(failed) == len(paths):  # nothing could be read: keep whatever the output file held
        raise ImageError(f"none of the {len(paths)} images could be read; {output} was not written")
    summary = writer.close()
    summary["failed"] = len(failed)
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"{summary['faces']} faces from {summary['images']} images "
            f"({summary['images_without_face']} without a face, {len(failed)} unreadable) → {output}",
            err=True,
        )
    if failed:  # the file holds every readable image; the exit code says some were not
        raise typer.Exit(code=EXIT_BAD_INPUT)
    if not summary["faces"]:
        typer.echo(f"no face found in any of the {summary['images']} images; {output} has 0 rows", err=True)
        raise typer.Exit(code=EXIT_NO_FACE)


def verify(
    image_a: Annotated[Path, typer.Argument(help="First photo.")],
    image_b: Annotated[Path, typer.Argument(help="Second photo.")],
    operating_point: Annotated[
        str, typer.Option("--operating-point", "-p", help="Calibrated threshold to use: 'fmr=0.001' or 'eer'.")
    ] = "fmr=0.001",
    threshold: Annotated[
        float | None, typer.Option(help="Explicit cosine threshold (overrides -p).", callback=finite_float)
    ] = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    min_face: MinFaceOpt = None,
    tta: TtaOpt = "none",
    select: Annotated[
        Selection,
        typer.Option(help="Which face of each photo: largest, or central (nearest the centre: for centred crops)."),
    ] = "largest",
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Are the main faces of two photos the same person? Exit code 0: match, 1: no match."""
    pipe = _pipeline(detector, embedder, upsample, max_pixels, min_face=min_face, tta=tta)
    res = pipe.verify(image_a, image_b, operating_point_name=operating_point, threshold=threshold, select=select)
    d = res.decision
    if json_out:
        typer.echo(json.dumps({"image_a": str(image_a), "image_b": str(image_b), **res.to_dict()}))
    else:
        verdict = "MATCH" if d.match else "NO MATCH"
        fmr = "" if d.fmr != d.fmr else f", calibrated FMR {d.fmr:.2g}"
        typer.echo(f"{verdict}: similarity {d.score:.4f}, threshold {d.threshold:.4f} ({d.operating_point}{fmr})")
    if not d.match:
        raise typer.Exit(code=EXIT_NO_MATCH)


def register(app: typer.Typer) -> None:
    app.command("detect")(detect)
    app.command("embed")(embed)
    app.command("verify")(verify)
