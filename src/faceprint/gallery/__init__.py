"""Persistent galleries for 1:N identification.

::

    from faceprint.gallery import open_gallery

    with open_gallery("people/", keep_source_images=True) as g:   # a folder: SQLite + faiss
        g.enroll("ada", ["ada1.jpg", "ada2.jpg"])
        g.calibrate(nonmated_embeddings, fpir=0.01)               # the open-set threshold
        result = g.identify("probe.jpg", k=5)                     # subjects above the threshold

``open_gallery`` picks the backend from its argument: a folder → :class:`SqliteGallery`
(embedded, no server); a path ending in ``.db`` → :class:`MilvusGallery` on milvus-lite; an
``http(s)://``, ``tcp://``, ``grpc://`` or ``milvus://`` URI → :class:`MilvusGallery` on a Milvus
server or cluster. Every backend offers the same :class:`Gallery` API.

A gallery is a :class:`~.store.TemplateStore` (storage) composed with a
:class:`~.store.GalleryIndex` (search), configured by one index spec string
(:mod:`.spec`); see :mod:`.api` for where each part of the work lives. A third-party store
runs the conformance checks of :mod:`faceprint.testing.gallery`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, GalleryError
from .api import Gallery
from .calibration import fpir_threshold, open_set_rates
from .files import GalleryHealth, check_gallery, remove_gallery
from .names import SUBJECT_NAME_PATTERN, check_subject_name
from .spec import IndexSpec
from .store import Change, GalleryIndex, TemplateStore
from .values import (
    Candidate,
    EnrolledTemplates,
    EnrollFailure,
    EnrollReport,
    GallerySettings,
    IdentifyResult,
    MigrationReport,
    OpenSetCalibration,
    ScoreStrategy,
    Subject,
    Template,
    split_model_tag,
)

if TYPE_CHECKING:
    from ..pipeline import FacePipeline
    from .milvus import MilvusGallery
    from .sqlite import SqliteGallery

__all__ = [
    "open_gallery",
    "backend_for",
    "Gallery",
    "TemplateStore",
    "GalleryIndex",
    "Change",
    "IndexSpec",
    "GallerySettings",
    "Template",
    "Subject",
    "Candidate",
    "IdentifyResult",
    "OpenSetCalibration",
    "EnrollReport",
    "EnrollFailure",
    "EnrolledTemplates",
    "MigrationReport",
    "ScoreStrategy",
    "fpir_threshold",
    "open_set_rates",
    "split_model_tag",
    "check_gallery",
    "remove_gallery",
    "GalleryHealth",
    "check_subject_name",
    "SUBJECT_NAME_PATTERN",
    "SqliteGallery",
    "MilvusGallery",
]

_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "milvus://")


def backend_for(uri_or_path: str | os.PathLike[str]) -> str:
    """``"sqlite"`` or ``"milvus"``: the backend :func:`open_gallery` uses for this location."""
    s = os.fspath(uri_or_path)
    if s.lower().startswith(_SERVER_SCHEMES) or s.lower().endswith(".db"):
        return "milvus"
    return "sqlite"


def open_gallery(
    uri_or_path: str | os.PathLike[str],
    *,
    backend: str | None = None,
    create: bool | None = None,
    pipeline: FacePipeline | None = None,
    keep_source_images: bool | None = None,
    strategy: ScoreStrategy | None = None,
    **options: Any,
) -> Gallery:
    """Open (or create) a gallery.

    Args:
        uri_or_path: a folder (SQLite + faiss), a ``.db`` file (milvus-lite) or a Milvus URI.
        backend: ``"sqlite"`` or ``"milvus"`` to override the choice made from ``uri_or_path``.
        create: None: open, creating when missing; True: create, failing if it exists;
            False: open, failing if missing.
        pipeline: the FacePipeline to enrol/search images with in this session; when creating,
            it also fixes the gallery's model and is remembered for later sessions.
        keep_source_images: (creation) keep enrolled images so :meth:`Gallery.migrate` can
            re-embed them with a new model.
        strategy: (creation) subject score, ``"max"`` or ``"mean"`` of its templates' scores, or ``"quality-mean"``.
        options: backend options (see :class:`SqliteGallery` and :class:`MilvusGallery`).
    """
    kind = backend or backend_for(uri_or_path)
    from .protected import is_protected_gallery

    if kind == "sqlite" and is_protected_gallery(uri_or_path):
        raise GalleryError(
            f"{os.fspath(uri_or_path)} is a protected gallery (template protection): open it with "
            "faceprint.gallery.protected.open_protected_gallery(path, secret) or the CLI's --secret-file"
        )
    common: dict[str, Any] = dict(
        create=create, pipeline=pipeline, keep_source_images=keep_source_images, strategy=strategy
    )
    if kind == "sqlite":
        from .sqlite import SqliteGallery

        return SqliteGallery(uri_or_path, **common, **options)
    if kind == "milvus":
        from .milvus import MilvusGallery

        return MilvusGallery(uri_or_path, **common, **options)
    raise ConfigurationError(f"unknown gallery backend {kind!r}; use 'sqlite' or 'milvus'")


def __getattr__(name: str) -> Any:
    """Backends load lazily (faiss, pymilvus)."""
    if name == "SqliteGallery":
        from .sqlite import SqliteGallery

        return SqliteGallery
    if name == "MilvusGallery":
        from .milvus import MilvusGallery

        return MilvusGallery
    raise AttributeError(f"module 'faceprint.gallery' has no attribute {name!r}")
