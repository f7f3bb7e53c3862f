"""``faceprint cluster DIR -o clusters.json``: group the faces of unknown people in a folder of photos."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..cluster import (
    ClusterMethod,
    ExportMode,
    FaceClustering,
    check_export_folder,
    cluster_faces,
    export_cluster_folders,
)
from ..errors import ConfigurationError
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import done_counter, emit_error_line, iter_images, progress_bar
from .recognize import DaskOpt, DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

log = logging.getLogger(__name__)


def _inside(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _check_paths(
    folder: Path, output: Path, copy_to: Path | None, link_to: Path | None, *, symlink: bool, force: bool
) -> Path | None:
    """Usage errors before the slow part; the folder photos are exported to, if any."""
    if copy_to is not None and link_to is not None:
        raise ConfigurationError("use either --copy-to or --link-to, not both")
    if symlink and link_to is None:
        raise ConfigurationError("--symlink only applies to --link-to")
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} is not a folder; `faceprint cluster` takes a folder of photos")
    if not output.parent.is_dir():
        raise ConfigurationError(f"output folder {output.parent} does not exist")
    outdir = copy_to if copy_to is not None else link_to
    if outdir is not None:
        if _inside(outdir, folder):
            raise ConfigurationError(f"{outdir} is inside {folder}; choose an OUTDIR outside the photo folder")
        check_export_folder(outdir, force=force)
    return outdir


def _report(
    result: FaceClustering, output: Path, threshold: float | None, outdir: Path | None, written: int, *, json_out: bool
) -> None:
    """The summary: one JSON object with --json, else one line on stderr."""
    summary = {
        "output": str(output),
        "images": result.images,
        "faces": len(result.faces),
        "clusters": result.result.n_clusters,
        "singletons": result.result.n_singletons,
        "failed": len(result.failed),
        "threshold": threshold,
        "files_written": written,
    }
    if json_out:
        typer.echo(json.dumps(summary))
        return
    where = f"; {written} files in {outdir}" if outdir is not None else ""
    typer.echo(
        f"{summary['faces']} faces from {summary['images']} images → {summary['clusters']} clusters, "
        f"{summary['singletons']} singletons ({len(result.failed)} unreadable) → {output}{where}",
        err=True,
    )


def cluster(
    folder: Annotated[Path, typer.Argument(help="Folder of photos (searched recursively).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the clusters (JSON).")],
    method: Annotated[ClusterMethod, typer.Option(help="Clustering method.")] = "chinese-whispers",
    threshold: Annotated[
        float | None, typer.Option(help="Cosine similarity for 'same person' (default: the embedder's -p point).")
    ] = None,
    operating_point: Annotated[
        str,
        typer.Option(
            "--operating-point",
            "-p",
            help="Calibrated threshold used without --threshold: 'fmr=0.0001', 'fmr=0.001' or 'eer' "
            "(stricter suits larger collections; hdbscan needs none).",
        ),
    ] = "fmr=0.0001",
    min_cluster_size: Annotated[int, typer.Option(help="Smaller groups are listed as singletons.", min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Seed of chinese-whispers (same seed, same clusters).")] = 0,
    copy_to: Annotated[
        Path | None, typer.Option("--copy-to", help="Copy photos into OUTDIR/cluster_0001/… (and singletons/).")
    ] = None,
    link_to: Annotated[
        Path | None,
        typer.Option("--link-to", help="Hard-link photos into OUTDIR/cluster_0001/… (symlinks across filesystems)."),
    ] = None,
    symlink: Annotated[bool, typer.Option("--symlink", help="With --link-to: make symbolic links.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Add to a non-empty OUTDIR (existing files are never overwritten).")
    ] = False,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    dask: DaskOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Cluster every face in a folder of photos by identity; optionally sort the photos into folders.

    Writes the clusters (image, face index and box of each face), the singletons, the settings and the model to OUTPUT.
    Photos are never moved or modified.
    """
    outdir = _check_paths(folder, output, copy_to, link_to, symlink=symlink, force=force)
    paths = list(iter_images([folder]))
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    with progress_bar(len(paths), "embedding") as advance:
        progress = done_counter(advance)
        result = cluster_faces(
            paths,
            pipe,
            method=method,
            threshold=threshold,
            operating_point=operating_point,
            min_cluster_size=min_cluster_size,
            seed=seed,
            workers=workers or None,
            progress=progress,
            total=len(paths),
            dask=dask,
        )
    for bad in result.failed:
        assert bad.error is not None
        emit_error_line(bad.source, bad.error)
    doc = {"input": str(folder), **result.to_dict()}
    doc["settings"].update({"detector": detector, "embedder": embedder})
    written: list[dict[str, str]] = []
    if outdir is not None:
        mode: ExportMode = "copy" if copy_to is not None else ("symlink" if symlink else "link")
        written = export_cluster_folders(result, outdir, mode=mode, force=force)
        doc["export"] = {"folder": str(outdir), "mode": mode, "files": len(written)}
    _write_json(output, doc)
    _report(result, output, doc["settings"]["threshold"], outdir, len(written), json_out=json_out)


def _write_json(path: Path, doc: dict[str, object]) -> None:
    """Write to a temporary name and rename, so an interrupted run leaves no half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    app.command("cluster")(cluster)
