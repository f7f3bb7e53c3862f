"""Morph generation on real LFW photos: a morph is a face like both contributors, deterministic,
with the contributors' own aligned faces at alpha 0 and 1, and clear errors for bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceprint.attacks.morph import BALANCE_ALPHAS, Morpher, check_alpha, morph_balanced
from faceprint.attacks.morph_landmarks import default_dlib68_path
from faceprint.attacks.morph_post import PASSPORT_SIZE, PostProcess, postprocess
from faceprint.errors import ConfigurationError, LandmarkModelError, NoFaceError, SameContributorError
from faceprint.io import load_image
from tests.conftest import data_path

A = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
A_PROBE = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg")
B = ("lfw_view1", "Adam_Scott", "Adam_Scott_0001.jpg")
B_PROBE = ("lfw_view1", "Adam_Scott", "Adam_Scott_0002.jpg")
OTHER = ("lfw_view1", "Al_Gore", "Al_Gore_0001.jpg")


def _needs_dlib68() -> None:
    p = default_dlib68_path()
    if p is None or not p.is_file():
        pytest.skip("dlib's 68-point model (face_recognition_models) is not installed")


@pytest.fixture(scope="module")
def flow() -> Morpher:
    return Morpher("flow", select="central")


@pytest.fixture(scope="module")
def landmarks() -> Morpher:
    _needs_dlib68()
    return Morpher("landmarks", select="central", allow_noncommercial=True)


@pytest.fixture(scope="module")
def morphers(flow: Morpher, request: pytest.FixtureRequest) -> dict[str, Morpher]:
    return {"flow": flow, "landmarks": request.getfixturevalue("landmarks")}


def _embed(pipeline, image) -> np.ndarray:
    return pipeline.embed_one(image, select="central").embedding.vector


@pytest.mark.slow
@pytest.mark.parametrize("method", ["flow", "landmarks"])
def test_morph_is_a_face_like_both_contributors(morphers, pipeline, method: str) -> None:
    r = morphers[method].morph(data_path(*A), data_path(*B))
    assert r.image.shape == (256, 256, 3) and r.image.dtype == np.uint8
    assert len(pipeline.detect(r.image)) == 1
    m = _embed(pipeline, r.image)
    other = _embed(pipeline, data_path(*OTHER))
    for probe in (A_PROBE, B_PROBE):  # other photos of each contributor, not the ones morphed
        p = _embed(pipeline, data_path(*probe))
        assert float(m @ p) > float(other @ p), probe


@pytest.mark.slow
def test_same_seed_gives_identical_bytes_and_the_seed_matters(flow: Morpher) -> None:
    m = Morpher("flow", select="central", post=PostProcess(sharpen=1.0, print_scan=True, jpeg_quality=85))
    r1 = m.morph(data_path(*A), data_path(*B), seed=7)
    r2 = m.morph(data_path(*A), data_path(*B), seed=7)
    r3 = m.morph(data_path(*A), data_path(*B), seed=8)
    png = [cv2.imencode(".png", r.image)[1].tobytes() for r in (r1, r2, r3)]
    assert png[0] == png[1]
    assert png[0] != png[2]
    # and without post-processing, two Morphers agree byte for byte
    assert np.array_equal(
        flow.morph(data_path(*A), data_path(*B)).image,
        Morpher("flow", select="central").morph(data_path(*A), data_path(*B)).image,
    )


@pytest.mark.parametrize("method,tol", [("flow", 0.5), ("landmarks", 2.0)])
def test_alpha_0_and_1_give_the_contributors_aligned_faces(morphers, method: str, tol: float) -> None:
    m = morphers[method]
    r0 = m.morph(data_path(*A), data_path(*B), alpha=0.0)
    r1 = m.morph(data_path(*A), data_path(*B), alpha=1.0)
    half = m.morph(data_path(*A), data_path(*B), alpha=0.5)

    def diff(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).mean())

    assert diff(r0.image, r0.aligned_a) < tol
    assert diff(r1.image, r1.aligned_b) < tol
    assert diff(half.image, half.aligned_a) > 5 * tol and diff(half.image, half.aligned_b) > 5 * tol


@pytest.mark.slow
def test_splice_keeps_contributor_a_background(landmarks: Morpher) -> None:
    m = Morpher("landmarks", select="central", splice=True, allow_noncommercial=True)
    r = m.morph(data_path(*A), data_path(*B))
    plain = landmarks.morph(data_path(*A), data_path(*B))
    corner = (slice(0, 30), slice(0, 30))
    # the corner is background: spliced = A's (unwarped there, border points are fixed), blended = A/B mix
    assert np.abs(r.image[corner].astype(int) - r.aligned_a[corner].astype(int)).mean() < 2.0
    assert np.abs(plain.image[corner].astype(int) - plain.aligned_a[corner].astype(int)).mean() > 5.0


def test_no_face_names_the_image(flow: Morpher) -> None:
    cat = next(p for p in sorted(data_path("non_faces").iterdir()) if p.is_file())
    with pytest.raises(NoFaceError, match=cat.name) as e:
        flow.morph(data_path(*A), cat)
    assert "contributor B" in str(e.value)


def test_same_image_twice_is_refused(flow: Morpher) -> None:
    with pytest.raises(SameContributorError):
        flow.morph(data_path(*A), data_path(*A))
    img = load_image(data_path(*A))
    with pytest.raises(SameContributorError):
        flow.morph(img, img.copy())


@pytest.mark.slow
def test_very_different_sizes_work(flow: Morpher, pipeline) -> None:
    big = data_path("faces_small", "obama", "obama.jpg")
    assert load_image(big).shape[0] > 2 * load_image(data_path(*B)).shape[0]
    m = Morpher("flow")
    r = m.morph(big, data_path(*B))
    assert r.image.shape == (256, 256, 3)
    assert len(pipeline.detect(r.image)) == 1


@pytest.mark.parametrize("alpha", [-0.01, 1.01, float("nan")])
def test_alpha_outside_0_1_is_refused(flow: Morpher, alpha: float) -> None:
    with pytest.raises(ConfigurationError, match="alpha"):
        flow.morph(data_path(*A), data_path(*B), alpha=alpha)
    with pytest.raises(ConfigurationError):
        check_alpha(alpha)


def test_landmarks_need_an_explicit_licence_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="commercial"):
        Morpher("landmarks")


def test_missing_landmark_model_gives_the_licence_note(tmp_path) -> None:
    with pytest.raises(LandmarkModelError, match="iBUG 300-W") as e:
        Morpher("landmarks", landmark_model=tmp_path / "nope.dat", allow_noncommercial=True)
    assert "nope.dat" in str(e.value) and "commercial" in str(e.value)


def test_post_processing_sizes_and_changes() -> None:
    img = load_image(data_path(*A))
    assert postprocess(img, PostProcess(passport=True)).shape == (PASSPORT_SIZE[1], PASSPORT_SIZE[0], 3)
    for post in (PostProcess(sharpen=1.0), PostProcess(jpeg_quality=50), PostProcess(print_scan=True)):
        out = postprocess(img, post, seed=1)
        assert out.shape == img.shape and not np.array_equal(out, img), post.tag()
    assert np.array_equal(postprocess(img, PostProcess()), img)
    with pytest.raises(ConfigurationError):
        PostProcess(jpeg_quality=0)


@pytest.mark.slow
def test_balanced_morph_is_the_alpha_closest_to_both(flow: Morpher, pipeline) -> None:
    def embed(img):
        faces = pipeline.analyze(img, select="central")
        return faces[0].embedding.vector if faces else None

    a, b = load_image(data_path(*A)), load_image(data_path(*B))
    ea, eb = embed(a), embed(b)

    def lower(img) -> float:
        v = embed(img)
        return min(float(v @ ea), float(v @ eb))

    r = morph_balanced(flow, a, b, embed)
    assert r.settings["balanced"] is True and r.settings["alpha"] in BALANCE_ALPHAS
    best = lower(r.image)
    for alpha in BALANCE_ALPHAS:
        assert best >= lower(flow.morph(a, b, alpha=alpha).image) - 1e-6
