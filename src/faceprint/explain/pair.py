"""Explain a 1:1 decision: two detected faces → aligned chips → explanation + decision.

The CLI (``faceprint explain``) and the service (``POST /v1/explain``) detect the main face of
each photo with their pipeline, then call :func:`explain_pair` with the detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..alignment import align
from ..embedding.base import Embedder, to_embeddings
from ..models import OperatingPoint
from ..scoring import decide
from ..types import Decision, Detection
from .base import LIMITS, Explainer, Explanation

__all__ = ["PairExplanation", "explain_pair"]


@dataclass(frozen=True, eq=False)
class PairExplanation:
    """An explanation with the decision it explains and the chips its maps are drawn on."""

    explanation: Explanation
    decision: Decision
    chip_a: npt.NDArray[np.uint8]
    chip_b: npt.NDArray[np.uint8]
    face_a: Detection | None = None
    face_b: Detection | None = None

    def to_dict(self, *, map_size: int | None = None) -> dict[str, Any]:
        """Decision fields, the explanation (maps as lists) and the stated limits, JSON-ready."""
        return {
            **self.decision.to_dict(),
            "explanation": self.explanation.to_dict(map_size=map_size),
            "face_a": None if self.face_a is None else self.face_a.to_dict(),
            "face_b": None if self.face_b is None else self.face_b.to_dict(),
            "limits": LIMITS,
        }


def explain_pair(
    image_a: npt.NDArray[np.uint8],
    face_a: Detection,
    image_b: npt.NDArray[np.uint8],
    face_b: Detection,
    embedder: Embedder,
    explainer: Explainer,
    point: OperatingPoint,
) -> PairExplanation:
    """Align both faces for ``embedder``, explain their similarity and decide at ``point``.

    Raises :class:`~faceprint.errors.IdenticalImagesError` when both chips are the same pixels
    (the same photo twice), and what the explainer raises (see :mod:`faceprint.explain.base`).
    """
    chip_a = align(image_a, face_a, embedder.template).image
    chip_b = align(image_b, face_b, embedder.template).image
    explanation = explainer.explain(chip_a, chip_b, embedder)
    ea, eb = to_embeddings(embedder, embedder.embed([chip_a, chip_b]))
    return PairExplanation(explanation, decide(ea, eb, point), chip_a, chip_b, face_a, face_b)
