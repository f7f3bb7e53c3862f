"""The quality stage in use: reports on real photographs, the pipeline's gates, best-shot selection."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.errors import (
    ConfigurationError,
    EmptyImageError,
    ImageDimensionError,
    LowQualityError,
    ModelFormatError,
    NoFaceError,
)
from faceprint.io import load_image
from faceprint.pipeline import FacePipeline
from faceprint.quality.degrade import degrade
from faceprint.quality.unified import load_model
from faceprint.registry import quality_assessors

from ..conftest import data_path


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


@pytest.fixture(scope="module")
def fast() -> FacePipeline:
    return FacePipeline("dlib-hog", quality="fiqa-fast")


def test_every_face_carries_a_report(fast: FacePipeline) -> None:
    faces = fast.analyze(data_path("group_photos", "face_recognition_two_people.jpg"))
    assert len(faces) == 2
    for f in faces:
        assert f.quality is not None and f.embedding is not None
        assert 0 <= f.quality.quality <= 100 and f.quality.assessor.startswith("fiqa-fast@")
        d = json.loads(json.dumps(f.to_dict()))
        assert set(d["quality"]["components"]["yaw"]) == {"value", "quality"}
    [r] = list(fast.embed_many([lfw("Aaron_Peirsol", 1)], workers=1))
    assert r.faces[0].quality is not None


def test_quality_is_part_of_the_settings_workers_rebuild(fast: FacePipeline) -> None:
    s = fast.settings()
    assert s["quality"] == "fiqa-fast" and s["min_quality"] is None
    again = FacePipeline(**s)
    assert again.quality is not None and again.quality.name == "fiqa-fast"
    assert "quality" not in FacePipeline("dlib-hog").settings()  # other pipelines keep their settings
    obj = FacePipeline("dlib-hog", quality=quality_assessors.create("fiqa-fast"))
    with pytest.raises(ConfigurationError, match="given by name"):
        obj.settings()


@pytest.mark.slow
def test_worker_processes_rebuild_the_quality_stage(fast: FacePipeline) -> None:
    [r] = list(fast.embed_many([lfw("Aaron_Peirsol", 1)], workers=2))
    assert r.faces[0].quality is not None and r.faces[0].quality.assessor.startswith("fiqa-fast@")


def test_bad_input_gives_specific_errors(fast: FacePipeline) -> None:
    with pytest.raises(ImageDimensionError, match="NaN"):
        fast.assess_quality(np.full((40, 40, 3), np.nan, np.float32))
    assert fast.assess_quality(np.zeros((1, 1, 3), np.uint8)) == []  # no face: a normal result
    assert fast.assess_quality(data_path("non_faces", "skimage_coffee.png")) == []
    with pytest.raises(NoFaceError):
        fast.embed_one(np.zeros((1, 1, 3), np.uint8))
    a = fast.quality
    assert a is not None
    img = load_image(lfw("Aaron_Peirsol", 1))
    d = fast.detector.detect(img)[0]
    with pytest.raises(ImageDimensionError, match="uint8"):
        a.assess(img.astype(np.float32), d)
    with pytest.raises(EmptyImageError):
        a.assess(np.zeros((0, 5, 3), np.uint8), d)


def test_a_face_cut_off_by_the_frame_scores_low_not_a_crash(fast: FacePipeline) -> None:
    [f] = fast.assess_quality(data_path("misc_faces", "obama_partial_face.jpg"), select="largest")
    assert f.quality is not None
    assert f.quality["crop"].quality < 20 and f.quality.quality <= f.quality["crop"].quality


def test_gate_refuses_to_enrol_and_flags_probes() -> None:
    blurred = cv2.GaussianBlur(load_image(lfw("Aaron_Peirsol", 1)), (0, 0), 4)
    clean = lfw("Aaron_Peirsol", 2)
    gate = FacePipeline("dlib-hog", quality="fiqa-fast", min_quality=40)
    with pytest.raises(LowQualityError, match="blurred") as err:
        gate.embed_one(blurred)
    assert isinstance(err.value, NoFaceError) and err.value.quality is not None and err.value.quality < 40
    assert gate.embed_one(clean).quality is not None  # a good face passes
    res = gate.verify(blurred, clean)  # probes are flagged, not refused
    assert len(res.flags) == 1 and res.flags[0].startswith("image a: quality") and "flags" in res.to_dict()
    [bad, good] = gate.process_batch([blurred, clean], select="largest")
    assert isinstance(bad.error, LowQualityError) and not bad.faces and good.ok and good.faces
    assert gate.analyze(blurred)  # analyze keeps every face
    with pytest.raises(ConfigurationError, match="needs a quality assessor"):
        FacePipeline("dlib-hog", min_quality=40)
    with pytest.raises(ConfigurationError, match=r"\[0, 100\]"):
        FacePipeline("dlib-hog", quality="fiqa-fast", min_quality=140)


def test_best_shot_picks_the_good_image_among_degraded_ones(fast: FacePipeline, tmp_path: Path) -> None:
    img = load_image(lfw("Aaron_Sorkin", 2))
    cands = [degrade(img, "blur", 0.8), degrade(img, "underexpose", 0.9), img, degrade(img, "noise", 1.0, seed=1)]
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    best = fast.best_shot([*cands, junk])
    assert best.index == 2 and best.ranking[0][0] == 2 and best.face.embedding is not None
    assert [i for i, _ in best.failed] == [4]
    assert [q for _, q in best.ranking] == sorted((q for _, q in best.ranking), reverse=True)
    with pytest.raises(NoFaceError):
        fast.best_shot([junk, np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ConfigurationError, match="needs a quality assessor"):
        FacePipeline("dlib-hog").best_shot(cands)


def test_the_shipped_model_carries_its_recipe_and_data_digest() -> None:
    for name in ("fiqa", "fiqa-fast"):
        m = load_model(name)
        assert m.features and m.calib_x.size == 101
    doc = json.loads((Path(__file__).resolve().parents[2] / "src/faceprint/data/quality_fiqa.json").read_text())
    assert doc["data"]["images"]["count"] == 3443 and len(doc["data"]["images"]["sha256"]) == 64
    assert "pairsDevTrain" in doc["models"]["fiqa"]["training"]["protocol"]
    assert "train_quality.py" in doc["command"]


def test_a_damaged_model_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"format": "faceprint-quality-model", "models": {"fiqa": {"features": ["q:yaw"]}}}))
    with pytest.raises(ModelFormatError):
        load_model("fiqa", bad)
    bad.write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(ModelFormatError):
        load_model("fiqa", bad)
    with pytest.raises(ModelFormatError, match="no model"):
        load_model("nope")


def test_stability_needs_the_embedder_it_was_trained_with() -> None:
    class Other:
        model_id, model_version, dim, template = "other-model", "1", 4, "dlib150"

        def embed(self, crops):
            return np.ones((len(crops), 4), np.float32) / 2

    with pytest.raises(ConfigurationError, match="trained on dlib-resnet-v1"):
        quality_assessors.create("fiqa", embedder=Other())
