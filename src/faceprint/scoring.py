"""Comparison scores, thresholds calibrated to a false match rate, and 1:1 decisions.

Scores are cosine similarities of L2-normalised embeddings: higher means more alike,
1 is identical, and a comparison *matches* when ``score >= threshold``.

In ISO/IEC 19795-1 terms, for a threshold ``t``:
FMR(t) = share of non-mated (impostor) comparisons with score ≥ t;
FNMR(t) = share of mated (genuine) comparisons with score < t.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import ConfigurationError, EmbeddingMismatchError, InvalidEmbeddingError
from .evaluation import metrics
from .models import OperatingPoint, get_spec
from .types import Decision, Embedding

__all__ = [
    "cosine",
    "similarity_matrix",
    "fmr_fnmr",
    "threshold_at_fmr",
    "eer",
    "Calibration",
    "calibrate",
    "operating_point",
    "decide",
]

log = logging.getLogger(__name__)


def cosine(a: Embedding, b: Embedding) -> float:
    """Cosine similarity of two embeddings of the same model (raises if models differ)."""
    a.check_compatible(b)
    return float(np.clip(np.dot(a.vector, b.vector), -1.0, 1.0))


def similarity_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """All cosine similarities between rows of ``a`` (N, D) and ``b`` (M, D) → (N, M) float32."""
    x = np.asarray(a, dtype=np.float32)
    y = np.asarray(b, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2:
        raise InvalidEmbeddingError(f"expected 2-D (N, D) arrays, got shapes {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise EmbeddingMismatchError(f"embedding dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidEmbeddingError("embeddings contain NaN or infinite values")

    def norm(z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        n = np.linalg.norm(z, axis=1, keepdims=True)
        if np.any(n == 0):
            raise InvalidEmbeddingError("an embedding has zero norm")
        return z / n

    return np.clip(norm(x) @ norm(y).T, -1.0, 1.0)


def _scores(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ConfigurationError(f"no {name} scores given")
    if not np.all(np.isfinite(a)):
        raise ConfigurationError(f"{name} scores contain NaN or infinite values")
    return a


def fmr_fnmr(genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at ``threshold``, a comparison matching when ``score >= threshold``."""
    return metrics.fmr_fnmr(_scores(genuine, "genuine"), _scores(impostor, "impostor"), threshold)


def threshold_at_fmr(impostor: npt.ArrayLike, target_fmr: float) -> float:
    """Lowest threshold whose empirical FMR on ``impostor`` scores is ≤ ``target_fmr``.

    With n impostor scores, at most ``floor(target_fmr * n)`` of them may reach the
    threshold; the threshold is placed just above the next-highest score. When
    ``target_fmr * n < 3`` the estimate rests on (almost) no observed false matches: a warning says
    so (by the rule of three, about ``3 / target_fmr`` comparisons are needed).
    See :func:`faceprint.evaluation.metrics.threshold_at_fmr`.
    """
    return metrics.threshold_at_fmr(_scores(impostor, "impostor"), target_fmr)


def eer(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold: (eer, threshold).

    FMR and FNMR are evaluated at every observed score; the EER is where the two curves cross,
    linearly interpolated between the two neighbouring thresholds that bracket the crossing
    (:func:`faceprint.evaluation.metrics.eer` returns the same with its method spelled out).
    """
    r = metrics.eer(_scores(genuine, "genuine"), _scores(impostor, "impostor"))
    return r.eer, r.threshold


@dataclass(frozen=True, slots=True)
class Calibration:
    """Operating points measured on one set of mated and non-mated scores."""

    n_genuine: int
    n_impostor: int
    points: dict[str, OperatingPoint]


def calibrate(
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    *,
    target_fmrs: tuple[float, ...] = (1e-3,),
    source: str = "",
) -> Calibration:
    """Named operating points: ``"eer"`` and ``"fmr=<x>"`` for each target FMR."""
    g = _scores(genuine, "genuine")
    i = _scores(impostor, "impostor")
    counts = metrics.ScoreCounts.from_scores(g, i)  # one sort serves every operating point
    thr = counts.eer().threshold
    fm, fn = counts.rates_at(thr)
    points = {"eer": OperatingPoint("eer", thr, fm, fn, source)}
    for target in target_fmrs:
        t = threshold_at_fmr(i, target)  # warns when there are too few impostors
        fm, fn = counts.rates_at(t)
        name = f"fmr={target:g}"
        points[name] = OperatingPoint(name, t, fm, fn, source)
    return Calibration(int(g.size), int(i.size), points)


def operating_point(model_id: str, name: str = "fmr=0.001") -> OperatingPoint:
    """A stored operating point of a model from the manifest (e.g. ``"eer"``, ``"fmr=0.001"``)."""
    spec = get_spec(model_id)
    try:
        return spec.operating_points[name]
    except KeyError:
        known = ", ".join(spec.operating_points) or "none calibrated"
        raise ConfigurationError(
            f"model {model_id!r} has no operating point {name!r} (known: {known}); pass an explicit threshold instead"
        ) from None


def decide(a: Embedding, b: Embedding, point: OperatingPoint) -> Decision:
    """Compare two embeddings and decide at an operating point."""
    s = cosine(a, b)
    return Decision(
        score=s,
        threshold=point.threshold,
        operating_point=point.name,
        fmr=point.fmr,
        match=s >= point.threshold,
        model=a.model,
    )
