"""``faceprint gallery …``: each command a few lines around one :mod:`faceprint.gallery` call.

Exit codes as everywhere (``cli/app_common.py``): 0 success / identified / match, 1 not
identified / no match, 2 usage (also an invalid subject name), 3 bad input image, 4 no face,
5 model error, 6 other error (unknown subject, model mismatch, migration not applied…),
7 damaged gallery (``gallery check`` says what; ``gallery destroy`` removes it). Library errors
reach ``cli.app.main`` as exception objects and are mapped to exit codes by type.

Subject names are identifiers, not paths: they are checked with the service's rule
(:func:`faceprint.gallery.check_subject_name`) and kept verbatim.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app_common import (
    EXIT_BAD_INPUT,
    EXIT_CORRUPT_STORE,
    EXIT_NO_FACE,
    EXIT_NO_MATCH,
    EXIT_OTHER,
    emit_error_line,
    iter_images,
    progress_bar,
)
from .protect import SecretFileOpt

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
StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy", help="Subject score: max or mean of its templates' scores, or quality-mean (weighted by quality)."
    ),
]
ThresholdOpt = Annotated[float | None, typer.Option(help="Explicit cosine threshold (default: the calibrated one).")]
QualityOpt = Annotated[
    str | None, typer.Option("--quality", help="Quality assessor (fiqa or fiqa-fast): store each template's quality.")
]


def _open(gallery: str, backend: str | None, create: bool | None = False, **kw: Any) -> Gallery:
    from ..gallery import open_gallery

    return open_gallery(gallery, backend=backend, create=create, **kw)


def _pipeline(
    detector: str | None,
    embedder: str | None,
    *,
    quality: str | None = None,
    min_quality: float | None = None,
    stored: dict[str, Any] | None = None,
    pad: str | None = None,
    refuse_attacks: bool = False,
) -> FacePipeline | None:
    """The pipeline the options ask for (None: the gallery's own). With ``quality``, the gallery's
    ``stored`` pipeline settings (or the given backends) plus that quality assessor."""
    from ..errors import ConfigurationError

    if min_quality is not None and quality is None:
        raise ConfigurationError("--min-quality needs a quality assessor: add --quality fiqa (or fiqa-fast)")
    if refuse_attacks and pad is None:
        raise ConfigurationError("--refuse-attacks needs an attack detector: add --pad minifasnet (or mesonet)")
    if detector is None and embedder is None and quality is None and pad is None:
        return None
    from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER, FacePipeline
    from ..registry import detectors, embedders, quality_assessors

    if detector is None and embedder is None and stored:
        settings = dict(stored)
    else:
        det, emb = detector or DEFAULT_DETECTOR, embedder or DEFAULT_EMBEDDER
        _check_buildable("detector", detectors.get(det), det)
        _check_buildable("embedder", embedders.get(emb), emb)
        settings = {"detector": det, "embedder": emb}
    if quality is not None:
        quality_assessors.get(quality)  # an unknown name: UnknownModelError naming the known ones
    return FacePipeline(**settings, quality=quality, min_quality=min_quality, pad=pad, refuse_attacks=refuse_attacks)


def _check_buildable(kind: str, factory: Any, name: str) -> None:
    """A backend that needs settings these commands cannot give (a model file: onnx-arcface's
    ``model=``) is refused with :class:`~faceprint.errors.ModelNotFoundError` rather than a TypeError."""
    from ..errors import ModelNotFoundError

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin factory: let it try
        return
    required = [p.name for p in params if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if required:
        raise ModelNotFoundError(
            f"{kind} {name!r} needs {', '.join(r + '=' for r in required)} (its model file), which `faceprint "
            f"gallery` cannot pass: create the gallery from Python with FacePipeline({kind}={name!r}, "
            f"{kind}_options={{{required[0]!r}: PATH}}) — later commands reuse the gallery's stored pipeline"
        )


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
    protect: Annotated[
        str | None,
        typer.Option(
            "--protect",
            help="Store only protected templates: biohash, iom or ckks (needs --secret-file or the environment "
            "variable FACEPRINT_PROTECT_SECRET; see docs/template-protection.md).",
        ),
    ] = None,
    secret_file: SecretFileOpt = None,
    centre_from: Annotated[
        list[Path] | None,
        typer.Option(
            "--centre-from",
            help="biohash: images (or folders) of people, embedded once (not stored), whose mean centres the "
            "embeddings before hashing (much better with a stolen key; use people other than those you enrol).",
        ),
    ] = None,
) -> None:
    """Create an empty gallery; its model is the embedder's (default: faceprint's default pipeline)."""
    from ..pipeline import FacePipeline

    pipe = _pipeline(detector, embedder) or FacePipeline()
    if protect is not None:
        from .protect import centre_of, open_protected

        centre = centre_of(pipe, centre_from) if centre_from else None
        with open_protected(
            gallery,
            secret_file,
            protect=protect,
            create=True,
            pipeline=pipe,
            keep_source_images=keep_source_images,
            centre=centre,
        ) as pg:
            st = pg.stats()
        _out(st, json_out, f"created {protect}-protected gallery {gallery} for model {st['model']}")
        return
    with _open(gallery, backend, True, pipeline=pipe, keep_source_images=keep_source_images, strategy=strategy) as g:
        st = g.stats()
    _out(st, json_out, f"created {st['backend']} gallery {gallery} for model {st['model']}")


def _enrol_pairs(args: list[str], folders: bool) -> list[tuple[str, Path]]:
    """(subject, image) pairs: ``SUBJECT IMAGE…`` or, with ``--folders``, one subject per sub-folder."""
    from ..errors import ConfigurationError
    from ..gallery import check_subject_name

    if folders:
        roots = [Path(a) for a in args]
        if not roots or not all(r.is_dir() for r in roots):
            raise ConfigurationError("--folders takes folders whose sub-folders are the subjects")
        subdirs = [d for r in roots for d in sorted(p for p in r.iterdir() if p.is_dir())]
        for d in subdirs:
            check_subject_name(d.name)
        pairs = [(d.name, img) for d in subdirs for img in iter_images([d])]
    else:
        if not args:
            raise ConfigurationError("give a SUBJECT and its images, or --folders FOLDER…")
        subject = check_subject_name(args[0])
        if len(args) < 2:
            raise ConfigurationError(
                f"no images given for {subject!r}: faceprint gallery enroll GALLERY SUBJECT IMAGE…"
            )
        pairs = [(subject, img) for img in iter_images([Path(a) for a in args[1:]])]
    if not pairs:
        raise ConfigurationError(f"no images found in {' '.join(args)}")
    return pairs


PadOpt = Annotated[
    str | None,
    typer.Option("--pad", help="Screen faces with this attack detector (minifasnet, mesonet; $FACEPRINT_MODEL_DIR)."),
]
RefuseAttacksOpt = Annotated[
    bool, typer.Option("--refuse-attacks", help="With --pad: refuse faces scored as attacks as failures to enrol.")
]
TrustedOpt = Annotated[
    Path | None,
    typer.Option(
        "--trusted",
        help="A trusted live capture of SUBJECT: --pad dmad compares each image with it (D-MAD); "
        "without it dmad runs single-image S-MAD.",
    ),
]


@app.command("enroll")
def enroll(
    gallery: GalleryArg,
    args: Annotated[list[str], typer.Argument(help="SUBJECT then images/folders; with --folders: folders only.")],
    folders: Annotated[
        bool, typer.Option("--folders", help="Each sub-folder of the given folders is one subject.")
    ] = False,
    workers: WorkersOpt = 1,
    detector: DetectorOpt = None,
    embedder: EmbedderOpt = None,
    quality: QualityOpt = None,
    min_quality: Annotated[
        float | None,
        typer.Option(
            "--min-quality", help="Refuse faces below this quality (0-100) as failures to enrol; needs --quality."
        ),
    ] = None,
    select: Annotated[
        str,
        typer.Option(
            "--select",
            help="largest or central face of each image, or best: only each subject's best image (needs --quality).",
        ),
    ] = "largest",
    pad: PadOpt = None,
    refuse_attacks: RefuseAttacksOpt = False,
    trusted: TrustedOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    secret_file: SecretFileOpt = None,
) -> None:
    """Enrol the main face of each image: `enroll G ada a1.jpg a2.jpg` or `enroll G --folders people/`.

    With --quality, each template stores its face's quality (0-100). Morphs:
    `enroll G ada passport.jpg --pad dmad --refuse-attacks --trusted live.jpg`."""
    from ..errors import ConfigurationError

    pairs = _enrol_pairs(args, folders)
    if trusted is not None and (folders or len({s for s, _ in pairs}) != 1):
        raise ConfigurationError("--trusted is a capture of one subject: give SUBJECT and its images, not --folders")
    from .protect import gallery_enroll, is_protected

    if is_protected(gallery):
        if trusted is not None:
            raise ConfigurationError("--trusted (D-MAD) is not available for protected galleries")
        summary, failed = gallery_enroll(gallery, secret_file, pairs)
        _out(summary, json_out, f"enrolled {summary['templates']} protected templates; {len(failed)} failed")
        _report_failures(
            [{k: v for k, v in f.items() if k != "exception"} for f in failed], [f["exception"] for f in failed]
        )
        return
    with _open(gallery, backend) as g:
        pipe = _pipeline(
            detector,
            embedder,
            quality=quality,
            min_quality=min_quality,
            stored=g.settings.pipeline,
            pad=pad,
            refuse_attacks=refuse_attacks,
        )
        rep = _enroll_plain(g, pairs, pipe, select=select, workers=workers, trusted=trusted)
    _out(
        rep.to_dict(),
        json_out,
        f"enrolled {rep.templates} templates of {rep.subjects} subjects; {len(rep.failed)} failed",
    )
    _report_failures(
        [{"subject": f.subject, "image": f.image, "error": f.error} for f in rep.failed],
        [f.exception for f in rep.failed],
    )


def _enroll_plain(
    g: Any, pairs: list[tuple[str, Path]], pipe: Any, *, select: str, workers: int, trusted: Path | None
) -> Any:
    """Enrol ``pairs`` into an open plain gallery with a progress bar: in bulk, or (with a trusted
    capture, one subject) through ``enroll(trusted=)`` so D-MAD compares each image with it."""
    from ..gallery import EnrollReport

    with progress_bar(len(pairs), "enrolling") as advance:
        if trusted is not None:
            images = [p for _, p in pairs]
            one = g.enroll(pairs[0][0], images, pipeline=pipe, select=select, trusted=trusted)
            advance(len(pairs))
            return EnrollReport(len(one), 1 if one else 0, one.failed)
        done = 0

        def hook(n: int, _total: int | None) -> None:
            nonlocal done
            advance(n - done)
            done = n

        return g.enroll_images(
            pairs, pipeline=pipe, select=select, workers=workers or None, progress=hook, total=len(pairs)
        )


def _report_failures(lines: list[dict[str, Any]], errors: list[BaseException]) -> None:
    """One JSON line per failed image on stderr, then exit with the failures' code (none: return)."""
    for line in lines:
        typer.echo(json.dumps(line), err=True)
    if errors:
        raise typer.Exit(_failure_exit_code(errors))


def _failure_exit_code(errors: list[BaseException]) -> int:
    """4 when every input showed no face, else the code of the first other failure (by its type)."""
    from ..errors import NoFaceError
    from .app import exit_code_for

    other = [e for e in errors if not isinstance(e, NoFaceError)]
    if not other:
        return EXIT_NO_FACE
    code = exit_code_for(other[0])
    return EXIT_BAD_INPUT if code == EXIT_OTHER and isinstance(other[0], (OSError, ValueError)) else code


@app.command("identify")
def identify(
    gallery: GalleryArg,
    probes: Annotated[list[Path], typer.Argument(help="Probe images or folders.")],
    k: Annotated[int, typer.Option("-k", help="Candidates to return at most.")] = 5,
    threshold: ThresholdOpt = None,
    closed_set: Annotated[bool, typer.Option("--closed-set", help="Rank without a threshold.")] = False,
    strategy: StrategyOpt = None,
    min_template_quality: Annotated[
        float | None,
        typer.Option(
            "--min-template-quality",
            help="Leave out templates whose stored quality is below this (0-100); those without one are kept.",
        ),
    ] = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    secret_file: SecretFileOpt = None,
) -> None:
    """Who is in each probe? JSON lines / a line per probe; exit 1 when some probe is not identified."""

    from ..errors import ImageError, NoFaceError
    from .protect import is_protected, open_protected

    missed, bad, noface = 0, 0, 0
    protected = is_protected(gallery)
    g: Any
    with open_protected(gallery, secret_file) if protected else _open(gallery, backend) as g:
        for p in iter_images(probes):
            try:
                if protected:
                    r = g.identify(p, k, threshold=-math.inf if closed_set else threshold)
                else:
                    r = g.identify(
                        p,
                        k,
                        threshold=-math.inf if closed_set else threshold,
                        strategy=strategy,  # type: ignore[arg-type]
                        min_template_quality=min_template_quality,
                    )
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
    secret_file: SecretFileOpt = None,
) -> None:
    """Is the probe the claimed subject? Exit 0: match, 1: no match."""
    from .protect import is_protected, open_protected

    if is_protected(gallery):
        with open_protected(gallery, secret_file) as pg:
            match, score = pg.verify(probe, subject, threshold=threshold)
            thr = pg.threshold if threshold is None else threshold
        doc = {"probe": str(probe), "subject": subject, "match": match, "score": round(score, 6), "threshold": thr}
        _out(doc, json_out, f"{'MATCH' if match else 'NO MATCH'}: {score:.4f} vs {thr:.4f}")
        if not match:
            raise typer.Exit(EXIT_NO_MATCH)
        return
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
    secret_file: SecretFileOpt = None,
) -> None:
    """Remove subjects."""
    from .protect import is_protected, open_protected

    g: Any
    with open_protected(gallery, secret_file) if is_protected(gallery) else _open(gallery, backend) as g:
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
    """Rename a subject (the new name follows the same rule as enrolled names)."""
    from ..gallery import check_subject_name

    check_subject_name(new)
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
    secret_file: SecretFileOpt = None,
) -> None:
    """Subjects by name, with their template counts."""
    from .protect import is_protected, open_protected

    g: Any
    with open_protected(gallery, secret_file) if is_protected(gallery) else _open(gallery, backend) as g:
        subs = g.subjects(limit=limit, offset=offset)  # type: ignore[call-arg]
    for s in subs:
        _out(s.to_dict(), json_out, f"{s.name}\t{s.n_templates}")


@app.command("stats")
def stats(
    gallery: GalleryArg, backend: BackendOpt = None, json_out: JsonOpt = False, secret_file: SecretFileOpt = None
) -> None:
    """Sizes, model, index, calibration and disk use."""
    from .protect import is_protected, open_protected

    with open_protected(gallery, secret_file) if is_protected(gallery) else _open(gallery, backend) as g:
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
    """Add the subjects and templates of an exported file (the gallery is created if missing).

    The file is read and checked whole first; a gallery this command created is removed again
    if the import fails."""
    from ..gallery.transfer import read_export

    exported = read_export(input)  # a bad file fails here, before any gallery is created
    g = _open(gallery, backend, None)
    try:
        with g:
            rep = g.import_from(exported, label=str(input))
    except BaseException:
        if g.store.created:
            g.destroy()
        raise
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
    map_file: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Map the stored templates with a fitted map (faceprint map fit) instead of re-embedding images.",
        ),
    ] = None,
) -> None:
    """Re-embed every template from its stored source image with a new model (exit 6 if not applied);
    with --map, map the stored templates into the new model's space (no images needed)."""
    pipe = _pipeline(detector, embedder)
    assert pipe is not None  # --embedder is required
    with _open(gallery, backend) as g:
        if map_file is not None:
            from ..gallery.mapped import migrate_with_map
            from ..mapping import load_map

            rep = migrate_with_map(g, load_map(map_file), pipe)
        else:
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


@app.command("check")
def check(
    gallery: GalleryArg,
    thorough: Annotated[bool, typer.Option("--thorough", help="Also check every database page (slow).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Say whether a (SQLite) gallery opens, without changing it; exit 7 when it is damaged."""
    from ..gallery import check_gallery

    h = check_gallery(gallery, thorough=thorough)
    _out(h.to_dict(), json_out, "ok" if h.ok else f"{'DAMAGED' if h.corrupt else 'NOT OK'}: {h.error}")
    if not h.ok:
        raise typer.Exit(EXIT_CORRUPT_STORE if h.corrupt else EXIT_OTHER)


@app.command("destroy")
def destroy(
    gallery: GalleryArg,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete the gallery and every template in it.")] = False,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete a gallery with all its templates and images — also a damaged one (it is not opened)."""
    from ..errors import ConfigurationError
    from ..gallery import backend_for, remove_gallery

    if not yes:
        raise ConfigurationError(f"this deletes {gallery} and every template in it: pass --yes")
    if (backend or backend_for(gallery)) == "sqlite":
        remove_gallery(gallery)
    else:
        _open(gallery, backend).destroy()
    _out({"destroyed": gallery}, json_out, f"destroyed {gallery}")


@app.command("rekey")
def rekey(
    gallery: GalleryArg,
    secret_file: SecretFileOpt = None,
    new_secret_file: Annotated[
        Path | None, typer.Option("--new-secret-file", help="Also replace the secret by the one in this file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Renew a protected gallery's key: re-enrol every template from its stored source image under a
    new key (exit 6 when the gallery keeps no source images: its subjects must enrol again)."""
    from .protect import open_protected, read_secret

    new = None if new_secret_file is None else read_secret(new_secret_file)
    with open_protected(gallery, secret_file) as g:
        n = g.rekey(new)
        st = g.stats()
    _out(
        {"rekeyed": n, "key_generation": st["key_generation"], "key_fingerprint": st["key_fingerprint"]},
        json_out,
        f"re-protected {n} templates under key generation {st['key_generation']} ({st['key_fingerprint']})",
    )
