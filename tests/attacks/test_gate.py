"""The refuse-attacks policy: enrolment refuses a spoof (a failure to enrol), batches drop it,
verification flags it, and nothing is refused without the policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceprint import FacePipeline
from faceprint.errors import AttackDetectedError, ConfigurationError, NoFaceError
from faceprint.gallery import open_gallery

from ..conftest import shared_model_path


@pytest.fixture(scope="module")
def gate() -> FacePipeline:
    models = shared_model_path("minifasnet", "2.7_80x80_MiniFASNetV2.pth").parents[1]
    return FacePipeline(
        "dlib-hog", pad="minifasnet", pad_options={"model_dir": models, "threads": 1}, refuse_attacks=True
    )


def sample(name: str) -> Path:
    return shared_model_path("minifasnet", "samples", f"{name}.jpg")


def test_enrolment_refuses_the_spoof_and_keeps_the_live_face(gate: FacePipeline, tmp_path: Path) -> None:
    with pytest.raises(AttackDetectedError, match="presentation attack by minifasnet") as info:
        gate.embed_one(sample("image_F1"))
    assert isinstance(info.value, NoFaceError)  # a failure to enrol, as LowQualityError is
    assert gate.embed_one(sample("image_T1")).attack is not None
    with open_gallery(tmp_path / "g", pipeline=gate) as g:
        res = g.enroll("ada", [sample("image_F1"), sample("image_T1"), sample("image_F2")])
        assert len(res) == 1 and [Path(f.image).name for f in res.failed] == ["image_F1.jpg", "image_F2.jpg"]
        assert all(isinstance(f.exception, AttackDetectedError) for f in res.failed)
        only_spoof = g.enroll("bob", [sample("image_F2")])
        assert len(only_spoof) == 0 and "bob" not in g.subjects()


def test_batches_drop_attacks_and_verify_flags_them(gate: FacePipeline) -> None:
    spoof, live = gate.process_batch([sample("image_F2"), sample("image_T1")])
    assert spoof.faces == [] and isinstance(spoof.error, AttackDetectedError)
    assert len(live.faces) == 1 and live.error is None
    v = gate.verify(sample("image_T1"), sample("image_F1"))
    assert len(v.flags) == 1 and v.flags[0].startswith("image b: scored as a presentation attack")


def test_without_the_policy_nothing_is_refused(gate: FacePipeline) -> None:
    report_only = FacePipeline("dlib-hog", pad=gate.pad["minifasnet"])
    face = report_only.embed_one(sample("image_F1"))
    assert face.attack is not None and face.attack.is_attack  # type: ignore[union-attr]
    assert report_only.verify(sample("image_T1"), sample("image_F1")).flags == ()
    with pytest.raises(ConfigurationError, match="refuse_attacks needs"):
        FacePipeline("dlib-hog", refuse_attacks=True)


@pytest.mark.slow
def test_gallery_enroll_cli_refuses_attacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    from faceprint.cli import main

    monkeypatch.setenv("FACEPRINT_MODEL_DIR", str(shared_model_path("minifasnet", "samples").parents[1]))
    g = str(tmp_path / "g")
    assert main(["gallery", "create", g]) == 0
    capsys.readouterr()
    code = main(
        [
            "gallery",
            "enroll",
            g,
            "ada",
            str(sample("image_F1")),
            str(sample("image_T1")),
            "--pad",
            "minifasnet",
            "--refuse-attacks",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 4 and out["templates"] == 1 and "AttackDetectedError" in out["failed"][0]["error"]
    assert main(["gallery", "enroll", g, "ada", str(sample("image_F1")), "--refuse-attacks"]) == 2  # needs --pad
