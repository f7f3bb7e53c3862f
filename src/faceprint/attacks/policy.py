"""The refuse-attacks policy: what a gate does with a face's attack screening.

A pipeline built with ``FacePipeline(pad=..., refuse_attacks=True)`` refuses, at enrolment
(:meth:`FacePipeline.embed_one`, the gallery's ``enroll``), a face that any of its attack
detectors scores as an attack, with :class:`~faceprint.errors.AttackDetectedError` (a failure to
enrol, a kind of NoFaceError, like ``min_quality``'s LowQualityError); in batches such faces are
dropped; :meth:`FacePipeline.verify` flags them rather than refusing. Without the policy the
scores are reported and nothing is refused.

Morphs at enrolment: with a trusted live capture of the claimed person (:class:`TrustedCapture`,
the gallery's ``enroll(..., trusted=...)``, ``gallery enroll --trusted IMG``), the pipeline's
differential detectors (``pad="dmad"``) score each image against it (D-MAD,
:func:`embed_with_trusted`); without one they answer with their single-image fallback (S-MAD).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..errors import AttackDetectedError, ConfigurationError, NoFaceError
from ..io import describe_source
from ..quality.select import refuse_low_quality
from ..types import AttackScore, Detection, Face
from .base import DifferentialAttackDetector

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline

__all__ = ["attack_scores", "attack_flag", "refuse_attack", "TrustedCapture", "embed_with_trusted"]


def attack_scores(attack: AttackScore | Mapping[str, AttackScore] | None) -> list[AttackScore]:
    """A face's attack screening as a list (one per detector; empty when it was not screened)."""
    if attack is None:
        return []
    if isinstance(attack, AttackScore):
        return [attack]
    return list(attack.values())


def attack_flag(attack: AttackScore | Mapping[str, AttackScore] | None, what: str = "face") -> str | None:
    """A sentence saying which detectors score the face as an attack (None when none does)."""
    hits = [s for s in attack_scores(attack) if s.is_attack]
    if not hits:
        return None
    parts = [f"{s.kind} attack by {s.detector} (score {s.score:.2f} >= {s.threshold:g})" for s in hits]
    return f"{what}: scored as a " + "; ".join(parts)


def refuse_attack(face: Face, refuse: bool, source: str) -> Face:
    """``face`` itself, or :class:`AttackDetectedError` when ``refuse`` and a detector flags it."""
    msg = attack_flag(face.attack, source) if refuse else None
    if msg is not None:
        raise AttackDetectedError(msg)
    return face


@dataclasses.dataclass(frozen=True)
class TrustedCapture:
    """A trusted live capture of the claimed person (its pixels and main face), the reference of D-MAD."""

    image: npt.NDArray[np.uint8]
    detection: Detection
    source: str

    @classmethod
    def of(cls, pipeline: FacePipeline, source: ImageSource) -> TrustedCapture:
        """Load ``source`` and find its largest face; :class:`NoFaceError` when it has none, and
        :class:`ConfigurationError` when ``pipeline`` has no differential detector to use it."""
        if not _differential(pipeline):
            raise ConfigurationError(
                "a trusted image is compared by a differential morph detector: "
                "build the pipeline with pad='dmad' (CLI: --pad dmad)"
            )
        img = pipeline.load(source)
        faces = pipeline.analyze(img, select="largest")
        if not faces:
            raise NoFaceError(f"no face found in the trusted image {describe_source(source)}")
        return cls(img, faces[0].detection, describe_source(source))


def _differential(pipeline: FacePipeline) -> dict[str, DifferentialAttackDetector]:
    return {n: d for n, d in pipeline.pad.items() if isinstance(d, DifferentialAttackDetector)}


def embed_with_trusted(
    pipeline: FacePipeline, image: ImageSource, trusted: TrustedCapture, *, select: str = "largest"
) -> Face:
    """:meth:`FacePipeline.embed_one <faceprint.pipeline.FacePipeline.embed_one>` with D-MAD: the
    pipeline's differential detectors score the face against ``trusted`` (replacing their
    single-image S-MAD answer in ``face.attack``); other detectors' scores are kept. Refuses, as
    ``embed_one`` does, a face below ``min_quality`` or, with ``refuse_attacks``, one scored as an attack."""
    source = describe_source(image)
    img = pipeline.load(image)
    faces = pipeline.analyze(img, select=select)  # type: ignore[arg-type]
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    face = refuse_low_quality(faces[0], pipeline.min_quality, source)
    pair = {
        n: d.score_pair(img, face.detection, trusted.image, trusted.detection)
        for n, d in _differential(pipeline).items()
    }
    if isinstance(face.attack, AttackScore) or face.attack is None:
        attack: AttackScore | Mapping[str, AttackScore] | None = next(iter(pair.values())) if pair else face.attack
    else:
        attack = {n: pair.get(n, s) for n, s in face.attack.items()}
    return refuse_attack(dataclasses.replace(face, attack=attack), pipeline.refuse_attacks, source)
