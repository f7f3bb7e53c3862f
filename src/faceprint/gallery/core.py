"""The part of :class:`~faceprint.gallery.Gallery` every other part builds on: the store and the
index it composes, its settings, its model, its pipeline, and subject management.

Enrolment (:mod:`.enrolment`), identification (:mod:`.identification`), calibration
(:mod:`.calibration`) and export/import/migration (:mod:`.transfer`) are mixins over this class,
each in its own module; :class:`faceprint.gallery.Gallery` puts them together.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..batch import model_tag
from ..errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    FaceprintError,
    GalleryError,
    InvalidEmbeddingError,
    SubjectNotFoundError,
)
from ..types import Embedding
from . import images
from .names import check_stored_name
from .spec import IndexSpec
from .store import Change, GalleryIndex, TemplateStore
from .values import STRATEGIES, GallerySettings, ScoreStrategy, Subject, Template, _iso

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = ["GalleryCore", "model_tag", "pipeline_settings", "creation_settings", "check_reopen", "as_matrix"]

log = logging.getLogger(__name__)


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


def creation_settings(
    pipeline: FacePipeline | None,
    keep_source_images: bool | None,
    strategy: str | None,
    index: str | IndexSpec | None,
) -> GallerySettings:
    """The settings a new gallery starts with."""
    if strategy is not None and strategy not in STRATEGIES:
        raise ConfigurationError(f"unknown scoring strategy {strategy!r}; use 'max', 'mean' or 'quality-mean'")
    s = GallerySettings(keep_source_images=bool(keep_source_images), strategy=strategy or "max")
    s.index = str(IndexSpec.parse(index))
    if pipeline is not None:
        s.model, s.dim = model_tag(pipeline), int(pipeline.embedder.dim)
        s.pipeline = pipeline_settings(pipeline)
    return s


def check_reopen(
    s: GallerySettings, keep_source_images: bool | None, strategy: str | None, index: str | IndexSpec | None
) -> None:
    """Refuse creation options that disagree with an existing gallery's settings."""
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
    if index is not None and str(IndexSpec.parse(index)) != str(IndexSpec.parse(s.index)):
        raise ConfigurationError(
            f"this gallery's index is {s.index!r}; change it with gallery.configure(index=...), not when opening it"
        )


def as_matrix(x: npt.ArrayLike, dim: int | None) -> npt.NDArray[np.float32]:
    """Query vectors as a C-contiguous, L2-normalised float32 (N, D) matrix (checked)."""
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


_CREATION_FIELDS = ("keep_source_images", "strategy", "model", "dim", "pipeline", "index")


class GalleryCore:
    """A template store and a vector index, with the gallery's settings (see :class:`Gallery`)."""

    #: backend name: ``"sqlite"``, ``"milvus"``, or a third-party store's
    backend: str = ""
    #: where the gallery lives (a folder, a file or a server URI)
    location: str = ""

    def __init__(
        self,
        store: TemplateStore,
        index: GalleryIndex,
        *,
        pipeline: FacePipeline | None = None,
        keep_source_images: bool | None = None,
        strategy: str | None = None,
        index_spec: str | IndexSpec | None = None,
        image_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.store = store
        self.index = index
        self.backend = store.backend
        self.location = store.location
        self._lock = threading.RLock()
        self._pipeline: FacePipeline | None = None
        self._warned_fallback = False
        self._image_root = Path(image_dir) if image_dir is not None else None
        s = store.read_settings()
        if store.created:
            want = creation_settings(pipeline, keep_source_images, strategy, index_spec)
            if any(getattr(s, f) != getattr(want, f) for f in _CREATION_FIELDS):
                want.created, want.extra = s.created, s.extra
                store.write_settings(want)
                s = want
        else:
            check_reopen(s, keep_source_images, strategy, index_spec)
        self._settings = s
        self._seen_version = store.version()
        if pipeline is not None:
            self._check_model_tag(model_tag(pipeline), pipeline.embedder.dim, what="the given pipeline's embedder")
            self._pipeline = pipeline

    # ----- context manager and dunders -------------------------------------------------

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Number of subjects."""
        return self.store.counts()[0]

    def __contains__(self, subject: object) -> bool:
        return isinstance(subject, str) and self.store.subject(subject) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location!r}>"

    def close(self) -> None:
        """Flush and release the gallery (the index first: it may write its file)."""
        try:
            self.index.close()
        finally:
            self.store.close()

    def destroy(self) -> None:
        """Close the gallery and delete it with every template and stored image (not undoable)."""
        drop = getattr(self.store, "destroy", None)
        if drop is None:
            raise GalleryError(f"the {self.backend} store of {self.location} cannot delete itself")
        self.close()
        drop()
        if self._image_root is not None and self._image_root.exists():
            shutil.rmtree(self._image_root, ignore_errors=True)

    # ----- settings -------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Re-read the settings when another process has written to the store."""
        v = self.store.version()
        if v != self._seen_version:
            self._settings = self.store.read_settings()
            self._seen_version = v

    def _write_settings(self, settings: GallerySettings) -> None:
        self.store.write_settings(settings)
        self._settings = settings

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
        index: str | Mapping[str, Any] | None = None,
    ) -> GallerySettings:
        """Change stored defaults: the subject scoring ``strategy``, the ``pipeline`` used to
        enrol images (must make the gallery's model), or the ``index`` spec (a string such as
        ``"IVF4096,SQ8;nprobe=64"``; a mapping of parameters, e.g. ``{"nprobe": 64}``, changes only those)."""
        with self._lock:
            s = self.settings
            if strategy is not None:
                s.strategy = self._check_strategy(strategy)
            if pipeline is not None:
                self._check_model_tag(model_tag(pipeline), pipeline.embedder.dim, what="this pipeline's embedder")
                s.pipeline = pipeline_settings(pipeline)
                self._pipeline = pipeline
            if index is not None:
                s.index = str(self._new_spec(index))
            self._write_settings(s)
            if index is not None:
                self.index.refresh(force=True)
            return self.settings

    def _new_spec(self, index: str | Mapping[str, Any]) -> IndexSpec:
        if isinstance(index, str):
            return IndexSpec.parse(index)
        params = dict(index)
        if "type" in params or "nlist" in params:  # faceprint 0.1 keys
            from .spec import legacy_spec

            old = IndexSpec.parse(self._settings.index)
            merged = {"type": "flat" if old.is_flat else "auto", "nlist": old.fixed_nlist, **old.params, **params}
            return legacy_spec(merged)
        return IndexSpec.parse(self._settings.index).with_params(**params)

    @staticmethod
    def _check_strategy(strategy: str) -> str:
        if strategy not in STRATEGIES:
            raise ConfigurationError(f"unknown scoring strategy {strategy!r}; use 'max', 'mean' or 'quality-mean'")
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
        self._check_model_tag(model_tag(pipeline), pipeline.embedder.dim, what="this pipeline's embedder")
        if self._settings.pipeline is None:
            stored_settings = pipeline_settings(pipeline)
            if stored_settings is not None:
                s = self.settings
                s.pipeline = stored_settings
                self._write_settings(s)
        return pipeline

    def _probe_matrix(self, probes: object, pipeline: FacePipeline | None = None) -> npt.NDArray[np.float32]:
        """Probes as an (N, D) matrix: Embeddings (model-checked), a float (N, D) array taken as
        vectors of the gallery's model, or images embedded with the gallery's pipeline."""
        if isinstance(probes, np.ndarray) and probes.dtype.kind == "f" and probes.ndim in (1, 2):
            return as_matrix(probes, self._settings.dim)
        single = isinstance(probes, Embedding) or images.is_single_source(probes)
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

    # ----- search (faiss style) -----------------------------------------------------------------

    def search(self, x: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Template-level search, faiss style.

        Args:
            x: float32 (N, D) query vectors (L2-normalised here), or one (D,) vector.
            k: results per query.

        Returns:
            ``(D, I)``: cosine scores float32 (N, k), best first, and template ids int64 (N, k);
            ``-1`` ids (and ``-inf`` scores) where the gallery has fewer than ``k`` templates.
        """
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        self._refresh()
        q = as_matrix(x, self._settings.dim)
        if self._settings.dim is None:
            return np.full((q.shape[0], k), -np.inf, np.float32), np.full((q.shape[0], k), -1, np.int64)
        return self.index.search(q, k)

    def _template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """template id → (subject id, subject name), for the ids that exist."""
        return self.store.template_owners(template_ids)

    def _apply(self, change: Change) -> Change:
        """Let the index follow a committed write, and delete source images nobody uses any more."""
        self.index.update(change)
        if change.orphaned_sources:
            images.forget(self._image_dir(), change.orphaned_sources)
        return change

    # ----- management ---------------------------------------------------------------------------

    def subject(self, name: str) -> Subject:
        """The subject called ``name`` (SubjectNotFoundError if none)."""
        s = self.store.subject(name)
        if s is None:
            raise SubjectNotFoundError(f"no subject {name!r} in gallery {self.location}: see `faceprint gallery list`")
        return s

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        """Subjects sorted by name: all of them, or ``limit`` of them after skipping ``offset``."""
        return self.store.subjects(limit=limit, offset=offset)

    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        """Templates of one subject (or of all, streamed), by id."""
        return self.store.templates(subject, with_vectors=with_vectors)

    def rename(self, old: str, new: str) -> None:
        """Rename a subject (its templates follow). Raises SubjectExistsError if ``new`` exists."""
        self.store.rename(old, check_stored_name(new))

    def remove(self, subject: str) -> int:
        """Remove a subject, its templates and their stored source images; returns templates removed."""
        with self._lock:
            change = self._apply(self.store.delete(subject=subject))
        return int(change.removed_ids.size)

    def remove_templates(self, template_ids: Sequence[int]) -> int:
        """Remove some templates (a subject left with none stays, with its metadata)."""
        ids = [int(i) for i in template_ids]
        if not ids:
            return 0
        with self._lock:
            change = self._apply(self.store.delete(template_ids=ids))
        return int(change.removed_ids.size)

    def stats(self) -> dict[str, Any]:
        """Sizes, model, strategy, calibration and backend figures."""
        self._refresh()
        n_sub, n_tpl = self.store.counts()
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

    def _backend_stats(self) -> dict[str, Any]:
        return {"index": self.index.stats(), **self.store.stats()}

    # ----- source images -----------------------------------------------------------------------

    def _image_dir(self) -> Path | None:
        """Folder holding stored source images (None when the gallery keeps none)."""
        return self._image_root if self._settings.keep_source_images else None

    def source_image_path(self, template: Template) -> Path | None:
        """Where the stored source image of ``template`` lies (None if it has none)."""
        root = self._image_dir()
        if root is None or template.source is None:
            return None
        return root / template.source
