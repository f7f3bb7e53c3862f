"""Each component moves the right way under a controlled degradation of a real LFW photograph.

The faces are found by dlib's HOG detector (dlib5 landmarks: eye corners and nose base) on the
degraded image itself, as the pipeline would; the arcface5 scheme's pose geometry is checked on
the ArcFace template, a frontal face by definition.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from faceprint.alignment import TEMPLATES, align
from faceprint.io import load_image
from faceprint.quality import components as comp
from faceprint.quality.degrade import KINDS, Degraded, degrade
from faceprint.types import Landmarks, QualityComponent

from ..conftest import data_path

#: roughly frontal (Aaron_Peirsol) and clearly turned (AJ_Cook) LFW faces
FACES = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "AJ_Cook/AJ_Cook_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0002.jpg"]


@pytest.fixture(scope="module", params=FACES)
def photo(request: pytest.FixtureRequest) -> np.ndarray:
    return load_image(data_path("lfw_view1", request.param))


def measure(hog, img: np.ndarray) -> dict[str, QualityComponent]:
    found = hog.detect(img)
    assert found, "the test photograph must show a face"
    d = max(found, key=lambda d: d.bbox.area)
    assert d.landmarks is not None
    return comp.measure(img, d.landmarks, tuple(d.bbox.as_list()), align(img, d, comp.CHIP_TEMPLATE).image)


def jpeg(img: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_every_component_has_a_value_and_a_quality(hog, photo: np.ndarray) -> None:
    c = measure(hog, photo)
    assert list(c) == list(comp.MEASURED)
    assert all(0 <= x.quality <= 100 and np.isfinite(x.value) for x in c.values())
    # a clean, frontal-ish LFW face is not underexposed, noisy, blocky or cut off
    for name in ("underexposure", "overexposure", "noise", "crop"):
        assert c[name].quality > 80, (name, c[name])


def test_blur_lowers_sharpness(hog, photo: np.ndarray) -> None:
    values = [measure(hog, cv2.GaussianBlur(photo, (0, 0), s) if s else photo)["sharpness"] for s in (0, 1, 2, 4)]
    assert [v.value for v in values] == sorted((v.value for v in values), reverse=True)
    assert values[0].quality - values[-1].quality > 50


def test_gamma_moves_the_exposure_components(hog, photo: np.ndarray) -> None:
    clean = measure(hog, photo)
    dark = measure(hog, degrade(photo, "underexpose", 0.6))
    bright = measure(hog, degrade(photo, "overexpose", 0.6))
    assert dark["luminance_mean"].value < clean["luminance_mean"].value < bright["luminance_mean"].value
    assert dark["underexposure"].value > clean["underexposure"].value + 0.05
    assert dark["underexposure"].quality < clean["underexposure"].quality
    assert bright["overexposure"].value > clean["overexposure"].value + 0.05
    assert bright["overexposure"].quality < clean["overexposure"].quality
    assert dark["luminance_mean"].quality < clean["luminance_mean"].quality


def test_jpeg_quality_raises_blockiness(hog, photo: np.ndarray) -> None:
    values = [measure(hog, jpeg(photo, q))["blockiness"] for q in (95, 40, 15, 5)]
    assert [v.value for v in values] == sorted(v.value for v in values)
    assert values[0].quality > 80 > 20 > values[-1].quality


def test_noise_is_measured_in_grey_levels(hog, photo: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    sigmas = [0, 4, 8, 16]
    values = [
        measure(hog, np.clip(photo + rng.normal(0, s, photo.shape), 0, 255).astype(np.uint8))["noise"].value
        for s in sigmas
    ]
    assert values == sorted(values)
    # per-channel σ on RGB is σ·0.668 on luminance; JPEG smoothing and texture blur it a little
    assert values[-1] == pytest.approx(16 * 0.668, rel=0.25)


def test_mirroring_flips_the_sign_of_yaw(hog) -> None:
    img = load_image(data_path("lfw_view1", "AJ_Cook/AJ_Cook_0001.jpg"))  # turned by about 25°
    yaw = measure(hog, img)["yaw"].value
    mirrored = measure(hog, np.ascontiguousarray(img[:, ::-1]))["yaw"].value
    assert abs(yaw) > 15
    assert np.sign(mirrored) == -np.sign(yaw)
    assert abs(mirrored + yaw) < 3


def test_a_20_degree_rotation_reads_as_20_degrees_of_roll(hog, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    base = measure(hog, photo)["roll"].value
    for angle in (20, -20):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)  # counter-clockwise on screen for angle > 0
        rot = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        roll = measure(hog, rot)["roll"].value
        assert roll - base == pytest.approx(-angle, abs=3)  # roll is + clockwise


def test_downscaling_lowers_the_inter_eye_distance(hog, photo: np.ndarray) -> None:
    full = measure(hog, photo)["inter_eye_distance"]
    half = measure(hog, cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))["inter_eye_distance"]
    assert half.value == pytest.approx(full.value / 2, rel=0.1)
    assert half.quality < full.quality


def test_a_face_cut_by_the_frame_gets_a_low_crop_score(hog) -> None:
    img = load_image(data_path("misc_faces", "obama_partial_face.jpg"))  # the left cheek is outside the photo
    c = measure(hog, img)
    assert c["crop"].quality < 20
    whole = load_image(data_path("faces_small", "obama", "obama.jpg"))
    assert measure(hog, whole)["crop"].quality > 90


def _template_landmarks(scheme: str) -> Landmarks:
    t = TEMPLATES["arcface112"]
    pts = t.arcface5 if scheme == "arcface5" else TEMPLATES["dlib150"].dlib5
    assert pts is not None
    return Landmarks(pts.astype(np.float32), scheme)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["dlib5", "arcface5"])
def test_pose_of_the_frontal_template_is_zero_and_follows_rotation_and_mirroring(scheme: str) -> None:
    lm = _template_landmarks(scheme)
    assert np.allclose(comp.head_pose(lm), 0.0, atol=1.0)
    c = lm.points.mean(axis=0)
    for angle in (20.0, -35.0):
        r = np.deg2rad(angle)
        rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
        turned = Landmarks(((lm.points - c) @ rot.T + c).astype(np.float32), lm.scheme)
        assert comp.head_pose(turned)[2] == pytest.approx(angle, abs=0.5)
    shifted = lm.points.copy()
    nose = 2 if scheme == "arcface5" else 4
    shifted[nose, 0] += 0.15 * np.linalg.norm(lm.eye_centers()[1] - lm.eye_centers()[0])  # nose to the image's right
    yaw = comp.head_pose(Landmarks(shifted, lm.scheme))[0]
    mirrored = shifted.copy()
    mirrored[:, 0] = 200.0 - mirrored[:, 0]
    order = [1, 0, 2, 4, 3] if scheme == "arcface5" else [2, 3, 0, 1, 4]  # left and right swap in a mirror
    yaw_m = comp.head_pose(Landmarks(mirrored[order], lm.scheme))[0]
    assert yaw > 5 and yaw_m == pytest.approx(-yaw, abs=0.5)


def test_explanations_name_the_problem() -> None:
    assert comp.explain("yaw", comp.component("yaw", 38.2)) == "yaw 38°"
    assert comp.explain("underexposure", comp.component("underexposure", 0.3)).startswith("underexposed")
    assert comp.component("yaw", 38.2).quality == pytest.approx(100 * np.cos(np.deg2rad(38.2)) ** 2, abs=0.1)


def test_degradations_are_seeded_and_cover_a_fraction(photo: np.ndarray) -> None:
    for kind in KINDS:
        a, b = degrade(photo, kind, 0.5, seed=3), degrade(photo, kind, 0.5, seed=3)
        assert np.array_equal(a, b) and not np.array_equal(a, photo[: a.shape[0], : a.shape[1]])
    plan = Degraded(1000, fraction=0.3, seed=7)
    assert 250 < len(plan.plan) < 350 and Degraded(1000, fraction=0.3, seed=7).plan == plan.plan
    assert {k for k, _, _ in plan.plan.values()} == set(KINDS)
