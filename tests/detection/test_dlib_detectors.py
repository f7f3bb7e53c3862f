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
@pytest.mark.slow
def test_non_faces_give_no_face(path: str) -> None:
    det = detectors.create("dlib-hog-mmod")
    assert det.detect(load_image(data_path("non_faces", path))) == []


@pytest.mark.slow
def test_fallback_uses_mmod_only_when_hog_finds_nothing() -> None:
    det = detectors.create("dlib-hog-mmod", mmod_max_pixels=512 * 512)  # this 512 px photo, unscaled
    # the cameraman's face is turned away: HOG misses it, MMOD finds it
    cam = load_image(data_path("misc_faces", "skimage_camera_cameraman.png"))
    assert det.hog.detect(cam) == []
    found = det.detect(cam)
    assert len(found) == 1 and found[0].detector == "dlib-mmod"
    easy = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))
    assert [d.detector for d in det.detect(easy)] == ["dlib-hog"]


@pytest.mark.slow
def test_mmod_finds_the_faces_of_a_group_photo() -> None:
    det = detectors.create("dlib-mmod", max_pixels=640 * 640)
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


# --- min_face, coarse-to-fine HOG and the MMOD bound: counted, not timed ------------------------------


class _Recorder:
    """Wraps a real dlib detector object and records what it is asked to scan."""

    def __init__(self, det: object) -> None:
        self._det = det
        self.calls: list[tuple[tuple[int, ...], int]] = []  # (image shape, upsample)

    def run(self, image: np.ndarray, upsample: int, threshold: float):  # HOG
        self.calls.append((image.shape, upsample))
        return self._det.run(image, upsample, threshold)  # type: ignore[attr-defined]

    def __call__(self, image: np.ndarray, upsample: int):  # MMOD
        self.calls.append((image.shape, upsample))
        return self._det(image, upsample)  # type: ignore[operator]


def _record(det):
    rec = _Recorder(det._det)
    det._det = rec
    return rec


def test_min_face_chooses_the_hog_upsampling() -> None:
    from faceprint.detection.dlib_detectors import HOG_MAX_SCAN_PIXELS, hog_levels

    assert [hog_levels(250, 250, m) for m in (200, 80, 79, 40, 39, 20, 10)] == [0, 0, 1, 1, 2, 2, 3]
    # the finest scan never covers more than HOG_MAX_SCAN_PIXELS
    assert hog_levels(1600, 1600, 20) == 1 and 1600 * 1600 * 4 <= HOG_MAX_SCAN_PIXELS
    hog = detectors.create("dlib-hog", min_face=20)
    assert hog.levels(250, 250) == [0, 1, 2]
    assert detectors.create("dlib-hog", min_face=20, exhaustive=True).levels(250, 250) == [2]
    assert detectors.create("dlib-hog", upsample=1).levels(250, 250) == [1]  # the old fixed setting
    assert hog.levels(3200, 1600) == [0, 1]  # shrunk to 1600 px: 20 px faces are 10 px there; capped
    for bad in (0, 4, -1, "big", True):
        with pytest.raises(ConfigurationError):
            detectors.create("dlib-hog", min_face=bad)


def test_coarse_to_fine_stops_at_the_first_level_that_finds_a_face() -> None:
    hog = detectors.create("dlib-hog")  # min_face 40: levels 0, 1
    rec = _record(hog)
    big_face = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))  # face ~110 px
    assert len(hog.detect(big_face)) == 1
    assert rec.calls == [((250, 250, 3), 0)]  # one scan, unscaled
    rec.calls.clear()
    import cv2

    small_face = cv2.resize(big_face, (100, 100), interpolation=cv2.INTER_AREA)  # face ~45 px
    found = hog.detect(small_face)
    assert len(found) == 1 and found[0].bbox.width < 80
    assert rec.calls == [((100, 100, 3), 0), ((100, 100, 3), 1)]
    rec.calls.clear()
    assert hog.detect(np.zeros((300, 300, 3), np.uint8)) == []
    assert [u for _, u in rec.calls] == [0, 1]


def _iou(x, y) -> float:
    iw = max(0.0, min(x.x2, y.x2) - max(x.x1, y.x1))
    ih = max(0.0, min(x.y2, y.y2) - max(x.y1, y.y1))
    return iw * ih / (x.area + y.area - iw * ih)


@pytest.mark.slow
def test_coarse_to_fine_gives_the_same_largest_face_as_upsample_1() -> None:
    """The rule "upsample 0 first, 1 only when nothing is found" is exact for select='largest':
    the faces upsample 1 adds are all smaller than the largest face found unscaled. (Two faces
    of nearly equal size may swap places: box sizes step by 5/6 between scan scales.)"""
    staged = detectors.create("dlib-hog")
    full = detectors.create("dlib-hog", upsample=1)
    rec = _record(staged)
    people = sorted(p for p in (DATA / "lfw_view1").iterdir() if p.is_dir())[:150]
    images = [next(iter(sorted(p.glob("*.jpg")))) for p in people]
    images += sorted((DATA / "group_photos").glob("*"))
    compared = 0
    for path in images:
        img = load_image(path)
        a, b = staged.detect(img), full.detect(img)
        if not b:
            assert not a
            continue
        assert a, f"{path.name}: upsample 1 finds a face the staged search misses"
        la = max(a, key=lambda d: d.bbox.area)
        lb = max(b, key=lambda d: d.bbox.area)
        # the same face as upsample 1's largest, or a near-tie with it (HOG box sizes step by 5/6)
        assert any(_iou(la.bbox, d.bbox) > 0.5 and d.bbox.width > 0.75 * lb.bbox.width for d in b), path.name
        added = [d for d in b if not any(_iou(d.bbox, x.bbox) > 0.3 for x in a)]
        assert all(d.bbox.width < la.bbox.width for d in added), path.name
        compared += 1
    assert compared >= 150
    # most images are done with the unscaled scan alone
    assert sum(u == 1 for _, u in rec.calls) <= 0.05 * len(images)


def test_exhaustive_finds_the_small_faces_next_to_a_large_one() -> None:
    img = load_image(data_path("group_photos", "facenet_pytorch_multiface.jpg"))
    quick = detectors.create("dlib-hog", min_face=20).detect(img)
    every = detectors.create("dlib-hog", min_face=20, exhaustive=True).detect(img)
    assert len(every) >= len(quick) and len(every) == 6


@pytest.mark.slow
def test_mmod_scans_a_bounded_number_of_pixels() -> None:
    from faceprint.detection.dlib_detectors import MMOD_FALLBACK_MAX_PIXELS

    det = detectors.create("dlib-hog-mmod")
    hog_rec = _record(det.hog)
    mmod_rec = _record(det.mmod)
    blank = np.zeros((1000, 1000, 3), np.uint8)
    assert det.detect(blank) == []
    assert [u for _, u in hog_rec.calls] == [0, 1]
    assert len(mmod_rec.calls) == 1
    (shape, up) = mmod_rec.calls[0]
    assert up == 0 and shape[0] * shape[1] <= MMOD_FALLBACK_MAX_PIXELS == 256 * 256
    # an LFW image fits the budget and is scanned whole
    mmod_rec.calls.clear()
    lfw = load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg"))
    assert len(det.mmod.detect(lfw)) == 1 and mmod_rec.calls == [((250, 250, 3), 0)]
    # a larger budget finds the face of a 2333 px photo within it, and boxes map back
    big = detectors.create("dlib-mmod", max_pixels=512 * 512)
    big_rec = _record(big)
    found = big.detect(load_image(data_path("faces_small", "obama", "obama3.jpg")))
    assert len(found) == 1 and found[0].bbox.width > 200
    assert big_rec.calls[0][0][0] * big_rec.calls[0][0][1] <= 512 * 512
    # min_face sets the scale: 80 px faces wanted → half size
    assert detectors.create("dlib-mmod", min_face=80).scan_scale(250, 250) == 0.5
    assert detectors.create("dlib-mmod").scan_scale(250, 250) == 1.0
    assert detectors.create("dlib-mmod", min_face=20).scan_scale(120, 120) == 2.0
    assert detectors.create("dlib-mmod", min_face=20).scan_scale(300, 300) == pytest.approx(512 / 300)  # capped
    assert detectors.create("dlib-mmod", min_face=20, max_pixels=256 * 256).scan_scale(250, 250) == pytest.approx(
        256 / 250
    )
    assert detectors.create("dlib-mmod", max_pixels=100 * 100).scan_scale(250, 250) == pytest.approx(0.4)


def test_shipped_hog_model_is_dlibs_built_in_one(tmp_path) -> None:
    """faceprint loads dlib's HOG detector from a file (3 ms instead of 0.9 s); it must be the very
    model ``dlib.get_frontal_face_detector()`` decodes from dlib's compiled-in string."""
    import dlib

    from faceprint.models import model_path

    builtin = tmp_path / "builtin.svm"
    dlib.get_frontal_face_detector().save(str(builtin))
    assert builtin.read_bytes() == model_path("dlib-hog").read_bytes()
