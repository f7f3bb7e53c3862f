"""The default pipeline on real photographs: same person matches, others do not; batches stream."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, ImageDecodeError, NoFaceError
from faceprint.pipeline import FacePipeline, select_faces

from .conftest import data_path


def _people() -> dict[str, list[Path]]:
    root = data_path("faces_small")
    return {d.name: sorted(d.iterdir()) for d in sorted(root.iterdir()) if d.is_dir()}


@pytest.mark.slow
def test_same_person_matches_and_different_people_do_not(pipeline: FacePipeline) -> None:
    people = _people()
    emb = {p: [pipeline.embed_one(f).embedding for f in files] for p, files in people.items()}
    mated, non_mated = [], []
    for es in emb.values():
        mated += [float(a.vector @ b.vector) for a, b in itertools.combinations(es, 2)]
    for es, fs in itertools.combinations(emb.values(), 2):
        non_mated += [float(a.vector @ b.vector) for a in es for b in fs]
    from faceprint.scoring import operating_point

    t = operating_point("dlib-resnet-v1", "fmr=0.001").threshold
    assert min(mated) >= t, f"a mated pair scored {min(mated):.3f} < {t:.3f}"
    assert max(non_mated) < t, f"a non-mated pair scored {max(non_mated):.3f} ≥ {t:.3f}"


def test_verify_decides_at_the_calibrated_point(pipeline: FacePipeline) -> None:
    o = data_path("faces_small", "obama")
    same = pipeline.verify(o / "obama.jpg", o / "obama2.jpg")
    assert same.decision.match and same.decision.operating_point == "fmr=0.001"
    other = pipeline.verify(o / "obama.jpg", data_path("faces_small", "biden", "biden.jpg"))
    assert not other.decision.match and other.decision.score < same.decision.score
    eer_point = pipeline.verify(o / "obama.jpg", o / "obama2.jpg", operating_point_name="eer")
    assert eer_point.decision.threshold < same.decision.threshold  # FMR 1e-3 is stricter than the EER point
    explicit = pipeline.verify(o / "obama.jpg", o / "obama2.jpg", threshold=0.999)
    assert not explicit.decision.match and explicit.decision.operating_point == "custom"


def test_verify_without_a_face_says_which_image(pipeline: FacePipeline) -> None:
    cat = data_path("non_faces", "skimage_chelsea.png")
    with pytest.raises(NoFaceError, match="skimage_chelsea.png"):
        pipeline.verify(data_path("faces_small", "obama", "obama.jpg"), cat)


def test_analyze_group_photo_and_selection(pipeline: FacePipeline) -> None:
    img = data_path("group_photos", "facenet_pytorch_multiface.jpg")
    faces = pipeline.analyze(img)
    assert len(faces) == 6
    assert all(f.embedding is not None and f.embedding.dim == 128 for f in faces)
    norms = [float(np.linalg.norm(f.embedding.vector)) for f in faces]  # type: ignore[union-attr]
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    largest = pipeline.analyze(img, select="largest")
    assert len(largest) == 1 and largest[0].detection.bbox.area == max(f.detection.bbox.area for f in faces)
    central = pipeline.analyze(img, select="central")
    assert len(central) == 1
    with pytest.raises(ConfigurationError):
        select_faces([f.detection for f in faces], (10, 10, 3), "biggest")  # type: ignore[arg-type]


@pytest.mark.slow
def test_embed_many_streams_in_order_and_reports_bad_files(tmp_path: Path, pipeline: FacePipeline) -> None:
    good = sorted(data_path("lfw_view1", "Aaron_Peirsol").glob("*.jpg"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cat = data_path("non_faces", "skimage_coffee.png")
    sources = [good[0], bad, cat, *good[1:]]
    seen: list[tuple[int, int | None]] = []
    one = list(
        pipeline.embed_many(
            sources, workers=1, chunk_size=2, progress=lambda d, t: seen.append((d, t)), total=len(sources)
        )
    )
    assert [r.source for r in one] == [str(s) for s in sources]
    assert isinstance(one[1].error, ImageDecodeError) and one[1].faces == []
    assert one[2].ok and one[2].faces == []
    assert all(len(r.faces) == 1 for i, r in enumerate(one) if i not in (1, 2))
    assert seen[-1] == (len(sources), len(sources))
    # worker processes give the same embeddings as this process
    multi = list(pipeline.embed_many(sources, workers=2, chunk_size=2))
    assert [r.source for r in multi] == [r.source for r in one]
    for a, b in zip(one, multi, strict=True):
        assert len(a.faces) == len(b.faces)
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.embedding.vector, fb.embedding.vector, atol=1e-5)  # type: ignore[union-attr]


def test_embed_many_accepts_bytes_and_arrays(pipeline: FacePipeline) -> None:
    p = data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg")
    from faceprint.io import load_image

    res = list(pipeline.embed_many([p, p.read_bytes(), load_image(p)], workers=1))
    v = [r.faces[0].embedding.vector for r in res]  # type: ignore[union-attr]
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)
    np.testing.assert_allclose(v[0], v[2], atol=1e-6)


def test_bad_batch_settings(pipeline: FacePipeline) -> None:
    with pytest.raises(ConfigurationError):
        list(pipeline.embed_many([], chunk_size=0))
    with pytest.raises(ConfigurationError):
        list(pipeline.embed_many([], workers=0))


def test_unknown_backends_name_the_choices() -> None:
    from faceprint.errors import UnknownModelError

    with pytest.raises(UnknownModelError, match="dlib-hog"):
        FacePipeline(detector="no-such-detector")
    with pytest.raises(UnknownModelError, match="dlib-resnet-onnx"):
        FacePipeline(embedder="no-such-embedder")


def test_central_selection_picks_the_labelled_face_of_a_centred_crop(pipeline: FacePipeline) -> None:
    """LFW labels the face at the centre; in this image a larger face sits in a corner."""
    img = data_path("lfw_view1", "Colin_Farrell", "Colin_Farrell_0003.jpg")
    (central,) = pipeline.analyze(img, select="central")
    (largest,) = pipeline.analyze(img, select="largest")
    cx, cy = central.detection.bbox.center
    assert abs(cx - 125) < 25 and abs(cy - 125) < 25
    assert largest.detection.bbox.center[0] < 80  # the other face
    other = data_path("lfw_view1", "Colin_Farrell", "Colin_Farrell_0001.jpg")
    same = pipeline.verify(img, other, select="central")
    assert same.decision.match
    assert pipeline.verify(img, other, select="largest").decision.score < same.decision.score


def test_operating_points_follow_tta_and_detector() -> None:
    from faceprint.models import manifest

    from .conftest import MODELS

    flip = FacePipeline(tta="flip")
    assert flip.operating_point().threshold == manifest()["dlib-resnet-v1+flip"].operating_points["fmr=0.001"].threshold
    with pytest.raises(ConfigurationError, match="fmr=0.5"):
        flip.operating_point("fmr=0.5")
    if not (MODELS / "yunet" / "yunet_s_dynamic.onnx").is_file():
        pytest.skip("yunet weights not in ../shared/models")
    import os

    os.environ.setdefault("FACEPRINT_MODEL_DIR", str(MODELS))
    pipe = FacePipeline("yunet")
    point = pipe.operating_point("fmr=0.001")
    by_yunet = manifest()["yunet"].operating_points_by_model["dlib-resnet-v1"]["fmr=0.001"]
    assert point.threshold == by_yunet.threshold and "detector yunet" in point.calibrated_on
    o = data_path("faces_small", "obama")
    assert pipe.verify(o / "obama.jpg", o / "obama2.jpg").decision.match
    assert not pipe.verify(o / "obama.jpg", data_path("faces_small", "biden", "biden.jpg")).decision.match
