"""The gallery API on Milvus: milvus-lite in a local ``.db`` file, or a Milvus server/cluster.

``open_gallery("faces.db")`` runs Milvus in-process (milvus-lite); ``open_gallery(
"http://milvus:19530")`` (or ``milvus://host:port``) talks to a server or cluster with the same
code — Milvus then shards, replicates and indexes (``AUTOINDEX``) as that deployment is set up.

Three collections per gallery (prefix ``collection``, default ``"faceprint"``):
``<prefix>_meta`` (settings as JSON), ``<prefix>_subjects`` (id, name, JSON info) and
``<prefix>_templates_v<N>`` (id, subject id, model tag, source, JSON info, vector); ``N`` grows
with each :meth:`~faceprint.gallery.Gallery.migrate`, which writes a new collection and
switches to it at the end. Milvus has no multi-row transactions: one enrolment batch is one
insert request, which Milvus applies as a whole, but a crash between the subject and the
template writes can leave a subject without templates (it is harmless and shows in ``list``).
Ids are random 63-bit integers, so several clients can enrol at once.

:class:`MilvusGallery` composes a :class:`MilvusStore` (the collections) with a
:class:`MilvusIndex` (Milvus's own vector search over the templates collection).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError
from ..api import Gallery
from ..core import creation_settings
from ..store import Change
from .store import MilvusStore, is_local_uri

if TYPE_CHECKING:
    from ...pipeline import FacePipeline

__all__ = ["MilvusGallery", "MilvusStore", "MilvusIndex", "is_local_uri"]


class MilvusIndex:
    """Milvus's own vector search over a :class:`MilvusStore`'s templates (the
    :class:`~faceprint.gallery.store.GalleryIndex`; Milvus keeps it up to date by itself)."""

    def __init__(self, store: MilvusStore) -> None:
        self.store = store

    def search(self, q: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        st = self.store
        d = np.full((q.shape[0], k), -np.inf, np.float32)
        ids = np.full((q.shape[0], k), -1, np.int64)
        with st._lock:
            res = st._client.search(
                st._tpl,
                data=[row for row in q],
                limit=min(k, 16384),
                anns_field="vector",
                search_params={"metric_type": "IP"},
                output_fields=["subject_id"],  # [] would return every field, vectors included
            )
            cache = st._owner_cache  # saves a query per identification in template_owners
            if len(cache) > 100_000:
                cache.clear()
            for row, hits in enumerate(res):
                for j, h in enumerate(hits[:k]):
                    d[row, j] = float(h["distance"])
                    ids[row, j] = int(h["id"])
                    cache[int(h["id"])] = int(h["entity"]["subject_id"])
        return d, ids

    def owners(self, template_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        cache = self.store._owner_cache  # filled by search()
        with self.store._lock:
            return np.array([cache.get(int(t), -1) for t in template_ids], np.int64)

    def update(self, change: Change) -> None:
        if change.removed_ids.size:
            with self.store._lock:
                for t in change.removed_ids:
                    self.store._owner_cache.pop(int(t), None)

    def refresh(self, *, force: bool = False) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"kind": "milvus " + str(self.store.index_params.get("index_type")), "collection": self.store._tpl}

    def close(self) -> None:
        pass


class MilvusGallery(Gallery):
    """A gallery in Milvus (see the module docstring).

    Args:
        uri: a local path ending in ``.db`` (milvus-lite) or a server URI (``http://host:19530``).
        create, pipeline, keep_source_images, strategy: as for
            :class:`~faceprint.gallery.sqlite.SqliteGallery`.
        collection: prefix of the gallery's collections (several galleries can share a server).
        token, db_name: Milvus credentials (``"user:password"`` or an API key) and database.
        image_dir: folder for kept source images; defaults to ``<uri>-images`` for a local file
            and is required with ``keep_source_images`` on a server.
        index_params: the vector index (default ``FLAT`` on milvus-lite, ``AUTOINDEX`` on a server).
    """

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        create: bool | None = None,
        pipeline: FacePipeline | None = None,
        keep_source_images: bool | None = None,
        strategy: str | None = None,
        collection: str = "faceprint",
        token: str | None = None,
        db_name: str | None = None,
        image_dir: str | os.PathLike[str] | None = None,
        index_params: Mapping[str, Any] | None = None,
    ) -> None:
        store = MilvusStore(
            uri,
            create=create,
            initial=creation_settings(pipeline, keep_source_images, strategy, None),
            collection=collection,
            token=token,
            db_name=db_name,
            index_params=index_params,
        )
        self.uri = store.uri
        self.prefix = collection
        images = Path(image_dir) if image_dir is not None else (Path(store.uri + "-images") if store.local else None)
        try:
            super().__init__(
                store,
                MilvusIndex(store),
                pipeline=pipeline,
                keep_source_images=keep_source_images,
                strategy=strategy,
                image_dir=images,
            )
            if self._settings.keep_source_images and images is None:
                raise ConfigurationError(
                    "this gallery keeps source images: pass image_dir= (a folder every client that enrols or "
                    "migrates can reach)"
                )
        except BaseException:
            store.close()
            raise

    store: MilvusStore

    def _backend_stats(self) -> dict[str, Any]:
        out = super()._backend_stats()
        img = self._image_root
        if "disk_bytes" in out:
            out["disk_bytes"]["images"] = (
                sum(f.stat().st_size for f in img.rglob("*") if f.is_file()) if img and img.exists() else 0
            )
        return out
