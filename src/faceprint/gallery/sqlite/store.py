"""The SQLite template store: subjects, templates (with their float32 vectors) and settings, in WAL mode.

Every enrolment batch, removal or migration is one transaction that also bumps a *generation*
counter and keeps a template count and an id checksum in the ``meta`` table; each template row
records the generation that added it, and removals are logged with theirs. That change log lets
an index (:mod:`.index_file`) follow the store, also across processes (:class:`SqliteStore`
implements :class:`~faceprint.gallery.store.ChangeFeed`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    GalleryError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from ...types import BBox
from ..store import Change, FeedState
from ..values import GallerySettings, NewTemplate, Subject, Template

__all__ = ["SqliteStore", "DB_NAME", "SCHEMA_VERSION"]

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite"
SCHEMA_VERSION = 1
_CHUNK = 50_000
_VEC_DTYPE = np.dtype("<f4")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER NOT NULL REFERENCES subjects(id),
    gen INTEGER NOT NULL,
    model TEXT NOT NULL,
    image_sha256 TEXT,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,
    quality REAL,
    metadata TEXT NOT NULL DEFAULT '{}',
    source TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_subject ON templates(subject_id);
CREATE INDEX IF NOT EXISTS templates_gen ON templates(gen);
CREATE INDEX IF NOT EXISTS templates_source ON templates(source) WHERE source IS NOT NULL;
CREATE TABLE IF NOT EXISTS removed (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL, added_gen INTEGER NOT NULL);
"""

_TPL_COLS = (
    "t.id, s.name, t.model, t.image_sha256, t.x1, t.y1, t.x2, t.y2, t.quality, t.metadata, t.source, "
    "t.created, t.updated"
)
_META_KEYS = ("generation", "epoch", "count", "id_sum", "subjects")


def _ids_json(ids: Sequence[int]) -> str:
    return json.dumps([int(i) for i in ids])


def _vectors(blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
    return np.frombuffer(b"".join(blobs), dtype=_VEC_DTYPE).reshape(len(blobs), -1).astype(np.float32)


class SqliteStore:
    """A gallery's SQLite database (``<folder>/gallery.sqlite``); see the module docstring.

    Args:
        path: the gallery folder.
        create: None: open, or create when missing; True: create (error if it exists);
            False: open (error if missing).
        initial: the settings of a new store.
        synchronous: ``"full"`` (survives power loss) or ``"normal"`` (survives a process crash; faster).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool | None = None,
        initial: GallerySettings | None = None,
        synchronous: str = "full",
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.db = self.path / DB_NAME
        self._lock = threading.RLock()
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        exists = self.db.is_file()
        if create is True and exists:
            raise GalleryError(f"a gallery already exists at {self.path}; open it instead of creating it")
        if create is False and not exists:
            raise GalleryError(f"no gallery at {self.path}: create one with `faceprint gallery create {self.path}`")
        if not exists:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise GalleryError(f"{self.path} exists and is not a faceprint gallery; choose a new or empty folder")
            self.path.mkdir(parents=True, exist_ok=True)
        self.created = not exists
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.db, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        try:
            self._setup(exists, synchronous, initial or GallerySettings())
        except BaseException:
            self.close()
            raise

    def _setup(self, exists: bool, synchronous: str, initial: GallerySettings) -> None:
        c = self.conn
        c.execute("PRAGMA busy_timeout = 60000")
        if not exists:
            c.execute("PRAGMA page_size = 32768")  # 2 KiB vectors pack well; before WAL
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise GalleryError(f"cannot use write-ahead logging on {self.db} (journal mode {mode}); use a local disk")
        c.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if not exists:
            self._create_schema(initial)
        self.read_settings()  # a faceprint gallery of a schema this version reads

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self.path} is closed")
        return self._conn

    # ----- schema, meta and settings --------------------------------------------------------

    def _create_schema(self, settings: GallerySettings) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if c.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone() is None:
                rows: dict[str, int | str] = {"schema_version": SCHEMA_VERSION, **dict.fromkeys(_META_KEYS, 0)}
                rows["settings"] = json.dumps(settings.to_dict())
                c.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in rows.items()])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def read_settings(self) -> GallerySettings:
        with self._lock:
            return _read_settings(self.conn, self.path)

    def write_settings(self, settings: GallerySettings) -> None:
        with self._write():
            self._set_meta(settings=json.dumps(settings.to_dict()))

    def version(self) -> int:
        with self._lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _meta(self) -> _Meta:
        return _meta(self.conn)

    def _set_meta(self, **values: int | str) -> None:
        self.conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(str(v), k) for k, v in values.items()])

    @contextmanager
    def _write(self) -> Iterator[_Meta]:
        """One write transaction (BEGIN IMMEDIATE: the writer lock), yielding the meta it starts from."""
        with self._lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                yield self._meta()
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    # ----- writes ----------------------------------------------------------------------------

    def insert(
        self, rows: Sequence[NewTemplate], subject_metadata: Mapping[str, Mapping[str, Any]], *, model: str, dim: int
    ) -> Change:
        now = time.time()
        names = list(dict.fromkeys([r.subject for r in rows] + list(subject_metadata)))
        with self._write() as m:
            if rows:
                self._fix_model(model, dim)
            ids_by_name, n_new = self._upsert_subjects(names, subject_metadata, now)
            ids = self._insert_templates(rows, ids_by_name, m.generation + 1, now)
            sids = np.array([ids_by_name[r.subject] for r in rows], np.int64)
            gen = m.generation + 1
            self._set_meta(
                generation=gen, count=m.count + len(ids), id_sum=m.id_sum + sum(ids), subjects=m.subjects + n_new
            )
        vecs = np.stack([np.asarray(r.vector, np.float32) for r in rows]) if rows else None
        return Change(np.asarray(ids, np.int64), vecs, sids, base=m.generation, generation=gen, epoch=m.epoch)

    def _fix_model(self, model: str, dim: int) -> None:
        """The gallery's model, fixed by the first enrolment (checked under the write lock)."""
        stored = _read_settings(self.conn, self.path)
        if stored.model is None:
            stored.model, stored.dim = model, dim
            self._set_meta(settings=json.dumps(stored.to_dict()))
        elif stored.model != model or stored.dim != dim:
            raise EmbeddingMismatchError(f"gallery {self.path} holds templates of {stored.model}; cannot add {model}")

    def _subject_ids(self, names: Sequence[str]) -> dict[str, int]:
        return {
            name: int(sid)
            for sid, name in self.conn.execute(
                "SELECT id, name FROM subjects WHERE name IN (SELECT value FROM json_each(?))", (json.dumps(names),)
            )
        }

    def _upsert_subjects(
        self, names: Sequence[str], subject_metadata: Mapping[str, Mapping[str, Any]], now: float
    ) -> tuple[dict[str, int], int]:
        """Create missing subjects, touch and merge metadata into existing ones; (ids by name, new count)."""
        c = self.conn
        ids_by_name = self._subject_ids(names)
        new = [n for n in names if n not in ids_by_name]
        if new:
            c.executemany(
                "INSERT INTO subjects(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                [(n, json.dumps(dict(subject_metadata.get(n) or {})), now, now) for n in new],
            )
            ids_by_name.update(self._subject_ids(new))
        new_set = set(new)
        old = [n for n in names if n not in new_set]
        c.executemany("UPDATE subjects SET updated = ? WHERE id = ?", [(now, ids_by_name[n]) for n in old])
        for n in old:
            md = subject_metadata.get(n)
            if md:
                cur = json.loads(
                    c.execute("SELECT metadata FROM subjects WHERE id = ?", (ids_by_name[n],)).fetchone()[0]
                )
                cur.update(md)
                c.execute("UPDATE subjects SET metadata = ? WHERE id = ?", (json.dumps(cur), ids_by_name[n]))
        return ids_by_name, len(new)

    def _insert_templates(
        self, rows: Sequence[NewTemplate], ids_by_name: Mapping[str, int], gen: int, now: float
    ) -> list[int]:
        c = self.conn
        seq = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'templates'").fetchone()
        first = (int(seq[0]) if seq else 0) + 1
        ids = list(range(first, first + len(rows)))
        c.executemany(
            "INSERT INTO templates(id, subject_id, gen, model, image_sha256, x1, y1, x2, y2, quality, metadata, "
            "source, created, updated, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    ids_by_name[r.subject],
                    gen,
                    r.model,
                    r.image_sha256,
                    *(r.bbox if r.bbox is not None else (None, None, None, None)),
                    r.quality,
                    json.dumps(r.metadata) if r.metadata else "{}",
                    r.source,
                    r.created or now,
                    r.created or now,
                    np.asarray(r.vector, dtype=_VEC_DTYPE).tobytes(),
                )
                for i, r in zip(ids, rows, strict=True)
            ],
        )
        return ids

    def delete(self, *, subject: str | None = None, template_ids: Sequence[int] | None = None) -> Change:
        with self._write() as m:
            c = self.conn
            if subject is not None:
                row = c.execute("SELECT id FROM subjects WHERE name = ?", (subject,)).fetchone()
                if row is None:
                    raise SubjectNotFoundError(
                        f"no subject {subject!r} in gallery {self.path}: see `faceprint gallery list`"
                    )
                sid = int(row[0])
                gone = c.execute("SELECT id, gen, source FROM templates WHERE subject_id = ?", (sid,)).fetchall()
                c.execute("DELETE FROM templates WHERE subject_id = ?", (sid,))
                c.execute("DELETE FROM subjects WHERE id = ?", (sid,))
                n_subjects = m.subjects - 1
            else:
                arg = _ids_json(template_ids or [])
                gone = c.execute(
                    "SELECT id, gen, source FROM templates WHERE id IN (SELECT value FROM json_each(?))", (arg,)
                ).fetchall()
                c.execute(
                    "UPDATE subjects SET updated = ? WHERE id IN (SELECT subject_id FROM templates "
                    "WHERE id IN (SELECT value FROM json_each(?)))",
                    (time.time(), arg),
                )
                c.execute("DELETE FROM templates WHERE id IN (SELECT value FROM json_each(?))", (arg,))
                n_subjects = m.subjects
            gen = self._log_removed([(int(i), int(g)) for i, g, _ in gone], m, subjects=n_subjects)
            orphans = self._orphaned([s for _, _, s in gone if s])
        removed = np.array([int(i) for i, _, _ in gone], np.int64)
        return Change(removed_ids=removed, base=m.generation, generation=gen, epoch=m.epoch, orphaned_sources=orphans)

    def _log_removed(self, gone: Sequence[tuple[int, int]], m: _Meta, **extra: int | str) -> int:
        """Record removed templates in the change log and the meta; returns the new generation."""
        gen = m.generation + 1
        self.conn.executemany(
            "INSERT OR REPLACE INTO removed(id, gen, added_gen) VALUES (?, ?, ?)", [(i, gen, g) for i, g in gone]
        )
        self._set_meta(generation=gen, count=m.count - len(gone), id_sum=m.id_sum - sum(i for i, _ in gone), **extra)
        return gen

    def _orphaned(self, sources: Sequence[str]) -> tuple[str, ...]:
        """Which of these stored images no template refers to any more."""
        if not sources:
            return ()
        in_use = {
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT source FROM templates WHERE source IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(sources))),),
            )
        }
        return tuple(sorted(set(sources) - in_use))

    def rename(self, old: str, new: str) -> None:
        with self._write():
            try:
                cur = self.conn.execute(
                    "UPDATE subjects SET name = ?, updated = ? WHERE name = ?", (new, time.time(), old)
                )
            except sqlite3.IntegrityError:
                raise SubjectExistsError(
                    f"a subject {new!r} already exists in gallery {self.path}; remove it or choose another name"
                ) from None
            if cur.rowcount == 0:
                raise SubjectNotFoundError(f"no subject {old!r} in gallery {self.path}: see `faceprint gallery list`")

    def replace_vectors(
        self, vectors: Mapping[int, npt.NDArray[np.float32]], drop: Sequence[int], settings: GallerySettings
    ) -> Change:
        now = time.time()
        with self._write() as m:
            c = self.conn
            c.executemany(
                "UPDATE templates SET vector = ?, model = ?, updated = ? WHERE id = ?",
                [(np.asarray(v, _VEC_DTYPE).tobytes(), settings.model, now, int(i)) for i, v in vectors.items()],
            )
            gone: list[tuple[int, int]] = []
            if drop:
                arg = (_ids_json(drop),)
                gone = c.execute(
                    "SELECT id, gen FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg
                ).fetchall()
                c.execute("DELETE FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg)
            gen = self._log_removed(gone, m, epoch=m.epoch + 1, settings=json.dumps(settings.to_dict()))
        return Change(
            removed_ids=np.array([i for i, _ in gone], np.int64), base=m.generation, generation=gen, epoch=m.epoch + 1
        )

    # ----- reads ------------------------------------------------------------------------

    def counts(self, *, exact: bool = True) -> tuple[int, int]:
        with self._lock:
            m = self._meta()
        return m.subjects, m.count

    def subject(self, name: str) -> Subject | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT s.id, s.name, s.metadata, s.created, s.updated, "
                "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) FROM subjects s WHERE s.name = ?",
                (name,),
            ).fetchone()
        return None if row is None else _subject(row)

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT s.id, s.name, s.metadata, s.created, s.updated, "
                "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) FROM subjects s ORDER BY s.name "
                "LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset)),
            ).fetchall()
        return [_subject(r) for r in rows]

    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        cols = _TPL_COLS + (", t.vector" if with_vectors else "")
        if subject is not None:
            with self._lock:
                sid = self.conn.execute("SELECT id FROM subjects WHERE name = ?", (subject,)).fetchone()
                if sid is None:
                    raise SubjectNotFoundError(
                        f"no subject {subject!r} in gallery {self.path}: see `faceprint gallery list`"
                    )
                rows = self.conn.execute(
                    f"SELECT {cols} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                    "WHERE t.subject_id = ? ORDER BY t.id",
                    (int(sid[0]),),
                ).fetchall()
            yield from (_template(r, with_vectors) for r in rows)
            return
        last = 0
        while True:  # keyset pages, each read under the lock: callers may use the store meanwhile
            with self._lock:
                rows = self.conn.execute(
                    f"SELECT {cols} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                    "WHERE t.id > ? ORDER BY t.id LIMIT 5000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            yield from (_template(r, with_vectors) for r in rows)
            last = int(rows[-1][0])

    def template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        if not len(template_ids):
            return {}
        with self._lock:
            rows = self.conn.execute(
                "SELECT t.id, t.subject_id, s.name FROM templates t JOIN subjects s ON s.id = t.subject_id "
                "WHERE t.id IN (SELECT value FROM json_each(?))",
                (_ids_json(template_ids),),
            ).fetchall()
        return {int(t): (int(s), name) for t, s, name in rows}

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        if not len(subject_ids):
            return {}
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, name FROM subjects WHERE id IN (SELECT value FROM json_each(?))", (_ids_json(subject_ids),)
            ).fetchall()
        return {int(i): name for i, name in rows}

    def subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT subject_id, id, vector FROM templates "
                "WHERE subject_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (_ids_json(subject_ids),),
            ).fetchall()
        grouped: dict[int, tuple[list[int], list[bytes]]] = {}
        for sid, tid, blob in rows:
            g = grouped.setdefault(int(sid), ([], []))
            g[0].append(int(tid))
            g[1].append(blob)
        return {sid: (np.asarray(t, np.int64), _vectors(b)) for sid, (t, b) in grouped.items()}

    def vectors(self, template_ids: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, vector FROM templates WHERE id IN (SELECT value FROM json_each(?))",
                (_ids_json(template_ids),),
            ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.array([r[0] for r in rows], np.int64), _vectors([r[1] for r in rows])

    def all_ids(self) -> set[int]:
        with self._lock:
            return {int(r[0]) for r in self.conn.execute("SELECT id FROM templates")}

    def stats(self) -> dict[str, Any]:
        def size(p: Path) -> int:
            return p.stat().st_size if p.exists() else 0

        return {"disk_bytes": {"database": size(self.db) + size(self.path / (DB_NAME + "-wal"))}}

    # ----- the change feed ------------------------------------------------------------------

    @contextmanager
    def snapshot(self, *, own_connection: bool = False) -> Iterator[SqliteReader]:
        """A read snapshot (one transaction) of the store, for an index to catch up or rebuild from."""
        if own_connection:
            conn = sqlite3.connect(self.db, isolation_level=None, timeout=60.0)
            try:
                conn.execute("PRAGMA query_only = 1")
                conn.execute("BEGIN")
                yield SqliteReader(conn, self.path)
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield SqliteReader(self.conn, self.path)
            finally:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class SqliteReader:
    """The :class:`~faceprint.gallery.store.FeedReader` of a :class:`SqliteStore` snapshot."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def state(self) -> FeedState:
        return _meta(self.conn).state()

    def settings(self) -> GallerySettings:
        return _read_settings(self.conn, self.path)

    def removed_since(self, generation: int) -> list[tuple[int, int]]:
        rows = self.conn.execute("SELECT id, added_gen FROM removed WHERE gen > ?", (generation,)).fetchall()
        return [(int(i), int(g)) for i, g in rows]

    def added_since(
        self, generation: int
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        cur = self.conn.execute("SELECT id, subject_id, vector FROM templates WHERE gen > ? ORDER BY id", (generation,))
        while rows := cur.fetchmany(_CHUNK):
            ids = np.array([r[0] for r in rows], np.int64)
            yield ids, np.array([r[1] for r in rows], np.int64), _vectors([r[2] for r in rows])

    def owners(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        # the subject index holds (subject_id, id): a covering scan, without reading the vectors
        pairs = np.array(
            self.conn.execute("SELECT id, subject_id FROM templates INDEXED BY templates_subject").fetchall(), np.int64
        ).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]

    def sample(self, n: int, seed: int) -> npt.NDArray[np.float32]:
        all_ids = np.array([r[0] for r in self.conn.execute("SELECT id FROM templates")], np.int64)
        pick = np.sort(np.random.default_rng(seed).choice(all_ids, min(n, all_ids.size), replace=False))
        out: list[bytes] = []
        for start in range(0, pick.size, _CHUNK):
            part = _ids_json(pick[start : start + _CHUNK].tolist())
            out.extend(
                b
                for (b,) in self.conn.execute(
                    "SELECT vector FROM templates WHERE id IN (SELECT value FROM json_each(?))", (part,)
                )
            )
        return _vectors(out) if out else np.zeros((0, 1), np.float32)


# --- row helpers -----------------------------------------------------------------------------


def _read_settings(conn: sqlite3.Connection, path: Path) -> GallerySettings:
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('schema_version', 'settings')"))
    except sqlite3.OperationalError as exc:  # no meta table: some other SQLite file
        raise GalleryError(f"{path / DB_NAME} is not a faceprint gallery database: {exc}") from exc
    if "schema_version" not in rows:
        raise GalleryError(f"{path / DB_NAME} is not a faceprint gallery database (no schema version)")
    if int(rows["schema_version"]) > SCHEMA_VERSION:
        raise GalleryError(
            f"gallery {path} has schema version {rows['schema_version']}; this faceprint reads up to "
            f"{SCHEMA_VERSION}: upgrade faceprint"
        )
    return GallerySettings.from_dict(json.loads(rows["settings"]))


@dataclass(frozen=True, slots=True)
class _Meta:
    """The ``meta`` counters: the change log's state and the subject count."""

    generation: int
    epoch: int
    count: int
    id_sum: int
    subjects: int

    def state(self) -> FeedState:
        return FeedState(self.generation, self.epoch, self.count, self.id_sum)


def _meta(conn: sqlite3.Connection) -> _Meta:
    rows = dict(
        conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'epoch', 'count', 'id_sum', 'subjects')")
    )
    return _Meta(*(int(rows[k]) for k in _META_KEYS))


def _subject(row: Sequence[Any]) -> Subject:
    sid, name, md, created, updated, n = row
    return Subject(
        name=name,
        id=int(sid),
        n_templates=int(n),
        created=float(created),
        updated=float(updated),
        metadata=json.loads(md),
    )


def _template(row: Sequence[Any], with_vector: bool) -> Template:
    tid, name, model, sha, x1, y1, x2, y2, q, md, source, created, updated = row[:13]
    vec = np.frombuffer(row[13], dtype=_VEC_DTYPE).astype(np.float32) if with_vector else None
    return Template(
        id=int(tid),
        subject=name,
        model=model,
        image_sha256=sha,
        bbox=None if x1 is None else BBox(float(x1), float(y1), float(x2), float(y2)),
        quality=None if q is None else float(q),
        created=float(created),
        updated=float(updated),
        metadata=json.loads(md) if md else {},
        source=source,
        vector=vec,
    )
