"""The enrolment gate against morphs: D-MAD with a trusted live capture, S-MAD without one (real LFW faces)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from faceprint import FacePipeline
from faceprint.attacks.morph import Morpher
from faceprint.attacks.policy import TrustedCapture, embed_with_trusted
from faceprint.errors import AttackDetectedError, ConfigurationError
from faceprint.gallery import open_gallery
from tests.conftest import data_path

A = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
A_LIVE = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg")
B = ("lfw_view1", "Adam_Scott", "Adam_Scott_0001.jpg")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gate() -> FacePipeline:
    return FacePipeline(pad="dmad", refuse_attacks=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A morph of A and B, and A's own photo through the same alignment (the bona fide passport photo)."""
    m = Morpher("flow", select="central")
    d = tmp_path_factory.mktemp("morph")
    cv2.imwrite(str(d / "morph.png"), cv2.cvtColor(m.morph(data_path(*A), data_path(*B)).image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / "bona.png"), cv2.cvtColor(m.aligned(data_path(*A)), cv2.COLOR_RGB2BGR))
    return d / "morph.png", d / "bona.png"


def test_a_morph_is_refused_by_dmad_and_the_bona_fide_photo_enrolled(gate, photos, tmp_path) -> None:
    morph, bona = photos
    with open_gallery(tmp_path / "g", pipeline=gate) as g:
        res = g.enroll("aaron", [morph, bona], trusted=data_path(*A_LIVE))
        assert len(res) == 1 and res[0].metadata["image"].endswith("bona.png")
        assert [Path(f.image).name for f in res.failed] == ["morph.png"]
        err = res.failed[0].exception
        assert isinstance(err, AttackDetectedError) and "morph attack by dmad@" in str(err)


def test_the_trusted_image_decides_which_detector_scores(gate, photos) -> None:
    morph, _ = photos
    ref = TrustedCapture.of(gate, data_path(*A_LIVE))
    with_ref = embed_with_trusted(FacePipeline(pad=gate.pad["dmad"]), morph, ref)
    assert with_ref.attack.detector.startswith("dmad@")  # type: ignore[union-attr]
    alone = FacePipeline(pad=gate.pad["dmad"]).embed_one(morph)
    assert alone.attack.detector.startswith("smad@")  # type: ignore[union-attr]


def test_trusted_needs_a_differential_detector(photos, tmp_path) -> None:
    with open_gallery(tmp_path / "g", pipeline=FacePipeline(pad="smad")) as g:
        with pytest.raises(ConfigurationError, match="pad='dmad'"):
            g.enroll("aaron", [photos[1]], trusted=data_path(*A_LIVE))
        assert "aaron" not in g.subjects()


def test_gallery_enroll_cli_trusted(photos, tmp_path, capsys) -> None:
    import json

    from faceprint.cli import main

    g = str(tmp_path / "g")
    assert main(["gallery", "create", g]) == 0
    capsys.readouterr()
    args = ["gallery", "enroll", g, "aaron", str(photos[0]), str(photos[1]), "--pad", "dmad", "--refuse-attacks"]
    code = main([*args, "--trusted", str(data_path(*A_LIVE)), "--json"])
    out = capsys.readouterr()
    assert code != 0 and json.loads(out.out)["templates"] == 1
    assert "morph attack by dmad@" in out.err
    assert main([*args, "--folders", "--trusted", str(data_path(*A_LIVE))]) != 0
