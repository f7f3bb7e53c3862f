"""Conformance checks every :class:`~faceprint.attributes.base.AttributeEstimator` must pass.

Each check is ``check_…(estimator, images)``. The faces are those the reference detector of
:class:`FaceImages` finds (with landmarks) in the face and group photographs; checks share one
``estimate`` of each face per estimator (:meth:`FaceImages.memo`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from ..alignment import align
from ..attributes.base import AttributeEstimate, AttributeEstimator
from ._assert import require, require_faceprint_error, require_named_backend
from ._images import FaceImages
from .quality import _faces  # the same faces as the quality checks (one detection, memoised)

__all__ = [
    "attribute_checks",
    "check_attribute_protocol",
    "check_estimate_output",
    "check_estimate_batch_equals_single",
    "check_estimate_deterministic",
    "check_estimate_leaves_input_unchanged",
    "check_estimate_accepts_aligned_chips",
    "check_estimate_bad_input",
]

AttributeCheck = Callable[[AttributeEstimator, FaceImages], None]
#: ages (years) and probabilities compared for equality may differ by this much
TOL = 1e-3


def _estimates(est: AttributeEstimator, images: FaceImages) -> tuple[list[AttributeEstimate], list[str]]:
    def compute() -> tuple[list[AttributeEstimate], list[str]]:
        out, changed = [], []
        for role, d in _faces(images):
            copy = images[role].copy()
            out.append(est.estimate(copy, d))
            if not np.array_equal(copy, images[role]):
                changed.append(role)
        return out, changed

    return images.memo(est, "estimate", compute)


def _same(a: AttributeEstimate, b: AttributeEstimate, what: str) -> None:
    ok = a.gender == b.gender and abs(a.age - b.age) <= TOL and abs(a.p_female - b.p_female) <= TOL
    require(ok, f"{what}: {a} vs {b}")


def check_attribute_protocol(est: AttributeEstimator, images: FaceImages) -> None:
    """It is an :class:`AttributeEstimator` and says its name."""
    require_named_backend(est, AttributeEstimator, "name/estimate/estimate_batch")


def check_estimate_output(est: AttributeEstimator, images: FaceImages) -> None:
    """An :class:`AttributeEstimate` per face: age in [0, 120] years, a gender class and probabilities in [0, 1]."""
    for e in _estimates(est, images)[0]:
        require(isinstance(e, AttributeEstimate), f"estimate returned a {type(e).__name__}")
        require(math.isfinite(e.age) and 0.0 <= e.age <= 120.0, f"age {e.age} outside [0, 120]")
        require(isinstance(e.gender, str) and e.gender, f"gender {e.gender!r}")
        require(0.5 <= e.gender_confidence <= 1.0, f"gender_confidence {e.gender_confidence} outside [0.5, 1]")
        require(0.0 <= e.p_female <= 1.0, f"p_female {e.p_female}")


def check_estimate_batch_equals_single(est: AttributeEstimator, images: FaceImages) -> None:
    """``estimate_batch`` gives what ``estimate`` gives, face by face and in order; ``[]`` for no faces."""
    faces = _faces(images)
    single = _estimates(est, images)[0]
    batch = est.estimate_batch([images[r] for r, _ in faces], [d for _, d in faces])
    require(type(batch) is list and len(batch) == len(faces), f"estimate_batch of {len(faces)} faces gave {batch!r}")
    for i, (a, b) in enumerate(zip(single, batch, strict=True)):
        _same(a, b, f"face {i}: estimate_batch vs estimate")
    require(est.estimate_batch([], []) == [], "estimate_batch([], []) must return []")


def check_estimate_deterministic(est: AttributeEstimator, images: FaceImages) -> None:
    """The same face twice gives the same estimate."""
    role, d = _faces(images)[0]
    _same(_estimates(est, images)[0][0], est.estimate(images[role].copy(), d), "estimate twice")


def check_estimate_leaves_input_unchanged(est: AttributeEstimator, images: FaceImages) -> None:
    """``estimate`` does not write into the image it is given."""
    changed = _estimates(est, images)[1]
    require(not changed, f"estimate modified its input array for: {', '.join(changed)}")


def check_estimate_accepts_aligned_chips(est: AttributeEstimator, images: FaceImages) -> None:
    """Given the pipeline's aligned chip of the face, the estimate is the same as without it."""
    role, d = _faces(images)[0]
    chip = align(images[role], d, "dlib150")
    _same(_estimates(est, images)[0][0], est.estimate(images[role], d, chip), "with vs without the aligned chip")


def check_estimate_bad_input(est: AttributeEstimator, images: FaceImages) -> None:
    """Not an RGB uint8 image, or a detection without landmarks: a specific FaceprintError."""
    role, d = _faces(images)[0]
    img = images[role]
    bare = dataclasses.replace(d, landmarks=None)
    for what, bad_img, det in (
        ("a float image", img.astype(np.float32), d),
        ("a grey image", img[:, :, 0], d),
        ("a detection without landmarks", img, bare),
    ):
        require_faceprint_error(what, est.estimate, bad_img, det)


def attribute_checks() -> tuple[AttributeCheck, ...]:
    """Every check, cheapest first."""
    return (
        check_attribute_protocol,
        check_estimate_output,
        check_estimate_batch_equals_single,
        check_estimate_deterministic,
        check_estimate_leaves_input_unchanged,
        check_estimate_accepts_aligned_chips,
        check_estimate_bad_input,
    )
