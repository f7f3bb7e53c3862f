"""Conformance checks every :class:`~faceprint.quality.base.QualityAssessor` must pass.

Each check is ``check_…(assessor, images)``. The faces are those the reference detector of
:class:`FaceImages` finds (with landmarks) in the face and group photographs; checks share one
``assess`` of each face per assessor (:meth:`FaceImages.memo`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES, align
from ..quality.base import QualityAssessor
from ..types import BBox, Detection, Landmarks, QualityComponent, QualityReport
from ._assert import require, require_faceprint_error, require_named_backend
from ._images import FaceImages, strided_readonly_view

__all__ = [
    "quality_checks",
    "check_quality_protocol",
    "check_assess_output",
    "check_assess_batch_equals_single",
    "check_assess_deterministic",
    "check_assess_leaves_input_unchanged",
    "check_assess_accepts_views",
    "check_assess_accepts_aligned_chips",
    "check_assess_bad_input",
    "check_assess_face_outside_frame",
    "check_assess_blur_lowers_quality",
]

QualityCheck = Callable[[QualityAssessor, FaceImages], None]
R = TypeVar("R")

#: reports compared for equality may differ by this much (batched embedding sums in another order)
TOL = 0.2


def _faces(images: FaceImages) -> list[tuple[str, Detection]]:
    """(role, detection) of the best face of ``face`` and every face of ``group``, with landmarks."""

    def compute() -> list[tuple[str, Detection]]:
        det = images.reference_detector()
        out: list[tuple[str, Detection]] = []
        for role in ("face", "group"):
            found = [d for d in det.detect(images[role]) if d.landmarks is not None]
            require(found, f"the reference detector found no face with landmarks in the {role!r} photograph")
            out += [(role, d) for d in (found if role == "group" else found[:1])]
        return out

    return images.memo(images, "quality-faces", compute)


def per_face_on_copies(
    owner: object, images: FaceImages, key: str, fn: Callable[[npt.NDArray[np.uint8], Detection], R]
) -> tuple[list[R], list[str]]:
    """(``fn(image, detection)`` of each face of :func:`_faces` on a writable copy of its image, the
    roles whose array ``fn`` wrote into), once per ``owner`` and ``key``."""

    def compute() -> tuple[list[R], list[str]]:
        out, changed = [], []
        for role, d in _faces(images):
            copy = images[role].copy()
            out.append(fn(copy, d))
            if not np.array_equal(copy, images[role]):
                changed.append(role)
        return out, changed

    return images.memo(owner, key, compute)


def _reports(assessor: QualityAssessor, images: FaceImages) -> tuple[list[QualityReport], list[str]]:
    """(``assess`` of each face on writable copies, the roles whose array it wrote into), once per assessor."""
    return per_face_on_copies(assessor, images, "assess", assessor.assess)


def _differs(a: QualityReport, b: QualityReport, what: str) -> str | None:
    if abs(a.quality - b.quality) > TOL:
        return f"{what}: unified quality {a.quality} vs {b.quality}"
    if list(a.components) != list(b.components):
        return f"{what}: components {list(a.components)} vs {list(b.components)}"
    for name, c in a.components.items():
        o = b.components[name]
        if abs(c.quality - o.quality) > TOL or not math.isclose(c.value, o.value, rel_tol=1e-3, abs_tol=1e-3):
            return f"{what}: component {name} {c} vs {o}"
    return None


# --- the checks ------------------------------------------------------------------------------


def check_quality_protocol(assessor: QualityAssessor, images: FaceImages) -> None:
    """It is a :class:`QualityAssessor` and says its name."""
    require_named_backend(assessor, QualityAssessor, "name/assess/assess_batch")


def check_assess_output(assessor: QualityAssessor, images: FaceImages) -> None:
    """A :class:`QualityReport` per face: unified score and every component quality in [0, 100], finite values."""
    for report in _reports(assessor, images)[0]:
        require(isinstance(report, QualityReport), f"assess returned a {type(report).__name__}, not a QualityReport")
        require(0.0 <= report.quality <= 100.0, f"unified quality {report.quality} outside [0, 100]")
        require(len(report.components) > 0, "a report needs at least one component")
        for name, c in report.components.items():
            require(isinstance(name, str) and name, f"component name {name!r}")
            require(isinstance(c, QualityComponent), f"component {name} is a {type(c).__name__}")
            require(math.isfinite(c.value) and 0.0 <= c.quality <= 100.0, f"component {name}: {c}")
        require(isinstance(report.assessor, str) and report.assessor, f"report.assessor is {report.assessor!r}")


def check_assess_batch_equals_single(assessor: QualityAssessor, images: FaceImages) -> None:
    """``assess_batch`` gives what ``assess`` gives, face by face and in order; ``[]`` for no faces."""
    faces = _faces(images)
    single = _reports(assessor, images)[0]
    batch = assessor.assess_batch([images[r] for r, _ in faces], [d for _, d in faces])
    require(type(batch) is list and len(batch) == len(faces), f"assess_batch of {len(faces)} faces returned {batch!r}")
    for i, (a, b) in enumerate(zip(single, batch, strict=True)):
        why = _differs(a, b, f"face {i}: assess_batch vs assess")
        require(why is None, str(why))
    require(assessor.assess_batch([], []) == [], "assess_batch([], []) must return []")


def check_assess_deterministic(assessor: QualityAssessor, images: FaceImages) -> None:
    """The same face twice gives the same report."""
    role, d = _faces(images)[0]
    why = _differs(_reports(assessor, images)[0][0], assessor.assess(images[role].copy(), d), "assess twice")
    require(why is None, str(why))


def check_assess_leaves_input_unchanged(assessor: QualityAssessor, images: FaceImages) -> None:
    """``assess`` does not write into the image it is given."""
    changed = _reports(assessor, images)[1]
    require(not changed, f"assess modified its input array for: {', '.join(changed)}")


def check_assess_accepts_views(assessor: QualityAssessor, images: FaceImages) -> None:
    """A read-only, non-contiguous view of a photograph gives the same report as the photograph."""
    role, d = _faces(images)[0]
    img = images[role]
    view = strided_readonly_view(img)
    why = _differs(_reports(assessor, images)[0][0], assessor.assess(view, d), "strided read-only view vs array")
    require(why is None, str(why))


def check_assess_accepts_aligned_chips(assessor: QualityAssessor, images: FaceImages) -> None:
    """The face's aligned chip of any built-in template is accepted and gives a valid report."""
    role, d = _faces(images)[0]
    for template in TEMPLATES:
        chip = align(images[role], d, template)
        report = assessor.assess(images[role], d, chip)
        require(isinstance(report, QualityReport), f"assess with a {template} chip returned {report!r}")
        require(0.0 <= report.quality <= 100.0, f"assess with a {template} chip: quality {report.quality}")


def _bad_images() -> list[tuple[str, object]]:
    return [
        ("a float32 image", np.zeros((40, 40, 3), np.float32)),
        ("a NaN image", np.full((40, 40, 3), np.nan, np.float32)),
        ("a 2-D grey image", np.zeros((40, 40), np.uint8)),
        ("an RGBA image", np.zeros((40, 40, 4), np.uint8)),
        ("an image with no pixels", np.zeros((0, 0, 3), np.uint8)),
        ("None", None),
    ]


def check_assess_bad_input(assessor: QualityAssessor, images: FaceImages) -> None:
    """Arrays that are not RGB uint8 images, and a detection without landmarks, raise a FaceprintError."""
    role, d = _faces(images)[0]
    for what, bad in _bad_images():
        require_faceprint_error(f"assess({what})", assessor.assess, bad, d)
    bare = Detection(d.bbox, d.score, None, d.detector)
    require_faceprint_error("assess(a detection without landmarks)", assessor.assess, images[role], bare)


def _shifted(d: Detection, dx: float) -> Detection:
    assert d.landmarks is not None
    pts = d.landmarks.points + np.array([dx, 0.0], np.float32)
    b = d.bbox
    return Detection(BBox(b.x1 + dx, b.y1, b.x2 + dx, b.y2), d.score, Landmarks(pts, d.landmarks.scheme), d.detector)


def check_assess_face_outside_frame(assessor: QualityAssessor, images: FaceImages) -> None:
    """A face cut in half by the frame, or wholly outside it, gets a valid report with a lower score."""
    role, d = _faces(images)[0]
    img = images[role]
    whole = _reports(assessor, images)[0][0].quality
    cx = d.bbox.center[0]
    half = assessor.assess(img, _shifted(d, img.shape[1] - cx))  # face centre on the right edge
    gone = assessor.assess(img, _shifted(d, 3.0 * img.shape[1]))
    for what, r in (("half outside", half), ("outside", gone)):
        require(isinstance(r, QualityReport) and 0.0 <= r.quality <= 100.0, f"a face {what} the frame: {r!r}")
        require(r.quality < whole, f"a face {what} the frame scores {r.quality}, not below the whole face's {whole}")


def check_assess_blur_lowers_quality(assessor: QualityAssessor, images: FaceImages) -> None:
    """A heavily blurred copy (Gaussian σ = 4 px) of the face photograph gets a lower unified score."""
    role, d = _faces(images)[0]
    img: npt.NDArray[np.uint8] = np.asarray(cv2.GaussianBlur(images[role], (0, 0), 4.0), dtype=np.uint8)
    sharp = _reports(assessor, images)[0][0].quality
    blurred = assessor.assess(img, d).quality
    require(blurred < sharp, f"blurring the face (σ 4 px) did not lower its quality: {sharp} → {blurred}")


def quality_checks() -> list[QualityCheck]:
    """Every quality assessor check, cheapest first."""
    return [
        check_quality_protocol,
        check_assess_bad_input,
        check_assess_output,
        check_assess_leaves_input_unchanged,
        check_assess_deterministic,
        check_assess_batch_equals_single,
        check_assess_accepts_views,
        check_assess_accepts_aligned_chips,
        check_assess_face_outside_frame,
        check_assess_blur_lowers_quality,
    ]
