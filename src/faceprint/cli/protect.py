"""``faceprint protect eval``: accuracy, unlinkability and revocability of protected templates on a
protocol, a few lines around :func:`faceprint.evaluation.protection.protect_protocol`.

The secret comes from ``--secret-file PATH`` or the ``FACEPRINT_PROTECT_SECRET`` environment
variable (never from the command line, where other users see it); without one the command
refuses to run.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import ProtectionKeyError
from ..evaluation.protocols import protocol_kinds
from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from ..registry import template_protectors
from .app_common import done_counter, emit_report, progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..evaluation.cache import EmbeddingCache
    from ..gallery.protected import ProtectedGallery
    from ..pipeline import FacePipeline
    from ..protection.base import TemplateProtector

log = logging.getLogger(__name__)

#: the environment variable holding the secret when ``--secret-file`` is not given
SECRET_ENV = "FACEPRINT_PROTECT_SECRET"

app = typer.Typer(
    help="Protected (cancelable) templates: measure accuracy with own and stolen keys, unlinkability and "
    "revocability (`faceprint protect eval`).",
    no_args_is_help=True,
)

MethodChoice = enum.Enum("MethodChoice", {n: n for n in template_protectors.names()}, type=str)  # type: ignore[misc]
ProtocolChoice = enum.Enum("ProtocolChoice", {n: n for n in protocol_kinds()}, type=str)  # type: ignore[misc]


def read_secret(path: Path | None) -> bytes:
    """The secret from ``path`` (trailing newline dropped) or ``$FACEPRINT_PROTECT_SECRET``; none is an error."""
    if path is not None:
        try:
            mode = path.stat().st_mode
            raw = path.read_bytes()
        except OSError as exc:
            raise ProtectionKeyError(f"cannot read the secret file {path}: {exc.strerror or exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("the secret file %s can be read by other users; chmod 600 it", path)
        return raw.rstrip(b"\r\n")
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode("utf-8")
    raise ProtectionKeyError(
        f"no protection secret: give --secret-file PATH (a file only you can read) or set {SECRET_ENV}"
    )


def _train_and_protector(
    method: str,
    kind: str,
    data: Path,
    train_pairs: Path | None,
    pipe: FacePipeline,
    store: EmbeddingCache | None,
    workers: int,
) -> tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]] | None, TemplateProtector]:
    """The training split's embeddings (``--train-pairs``) and the protector, biohash centred on them."""
    train = None
    options: dict[str, object] = {}
    if train_pairs is not None:
        from ..evaluation.protection import protocol_images

        with progress_bar(0, "embedding the training split") as advance:
            train = protocol_images(
                kind,
                str(data),
                pairs=str(train_pairs),
                pipeline_settings=pipe,
                cache=store,
                workers=workers,
                progress=done_counter(advance),
            )
        if method == "biohash":
            from ..protection.biohash import fit_centre

            options["centre"] = fit_centre(train[0])
    return train, template_protectors.create(method, dim=pipe.embedder.dim, **options)


@app.command("eval")
def evaluate(
    protocol: Annotated[ProtocolChoice, typer.Option("--protocol", help="Protocol kind (dataset family).")],
    data: Annotated[Path, typer.Option("--data", help=" ".join(k.data_help for k in protocol_kinds().values()))],
    method: Annotated[MethodChoice, typer.Option("--method", help="Protection method.")],
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="File holding the secret (else the environment variable named above)."),
    ] = None,
    salt: Annotated[str, typer.Option(help="Application salt the keys are derived with.")] = "faceprint-protect-eval",
    pairs: Annotated[
        Path | None, typer.Option(help="lfw: a pairs file or its folder (see `faceprint eval run`).")
    ] = None,
    fmr: Annotated[float, typer.Option(min=1e-9, max=0.5, help="Target FMR of the reported FNMR.")] = 1e-3,
    cache: Annotated[
        Path | None, typer.Option(help="Keep embeddings in this cache folder between runs (default: none).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Embedding worker processes.")] = 1,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the report as JSON here.")] = None,
    train_pairs: Annotated[
        Path | None,
        typer.Option(
            "--train-pairs",
            help="lfw: pairs file of a training split (pairsDevTrain.txt) whose subjects are not measured: the "
            "biohash centre is fitted on its images, and the inversion attacker learns on them.",
        ),
    ] = None,
    regressor: Annotated[
        list[str] | None, typer.Option("--regressor", help="Inversion attack regressor(s): ridge, mlp.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write protection.md/.html/.json and the D<-> plot into this folder."),
    ] = None,
) -> None:
    """EER and FNMR with own keys, with a stolen key and unprotected; D<->sys under two keys with its
    noise floor; the match rate of renewed templates. The secret comes from --secret-file or from the
    environment variable FACEPRINT_PROTECT_SECRET; without one the command refuses to run."""
    from ..evaluation.cache import EmbeddingCache
    from ..evaluation.protection import markdown, protect_protocol
    from ..protection import derive_key

    key = derive_key(read_secret(secret_file), salt)
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    store = None if cache is None else EmbeddingCache(cache)
    train, protector = _train_and_protector(method.value, protocol.value, data, train_pairs, pipe, store, workers)
    with progress_bar(0, "embedding") as advance:
        result = protect_protocol(
            protocol.value,
            str(data),
            protector,
            key,
            pairs=None if pairs is None else str(pairs),
            pipeline_settings=pipe,
            cache=store,
            workers=workers,
            target_fmr=fmr,
            progress=done_counter(advance),
            train=train,
            regressors=tuple(regressor or ("ridge",)),
        )
    if report is not None:
        from ..evaluation.protection import write_report

        write_report(result, report)
    emit_report(result.to_dict(), markdown(result), output, json_out)


# ----- protected galleries (`faceprint gallery … ` on a gallery created with --protect) -------------

SecretFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help=f"Protected galleries: file holding the protection secret (else ${SECRET_ENV}).",
    ),
]


def open_protected(gallery: str, secret_file: Path | None, **kw: object) -> ProtectedGallery:
    """The protected gallery in folder ``gallery``, opened with the secret of ``--secret-file`` or the environment."""
    from ..gallery.protected import open_protected_gallery

    return open_protected_gallery(gallery, read_secret(secret_file), **kw)  # type: ignore[arg-type]


def centre_of(pipeline: FacePipeline, sources: list[Path]) -> npt.NDArray[np.float64]:
    """:func:`~faceprint.protection.biohash.fit_centre` of the main face of each image under ``sources``."""
    import numpy as np

    from ..protection.biohash import fit_centre
    from .app_common import iter_images

    vecs = [
        f.embedding.vector
        for r in pipeline.embed_many(iter_images(sources), select="largest")
        for f in r.faces[:1]
        if f.embedding
    ]
    return fit_centre(np.asarray(vecs, np.float64).reshape(len(vecs), -1))


def is_protected(gallery: str) -> bool:
    from ..gallery.protected import is_protected_gallery

    return is_protected_gallery(gallery)


def gallery_enroll(gallery: str, secret_file: Path | None, pairs: list[tuple[str, Path]]) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    """Enrol (subject, image) pairs one image at a time; failures are reported, the rest enrolled."""
    from ..errors import FaceprintError

    added, failed = 0, []
    with open_protected(gallery, secret_file) as g, progress_bar(len(pairs), "enrolling") as advance:
        for subject, image in pairs:
            try:
                added += g.enroll(subject, [image])
            except (FaceprintError, OSError) as exc:
                failed.append({"subject": subject, "image": str(image), "error": str(exc), "exception": exc})
            advance(1)
        subjects = len(g)
    return {"templates": added, "subjects": subjects, "failed": len(failed)}, failed


@app.command("keygen")
def keygen(
    output: Annotated[Path, typer.Argument(help="Secret file to write (mode 0600); refuses to overwrite.")],
) -> None:
    """Write a new random protection secret (32 random bytes, hex) to a file only you can read."""
    import secrets

    from ..errors import ConfigurationError

    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{output} exists; not overwriting a secret (its templates need it)") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create {output}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(output, 0o600)
    typer.echo(f"wrote a new protection secret to {output} (mode 0600)")
