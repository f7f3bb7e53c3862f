"""The gallery API: subjects with templates, 1:N identification, 1:1 verification against a claim.

A :class:`Gallery` stores *subjects* (a unique name + free JSON metadata), each with any number
of *templates* (one embedding of one face, with the sha256 of its source image, its bbox, an
optional quality, timestamps and free JSON metadata). Every template carries the tag of the
model that made it (``model_id@model_version``); a gallery holds one model only, and
enrolling or searching with another raises :class:`~faceprint.errors.EmbeddingMismatchError`.

Searching follows faiss: :meth:`Gallery.search` returns ``(D, I)`` — scores and template ids,
``-1`` where fewer than ``k`` templates exist. :meth:`Gallery.identify` works at subject level:
a subject's score is the ``max`` or the ``mean`` of its templates' cosine similarities to the
probe, and a candidate is returned only when its score reaches the gallery's *open-set
threshold*, calibrated for a stated false-positive identification rate (FPIR) with
:meth:`Gallery.calibrate` (see :func:`fpir_threshold`).

This module holds the logic shared by every backend; a backend (:mod:`.sqlite`, :mod:`.milvus`)
implements the storage primitives (the ``_``-prefixed abstract methods).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    FaceprintError,
    GalleryError,
    InvalidEmbeddingError,
    NoFaceError,
    SubjectNotFoundError,
)
from ..types import BBox, Decision, Embedding

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline
    from ..types import Face

__all__ = [
    "Gallery",
    "GallerySettings",
    "Template",
    "Subject",
    "Candidate",
    "IdentifyResult",
    "OpenSetCalibration",
    "EnrollReport",
    "MigrationReport",
    "ScoreStrategy",
    "fpir_threshold",
    "open_set_rates",
    "EXPORT_FORMAT",
]

log = logging.getLogger(__name__)

ScoreStrategy = Literal["max", "mean"]
STRATEGIES: tuple[str, ...] = ("max", "mean")
ProgressHook = Callable[[int, int | None], None]

#: ``format`` field of an exported gallery file.
EXPORT_FORMAT = "faceprint-gallery-export"
EXPORT_VERSION = 1

#: Templates per enrolment transaction in the bulk methods.
DEFAULT_BATCH = 10_000


# --- values --------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class EnrollReport:
    """What a bulk enrolment did: templates added, subjects touched, and inputs that failed."""

    templates: int
    subjects: int
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (subject, source, error)

    def to_dict(self) -> dict[str, Any]:
        return {
            "templates": self.templates,
            "subjects": self.subjects,
            "failed": [{"subject": s, "image": src, "error": e} for s, src, e in self.failed],
        }


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
    ``index`` holds backend index options (sqlite: ``exact_limit``, ``nprobe``, ``nlist``).
    """

    model: str | None = None
    dim: int | None = None
    keep_source_images: bool = False
    strategy: str = "max"
    pipeline: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    index: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GallerySettings:
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        s = cls(**{k: v for k, v in d.items() if k in known})
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


# --- open-set thresholds --------------------------------------------------------------------


def fpir_threshold(nonmated_top_scores: npt.ArrayLike, fpir: float) -> float:
    """Open-set threshold for a target false-positive identification rate.

    ``nonmated_top_scores`` are the best subject scores of searches whose true identity is not
    enrolled (one per search). FPIR(t) is the share of them with a score ≥ t; the result is the
    lowest threshold with FPIR ≤ ``fpir`` (same estimator as
    :func:`faceprint.scoring.threshold_at_fmr`, with the same warning when there are fewer than
    about ``3 / fpir`` searches). FPIR grows with the gallery size: recalibrate after the
    gallery grows a lot.
    """
    from ..scoring import threshold_at_fmr

    if not 0.0 <= fpir < 1.0:
        raise ConfigurationError(f"target FPIR must be in [0, 1), got {fpir}")
    return threshold_at_fmr(nonmated_top_scores, fpir)


def open_set_rates(
    mated_scores: npt.ArrayLike, nonmated_top_scores: npt.ArrayLike, threshold: float
) -> tuple[float, float]:
    """(FPIR, FNIR) at ``threshold`` (ISO/IEC 19795-1, rank 1).

    ``mated_scores``: for each search whose identity is enrolled, the score of the true subject
    when it came first, ``-inf`` (or NaN) when another subject came first — such a search is a
    miss at rank 1 whatever the threshold. ``nonmated_top_scores``: the best score of each search
    whose identity is not enrolled.
    """
    m = np.nan_to_num(np.asarray(mated_scores, dtype=np.float64).ravel(), nan=-np.inf)
    n = np.asarray(nonmated_top_scores, dtype=np.float64).ravel()
    if m.size == 0 or n.size == 0:
        raise ConfigurationError("open_set_rates needs at least one mated and one non-mated search")
    return float(np.mean(n >= threshold)), float(np.mean(~(m >= threshold)))


# --- helpers ---------------------------------------------------------------------------------


def _as_matrix(x: npt.ArrayLike, dim: int | None) -> npt.NDArray[np.float32]:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise InvalidEmbeddingError(f"expected query vectors of shape (N, D), got {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise EmbeddingMismatchError(f"query vectors have dimension {a.shape[1]}; this gallery holds {dim}-D templates")
    if not np.all(np.isfinite(a)):
        raise InvalidEmbeddingError("query vectors contain NaN or infinite values")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(n == 0):
        raise InvalidEmbeddingError("a query vector has zero norm")
    return np.ascontiguousarray(a / n, dtype=np.float32)


def _is_single_source(x: object) -> bool:
    return isinstance(x, (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray)) or hasattr(x, "read")


def _source_bytes(src: ImageSource) -> tuple[bytes | None, str, str]:
    """(encoded bytes or None when unreadable here, label, file suffix) of an image source."""
    from ..io import describe_source

    label = describe_source(src)
    if isinstance(src, (str, os.PathLike)):
        p = Path(os.fsdecode(os.fspath(src)))
        try:
            return p.read_bytes(), label, p.suffix.lower() or ".img"
        except OSError:
            return None, label, ""  # the loader reports it with the library's own error
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), label, _suffix_of(bytes(src))
    if isinstance(src, np.ndarray) or type(src).__module__.startswith("PIL"):
        from PIL import Image

        from ..io import load_image

        buf = io.BytesIO()
        Image.fromarray(load_image(src)).save(buf, format="PNG")
        return buf.getvalue(), label, ".png"
    if hasattr(src, "read"):
        data = src.read()  # type: ignore[union-attr]
        return bytes(data), label, _suffix_of(bytes(data))
    return None, label, ""


def _suffix_of(data: bytes) -> str:
    try:
        from ..io import read_image_header

        fmt = read_image_header(data)[0].lower()
    except Exception:
        return ".img"
    return {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, f".{fmt}")


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _model_tag_of(pipeline: FacePipeline) -> str:
    e = pipeline.embedder
    return f"{e.model_id}@{e.model_version}"


def pipeline_settings(pipeline: FacePipeline) -> dict[str, Any] | None:
    """Backend names and options that rebuild ``pipeline`` (None for custom detector/embedder objects)."""
    det = getattr(pipeline, "detector_spec", None)
    emb = getattr(pipeline, "embedder_spec", None)
    if not isinstance(det, str) or not isinstance(emb, str):
        return None
    return {
        "detector": det,
        "embedder": emb,
        "detector_options": dict(pipeline.detector_options),
        "embedder_options": dict(pipeline.embedder_options),
        "max_pixels": pipeline.max_pixels,
    }


# --- the API ---------------------------------------------------------------------------------


class Gallery(ABC):
    """A persistent 1:N gallery. Open one with :func:`faceprint.gallery.open_gallery`.

    Use it as a context manager, or call :meth:`close`. Methods are safe to call from several
    threads (they take the gallery's lock); for parallel searches open one gallery per thread
    or process — readers never block the writer.
    """

    #: backend name: ``"sqlite"`` or ``"milvus"``
    backend: str = ""
    #: where the gallery lives (a folder, a file or a server URI)
    location: str = ""

    def __init__(self) -> None:
        self._settings = GallerySettings()
        self._pipeline: FacePipeline | None = None
        self._warned_fallback = False

    # ----- storage primitives every backend implements -----------------------------------

    @abstractmethod
    def _write_settings(self, settings: GallerySettings) -> None:
        """Persist ``settings`` (atomically)."""

    @abstractmethod
    def _insert(self, rows: Sequence[NewTemplate], subject_metadata: Mapping[str, Mapping[str, Any]]) -> list[int]:
        """Write ``rows`` (creating missing subjects) in one transaction; return their template ids.

        Must also persist ``self._settings`` when the first enrolment fixed ``model``/``dim``.
        """

    @abstractmethod
    def search(self, x: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Template-level search, faiss style.

        Args:
            x: float32 (N, D) query vectors (L2-normalised here), or one (D,) vector.
            k: results per query.

        Returns:
            ``(D, I)``: cosine scores float32 (N, k), best first, and template ids int64 (N, k);
            ``-1`` ids (and ``-inf`` scores) where the gallery has fewer than ``k`` templates.
        """

    @abstractmethod
    def _template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """template id → (subject id, subject name), for the ids that exist."""

    @abstractmethod
    def _subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """subject id → (template ids, float32 (m, D) vectors)."""

    @abstractmethod
    def _find_subject(self, name: str) -> Subject | None:
        """The subject called ``name``, or None."""

    @abstractmethod
    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        """Subjects sorted by name: all of them, or ``limit`` of them after skipping ``offset``."""

    @abstractmethod
    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        """Templates of one subject (or of all, streamed), by id."""

    @abstractmethod
    def _delete(self, subject: str | None, template_ids: Sequence[int] | None) -> list[str]:
        """Delete a subject with its templates, or some templates; return the ``source`` of each
        deleted template that had one. Raises SubjectNotFoundError for an unknown subject."""

    @abstractmethod
    def _sources_in_use(self, sources: Sequence[str]) -> set[str]:
        """Which of these stored source images some template still refers to."""

    @abstractmethod
    def rename(self, old: str, new: str) -> None:
        """Rename a subject (its templates follow). Raises SubjectExistsError if ``new`` exists."""

    @abstractmethod
    def _replace_vectors(
        self, vectors: Mapping[int, npt.NDArray[np.float32]], drop: Sequence[int], settings: GallerySettings
    ) -> None:
        """Migration: set the vector of each template in ``vectors``, delete those in ``drop`` and
        store ``settings`` (new model/dim) — as one change, then rebuild any index."""

    @abstractmethod
    def _counts(self) -> tuple[int, int]:
        """(subjects, templates)."""

    def _size_hint(self) -> tuple[int, int]:
        """(subjects, templates) for sizing searches; may be slightly stale (backends with costly counts)."""
        return self._counts()

    @abstractmethod
    def _backend_stats(self) -> dict[str, Any]:
        """Backend-specific figures for :meth:`stats` (index kind, sizes on disk…)."""

    @abstractmethod
    def _image_dir(self) -> Path | None:
        """Folder holding stored source images (None when there is none)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the gallery."""

    # ----- context manager ----------------------------------------------------------------

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Number of subjects."""
        return self._counts()[0]

    def __contains__(self, subject: object) -> bool:
        return isinstance(subject, str) and self._find_subject(subject) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location!r}>"

    # ----- settings -------------------------------------------------------------------------

    @property
    def settings(self) -> GallerySettings:
        """A copy of the stored settings (change them with :meth:`configure`)."""
        return GallerySettings.from_dict(json.loads(json.dumps(self._settings.to_dict())))

    @property
    def model(self) -> str | None:
        """The model tag of every template (None until the first enrolment)."""
        return self._settings.model

    @property
    def dim(self) -> int | None:
        return self._settings.dim

    def configure(
        self,
        *,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
        index: Mapping[str, Any] | None = None,
    ) -> GallerySettings:
        """Change stored defaults: the subject scoring ``strategy``, the ``pipeline`` used to
        enrol images (must make the gallery's model), or backend ``index`` options."""
        s = self.settings
        if strategy is not None:
            s.strategy = self._check_strategy(strategy)
        if pipeline is not None:
            self._check_model_tag(_model_tag_of(pipeline), pipeline.embedder.dim, what="this pipeline's embedder")
            s.pipeline = pipeline_settings(pipeline)
            self._pipeline = pipeline
        if index is not None:
            s.index = {**s.index, **dict(index)}
        self._write_settings(s)
        self._settings = s
        return self.settings

    @staticmethod
    def _check_strategy(strategy: str) -> str:
        if strategy not in STRATEGIES:
            raise ConfigurationError(f"unknown scoring strategy {strategy!r}; use 'max' or 'mean'")
        return strategy

    def _check_model_tag(self, model: str, dim: int | None, *, what: str) -> None:
        s = self._settings
        if s.model is None:
            return
        if model != s.model:
            raise EmbeddingMismatchError(
                f"gallery {self.location} holds templates of {s.model}, but {what} comes from {model}: "
                "use the gallery's model (its stored pipeline is used when you pass none), or re-embed "
                "the gallery with gallery.migrate(new_pipeline) / `faceprint gallery migrate`"
            )
        if dim is not None and s.dim is not None and dim != s.dim:
            raise EmbeddingMismatchError(f"gallery {self.location} holds {s.dim}-D templates; got a {dim}-D {what}")

    def _fix_model(self, model: str, dim: int) -> None:
        """Check the model of new templates; the first enrolment fixes the gallery's model."""
        self._check_model_tag(model, dim, what="the new template")
        if self._settings.model is None:
            self._settings.model = model
            self._settings.dim = dim

    # ----- enrolment -------------------------------------------------------------------------

    def enroll_embeddings(
        self,
        subject: str,
        embeddings: Embedding | Sequence[Embedding],
        *,
        image_sha256: Sequence[str | None] | None = None,
        bboxes: Sequence[BBox | Sequence[float] | None] | None = None,
        qualities: Sequence[float | None] | None = None,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        subject_metadata: Mapping[str, Any] | None = None,
    ) -> list[Template]:
        """Add precomputed embeddings as templates of ``subject`` (created if new), in one transaction.

        Per-template lists (``image_sha256``, ``bboxes``, ``qualities``, ``metadata``) must have
        one entry per embedding; ``metadata`` may also be one mapping for all.
        ``subject_metadata`` is merged into the subject's metadata.
        """
        embs = [embeddings] if isinstance(embeddings, Embedding) else list(embeddings)
        if not embs:
            raise ConfigurationError("no embeddings to enrol")
        n = len(embs)

        def per(name: str, xs: Sequence[Any] | None) -> list[Any]:
            if xs is None:
                return [None] * n
            if len(xs) != n:
                raise ConfigurationError(f"{name} has {len(xs)} entries for {n} embeddings")
            return list(xs)

        shas, boxes, quals = per("image_sha256", image_sha256), per("bboxes", bboxes), per("qualities", qualities)
        mds = (
            [dict(metadata or {})] * n
            if metadata is None or isinstance(metadata, Mapping)
            else per("metadata", metadata)
        )
        now = time.time()
        rows = [
            NewTemplate(
                subject=self._check_name(subject),
                vector=e.vector,
                model=e.model,
                image_sha256=sha,
                bbox=_bbox_tuple(b),
                quality=None if q is None else float(q),
                metadata=dict(md or {}),
                created=now,
            )
            for e, sha, b, q, md in zip(embs, shas, boxes, quals, mds, strict=True)
        ]
        return self._commit(rows, {subject: dict(subject_metadata or {})})

    def enroll(
        self,
        subject: str,
        images: ImageSource | Sequence[ImageSource],
        *,
        pipeline: FacePipeline | None = None,
        select: Literal["largest", "central"] = "largest",
        quality: float | Sequence[float | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject_metadata: Mapping[str, Any] | None = None,
    ) -> list[Template]:
        """Enrol the main face of each image as a template of ``subject``, in one transaction.

        ``pipeline`` defaults to the one the gallery was built with (its stored settings), or the
        default :class:`~faceprint.FacePipeline` for a new gallery. Raises
        :class:`~faceprint.errors.NoFaceError` (nothing is written) when an image has no face.
        Each template's metadata records the image's name under ``"image"``.
        """
        pipe = self._image_pipeline(pipeline)
        srcs: list[Any] = [images] if _is_single_source(images) else list(images)  # type: ignore[arg-type]
        if not srcs:
            raise ConfigurationError("no images to enrol")
        quals = [quality] * len(srcs) if quality is None or isinstance(quality, (int, float)) else list(quality)
        if len(quals) != len(srcs):
            raise ConfigurationError(f"quality has {len(quals)} entries for {len(srcs)} images")
        rows = []
        for src, q in zip(srcs, quals, strict=True):
            data, label, suffix = _source_bytes(src)
            face = pipe.embed_one(data if data is not None else src, select=select)
            rows.append(self._row_from_face(subject, face, data, label, suffix, q, metadata))
        return self._commit(rows, {subject: dict(subject_metadata or {})})

    def enroll_images(
        self,
        items: Iterable[tuple[str, ImageSource]],
        *,
        pipeline: FacePipeline | None = None,
        select: Literal["largest", "central"] = "largest",
        workers: int | None = 1,
        batch_size: int = 256,
        progress: ProgressHook | None = None,
        total: int | None = None,
    ) -> EnrollReport:
        """Bulk-enrol ``(subject, image)`` pairs: embedded with ``pipeline.embed_many`` (``workers``
        processes), written one transaction per ``batch_size`` images. Images that fail or show no
        face are reported in the result, not raised."""
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        pipe = self._image_pipeline(pipeline)
        failed: list[tuple[str, str, str]] = []
        added = 0
        touched: set[str] = set()
        pending: deque[tuple[str, bytes | None, str, str]] = deque()

        def inputs() -> Iterator[ImageSource]:
            for subj, src in items:
                data, label, suffix = _source_bytes(src)
                pending.append((self._check_name(subj), data, label, suffix))
                yield data if data is not None else src

        rows: list[NewTemplate] = []

        def flush() -> None:
            nonlocal added, rows
            if rows:
                self._commit(rows, {}, want_templates=False)
                added += len(rows)
                touched.update(r.subject for r in rows)
                rows = []

        for res in pipe.embed_many(inputs(), select=select, workers=workers, progress=progress, total=total):
            subj, data, label, suffix = pending.popleft()
            if res.error is not None or not res.faces:
                err = res.error if res.error is not None else NoFaceError(f"no face found in {label}")
                failed.append((subj, label, f"{type(err).__name__}: {err}"))
            else:
                rows.append(self._row_from_face(subj, res.faces[0], data, label, suffix, None, None))
            if len(rows) >= batch_size:
                flush()
        flush()
        return EnrollReport(added, len(touched), failed)

    def enroll_many(
        self,
        subjects: Sequence[str],
        embeddings: Sequence[Embedding] | npt.ArrayLike,
        *,
        model: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        progress: ProgressHook | None = None,
    ) -> int:
        """Bulk-enrol one template per row: ``subjects[i]`` gets ``embeddings[i]``.

        ``embeddings`` is a sequence of :class:`Embedding` or a float32 (N, D) array, in which case
        ``model`` (the ``model_id@version`` tag of the vectors) is required. Rows are written one
        transaction per ``batch_size``; returns the number of templates added.
        """
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        if isinstance(embeddings, np.ndarray) or (
            not isinstance(embeddings, Sequence) or (len(embeddings) and not isinstance(embeddings[0], Embedding))
        ):
            if not model:
                raise ConfigurationError(
                    "enrolling raw vectors needs model='model_id@version' (the tag of their embedder)"
                )
            mat = _as_matrix(embeddings, None)  # type: ignore[arg-type]
            models = None
        else:
            embs = list(embeddings)  # type: ignore[arg-type]
            mat = np.stack([e.vector for e in embs]) if embs else np.zeros((0, 1), np.float32)
            models = [e.model for e in embs]
        if len(subjects) != mat.shape[0]:
            raise ConfigurationError(f"{len(subjects)} subjects for {mat.shape[0]} embeddings")
        n = mat.shape[0]
        now = time.time()
        added = 0
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            rows = [
                NewTemplate(
                    subjects[i],
                    mat[i],
                    model if models is None else models[i],  # type: ignore[arg-type]
                    created=now,
                )
                for i in range(start, stop)
            ]
            self._commit(rows, {}, check_names=True, want_templates=False)
            added += stop - start
            if progress:
                progress(added, n)
        return added

    def _row_from_face(
        self,
        subject: str,
        face: Face,
        data: bytes | None,
        label: str,
        suffix: str,
        quality: float | None,
        metadata: Mapping[str, Any] | None,
    ) -> NewTemplate:
        if face.embedding is None:  # pragma: no cover - the pipeline always embeds
            raise FaceprintError(f"the pipeline returned no embedding for {label}")
        sha = hashlib.sha256(data).hexdigest() if data is not None else None
        source = None
        if self._settings.keep_source_images and data is not None and sha is not None:
            source = self._store_image(data, sha, suffix)
        md = {"image": label, **dict(metadata or {})}
        return NewTemplate(
            subject=self._check_name(subject),
            vector=face.embedding.vector,
            model=face.embedding.model,
            image_sha256=sha,
            bbox=_bbox_tuple(face.detection.bbox),
            quality=None if quality is None else float(quality),
            metadata=md,
            source=source,
            created=time.time(),
        )

    def _commit(
        self,
        rows: Sequence[NewTemplate],
        subject_metadata: Mapping[str, Mapping[str, Any]],
        *,
        check_names: bool = False,
        want_templates: bool = True,
    ) -> list[Template]:
        if not rows:
            return []
        models = {r.model for r in rows}
        if len(models) > 1:
            raise EmbeddingMismatchError(f"one enrolment mixes embeddings of several models: {sorted(models)}")
        dims = {int(r.vector.shape[0]) for r in rows}
        if len(dims) > 1:
            raise EmbeddingMismatchError(f"one enrolment mixes embedding dimensions {sorted(dims)}")
        if check_names:
            for name in {r.subject for r in rows}:
                self._check_name(name)
        self._fix_model(rows[0].model, dims.pop())
        ids = self._insert(rows, subject_metadata)
        if not want_templates:
            return []
        return [
            Template(
                id=i,
                subject=r.subject,
                model=r.model,
                image_sha256=r.image_sha256,
                bbox=None if r.bbox is None else BBox(*r.bbox),
                quality=r.quality,
                created=r.created,
                updated=r.created,
                metadata=r.metadata,
                source=r.source,
            )
            for i, r in zip(ids, rows, strict=True)
        ]

    @staticmethod
    def _check_name(name: object) -> str:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"a subject name must be a non-empty string, got {name!r}")
        if len(name) > 512:
            raise ConfigurationError(f"subject names are limited to 512 characters, got {len(name)}")
        return name

    # ----- source images ---------------------------------------------------------------------

    def _store_image(self, data: bytes, sha: str, suffix: str) -> str:
        root = self._image_dir()
        if root is None:
            raise ConfigurationError("this gallery has no image folder to keep source images in")
        rel = f"{sha[:2]}/{sha}{suffix or '.img'}"
        path = root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return rel

    def _forget_images(self, sources: Sequence[str]) -> None:
        """Delete stored images no template refers to any more (after a removal)."""
        root = self._image_dir()
        if root is None or not sources:
            return
        in_use = self._sources_in_use(sorted(set(sources)))
        for rel in set(sources) - in_use:
            (root / rel).unlink(missing_ok=True)

    def source_image_path(self, template: Template) -> Path | None:
        """Where the stored source image of ``template`` lies (None if it has none)."""
        root = self._image_dir()
        if root is None or template.source is None:
            return None
        return root / template.source

    # ----- pipelines ---------------------------------------------------------------------------

    def get_pipeline(self) -> FacePipeline:
        """The pipeline this gallery enrols and searches images with (built from its stored
        settings on first use, or the one given to ``open_gallery``)."""
        return self._image_pipeline(None)

    def _image_pipeline(self, pipeline: FacePipeline | None) -> FacePipeline:
        if pipeline is None:
            if self._pipeline is None:
                from ..pipeline import FacePipeline

                stored = self._settings.pipeline
                self._pipeline = FacePipeline(**stored) if stored else FacePipeline()
            pipeline = self._pipeline
        self._check_model_tag(_model_tag_of(pipeline), pipeline.embedder.dim, what="this pipeline's embedder")
        if self._settings.pipeline is None:
            stored_settings = pipeline_settings(pipeline)
            if stored_settings is not None:
                s = self.settings
                s.pipeline = stored_settings
                self._write_settings(s)
                self._settings = s
        return pipeline

    def _probe_matrix(self, probes: object, pipeline: FacePipeline | None = None) -> npt.NDArray[np.float32]:
        """Probes as an (N, D) matrix: Embeddings (model-checked), a float (N, D) array taken as
        vectors of the gallery's model, or images embedded with the gallery's pipeline."""
        if isinstance(probes, np.ndarray) and probes.dtype.kind == "f" and probes.ndim in (1, 2):
            return _as_matrix(probes, self._settings.dim)
        single = isinstance(probes, Embedding) or _is_single_source(probes)
        items: list[Any] = [probes] if single else list(probes)  # type: ignore[call-overload]
        if items and all(isinstance(p, Embedding) for p in items):
            for p in items:
                self._check_model_tag(p.model, p.dim, what="the probe")
            return np.stack([p.vector for p in items])
        if any(isinstance(p, Embedding) for p in items):
            raise ConfigurationError("probes mix Embeddings and images; pass one kind")
        pipe = self._image_pipeline(pipeline)
        vecs = []
        for src in items:
            emb = pipe.embed_one(src).embedding
            if emb is None:  # pragma: no cover - the pipeline always embeds
                raise FaceprintError(f"the pipeline returned no embedding for {src!r}")
            vecs.append(emb.vector)
        return np.stack(vecs) if vecs else np.zeros((0, self._settings.dim or 1), np.float32)

    # ----- identification ----------------------------------------------------------------------

    def identify(
        self,
        probe: Embedding | ImageSource,
        k: int = 5,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
    ) -> IdentifyResult:
        """Who is this? Up to ``k`` subjects whose score reaches the open-set threshold, best first.

        ``probe`` is an :class:`Embedding` or an image (its main face is embedded with
        ``pipeline`` or the gallery's stored pipeline). ``threshold`` defaults to the gallery's
        calibrated threshold (:meth:`calibrate`); pass ``-math.inf`` for a closed-set ranking.
        ``strategy`` (``"max"``/``"mean"`` of a subject's template scores) defaults to the
        gallery's setting.
        """
        probes: list[Any] = [probe]
        return self.identify_many(probes, k, threshold=threshold, strategy=strategy, pipeline=pipeline)[0]

    def identify_many(
        self,
        probes: Sequence[Embedding] | Sequence[ImageSource] | npt.ArrayLike,
        k: int = 5,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
    ) -> list[IdentifyResult]:
        """:meth:`identify` for several probes (one vectorised search). A float (N, D) array is
        taken as vectors of the gallery's model."""
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        strat = self._check_strategy(strategy or self._settings.strategy)
        x = self._probe_matrix(probes, pipeline)  # type: ignore[arg-type]
        thr, source = self._resolve_threshold(threshold)
        model = self._settings.model or ""
        if self._settings.model is None or x.shape[0] == 0:
            return [IdentifyResult([], thr, source, strat, model, k) for _ in range(x.shape[0])]
        ranked = self._rank_subjects(x, k, strat)
        out = []
        for cands in ranked:
            kept = [c for c in cands if c.score >= thr]
            out.append(IdentifyResult(kept, thr, source, strat, model, k))
        return out

    def _rank_subjects(self, x: npt.NDArray[np.float32], k: int, strategy: str) -> list[list[Candidate]]:
        """Top-k subjects per query row, scored by ``strategy`` (closed set, no threshold)."""
        n_subjects, n_templates = self._size_hint()
        if n_templates == 0:
            return [[] for _ in range(x.shape[0])]
        per_subject = max(1.0, n_templates / max(1, n_subjects))
        kk = min(n_templates, max(4 * k, int(math.ceil(2 * per_subject * k)), 16))
        while True:
            d, ids = self.search(x, kk)
            owners = self._template_owners(sorted({int(i) for i in ids.ravel() if i >= 0}))
            short = False
            results: list[list[Candidate]] = []
            for row in range(x.shape[0]):
                best: dict[int, tuple[float, int, int, str]] = {}  # sid -> (score, tid, count, name)
                for score, tid in zip(d[row], ids[row], strict=True):
                    if tid < 0 or int(tid) not in owners:
                        continue
                    sid, name = owners[int(tid)]
                    if sid in best:
                        s0, t0, c0, _ = best[sid]
                        best[sid] = (s0, t0, c0 + 1, name) if s0 >= score else (float(score), int(tid), c0 + 1, name)
                    else:
                        best[sid] = (float(score), int(tid), 1, name)
                if len(best) < k and kk < n_templates:
                    short = True
                results.append(self._score_row(x[row], best, k, strategy))
            if not short or kk >= n_templates:
                return results
            kk = min(n_templates, kk * 4)

    def _score_row(
        self, q: npt.NDArray[np.float32], hits: dict[int, tuple[float, int, int, str]], k: int, strategy: str
    ) -> list[Candidate]:
        if strategy == "mean" and hits:
            vecs = self._subject_vectors(list(hits))
            scored = []
            for sid, (_best, _tid, _c, name) in hits.items():
                tids, v = vecs.get(sid, (np.zeros(0, np.int64), np.zeros((0, q.shape[0]), np.float32)))
                if v.shape[0] == 0:
                    continue
                s = v @ q
                scored.append((float(np.mean(s)), int(tids[int(np.argmax(s))]), int(v.shape[0]), name))
        else:
            scored = [(s, tid, c, name) for s, tid, c, name in hits.values()]
        scored.sort(key=lambda r: (-r[0], r[3]))
        return [
            Candidate(name, max(-1.0, min(1.0, float(s))), i + 1, tid, c)
            for i, (s, tid, c, name) in enumerate(scored[:k])
        ]

    def _resolve_threshold(self, threshold: float | None) -> tuple[float, str]:
        if threshold is not None:
            t = float(threshold)
            if math.isnan(t):
                raise ConfigurationError("threshold is NaN")
            return t, "explicit" if math.isfinite(t) else "none (closed-set ranking)"
        cal = self._settings.calibration
        if cal:
            n_now = self._counts()[0]
            if cal.get("n_subjects") and n_now > 2 * int(cal["n_subjects"]):
                log.warning(
                    "the open-set threshold was calibrated with %s subjects; the gallery now has %d, so its "
                    "FPIR is higher than %g: recalibrate with gallery.calibrate(...)",
                    cal["n_subjects"],
                    n_now,
                    cal["fpir"],
                )
            return float(cal["threshold"]), (
                f"calibrated: FPIR={cal['fpir']:g} on {cal['n_nonmated']} non-mated searches "
                f"against {cal['n_subjects']} subjects ({cal['strategy']})"
            )
        point = self._model_operating_point("fmr=0.001")
        if point is not None:
            if not self._warned_fallback:
                log.warning(
                    "gallery %s has no calibrated open-set threshold; using the 1:1 threshold of %s at FMR=1e-3. "
                    "FPIR is roughly FMR × number of subjects: calibrate with "
                    "gallery.calibrate(nonmated_probes, fpir=…)",
                    self.location,
                    self._settings.model,
                )
                self._warned_fallback = True
            return (
                point.threshold,
                f"not calibrated: 1:1 operating point fmr=0.001 of {split_model_tag(self._settings.model or '')[0]}",
            )
        if self._settings.model is None:
            return math.inf, "empty gallery"
        raise ConfigurationError(
            f"gallery {self.location} has no open-set threshold and model {self._settings.model} has no stored "
            "operating point: calibrate it with gallery.calibrate(nonmated_probes, fpir=0.01) "
            "(`faceprint gallery calibrate`) or pass threshold="
        )

    def _model_operating_point(self, name: str) -> Any:
        if self._settings.model is None:
            return None
        from ..errors import ModelError
        from ..models import get_spec

        try:
            return get_spec(split_model_tag(self._settings.model)[0]).operating_points.get(name)
        except (ModelError, LookupError):
            return None

    # ----- open-set calibration ------------------------------------------------------------------

    def calibrate(
        self,
        nonmated: Sequence[Embedding] | npt.ArrayLike,
        fpir: float = 0.01,
        *,
        strategy: ScoreStrategy | None = None,
        store: bool = True,
    ) -> OpenSetCalibration:
        """Set the open-set threshold for a target FPIR from searches of people *not* enrolled.

        Each non-mated probe is searched (closed set); the threshold is :func:`fpir_threshold`
        of their best subject scores. With ``store`` the threshold becomes the gallery's default
        for :meth:`identify`. Calibrate on probes like the real ones (same capture conditions),
        and again when the gallery has grown: FPIR rises with the number of subjects.
        """
        strat = self._check_strategy(strategy or self._settings.strategy)
        x = self._probe_matrix(nonmated)  # type: ignore[arg-type]
        if self._counts()[1] == 0:
            raise ConfigurationError("calibrate needs an enrolled gallery: enrol subjects first")
        ranked = self._rank_subjects(x, 1, strat)
        top = np.array([c[0].score if c else -1.0 for c in ranked], dtype=np.float64)
        t = fpir_threshold(top, fpir)
        cal = OpenSetCalibration(
            threshold=t,
            fpir=float(fpir),
            measured_fpir=float(np.mean(top >= t)),
            n_nonmated=int(top.size),
            n_subjects=self._counts()[0],
            strategy=strat,
            calibrated_at=time.time(),
        )
        if store:
            s = self.settings
            s.calibration = asdict(cal)
            if strat != s.strategy:
                s.strategy = strat  # the threshold is only valid for the strategy it was measured with
            self._write_settings(s)
            self._settings = s
        return cal

    # ----- verification --------------------------------------------------------------------------

    def verify(
        self,
        probe: Embedding | ImageSource,
        subject: str,
        *,
        threshold: float | None = None,
        strategy: ScoreStrategy | None = None,
        pipeline: FacePipeline | None = None,
    ) -> Decision:
        """1:1: is ``probe`` the enrolled ``subject``? The score is the ``max``/``mean`` cosine over
        the subject's templates; the threshold defaults to the model's calibrated 1:1 operating
        point at FMR = 1e-3."""
        strat = self._check_strategy(strategy or self._settings.strategy)
        subj = self._find_subject(subject)
        if subj is None:
            raise SubjectNotFoundError(
                f"no subject {subject!r} in gallery {self.location}: see `faceprint gallery list`"
            )
        x = self._probe_matrix(probe, pipeline)[0]  # type: ignore[arg-type]
        _tids, v = self._subject_vectors([subj.id]).get(subj.id, (None, np.zeros((0, x.shape[0]), np.float32)))
        if v.shape[0] == 0:
            raise SubjectNotFoundError(f"subject {subject!r} has no templates")
        s = v @ x
        score = float(np.clip(np.max(s) if strat == "max" else np.mean(s), -1.0, 1.0))
        if threshold is not None:
            thr, name, fmr = float(threshold), "custom", float("nan")
        else:
            point = self._model_operating_point("fmr=0.001")
            if point is None:
                raise ConfigurationError(
                    f"model {self._settings.model} has no calibrated 1:1 operating point: pass threshold="
                )
            thr, name, fmr = point.threshold, point.name, point.fmr
        return Decision(
            score=score,
            threshold=thr,
            operating_point=name,
            fmr=fmr,
            match=score >= thr,
            model=self._settings.model or "",
        )

    # ----- management ---------------------------------------------------------------------------

    def subject(self, name: str) -> Subject:
        """The subject called ``name`` (SubjectNotFoundError if none)."""
        s = self._find_subject(name)
        if s is None:
            raise SubjectNotFoundError(f"no subject {name!r} in gallery {self.location}: see `faceprint gallery list`")
        return s

    def remove(self, subject: str) -> int:
        """Remove a subject, its templates and their stored source images; returns templates removed."""
        n = self.subject(subject).n_templates
        sources = self._delete(subject, None)
        self._forget_images(sources)
        return n

    def remove_templates(self, template_ids: Sequence[int]) -> int:
        """Remove some templates (a subject left with none stays, with its metadata)."""
        ids = [int(i) for i in template_ids]
        if not ids:
            return 0
        before = self._counts()[1]
        sources = self._delete(None, ids)
        self._forget_images(sources)
        return before - self._counts()[1]

    def stats(self) -> dict[str, Any]:
        """Sizes, model, strategy, calibration and backend figures."""
        n_sub, n_tpl = self._counts()
        s = self._settings
        return {
            "backend": self.backend,
            "location": self.location,
            "subjects": n_sub,
            "templates": n_tpl,
            "model": s.model,
            "dim": s.dim,
            "strategy": s.strategy,
            "keep_source_images": s.keep_source_images,
            "calibration": None
            if not s.calibration
            else {**s.calibration, "calibrated_at": _iso(s.calibration.get("calibrated_at"))},
            "pipeline": s.pipeline,
            **self._backend_stats(),
        }

    # ----- export / import --------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the whole gallery to one portable ``.npz`` file (numpy only, no pickle).

        The file holds ``vectors`` (float32 (N, D)), ``template_ids`` and a JSON ``manifest`` with
        the settings, every subject and every template's fields. Source images are not included.
        """
        p = Path(path)
        if p.suffix.lower() != ".npz":
            raise ConfigurationError(f"export writes an .npz file; got {p.name!r}")
        if not p.parent.exists():
            raise ConfigurationError(f"output folder {p.parent} does not exist")
        dim = self._settings.dim or 0
        tpl_rows: list[dict[str, Any]] = []
        vec_chunks: list[npt.NDArray[np.float32]] = []
        ids: list[int] = []
        chunk: list[npt.NDArray[np.float32]] = []
        for t in self.templates(with_vectors=True):
            d = t.to_dict()
            d["created"], d["updated"] = t.created, t.updated
            tpl_rows.append(d)
            ids.append(t.id)
            assert t.vector is not None
            chunk.append(t.vector)
            if len(chunk) >= 65536:
                vec_chunks.append(np.stack(chunk))
                chunk = []
        if chunk:
            vec_chunks.append(np.stack(chunk))
        vectors = np.concatenate(vec_chunks) if vec_chunks else np.zeros((0, dim), np.float32)
        subjects = [
            {"name": s.name, "metadata": s.metadata, "created": s.created, "updated": s.updated}
            for s in self.subjects()
        ]
        manifest = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": _iso(time.time()),
            "source": {"backend": self.backend, "location": self.location},
            "settings": self._settings.to_dict(),
            "subjects": subjects,
            "templates": tpl_rows,
        }
        fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix=".npz", dir=p.parent)
        os.close(fd)
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f, vectors=vectors, template_ids=np.asarray(ids, np.int64), manifest=np.array(json.dumps(manifest))
                )
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return {"output": str(p), "subjects": len(subjects), "templates": len(ids), "model": self._settings.model}

    def import_from(self, path: str | os.PathLike[str], *, batch_size: int = DEFAULT_BATCH) -> dict[str, Any]:
        """Add every subject and template of an exported file (merged into same-named subjects).

        An empty gallery also takes over the exported strategy, pipeline and calibration.
        Templates get new ids; their old ids are kept in their metadata as ``"imported_id"``.
        """
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                manifest = json.loads(str(z["manifest"]))
                vectors = np.asarray(z["vectors"], np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise GalleryError(f"{p} is not a faceprint gallery export: {exc}") from exc
        if manifest.get("format") != EXPORT_FORMAT or int(manifest.get("version", 0)) > EXPORT_VERSION:
            raise GalleryError(f"{p} is not a faceprint gallery export of a version this faceprint reads")
        exported = GallerySettings.from_dict(manifest["settings"])
        tpls = manifest["templates"]
        if len(tpls) != vectors.shape[0]:
            raise GalleryError(f"{p} is inconsistent: {len(tpls)} templates for {vectors.shape[0]} vectors")
        if exported.model is not None:
            self._check_model_tag(exported.model, exported.dim, what=f"the export {p.name}")
        was_empty = self._counts()[1] == 0 and self._settings.model is None
        sub_md = {s["name"]: s.get("metadata") or {} for s in manifest["subjects"]}
        added = 0
        for start in range(0, len(tpls), batch_size):
            rows = []
            for t, v in zip(tpls[start : start + batch_size], vectors[start : start + batch_size], strict=True):
                rows.append(
                    NewTemplate(
                        subject=t["subject"],
                        vector=v,
                        model=t["model"],
                        image_sha256=t.get("image_sha256"),
                        bbox=_bbox_tuple(t.get("bbox")),
                        quality=t.get("quality"),
                        metadata={**(t.get("metadata") or {}), "imported_id": t["id"]},
                        source=None,
                        created=float(t.get("created") or time.time()),
                    )
                )
            subject_md = {s: sub_md.get(s, {}) for s in {r.subject for r in rows}}
            self._commit(rows, subject_md, check_names=True, want_templates=False)
            added += len(rows)
        # subjects exported without templates
        empty = [name for name in sub_md if self._find_subject(name) is None]
        for name in empty:
            self._ensure_subject(name, sub_md[name])
        if was_empty:
            s = self.settings
            s.strategy, s.pipeline, s.calibration = exported.strategy, exported.pipeline, exported.calibration
            s.model = s.model or exported.model
            s.dim = s.dim or exported.dim
            self._write_settings(s)
            self._settings = s
        return {"input": str(p), "subjects": len(sub_md), "templates": added}

    @abstractmethod
    def _ensure_subject(self, name: str, metadata: Mapping[str, Any]) -> None:
        """Create a subject with no templates if it does not exist."""

    # ----- migration ------------------------------------------------------------------------------

    def migrate(
        self,
        pipeline: FacePipeline,
        *,
        drop_unmigratable: bool = False,
        workers: int | None = 1,
        progress: ProgressHook | None = None,
    ) -> MigrationReport:
        """Re-embed every template with ``pipeline`` (a new model) from its stored source image.

        The face is found again in the stored image and the one overlapping the template's bbox
        most is embedded. Templates without a stored source (enrolled from embeddings, or the
        gallery does not keep images) are listed in ``missing``; nothing changes while any
        template is missing or failed unless ``drop_unmigratable`` (then they are removed).
        The open-set calibration is cleared: recalibrate afterwards.
        """
        new_model = _model_tag_of(pipeline)
        old_model = self._settings.model
        root = self._image_dir()
        missing: list[tuple[str, int, str]] = []
        todo: list[Template] = []
        for t in self.templates():
            if t.source is None:
                why = (
                    "no source image stored (the gallery does not keep source images)"
                    if not self._settings.keep_source_images
                    else "no source image stored (enrolled from an embedding)"
                )
                missing.append((t.subject, t.id, why))
            elif root is None or not (root / t.source).is_file():
                missing.append((t.subject, t.id, f"source image file {t.source} is missing"))
            else:
                todo.append(t)
        if missing and not drop_unmigratable:
            return MigrationReport(False, old_model, new_model, 0, missing)
        failed: list[tuple[str, int, str]] = []
        new_vecs: dict[int, npt.NDArray[np.float32]] = {}
        assert root is not None or not todo
        results = pipeline.embed_many(
            [str(root / t.source) for t in todo],  # type: ignore[operator]
            select="all",
            workers=workers,
            progress=progress,
            total=len(todo),
        )
        for t, res in zip(todo, results, strict=True):
            if res.error is not None or not res.faces:
                failed.append(
                    (
                        t.subject,
                        t.id,
                        f"{type(res.error).__name__}: {res.error}"
                        if res.error
                        else "no face found by the new pipeline",
                    )
                )
                continue
            if t.bbox is not None:
                ref = tuple(t.bbox.as_list())
                face = max(res.faces, key=lambda f: _iou(tuple(f.detection.bbox.as_list()), ref))
            else:
                face = max(res.faces, key=lambda f: f.detection.bbox.area)
            assert face.embedding is not None
            new_vecs[t.id] = face.embedding.vector
        if failed and not drop_unmigratable:
            return MigrationReport(False, old_model, new_model, 0, missing, failed)
        drop = [tid for _s, tid, _r in missing + failed]
        s = self.settings
        s.model = new_model
        s.dim = int(pipeline.embedder.dim)
        s.pipeline = pipeline_settings(pipeline)  # None for custom objects: pass the pipeline when reopening
        if s.calibration:
            log.warning("migration cleared the open-set calibration: recalibrate with gallery.calibrate(...)")
        s.calibration = None
        self._replace_vectors(new_vecs, drop, s)
        self._settings = s
        self._pipeline = pipeline
        return MigrationReport(True, old_model, new_model, len(new_vecs), missing, failed, dropped=len(drop))


def _bbox_tuple(b: BBox | Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if b is None:
        return None
    vals = b.as_list() if isinstance(b, BBox) else [float(v) for v in b]
    if len(vals) != 4:
        raise ConfigurationError(f"a bbox has 4 numbers (x1, y1, x2, y2), got {vals}")
    return (float(vals[0]), float(vals[1]), float(vals[2]), float(vals[3]))


def creation_settings(
    pipeline: FacePipeline | None,
    keep_source_images: bool | None,
    strategy: str | None,
    index_type: str | None,
    exact_limit: int | None,
    nlist: int | None,
    nprobe: int | None,
) -> GallerySettings:
    if strategy is not None and strategy not in ("max", "mean"):
        raise ConfigurationError(f"unknown scoring strategy {strategy!r}; use 'max' or 'mean'")
    if index_type is not None and index_type not in ("auto", "flat", "ivf"):
        raise ConfigurationError(f"unknown index type {index_type!r}; use 'auto', 'flat' or 'ivf'")
    s = GallerySettings(keep_source_images=bool(keep_source_images), strategy=strategy or "max")
    s.index = {
        k: v
        for k, v in {"type": index_type, "exact_limit": exact_limit, "nlist": nlist, "nprobe": nprobe}.items()
        if v is not None
    }
    if pipeline is not None:
        e = pipeline.embedder
        s.model, s.dim = f"{e.model_id}@{e.model_version}", int(e.dim)
        s.pipeline = pipeline_settings(pipeline)
    return s


def check_reopen(
    s: GallerySettings,
    keep_source_images: bool | None,
    strategy: str | None,
    index_type: str | None,
    exact_limit: int | None,
    nlist: int | None,
    nprobe: int | None,
    existed: bool,
) -> None:
    if not existed:
        return
    if keep_source_images is not None and bool(keep_source_images) != s.keep_source_images:
        raise ConfigurationError(
            f"this gallery was created with keep_source_images={s.keep_source_images}; it is fixed at creation "
            "(export it and import into a new gallery to change it)"
        )
    if strategy is not None and strategy != s.strategy:
        raise ConfigurationError(
            f"this gallery scores subjects with {s.strategy!r}; change it with gallery.configure(strategy=...) "
            "or pass strategy= to identify()"
        )
    if any(v is not None for v in (index_type, exact_limit, nlist, nprobe)):
        raise ConfigurationError("index options are fixed at creation; change them with gallery.configure(index={...})")
