"""``faceprint pad IMG...``: presentation-attack (liveness) and deepfake screening of every face.

``faceprint pad IMG`` is short for ``faceprint pad score IMG`` (the default command: a first
argument that is not a subcommand of the group starts it), so the group also holds
``faceprint pad eval`` and ``faceprint pad train`` (``cli/pad_eval.py``, registered with
``pad_eval.register(app)``). A folder is walked for images.

One library call per face batch (:meth:`AttackDetector.score_batch`). The score's direction:
**higher = more likely an attack**, in [0, 1]; ``is_attack`` is ``score >= threshold``. Exit
codes as for ``quality``: 0 when every image was read and had a face, 3 when an image could not
be read, 4 when one had no face (each reported as a JSON line on stderr, the others go on);
with ``--fail-on-attack``, 1 when any face was scored an attack (and nothing worse happened).
The detectors' weights are not on PyPI: they are read from ``--model-dir`` or
``$FACEPRINT_MODEL_DIR`` (``minifasnet/*.pth``, ``mesonet/*.h5``), never downloaded.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR
from ..types import AttackScore, Detection
from . import pad_eval
from .app_common import EXIT_NO_MATCH, ImageTally, default_command_group, detect_selected, faces_by_image, finite_float
from .recognize import FaceSelectOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt

__all__ = ["app", "score", "DEFAULT_COMMAND"]

#: the command ``faceprint pad IMG`` runs
DEFAULT_COMMAND = "score"


app = typer.Typer(
    cls=default_command_group(DEFAULT_COMMAND),
    help="Liveness (presentation-attack) and deepfake screening: `faceprint pad IMG...` scores every face "
    "(higher = more likely an attack).",
    no_args_is_help=True,
)


class AttackDetectorChoice(enum.StrEnum):
    minifasnet = "minifasnet"
    mesonet = "mesonet"
    texture_lbp = "texture-lbp"


def _line(source: str, i: int, bbox: list[float], s: AttackScore) -> dict[str, Any]:
    return {"source": source, "face": i, "bbox": [round(v, 1) for v in bbox], **s.to_dict()}


def _row(line: dict[str, Any]) -> str:
    b = line["bbox"]
    box = f"{b[0]:.0f},{b[1]:.0f} {b[2] - b[0]:.0f}×{b[3] - b[1]:.0f}"
    verdict = "ATTACK" if line["is_attack"] else "bona fide"
    return f"{line['source']}\t{line['face']}\t{box}\t{line['score']:.3f}\t{verdict}"


@app.command(DEFAULT_COMMAND)
def score(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    detector_name: Annotated[
        AttackDetectorChoice,
        typer.Option(
            "--detector",
            help="minifasnet (liveness: prints, screens), mesonet (deepfake screening) or texture-lbp "
            "(a model you trained with `faceprint pad train`, given with --model).",
        ),
    ] = AttackDetectorChoice.minifasnet,
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir", help="Folder holding minifasnet/*.pth or mesonet/*.h5 (default: $FACEPRINT_MODEL_DIR)."
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="texture-lbp: the model file `faceprint pad train` wrote.")
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            help="minifasnet: v2, v1se or both (default); mesonet: Meso4_DF (default), Meso4_F2F, MesoInception_DF…"
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Attack when score >= this (default: the detector's).", callback=finite_float)
    ] = None,
    fail_on_attack: Annotated[
        bool, typer.Option("--fail-on-attack", help="Exit 1 when any face is scored an attack.")
    ] = False,
    json_out: JsonOpt = False,
    select: FaceSelectOpt = "all",
    face_detector: Annotated[
        str, typer.Option("--face-detector", help="Face detector backend (see `faceprint models list`).")
    ] = DEFAULT_DETECTOR,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
) -> None:
    """Score every face for presentation attacks (minifasnet) or deepfakes (mesonet).

    JSON lines: {"source", "face", "bbox", "score", "is_attack", "threshold", "detector", "kind", "details"}.
    """
    from ..registry import attack_detectors, detectors

    opts: dict[str, Any] = (
        {"model": model} if detector_name is AttackDetectorChoice.texture_lbp else {"model_dir": model_dir}
    )
    if threshold is not None:
        opts["threshold"] = threshold
    if variant is not None:
        if detector_name is AttackDetectorChoice.minifasnet:
            opts["models"] = ("v2", "v1se") if variant == "both" else variant
        else:
            opts["variant"] = variant
    pad = attack_detectors.create(detector_name.value, **opts)
    finder = detectors.create(face_detector, **({} if upsample is None else {"upsample": upsample}))

    def screen(path: Path) -> list[tuple[Detection, AttackScore]]:
        img, faces = detect_selected(path, finder, select, max_pixels)
        return list(zip(faces, pad.score_batch([img] * len(faces), faces), strict=True))

    tally = ImageTally()
    attacks = 0
    if not json_out:
        typer.echo("image\tface\tbox (x,y w×h)\tscore\tverdict")
    for path, scored in faces_by_image(images, screen, tally):
        for i, (face, s) in enumerate(scored):
            attacks += s.is_attack
            line = _line(str(path), i, face.bbox.as_list(), s)
            sys.stdout.write((json.dumps(line) if json_out else _row(line)) + "\n")
    tally.exit_if_any()
    if fail_on_attack and attacks:
        raise typer.Exit(code=EXIT_NO_MATCH)


# `faceprint pad eval` (ISO/IEC 30107-3 report) and `faceprint pad train` (texture-lbp)
pad_eval.register(app)
