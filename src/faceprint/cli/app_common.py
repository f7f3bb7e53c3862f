"""Helpers shared by CLI commands: exit codes, file walking, progress bars, error lines."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer

T = TypeVar("T")

EXIT_NO_MATCH = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_NO_FACE = 4
EXIT_MODEL = 5
EXIT_OTHER = 6
EXIT_CORRUPT_STORE = 7  # a gallery or key store file is damaged (errors.CorruptStoreError)

#: The ``code`` of the ``--json`` error object for a command that ended with only an exit code.
EXIT_CODE_NAMES = {
    EXIT_NO_MATCH: "no_match",
    EXIT_USAGE: "usage_error",
    EXIT_BAD_INPUT: "bad_input",
    EXIT_NO_FACE: "no_face",
    EXIT_MODEL: "model_error",
    EXIT_OTHER: "error",
    EXIT_CORRUPT_STORE: "corrupt_store",
}

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})


def finite_float(value: float | None) -> float | None:
    """Option callback: refuse NaN and ±inf (``--threshold nan`` would silently never match)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}")
    return value


def iter_images(inputs: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively for image suffixes, in sorted order."""
    for p in inputs:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p  # a missing or bad file is reported by the loader, with its name


def emit_error_line(source: str, exc: BaseException) -> None:
    sys.stderr.write(json.dumps({"image": source, "error": type(exc).__name__, "message": str(exc)}) + "\n")


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; silent otherwise.

    It never writes to stdout, so ``--json`` output stays machine-readable with a bar shown.
    """
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeRemainingColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # rich's default console is stdout
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.advance(task, n)


def emit_report(doc: dict[str, object], markdown: str, output: Path | None, json_out: bool) -> None:
    """A report command's ending: ``doc`` as JSON to ``output`` when given; ``doc`` (``--json``) or
    ``markdown`` on stdout."""
    if output is not None:
        output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    typer.echo(json.dumps(doc) if json_out else markdown)


def done_counter(advance: Callable[[int], None]) -> Callable[[int, int | None], None]:
    """A ``progress(done, total)`` hook (the batch engine's) that moves a :func:`progress_bar` by ``advance``."""
    seen = 0

    def progress(done: int, _total: int | None) -> None:
        nonlocal seen
        advance(done - seen)
        seen = done

    return progress


def default_command_group(command: str) -> type[Any]:
    """A typer group class whose first argument, when it is not one of its commands, starts
    ``command`` (``faceprint explain A B`` = ``explain pair A B``; ``faceprint pad IMG`` = ``pad score IMG``)."""
    from typer.core import TyperGroup

    class DefaultCommandGroup(TyperGroup):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args = [command, *args]
            return list(super().parse_args(ctx, args))

    return DefaultCommandGroup


@dataclass
class ImageTally:
    """What :func:`faces_by_image` could not use: unreadable images, images without a face."""

    unreadable: int = 0
    without_face: int = 0

    def exit_if_any(self) -> None:
        """Exit 3 when an image could not be read, else 4 when one had no face; else return."""
        if self.unreadable:
            raise typer.Exit(code=EXIT_BAD_INPUT)
        if self.without_face:
            raise typer.Exit(code=EXIT_NO_FACE)


def faces_by_image(
    inputs: Iterable[Path], find: Callable[[Path], Sequence[T]], tally: ImageTally
) -> Iterator[tuple[Path, Sequence[T]]]:
    """``(path, find(path))`` for each image of ``inputs`` (folders walked) that gives faces. An
    image that fails or gives none is reported as a JSON line on stderr and counted in ``tally``:
    one bad file does not stop the run."""
    from ..errors import NoFaceError

    for path in iter_images(inputs):
        try:
            found = find(path)
        except Exception as exc:  # report and go on
            tally.unreadable += 1
            emit_error_line(str(path), exc)
            continue
        if not found:
            tally.without_face += 1
            emit_error_line(str(path), NoFaceError(f"no face found in {path}"))
            continue
        yield path, found


def detect_selected(
    path: Path, finder: Any, select: Literal["all", "largest", "central"], max_pixels: int | None
) -> tuple[Any, list[Any]]:
    """``(image, detections)`` of one image file: decoded within ``max_pixels``, its faces found by
    the detector ``finder`` and chosen by ``select`` (all, largest or central)."""
    from ..io import load_image
    from ..pipeline import select_faces

    img = load_image(path, max_pixels=max_pixels or None)
    return img, select_faces(finder.detect(img), img.shape, select)
