"""Quality in the gallery, on real photographs: stored template quality, the enrolment gate,
best-shot enrolment and identification filtered by template quality (both backends)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from faceprint.errors import ConfigurationError, LowQualityError, NoFaceError
from faceprint.gallery import EnrolledTemplates, Gallery
from faceprint.io import load_image
from faceprint.pipeline import FacePipeline
from faceprint.quality.degrade import degrade

from ..conftest import data_path


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


@pytest.fixture(scope="module")
def fast() -> FacePipeline:
    return FacePipeline("dlib-hog", quality="fiqa-fast")


def quality_of(pipe: FacePipeline, image: Path) -> float:
    q = pipe.embed_one(image).quality
    assert q is not None
    return q.quality


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Aaron Sorkin's second LFW photo as it is ("sharp") and three degraded copies, as PNG files."""
    root = tmp_path_factory.mktemp("shots")
    img = load_image(lfw("Aaron_Sorkin", 2))
    copies = {
        "blurred": degrade(img, "blur", 0.8),
        "dark": degrade(img, "underexpose", 0.9),
        "sharp": img,
        "noisy": degrade(img, "noise", 1.0, seed=1),
    }
    out = {}
    for name, pixels in copies.items():
        out[name] = root / f"{name}.png"
        Image.fromarray(pixels).save(out[name])
    return out


def test_templates_store_the_pipelines_unified_quality(
    make_gallery: Callable[..., Gallery], fast: FacePipeline, shots: dict[str, Path]
) -> None:
    g = make_gallery(pipeline=fast)
    [t] = g.enroll("sorkin", shots["sharp"])
    assert t.quality == pytest.approx(quality_of(fast, shots["sharp"]), abs=1e-9)
    assert [x.quality for x in g.templates("sorkin")] == [t.quality]  # read back from the store
    [t2] = g.enroll("sorkin", shots["blurred"], quality=12.5)  # an explicit quality wins
    assert t2.quality == 12.5
    rep = g.enroll_images([("peirsol", lfw("Aaron_Peirsol", 1))])
    assert rep.templates == 1 and not rep.failed
    [tp] = g.templates("peirsol")
    assert tp.quality == pytest.approx(quality_of(fast, lfw("Aaron_Peirsol", 1)), abs=1e-9)
    # without a quality assessor nothing is invented
    [t3] = g.enroll("plain", lfw("Aaron_Peirsol", 2), pipeline=FacePipeline("dlib-hog", embedder=fast.embedder))
    assert t3.quality is None


def test_select_best_enrols_the_sharp_image_among_degraded_copies(
    make_gallery: Callable[..., Gallery], fast: FacePipeline, shots: dict[str, Path], tmp_path: Path
) -> None:
    g = make_gallery(pipeline=fast)
    images = [shots[k] for k in ("blurred", "dark", "sharp", "noisy")]
    out = g.enroll("sorkin", images, select="best")
    assert isinstance(out, EnrolledTemplates) and len(out) == 1 and not out.failed
    [t] = g.templates("sorkin")
    assert t.metadata["image"] == str(shots["sharp"])
    assert t.image_sha256 == hashlib.sha256(shots["sharp"].read_bytes()).hexdigest()
    assert t.quality == pytest.approx(max(quality_of(fast, p) for p in images), abs=1e-9)

    # a file that is not an image is reported, not raised, when picking the best of several
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    out = g.enroll("sorkin2", [junk, shots["noisy"], shots["sharp"]], select="best")
    assert len(out) == 1 and out[0].metadata["image"] == str(shots["sharp"])
    assert [f.image for f in out.failed] == [str(junk)] and out.report.templates == 1
    with pytest.raises(NoFaceError, match="none of the 2 images"):
        g.enroll("nobody", [junk, data_path("non_faces", "skimage_coffee.png")], select="best")

    # bulk enrolment: one template per subject, whatever the order of the pairs
    pairs = [
        ("sorkin3", shots["noisy"]),
        ("peirsol", lfw("Aaron_Peirsol", 1)),
        ("sorkin3", shots["sharp"]),
        ("sorkin3", shots["blurred"]),
        ("peirsol", lfw("Aaron_Peirsol", 2)),
    ]
    rep = g.enroll_images(pairs, select="best")
    assert rep.templates == 2 and rep.subjects == 2 and not rep.failed
    [t3] = g.templates("sorkin3")
    assert t3.metadata["image"] == str(shots["sharp"])
    best_peirsol = max((1, 2), key=lambda n: quality_of(fast, lfw("Aaron_Peirsol", n)))
    assert [t.metadata["image"] for t in g.templates("peirsol")] == [str(lfw("Aaron_Peirsol", best_peirsol))]

    with pytest.raises(ConfigurationError, match="quality assessor"):
        g.enroll("x", images, select="best", pipeline=FacePipeline("dlib-hog", embedder=fast.embedder))


def test_enrolment_below_min_quality_is_a_reported_failure_to_enrol(
    make_gallery: Callable[..., Gallery], fast: FacePipeline, shots: dict[str, Path]
) -> None:
    q_sharp, q_blurred = quality_of(fast, shots["sharp"]), quality_of(fast, shots["blurred"])
    assert q_blurred < q_sharp
    gate = FacePipeline("dlib-hog", embedder=fast.embedder, quality="fiqa-fast", min_quality=(q_sharp + q_blurred) / 2)
    g = make_gallery(pipeline=gate)
    out = g.enroll("sorkin", [shots["blurred"], shots["sharp"]])
    assert [t.metadata["image"] for t in out] == [str(shots["sharp"])]
    [f] = out.failed
    assert f.subject == "sorkin" and f.image == str(shots["blurred"])
    assert isinstance(f.exception, LowQualityError) and "below" in f.error and "blurred" in f.error
    assert [t.quality for t in g.templates("sorkin")] == [pytest.approx(q_sharp)]

    none_left = g.enroll("ghost", [shots["blurred"]])
    assert len(none_left) == 0 and len(none_left.failed) == 1 and "ghost" not in g  # nothing written

    rep = g.enroll_images([("a", shots["blurred"]), ("b", shots["sharp"]), ("c", lfw("Aaron_Peirsol", 1))])
    assert [(f.subject, type(f.exception)) for f in rep.failed] == [("a", LowQualityError)]
    assert rep.templates == 2
    assert "b" in g and "a" not in g


def test_min_template_quality_leaves_poor_templates_out_of_identification(
    make_gallery: Callable[..., Gallery], fast: FacePipeline, shots: dict[str, Path]
) -> None:
    g = make_gallery(pipeline=fast)
    [poor] = g.enroll("sorkin", shots["blurred"])
    [good] = g.enroll("peirsol", lfw("Aaron_Peirsol", 1))
    assert poor.quality is not None and good.quality is not None and poor.quality < good.quality
    probe = fast.embed_one(lfw("Aaron_Sorkin", 1)).embedding
    assert probe is not None

    def subjects(**kw: object) -> list[str]:
        return [c.subject for c in g.identify(probe, k=2, threshold=-math.inf, **kw).candidates]  # type: ignore[arg-type]

    assert subjects() == ["sorkin", "peirsol"]
    between = (poor.quality + good.quality) / 2
    assert subjects(min_template_quality=between) == ["peirsol"]
    assert subjects(min_template_quality=poor.quality) == ["sorkin", "peirsol"]  # at the threshold: kept
    g.enroll_embeddings("unrated", [probe])  # no stored quality: kept by any filter
    assert subjects(min_template_quality=100) == ["unrated"]


@pytest.mark.slow
def test_cli_enrols_with_quality_and_filters_identification(
    tmp_path: Path, fast: FacePipeline, shots: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from faceprint.cli import main

    g = str(tmp_path / "g")
    assert main(["gallery", "create", g, "--detector", "dlib-hog"]) == 0
    sharp, blurred, noisy = (str(shots[k]) for k in ("sharp", "blurred", "noisy"))
    assert (
        main(["gallery", "enroll", g, "sorkin", blurred, sharp, noisy, "--quality", "fiqa-fast", "--select", "best"])
        == 0
    )
    assert json.loads(main_json(capsys, ["gallery", "stats", g]))["templates"] == 1

    gate = (quality_of(fast, shots["sharp"]) + quality_of(fast, shots["blurred"])) / 2
    args = ["gallery", "enroll", g, "sorkin2", blurred, sharp, "--quality", "fiqa-fast", "--min-quality", str(gate)]
    assert main([*args, "--json"]) == 4  # a failure to enrol is a "no usable face" failure
    out = capsys.readouterr()
    assert json.loads(out.out)["templates"] == 1
    assert "LowQualityError" in out.err and "blurred.png" in out.err

    assert main(["gallery", "enroll", g, "poor", blurred, "--quality", "fiqa-fast"]) == 0
    capsys.readouterr()
    probe = str(shots["blurred"])
    assert main(["gallery", "identify", g, probe, "--closed-set", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["candidates"][0]["subject"] == "poor"
    assert main(["gallery", "identify", g, probe, "--closed-set", "-k", "1", "--min-template-quality", str(gate)]) == 0
    assert capsys.readouterr().out.split(": ")[1].startswith("sorkin")
    assert main(["gallery", "enroll", g, "x", sharp, "--min-quality", "50"]) == 2
    assert "--quality" in capsys.readouterr().err


def main_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    from faceprint.cli import main

    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return capsys.readouterr().out
