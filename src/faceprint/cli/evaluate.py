"""``faceprint eval run | scores``: evaluate on a protocol or from a score file; write a report folder.

Each command is a few lines around :func:`faceprint.evaluation.run_protocol` /
:func:`~faceprint.evaluation.evaluate_scores` and :func:`~faceprint.evaluation.write_report`;
the ``--protocol`` choices are the registered protocol kinds
(:func:`faceprint.evaluation.protocols.protocol_kinds`).
"""

from __future__ import annotations

import enum
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..evaluation.protocols import protocol_kinds
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import done_counter, progress_bar
from .recognize import DaskOpt, DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Evaluate recognition accuracy (ISO/IEC 19795-1): run a protocol, or score a score file; write a report.",
    no_args_is_help=True,
)

#: ``--protocol`` choices: the registered protocol kinds
ProtocolChoice = enum.Enum("ProtocolChoice", {name: name for name in protocol_kinds()}, type=str)  # type: ignore[misc]
ScoreFormatOpt = Literal["csv", "4col", "5col"]

OutputOpt = Annotated[
    Path,
    typer.Option("--output", "-o", help="Report folder (created): report.md/.html, metrics.json, scores.csv, PNGs."),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        help="Decision threshold for accuracy, system FMR/FNMR and per-group rates (default: see the report)."
    ),
]
BootstrapOpt = Annotated[
    int, typer.Option("--bootstrap", help="Bootstrap replicates for the confidence intervals (0: none for the EER).")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap and of non-mated pair sampling.")]


def _command_line(ctx: typer.Context, group: str = "eval") -> str:
    """The command as typed when run as ``faceprint``/``python -m faceprint``; else rebuilt from the
    parsed parameters (every option spelled out)."""
    argv = sys.argv
    prog = Path(argv[0]).name if argv else ""
    if prog in ("faceprint", "faceprint.exe") or (prog == "__main__.py" and "faceprint" in argv[0]):
        return shlex.join(["faceprint", *argv[1:]])
    parts = ["faceprint", group, ctx.info_name or ""]
    for p in ctx.command.params:
        value = ctx.params.get(p.name or "")
        kind = getattr(p, "param_type_name", "")
        if kind == "argument":
            parts.append(str(value))
        elif kind != "option" or value is None:
            continue
        elif getattr(p, "is_flag", False):
            if value is True and p.opts:
                parts.append(max(p.opts, key=len))
            elif value is False and p.secondary_opts:
                parts.append(max(p.secondary_opts, key=len))
        else:
            parts += [max(p.opts, key=len), str(value)]
    return shlex.join(parts)


def _summary(result: Any, files: dict[str, Path], output: Path) -> dict[str, Any]:
    """``--json``: every figure named by what it is, the protocol's headline first (:func:`summary`)."""
    from ..evaluation import summary

    doc = summary(result)
    return {"headline": doc.pop("headline"), "report": str(output), **doc, "files": sorted(files)}


def _echo_summary(result: Any, output: Path) -> None:
    from ..evaluation import headline_figure

    name, value, description = headline_figure(result)
    head = f"{description} {100 * value:.2f}%" if value is not None else f"{name}: n/a"
    rep, f = result.verification, result.failures
    if rep is not None:
        typer.echo(
            f"{result.protocol}: {head}; EER {100 * rep.eer.eer:.3f}%, AUC {rep.auc:.5f} on {rep.n_mated:,} mated + "
            f"{rep.n_nonmated:,} non-mated comparisons ({f.failed:,} of {f.comparisons:,} failed to acquire) "
            f"→ {output}",
            err=True,
        )
    else:
        typer.echo(f"{result.protocol}: {head} → {output}", err=True)


PairsOpt = Annotated[
    Path | None,
    typer.Option(
        help="lfw: a pairs file, or the folder of pairs.txt (View 2) or of pairsDevTrain.txt and "
        "pairsDevTest.txt (View 1). csv: the protocol CSV, columns image_a, image_b, mated "
        "and optional fold, group."
    ),
]
LabelsOpt = Annotated[
    Path | None, typer.Option(help="CSV of groups, 'identity,group' or 'path,group': adds per-group error rates.")
]
TaskOpt = Annotated[
    Literal["verification", "identification"],
    typer.Option(metavar="TASK", help="ijb: verification (1:1) or identification (1:N)."),
]
SelectOpt = Annotated[
    Literal["largest", "central"] | None,
    typer.Option(
        help="Face to use from an image with several (default: the protocol's; central for LFW and IJB "
        "crops, else largest). Applied after the cache: changing it embeds nothing again."
    ),
]
EvalTtaOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="Test-time augmentation of the embedder, e.g. none or flip (the pipeline's tta setting).",
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(help="Embedding cache folder or file (default: $FACEPRINT_CACHE_DIR or ~/.faceprint/cache)."),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Embed everything again; store nothing.")]
QualityOpt = Annotated[
    bool,
    typer.Option(
        "--quality",
        help="Add an EDC section (ISO/IEC 29794-1): assess each image's quality and plot FNMR against the "
        "fraction of lowest-quality comparisons discarded.",
    ),
]
ImpostorsOpt = Annotated[
    Literal["protocol", "same-group"],
    typer.Option(
        "--impostors",
        help="Non-mated pairs: the protocol's own, or same-group: drawn anew within each group of --labels or "
        "--groups (ISO/IEC 19795-10), so that every group's FMR rests on thousands of comparisons.",
    ),
]
PerGroupOpt = Annotated[
    int, typer.Option("--per-group", min=1, help="--impostors same-group: non-mated pairs drawn per group.")
]
GroupsOpt = Annotated[
    str | None,
    typer.Option(
        "--groups",
        metavar="KINDS",
        help="Per-group error rates on groups predicted by the attribute model (needs the attributes extra): "
        "predicted-gender, predicted-age-band, or both comma-separated (intersections). The report says they are "
        "predicted and gives the model's measured error.",
    ),
]
QualityAssessorOpt = Annotated[
    str, typer.Option("--quality-assessor", help="The quality assessor of --quality: fiqa or fiqa-fast.")
]


@app.command("run")
def run(
    ctx: typer.Context,
    protocol: Annotated[ProtocolChoice, typer.Option("--protocol", help="Protocol kind (dataset family).")],
    data: Annotated[Path, typer.Option("--data", help=" ".join(k.data_help for k in protocol_kinds().values()))],
    output: OutputOpt,
    pairs: PairsOpt = None,
    labels: LabelsOpt = None,
    task: TaskOpt = "verification",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    select: SelectOpt = None,
    tta: EvalTtaOpt = None,
    workers: Annotated[int, typer.Option(help="Local worker processes (0: one per core).", min=0)] = 0,
    dask: DaskOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    threshold: ThresholdOpt = None,
    bootstrap: BootstrapOpt = 1000,
    seed: SeedOpt = 0,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
    quality: QualityOpt = False,
    quality_assessor: QualityAssessorOpt = "fiqa",
    impostors: ImpostorsOpt = "protocol",
    impostors_per_group: PerGroupOpt = 5000,
    groups: GroupsOpt = None,
) -> None:
    """Embed a protocol's images (cached: a re-run resumes), score its pairs and write a report folder."""
    from ..errors import ConfigurationError
    from ..evaluation import open_protocol, run_protocol, write_report
    from ..evaluation.cache import EmbeddingCache

    if no_cache and cache is not None:
        raise ConfigurationError("use either --cache DIR or --no-cache, not both")
    command = _command_line(ctx)
    src = open_protocol(protocol.value, data, pairs=pairs, labels=labels, task=task, seed=seed)
    settings: dict[str, Any] = {
        "detector": detector,
        "embedder": embedder,
        "detector_options": {} if upsample is None else {"upsample": upsample},
        "max_pixels": max_pixels or None,
    }
    if tta is not None:  # a FacePipeline setting; the cache key holds every pipeline setting
        settings["tta"] = tta
    src, group_info = _with_groups(src, settings, labels, groups, impostors, impostors_per_group, seed, select)
    store = None if no_cache else EmbeddingCache(cache)
    try:
        with progress_bar(src.n_images, "embedding") as advance:
            progress = done_counter(advance)
            result = run_protocol(
                src.protocol,
                settings,
                store,
                workers or None,
                dask,
                progress,
                calibration=src.calibration,
                protocol_files=src.files,
                threshold=threshold,
                select=select,
                n_bootstrap=bootstrap,
                seed=seed,
            )
    finally:
        if store is not None:
            store.close()
    if quality:  # a second, detection-only pass: the embedding cache is not involved
        result = _with_quality(result, src, settings, quality_assessor, select, workers or None, dask)
    result.provenance["protocol_source"] = {"kind": src.kind, "description": src.description, "data": str(data)}
    if group_info:
        result.provenance["groups"] = group_info
    files = write_report(result, output, command=command)
    if json_out:
        typer.echo(json.dumps(_summary(result, files, output)))
    else:
        _echo_summary(result, output)


def _with_quality(
    result: Any, src: Any, settings: dict[str, Any], assessor: str, select: Any, workers: int | None, dask: Any
) -> Any:
    """``eval run --quality``: the result with the EDC of each image's quality (:func:`add_quality`)."""
    from ..evaluation import add_quality

    with progress_bar(len(src.protocol.images), "quality") as advance:
        progress = done_counter(advance)
        return add_quality(
            result,
            src.protocol,
            settings,
            quality=assessor,
            select=select,
            workers=workers,
            dask=dask,
            progress=progress,
        )


def _with_groups(
    src: Any,
    settings: dict[str, Any],
    labels: Path | None,
    groups: str | None,
    impostors: str,
    per_group: int,
    seed: int,
    select: Any,
) -> tuple[Any, dict[str, Any]]:
    """``--groups`` / ``--impostors``: the protocol with predicted or labelled groups (:func:`apply_groups`)."""
    from ..errors import ConfigurationError
    from ..evaluation.groups import (
        apply_groups,
        groups_provenance,
        parse_group_kinds,
        predict_attributes,
        predicted_image_groups,
    )
    from ..evaluation.runner import face_selection

    if groups is None and impostors == "protocol":  # --labels alone: open_protocol applied them
        return src, ({"source": "labels", "labels": str(labels)} if labels is not None else {})
    if groups is not None and labels is not None:
        raise ConfigurationError("use either --labels FILE or --groups predicted-…, not both")
    image_groups, info = None, {"source": "labels", "labels": str(labels)} if labels is not None else {}
    if groups is not None:
        kinds = parse_group_kinds(groups)
        sel = face_selection(src.protocol, select)["select"]
        with progress_bar(len(src.protocol.images), "attributes") as advance:
            estimates = predict_attributes(
                src.protocol,
                detector=settings["detector"],
                detector_options=settings["detector_options"],
                select=sel,
                max_pixels=settings["max_pixels"],
                progress=advance,
            )
        image_groups, info = predicted_image_groups(estimates, kinds), groups_provenance(kinds)
    src, extra = apply_groups(src, image_groups, labels=labels, impostors=impostors, per_group=per_group, seed=seed)
    return src, {**info, **extra}


@app.command("scores")
def scores(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Score file: .csv (probe,reference,score,mated,…) or Bob 4/5-column text.")
    ],
    output: OutputOpt,
    format: Annotated[
        ScoreFormatOpt | None,
        typer.Option("--format", help="Score file format (default: csv for .csv, else 4col/5col)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the score set in the report (default: the file name).")
    ] = None,
    threshold: ThresholdOpt = None,
    bootstrap: BootstrapOpt = 1000,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate the scores of any system from a score file (nan scores count as failures to acquire)."""
    from ..evaluation import evaluate_scores, read_scores, write_report

    command = _command_line(ctx)
    table = read_scores(file, format=format, allow_nan=True)
    result = evaluate_scores(
        table,
        name=name or file.name,
        threshold=threshold,
        n_bootstrap=bootstrap,
        seed=seed,
        source_files=(file,),
    )
    files = write_report(result, output, command=command)
    if json_out:
        typer.echo(json.dumps(_summary(result, files, output)))
    else:
        _echo_summary(result, output)
