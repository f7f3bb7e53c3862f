"""``faceprint morph``: make morphs, choose contributor pairs, measure a model's vulnerability.

* ``faceprint morph A B -o M.png`` (short for ``morph make``): one morph;
* ``faceprint morph --pairs PAIRS -o DIR``: one morph per pair, and ``DIR/morphs.tsv``;
* ``faceprint morph pairs DIR --strategy lookalike|random -n N``: contributor pairs;
* ``faceprint morph eval DIR/morphs.tsv``: MMPMR, ProdAvg-MMPMR, RMMR at the model's operating points.

Each command is a few lines around :mod:`faceprint.attacks.morph`,
:mod:`faceprint.attacks.morph_pairs` and :mod:`faceprint.evaluation.morph`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import typer

from ..io import DEFAULT_MAX_PIXELS
from ..pipeline import DEFAULT_DETECTOR, DEFAULT_EMBEDDER
from .app_common import EXIT_NO_FACE, default_command_group, emit_error_line, emit_report, progress_bar
from .recognize import DetectorOpt, EmbedderOpt, JsonOpt, _pipeline

log = logging.getLogger(__name__)


app = typer.Typer(
    cls=default_command_group("make"),
    help="Face morphing attacks: make morphs (`faceprint morph A.jpg B.jpg -o M.png`), choose contributor pairs, "
    "and measure a model's vulnerability (MMPMR).",
    no_args_is_help=True,
)

Selection = Literal["largest", "central"]
MethodOpt = Annotated[
    str, typer.Option("--method", help="flow (landmark-free, default) or landmarks (dlib 68, non-commercial).")
]
AlphaOpt = Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Contributor B's share, in [0, 1].")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random parts (print-scan); same seed, same bytes.")]
SelectOpt = Annotated[
    Selection, typer.Option("--select", help="Which face of each image: largest, or central (centred crops: LFW).")
]
FlowOpt = Annotated[str, typer.Option("--flow", help="Optical flow of the flow method: dis or farneback.")]
SizeOpt = Annotated[int, typer.Option("--size", min=64, max=2048, help="Side of the square morph canvas, pixels.")]
SpliceOpt = Annotated[bool, typer.Option("--splice", help="Paste the morphed face into contributor A's photo.")]
SharpenOpt = Annotated[float, typer.Option("--sharpen", min=0.0, max=5.0, help="Unsharp-mask amount (0: none).")]
JpegOpt = Annotated[int | None, typer.Option("--jpeg", min=1, max=100, help="Re-compress as JPEG at this quality.")]
PrintScanOpt = Annotated[bool, typer.Option("--print-scan", help="Simulate printing and scanning.")]
PassportOpt = Annotated[bool, typer.Option("--passport", help="Crop and resize to a 413×531 passport photo.")]
NoncommercialOpt = Annotated[
    bool,
    typer.Option(
        "--noncommercial",
        help="Accept that dlib's 68-point model (needed by --method landmarks) is for non-commercial use only.",
    ),
]
LandmarkModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--landmark-model", help="dlib 68-point model file (default: the one in the face_recognition_models package)."
    ),
]


def _morpher(
    method: str,
    detector: str,
    select: str,
    flow: str,
    size: int,
    splice: bool,
    sharpen: float,
    jpeg: int | None,
    print_scan: bool,
    passport: bool,
    noncommercial: bool,
    landmark_model: Path | None,
) -> Any:
    from ..attacks.morph import Morpher
    from ..attacks.morph_landmarks import DLIB68_LICENCE
    from ..attacks.morph_post import PostProcess

    if method == "landmarks" and noncommercial:
        typer.echo(f"note: {DLIB68_LICENCE}", err=True)
    post = PostProcess(sharpen=sharpen, passport=passport, print_scan=print_scan, jpeg_quality=jpeg)
    return Morpher(
        method,
        size=size,
        detector=detector,
        select=select,
        flow=flow,
        splice=splice,
        post=post,
        landmark_model=landmark_model,
        allow_noncommercial=noncommercial,
    )


def _write_png(path: Path, image: Any) -> None:
    import cv2

    from ..errors import ConfigurationError

    suffix = path.suffix.lower() or ".png"
    if suffix not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
        raise ConfigurationError(f"cannot write {path}: use a .png (lossless) or .jpg file name")
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not write {path}")


@app.command("make")
def make(
    output: Annotated[Path, typer.Option("-o", "--output", help="The morph to write (.png); with --pairs, a folder.")],
    a: Annotated[Path | None, typer.Argument(help="Contributor A's photo.", show_default=False)] = None,
    b: Annotated[Path | None, typer.Argument(help="Contributor B's photo.", show_default=False)] = None,
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="Batch: a pairs file ('a<TAB>b' lines, from `morph pairs`) instead of A B."),
    ] = None,
    alpha: AlphaOpt = 0.5,
    method: MethodOpt = "flow",
    seed: SeedOpt = 0,
    select: SelectOpt = "largest",
    flow: FlowOpt = "dis",
    size: SizeOpt = 256,
    splice: SpliceOpt = False,
    sharpen: SharpenOpt = 0.0,
    jpeg: JpegOpt = None,
    print_scan: PrintScanOpt = False,
    passport: PassportOpt = False,
    landmarks_noncommercial: NoncommercialOpt = False,
    landmark_model: LandmarkModelOpt = None,
    balance: Annotated[
        bool,
        typer.Option(
            "--balance",
            help="Pick alpha (0.3-0.7) as an attacker would: the morph whose lower score against the two "
            "contributors' photos is highest (default model); --alpha is then ignored.",
        ),
    ] = False,
    sheet: Annotated[
        Path | None,
        typer.Option(
            "--sheet",
            help="Also write A, the morph and B side by side, captioned with the morph's score against each "
            "contributor's photo (default model) and whether it matches at FMR 1e-3.",
        ),
    ] = None,
    detector: DetectorOpt = DEFAULT_DETECTOR,
    json_out: JsonOpt = False,
) -> None:
    """Morph two people's photos into one face that resembles both (or every pair of a --pairs file)."""
    from ..errors import ConfigurationError

    if not ((pairs is None and a is not None and b is not None) or (pairs is not None and a is None and b is None)):
        raise ConfigurationError("give either two photos (faceprint morph A B -o M.png) or --pairs FILE -o DIR")
    m = _morpher(
        method, detector, select, flow, size, splice, sharpen, jpeg, print_scan, passport,
        landmarks_noncommercial, landmark_model,
    )  # fmt: skip
    run = _runner(m, alpha, balance, detector, select)
    if pairs is not None:
        _batch(run, m, pairs, output, seed)
        return
    assert a is not None and b is not None
    r = run(a, b, seed)
    _write_png(output, r.image)
    doc: dict[str, Any] = {"morph": str(output), "a": str(a), "b": str(b)}
    doc.update(height=r.image.shape[0], width=r.image.shape[1], **r.settings)
    if sheet is not None:
        doc["scores"] = _write_sheet(sheet, r, a, b, detector, select)
    typer.echo(json.dumps(doc) if json_out else f"{output}\t{r.image.shape[1]}×{r.image.shape[0]}")


def _write_sheet(path: Path, r: Any, a: Path, b: Path, detector: str, select: str) -> dict[str, Any]:
    from ..attacks.morph import side_by_side

    pipe = _pipeline(detector, DEFAULT_EMBEDDER, None, DEFAULT_MAX_PIXELS)
    point = pipe.operating_point("fmr=0.001")
    m = pipe.embed_one(r.image, select="largest").embedding
    scores = {}
    for name, src in (("a", a), ("b", b)):
        e = pipe.embed_one(src, select=select).embedding  # type: ignore[arg-type]
        assert m is not None and e is not None
        scores[name] = round(float(np.dot(m.vector, e.vector)), 4)
    mark = {k: "match" if v >= point.threshold else "no match" for k, v in scores.items()}
    captions = (
        f"A: {scores['a']:.3f} {mark['a']}",
        f"morph (thr {point.threshold:.3f})",
        f"B: {scores['b']:.3f} {mark['b']}",
    )
    _write_png(path, side_by_side(r, captions))
    return {**scores, "threshold": point.threshold, "operating_point": point.name}


def _runner(m: Any, alpha: float, balance: bool, detector: str, select: str) -> Callable[[Any, Any, int], Any]:
    """``run(a, b, seed) -> MorphResult``: a plain morph at ``alpha``, or a balanced one."""
    if not balance:
        return lambda a, b, seed: m.morph(a, b, alpha=alpha, seed=seed)
    from ..attacks.morph import morph_balanced
    from ..errors import NoFaceError

    pipe = _pipeline(detector, DEFAULT_EMBEDDER, None, DEFAULT_MAX_PIXELS)

    def embed(image: Any) -> Any:
        try:
            face = pipe.embed_one(image, select=select)  # type: ignore[arg-type]
        except NoFaceError:
            return None
        return None if face.embedding is None else face.embedding.vector

    return lambda a, b, seed: morph_balanced(m, a, b, embed, seed=seed)


def _batch(run: Callable[[Any, Any, int], Any], m: Any, pairs: Path, output: Path, seed: int) -> None:
    """One morph per pair (pair i gets seed + i) in ``output``, listed in ``output/morphs.tsv``."""
    from ..attacks.morph_pairs import read_pairs
    from ..errors import FaceprintError

    todo = read_pairs(pairs)
    output.mkdir(parents=True, exist_ok=True)
    rows = ["morph\ta\tb\tmethod\talpha\tseed\tpost"]
    failed = 0
    with progress_bar(len(todo), "morphing") as advance:
        for i, p in enumerate(todo):
            try:
                r = run(p.a, p.b, seed + i)
            except FaceprintError as exc:
                emit_error_line(f"{p.a} + {p.b}", exc)
                failed += 1
            else:
                name = f"morph_{i:05d}.png"
                _write_png(output / name, r.image)
                rows.append(
                    "\t".join((name, str(Path(p.a).resolve()), str(Path(p.b).resolve())))
                    + f"\t{m.method}\t{r.settings['alpha']}\t{seed + i}\t{m.post.tag()}"
                )
            advance(1)
    (output / "morphs.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    typer.echo(f"{len(rows) - 1} morphs in {output} ({failed} pairs failed); list: {output / 'morphs.tsv'}")
    if failed and len(rows) == 1:
        raise typer.Exit(EXIT_NO_FACE)


@app.command("pairs")
def pairs_cmd(
    data: Annotated[Path, typer.Argument(help="Folder with one sub-folder of photos per person.")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="lookalike (most similar first) or random.")
    ] = "lookalike",
    n: Annotated[int, typer.Option("-n", min=1, help="Number of pairs.")] = 100,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Pairs file to write (TSV).")] = None,
    seed: SeedOpt = 0,
    min_images: Annotated[
        int, typer.Option("--min-images", min=1, help="Only people with at least this many photos (2: probes left).")
    ] = 1,
    max_uses: Annotated[int, typer.Option("--max-uses", min=1, help="Pairs one person may be part of.")] = 1,
    attributes: Annotated[
        Path | None,
        typer.Option("--attributes", help="CSV 'image,label' (e.g. lfw_gender.csv): pair equal labels only."),
    ] = None,
    select: SelectOpt = "largest",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
) -> None:
    """Choose contributor pairs of different people: look-alikes by embedding similarity, or random."""
    import numpy as np

    from ..attacks.morph_pairs import (
        MorphPair,
        attribute_of,
        identity_images,
        read_attributes,
        select_pairs,
        write_pairs,
    )

    people = identity_images(data, min_images=min_images)
    ids = list(people)
    paths = [people[i][0] for i in ids]
    if strategy == "random":
        emb = np.eye(len(paths), dtype=np.float64)  # similarity is not needed to draw at random
        keep = list(range(len(paths)))
    else:
        pipe = _pipeline(detector, embedder, None, DEFAULT_MAX_PIXELS)
        vecs: list[Any] = []
        keep = []
        with progress_bar(len(paths), "embedding") as advance:
            for k, r in enumerate(pipe.embed_many([str(p) for p in paths], select=select, workers=1)):
                if r.ok and r.faces and r.faces[0].embedding is not None:
                    vecs.append(r.faces[0].embedding.vector)
                    keep.append(k)
                advance(1)
        emb = np.asarray(vecs, dtype=np.float64)
    attrs = read_attributes(attributes) if attributes is not None else None
    labels = [attribute_of(paths[k], data, attrs) for k in keep] if attrs is not None else None
    chosen = select_pairs(
        [ids[k] for k in keep], emb, strategy=strategy, n=n, seed=seed, max_uses=max_uses, attributes=labels
    )
    result = [
        MorphPair(str(paths[keep[i]]), str(paths[keep[j]]), s if strategy == "lookalike" else float("nan"))
        for i, j, s in chosen
    ]
    text = write_pairs(result, output)
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"{len(result)} {strategy} pairs → {output}")


@app.command("eval")
def eval_cmd(
    morphs: Annotated[Path, typer.Argument(help="morphs.tsv from `faceprint morph --pairs`.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the report as JSON here.")] = None,
    select: Annotated[
        Selection, typer.Option("--select", help="Face of the contributors' and probes' photos: largest or central.")
    ] = "largest",
    detector: DetectorOpt = DEFAULT_DETECTOR,
    embedder: EmbedderOpt = DEFAULT_EMBEDDER,
    json_out: JsonOpt = False,
) -> None:
    """MMPMR, ProdAvg-MMPMR, RMMR and the pairs' zero-effort FMR at the model's calibrated operating points.

    Probes of each contributor are the other photos in its folder (folder-per-person data).
    """
    from ..evaluation.morph import markdown, operating_thresholds, pipeline_embedder, read_morph_list, vulnerability

    entries = read_morph_list(morphs)
    pipe = _pipeline(detector, embedder, None, DEFAULT_MAX_PIXELS)
    report = vulnerability(entries, pipeline_embedder(pipe, select=select), operating_thresholds(pipe))
    report["model"] = pipe.model_tag
    emit_report(report, markdown(report, f"Morph vulnerability of {pipe.model_tag}"), output, json_out)
