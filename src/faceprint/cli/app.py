"""Root of the CLI: logging, error → exit-code mapping, and the command groups.

Exit codes: 0 success (and "match" for verify), 1 "no match", 2 usage error,
3 bad input image, 4 no face found, 5 model error, 6 other faceprint error,
7 a gallery or key store file is damaged.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Annotated

import typer

from .. import errors
from .app_common import EXIT_BAD_INPUT, EXIT_CORRUPT_STORE, EXIT_MODEL, EXIT_NO_FACE, EXIT_OTHER, EXIT_USAGE

app = typer.Typer(
    name="faceprint",
    help="Face recognition you can measure: detect, embed, verify, identify.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, errors.NoFaceError):
        return EXIT_NO_FACE
    if isinstance(exc, errors.CorruptStoreError):
        return EXIT_CORRUPT_STORE
    if isinstance(exc, errors.ImageError):
        return EXIT_BAD_INPUT
    if isinstance(exc, (errors.ModelError, errors.BackendUnavailableError)):
        return EXIT_MODEL
    if isinstance(exc, errors.ConfigurationError):
        return EXIT_USAGE
    return EXIT_OTHER


def _register() -> None:
    from . import cluster, evaluate, gallery, models, quality, recognize, serve

    recognize.register(app)
    quality.register(app)
    cluster.register(app)
    serve.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(gallery.app, name="gallery")
    app.add_typer(evaluate.app, name="eval")


_register()


def _click_exceptions() -> tuple[type[Exception], ...]:
    """ClickException classes in use: typer ≥ 0.29 vendors click as ``typer._click``."""
    found: list[type[Exception]] = []
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(mod).ClickException)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # without standalone mode, click returns the code of a typer.Exit instead of raising it
        rv = app(args=argv, standalone_mode=False)
    except errors.FaceprintError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exit_code_for(exc)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        return 130
    except _click_exceptions() as exc:  # usage errors: missing argument, unknown command…
        exc.show()
        return int(exc.exit_code)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
