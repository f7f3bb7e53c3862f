"""``faceprint eval run | scores``: evaluate on a protocol or from a score file; write a report folder.

Each command is a few lines around :func:`faceprint.evaluation.report.run_protocol` /
:func:`~faceprint.evaluation.report.evaluate_scores` and
:func:`~faceprint.evaluation.report.write_report`.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt

log = logging.getLogger(__name__)

app = typer.Typer(
    help="Evaluate recognition accuracy (ISO/IEC 19795-1): run a protocol, or score a score file; write a report.",
    no_args_is_help=True,
)

ProtocolKind = Literal["lfw", "bin", "ijb", "folder", "csv"]
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
    rep = result.verification
    point = {}
    if rep is not None:
        for p in rep.fnmr_at_fmr:
            point[f"fnmr@fmr={p.target_fmr:g}"] = p.fnmr
    return {
        "report": str(output),
        "protocol": result.protocol,
        "model": result.model,
        "comparisons": len(result.scores),
        "failed_comparisons": result.failures.failed,
        "eer": None if rep is None else rep.eer.eer,
        "eer_ci": None if rep is None or rep.eer.ci is None else list(rep.eer.ci),
        "auc": None if rep is None else rep.auc,
        **point,
        "kfold_accuracy": None if result.kfold is None else result.kfold.mean,
        "accuracy": None if result.accuracy is None else result.accuracy.value,
        "files": sorted(files),
        "seconds": result.timing.get("total_s"),
    }


def _echo_summary(result: Any, output: Path) -> None:
    rep = result.verification
    if rep is not None:
        acc = ""
        if result.kfold is not None:
            acc = f", {len(result.kfold.accuracies)}-fold accuracy {100 * result.kfold.mean:.2f}%"
        elif result.accuracy is not None:
            acc = f", accuracy {100 * result.accuracy.value:.2f}%"
        typer.echo(
            f"{result.protocol}: EER {100 * rep.eer.eer:.3f}%, AUC {rep.auc:.5f}{acc} on {rep.n_mated:,} mated + "
            f"{rep.n_nonmated:,} non-mated comparisons ({result.failures.failed:,} failed to acquire) → {output}",
            err=True,
        )
    else:
        typer.echo(f"{result.protocol}: identification report → {output}", err=True)


@app.command("run")
def run(
    ctx: typer.Context,
    protocol: Annotated[ProtocolKind, typer.Option("--protocol", help="Protocol kind: lfw, bin, ijb, folder or csv.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="lfw: image folder (with the pairs files, unless --pairs); bin: the .bin file; ijb: the IJBB/IJBC "
            "folder; folder: one sub-folder per identity; csv: image root (or the CSV itself).",
        ),
    ],
    output: OutputOpt,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="lfw: pairs file or folder holding pairs.txt (View 2) or pairsDevTrain.txt + pairsDevTest.txt "
            "(View 1); csv: the protocol CSV (columns image_a, image_b, mated, and optionally fold, group)."
        ),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="CSV of groups, 'identity,group' or 'path,group': adds per-group error rates.")
    ] = None,
    task: Annotated[
        Literal["verification", "identification"], typer.Option(help="ijb: 1:1 verification or 1:N identification.")
    ] = "verification",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    select: Annotated[
        Literal["largest", "central"], typer.Option(help="Face to use from an image with several.")
    ] = "largest",
    workers: Annotated[int, typer.Option(help="Local worker processes (0: one per core).", min=0)] = 0,
    dask: Annotated[
        str | None, typer.Option(help="Run on Dask: a scheduler address (tcp://host:8786) or 'local'.")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(help="Embedding cache folder or file (default: $FACEPRINT_CACHE_DIR or ~/.faceprint/cache)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Embed everything again; store nothing.")] = False,
    threshold: ThresholdOpt = None,
    bootstrap: BootstrapOpt = 1000,
    seed: SeedOpt = 0,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Embed a protocol's images (cached: a re-run resumes), score its pairs and write a report folder."""
    from ..errors import ConfigurationError
    from ..evaluation.cache import EmbeddingCache
    from ..evaluation.report import open_protocol, run_protocol, write_report

    if no_cache and cache is not None:
        raise ConfigurationError("use either --cache DIR or --no-cache, not both")
    command = _command_line(ctx)
    src = open_protocol(protocol, data, pairs=pairs, labels=labels, task=task, seed=seed)
    settings: dict[str, Any] = {
        "detector": detector,
        "embedder": embedder,
        "detector_options": {} if upsample is None else {"upsample": upsample},
    }
    if max_pixels != DEFAULT_MAX_PIXELS:  # the default stays implicit, so library runs share the cache
        settings["max_pixels"] = max_pixels or None
    store = None if no_cache else EmbeddingCache(cache)
    try:
        with progress_bar(src.n_images, "embedding") as advance:
            seen = 0

            def progress(done: int, _total: int | None) -> None:
                nonlocal seen
                advance(done - seen)
                seen = done

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
    result.provenance["protocol_source"] = {"kind": src.kind, "description": src.description, "data": str(data)}
    files = write_report(result, output, command=command)
    if json_out:
        typer.echo(json.dumps(_summary(result, files, output)))
    else:
        _echo_summary(result, output)


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
    from ..evaluation.report import evaluate_scores, write_report
    from ..evaluation.scorefiles import read_scores

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
