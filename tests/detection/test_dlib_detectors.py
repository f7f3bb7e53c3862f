"""dlib detectors on real photographs: counts on group photos, nothing on non-faces, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, ImageDimensionError
from faceprint.io import load_image
from faceprint.registry import detectors

from ..conftest import DATA, data_path

# (faces a person counts, least the HOG detector must find). The selfie has 7 people, three of
# them cut by the frame or turned; HOG finds the 4 frontal ones, MMOD one more.
GROUPS = {
    "deepface_couple.jpg": (2, 2),
    "deepface_selfie-many-people.jpg": (7, 4),
    "face_recognition_kit_with_rose.jpg": (2, 2),
    "face_recognition_obama_and_biden.jpg": (3, 3),
    "face_recognition_two_people.jpg": (2, 2),
    "facenet_pytorch_multiface.jpg": (6, 6),
    "insightface_t1.jpg": (6, 6),
}


@pytest.mark.parametrize("name,counts", sorted(GROUPS.items()))
def test_group_photos_give_the_right_face_count(name: str, counts: tuple[int, int], hog) -> None:
    true_count, least = counts
    dets = hog.detect(load_image(data_path("group_photos", name)))
    assert least <= len(dets) <= true_count
    for d in dets:
        assert d.landmarks is not None and d.landmarks.scheme == "dlib5"
        # every landmark lies inside (or very near) its face box
        x, y = d.landmarks.points[:, 0], d.landmarks.points[:, 1]
        pad = 0.25 * d.bbox.width
        assert np.all((x > d.bbox.x1 - pad) & (x < d.bbox.x2 + pad) & (y > d.bbox.y1 - pad) & (y < d.bbox.y2 + pad))
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


@pytest.mark.parametrize("path", sorted(p.name for p in (DATA / "non_faces").glob("*")) or ["missing"])
def test_non_faces_give_no_face(path: str) -> None:
    det = detectors.create("dlib-hog-mmod")
    assert det.detect(load_image(data_path("non_faces", path))) == []


def test_fallback_uses_mmod_only_when_hog_finds_nothing() -> None:
    det = detectors.create("dlib-hog-mmod")
    # the cameraman's face is turned away: HOG misses it, MMOD finds it
    cam = load_image(data_path("misc_faces", "skimage_camera_cameraman.png"))
    assert det.hog.detect(cam) == []
    found = det.detect(cam)
    assert len(found) == 1 and found[0].detector == "dlib-mmod"
    easy = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))
    assert [d.detector for d in det.detect(easy)] == ["dlib-hog"]


def test_mmod_finds_the_faces_of_a_group_photo() -> None:
    det = detectors.create("dlib-mmod")
    dets = det.detect(load_image(data_path("group_photos", "deepface_selfie-many-people.jpg")))
    assert 5 <= len(dets) <= 7 and all(d.landmarks is not None for d in dets)


def test_big_image_is_shrunk_for_detection_and_boxes_scale_back(hog) -> None:
    img = load_image(data_path("faces_small", "obama", "obama3.jpg"))  # 2333 px tall
    small_side = detectors.create("dlib-hog", max_side=800).detect(img)
    full = detectors.create("dlib-hog", max_side=None, upsample=0).detect(img)
    assert len(small_side) == 1 and len(full) == 1
    a, b = small_side[0].bbox, full[0].bbox
    assert abs(a.center[0] - b.center[0]) < 0.1 * b.width and abs(a.width - b.width) < 0.25 * b.width


def test_tiny_and_blank_images_give_no_face(hog) -> None:
    assert hog.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert hog.detect(np.full((64, 64, 3), 128, np.uint8)) == []


def test_bad_arrays_and_settings_are_clear_errors(hog) -> None:
    with pytest.raises(ImageDimensionError, match="RGB uint8"):
        hog.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageDimensionError):
        hog.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ConfigurationError):
        detectors.create("dlib-hog", upsample=9)
