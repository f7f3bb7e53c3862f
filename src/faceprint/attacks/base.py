"""The AttackDetector protocol: an image and a detection in, an attack score out.

One protocol covers presentation-attack detection (liveness: prints, screen replays, masks),
deepfake screening and single-image morphing-attack detection (S-MAD). Differential morphing
detection (D-MAD), which also needs a trusted image of the claimed person, adds
:meth:`DifferentialAttackDetector.score_pair`.

**Direction: higher = more likely an attack**, for every backend, in [0, 1]. A backend whose
model outputs "live" or "real" probabilities (MiniFASNet's class 1, MesoNet's sigmoid) turns
them round before returning. ``threshold`` is the backend's default decision threshold on that
score (``score >= threshold`` → attack); ISO/IEC 30107-3 evaluation reports what it costs.

Conventions (checked by :mod:`faceprint.testing.attacks`):

* ``score(image, detection)`` takes the decoded RGB ``uint8`` image (H, W, 3), the same as
  every other stage, and one :class:`~faceprint.types.Detection` in its pixel coordinates. A
  backend that needs BGR or another crop makes it itself. It returns an
  :class:`~faceprint.types.AttackScore`.
* ``score_batch(images, detections)`` takes parallel sequences (one image may appear for
  several faces) and returns one score per face, equal to ``score`` one by one; ``[]`` for none.
* Deterministic, no state kept between calls, inputs not written to. A face near or over the
  image border is normal input (crops are padded, not refused). Input that is not an RGB uint8
  image raises :class:`~faceprint.errors.ImageDimensionError` (an
  :class:`~faceprint.errors.ImageError`); a missing or damaged model file raises a specific
  :class:`~faceprint.errors.FaceprintError` naming the model directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..types import AttackScore, Detection

__all__ = ["AttackDetector", "DifferentialAttackDetector", "ATTACK_KINDS"]

#: What an attack detector screens for (``AttackDetector.kind``).
ATTACK_KINDS = ("presentation", "deepfake", "morph")


@runtime_checkable
class AttackDetector(Protocol):
    """A presentation-attack, deepfake or single-image morph detector (see the module doc)."""

    name: str
    kind: str
    threshold: float

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore: ...

    def score_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> list[AttackScore]: ...


@runtime_checkable
class DifferentialAttackDetector(AttackDetector, Protocol):
    """A detector that can also compare the suspected image with a trusted one (D-MAD).

    ``score_pair(image, detection, trusted, trusted_detection)`` scores ``image`` (e.g. a
    passport photo presented at enrolment) given a trusted live capture of the claimed person;
    the same direction and range as ``score``.
    """

    def score_pair(
        self,
        image: npt.NDArray[np.uint8],
        detection: Detection,
        trusted: npt.NDArray[np.uint8],
        trusted_detection: Detection,
    ) -> AttackScore: ...
