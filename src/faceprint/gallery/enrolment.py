"""Enrolment: faces or precomputed embeddings become templates, one store transaction per batch."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ..attacks.policy import TrustedCapture, embed_with_trusted
from ..batch import ProgressHook
from ..errors import (
    AttackDetectedError,
    ConfigurationError,
    EmbeddingMismatchError,
    FaceprintError,
    LowQualityError,
    NoFaceError,
)
from ..types import BBox, Embedding
from . import images
from .core import GalleryCore, as_matrix
from .images import is_single_source as _single_source
from .images import source_bytes as _source_bytes
from .names import check_stored_name
from .values import EnrolledTemplates, EnrollFailure, EnrollReport, NewTemplate, Template, bbox_tuple

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline
    from ..types import Face

__all__ = ["EnrolmentMixin", "DEFAULT_BATCH", "ProgressHook", "EnrolSelection"]

log = logging.getLogger(__name__)

#: which face of each image to enrol (``"largest"``, ``"central"``), or ``"best"``: only the best
#: image of the subject, by the pipeline's unified quality
EnrolSelection = Literal["largest", "central", "best"]


#: Templates per enrolment transaction in the bulk methods.
DEFAULT_BATCH = 10_000


class EnrolmentMixin(GalleryCore):
    """``enroll``, ``enroll_images``, ``enroll_embeddings`` and ``enroll_many``."""

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
                subject=check_stored_name(subject),
                vector=e.vector,
                model=e.model,
                image_sha256=sha,
                bbox=bbox_tuple(b),
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
        select: EnrolSelection = "largest",
        quality: float | Sequence[float | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        subject_metadata: Mapping[str, Any] | None = None,
        trusted: ImageSource | None = None,
    ) -> EnrolledTemplates:
        """Enrol the main face of each image as a template of ``subject``, in one transaction.

        ``pipeline`` defaults to the one the gallery was built with (its stored settings), or the
        default :class:`~faceprint.FacePipeline` for a new gallery. Raises
        :class:`~faceprint.errors.NoFaceError` (nothing is written) when an image has no face.
        Each template's metadata records the image's name under ``"image"``.

        Quality, when the pipeline has a quality assessor (``FacePipeline(quality="fiqa")``):

        - each template stores its face's unified quality (0-100); an explicit ``quality``
          (one number, or one per image) wins;
        - a face below the pipeline's ``min_quality`` is a failure to enrol: that image is
          reported in the result's ``failed`` (a :class:`~faceprint.errors.LowQualityError` naming
          the weak components) and the other images are enrolled; when none is left, nothing is
          written (the subject is not created);
        - the same for a face the pipeline's attack gate refuses (``FacePipeline(pad=...,
          refuse_attacks=True)``: :class:`~faceprint.errors.AttackDetectedError`);
        - morphs: ``trusted``, a trusted live capture of ``subject``, makes the pipeline's
          differential morph detector (``pad="dmad"``) compare each image with it (D-MAD,
          :func:`~faceprint.attacks.policy.embed_with_trusted`); without it that detector
          answers with single-image S-MAD. ``trusted`` without a differential detector, or with
          no face, is a ConfigurationError / NoFaceError before anything is enrolled;
        - ``select="best"`` enrols only the best image: the largest face of highest unified
          quality among all of them (the choice of :meth:`FacePipeline.best_shot
          <faceprint.pipeline.FacePipeline.best_shot>`, the earliest on a tie). Images without a
          usable face are then reported in ``failed`` rather than raised; NoFaceError only when
          none of them has a face. Needs a quality assessor (ConfigurationError otherwise).

        Returns the templates added, a list with ``failed`` (see :class:`EnrolledTemplates`).
        """
        pipe = self._image_pipeline(pipeline)
        srcs, quals = _sources_and_qualities(images, quality)
        check_stored_name(subject)
        best_only = select == "best"
        if best_only:
            _need_assessor(pipe)
        reference = None if trusted is None else TrustedCapture.of(pipe, trusted)
        rows: list[NewTemplate] = []
        failed: list[EnrollFailure] = []
        chosen: _Shot | None = None
        for src, q in zip(srcs, quals, strict=True):
            data, label, suffix = _source_bytes(src)
            try:
                face = _embed_face(pipe, data if data is not None else src, reference, _one_face(select))
            except FaceprintError as exc:
                if not (best_only or isinstance(exc, (LowQualityError, AttackDetectedError))):
                    raise
                failed.append(EnrollFailure.of(subject, label, exc))
                continue
            if not best_only:
                rows.append(self._row_from_face(subject, face, data, label, suffix, q, metadata))
            elif chosen is None or _better(face, chosen[0]):
                chosen = (face, data, label, suffix, q)
        if chosen is not None:
            rows.append(self._row_from_face(subject, *chosen, metadata))
        elif best_only and not any(isinstance(f.exception, (LowQualityError, AttackDetectedError)) for f in failed):
            raise NoFaceError(f"none of the {len(srcs)} images of {subject!r} has a usable face")
        for f in failed:
            log.warning("not enrolled: %s of %r: %s", f.image, f.subject, f.error)
        templates = self._commit(rows, {subject: dict(subject_metadata or {})}) if rows else []
        return EnrolledTemplates(templates, failed)

    def enroll_images(
        self,
        items: Iterable[tuple[str, ImageSource]],
        *,
        pipeline: FacePipeline | None = None,
        select: EnrolSelection = "largest",
        workers: int | None = 1,
        batch_size: int = 256,
        progress: ProgressHook | None = None,
        total: int | None = None,
    ) -> EnrollReport:
        """Bulk-enrol ``(subject, image)`` pairs: embedded with ``pipeline.embed_many`` (``workers``
        processes), written one transaction per ``batch_size`` images. Images that fail or show no
        face are reported in the result, not raised.

        With a quality assessor in the pipeline, templates store their face's quality, and faces
        below its ``min_quality`` are reported as failures to enrol. ``select="best"`` enrols one
        template per subject: its image whose largest face has the highest quality (as
        :meth:`enroll`); they are written at the end, and until then the best image of each
        subject is held in memory.
        """
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        pipe = self._image_pipeline(pipeline)
        best_only = select == "best"
        if best_only:
            _need_assessor(pipe)
        failed: list[EnrollFailure] = []
        added = 0
        touched: set[str] = set()
        pending: deque[tuple[str, bytes | None, str, str]] = deque()

        def inputs() -> Iterator[ImageSource]:
            for subj, src in items:
                data, label, suffix = _source_bytes(src)
                pending.append((check_stored_name(subj), data, label, suffix))
                yield data if data is not None else src

        rows: list[NewTemplate] = []
        best: dict[str, _Shot] = {}

        def flush() -> None:
            nonlocal added, rows
            if rows:
                self._commit(rows, {}, want_templates=False)
                added += len(rows)
                touched.update(r.subject for r in rows)
                rows = []

        faces = pipe.embed_many(inputs(), select=_one_face(select), workers=workers, progress=progress, total=total)
        for res in faces:
            subj, data, label, suffix = pending.popleft()
            if res.error is not None or not res.faces:
                err = res.error if res.error is not None else NoFaceError(f"no face found in {label}")
                failed.append(EnrollFailure.of(subj, label, err))
                continue
            face = res.faces[0]
            if not best_only:
                rows.append(self._row_from_face(subj, face, data, label, suffix, None, None))
            elif subj not in best or _better(face, best[subj][0]):
                best[subj] = (face, data, label, suffix, None)
            if len(rows) >= batch_size:
                flush()
        for subj, shot in best.items():
            rows.append(self._row_from_face(subj, *shot, None))
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
        mat, models = _matrix_and_models(embeddings, model)
        if len(subjects) != mat.shape[0]:
            raise ConfigurationError(f"{len(subjects)} subjects for {mat.shape[0]} embeddings")
        n = mat.shape[0]
        now = time.time()
        added = 0
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            rows = [
                NewTemplate(subjects[i], mat[i], models if isinstance(models, str) else models[i], created=now)
                for i in range(start, stop)
            ]
            self._commit(rows, {}, check_names=True, want_templates=False)
            added += stop - start
            if progress:
                progress(added, n)
        return added

    # ----- the one write path ------------------------------------------------------------------

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
            source = images.store(self._image_dir(), data, sha, suffix)
        md = {"image": label, **dict(metadata or {})}
        return NewTemplate(
            subject=check_stored_name(subject),
            vector=face.embedding.vector,
            model=face.embedding.model,
            image_sha256=sha,
            bbox=bbox_tuple(face.detection.bbox),
            quality=float(quality) if quality is not None else face.quality.quality if face.quality else None,
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
        """Write ``rows`` in one store transaction, then let the index follow."""
        if not rows and not subject_metadata:
            return []
        model, dim = self._check_rows(rows, check_names)
        with self._lock:
            if rows:
                self._check_model_tag(model, dim, what="the new template")
            change = self.store.insert(rows, subject_metadata, model=model, dim=dim)
            if rows and self._settings.model is None:  # the first enrolment fixed the gallery's model
                self._settings.model, self._settings.dim = model, dim
            self._apply(change)
        if not want_templates:
            return []
        return [
            Template(
                id=int(i),
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
            for i, r in zip(change.added_ids, rows, strict=True)
        ]

    def _check_rows(self, rows: Sequence[NewTemplate], check_names: bool) -> tuple[str, int]:
        if not rows:  # subjects without templates (an import)
            return self._settings.model or "", int(self._settings.dim or 0)
        models = {r.model for r in rows}
        if len(models) > 1:
            raise EmbeddingMismatchError(f"one enrolment mixes embeddings of several models: {sorted(models)}")
        dims = {int(r.vector.shape[0]) for r in rows}
        if len(dims) > 1:
            raise EmbeddingMismatchError(f"one enrolment mixes embedding dimensions {sorted(dims)}")
        if check_names:
            for name in {r.subject for r in rows}:
                check_stored_name(name)
        return rows[0].model, dims.pop()


def _one_face(select: EnrolSelection) -> Literal["largest", "central"]:
    """The face of each image to use: ``select="best"`` compares the images' largest faces."""
    if select not in ("largest", "central", "best"):
        raise ConfigurationError(f"select must be 'largest', 'central' or 'best', got {select!r}")
    return "largest" if select == "best" else select  # type: ignore[return-value]


def _need_assessor(pipe: FacePipeline) -> None:
    if getattr(pipe, "quality", None) is None:
        raise ConfigurationError(
            "select='best' picks images by quality and needs a pipeline with a quality assessor: "
            "pass pipeline=FacePipeline(quality='fiqa') (or 'fiqa-fast')"
        )


#: a candidate of select="best": the face and its image's bytes, name, suffix and explicit quality
_Shot = tuple["Face", bytes | None, str, str, float | None]


def _better(face: Face, than: Face) -> bool:
    """Whether ``face`` has a strictly higher unified quality than ``than`` (the earlier image wins a tie)."""
    return (face.quality.quality if face.quality else -1.0) > (than.quality.quality if than.quality else -1.0)


def _matrix_and_models(
    embeddings: Sequence[Embedding] | npt.ArrayLike, model: str | None
) -> tuple[npt.NDArray[np.float32], str | list[str]]:
    """Rows of ``enroll_many`` as an (N, D) matrix and their model tag(s)."""
    if isinstance(embeddings, np.ndarray) or (
        not isinstance(embeddings, Sequence) or (len(embeddings) and not isinstance(embeddings[0], Embedding))
    ):
        if not model:
            raise ConfigurationError("enrolling raw vectors needs model='model_id@version' (the tag of their embedder)")
        return as_matrix(embeddings, None), model  # type: ignore[arg-type]
    embs = list(embeddings)  # type: ignore[arg-type]
    mat = np.stack([e.vector for e in embs]) if embs else np.zeros((0, 1), np.float32)
    return mat, [e.model for e in embs]


def _sources_and_qualities(
    images: ImageSource | Sequence[ImageSource], quality: float | Sequence[float | None] | None
) -> tuple[list[Any], list[Any]]:
    """The images of one :meth:`enroll` call as a list, and one explicit quality (or None) each."""
    srcs: list[Any] = [images] if _single_source(images) else list(images)  # type: ignore[arg-type]
    if not srcs:
        raise ConfigurationError("no images to enrol")
    quals = [quality] * len(srcs) if quality is None or isinstance(quality, (int, float)) else list(quality)
    if len(quals) != len(srcs):
        raise ConfigurationError(f"quality has {len(quals)} entries for {len(srcs)} images")
    return srcs, quals


def _embed_face(pipe: FacePipeline, source: Any, reference: TrustedCapture | None, select: Any) -> Face:
    """The enrolment face of one image: the pipeline's, or with D-MAD against a trusted capture."""
    if reference is None:
        return pipe.embed_one(source, select=select)
    return embed_with_trusted(pipe, source, reference, select=select)
