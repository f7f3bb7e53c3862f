"""``FacePipeline(pad=...)``: every face carries its attack score; settings and cache keys unchanged unless set."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint import FacePipeline
from faceprint.attacks.minifasnet import MiniFASNet
from faceprint.errors import ConfigurationError
from faceprint.types import AttackScore

from ..conftest import shared_model_path


@pytest.fixture(scope="module")
def models() -> Path:
    return shared_model_path("minifasnet", "2.7_80x80_MiniFASNetV2.pth").parents[1]


def test_faces_carry_the_attack_score(models: Path) -> None:
    pipe = FacePipeline("dlib-hog", pad="minifasnet", pad_options={"model_dir": models, "threads": 1})
    spoof = shared_model_path("minifasnet", "samples", "image_F1.jpg")
    live = shared_model_path("minifasnet", "samples", "image_T1.jpg")
    (r_spoof, r_live) = pipe.process_batch([spoof, live])
    a, b = r_spoof.faces[0].attack, r_live.faces[0].attack
    assert isinstance(a, AttackScore) and isinstance(b, AttackScore)
    assert a.is_attack and not b.is_attack
    one = pipe.embed_one(live)
    assert isinstance(one.attack, AttackScore) and one.attack.score == pytest.approx(b.score, abs=1e-6)
    assert one.to_dict()["attack"]["kind"] == "presentation"
    assert pipe.settings()["pad"] == "minifasnet"


def test_several_detectors_give_a_dict_by_name(models: Path) -> None:
    opts = {"minifasnet": {"model_dir": models}, "mesonet": {"model_dir": models}}
    pipe = FacePipeline("dlib-hog", pad=("minifasnet", "mesonet"), pad_options=opts)
    face = pipe.embed_one(shared_model_path("minifasnet", "samples", "image_T1.jpg"))
    assert isinstance(face.attack, dict) and set(face.attack) == {"minifasnet", "mesonet"}
    assert face.attack["mesonet"].kind == "deepfake"
    assert set(face.to_dict()["attack"]) == {"minifasnet", "mesonet"}


def test_an_object_is_accepted_but_not_sent_to_workers(models: Path) -> None:
    pipe = FacePipeline("dlib-hog", pad=MiniFASNet(model_dir=models))
    assert set(pipe.pad) == {"minifasnet"}
    with pytest.raises(ConfigurationError, match="by name"):
        pipe.settings()


def test_without_pad_nothing_changes() -> None:
    pipe = FacePipeline("dlib-hog")
    assert "pad" not in pipe.settings() and pipe.pad == {}
    with pytest.raises(ConfigurationError, match="pad_options needs pad"):
        FacePipeline("dlib-hog", pad_options={"model_dir": "/x"})
    with pytest.raises(ConfigurationError, match="maps each detector"):
        FacePipeline("dlib-hog", pad=("minifasnet", "mesonet"), pad_options={"model_dir": "/x"})
