"""Root of the CLI: logging, error → exit-code mapping, and the command groups.

Exit codes: 0 success (and "match" for verify), 1 "no match", 2 usage error,
3 bad input image, 4 no face found, 5 model error, 6 other faceprint error,
7 a gallery or key store file is damaged.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from .. import errors
from .app_common import (
    EXIT_BAD_INPUT,
    EXIT_CODE_NAMES,
    EXIT_CORRUPT_STORE,
    EXIT_MODEL,
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    EXIT_OTHER,
    EXIT_USAGE,
)

log = logging.getLogger(__name__)

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
    from . import (
        anonymize,
        attributes,
        cluster,
        dedup,
        evaluate,
        explain,
        gallery,
        models,
        morph,
        pad,
        protect,
        quality,
        recognize,
        serve,
        video,
    )
    from . import map as map_cli

    recognize.register(app)
    video.register(app)
    quality.register(app)
    attributes.register(app)
    cluster.register(app)
    serve.register(app)
    dedup.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(gallery.app, name="gallery")
    app.add_typer(evaluate.app, name="eval")
    app.add_typer(explain.app, name="explain")
    app.add_typer(protect.app, name="protect")
    app.add_typer(pad.app, name="pad")
    app.add_typer(morph.app, name="morph")
    app.add_typer(anonymize.app, name="anonymize")
    app.add_typer(map_cli.app, name="map")


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


class _Watched:
    """A text stream that remembers whether anything was written to it (and the last line)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.written = False
        self.last_line = ""

    def write(self, text: str) -> int:
        if text:
            self.written = True
            lines = [line for line in text.splitlines() if line.strip()]
            if lines:
                self.last_line = lines[-1]
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@dataclass(frozen=True, slots=True)
class Failure:
    """How a command ended when it did not succeed: exit code, stable error code, message."""

    exit_code: int
    code: str
    message: str

    def to_json(self) -> str:
        return json.dumps({"error": {"code": self.code, "message": self.message, "exit_code": self.exit_code}})


def error_code(exc: BaseException) -> str:
    """The stable code of an error: the REST API's problem code for faceprint errors."""
    if isinstance(exc, errors.FaceprintError):
        from ..service.problems import problem_spec

        return problem_spec(exc).code
    if isinstance(exc, OSError):
        return "file_error"
    return "internal_error"


def _wants_json(args: list[str]) -> bool:
    head = args[: args.index("--")] if "--" in args else args
    return "--json" in head


def _os_message(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _run(args: list[str]) -> tuple[int, Failure | None]:
    """Run the app; (exit code, the failure if any). Nothing escapes as a traceback."""
    try:
        # without standalone mode, click returns the code of a typer.Exit instead of raising it
        rv = app(args=args, standalone_mode=False)
    except errors.FaceprintError as exc:
        code = exit_code_for(exc)
        return code, Failure(code, error_code(exc), str(exc))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        return EXIT_BAD_INPUT, Failure(EXIT_BAD_INPUT, error_code(exc), _os_message(exc))
    except typer.Exit as exc:
        return int(exc.exit_code), None
    except (typer.Abort, KeyboardInterrupt):
        return 130, Failure(130, "aborted", "aborted")
    except _click_exceptions() as exc:  # usage errors: missing argument, unknown command…
        usage: Any = exc
        usage.show()
        code = int(usage.exit_code)
        return code, Failure(code, "usage_error", usage.format_message())
    except OSError as exc:  # disk full, permission denied on an output…
        return EXIT_OTHER, Failure(EXIT_OTHER, error_code(exc), _os_message(exc))
    except Exception as exc:  # a bug: one line for the user, the traceback with -vv
        log.debug("unexpected error", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {exc} (a bug: please report it with the output of -vv)"
        return EXIT_OTHER, Failure(EXIT_OTHER, "internal_error", message)
    return (rv if isinstance(rv, int) else 0), None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Every failure prints one ``error: ...`` line on stderr. With ``--json``, stdout also gets a
    JSON object for every outcome: the command's own result, or
    ``{"error": {"code", "message", "exit_code"}}`` when it failed before printing one.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    out, err = _Watched(sys.stdout), _Watched(sys.stderr)
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    try:
        code, failure = _run(args)
    finally:
        sys.stdout, sys.stderr = out._stream, err._stream
    if failure is not None and failure.code != "usage_error":  # click has shown usage errors itself
        typer.echo(f"error: {failure.message}", err=True)
    if _wants_json(args) and code not in (0, EXIT_NO_MATCH) and not out.written:
        if failure is None:  # a command that ended with an exit code and said why on stderr only
            failure = Failure(code, EXIT_CODE_NAMES.get(code, "error"), err.last_line or f"exit code {code}")
        typer.echo(failure.to_json())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
