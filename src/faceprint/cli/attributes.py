"""``faceprint attributes IMG_OR_DIR...``: estimated age and apparent gender of every face.

One estimator call per image (:mod:`faceprint.attributes`; backend ``dlib-age-gender`` from the
``attributes`` extra). The figures are estimates with a known error (the gender model's error on
labelled LFW photos is in its card, ``docs/model-cards/dlib-gender-v1.md``); they are meant for
fairness evaluation of unlabelled data, never for decisions about a person. Exit codes as for
``quality``: 3 when an image could not be read, 4 when one had no face.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR
from .app_common import ImageTally, detect_selected, faces_by_image
from .recognize import DetectorOpt, FaceSelectOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt

__all__ = ["attributes", "register"]


def attributes(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.", show_default=False)],
    json_out: JsonOpt = False,
    estimator: Annotated[
        str, typer.Option("--estimator", help="Attribute estimator backend (see `faceprint models list`).")
    ] = "dlib-age-gender",
    select: FaceSelectOpt = "all",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
) -> None:
    """Estimated age (years, and its band) and apparent gender with its confidence, per face.

    JSON lines: {"source", "face", "bbox", "age", "age_band", "gender", "gender_confidence", "p_female", "model"}.
    Estimates with a known error, for fairness evaluation: never a basis for decisions about a person.
    """
    from ..registry import attribute_estimators, detectors

    est = attribute_estimators.create(estimator)
    finder = detectors.create(detector, **({} if upsample is None else {"upsample": upsample}))

    def find(path: Path) -> list[tuple[Any, Any]]:
        img, faces = detect_selected(path, finder, select, max_pixels)
        return list(zip(faces, est.estimate_batch([img] * len(faces), faces), strict=True))

    tally = ImageTally()
    if not json_out:
        typer.echo("image\tface\tbox (x,y w×h)\tage\tband\tgender (confidence)")
    for path, found in faces_by_image(images, find, tally):
        for i, (det, a) in enumerate(found):
            b = [round(v, 1) for v in det.bbox.as_list()]
            line = {"source": str(path), "face": i, "bbox": b, **a.to_dict(), "age_band": a.age_band()}
            if json_out:
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                box = f"{b[0]:.0f},{b[1]:.0f} {b[2] - b[0]:.0f}×{b[3] - b[1]:.0f}"
                row = f"{path}\t{i}\t{box}\t{a.age:.0f}\t{a.age_band()}\t{a.gender} ({a.gender_confidence:.2f})"
                sys.stdout.write(row + "\n")
    tally.exit_if_any()


def register(app: typer.Typer) -> None:
    app.command("attributes")(attributes)
