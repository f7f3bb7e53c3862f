"""``faceprint gallery …``: each command a few lines around one :mod:`faceprint.gallery` call.

Exit codes as everywhere (``cli/app_common.py``): 0 success / identified / match, 1 not
identified / no match, 2 usage, 3 bad input image, 4 no face, 5 model error, 6 other error
(unknown subject, model mismatch, migration not applied…).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app_common import (
    EXIT_BAD_INPUT,
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    EXIT_OTHER,
    emit_error_line,
    iter_images,
    progress_bar,
)

if TYPE_CHECKING:
    from ..gallery import Gallery
    from ..pipeline import FacePipeline

app = typer.Typer(
    help="Persistent galleries for 1:N identification (a folder: SQLite + faiss; a .db file or URI: Milvus).",
    no_args_is_help=True,
)

GalleryArg = Annotated[
    str, typer.Argument(help="Gallery folder, milvus-lite .db file, or Milvus URI.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="Force the backend: sqlite or milvus.")]
DetectorOpt = Annotated[str | None, typer.Option("--detector", help="Detector backend (default: the gallery's).")]
EmbedderOpt = Annotated[str | None, typer.Option("--embedder", help="Embedder backend (default: the gallery's).")]
WorkersOpt = Annotated[int, typer.Option(help="Worker processes for embedding (0: one per core).")]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="Subject score: max or mean of its templates.")]
ThresholdOpt = Annotated[float | None, typer.Option(help="Explicit cosine threshold (default: the calibrated one).")]


def _open(gallery: str, backend: str | None, create: bool | None = False, **kw: Any) -> Gallery:
    from ..gallery import open_gallery

    return open_gallery(gallery, backend=backend, create=create, **kw)


def _pipeline(detector: str | None, embedder: str | None) -> FacePipeline | None:
    if detector is None and embedder is None:
        return None
    from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, FacePipeline

    return FacePipeline(detector or DEFAULT_DETECTOR, embedder or DEFAULT_EMBEDDER)


def _out(obj: Any, json_out: bool, text: str) -> None:
    typer.echo(json.dumps(obj) if json_out else text)


@app.command("create")
def create(
    gallery: GalleryArg,
    keep_source_images: Annotated[
        bool, typer.Option("--keep-source-images", help="Keep enrolled images so `migrate` can re-embed them.")
    ] = False,
    strategy: StrategyOpt = None,
    detector: DetectorOpt = None,
    embedder: EmbedderOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an empty gallery; its model is the embedder's (default: faceprint's default pipeline)."""
    from ..pipeline import FacePipeline

    pipe = _pipeline(detector, embedder) or FacePipeline()
    with _open(gallery, backend, True, pipeline=pipe, keep_source_images=keep_source_images, strategy=strategy) as g:
        st = g.stats()
    _out(st, json_out, f"created {st['backend']} gallery {gallery} for model {st['model']}")


def _pairs(subject: str | None, images: list[Path], folders: bool) -> Iterator[tuple[str, Path]]:
    if folders:
        for root in images:
            for d in sorted(p for p in root.iterdir() if p.is_dir()):
                for img in iter_images([d]):
                    yield d.name, img
        return
    if subject is None:
        raise typer.BadParameter("give a SUBJECT, or --folders to take subject names from sub-folders")
    for img in iter_images(images):
        yield subject, img


@app.command("enroll")
def enroll(
    gallery: GalleryArg,
    images: Annotated[list[Path], typer.Argument(help="SUBJECT then images/folders; with --folders: folders only.")],
    folders: Annotated[
        bool, typer.Option("--folders", help="Each sub-folder of the given folders is one subject.")
    ] = False,
    workers: WorkersOpt = 1,
    detector: DetectorOpt = None,
    embedder: EmbedderOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Enrol the main face of each image: `enroll G ada a1.jpg a2.jpg` or `enroll G --folders people/`."""
    subject = None if folders else str(images[0])
    pairs = list(_pairs(subject, images if folders else images[1:], folders))
    with (
        _open(gallery, backend, pipeline=_pipeline(detector, embedder)) as g,
        progress_bar(len(pairs), "enrolling") as advance,
    ):
        done = 0

        def hook(n: int, _total: int | None) -> None:
            nonlocal done
            advance(n - done)
            done = n

        rep = g.enroll_images(pairs, workers=workers or None, progress=hook, total=len(pairs))
    _out(
        rep.to_dict(),
        json_out,
        f"enrolled {rep.templates} templates of {rep.subjects} subjects; {len(rep.failed)} failed",
    )
    for subj, src, err in rep.failed:
        typer.echo(json.dumps({"subject": subj, "image": src, "error": err}), err=True)
    if rep.failed:
        raise typer.Exit(
            EXIT_NO_FACE if all(e.startswith("NoFaceError") for _s, _i, e in rep.failed) else EXIT_BAD_INPUT
        )


@app.command("identify")
def identify(
    gallery: GalleryArg,
    probes: Annotated[list[Path], typer.Argument(help="Probe images or folders.")],
    k: Annotated[int, typer.Option("-k", help="Candidates to return at most.")] = 5,
    threshold: ThresholdOpt = None,
    closed_set: Annotated[bool, typer.Option("--closed-set", help="Rank without a threshold.")] = False,
    strategy: StrategyOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Who is in each probe? JSON lines / a line per probe; exit 1 when some probe is not identified."""
    from ..errors import ImageError, NoFaceError

    missed, bad, noface = 0, 0, 0
    with _open(gallery, backend) as g:
        for p in iter_images(probes):
            try:
                r = g.identify(p, k, threshold=-math.inf if closed_set else threshold, strategy=strategy)  # type: ignore[arg-type]
            except (ImageError, NoFaceError) as exc:  # report and go on with the other probes
                emit_error_line(str(p), exc)
                bad += isinstance(exc, ImageError)
                noface += isinstance(exc, NoFaceError)
                continue
            missed += not r.identified
            best = r.best
            text = f"{p}: " + (f"{best.subject} ({best.score:.4f})" if best else "not enrolled")
            _out({"probe": str(p), **r.to_dict()}, json_out, text)
    if bad or noface:
        raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_NO_FACE)
    if missed:
        raise typer.Exit(EXIT_NO_MATCH)


@app.command("verify")
def verify(
    gallery: GalleryArg,
    probe: Annotated[Path, typer.Argument(help="Probe image.")],
    subject: Annotated[str, typer.Argument(help="The claimed subject.")],
    threshold: ThresholdOpt = None,
    strategy: StrategyOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Is the probe the claimed subject? Exit 0: match, 1: no match."""
    with _open(gallery, backend) as g:
        d = g.verify(probe, subject, threshold=threshold, strategy=strategy)  # type: ignore[arg-type]
    verdict = "MATCH" if d.match else "NO MATCH"
    _out(
        {"probe": str(probe), "subject": subject, **d.to_dict()},
        json_out,
        f"{verdict}: {d.score:.4f} vs {d.threshold:.4f}",
    )
    if not d.match:
        raise typer.Exit(EXIT_NO_MATCH)


@app.command("remove")
def remove(
    gallery: GalleryArg,
    subjects: Annotated[list[str], typer.Argument(help="Subjects to remove (with their templates and stored images).")],
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove subjects."""
    with _open(gallery, backend) as g:
        removed = {s: g.remove(s) for s in subjects}
    _out({"removed": removed}, json_out, ", ".join(f"{s}: {n} templates removed" for s, n in removed.items()))


@app.command("rename")
def rename(
    gallery: GalleryArg,
    old: Annotated[str, typer.Argument(help="Current name.")],
    new: Annotated[str, typer.Argument(help="New name.")],
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rename a subject."""
    with _open(gallery, backend) as g:
        g.rename(old, new)
    _out({"renamed": old, "to": new}, json_out, f"{old} → {new}")


@app.command("list")
def list_subjects(
    gallery: GalleryArg,
    limit: Annotated[int | None, typer.Option(help="At most this many subjects.")] = None,
    offset: Annotated[int, typer.Option(help="Skip this many subjects (by name).")] = 0,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Subjects by name, with their template counts."""
    with _open(gallery, backend) as g:
        subs = g.subjects(limit=limit, offset=offset)  # type: ignore[call-arg]
    for s in subs:
        _out(s.to_dict(), json_out, f"{s.name}\t{s.n_templates}")


@app.command("stats")
def stats(gallery: GalleryArg, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Sizes, model, index, calibration and disk use."""
    with _open(gallery, backend) as g:
        st = g.stats()
    _out(st, json_out, "\n".join(f"{k}: {v}" for k, v in st.items()))


@app.command("calibrate")
def calibrate(
    gallery: GalleryArg,
    nonmated: Annotated[list[Path], typer.Argument(help="Images of people NOT enrolled, or a `faceprint embed` file.")],
    fpir: Annotated[float, typer.Option(help="Target false-positive identification rate.")] = 0.01,
    strategy: StrategyOpt = None,
    workers: WorkersOpt = 1,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set the open-set threshold for a target FPIR from searches of people who are not enrolled."""
    from ..export import read_embeddings
    from ..gallery import split_model_tag
    from ..types import Embedding

    with _open(gallery, backend) as g:
        vecs: list[Any]
        if len(nonmated) == 1 and nonmated[0].suffix.lower() in (".npz", ".parquet"):
            table = read_embeddings(nonmated[0])
            model_id, version = split_model_tag(table.model)
            vecs = [Embedding(v, model_id, version) for v in table.embeddings]
        else:
            pipe = g.get_pipeline()
            vecs = [
                f.embedding
                for r in pipe.embed_many(iter_images(nonmated), select="largest", workers=workers or None)
                for f in r.faces
            ]
        cal = g.calibrate(vecs, fpir, strategy=strategy)  # type: ignore[arg-type]
    _out(
        cal.to_dict(),
        json_out,
        f"threshold {cal.threshold:.4f} for FPIR {fpir:g} ({cal.n_nonmated} non-mated searches)",
    )


@app.command("export")
def export(
    gallery: GalleryArg,
    output: Annotated[Path, typer.Argument(help="Output .npz file.")],
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write every subject and template (with vectors) to one portable .npz file."""
    with _open(gallery, backend) as g:
        rep = g.export(output)
    _out(rep, json_out, f"exported {rep['templates']} templates of {rep['subjects']} subjects → {output}")


@app.command("import")
def import_(
    gallery: GalleryArg,
    input: Annotated[Path, typer.Argument(help="A file written by `faceprint gallery export`.")],
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add the subjects and templates of an exported file (the gallery is created if missing)."""
    with _open(gallery, backend, None) as g:
        rep = g.import_from(input)
    _out(rep, json_out, f"imported {rep['templates']} templates of {rep['subjects']} subjects")


@app.command("migrate")
def migrate(
    gallery: GalleryArg,
    embedder: Annotated[str, typer.Option("--embedder", help="The new embedder backend.")],
    detector: DetectorOpt = None,
    drop_unmigratable: Annotated[
        bool, typer.Option("--drop-unmigratable", help="Remove templates that cannot be re-embedded, migrate the rest.")
    ] = False,
    workers: WorkersOpt = 1,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-embed every template from its stored source image with a new model (exit 6 if not applied)."""
    from ..pipeline import DEFAULT_DETECTOR, FacePipeline

    pipe = FacePipeline(detector or DEFAULT_DETECTOR, embedder)
    with _open(gallery, backend) as g:
        rep = g.migrate(pipe, drop_unmigratable=drop_unmigratable, workers=workers or None)
    summary = (
        f"migrated {rep.migrated} templates to {rep.new_model}"
        if rep.applied
        else (f"NOT migrated: {len(rep.missing)} templates lack a source image, {len(rep.failed)} failed")
    )
    _out(rep.to_dict(), json_out, summary)
    if not json_out:
        for s, t, why in rep.missing + rep.failed:
            typer.echo(f"  {s} template {t}: {why}", err=True)
    if not rep.applied:
        raise typer.Exit(EXIT_OTHER)
