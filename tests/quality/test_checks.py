"""The quality conformance checks can fail: a sloppy assessor is caught, check by check."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.testing import FaceImages, checks_for
from faceprint.types import QualityComponent, QualityReport

from ..test_conformance import photos


@pytest.fixture(scope="module")
def images() -> FaceImages:
    return photos()


class Constant:
    """Every face scores 80, whatever it looks like; raw exceptions on bad input."""

    name = "constant"

    def assess(self, image, detection, aligned=None):
        np.asarray(image)[0, 0, 0]  # IndexError on an image with no pixels, TypeError on None
        return QualityReport(80.0, {"size": QualityComponent(1.0, 80.0)}, "constant@1")

    def assess_batch(self, images, detections, aligned=None):
        return [self.assess(i, d) for i, d in zip(images, detections, strict=True)]


def test_checks_catch_an_assessor_blind_to_blur_and_the_frame(images: FaceImages) -> None:
    names = {c.__name__: c for c in checks_for("quality assessor")}
    a = Constant()
    names["check_assess_output"](a, images)  # the report itself is well formed
    names["check_assess_batch_equals_single"](a, images)
    with pytest.raises(AssertionError, match="did not lower its quality"):
        names["check_assess_blur_lowers_quality"](a, images)
    with pytest.raises(AssertionError, match="the frame scores 80.0"):
        names["check_assess_face_outside_frame"](a, images)
    with pytest.raises(AssertionError, match="FaceprintError"):
        names["check_assess_bad_input"](a, images)
