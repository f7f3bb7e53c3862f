"""The values a gallery stores and returns: templates, subjects, search results, reports, settings.

Plain frozen dataclasses with a ``to_dict()`` for JSON output; nothing here touches storage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..types import BBox, Embedding
from .spec import legacy_spec

__all__ = [
    "Template",
    "Subject",
    "Candidate",
    "IdentifyResult",
    "OpenSetCalibration",
    "EnrollReport",
    "EnrollFailure",
    "EnrolledTemplates",
    "MigrationReport",
    "GallerySettings",
    "NewTemplate",
    "ScoreStrategy",
    "STRATEGIES",
    "split_model_tag",
    "bbox_tuple",
]

ScoreStrategy = Literal["max", "mean", "quality-mean"]
#: a subject's score: the max or the mean of its templates' scores, or that mean weighted by
#: each template's stored quality (:func:`faceprint.gallery.ranking.template_weights`)
STRATEGIES: tuple[str, ...] = ("max", "mean", "quality-mean")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def split_model_tag(tag: str) -> tuple[str, str]:
    """``"model_id@version"`` → ``("model_id", "version")``."""
    model_id, sep, version = tag.rpartition("@")
    return (model_id, version) if sep else (tag, "")


@dataclass(frozen=True, slots=True)
class Template:
    """One enrolled face: an embedding and where it came from.

    ``created``/``updated`` are Unix times (seconds, UTC). ``source`` is the stored copy of the
    source image, relative to the gallery's image folder (``None`` unless the gallery keeps
    source images). ``vector`` (float32, (D,)) is filled only when asked for.
    """

    id: int
    subject: str
    model: str
    image_sha256: str | None = None
    bbox: BBox | None = None
    quality: float | None = None
    created: float = 0.0
    updated: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    vector: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)

    @property
    def embedding(self) -> Embedding:
        """The template as an :class:`Embedding` (needs ``vector``: read it with ``with_vectors=True``)."""
        if self.vector is None:
            raise ConfigurationError("this template was read without its vector; pass with_vectors=True")
        model_id, version = split_model_tag(self.model)
        return Embedding(self.vector, model_id, version)

    def to_dict(self, *, with_vector: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "subject": self.subject,
            "model": self.model,
            "image_sha256": self.image_sha256,
            "bbox": None if self.bbox is None else [round(v, 2) for v in self.bbox.as_list()],
            "quality": self.quality,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
            "metadata": self.metadata,
            "source": self.source,
        }
        if with_vector and self.vector is not None:
            d["vector"] = [float(x) for x in self.vector]
        return d


@dataclass(frozen=True, slots=True)
class Subject:
    """An enrolled identity: a unique name, its templates count and free JSON metadata."""

    name: str
    id: int
    n_templates: int
    created: float
    updated: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "templates": self.n_templates,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A subject returned by :meth:`Gallery.identify`: its score, rank (1 = best) and best template."""

    subject: str
    score: float
    rank: int
    template_id: int
    n_templates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "subject": self.subject,
            "score": round(self.score, 6),
            "template_id": self.template_id,
            "templates_scored": self.n_templates,
        }


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """Outcome of one 1:N search.

    ``candidates`` holds at most ``k`` subjects whose score reached ``threshold``, best first;
    an empty list means *not enrolled* (open-set rejection). ``threshold_source`` says where the
    threshold came from (an FPIR calibration of this gallery, a caller's value, or a fallback).
    """

    candidates: list[Candidate]
    threshold: float
    threshold_source: str
    strategy: str
    model: str
    k: int

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def identified(self) -> bool:
        return bool(self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identified": self.identified,
            "candidates": [c.to_dict() for c in self.candidates],
            "threshold": _finite_or_none(self.threshold),
            "threshold_source": self.threshold_source,
            "strategy": self.strategy,
            "model": self.model,
            "k": self.k,
        }


@dataclass(frozen=True, slots=True)
class OpenSetCalibration:
    """An open-set threshold: the lowest score whose FPIR on the non-mated searches is ≤ ``fpir``."""

    threshold: float
    fpir: float
    measured_fpir: float
    n_nonmated: int
    n_subjects: int
    strategy: str
    calibrated_at: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibrated_at"] = _iso(self.calibrated_at)
        return d


class EnrollFailure(NamedTuple):
    """An input a bulk enrolment could not use: ``error`` is ``"<ExceptionType>: <message>"``,
    ``exception`` the exception itself (to act on its type, not on that text)."""

    subject: str
    image: str
    error: str
    exception: BaseException

    @classmethod
    def of(cls, subject: str, image: str, exc: BaseException) -> EnrollFailure:
        return cls(subject, image, f"{type(exc).__name__}: {exc}", exc)


@dataclass(frozen=True, slots=True)
class EnrollReport:
    """What a bulk enrolment did: templates added, subjects touched, and inputs that failed."""

    templates: int
    subjects: int
    failed: list[EnrollFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "templates": self.templates,
            "subjects": self.subjects,
            "failed": [{"subject": f.subject, "image": f.image, "error": f.error} for f in self.failed],
        }


class EnrolledTemplates(list[Template]):
    """What :meth:`Gallery.enroll` returns: the templates it added (a plain list of
    :class:`Template`, as always) and, in ``failed``, the images it did not enrol without raising:
    faces below the pipeline's ``min_quality`` (:class:`~faceprint.errors.LowQualityError`, a
    failure to enrol) and, with ``select="best"``, images without a usable face."""

    failed: list[EnrollFailure]

    def __init__(self, templates: Sequence[Template] = (), failed: Sequence[EnrollFailure] = ()) -> None:
        super().__init__(templates)
        self.failed = list(failed)

    @property
    def report(self) -> EnrollReport:
        """The same as an :class:`EnrollReport` (templates added, subjects touched, failures)."""
        return EnrollReport(len(self), len({t.subject for t in self}), list(self.failed))


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """Outcome of :meth:`Gallery.migrate`.

    ``applied`` is False when nothing was changed because some templates have no stored source
    image (``missing``) or their image gave no face with the new pipeline (``failed``); each
    entry is ``(subject, template_id, reason)``. With ``drop_unmigratable=True`` those templates
    are removed and the rest migrated.
    """

    applied: bool
    old_model: str | None
    new_model: str
    migrated: int
    missing: list[tuple[str, int, str]] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        def rows(xs: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
            return [{"subject": s, "template_id": t, "reason": r} for s, t, r in xs]

        return {
            "applied": self.applied,
            "old_model": self.old_model,
            "new_model": self.new_model,
            "migrated": self.migrated,
            "dropped": self.dropped,
            "missing": rows(self.missing),
            "failed": rows(self.failed),
        }


@dataclass(slots=True)
class GallerySettings:
    """What a gallery remembers about itself (stored inside it as JSON).

    ``model``/``dim`` are fixed by the first enrolment. ``keep_source_images`` is fixed at
    creation. ``pipeline`` holds the backend names and options of the pipeline used to enrol
    images, so a gallery can rebuild it. ``calibration`` is the stored open-set threshold.
    ``index`` is the vector index spec, one string in faiss ``index_factory`` style (see
    :mod:`faceprint.gallery.spec`); ``""`` means the backend's default. Galleries written by
    faceprint 0.1 stored a dict of four settings here; it is read as the equivalent spec.
    """

    model: str | None = None
    dim: int | None = None
    keep_source_images: bool = False
    strategy: str = "max"
    pipeline: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    index: str = ""
    created: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GallerySettings:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: v for k, v in d.items() if k in known}
        if isinstance(values.get("index"), Mapping):  # faceprint 0.1: four loose settings
            values["index"] = str(legacy_spec(values["index"]))
        s = cls(**values)
        s.extra = {k: v for k, v in d.items() if k not in known}
        return s


@dataclass(slots=True)
class NewTemplate:
    """A template about to be written (internal: backends receive lists of these)."""

    subject: str
    vector: npt.NDArray[np.float32]
    model: str
    image_sha256: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    quality: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    created: float = 0.0


def bbox_tuple(b: BBox | Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """A bbox as ``(x1, y1, x2, y2)`` floats (ConfigurationError unless 4 numbers)."""
    if b is None:
        return None
    vals = b.as_list() if isinstance(b, BBox) else [float(v) for v in b]
    if len(vals) != 4:
        raise ConfigurationError(f"a bbox has 4 numbers (x1, y1, x2, y2), got {vals}")
    return (float(vals[0]), float(vals[1]), float(vals[2]), float(vals[3]))
