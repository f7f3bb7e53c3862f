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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    FaceprintError,
    GalleryError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from ..files import private_dir, private_file, tighten
from ..store import Change
from ..values import GallerySettings, NewTemplate, Subject, Template
from .schema import (
    CHUNK,
    DB_NAME,
    META_KEYS,
    SCHEMA,
    SCHEMA_VERSION,
    TPL_COLS,
    VEC_DTYPE,
    Meta,
    SqliteReader,
    damaged,
    ids_json,
    is_damage,
    open_read_only,
    read_meta,
    read_settings_and_counts,
    read_settings_row,
    sqlite_errors,
    subject_row,
    template_row,
    vectors_of,
)

__all__ = [
    "SqliteStore",
    "DB_NAME",
    "SCHEMA_VERSION",
    "sqlite_errors",
    "is_damage",
    "damaged",
    "open_read_only",
    "read_settings_and_counts",
    "SqliteReader",
]

log = logging.getLogger(__name__)


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
        self._purge_pending = False
        self._conn: sqlite3.Connection | None = None
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        exists = self._exists()
        if create is True and exists:
            raise GalleryError(f"a gallery already exists at {self.path}; open it instead of creating it")
        if create is False and not exists:
            raise GalleryError(f"no gallery at {self.path}: create one with `faceprint gallery create {self.path}`")
        self.created = not exists
        try:
            self._prepare_files(exists)
            with sqlite_errors(self.path):
                self._conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False, timeout=60.0)
                self._setup(exists, synchronous, initial or GallerySettings())
        except FaceprintError:  # CorruptStoreError is an OSError too: keep it as it is
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise GalleryError(f"cannot {'open' if exists else 'create'} a gallery at {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _exists(self) -> bool:
        """Whether a gallery database is there (an empty file left by a creation that never
        finished is not one; an empty file beside an index or images is a damaged gallery)."""
        if not self.db.is_file():
            return False
        if self.db.stat().st_size > 0:
            return True
        if {e.name for e in self.path.iterdir()} - {DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"}:
            raise damaged(self.path, "the database file is empty")
        return False

    def _prepare_files(self, exists: bool) -> None:
        """A new gallery: a private (0700) empty folder and a 0600 database file; an existing
        one: its files tightened to those modes."""
        if not exists:
            others = self.path.is_dir() and {e.name for e in self.path.iterdir()} - {DB_NAME}
            if self.path.exists() and (not self.path.is_dir() or others):
                raise GalleryError(f"{self.path} exists and is not a faceprint gallery; choose a new or empty folder")
            private_dir(self.path)
            private_file(self.db)
            return
        for p in (self.path, self.db, self.path / (DB_NAME + "-wal"), self.path / (DB_NAME + "-shm")):
            if p.exists():
                tighten(p)

    def _setup(self, exists: bool, synchronous: str, initial: GallerySettings) -> None:
        c = self.conn
        c.execute("PRAGMA busy_timeout = 60000")
        if not exists:
            c.execute("PRAGMA page_size = 32768")  # 2 KiB vectors pack well; before WAL
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise GalleryError(f"cannot use write-ahead logging on {self.db} (journal mode {mode}); use a local disk")
        c.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        c.execute("PRAGMA secure_delete = ON")  # deleted templates are overwritten, not left in free space
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
            for stmt in SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if c.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone() is None:
                rows: dict[str, int | str] = {"schema_version": SCHEMA_VERSION, **dict.fromkeys(META_KEYS, 0)}
                rows["settings"] = json.dumps(settings.to_dict())
                c.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in rows.items()])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def read_settings(self) -> GallerySettings:
        with self._locked():
            return read_settings_row(self.conn, self.path)

    def write_settings(self, settings: GallerySettings) -> None:
        with self._write():
            self._set_meta(settings=json.dumps(settings.to_dict()))

    def version(self) -> int:
        with self._locked():
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _meta(self) -> Meta:
        return read_meta(self.conn)

    def _set_meta(self, **values: int | str) -> None:
        self.conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(str(v), k) for k, v in values.items()])

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The connection's lock, with SQLite errors turned into faceprint's (see :func:`sqlite_errors`)."""
        with self._lock, sqlite_errors(self.path):
            yield

    @contextmanager
    def _write(self) -> Iterator[Meta]:
        """One write transaction (BEGIN IMMEDIATE: the writer lock), yielding the meta it starts from."""
        with self._locked():
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
        if self._purge_pending:
            self.purge()
        vecs = np.stack([np.asarray(r.vector, np.float32) for r in rows]) if rows else None
        return Change(np.asarray(ids, np.int64), vecs, sids, base=m.generation, generation=gen, epoch=m.epoch)

    def _fix_model(self, model: str, dim: int) -> None:
        """The gallery's model, fixed by the first enrolment (checked under the write lock)."""
        stored = read_settings_row(self.conn, self.path)
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
                    np.asarray(r.vector, dtype=VEC_DTYPE).tobytes(),
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
                arg = ids_json(template_ids or [])
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
        if gone:
            self.purge()
        return Change(removed_ids=removed, base=m.generation, generation=gen, epoch=m.epoch, orphaned_sources=orphans)

    def _log_removed(self, gone: Sequence[tuple[int, int]], m: Meta, **extra: int | str) -> int:
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
                [(np.asarray(v, VEC_DTYPE).tobytes(), settings.model, now, int(i)) for i, v in vectors.items()],
            )
            gone: list[tuple[int, int]] = []
            if drop:
                arg = (ids_json(drop),)
                gone = c.execute(
                    "SELECT id, gen FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg
                ).fetchall()
                c.execute("DELETE FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg)
            gen = self._log_removed(gone, m, epoch=m.epoch + 1, settings=json.dumps(settings.to_dict()))
        self.purge()  # the old vectors' pages
        return Change(
            removed_ids=np.array([i for i, _ in gone], np.int64), base=m.generation, generation=gen, epoch=m.epoch + 1
        )

    # ----- reads ------------------------------------------------------------------------

    def counts(self, *, exact: bool = True) -> tuple[int, int]:
        with self._locked():
            m = self._meta()
        return m.subjects, m.count

    def subject(self, name: str) -> Subject | None:
        with self._locked():
            row = self.conn.execute(
                "SELECT s.id, s.name, s.metadata, s.created, s.updated, "
                "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) FROM subjects s WHERE s.name = ?",
                (name,),
            ).fetchone()
        return None if row is None else subject_row(row)

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._locked():
            rows = self.conn.execute(
                "SELECT s.id, s.name, s.metadata, s.created, s.updated, "
                "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) FROM subjects s ORDER BY s.name "
                "LIMIT ? OFFSET ?",
                (-1 if limit is None else int(limit), int(offset)),
            ).fetchall()
        return [subject_row(r) for r in rows]

    def templates(self, subject: str | None = None, *, with_vectors: bool = False) -> Iterator[Template]:
        cols = TPL_COLS + (", t.vector" if with_vectors else "")
        if subject is not None:
            with self._locked():
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
            yield from (template_row(r, with_vectors) for r in rows)
            return
        last = 0
        while True:  # keyset pages, each read under the lock: callers may use the store meanwhile
            with self._locked():
                rows = self.conn.execute(
                    f"SELECT {cols} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                    "WHERE t.id > ? ORDER BY t.id LIMIT 5000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            yield from (template_row(r, with_vectors) for r in rows)
            last = int(rows[-1][0])

    def template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        if not len(template_ids):
            return {}
        with self._locked():
            rows = self.conn.execute(
                "SELECT t.id, t.subject_id, s.name FROM templates t JOIN subjects s ON s.id = t.subject_id "
                "WHERE t.id IN (SELECT value FROM json_each(?))",
                (ids_json(template_ids),),
            ).fetchall()
        return {int(t): (int(s), name) for t, s, name in rows}

    def template_qualities(self, template_ids: Sequence[int]) -> dict[int, float | None]:
        if not len(template_ids):
            return {}
        with self._locked():
            rows = self.conn.execute(
                "SELECT id, quality FROM templates WHERE id IN (SELECT value FROM json_each(?))",
                (ids_json(template_ids),),
            ).fetchall()
        return {int(t): None if q is None else float(q) for t, q in rows}

    def subject_names(self, subject_ids: Sequence[int]) -> dict[int, str]:
        if not len(subject_ids):
            return {}
        with self._locked():
            rows = self.conn.execute(
                "SELECT id, name FROM subjects WHERE id IN (SELECT value FROM json_each(?))", (ids_json(subject_ids),)
            ).fetchall()
        return {int(i): name for i, name in rows}

    def subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        with self._locked():
            rows = self.conn.execute(
                "SELECT subject_id, id, vector FROM templates "
                "WHERE subject_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (ids_json(subject_ids),),
            ).fetchall()
        grouped: dict[int, tuple[list[int], list[bytes]]] = {}
        for sid, tid, blob in rows:
            g = grouped.setdefault(int(sid), ([], []))
            g[0].append(int(tid))
            g[1].append(blob)
        return {sid: (np.asarray(t, np.int64), vectors_of(b)) for sid, (t, b) in grouped.items()}

    def vectors(self, template_ids: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        with self._locked():
            rows = self.conn.execute(
                "SELECT id, vector FROM templates WHERE id IN (SELECT value FROM json_each(?))",
                (ids_json(template_ids),),
            ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.array([r[0] for r in rows], np.int64), vectors_of([r[1] for r in rows])

    def rows_upto(
        self, generation: int
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        with sqlite_errors(self.path):
            conn = sqlite3.connect(self.db, isolation_level=None, timeout=60.0)
        try:
            conn.execute("PRAGMA query_only = 1")
            last = 0
            while True:
                with sqlite_errors(self.path):  # autocommit: each SELECT is its own read transaction
                    rows = conn.execute(
                        "SELECT id, subject_id, vector FROM templates WHERE id > ? AND gen <= ? ORDER BY id LIMIT ?",
                        (last, generation, CHUNK),
                    ).fetchall()
                if not rows:
                    return
                last = int(rows[-1][0])
                yield (
                    np.array([r[0] for r in rows], np.int64),
                    np.array([r[1] for r in rows], np.int64),
                    vectors_of([r[2] for r in rows]),
                )
        finally:
            conn.close()

    def all_ids(self) -> set[int]:
        with self._locked():
            return {int(r[0]) for r in self.conn.execute("SELECT id FROM templates")}

    def stats(self) -> dict[str, Any]:
        def size(p: Path) -> int:
            return p.stat().st_size if p.exists() else 0

        return {"disk_bytes": {"database": size(self.db) + size(self.path / (DB_NAME + "-wal"))}}

    # ----- the change feed ------------------------------------------------------------------

    @contextmanager
    def snapshot(self, *, own_connection: bool = False) -> Iterator[SqliteReader]:
        """A read snapshot (one transaction) of the store, for an index to catch up or rebuild from."""
        with sqlite_errors(self.path), self._snapshot(own_connection) as r:
            yield r

    @contextmanager
    def _snapshot(self, own_connection: bool) -> Iterator[SqliteReader]:
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
        with self._locked():
            self.conn.execute("BEGIN")
            try:
                yield SqliteReader(self.conn, self.path)
            finally:
                self.conn.execute("COMMIT")

    def destroy(self) -> None:
        """Close and delete the gallery folder (the database, the index file, kept images)."""
        from ..files import remove_gallery

        self.close()
        remove_gallery(self.path)

    def purge(self) -> bool:
        """Checkpoint the write-ahead log into the database and truncate it, so that no earlier
        version of a page — one holding a removed template — stays in the ``-wal`` file (deleted
        rows are overwritten in the database itself: ``secure_delete``). False when a reader
        still uses an older snapshot; it is tried again after the next write and on close."""
        with self._locked():
            c = self.conn
            c.execute("PRAGMA busy_timeout = 200")
            try:
                busy, _frames, _copied = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                c.execute("PRAGMA busy_timeout = 60000")
        self._purge_pending = bool(busy)
        if busy:
            log.info("a reader holds an old snapshot of %s: the write-ahead log is truncated later", self.db)
        return not busy

    def close(self) -> None:
        if self._conn is not None and self._purge_pending:
            try:
                self.purge()
            except GalleryError as exc:
                log.warning("could not truncate the write-ahead log of %s: %s", self.db, exc)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
