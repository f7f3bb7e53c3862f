"""The refuse-attacks policy: what a gate does with a face's attack screening.

A pipeline built with ``FacePipeline(pad=..., refuse_attacks=True)`` refuses, at enrolment
(:meth:`FacePipeline.embed_one`, the gallery's ``enroll``), a face that any of its attack
detectors scores as an attack, with :class:`~faceprint.errors.AttackDetectedError` (a failure to
enrol, a kind of NoFaceError, like ``min_quality``'s LowQualityError); in batches such faces are
dropped; :meth:`FacePipeline.verify` flags them rather than refusing. Without the policy the
scores are reported and nothing is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import AttackDetectedError
from ..types import AttackScore, Face

__all__ = ["attack_scores", "attack_flag", "refuse_attack"]


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
