"""``faceprint models``: what models and backends are available, and their licences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="List models, backends and their licences.", no_args_is_help=True)


@app.command("list")
def list_models(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Show every model in the manifest (licence, commercial use, operating points) and backend names."""
    from ..models import manifest
    from ..registry import attribute_estimators, detectors, embedders

    specs = [s.to_dict() for s in manifest().values()]
    if json_out:
        names = {"detectors": detectors.names(), "embedders": embedders.names()}
        names["attribute_estimators"] = attribute_estimators.names()
        typer.echo(json.dumps({"models": specs, **names}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="faceprint models")
    for col in ("name", "kind", "default", "commercial use", "licence", "operating points"):
        table.add_column(col)
    for s in specs:
        ops = ", ".join(f"{k}: {v['threshold']:.4f}" for k, v in s["operating_points"].items())
        for model, points in s.get("operating_points_by_model", {}).items():  # a detector's own calibrations
            ops += f"{'; ' if ops else ''}{model} fed by it: " + ", ".join(
                f"{k}: {v['threshold']:.4f}" for k, v in points.items()
            )
        ops = ops or "-"
        table.add_row(
            s["name"],
            s["kind"],
            "yes" if s["default"] else "",
            "yes" if s["commercial_use"] else "NO",
            s["licence"],
            ops,
        )
    con = Console()
    con.print(table)
    con.print(f"detector backends: {', '.join(detectors.names())}")
    con.print(f"embedder backends: {', '.join(embedders.names())}")
    con.print(f"attribute estimator backends: {', '.join(attribute_estimators.names())}")


@app.command("card")
def card(
    model: Annotated[
        str, typer.Argument(help="Model name from the manifest (faceprint models list), e.g. dlib-resnet-v1.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Card file to write: .md or .html.")],
    eval_reports: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval",
            help="An evaluation report folder (faceprint eval run -o DIR) or its metrics.json; repeat for several. "
            "Without one the card says 'not evaluated'.",
        ),
    ] = None,
) -> None:
    """Write a model card (Mitchell et al.): details from the manifest, figures only from evaluation reports."""
    import shlex
    import sys

    from ..evaluation.cards import build_card, write_card

    command = shlex.join(["faceprint", *sys.argv[1:]]) if "models" in sys.argv else None
    c = build_card(model, eval_reports or [], command=command)
    path = write_card(c, output)
    typer.echo(f"model card of {c.model} from {len(c.reports)} report(s) → {path}", err=True)
