"""``faceprint pad``: presentation-attack detection (liveness). Minimal group for ``eval``/``train``;
the full group (``faceprint pad IMG``) lives in the pad helper's branch."""

from __future__ import annotations

import typer

from . import pad_eval

app = typer.Typer(help="Presentation-attack detection (liveness): score, evaluate, train.", no_args_is_help=True)
pad_eval.register(app)
