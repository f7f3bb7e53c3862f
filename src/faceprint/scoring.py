"""Comparison scores, thresholds calibrated to a false match rate, and 1:1 decisions.

Scores are cosine similarities of L2-normalised embeddings: higher means more alike,
1 is identical, and a comparison *matches* when ``score >= threshold``.

In ISO/IEC 19795-1 terms, for a threshold ``t``:
FMR(t) = share of non-mated comparisons (two different people) with score ≥ t;
FNMR(t) = share of mated comparisons (one person) with score < t.

The rates come from :mod:`faceprint.rates` (the one implementation; this module imports
nothing of :mod:`faceprint.evaluation`). Before 0.2 the score arguments were called
``genuine`` and ``impostor``; those keywords still work for one release, with a
DeprecationWarning.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from . import rates
from .errors import ConfigurationError, EmbeddingMismatchError, InvalidEmbeddingError
from .models import OperatingPoint, get_spec
from .rates import EERResult
from .types import Decision, Embedding

__all__ = [
    "cosine",
    "similarity_matrix",
    "fmr_fnmr",
    "threshold_at_fmr",
    "eer",
    "EERResult",
    "Calibration",
    "calibrate",
    "operating_point",
    "decide",
]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: deprecated keyword → its ISO/IEC 19795-1 name
_OLD_KEYWORDS = {"genuine": "mated", "impostor": "nonmated"}


def _iso_keywords(fn: F) -> F:
    """Accept the pre-0.2 keywords ``genuine=``/``impostor=`` with a DeprecationWarning."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old, new in _OLD_KEYWORDS.items():
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {old}= and {new}=; pass {new}= only")
                warnings.warn(
                    f"{fn.__name__}({old}=...) is deprecated; use {new}= (ISO/IEC 19795-1 wording)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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


def _nonempty(x: npt.ArrayLike, name: str) -> npt.ArrayLike:
    # the message of faceprint < 0.2, which callers match on ("no genuine scores given")
    if np.size(x) == 0:
        raise ConfigurationError(f"no {name} scores given: at least one is needed")
    return x


@_iso_keywords
def fmr_fnmr(mated: npt.ArrayLike, nonmated: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at ``threshold``, a comparison matching when ``score >= threshold``."""
    return rates.fmr_fnmr(mated, nonmated, threshold)


@_iso_keywords
def threshold_at_fmr(nonmated: npt.ArrayLike, target_fmr: float) -> float:
    """Lowest threshold whose empirical FMR on ``nonmated`` scores is ≤ ``target_fmr``.

    With n non-mated scores, at most ``floor(target_fmr * n)`` of them may reach the
    threshold; the threshold is placed just above the next-highest score. When
    ``target_fmr * n < 3`` the estimate rests on (almost) no observed false matches: a warning says
    so (by the rule of three, about ``3 / target_fmr`` comparisons are needed).
    See :func:`faceprint.rates.threshold_at_fmr`.
    """
    return rates.threshold_at_fmr(nonmated, target_fmr)


@_iso_keywords
def eer(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> EERResult:
    """Equal error rate with its threshold and interpolation method: :func:`faceprint.rates.eer`.

    FMR and FNMR are evaluated at every observed score; the EER is where the two curves cross,
    linearly interpolated between the two neighbouring thresholds that bracket the crossing.
    Before 0.2 this returned a tuple ``(eer, threshold)``; unpacking the result that way still
    works for one release (with a DeprecationWarning): read ``.eer`` and ``.threshold``.
    """
    return rates.eer(mated, nonmated)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Operating points measured on one set of mated and non-mated scores."""

    n_mated: int
    n_nonmated: int
    points: dict[str, OperatingPoint]

    @property
    def n_genuine(self) -> int:
        """Deprecated name of :attr:`n_mated`."""
        warnings.warn("Calibration.n_genuine is deprecated; use n_mated", DeprecationWarning, stacklevel=2)
        return self.n_mated

    @property
    def n_impostor(self) -> int:
        """Deprecated name of :attr:`n_nonmated`."""
        warnings.warn("Calibration.n_impostor is deprecated; use n_nonmated", DeprecationWarning, stacklevel=2)
        return self.n_nonmated


@_iso_keywords
def calibrate(
    mated: npt.ArrayLike,
    nonmated: npt.ArrayLike,
    *,
    target_fmrs: tuple[float, ...] = (1e-3,),
    source: str = "",
) -> Calibration:
    """Named operating points: ``"eer"`` and ``"fmr=<x>"`` for each target FMR."""
    counts = rates.ScoreCounts.from_scores(_nonempty(mated, "genuine (mated)"), _nonempty(nonmated, "non-mated"))
    thr = counts.eer().threshold
    fm, fn = counts.rates_at(thr)
    points = {"eer": OperatingPoint("eer", thr, fm, fn, source)}
    for target in target_fmrs:
        t = rates.threshold_at_fmr(nonmated, target)  # warns when there are too few non-mated scores
        fm, fn = counts.rates_at(t)
        name = f"fmr={target:g}"
        points[name] = OperatingPoint(name, t, fm, fn, source)
    return Calibration(int(counts.n_mated), int(counts.n_nonmated), points)


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
