"""The embedded gallery: SQLite (WAL) for the truth, a faiss index beside it for search.

Layout of a gallery folder::

    gallery.sqlite   subjects, templates (with their float32 vectors), settings — the truth
    index.faiss      the vector index: a small JSON header (generation, counts, checksum) + faiss data
    images/          stored source images (content-addressed), when keep_source_images=True

:class:`SqliteGallery` is a :class:`~faceprint.gallery.Gallery` composed of a
:class:`~.store.SqliteStore` (every write one transaction, logged by generation) and a
:class:`~.index_file.SyncedFaissIndex` (the faiss index, caught up from that log on open and
when another process has written, saved atomically on close). A crash loses no committed
template, only replay work.

The index follows the gallery's spec (:mod:`faceprint.gallery.spec`); the default ``"IVF,Flat"``
searches exactly (``IndexFlatIP``) while ``templates × dim`` is at most
:data:`~faceprint.gallery.spec.EXACT_BUDGET` (≈ 31k templates of 128-D, 8k of 512-D), then by
IVF (nlist ≈ 4·√N centroids found by spherical k-means, see
:func:`~faceprint.gallery.spec.auto_nlist` and :func:`~faceprint.gallery.spec.auto_nprobe`),
retrained when the gallery has grown 4× since it was trained. The figures come from
``benchmarks/bench_gallery.py`` (see ``benchmarks/RESULTS.md``).

Readers in other threads or processes never block the writer (WAL); each gallery object picks
up other processes' commits before it searches (``PRAGMA data_version``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api import Gallery
from ..core import creation_settings
from ..spec import EXACT_BUDGET, SCAN_BUDGET, IndexSpec, auto_nlist, auto_nprobe, legacy_spec
from .index_file import BACKGROUND_ABOVE, INDEX_FORMAT_VERSION, INDEX_MAGIC, INDEX_NAME, SyncedFaissIndex
from .store import DB_NAME, SCHEMA_VERSION, SqliteStore, sqlite_errors

if TYPE_CHECKING:
    from ...pipeline import FacePipeline

__all__ = [
    "SqliteGallery",
    "SqliteStore",
    "SyncedFaissIndex",
    "EXACT_BUDGET",
    "SCAN_BUDGET",
    "DB_NAME",
    "INDEX_NAME",
    "INDEX_MAGIC",
    "INDEX_FORMAT_VERSION",
    "IMAGES_DIR",
    "SCHEMA_VERSION",
    "auto_nlist",
    "auto_nprobe",
]

IMAGES_DIR = "images"


class SqliteGallery(Gallery):
    """A gallery in a local folder (see the module docstring for the layout and guarantees).

    Args:
        path: the gallery folder.
        create: None: open, or create when missing; True: create (error if it exists);
            False: open (error if missing).
        pipeline: the pipeline used to enrol images in this session; at creation it also fixes
            the gallery's model and is stored so later sessions rebuild it.
        keep_source_images: (creation only) keep a copy of every enrolled image under
            ``images/``, so :meth:`migrate` can re-embed them with a new model.
        strategy: (creation only) default subject scoring, ``"max"``, ``"mean"`` or ``"quality-mean"``.
        index: (creation only) the index spec, e.g. ``"IVF,Flat"`` (the default), ``"Flat"``,
            ``"IVF4096,SQ8;nprobe=64"`` (see :mod:`faceprint.gallery.spec`).
        index_type, exact_limit, nlist, nprobe: deprecated (faceprint 0.1): the same as the
            equivalent ``index`` spec.
        synchronous: SQLite durability: ``"full"`` (survives power loss) or ``"normal"``
            (survives a process crash; faster).
        search_threads: OpenMP threads faiss uses per search (1 keeps single-query latency low
            on a busy machine; None: faiss's default).
        background_above: index rebuilds of more templates than this run in a background
            thread while the current index serves (0: every rebuild; None: none).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool | None = None,
        pipeline: FacePipeline | None = None,
        keep_source_images: bool | None = None,
        strategy: str | None = None,
        index: str | IndexSpec | None = None,
        index_type: str | None = None,
        exact_limit: int | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        synchronous: str = "full",
        search_threads: int | None = 1,
        background_above: int | None = BACKGROUND_ABOVE,
    ) -> None:
        self.path = Path(path)
        index = _legacy_index_options(index, index_type, exact_limit, nlist, nprobe)
        with sqlite_errors(self.path):
            store = SqliteStore(
                self.path,
                create=create,
                initial=creation_settings(pipeline, keep_source_images, strategy, index),
                synchronous=synchronous,
            )
            try:
                synced = SyncedFaissIndex(
                    store, self.path / INDEX_NAME, threads=search_threads, background_above=background_above
                )
                super().__init__(
                    store,
                    synced,
                    pipeline=pipeline,
                    keep_source_images=keep_source_images,
                    strategy=strategy,
                    index_spec=index,
                    image_dir=self.path / IMAGES_DIR,
                )
            except BaseException:
                store.close()
                raise
        self.search_threads = search_threads

    store: SqliteStore
    index: SyncedFaissIndex  # type: ignore[assignment]

    def flush(self) -> None:
        """Let a background index rebuild finish, then write the index file (it is otherwise
        written on close and after rebuilds)."""
        self.index.wait()
        self.index.refresh()
        self.index.save()

    def check(self) -> dict[str, Any]:
        """Compare the in-memory index with the database row by row (slow; for tests and repair).

        Returns ``{"consistent": bool, "index": n, "database": n, "missing": [...], "extra": [...]}``.
        """
        idx_ids = self.index.ids()
        db_ids = self.store.all_ids()
        return {
            "consistent": db_ids == idx_ids,
            "index": len(idx_ids),
            "database": len(db_ids),
            "missing": sorted(db_ids - idx_ids)[:100],
            "extra": sorted(idx_ids - db_ids)[:100],
        }

    def _backend_stats(self) -> dict[str, Any]:
        out = super()._backend_stats()
        img = self.path / IMAGES_DIR
        out["disk_bytes"]["index"] = self.index.file.stat().st_size if self.index.file.exists() else 0
        out["disk_bytes"]["images"] = (
            sum(p.stat().st_size for p in img.rglob("*") if p.is_file()) if img.exists() else 0
        )
        return out

    def close(self) -> None:
        if self.store._conn is None:
            return
        super().close()


def _legacy_index_options(
    index: str | IndexSpec | None,
    index_type: str | None,
    exact_limit: int | None,
    nlist: int | None,
    nprobe: int | None,
) -> str | IndexSpec | None:
    legacy = {"type": index_type, "exact_limit": exact_limit, "nlist": nlist, "nprobe": nprobe}
    if all(v is None for v in legacy.values()):
        return index
    warnings.warn(
        "index_type=, exact_limit=, nlist= and nprobe= are deprecated: pass one index spec, "
        "e.g. index='IVF,Flat;exact_limit=1000,nprobe=64' (see faceprint.gallery.spec)",
        DeprecationWarning,
        stacklevel=3,
    )
    if index is not None:
        from ...errors import ConfigurationError

        raise ConfigurationError("pass either index= or the deprecated index_type/exact_limit/nlist/nprobe, not both")
    return legacy_spec(legacy)
