"""Conformance checks every :class:`~faceprint.detection.base.Detector` must pass.

Each check is ``check_…(detector, images)`` with :class:`FaceImages` of real photographs and
raises ``AssertionError`` saying what is wrong. Checks share one ``detect`` per photograph (see
:meth:`FaceImages.memo`), so a slow detector runs each photograph only a few times in all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import get_args

import numpy as np

from ..detection.base import Detector
from ..errors import FaceprintError
from ..types import BBox, Detection, Landmarks, LandmarkScheme
from ._assert import require, require_faceprint_error
from ._images import ROLES, FaceImages, strided_readonly_view

__all__ = [
    "detector_checks",
    "check_detector_protocol",
    "check_detect_output_types",
    "check_detect_finds_faces",
    "check_detect_boxes_inside_image",
    "check_detect_landmarks_inside_face",
    "check_detect_sorted_by_score",
    "check_detect_no_face",
    "check_detect_batch_equals_single",
    "check_detect_deterministic",
    "check_detect_leaves_input_unchanged",
    "check_detect_accepts_views",
    "check_detect_small_images",
    "check_detect_bad_input",
]

DetectorCheck = Callable[[Detector, FaceImages], None]


def _detections(detector: Detector, images: FaceImages) -> dict[str, list[Detection]]:
    """``detect`` on a writable copy of each photograph, once per detector."""
    return _run(detector, images)[0]


def _run(detector: Detector, images: FaceImages) -> tuple[dict[str, list[Detection]], list[str]]:
    def compute() -> tuple[dict[str, list[Detection]], list[str]]:
        found: dict[str, list[Detection]] = {}
        changed: list[str] = []
        for role in ROLES:
            if role == "same_person":
                continue  # the embedder checks' photograph; one face photograph is enough here
            copy = images[role].copy()
            found[role] = detector.detect(copy)
            if not np.array_equal(copy, images[role]):
                changed.append(role)
        return found, changed

    return images.memo(detector, "detect", compute)


def _differs(a: Sequence[Detection], b: Sequence[Detection], what: str) -> str | None:
    """Why two detection lists are not the same (boxes and landmarks to 1e-3 px, scores to 1e-5)."""
    if len(a) != len(b):
        return f"{what}: {len(a)} faces vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if not np.allclose(x.bbox.as_list(), y.bbox.as_list(), rtol=1e-6, atol=1e-3):
            return f"{what}: face {i} box {x.bbox.as_list()} vs {y.bbox.as_list()}"
        if not math.isclose(x.score, y.score, rel_tol=1e-5, abs_tol=1e-6):
            return f"{what}: face {i} score {x.score} vs {y.score}"
        if (x.landmarks is None) != (y.landmarks is None):
            return f"{what}: face {i} has landmarks in one result only"
        if x.landmarks is not None and y.landmarks is not None:
            if not np.allclose(x.landmarks.points, y.landmarks.points, rtol=1e-6, atol=1e-3):
                return f"{what}: face {i} landmarks differ"
    return None


# --- the checks ------------------------------------------------------------------------------


def check_detector_protocol(detector: Detector, images: FaceImages) -> None:
    """It is a :class:`Detector` and says its name."""
    require(isinstance(detector, Detector), f"{type(detector).__name__} does not have detect/detect_batch/name")
    require(isinstance(detector.name, str) and detector.name, f"name must be a non-empty str, got {detector.name!r}")


def check_detect_output_types(detector: Detector, images: FaceImages) -> None:
    """``detect`` returns a list of :class:`Detection` with finite floats and five typed landmarks."""
    schemes = get_args(LandmarkScheme)
    for role, found in _detections(detector, images).items():
        require(type(found) is list, f"detect({role}) returned {type(found).__name__}, not list")
        for d in found:
            require(isinstance(d, Detection), f"detect({role}) returned a {type(d).__name__}, not a Detection")
            require(isinstance(d.bbox, BBox), f"{role}: bbox is a {type(d.bbox).__name__}")
            require(all(isinstance(v, float) and math.isfinite(v) for v in d.bbox.as_list()), f"{role}: {d.bbox}")
            require(isinstance(d.score, float) and math.isfinite(d.score), f"{role}: score {d.score!r}")
            require(isinstance(d.detector, str), f"{role}: Detection.detector is {d.detector!r}")
            if d.landmarks is None:
                continue
            lm = d.landmarks
            require(isinstance(lm, Landmarks), f"{role}: landmarks are a {type(lm).__name__}")
            require(lm.points.shape == (5, 2) and lm.points.dtype == np.float32, f"{role}: landmarks {lm.points}")
            require(np.all(np.isfinite(lm.points)), f"{role}: landmarks not finite: {lm.points}")
            require(lm.scheme in schemes, f"{role}: landmark scheme {lm.scheme!r} is not one of {schemes}")


def check_detect_finds_faces(detector: Detector, images: FaceImages) -> None:
    """At least one face in the face photograph, at least two in the group photograph."""
    found = _detections(detector, images)
    require(len(found["face"]) >= 1, "found no face in the face photograph")
    require(len(found["group"]) >= 2, f"found {len(found['group'])} face(s) in the group photograph, expected ≥ 2")


def check_detect_boxes_inside_image(detector: Detector, images: FaceImages) -> None:
    """Every box lies inside its image (pixel coordinates, ``x2``/``y2`` exclusive) and is not empty."""
    for role, found in _detections(detector, images).items():
        h, w = images[role].shape[:2]
        for d in found:
            b = d.bbox
            require(0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h, f"{role} ({w}×{h}): box {b.as_list()}")


def check_detect_landmarks_inside_face(detector: Detector, images: FaceImages) -> None:
    """Landmarks fall in their face's box widened by a quarter on each side (same coordinates)."""
    for role, found in _detections(detector, images).items():
        for d in found:
            if d.landmarks is None:
                continue
            b, p = d.bbox, d.landmarks.points
            mx, my = b.width / 4, b.height / 4
            inside = (p[:, 0] >= b.x1 - mx) & (p[:, 0] <= b.x2 + mx) & (p[:, 1] >= b.y1 - my) & (p[:, 1] <= b.y2 + my)
            require(inside.all(), f"{role}: landmarks {p.tolist()} far outside box {b.as_list()}")


def check_detect_sorted_by_score(detector: Detector, images: FaceImages) -> None:
    """Faces come best score first."""
    for role, found in _detections(detector, images).items():
        scores = [d.score for d in found]
        require(scores == sorted(scores, reverse=True), f"{role}: scores not in descending order: {scores}")


def check_detect_no_face(detector: Detector, images: FaceImages) -> None:
    """No face is a normal result: ``[]`` for the face-less photograph and for a 1×1 image."""
    found = _detections(detector, images)["no_face"]
    require(found == [], f"found {len(found)} face(s) in the photograph without faces: {found}")
    one = detector.detect(np.zeros((1, 1, 3), np.uint8))
    require(one == [], f"found {len(one)} face(s) in a 1×1 image")


def check_detect_batch_equals_single(detector: Detector, images: FaceImages) -> None:
    """``detect_batch`` gives what ``detect`` gives, image by image and in order; ``[]`` for no images."""
    single = _detections(detector, images)
    order = ["face", "no_face", "group"]
    batch = detector.detect_batch([images[r].copy() for r in order])
    require(type(batch) is list and len(batch) == 3, f"detect_batch of 3 images returned {batch!r}")
    for role, got in zip(order, batch, strict=True):
        why = _differs(single[role], got, f"detect_batch vs detect on {role}")
        require(why is None, str(why))
    require(detector.detect_batch([]) == [], "detect_batch([]) must return []")


def check_detect_deterministic(detector: Detector, images: FaceImages) -> None:
    """The same image twice gives the same faces (no state kept from one image to the next)."""
    single = _detections(detector, images)
    again = detector.detect(images["face"].copy())
    why = _differs(single["face"], again, "detect(face) twice")
    require(why is None, str(why))


def check_detect_leaves_input_unchanged(detector: Detector, images: FaceImages) -> None:
    """``detect`` does not write into the array it is given."""
    changed = _run(detector, images)[1]
    require(not changed, f"detect modified its input array for: {', '.join(changed)}")


def check_detect_accepts_views(detector: Detector, images: FaceImages) -> None:
    """A read-only, non-contiguous view of a photograph gives the same faces as the photograph."""
    img = images["face"]
    view = strided_readonly_view(img)
    why = _differs(_detections(detector, images)["face"], detector.detect(view), "strided read-only view vs array")
    require(why is None, str(why))


def check_detect_small_images(detector: Detector, images: FaceImages) -> None:
    """Tiny and very thin images are normal input: a list of detections, never a crash."""
    for shape in [(1, 1, 3), (2, 3, 3), (7, 300, 3), (300, 7, 3), (20, 20, 3)]:
        img = np.full(shape, 128, np.uint8)
        found = detector.detect(img)
        require(type(found) is list, f"detect on a {shape} image returned {type(found).__name__}")
        for d in found:
            b = d.bbox
            require(0 <= b.x1 < b.x2 <= shape[1] and 0 <= b.y1 < b.y2 <= shape[0], f"{shape}: box {b.as_list()}")


def _bad_inputs() -> list[tuple[str, object]]:
    return [
        ("a float32 image", np.zeros((40, 40, 3), np.float32)),
        ("a 2-D grey image", np.zeros((40, 40), np.uint8)),
        ("an RGBA image", np.zeros((40, 40, 4), np.uint8)),
        ("a 4-D batch", np.zeros((2, 40, 40, 3), np.uint8)),
        ("None", None),
    ]


def check_detect_bad_input(detector: Detector, images: FaceImages) -> None:
    """Arrays that are not RGB uint8 images raise a :class:`FaceprintError` naming the problem;
    an image with no pixels gives ``[]`` or a FaceprintError, never another exception."""
    for what, bad in _bad_inputs():
        require_faceprint_error(f"detect({what})", detector.detect, bad)
    for shape in [(0, 0, 3), (0, 40, 3)]:
        try:
            found = detector.detect(np.zeros(shape, np.uint8))
        except FaceprintError:
            continue
        except Exception as exc:
            raise AssertionError(f"detect on a {shape} image raised {type(exc).__name__}: {exc}") from exc
        require(found == [], f"detect on a {shape} image returned {found!r}")


def detector_checks() -> list[DetectorCheck]:
    """Every detector check, cheapest first."""
    return [
        check_detector_protocol,
        check_detect_bad_input,
        check_detect_small_images,
        check_detect_output_types,
        check_detect_finds_faces,
        check_detect_boxes_inside_image,
        check_detect_landmarks_inside_face,
        check_detect_sorted_by_score,
        check_detect_no_face,
        check_detect_leaves_input_unchanged,
        check_detect_batch_equals_single,
        check_detect_deterministic,
        check_detect_accepts_views,
    ]
