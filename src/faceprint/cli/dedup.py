"""``faceprint dedup DIR -o report.json``: exact and near duplicates, same-person groups, leaks into another set.

A few lines around :func:`faceprint.media.dedup.scan_images` and
:func:`faceprint.media.dedup.find_duplicates`. Nothing is ever deleted: ``--keep-list`` writes the
files to keep, ``--move-to`` moves the redundant copies into another folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import ConfigurationError
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

if TYPE_CHECKING:
    from ..media.dedup import DedupReport


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (non-images are reported as skipped, not silently left out)."""
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} is not a folder; `faceprint dedup` takes a folder of photos")
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _write_private(path: Path, text: str) -> None:
    """Reports name people's photos: written 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _print_summary(report: DedupReport, doc: dict[str, Any], output: Path, *, json_out: bool) -> None:
    """One JSON object with --json, else one line on stderr."""
    summary = {
        "output": str(output),
        "images": len(report.paths),
        "skipped": len(report.skipped),
        "duplicate_groups": len(report.groups),
        "redundant": len(report.redundant()),
        "identity_groups": len(report.identity_groups),
    }
    if "against" in doc:
        summary["against_duplicates"] = doc["against"]["images_with_duplicate"]
        summary["against_identities"] = doc["against"]["images_with_identity"]
    if json_out:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{summary['images']} images ({summary['skipped']} skipped): {summary['duplicate_groups']} duplicate "
        f"groups, {summary['redundant']} redundant copies, {summary['identity_groups']} same-person groups → {output}",
        err=True,
    )


def dedup(
    folder: Annotated[Path, typer.Argument(help="Folder of photos (walked recursively).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The JSON report to write.")],
    against: Annotated[
        Path | None, typer.Option(help="Another folder (e.g. a training set): list what of FOLDER is also in it.")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML page with thumbnails (self-contained).")
    ] = None,
    keep_list: Annotated[
        Path | None,
        typer.Option("--keep-list", help="Write the files to keep (one per line): one per duplicate group."),
    ] = None,
    move_to: Annotated[
        Path | None, typer.Option("--move-to", help="Move the redundant copies into this folder (never deletes).")
    ] = None,
    phash_bits: Annotated[
        int, typer.Option(help="pHash Hamming distance (of 64) for near duplicates.", min=0, max=64)
    ] = 4,
    face_similarity: Annotated[
        float, typer.Option(help="Face embedding cosine at which aligned crops are compared.", min=-1.0, max=1.0)
    ] = 0.95,
    crop_correlation: Annotated[
        float, typer.Option(help="Aligned crop correlation for near duplicates.", min=-1.0, max=1.0)
    ] = 0.9,
    operating_point: Annotated[
        str, typer.Option("--operating-point", "-p", help="Calibrated point for same-person groups and leaks.")
    ] = "fmr=0.0001",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Find exact duplicates (same decoded pixels), near duplicates (pHash, or face embedding plus
    aligned crop), same-person groups, and with --against the images and people also in another set."""
    from ..media.dedup import DedupSettings, find_duplicates, move_duplicates, scan_images
    from ..media.dedup import keep_list as make_keep_list

    files = _files(folder)
    other = _files(against) if against is not None else None
    if move_to is not None and (move_to.resolve() == folder.resolve() or folder.resolve() in move_to.resolve().parents):
        raise ConfigurationError(f"--move-to {move_to} is inside {folder}; choose a folder outside it")
    if not output.parent.is_dir():
        raise ConfigurationError(f"output folder {output.parent} does not exist")
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    threshold = float(pipe.operating_point(operating_point).threshold)
    settings = DedupSettings(phash_bits, face_similarity, crop_correlation, operating_point)
    with progress_bar(len(files) + len(other or []), "scanning") as advance:
        records, skipped = scan_images(files, pipe, progress=advance)
        other_records = scan_images(other, pipe, progress=advance)[0] if other is not None else None
    report = find_duplicates(
        records, skipped=skipped, against=other_records, settings=settings, identity_threshold=threshold
    )
    doc = report.to_dict()
    if keep_list is not None:
        _write_private(keep_list, "".join(p + "\n" for p in make_keep_list(report)))
    if move_to is not None:
        doc["moved"] = [{"from": a, "to": b} for a, b in move_duplicates(report, move_to, folder)]
    _write_private(output, json.dumps(doc, indent=2) + "\n")
    if html_out is not None:
        from ..media._dedup_html import render_html

        _write_private(html_out, render_html(report))
    _print_summary(report, doc, output, json_out=json_out)


def register(root: typer.Typer) -> None:
    root.command("dedup")(dedup)
