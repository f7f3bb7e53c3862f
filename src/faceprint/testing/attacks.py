"""Conformance checks every :class:`~faceprint.attacks.base.AttackDetector` must pass.

Each check is ``check_…(detector, images)``. The faces are those the reference detector of
:class:`FaceImages` finds in the face and group photographs (shared with the quality checks);
checks share one ``score`` of each face per detector (:meth:`FaceImages.memo`).

What a conformance check cannot know is whether a backend tells attacks from bona fide faces:
that needs labelled attacks and lives in each backend's own tests (the real samples) and in
``faceprint pad eval``. These checks hold the contract: the score's direction and range
(``is_attack == score >= threshold``, everything in [0, 1]), batches equal to single calls,
determinism, inputs left alone, faces at and beyond the border, and bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..attacks.base import ATTACK_KINDS, AttackDetector
from ..types import AttackScore, BBox, Detection, Landmarks
from ._assert import require, require_faceprint_error, require_named_backend
from ._images import FaceImages, strided_readonly_view
from .quality import _bad_images, _faces, per_face_on_copies

__all__ = [
    "attack_checks",
    "check_attack_protocol",
    "check_attack_score_output",
    "check_attack_batch_equals_single",
    "check_attack_deterministic",
    "check_attack_leaves_input_unchanged",
    "check_attack_accepts_views",
    "check_attack_border_faces",
    "check_attack_bad_input",
]

AttackCheck = Callable[[AttackDetector, FaceImages], None]

#: scores compared for equality may differ by this much (batched inference sums in another order)
TOL = 1e-4


def _scores(detector: AttackDetector, images: FaceImages) -> tuple[list[AttackScore], list[str]]:
    """(``score`` of each face on writable copies, the roles whose array it wrote into), once per detector."""
    return per_face_on_copies(detector, images, "attack-score", detector.score)


def _valid(s: object, detector: AttackDetector, what: str) -> AttackScore:
    require(isinstance(s, AttackScore), f"{what} returned a {type(s).__name__}, not an AttackScore")
    assert isinstance(s, AttackScore)
    require(math.isfinite(s.score) and 0.0 <= s.score <= 1.0, f"{what}: score {s.score} outside [0, 1]")
    require(
        s.is_attack == (s.score >= s.threshold), f"{what}: is_attack {s.is_attack} but score {s.score} vs {s.threshold}"
    )
    require(s.kind == detector.kind, f"{what}: kind {s.kind!r}, the detector's is {detector.kind!r}")
    require(isinstance(s.detector, str) and s.detector, f"{what}: detector {s.detector!r} is empty")
    for k, v in s.details.items():
        require(isinstance(k, str) and 0.0 <= v <= 1.0, f"{what}: detail {k!r} = {v} outside [0, 1]")
    return s


def _same(a: AttackScore, b: AttackScore, what: str) -> None:
    require(abs(a.score - b.score) <= TOL, f"{what}: score {a.score} vs {b.score}")
    require(a.is_attack == b.is_attack or abs(a.score - a.threshold) <= TOL, f"{what}: verdicts differ")
    require(list(a.details) == list(b.details), f"{what}: details {list(a.details)} vs {list(b.details)}")


# --- the checks ------------------------------------------------------------------------------


def check_attack_protocol(detector: AttackDetector, images: FaceImages) -> None:
    """It is an :class:`AttackDetector`, says its name, screens for a known kind, threshold in [0, 1]."""
    require_named_backend(detector, AttackDetector, "name/kind/threshold/score/score_batch")
    require(detector.kind in ATTACK_KINDS, f"kind {detector.kind!r} is not one of {ATTACK_KINDS}")
    t = detector.threshold
    require(isinstance(t, float) and 0.0 <= t <= 1.0, f"threshold {t!r} is not a float in [0, 1]")


def check_attack_score_output(detector: AttackDetector, images: FaceImages) -> None:
    """An :class:`AttackScore` per face: higher = attack, in [0, 1], ``is_attack == score >= threshold``."""
    for i, s in enumerate(_scores(detector, images)[0]):
        _valid(s, detector, f"score of face {i}")


def check_attack_batch_equals_single(detector: AttackDetector, images: FaceImages) -> None:
    """``score_batch`` gives what ``score`` gives, face by face and in order; ``[]`` for no faces."""
    faces = _faces(images)
    single = _scores(detector, images)[0]
    batch = detector.score_batch([images[r] for r, _ in faces], [d for _, d in faces])
    require(type(batch) is list and len(batch) == len(faces), f"score_batch of {len(faces)} faces returned {batch!r}")
    for i, (a, b) in enumerate(zip(single, batch, strict=True)):
        _same(a, _valid(b, detector, f"score_batch face {i}"), f"face {i}: score_batch vs score")
    require(detector.score_batch([], []) == [], "score_batch([], []) must return []")


def check_attack_deterministic(detector: AttackDetector, images: FaceImages) -> None:
    """The same face twice gives the same score."""
    role, d = _faces(images)[0]
    _same(_scores(detector, images)[0][0], detector.score(images[role].copy(), d), "score twice")


def check_attack_leaves_input_unchanged(detector: AttackDetector, images: FaceImages) -> None:
    """``score`` does not write into the image it is given."""
    changed = _scores(detector, images)[1]
    require(not changed, f"score modified its input array for: {', '.join(changed)}")


def check_attack_accepts_views(detector: AttackDetector, images: FaceImages) -> None:
    """A read-only, non-contiguous view of a photograph gives the same score as the photograph."""
    role, d = _faces(images)[0]
    img = images[role]
    view = strided_readonly_view(img)
    _same(_scores(detector, images)[0][0], detector.score(view, d), "strided read-only view vs array")


def _moved(d: Detection, dx: float, dy: float) -> Detection:
    b = d.bbox
    lm = d.landmarks
    moved = None if lm is None else Landmarks(lm.points + np.array([dx, dy], np.float32), lm.scheme)
    return Detection(BBox(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy), d.score, moved, d.detector)


def check_attack_border_faces(detector: AttackDetector, images: FaceImages) -> None:
    """Faces at the corner, half outside and wholly outside the frame, and a face larger than the
    image, give valid scores (crops are padded or shifted, never refused)."""
    role, d = _faces(images)[0]
    img = images[role]
    h, w = img.shape[:2]
    cx, cy = d.bbox.center
    cases = {
        "at the top-left corner": _moved(d, -d.bbox.x1, -d.bbox.y1),
        "half outside on the right": _moved(d, w - cx, 0.0),
        "half outside at the bottom": _moved(d, 0.0, h - cy),
        "wholly outside": _moved(d, 3.0 * w, 0.0),
        "larger than the image": Detection(BBox(-w, -h, 2.0 * w, 2.0 * h), d.score, d.landmarks, d.detector),
    }
    for what, det in cases.items():
        try:
            s = detector.score(img, det)
        except Exception as exc:
            raise AssertionError(f"a face {what} raised {type(exc).__name__}: {exc}; crops must be padded") from exc
        _valid(s, detector, f"a face {what}")


def check_attack_bad_input(detector: AttackDetector, images: FaceImages) -> None:
    """Arrays that are not RGB uint8 images, a non-Detection, and unequal batch lengths raise a FaceprintError."""
    role, d = _faces(images)[0]
    for what, bad in _bad_images():
        require_faceprint_error(f"score({what})", detector.score, bad, d)
    require_faceprint_error("score(image, None)", detector.score, images[role], None)
    require_faceprint_error("score_batch([image], [])", detector.score_batch, [images[role]], [])


def attack_checks() -> list[AttackCheck]:
    """Every attack detector check, cheapest first."""
    return [
        check_attack_protocol,
        check_attack_bad_input,
        check_attack_score_output,
        check_attack_leaves_input_unchanged,
        check_attack_deterministic,
        check_attack_batch_equals_single,
        check_attack_accepts_views,
        check_attack_border_faces,
    ]
