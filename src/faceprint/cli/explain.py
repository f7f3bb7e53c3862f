"""``faceprint explain A.jpg B.jpg -o out.png`` and ``faceprint explain eval``: similarity maps, and
how faithful they are.

``faceprint explain A B`` is short for ``faceprint explain pair A B`` (the default command).
Each command is a few lines around :func:`faceprint.explain.pair.explain_pair` /
:func:`faceprint.evaluation.faithfulness.explain_protocol`.
"""

from __future__ import annotations

import enum
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ..evaluation.protocols import protocol_kinds
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from ..registry import explainers
from .app_common import default_command_group, emit_report, finite_float, progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

log = logging.getLogger(__name__)

#: the command ``faceprint explain A B`` runs
DEFAULT_COMMAND = "pair"


app = typer.Typer(
    cls=default_command_group(DEFAULT_COMMAND),
    help="Why do two faces match? Similarity maps (`faceprint explain A.jpg B.jpg -o out.png`) and their "
    "faithfulness on a protocol (`faceprint explain eval`).",
    no_args_is_help=True,
)

#: ``--method`` choices: the registered explainers
MethodChoice = enum.Enum("MethodChoice", {n: n for n in explainers.names()}, type=str)  # type: ignore[misc]
ProtocolChoice = enum.Enum("ProtocolChoice", {n: n for n in protocol_kinds()}, type=str)  # type: ignore[misc]
_OCCLUSION = MethodChoice("occlusion")


def _point(model_id: str, name: str, threshold: float | None) -> Any:
    from ..models import OperatingPoint
    from ..scoring import operating_point

    if threshold is not None:
        return OperatingPoint("custom", float(threshold), float("nan"), float("nan"), "user")
    return operating_point(model_id, name)


def _check_figure_path(output: Path) -> None:
    from ..errors import ConfigurationError

    if output.is_dir():
        raise ConfigurationError(f"--output {output} is a folder; give a file name such as out.png")
    if not output.parent.exists():
        raise ConfigurationError(f"the folder of --output {output} does not exist")


@app.command(DEFAULT_COMMAND)
def pair(
    image_a: Annotated[Path, typer.Argument(help="First photo.")],
    image_b: Annotated[Path, typer.Argument(help="Second photo.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Figure to write: both faces, heat maps, score, caption.")
    ] = None,
    method: Annotated[MethodChoice, typer.Option("--method", "-m", help="How to explain.")] = _OCCLUSION,
    operating_point: Annotated[
        str, typer.Option("--operating-point", "-p", help="Calibrated threshold: 'fmr=0.001' or 'eer'.")
    ] = "fmr=0.001",
    threshold: Annotated[
        float | None, typer.Option(help="Explicit cosine threshold (overrides -p).", callback=finite_float)
    ] = None,
    map_size: Annotated[
        int | None, typer.Option("--map-size", min=2, help="--json: block-average the maps to this many cells a side.")
    ] = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Where does the similarity of the main faces of two photos come from? Writes a figure (-o)
    and/or prints the maps (--json). Exit code 0 whether or not the faces match."""
    from ..errors import ConfigurationError
    from ..explain.pair import explain_pair

    if output is None and not json_out:
        raise ConfigurationError("say where the explanation goes: -o out.png, --json, or both")
    if output is not None:
        _check_figure_path(output)
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    img_a, img_b = pipe.load(image_a), pipe.load(image_b)
    fa, fb = pipe.embed_one(img_a), pipe.embed_one(img_b)
    point = _point(pipe.embedder.model_id, operating_point, threshold)
    explainer = explainers.create(method.value)
    pe = explain_pair(img_a, fa.detection, img_b, fb.detection, pipe.embedder, explainer, point)
    if output is not None:
        from ..explain.render import save_figure

        save_figure(pe, output)
    if json_out:
        doc = {"image_a": str(image_a), "image_b": str(image_b), "figure": None if output is None else str(output)}
        typer.echo(json.dumps({**doc, **pe.to_dict(map_size=map_size)}))
    else:
        d, e = pe.decision, pe.explanation
        rec = "" if e.reconstructed_score is None else f", reconstructed {e.reconstructed_score:.4f}"
        verdict = "MATCH" if d.match else "NO MATCH"
        typer.echo(f"{verdict}: similarity {d.score:.4f} ({e.method}{rec}) → {output}", err=True)


@app.command("eval")
def evaluate(
    protocol: Annotated[ProtocolChoice, typer.Option("--protocol", help="Protocol kind (dataset family).")],
    data: Annotated[Path, typer.Option("--data", help=" ".join(k.data_help for k in protocol_kinds().values()))],
    pairs: Annotated[
        Path | None, typer.Option(help="lfw: a pairs file or its folder (see `faceprint eval run`).")
    ] = None,
    methods: Annotated[
        str, typer.Option(help=f"Comma-separated explainers to measure ({', '.join(explainers.names())}).")
    ] = "occlusion,xcos",
    mated: Annotated[int, typer.Option(min=0, help="Mated pairs to sample.")] = 200,
    nonmated: Annotated[int, typer.Option(min=0, help="Non-mated pairs to sample.")] = 200,
    sanity_pairs: Annotated[
        int, typer.Option(min=0, help="Pairs of each kind for the randomised-weights check (0: skip it).")
    ] = 20,
    grid: Annotated[int, typer.Option(min=2, max=50, help="Blocks per side deleted or inserted.")] = 15,
    steps: Annotated[int, typer.Option(min=2, max=100, help="Points per deletion / insertion curve, minus one.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the pair sample and of the random baseline.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the report as JSON here.")] = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Deletion / insertion AUC against random and centre-first orders, and the randomised-weights
    sanity check, over mated and non-mated pairs of a protocol."""
    from ..errors import ConfigurationError
    from ..evaluation.faithfulness import explain_protocol

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in explainers.names()]
    if not names or unknown:
        raise ConfigurationError(f"unknown --methods {', '.join(unknown)}; use some of {', '.join(explainers.names())}")
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    chosen = {m: explainers.create(m) for m in names}
    with progress_bar(mated + nonmated, "explaining") as advance:
        report = explain_protocol(
            protocol.value,
            str(data),
            pipeline=pipe,
            explainers=chosen,
            pairs=None if pairs is None else str(pairs),
            n_mated=mated,
            n_nonmated=nonmated,
            seed=seed,
            sanity_pairs=sanity_pairs,
            grid=grid,
            steps=steps,
            progress=advance,
        )
    emit_report(report.to_dict(), report.markdown(), output, json_out)
