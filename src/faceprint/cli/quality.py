"""``faceprint quality IMG_OR_DIR...``: the quality of every face, as JSON lines or a table.

One library call per image (:meth:`faceprint.pipeline.FacePipeline.assess_quality`). Exit
codes as for ``detect``: 0 when every image was read and had a face, 3 when an image could not
be read (its error is reported as a JSON line on stderr and the others go on), 4 when every
image was read but one had no face (reported the same way, as a ``NoFaceError``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR
from ..types import Face
from .app_common import ImageTally, faces_by_image
from .recognize import DetectorOpt, FaceSelectOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt

__all__ = ["quality", "register"]


def _line(source: str, i: int, face: Face, explain: bool) -> dict[str, Any]:
    from ..quality.select import reasons

    assert face.quality is not None
    q = face.quality.to_dict()
    line: dict[str, Any] = {
        "source": source,
        "face": i,
        "bbox": [round(v, 1) for v in face.detection.bbox.as_list()],
        "quality": q["quality"],
        "components": q["components"],
        "assessor": q["assessor"],
    }
    if explain:
        line["explain"] = reasons(face.quality)
    return line


def _table_row(line: dict[str, Any], explain: bool) -> str:
    b = line["bbox"]
    box = f"{b[0]:.0f},{b[1]:.0f} {b[2] - b[0]:.0f}×{b[3] - b[1]:.0f}"
    row = f"{line['source']}\t{line['face']}\t{box}\t{line['quality']:5.1f}"
    if explain:
        row += "\t" + ("; ".join(line["explain"]) or "-")
    return row


def quality(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    json_out: JsonOpt = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Name the components that pull each score down (blurred, yaw 38°…).")
    ] = False,
    assessor: Annotated[
        str, typer.Option("--assessor", help="Quality assessor: fiqa (with embedding stability) or fiqa-fast.")
    ] = "fiqa",
    select: FaceSelectOpt = "all",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
) -> None:
    """Face image quality (ISO/IEC 29794-5 style): a unified 0-100 score and its components, per face.

    JSON lines: {"source", "face", "bbox", "quality", "components": {name: {"value", "quality"}}}.
    """
    from ..pipeline import FacePipeline

    det_opts: dict[str, Any] = {} if upsample is None else {"upsample": upsample}
    pipe = FacePipeline(detector, detector_options=det_opts, max_pixels=max_pixels or None, quality=assessor)
    tally = ImageTally()
    if not json_out:
        header = "image\tface\tbox (x,y w×h)\tquality" + ("\twhat pulls it down" if explain else "")
        typer.echo(header)
    for path, faces in faces_by_image(images, lambda p: pipe.assess_quality(p, select=select), tally):
        for i, face in enumerate(faces):
            line = _line(str(path), i, face, explain)
            sys.stdout.write((json.dumps(line) if json_out else _table_row(line, explain)) + "\n")
    tally.exit_if_any()


def register(app: typer.Typer) -> None:
    app.command("quality")(quality)
