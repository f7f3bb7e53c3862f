"""The attack-detector conformance checks can fail: a sloppy detector breaks each property once."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ImageDimensionError
from faceprint.testing import FaceImages, checks_for
from faceprint.types import AttackScore

from ..conftest import data_path


@pytest.fixture(scope="module")
def images() -> FaceImages:
    lfw = data_path("lfw_view1", "Aaron_Peirsol")
    return FaceImages(
        face=lfw / "Aaron_Peirsol_0001.jpg",
        same_person=lfw / "Aaron_Peirsol_0002.jpg",
        group=data_path("group_photos", "face_recognition_kit_with_rose.jpg"),
        no_face=data_path("non_faces", "matplotlib_Minduka_Present_Blue_Pack.png"),
    )


class MeanBrightness:
    """A well-behaved toy: the attack score is the face box's mean brightness."""

    name, kind, threshold = "mean-brightness", "presentation", 0.5

    def _check(self, image):
        if (
            not isinstance(image, np.ndarray)
            or image.ndim != 3
            or image.shape[2] != 3
            or image.dtype != np.uint8
            or not image.size
        ):
            raise ImageDimensionError("not an RGB uint8 image")
        return image

    def score(self, image, detection):
        img = self._check(image)
        if detection is None or not hasattr(detection, "bbox"):
            raise ImageDimensionError("no detection")
        b = detection.bbox
        h, w = img.shape[:2]
        x1, y1 = int(np.clip(b.x1, 0, w - 1)), int(np.clip(b.y1, 0, h - 1))
        x2, y2 = int(np.clip(b.x2, x1 + 1, w)), int(np.clip(b.y2, y1 + 1, h))
        s = float(img[y1:y2, x1:x2].mean()) / 255.0
        return AttackScore(s, s >= self.threshold, self.threshold, "toy@1", self.kind)

    def score_batch(self, images, detections):
        if len(images) != len(detections):
            raise ImageDimensionError("unequal lengths")
        return [self.score(i, d) for i, d in zip(images, detections, strict=True)]


def test_a_well_behaved_detector_passes_every_check(images: FaceImages) -> None:
    for check in checks_for("attack detector"):
        check(MeanBrightness(), images)


class Scribbler(MeanBrightness):
    def score(self, image, detection):
        s = super().score(image, detection)
        if image.flags.writeable:
            image[0, 0] = 0  # writes into its input
        return s


class Inverted(MeanBrightness):
    def score(self, image, detection):
        s = super().score(image, detection)
        return AttackScore(s.score, not s.is_attack, s.threshold, s.detector, s.kind)  # verdict against the score


class BatchDrifts(MeanBrightness):
    def score_batch(self, images, detections):
        return [
            AttackScore(min(1.0, s.score + 0.2), True, 0.5, s.detector, s.kind)
            for s in super().score_batch(images, detections)
        ]


class CrashesAtTheBorder(MeanBrightness):
    def score(self, image, detection):
        if detection.bbox.x2 > image.shape[1]:
            raise IndexError("crop outside the image")
        return super().score(image, detection)


class WrongKind(MeanBrightness):
    kind = "liveness"


@pytest.mark.parametrize(
    "sloppy,check,message",
    [
        (Scribbler(), "check_attack_leaves_input_unchanged", "modified its input"),
        (Inverted(), "check_attack_score_output", "is_attack"),
        (BatchDrifts(), "check_attack_batch_equals_single", "score_batch vs score"),
        (CrashesAtTheBorder(), "check_attack_border_faces", "IndexError"),
        (WrongKind(), "check_attack_protocol", "kind"),
    ],
)
def test_each_check_catches_its_fault(images: FaceImages, sloppy, check: str, message: str) -> None:
    fn = {c.__name__: c for c in checks_for("attack detector")}[check]
    with pytest.raises(AssertionError, match=message):
        fn(sloppy, images)
