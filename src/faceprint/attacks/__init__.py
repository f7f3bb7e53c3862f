"""Attack detection: presentation attacks (liveness), deepfakes and morphs (see ``base.py``)."""

from __future__ import annotations

from .base import ATTACK_KINDS, AttackDetector, DifferentialAttackDetector

__all__ = ["ATTACK_KINDS", "AttackDetector", "DifferentialAttackDetector"]
