"""``faceprint models``: what models and backends are available, and their licences."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="List models, backends and their licences.", no_args_is_help=True)


@app.command("list")
def list_models(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Show every model in the manifest (licence, commercial use, operating points) and backend names."""
    from ..models import manifest
    from ..registry import detectors, embedders

    specs = [s.to_dict() for s in manifest().values()]
    if json_out:
        typer.echo(json.dumps({"models": specs, "detectors": detectors.names(), "embedders": embedders.names()}))
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
