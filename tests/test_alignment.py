"""Alignment: exact transforms on synthetic points; dlib150 crops equal dlib's own chips on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.alignment import TEMPLATES, align, crop_transform, similarity_transform, template_points, warp
from faceprint.errors import ConfigurationError
from faceprint.io import load_image
from faceprint.types import Landmarks

from .conftest import data_path


def _rot(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def test_similarity_transform_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    a = 1.7 * _rot(0.3)
    t = np.array([12.0, -4.0])
    dst = src @ a.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], a, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_similarity_transform_ignores_zero_weight_points() -> None:
    src = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], dtype=float)
    dst = src * 2.0 + 3.0
    dst[4] = [999, 999]  # an outlier with weight 0
    m = similarity_transform(src, dst, [1, 1, 1, 1, 0])
    np.testing.assert_allclose(m, [[2, 0, 3], [0, 2, 3]], atol=1e-9)


def test_similarity_transform_rejects_bad_points() -> None:
    with pytest.raises(ConfigurationError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ConfigurationError, match="NaN"):
        similarity_transform(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ConfigurationError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), np.zeros((5, 2)) + np.arange(5)[:, None])


def test_arcface_landmarks_on_the_template_map_to_themselves() -> None:
    pts = TEMPLATES["arcface112"].arcface5
    assert pts is not None
    m = crop_transform(Landmarks(pts, "arcface5"), "arcface112")
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-4)  # landmarks are float32


def test_warp_moves_a_marked_pixel_where_the_transform_says() -> None:
    img = np.zeros((200, 300, 3), np.uint8)
    img[100, 150] = 255
    m = np.array([[1.0, 0, -100], [0, 1.0, -60]])  # translation only
    out = warp(img, m, 112)
    ys, xs = np.nonzero(out[..., 0])
    assert (ys.tolist(), xs.tolist()) == ([40], [50])


def test_warp_outside_the_image_is_black() -> None:
    img = np.full((50, 50, 3), 200, np.uint8)
    out = warp(img, np.array([[1.0, 0, -500], [0, 1.0, -500]]), 64)
    assert out.shape == (64, 64, 3) and out.max() == 0


def test_unknown_template_and_missing_landmarks_are_clear_errors(hog) -> None:
    img = load_image(data_path("faces_small", "obama", "obama_small.jpg"))
    det = hog.detect(img)[0]
    with pytest.raises(ConfigurationError, match="unknown alignment template"):
        align(img, det, "nope")
    from faceprint.types import Detection

    with pytest.raises(ConfigurationError, match="no landmarks"):
        align(img, Detection(det.bbox, det.score, None, "x"))


@pytest.mark.parametrize(
    "rel",
    [
        ("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"),
        ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg"),
        ("faces_small", "obama", "obama_small.jpg"),
    ],
)
def test_dlib150_crop_equals_dlib_get_face_chip(rel: tuple[str, ...], hog) -> None:
    dlib = pytest.importorskip("dlib")
    from faceprint.models import model_path

    img = load_image(data_path(*rel))
    det = hog.detect(img)[0]
    sp = dlib.shape_predictor(str(model_path("dlib-5pt")))
    b = det.bbox
    shape = sp(img, dlib.rectangle(round(b.x1), round(b.y1), round(b.x2) - 1, round(b.y2) - 1))
    ref = dlib.get_face_chip(img, shape, size=150, padding=0.25)
    ours = align(img, det, "dlib150").image
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.mean() < 0.05, f"mean abs pixel difference {diff.mean():.3f}"


def test_large_photo_crop_is_antialiased_and_close_to_dlib(hog) -> None:
    """A 2333×1434 photo: the face shrinks >2×, so both go through a pyramid."""
    dlib = pytest.importorskip("dlib")
    from faceprint.models import model_path

    img = load_image(data_path("faces_small", "obama", "obama3.jpg"))
    det = hog.detect(img)[0]
    sp = dlib.shape_predictor(str(model_path("dlib-5pt")))
    b = det.bbox
    shape = sp(img, dlib.rectangle(round(b.x1), round(b.y1), round(b.x2) - 1, round(b.y2) - 1))
    ref = dlib.get_face_chip(img, shape, size=150, padding=0.25).astype(float)
    ours = align(img, det, "dlib150").image.astype(float)
    assert np.abs(ours - ref).mean() < 4.0


def test_arcface5_landmarks_give_the_chip_dlib5_landmarks_give(hog) -> None:
    """YuNet's five points (eye centres, nose tip, mouth corners), fitted to where they fall in
    dlib's chips, give nearly the embedding dlib's own points give, closer than the eyes alone."""
    from faceprint.alignment import Template
    from faceprint.detection.yunet import YuNetDetector
    from faceprint.registry import embedders

    from .conftest import shared_model_path

    yunet = YuNetDetector(model=shared_model_path("yunet", "yunet_s_dynamic.onnx"), landmarks="yunet")
    net = embedders.create("dlib-resnet-onnx", threads=1)
    t = TEMPLATES["dlib150"]
    assert t.arcface5 is not None and np.all(template_points("dlib150", "arcface5")[1] == 1.0)
    eyes_only = Template("dlib150-eyes", 150, "dlib", t.dlib5, None)  # the mapping used before
    TEMPLATES[eyes_only.name] = eyes_only
    five, eyes = [], []
    try:
        for path in sorted(data_path("lfw_view1").glob("B*/*_0001.jpg"))[:24]:
            img = load_image(path)
            d, y = hog.detect(img), yunet.detect(img)
            if not d or not y:
                continue
            v = net.embed(
                [
                    align(img, d[0], "dlib150").image,
                    align(img, y[0], "dlib150").image,
                    align(img, y[0], eyes_only.name).image,
                ]
            )
            five.append(float(v[0] @ v[1]))
            eyes.append(float(v[0] @ v[2]))
    finally:
        del TEMPLATES[eyes_only.name]
    assert len(five) >= 20
    assert np.median(five) > 0.985
    assert np.median(five) > np.median(eyes)
