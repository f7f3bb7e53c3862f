"""The explainer conformance checks can fail, and the chip checks every explainer shares."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import IdenticalImagesError, ImageDimensionError
from faceprint.explain.base import Explanation, check_chip_pair
from faceprint.explain.occlusion import OcclusionExplainer
from faceprint.testing import FaceImages, checks_for

from ..test_conformance import photos


@pytest.fixture(scope="module")
def images() -> FaceImages:
    return photos()


def _checks() -> dict:  # type: ignore[type-arg]
    return {c.__name__: c for c in checks_for("explainer")}


class UpsideDown(OcclusionExplainer):
    """Occlusion with its maps negated: least important first."""

    name = "upside-down"

    def explain(self, chip_a, chip_b, embedder):  # type: ignore[no-untyped-def]
        e = super().explain(chip_a, chip_b, embedder)
        return Explanation(self.name, e.score, -e.map_a, -e.map_b, e.model)


class Careless:
    """Answers anything with a constant map of the wrong size, never checks its input, scribbles on it."""

    name = "careless"

    def explain(self, chip_a, chip_b, embedder):  # type: ignore[no-untyped-def]
        chip_a[0, 0] = 0 if chip_a.ndim == 3 else chip_a[0, 0]
        m = np.zeros((10, 10), np.float32)
        return Explanation(self.name, 0.5, m, m, f"{embedder.model_id}@{embedder.model_version}")


def test_checks_catch_a_map_that_points_the_wrong_way(images: FaceImages) -> None:
    checks = _checks()
    with pytest.raises(AssertionError, match="does not point where the similarity comes from"):
        checks["check_explain_points_at_similarity"](UpsideDown(cells=5), images)
    checks["check_explain_points_at_similarity"](OcclusionExplainer(cells=5), images)  # the real one passes


def test_checks_catch_a_careless_explainer(images: FaceImages) -> None:
    checks = _checks()
    with pytest.raises(AssertionError, match=r"map_a has shape \(10, 10\), expected \(150, 150\)"):
        checks["check_explain_output"](Careless(), images)
    with pytest.raises(AssertionError, match=r"explain\(a non-square chip\) (returned|raised ValueError)"):
        checks["check_explain_bad_input"](Careless(), images)
    with pytest.raises(AssertionError, match="returned instead of raising IdenticalImagesError"):
        checks["check_explain_identical_chips"](Careless(), images)
    with pytest.raises(AssertionError, match="modified its input chips"):
        checks["check_explain_leaves_input_unchanged"](Careless(), images)


def test_chip_pair_errors_say_what_is_wrong() -> None:
    a = np.zeros((150, 150, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 1
    check_chip_pair(a, b, 150, "dlib150")
    with pytest.raises(ImageDimensionError, match="not square"):
        check_chip_pair(a[:, :140], b, 150, "dlib150")
    with pytest.raises(ImageDimensionError, match="makes 150x150 chips"):
        check_chip_pair(np.zeros((112, 112, 3), np.uint8), b, 150, "dlib150")
    with pytest.raises(ImageDimensionError, match="RGB uint8"):
        check_chip_pair(a, b.astype(np.float32), 150, "dlib150")
    with pytest.raises(IdenticalImagesError, match="identical"):
        check_chip_pair(a, a.copy(), 150, "dlib150")
