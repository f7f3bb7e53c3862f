"""``faceprint anonymize IN [OUT]`` and ``faceprint anonymize eval``: cover faces, and measure how well.

``faceprint anonymize IN OUT`` is short for ``faceprint anonymize image IN OUT`` (the default
command). Each command is a few lines around :class:`faceprint.media.anonymize.Anonymizer` /
:func:`faceprint.evaluation.anonymization.evaluate_anonymization`. The input is never
overwritten unless ``--in-place`` is given.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigurationError
from ..io import DEFAULT_MAX_PIXELS
from ..media.anonymize import (
    DEFAULT_BLUR_STRENGTH,
    DEFAULT_K,
    DEFAULT_MARGIN,
    DEFAULT_METHOD,
    DEFAULT_PIXELATE_BLOCKS,
    METHODS,
    Anonymizer,
    KSameReference,
)
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import default_command_group, done_counter, emit_error_line, emit_report, iter_images, progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, MaxPixelsOpt, UpsampleOpt, _pipeline

log = logging.getLogger(__name__)

#: the command ``faceprint anonymize IN OUT`` runs
DEFAULT_COMMAND = "image"


app = typer.Typer(
    cls=default_command_group(DEFAULT_COMMAND),
    help="Cover every face of photos or a video (`faceprint anonymize IN OUT --method blur`), and measure "
    "re-identification after it (`faceprint anonymize eval --protocol lfw`).",
    no_args_is_help=True,
)

MethodOpt = Annotated[str, typer.Option("--method", "-m", help=f"How to cover faces: {', '.join(METHODS)}.")]
MarginOpt = Annotated[float, typer.Option(help="Share of the face box added on each side.", min=0.0, max=2.0)]
StrengthOpt = Annotated[
    float, typer.Option(help="blur: σ as a share of the (widened) face box's longer side.", min=0.01, max=2.0)
]
BlocksOpt = Annotated[int, typer.Option(help="pixelate: cells across the face box's longer side.", min=1, max=64)]
ReferenceOpt = Annotated[
    Path | None, typer.Option(help="ksame: a folder of face photos of people NOT in the input (the k-Same set).")
]
KOpt = Annotated[int, typer.Option("--k", help="ksame: reference faces averaged per face.", min=1)]


def _reference(pipe: Any, method: str, reference: Path | None, k: int) -> KSameReference | None:
    if method != "ksame":
        return None
    if reference is None:
        raise ConfigurationError("--method ksame needs --reference DIR: photos of people who are not in the input")
    paths = list(iter_images([reference]))
    if not paths:
        raise ConfigurationError(f"no images in the reference folder {reference}")
    return KSameReference.from_images(paths, pipe.detector)


def _output_for(src: Path, output: Path | None, *, in_place: bool, force: bool, folder: bool) -> Path:
    """Where the anonymised copy of ``src`` goes; never the input unless ``--in-place``."""
    if in_place:
        if output is not None:
            raise ConfigurationError("--in-place writes over the input; give no OUT with it")
        return src
    if output is None:
        output = src.with_name(f"{src.stem}_anon" if folder else f"{src.stem}.anon{src.suffix}")
    if output.exists() and output.resolve() == src.resolve():
        raise ConfigurationError(f"{output} is the input; pass --in-place to overwrite it")
    if not folder and output.exists() and not force:
        raise ConfigurationError(f"{output} exists; pass --force to replace it")
    return output


def _save(image: Any, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fmt_opts: dict[str, Any] = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(image).save(path, **fmt_opts)  # metadata (EXIF, GPS) is not carried over


def _video(src: Path, out: Path, anonymizer: Anonymizer, carry: int) -> dict[str, Any]:
    import cv2

    from ..media.anonymize import anonymize_frames

    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise ConfigurationError(f"cannot open {src} as a video (unsupported codec or not a video)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames() -> Any:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    writer: Any = None
    n = faces = carried = 0
    try:
        with progress_bar(total, "anonymising") as advance:
            for res in anonymize_frames(frames(), anonymizer, carry=carry):
                if writer is None:
                    h, w = res.image.shape[:2]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
                writer.write(cv2.cvtColor(res.image, cv2.COLOR_RGB2BGR))
                n += 1
                faces += len(res.faces)
                carried += res.carried
                advance(1)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if n == 0:
        raise ConfigurationError(f"{src} has no frames that could be decoded")
    return {"input": str(src), "output": str(out), "frames": n, "faces": faces, "carried_over": carried}


def _images(
    source: Path, out: Path, pipe: Any, anonymizer: Anonymizer, *, folder: bool, overwrite: bool, json_out: bool
) -> None:
    """Anonymise one photo or every photo of a folder; unreadable files are reported and skipped."""
    from ..errors import FaceprintError

    pairs = [(p, out / p.relative_to(source)) for p in iter_images([source])] if folder else [(source, out)]
    if folder and not overwrite:
        clash = [str(d) for _, d in pairs if d.exists()]
        if clash:
            raise ConfigurationError(
                f"{len(clash)} files exist in {out} (first: {clash[0]}); pass --force to replace them"
            )
    done = failed = 0
    with progress_bar(len(pairs), "anonymising") as advance:
        for src, dst in pairs:
            advance(1)
            try:
                res = anonymizer.anonymize(pipe.load(src))
            except FaceprintError as exc:
                failed += 1
                emit_error_line(str(src), exc)
                continue
            _save(res.image, dst)
            done += 1
            if json_out:
                line = {"input": str(src), "output": str(dst), "faces": len(res.faces), **anonymizer.settings()}
                typer.echo(json.dumps(line))
    if not json_out:
        typer.echo(f"{done} images anonymised ({anonymizer.method}) → {out}; {failed} unreadable", err=True)
    if failed and not done:
        raise typer.Exit(3)


@app.command(DEFAULT_COMMAND)
def image(
    source: Annotated[Path, typer.Argument(help="A photo, a folder of photos, or a video (with --video).")],
    output: Annotated[
        Path | None,
        typer.Argument(help="Where to write (a file, or a folder for a folder). Default: NAME.anon.EXT / DIR_anon."),
    ] = None,
    method: MethodOpt = DEFAULT_METHOD,
    margin: MarginOpt = DEFAULT_MARGIN,
    strength: StrengthOpt = DEFAULT_BLUR_STRENGTH,
    blocks: BlocksOpt = DEFAULT_PIXELATE_BLOCKS,
    reference: ReferenceOpt = None,
    k: KOpt = DEFAULT_K,
    video: Annotated[bool, typer.Option("--video", help="SOURCE is a video; writes an .mp4 (mp4v).")] = False,
    carry: Annotated[
        int, typer.Option(help="--video: frames a face stays covered after the detector last saw it.", min=0)
    ] = 5,
    in_place: Annotated[bool, typer.Option("--in-place", help="Overwrite the input (never done otherwise).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing OUT file.")] = False,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Cover every detected face (plus a safety margin). One JSON line per file with --json."""
    if method not in METHODS:
        raise ConfigurationError(f"unknown --method {method!r}; choose one of: {', '.join(METHODS)}")
    if not source.exists():
        raise FileNotFoundError(2, "No such file or directory", str(source))
    folder = source.is_dir()
    if video and folder:
        raise ConfigurationError("--video takes one video file, not a folder")
    out = _output_for(source, output, in_place=in_place, force=force, folder=folder)
    pipe = _pipeline(detector, DEFAULT_EMBEDDER, upsample, max_pixels)
    anonymizer = Anonymizer(
        pipe.detector,
        method,
        margin=margin,
        strength=strength,
        blocks=blocks,
        reference=_reference(pipe, method, reference, k),
        k=k,
    )
    if video:
        if in_place:
            raise ConfigurationError("--in-place is not supported for video; give an OUT file")
        summary = _video(source, out.with_suffix(".mp4") if output is None else out, anonymizer, carry)
        typer.echo(
            json.dumps(summary) if json_out else f"{summary['frames']} frames → {summary['output']}", err=not json_out
        )
        return
    _images(source, out, pipe, anonymizer, folder=folder, overwrite=in_place or force, json_out=json_out)


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder (lfw: lfw_view1).")],
    protocol: Annotated[str, typer.Option("--protocol", help="Protocol kind with mated pairs (e.g. lfw).")] = "lfw",
    pairs: Annotated[Path | None, typer.Option(help="lfw: a pairs file (default: DevTest).")] = None,
    n_pairs: Annotated[int, typer.Option("--n-pairs", min=1, help="Mated pairs to use (the first N).")] = 100,
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods to measure (default: all four).", show_default=False)
    ] = ",".join(METHODS),
    margin: MarginOpt = DEFAULT_MARGIN,
    strength: StrengthOpt = DEFAULT_BLUR_STRENGTH,
    blocks: BlocksOpt = DEFAULT_PIXELATE_BLOCKS,
    reference: ReferenceOpt = None,
    k: KOpt = DEFAULT_K,
    quick: Annotated[
        bool, typer.Option("--quick", help="Measure detection after anonymisation for ksame only (blur, mask: slow).")
    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the report as JSON here.")] = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    upsample: UpsampleOpt = None,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    json_out: JsonOpt = False,
) -> None:
    """Per method: re-identification at FMR 1e-2 and 1e-3 against the person's other image, detection
    rate after anonymisation, and the share of faces the detector missed."""
    from ..evaluation.anonymization import evaluate_anonymization, lfw_reference_images, protocol_mated_pairs

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if not names or unknown:
        raise ConfigurationError(f"unknown --methods {', '.join(unknown)}; use some of {', '.join(METHODS)}")
    name, chosen, subjects = protocol_mated_pairs(
        protocol, str(data), pairs=None if pairs is None else str(pairs), n=n_pairs
    )
    pipe = _pipeline(detector, embedder, upsample, max_pixels)
    ref = None
    if "ksame" in names:
        if reference is not None:
            ref = _reference(pipe, "ksame", reference, k)
        elif protocol == "lfw":
            ref = KSameReference.from_images(lfw_reference_images(str(data), subjects), pipe.detector)
        else:
            raise ConfigurationError("--methods ksame needs --reference DIR for this protocol")
    anonymizers = {
        m: Anonymizer(pipe.detector, m, margin=margin, strength=strength, blocks=blocks, reference=ref, k=k)
        for m in names
    }
    with progress_bar(len(chosen), "evaluating") as advance:
        report = evaluate_anonymization(
            chosen,
            pipe,
            anonymizers,
            protocol=name,
            detect_after={"ksame"} if quick else True,
            progress=done_counter(advance),
        )
    emit_report(report.to_dict(), report.to_markdown(), output, json_out)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="anonymize")
