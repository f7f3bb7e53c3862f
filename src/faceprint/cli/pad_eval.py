"""``faceprint pad eval`` and ``faceprint pad train``: ISO/IEC 30107-3 figures of an attack detector,
and training the texture baseline; a few lines around :func:`faceprint.evaluation.pad.evaluate_pad`
and :func:`faceprint.attacks.texture.train_texture`.

``--attack DIR[:SPECIES]`` names one presentation-attack instrument species per folder (default:
the folder's name); give it once per species. Folders made by
:func:`faceprint.attacks.synthetic.build_attack_set` carry a ``SYNTHETIC.json`` manifest, and
every figure measured on them is labelled "synthetic attacks".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigurationError
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import emit_report, iter_images, progress_bar
from .recognize import EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

__all__ = ["register", "parse_attack"]

BonaFideOpt = Annotated[
    list[Path], typer.Option("--bona-fide", help="Bona fide images: a folder (walked) or file; repeat for more.")
]
AttackOpt = Annotated[
    list[str],
    typer.Option("--attack", metavar="DIR[:SPECIES]", help="Attack images of one species (default: the folder name)."),
]
FaceDetectorOpt = Annotated[
    str, typer.Option("--face-detector", help="Face detector backend that finds the face in each image.")
]


def parse_attack(spec: str) -> tuple[str, Path]:
    """``"DIR:species"`` → (species, DIR); ``"DIR"`` → (DIR's name, DIR). A drive letter is not a species."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and "/" not in tail and "\\" not in tail:
        return tail, Path(head)
    path = Path(spec)
    return path.resolve().name, path


def _attack_sets(specs: list[str]) -> dict[str, list[Path]]:
    if not specs:
        raise ConfigurationError("give at least one --attack DIR[:SPECIES]")
    out: dict[str, list[Path]] = {}
    for spec in specs:
        species, path = parse_attack(spec)
        if not path.exists():
            raise ConfigurationError(f"attack folder {path} does not exist")
        out.setdefault(species, []).append(path)
    return out


def evaluate(
    bona_fide: BonaFideOpt,
    attack: AttackOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder (created).")],
    detector: Annotated[str, typer.Option("--detector", help="Attack detector (registered name).")] = "texture-lbp",
    model: Annotated[Path | None, typer.Option("--model", help="Model file of the detector (texture-lbp).")] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model folder of detectors that read one (minifasnet…).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", min=0.0, max=1.0, help="Override the detector's threshold.")
    ] = None,
    iapmr: Annotated[
        bool, typer.Option("--iapmr", help="Also embed faces and measure IAPMR against the verifier.")
    ] = False,
    operating_point: Annotated[str, typer.Option(help="Verifier operating point for IAPMR.")] = "fmr=0.001",
    face_detector: FaceDetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """APCER per species and their maximum, BPCER, BPCER20/10/5, APCER at BPCER targets, D-EER,
    non-response rates and (with --iapmr) IAPMR; writes report.md/html/json, Bob's scores.txt
    and DET and score plots to -o."""
    import shlex
    import sys

    from ..evaluation.pad import evaluate_pad
    from ..evaluation.pad_report import pad_markdown
    from ..registry import attack_detectors

    options: dict[str, Any] = {}
    if model is not None:
        options["model"] = model
    if model_dir is not None:
        options["model_dir"] = model_dir
    if threshold is not None:
        options["threshold"] = threshold
    try:
        pad = attack_detectors.create(detector, **options)
    except TypeError as exc:  # an option this backend does not take (--model for minifasnet…)
        given = ", ".join(f"--{k.replace('_', '-')}" for k in options)
        raise ConfigurationError(f"attack detector {detector!r} does not take {given}: {exc}") from None
    attacks = _attack_sets(attack)
    pipe = _pipeline(face_detector, embedder, upsample, max_pixels)
    command = "faceprint " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with progress_bar(0, "scoring") as advance:
        report = evaluate_pad(
            pad,
            bona_fide,
            attacks,
            pipeline=pipe,
            out_dir=output,
            iapmr=iapmr,
            operating_point=operating_point,
            command=command,
            progress=lambda done, total: advance(1),
        )
    emit_report(report.to_dict(), pad_markdown(report), None, json_out)


def train(
    bona_fide: BonaFideOpt,
    attack: AttackOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write (JSON).")],
    c: Annotated[float, typer.Option("--c", min=1e-6, help="Inverse L2 regularisation of the classifier.")] = 1.0,
    face_detector: FaceDetectorOpt = DEFAULT_DETECTOR,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Train the texture-lbp detector (colour LBP + logistic regression) on your bona fide and attack
    images and write its model file (JSON, sha256-checked, no pickle)."""
    from ..attacks.texture import train_texture

    bona = list(iter_images(bona_fide))
    attacks = [p for paths in _attack_sets(attack).values() for p in iter_images(paths)]
    if not bona or not attacks:
        raise ConfigurationError("training needs bona fide and attack images; found none in one of them")
    with progress_bar(len(bona) + len(attacks), "training") as advance:
        model = train_texture(
            bona,
            attacks,
            detector=face_detector,
            c=c,
            max_pixels=max_pixels or None,
            progress=lambda done, total: advance(1),
        )
    path = model.save(output)
    doc = {"model": str(path), "training": model.training, "threshold": model.threshold}
    emit_report(doc, f"wrote {path}: {model.training}", None, json_out)


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``train`` to the ``faceprint pad`` group."""
    app.command("eval")(evaluate)
    app.command("train")(train)
