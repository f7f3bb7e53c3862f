"""The SQLite gallery's schema, its row readers, and how SQLite errors become faceprint errors.

A read snapshot of the store is a :class:`SqliteReader` (the
:class:`~faceprint.gallery.store.FeedReader` an index catches up or rebuilds from).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import CorruptStoreError, GalleryError
from ...types import BBox
from ..store import FeedState
from ..values import GallerySettings, Subject, Template

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "SqliteReader",
    "sqlite_errors",
    "is_damage",
    "damaged",
    "open_read_only",
    "read_settings_and_counts",
]

DB_NAME = "gallery.sqlite"
SCHEMA_VERSION = 1
CHUNK = 50_000
VEC_DTYPE = np.dtype("<f4")

SCHEMA = """
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

TPL_COLS = (
    "t.id, s.name, t.model, t.image_sha256, t.x1, t.y1, t.x2, t.y2, t.quality, t.metadata, t.source, "
    "t.created, t.updated"
)
META_KEYS = ("generation", "epoch", "count", "id_sum", "subjects")


_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether a SQLite error says the database file is damaged (not busy, full, read-only…)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (int(code) & 0xFF) in _DAMAGE_CODES
    return "malformed" in str(exc) or "not a database" in str(exc)


def damaged(path: Path, exc: BaseException | str) -> CorruptStoreError:
    db = path / DB_NAME
    return CorruptStoreError(
        f"gallery database {db} is damaged ({exc}); restore it from a backup or export, "
        f"or remove the gallery folder {path} (`faceprint gallery destroy`)",
        path=str(db),
    )


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite errors as faceprint errors: a damaged file → :class:`~faceprint.errors.CorruptStoreError`,
    anything else (locked, read-only, disk full…) → :class:`~faceprint.errors.GalleryError`."""
    try:
        yield
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
            raise damaged(path, exc) from exc
        raise GalleryError(f"gallery database {path / DB_NAME}: {exc}") from exc


def ids_json(ids: Sequence[int]) -> str:
    return json.dumps([int(i) for i in ids])


def vectors_of(blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
    return np.frombuffer(b"".join(blobs), dtype=VEC_DTYPE).reshape(len(blobs), -1).astype(np.float32)


class SqliteReader:
    """The :class:`~faceprint.gallery.store.FeedReader` of a :class:`SqliteStore` snapshot."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def state(self) -> FeedState:
        return read_meta(self.conn).state()

    def settings(self) -> GallerySettings:
        return read_settings_row(self.conn, self.path)

    def removed_since(self, generation: int) -> list[tuple[int, int]]:
        rows = self.conn.execute("SELECT id, added_gen FROM removed WHERE gen > ?", (generation,)).fetchall()
        return [(int(i), int(g)) for i, g in rows]

    def added_since(
        self, generation: int
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        cur = self.conn.execute("SELECT id, subject_id, vector FROM templates WHERE gen > ? ORDER BY id", (generation,))
        while rows := cur.fetchmany(CHUNK):
            ids = np.array([r[0] for r in rows], np.int64)
            yield ids, np.array([r[1] for r in rows], np.int64), vectors_of([r[2] for r in rows])

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
        for start in range(0, pick.size, CHUNK):
            part = ids_json(pick[start : start + CHUNK].tolist())
            out.extend(
                b
                for (b,) in self.conn.execute(
                    "SELECT vector FROM templates WHERE id IN (SELECT value FROM json_each(?))", (part,)
                )
            )
        return vectors_of(out) if out else np.zeros((0, 1), np.float32)


# --- row helpers -----------------------------------------------------------------------------


def open_read_only(db: Path) -> sqlite3.Connection:
    """A connection that only reads (for checks that must not change or lock a gallery for long)."""
    with sqlite_errors(db.parent):
        conn = sqlite3.connect(db, isolation_level=None, timeout=1.0)
        conn.execute("PRAGMA query_only = 1")
    return conn


def read_settings_and_counts(conn: sqlite3.Connection, path: Path) -> tuple[GallerySettings, int, int]:
    """(settings, subjects, templates) of a gallery database: what opening it needs to read."""
    with sqlite_errors(path):
        m = read_meta(conn)
        n = conn.execute("SELECT count(*) FROM subjects").fetchone()[0]
        return read_settings_row(conn, path), int(n), m.count


def read_settings_row(conn: sqlite3.Connection, path: Path) -> GallerySettings:
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
class Meta:
    """The ``meta`` counters: the change log's state and the subject count."""

    generation: int
    epoch: int
    count: int
    id_sum: int
    subjects: int

    def state(self) -> FeedState:
        return FeedState(self.generation, self.epoch, self.count, self.id_sum)


def read_meta(conn: sqlite3.Connection) -> Meta:
    rows = dict(
        conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'epoch', 'count', 'id_sum', 'subjects')")
    )
    return Meta(*(int(rows[k]) for k in META_KEYS))


def subject_row(row: Sequence[Any]) -> Subject:
    sid, name, md, created, updated, n = row
    return Subject(
        name=name,
        id=int(sid),
        n_templates=int(n),
        created=float(created),
        updated=float(updated),
        metadata=json.loads(md),
    )


def template_row(row: Sequence[Any], with_vector: bool) -> Template:
    tid, name, model, sha, x1, y1, x2, y2, q, md, source, created, updated = row[:13]
    vec = np.frombuffer(row[13], dtype=VEC_DTYPE).astype(np.float32) if with_vector else None
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
