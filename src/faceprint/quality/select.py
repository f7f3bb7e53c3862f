"""Using quality: gates (refuse or flag a face below a threshold), explanations, best-shot selection.

Pure functions over :class:`~faceprint.types.QualityReport`; :class:`~faceprint.pipeline.FacePipeline`
uses them for ``min_quality`` and :meth:`~faceprint.pipeline.FacePipeline.best_shot`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ConfigurationError, LowQualityError, NoFaceError
from ..types import Face, QualityReport
from .components import explain

__all__ = ["check_min_quality", "reasons", "flag", "refuse_low_quality", "BestShot", "best_of"]

#: a component below this quality is named as pulling the score down (yaw 33°, half the light lost…)
WEAK = 70.0


def check_min_quality(min_quality: float | None) -> float | None:
    """``min_quality`` as a float in [0, 100], or None; a clear error otherwise."""
    if min_quality is None:
        return None
    try:
        v = float(min_quality)
    except (TypeError, ValueError):
        raise ConfigurationError(f"min_quality must be a number in [0, 100], got {min_quality!r}") from None
    if not (math.isfinite(v) and 0.0 <= v <= 100.0):
        raise ConfigurationError(f"min_quality must lie in [0, 100], got {min_quality!r}")
    return v


def reasons(report: QualityReport, *, n: int = 3, below: float = WEAK) -> list[str]:
    """Words for the (at most ``n``) weakest components under ``below``: ``["blurred", "yaw 38°"]``."""
    return [explain(name, c) for name, c in report.weakest(n, below=below)]


def flag(report: QualityReport | None, min_quality: float | None, what: str = "face") -> str | None:
    """A sentence saying why a face is below ``min_quality`` (None when it is not, or no gate is set)."""
    if report is None or min_quality is None or report.quality >= min_quality:
        return None
    why = reasons(report)
    return f"{what}: quality {report.quality:.0f} below {min_quality:g}" + (f" ({', '.join(why)})" if why else "")


def refuse_low_quality(face: Face, min_quality: float | None, source: str) -> Face:
    """``face`` itself, or :class:`LowQualityError` (a failure to enrol) when it is below ``min_quality``."""
    msg = flag(face.quality, min_quality, source)
    if msg is not None:
        assert face.quality is not None
        raise LowQualityError(msg, quality=face.quality.quality, threshold=min_quality)
    return face


@dataclass(frozen=True)
class BestShot:
    """The outcome of best-shot selection among several images of one person.

    Attributes:
        face: the chosen face (its ``quality`` set), from ``sources[index]``.
        index: position of the chosen image in the input.
        source: its name (path or description).
        ranking: ``(index, unified quality)`` of every image with a face, best first; images
            that failed or had no face are in ``failed`` as ``(index, error text)``.
    """

    face: Face
    index: int
    source: str
    ranking: list[tuple[int, float]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


def best_of(candidates: Sequence[tuple[int, str, Face]], failed: Sequence[tuple[int, str]]) -> BestShot:
    """The candidate of highest unified quality (the earliest on a tie)."""
    usable = [(i, s, f) for i, s, f in candidates if f.quality is not None]
    if not usable:
        raise NoFaceError(f"none of the {len(candidates) + len(failed)} images has a usable face")
    ranked = sorted(usable, key=lambda c: (-c[2].quality.quality, c[0]))  # type: ignore[union-attr]
    i, src, face = ranked[0]
    ranking = [(j, f.quality.quality) for j, _, f in ranked]  # type: ignore[union-attr]
    return BestShot(face, i, src, ranking, list(failed))
