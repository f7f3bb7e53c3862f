"""``faceprint map``: fit a cross-model embedding map, inspect it, screen inputs with it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from .app_common import iter_images, progress_bar
from .recognize import DetectorOpt, JsonOpt

app = typer.Typer(help="Cross-model embedding maps: fit (A → B), inspect, screen inputs.", no_args_is_help=True)

FromOpt = Annotated[str, typer.Option("--from", help="Source embedder backend (A), e.g. facenet.")]
ToOpt = Annotated[str, typer.Option("--to", help="Target embedder backend (B), e.g. dlib-resnet-onnx.")]
SelectOpt = Annotated[
    str, typer.Option("--select", help="Which face of each image: largest, or central (centred crops such as LFW).")
]


def _pipelines(detector: str, source: str, target: str):  # type: ignore[no-untyped-def]
    from ..pipeline import FacePipeline

    return FacePipeline(detector, source), FacePipeline(detector, target)


@app.command("fit")
def fit(
    source: FromOpt,
    target: ToOpt,
    data: Annotated[Path, typer.Option("--data", help="Images (a folder, walked recursively) to fit on.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The map file to write (.npz, 0600).")],
    alpha: Annotated[float | None, typer.Option("--alpha", help="Ridge strength (default: cross-validated).")] = None,
    detector: DetectorOpt = "dlib-hog-mmod",
    select: SelectOpt = "largest",
    json_out: JsonOpt = False,
) -> None:
    """Fit a ridge map from model A's embeddings to model B's on the same faces (one per image)."""
    from ..errors import ConfigurationError, DataFormatError
    from ..mapping import fit_ridge, paired_embeddings

    if output.suffix.lower() != ".npz":
        raise ConfigurationError(f"--output must be an .npz file; got {output.name!r}")
    if not output.parent.exists():
        raise ConfigurationError(f"output folder {output.parent} does not exist")
    if not data.is_dir():
        raise ConfigurationError(f"--data {data} is not a folder of images")
    images = list(iter_images([data]))
    if not images:
        raise DataFormatError(f"no images in {data}")
    pa, pb = _pipelines(detector, source, target)
    with progress_bar(len(images), "embedding") as advance:
        used, va, vb = paired_embeddings([str(p) for p in images], pa, pb, select=select, progress=advance)  # type: ignore[arg-type]
    emap = fit_ridge(
        va, vb, source=pa.model_tag, target=pb.model_tag, alpha=alpha, fitted_on=f"{len(used)} faces from {data}"
    )
    emap = replace(emap, backends={"source": source, "target": target})
    emap.save(output)
    info = {"output": str(output), **emap.info(), "images": len(images), "faces": len(used)}
    typer.echo(
        json.dumps(info)
        if json_out
        else f"fitted {emap.source} → {emap.target} on {len(used)} faces (alpha {emap.alpha:g}); wrote {output}"
    )


@app.command("info")
def info(
    map_file: Annotated[Path, typer.Argument(help="A map file from `faceprint map fit`.")],
    json_out: JsonOpt = False,
) -> None:
    """Show which models a map links, its dimensions and its clean-data disagreement quantiles."""
    from ..mapping import load_map

    d = load_map(map_file).info()
    if json_out:
        typer.echo(json.dumps(d))
        return
    for k, v in d.items():
        typer.echo(f"{k}: {v}")


@app.command("screen")
def screen(
    map_file: Annotated[Path, typer.Argument(help="A map A → B from `faceprint map fit`.")],
    inputs: Annotated[list[Path], typer.Argument(help="Images or folders to screen.")],
    quantile: Annotated[
        float, typer.Option("--quantile", help="Clean-data disagreement quantile the map stores (0.99, 0.999).")
    ] = 0.999,
    factor: Annotated[float, typer.Option("--factor", help="Flag beyond this multiple of that quantile.")] = 1.0,
    detector: DetectorOpt = "dlib-hog-mmod",
    select: SelectOpt = "largest",
    json_out: JsonOpt = False,
) -> None:
    """Flag faces on which the two models disagree far beyond their calibrated rate (exit 1 if any).

    A screening check against trigger/backdoor inputs and adversarial crops aimed at one model:
    it costs one embedding per model, and flags about (1 - quantile) of clean faces.
    """
    from ..mapping import load_map, paired_embeddings

    emap = load_map(map_file)
    threshold = emap.screening_threshold(quantile, factor)
    if not emap.backends:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"{map_file} does not name the embedder backends it was fitted with; refit it")
    pa, pb = _pipelines(detector, emap.backends["source"], emap.backends["target"])
    emap.check_models(source=pa.model_tag, target=pb.model_tag)
    images = [str(p) for p in iter_images(inputs)]
    used, va, vb = paired_embeddings(images, pa, pb, select=select)  # type: ignore[arg-type]
    flags: Sequence[bool] = []
    dis: Sequence[float] = []
    if used:
        f_arr, d_arr = emap.screen(va, vb, quantile=quantile, factor=factor)
        flags, dis = f_arr.tolist(), d_arr.tolist()
    rows: list[dict[str, Any]] = [
        {"image": images[i], "disagreement": round(float(d), 6), "flagged": bool(f)}
        for i, d, f in zip(used, dis, flags, strict=True)
    ]
    n_flagged = sum(1 for r in rows if r["flagged"])
    kept = set(used)
    skipped = [p for i, p in enumerate(images) if i not in kept]
    if json_out:
        typer.echo(json.dumps({"threshold": threshold, "results": rows, "no_face": skipped}))
    else:
        for r in rows:
            typer.echo(f"{'FLAG' if r['flagged'] else 'ok  '}  {r['disagreement']:.4f}  {r['image']}")
        typer.echo(f"threshold {threshold:.4f}; {n_flagged} of {len(rows)} flagged")
    if n_flagged:
        raise typer.Exit(1)
