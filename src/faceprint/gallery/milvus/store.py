"""The Milvus template store: a gallery's three collections (settings, subjects, templates)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import (
    BackendUnavailableError,
    EmbeddingMismatchError,
    GalleryError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from ...types import BBox
from ..files import tighten
from ..store import Change
from ..values import GallerySettings, NewTemplate, Subject, Template

__all__ = ["MilvusStore", "is_local_uri"]

log = logging.getLogger(__name__)

_DUMMY_DIM = 2  # Milvus collections need a vector field; meta and subjects carry a constant one
_PAGE = 4096  # rows per query page (Milvus caps offset + limit at 16384)
_ID_CHUNK = 2000  # ids per "in [...]" filter
_MAX_WINDOW = 16384  # Milvus caps offset + limit of one query


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise BackendUnavailableError(
            "the Milvus gallery needs pymilvus (and milvus-lite for local .db files): pip install pymilvus milvus-lite"
        ) from exc
    return pymilvus


def _lit(s: str) -> str:
    """A Milvus string literal."""
    return json.dumps(s, ensure_ascii=False)


def _new_id() -> int:
    return secrets.randbits(63) or 1


def is_local_uri(uri: str) -> bool:
    return "://" not in uri


class MilvusStore:
    """A gallery's collections in Milvus (the :class:`~faceprint.gallery.store.TemplateStore`).

    Args:
        uri: a local path ending in ``.db`` (milvus-lite) or a server URI (``http://host:19530``).
        create: None: open, creating when missing; True: create; False: open.
        initial: the settings of a new gallery.
        collection: prefix of the gallery's collections (several galleries can share a server).
        token, db_name: Milvus credentials (``"user:password"`` or an API key) and database.
        index_params: the vector index (default ``FLAT`` on milvus-lite, ``AUTOINDEX`` on a server).
    """

    backend = "milvus"

    def __init__(
        self,
        uri: str | os.PathLike[str],
        *,
        create: bool | None = None,
        initial: GallerySettings | None = None,
        collection: str = "faceprint",
        token: str | None = None,
        db_name: str | None = None,
        index_params: Mapping[str, Any] | None = None,
    ) -> None:
        uri = os.fspath(uri)
        if uri.startswith("milvus://"):
            uri = "http://" + uri[len("milvus://") :]
        self.uri = uri
        self.location = uri
        self.prefix = collection
        self._lock = threading.RLock()
        self._owner_cache: dict[int, int] = {}
        self._hint: tuple[float, int, int] | None = None
        self.local = is_local_uri(uri)
        self.index_params = dict(index_params or {"index_type": "FLAT" if self.local else "AUTOINDEX"})
        pm = _pymilvus()
        if self.local:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"uri": uri}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        try:
            self._client = pm.MilvusClient(**kwargs)
        except Exception as exc:
            raise GalleryError(f"cannot connect to Milvus at {uri}: {exc}") from exc
        if self.local and Path(uri).exists():
            tighten(Path(uri))  # milvus-lite's folder: 0700, so its 0644 files are not readable by others
        try:
            self._open(create, initial or GallerySettings())
        except BaseException:
            self.close()
            raise

    def _open(self, create: bool | None, initial: GallerySettings) -> None:
        exists = self._client.has_collection(self._meta_name)
        if create is True and exists:
            raise GalleryError(
                f"a gallery {self.prefix!r} already exists at {self.uri}; open it instead of creating it"
            )
        if create is False and not exists:
            raise GalleryError(
                f"no gallery {self.prefix!r} at {self.uri}: create one with `faceprint gallery create {self.uri}`"
            )
        self.created = not exists
        if not exists:
            initial.extra["templates_collection"] = f"{self.prefix}_templates_v1"
            self._create(initial)
        else:  # after a restart or a crash, collections come back released
            self._client.load_collection(self._meta_name)
            self._client.load_collection(self._subjects_name)
        self._settings = self.read_settings()
        if exists and self._settings.dim is not None and self._client.has_collection(self._tpl):
            self._client.load_collection(self._tpl)
        if self._settings.dim is not None:
            self._ensure_templates_collection(self._settings)

    # ----- collections ----------------------------------------------------------------

    @property
    def _meta_name(self) -> str:
        return f"{self.prefix}_meta"

    @property
    def _subjects_name(self) -> str:
        return f"{self.prefix}_subjects"

    @property
    def _tpl(self) -> str:
        return str(self._settings.extra.get("templates_collection") or f"{self.prefix}_templates_v1")

    def _dummy_index(self) -> Any:
        ip = self._client.prepare_index_params()
        ip.add_index(field_name="_v", index_type="FLAT", metric_type="L2")
        return ip

    def _create(self, settings: GallerySettings) -> None:
        pm = _pymilvus()
        DataType = pm.DataType
        c = self._client
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("name", DataType.VARCHAR, max_length=2048)
        s.add_field("info", DataType.JSON)
        s.add_field("_v", DataType.FLOAT_VECTOR, dim=_DUMMY_DIM)
        if not c.has_collection(self._subjects_name):
            self._create_collection(self._subjects_name, s, self._dummy_index())
        m = c.create_schema(auto_id=False, enable_dynamic_field=False)
        m.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        m.add_field("value", DataType.VARCHAR, max_length=65535)
        m.add_field("_v", DataType.FLOAT_VECTOR, dim=_DUMMY_DIM)
        self._create_collection(self._meta_name, m, self._dummy_index())
        self._settings = settings
        self.write_settings(settings)

    def _ensure_templates_collection(self, settings: GallerySettings, name: str | None = None) -> None:
        name = name or str(settings.extra.get("templates_collection"))
        c = self._client
        if c.has_collection(name):
            return
        DataType = _pymilvus().DataType
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("subject_id", DataType.INT64)
        s.add_field("model", DataType.VARCHAR, max_length=512)
        s.add_field("source", DataType.VARCHAR, max_length=512)
        s.add_field("info", DataType.JSON)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=int(settings.dim or 0))
        ip = c.prepare_index_params()
        ip.add_index(field_name="vector", metric_type="IP", **self.index_params)
        self._create_collection(name, s, ip)

    def _create_collection(self, name: str, schema: Any, index_params: Any) -> None:
        # create_collection(index_params=...) waits for the (empty) index in 0.5 s polling steps
        c = self._client
        c.create_collection(name, schema=schema, consistency_level="Strong")
        c.create_index(name, index_params, sync=False)
        c.load_collection(name)

    def read_settings(self) -> GallerySettings:
        rows = self._client.get(self._meta_name, ids=["settings"], output_fields=["value"])
        if not rows:
            raise GalleryError(f"Milvus collection {self._meta_name} at {self.uri} holds no faceprint settings")
        return GallerySettings.from_dict(json.loads(rows[0]["value"]))

    def write_settings(self, settings: GallerySettings) -> None:
        with self._lock:
            self._client.upsert(
                self._meta_name, [{"key": "settings", "value": json.dumps(settings.to_dict()), "_v": [1.0, 0.0]}]
            )
            self._settings = settings

    def version(self) -> int:
        return 0  # Milvus does not say when another client wrote; settings are re-read on each write

    # ----- paging helpers -----------------------------------------------------------------

    def _query_all(self, collection: str, flt: str, fields: list[str]) -> list[dict[str, Any]]:
        first = list(self._client.query(collection, filter=flt, output_fields=fields, limit=_MAX_WINDOW))
        if len(first) < _MAX_WINDOW:
            return first
        it = self._client.query_iterator(collection, batch_size=_PAGE, filter=flt, output_fields=fields)
        out: list[dict[str, Any]] = []
        try:
            while True:
                page = it.next()
                if not page:
                    break
                out.extend(page)
        finally:
            it.close()
        return out

    def _query_ids(self, collection: str, field: str, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), _ID_CHUNK):
            part = ids[start : start + _ID_CHUNK]
            out.extend(self._query_all(collection, f"{field} in {json.dumps(part)}", fields))
        return out

    def _subjects_by_name(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        names = list(names)
        for start in range(0, len(names), _ID_CHUNK):
            part = names[start : start + _ID_CHUNK]
            flt = "name in [" + ", ".join(_lit(n) for n in part) + "]"
            for r in self._query_all(self._subjects_name, flt, ["id", "name", "info"]):
                out[r["name"]] = r
        return out

    # ----- writes ------------------------------------------------------------------------

    def insert(
        self, rows: Sequence[NewTemplate], subject_metadata: Mapping[str, Mapping[str, Any]], *, model: str, dim: int
    ) -> Change:
        now = time.time()
        with self._lock:
            if rows:
                self._fix_model(model, dim)
            names = list(dict.fromkeys([r.subject for r in rows] + list(subject_metadata)))
            existing = self._upsert_subjects(names, subject_metadata, now)
            ids = [_new_id() for _ in rows]
            data = [
                {
                    "id": i,
                    "subject_id": int(existing[r.subject]["id"]),
                    "model": r.model,
                    "source": r.source or "",
                    "info": {
                        "image_sha256": r.image_sha256,
                        "bbox": None if r.bbox is None else list(r.bbox),
                        "quality": r.quality,
                        "metadata": r.metadata,
                        "created": r.created or now,
                        "updated": r.created or now,
                    },
                    "vector": np.asarray(r.vector, np.float32),
                }
                for i, r in zip(ids, rows, strict=True)
            ]
            if data:
                self._client.insert(self._tpl, data)
            self._hint = None
            if self.local and data:  # milvus-lite searches unflushed rows slowly (≈ 1 s per query at 100k)
                self._client.flush(self._tpl)
        return Change(added_ids=np.asarray(ids, np.int64))

    def _fix_model(self, model: str, dim: int) -> None:
        """The gallery's model, fixed by the first enrolment (the settings re-read from Milvus)."""
        stored = self.read_settings()
        if stored.model is None:
            stored.model, stored.dim = model, dim
            self._ensure_templates_collection(stored)
            self.write_settings(stored)
        elif stored.model != model or stored.dim != dim:
            raise EmbeddingMismatchError(f"gallery {self.uri} holds templates of {stored.model}; cannot add {model}")
        self._settings = stored

    def _upsert_subjects(
        self, names: Sequence[str], subject_metadata: Mapping[str, Mapping[str, Any]], now: float
    ) -> dict[str, dict[str, Any]]:
        """Create missing subjects, touch existing ones (merging metadata); returns the rows by name."""
        existing = self._subjects_by_name(names)
        upserts = []
        for n in names:
            if n in existing:
                r = existing[n]
                info = dict(r["info"] or {})
                info["metadata"] = {**(info.get("metadata") or {}), **dict(subject_metadata.get(n) or {})}
                info["updated"] = now
                upserts.append({"id": int(r["id"]), "name": n, "info": info, "_v": [1.0, 0.0]})
            else:
                sid = _new_id()
                info = {"metadata": dict(subject_metadata.get(n) or {}), "created": now, "updated": now}
                upserts.append({"id": sid, "name": n, "info": info, "_v": [1.0, 0.0]})
                existing[n] = {"id": sid, "name": n, "info": info}
        for start in range(0, len(upserts), _PAGE):
            self._client.upsert(self._subjects_name, upserts[start : start + _PAGE])
        return existing

    def delete(self, *, subject: str | None = None, template_ids: Sequence[int] | None = None) -> Change:
        with self._lock:
            self._hint = None
            has_tpl = self._settings.dim is not None and self._client.has_collection(self._tpl)
            if subject is not None:
                found = self._subjects_by_name([subject])
                if subject not in found:
                    raise SubjectNotFoundError(
                        f"no subject {subject!r} in gallery {self.uri}: see `faceprint gallery list`"
                    )
                sid = int(found[subject]["id"])
                gone = self._query_all(self._tpl, f"subject_id == {sid}", ["id", "source"]) if has_tpl else []
                if gone:
                    self._client.delete(self._tpl, filter=f"subject_id == {sid}")
                self._client.delete(self._subjects_name, ids=[sid])
            else:
                if not has_tpl:
                    return Change()
                gone = self._query_ids(self._tpl, "id", template_ids or [], ["id", "source", "subject_id"])
                if gone:
                    self._client.delete(self._tpl, ids=[int(r["id"]) for r in gone])
                    self._touch({int(r["subject_id"]) for r in gone})
            sources = sorted({r["source"] for r in gone if r.get("source")})
            orphans = tuple(sorted(set(sources) - self._sources_in_use(sources))) if sources else ()
        return Change(removed_ids=np.array([int(r["id"]) for r in gone], np.int64), orphaned_sources=orphans)

    def _touch(self, subject_ids: set[int]) -> None:
        rows = self._query_ids(self._subjects_name, "id", sorted(subject_ids), ["id", "name", "info"])
        now = time.time()
        for r in rows:
            r["info"] = {**(r["info"] or {}), "updated": now}
            r["_v"] = [1.0, 0.0]
        if rows:
            self._client.upsert(self._subjects_name, rows)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            found = self._subjects_by_name([old, new])
            if old not in found:
                raise SubjectNotFoundError(f"no subject {old!r} in gallery {self.uri}: see `faceprint gallery list`")
            if new in found and new != old:
                raise SubjectExistsError(
                    f"a subject {new!r} already exists in gallery {self.uri}; remove it or choose another name"
                )
            r = found[old]
            info = {**(r["info"] or {}), "updated": time.time()}
            self._client.upsert(
                self._subjects_name, [{"id": int(r["id"]), "name": new, "info": info, "_v": [1.0, 0.0]}]
            )

    def replace_vectors(
        self, vectors: Mapping[int, npt.NDArray[np.float32]], drop: Sequence[int], settings: GallerySettings
    ) -> Change:
        with self._lock:
            old = self._tpl
            version = int(old.rsplit("_v", 1)[1]) + 1 if "_v" in old else 2
            new = f"{self.prefix}_templates_v{version}"
            if self._client.has_collection(new):  # left over by an interrupted migration
                self._client.drop_collection(new)
            self._ensure_templates_collection(settings, new)
            dropped = {int(i) for i in drop}
            now = time.time()
            batch: list[dict[str, Any]] = []
            for r in self._query_all(old, "", ["id", "subject_id", "model", "source", "info"]):
                tid = int(r["id"])
                if tid in dropped or tid not in vectors:
                    continue
                info = {**(r["info"] or {}), "updated": now}
                batch.append(
                    {**r, "model": settings.model, "info": info, "vector": np.asarray(vectors[tid], np.float32)}
                )
                if len(batch) >= _PAGE:
                    self._client.insert(new, batch)
                    batch = []
            if batch:
                self._client.insert(new, batch)
            settings.extra["templates_collection"] = new
            self.write_settings(settings)  # the switch
            self._client.drop_collection(old)
            self._owner_cache.clear()
        return Change(removed_ids=np.asarray(sorted(dropped), np.int64))

    # ----- reads ---------------------------------------------------------------------------

    def _count(self, collection: str, flt: str = "") -> int:
        if not self._client.has_collection(collection):
            return 0
        res = self._client.query(collection, filter=flt, output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def counts(self, *, exact: bool = True) -> tuple[int, int]:
        now = time.monotonic()
        # two count(*) queries cost ≈ 0.1 s on milvus-lite at 100k: searches reuse them for a second
        if exact or self._hint is None or now - self._hint[0] > 1.0:
            with self._lock:
                n_tpl = self._count(self._tpl) if self._settings.dim is not None else 0
                self._hint = (now, self._count(self._subjects_name), n_tpl)
        return self._hint[1], self._hint[2]

    def _template_counts(self, subject_ids: Sequence[int]) -> dict[int, int]:
        if self._settings.dim is None or not subject_ids:
            return {}
        counts: dict[int, int] = {}
        for r in self._query_ids(self._tpl, "subject_id", subject_ids, ["subject_id"]):
            counts[int(r["subject_id"])] = counts.get(int(r["subject_id"]), 0) + 1
        return counts

    def subject(self, name: str) -> Subject | None:
        with self._lock:
            found = self._subjects_by_name([name])
            if name not in found:
                return None
            r = found[name]
            return _subject(r, self._template_counts([int(r["id"])]).get(int(r["id"]), 0))

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._lock:
            rows = sorted(self._query_all(self._subjects_name, "", ["id", "name", "info"]), key=lambda r: r["name"])
            rows = rows[offset : None if limit is None else offset + limit]
            counts = self._template_counts([int(r["id"]) for r in rows])
        return [_subject(r, counts.get(int(r["id"]), 0)) for r in rows]

    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        fields = ["id", "subject_id", "model", "source", "info"] + (["vector"] if with_vectors else [])
        with self._lock:
            if self._settings.dim is None:
                if subject is not None and subject not in self._subjects_by_name([subject]):
                    raise SubjectNotFoundError(f"no subject {subject!r} in gallery {self.uri}")
                return
            if subject is not None:
                found = self._subjects_by_name([subject])
                if subject not in found:
                    raise SubjectNotFoundError(
                        f"no subject {subject!r} in gallery {self.uri}: see `faceprint gallery list`"
                    )
                names = {int(found[subject]["id"]): subject}
                rows = self._query_all(self._tpl, f"subject_id == {int(found[subject]['id'])}", fields)
            else:
                names = {int(r["id"]): r["name"] for r in self._query_all(self._subjects_name, "", ["id", "name"])}
                rows = self._query_all(self._tpl, "", fields)
        rows.sort(key=lambda r: int(r["id"]))
        for r in rows:
            yield _template(r, names.get(int(r["subject_id"]), ""), with_vectors)

    def template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        if not template_ids:
            return {}
        with self._lock:
            cache = self._owner_cache  # filled by search(): saves a query per identification
            if all(int(t) in cache for t in template_ids):
                rows = [{"id": int(t), "subject_id": cache[int(t)]} for t in template_ids]
            else:
                rows = self._query_ids(self._tpl, "id", template_ids, ["id", "subject_id"])
            sids = sorted({int(r["subject_id"]) for r in rows})
            names = {int(r["id"]): r["name"] for r in self._query_ids(self._subjects_name, "id", sids, ["id", "name"])}
        return {
            int(r["id"]): (int(r["subject_id"]), names[int(r["subject_id"])])
            for r in rows
            if int(r["subject_id"]) in names
        }

    def template_qualities(self, template_ids: Sequence[int]) -> dict[int, float | None]:
        # quality lives in the JSON "info" field: read back with the rows, not filtered in Milvus
        if not len(template_ids):
            return {}
        with self._lock:
            rows = self._query_ids(self._tpl, "id", template_ids, ["id", "info"])
        return {int(r["id"]): _quality(r) for r in rows}

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        with self._lock:
            rows = self._query_ids(self._subjects_name, "id", sorted({int(i) for i in subject_ids}), ["id", "name"])
        return {int(r["id"]): r["name"] for r in rows}

    def subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        with self._lock:
            rows = self._query_ids(self._tpl, "subject_id", subject_ids, ["id", "subject_id", "vector"])
        grouped: dict[int, list[tuple[int, Any]]] = {}
        for r in sorted(rows, key=lambda r: int(r["id"])):
            grouped.setdefault(int(r["subject_id"]), []).append((int(r["id"]), r["vector"]))
        return {
            sid: (np.array([t for t, _ in xs], np.int64), np.asarray([v for _, v in xs], np.float32))
            for sid, xs in grouped.items()
        }

    def _sources_in_use(self, sources: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self._lock:
            for start in range(0, len(sources), _ID_CHUNK):
                part = sources[start : start + _ID_CHUNK]
                flt = "source in [" + ", ".join(_lit(s) for s in part) + "]"
                out.update(r["source"] for r in self._query_all(self._tpl, flt, ["source"]))
        return out

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.local:
            p = Path(self.uri)
            size = (
                sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                if p.is_dir()
                else (p.stat().st_size if p.exists() else 0)
            )
            out["disk_bytes"] = {"database": size}
        return out

    def destroy(self) -> None:
        """Drop the gallery's collections (and a milvus-lite file's data with them), then close."""
        with self._lock:
            names = [self._meta_name, self._subjects_name, self._tpl]
            for name in names:
                if self._client.has_collection(name):
                    self._client.drop_collection(name)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _subject(r: Mapping[str, Any], n: int) -> Subject:
    info = r.get("info") or {}
    return Subject(
        name=r["name"],
        id=int(r["id"]),
        n_templates=n,
        created=float(info.get("created") or 0.0),
        updated=float(info.get("updated") or 0.0),
        metadata=dict(info.get("metadata") or {}),
    )


def _quality(r: Mapping[str, Any]) -> float | None:
    q = (r.get("info") or {}).get("quality")
    return None if q is None else float(q)


def _template(r: Mapping[str, Any], subject: str, with_vector: bool) -> Template:
    info = r.get("info") or {}
    b = info.get("bbox")
    return Template(
        id=int(r["id"]),
        subject=subject,
        model=r["model"],
        image_sha256=info.get("image_sha256"),
        bbox=None if not b else BBox(*(float(v) for v in b)),
        quality=_quality(r),
        created=float(info.get("created") or 0.0),
        updated=float(info.get("updated") or 0.0),
        metadata=dict(info.get("metadata") or {}),
        source=r.get("source") or None,
        vector=np.asarray(r["vector"], np.float32) if with_vector else None,
    )
