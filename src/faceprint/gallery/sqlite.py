"""The embedded gallery: SQLite (WAL) for the truth, a faiss index beside it for search.

Layout of a gallery folder::

    gallery.sqlite   subjects, templates (with their float32 vectors), settings — the truth
    index.faiss      the vector index: a small JSON header (generation, counts, checksum) + faiss data
    images/          stored source images (content-addressed), when keep_source_images=True

Every enrolment batch, removal or migration is one SQLite transaction that also bumps a
*generation* counter and keeps a template count and an id checksum in the ``meta`` table; each
template row records the generation that added it, and removals are logged with theirs. The
index file's header records the generation, count and checksum it reflects, so on open (or when
another process has written since) the index is brought up to date by replaying only the rows of
later generations; a missing, unreadable or inconsistent index is rebuilt from SQLite. The index
file is written on :meth:`SqliteGallery.close` (and after a rebuild), atomically: a crash loses
no template, only the replay work.

Search is exact (``IndexFlatIP``) while ``templates × dim`` is at most :data:`EXACT_BUDGET`
(≈ 31k templates of 128-D, 8k of 512-D), then IVF (``IndexIVFFlat``, nlist ≈ 4·√N centroids
found by spherical k-means, an exact coarse quantizer; ``nprobe`` = max(64, nlist / 32) capped by
a scan budget, see :func:`auto_nprobe`); the IVF is
retrained when the gallery has grown 4× since it was trained. The figures come from
``benchmarks/bench_gallery.py`` (see ``benchmarks/RESULTS.md``).

Readers in other threads or processes never block the writer (WAL); each gallery object picks
up other processes' commits before it searches (``PRAGMA data_version``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptStoreError,
    EmbeddingMismatchError,
    GalleryError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from ..types import BBox
from .base import Gallery, GallerySettings, NewTemplate, Subject, Template, _as_matrix, check_reopen, creation_settings

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = ["SqliteGallery", "EXACT_BUDGET", "DB_NAME", "INDEX_NAME", "IMAGES_DIR"]

log = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite"
INDEX_NAME = "index.faiss"
IMAGES_DIR = "images"
SCHEMA_VERSION = 1
INDEX_MAGIC = b"FPGIDX01"
INDEX_FORMAT_VERSION = 1

#: Search stays exact while templates × dim ≤ this (single-query exact search then takes
#: ≲ 0.5 ms on one core; measured by benchmarks/bench_gallery.py --sweep).
EXACT_BUDGET = 4_000_000
#: Vector components (multiply-adds) an IVF search may scan by default: ≈ 1.5–2 ms on one core.
SCAN_BUDGET = 10_000_000
#: IVF is retrained once the gallery has grown this many times since training.
RETRAIN_GROWTH = 4
#: k-means training points per IVF centroid (half as many above 2048 lists, to bound training time).
TRAIN_POINTS_PER_CENTROID = 32
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


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency of the gallery
        raise BackendUnavailableError("the SQLite gallery needs faiss: pip install faiss-cpu") from exc
    return faiss


@contextmanager
def _omp_threads(n: int | None) -> Iterator[None]:
    """Run faiss with ``n`` OpenMP threads in this thread (None: leave as is)."""
    if not n:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def auto_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: the power of two nearest 4·√n, within [64, 65536].

    More, smaller lists reach the same recall scanning a smaller share of the gallery (at 1M ×
    512, nlist 4096 needs ≈ 1.6 % for recall@10 0.99, nlist 2048 ≈ 3 %), at the cost of k-means time.
    """
    target = 4.0 * math.sqrt(max(n, 1))
    return int(min(65536, max(64, 2 ** round(math.log2(target)))))


def auto_nprobe(nlist: int, ntotal: int, dim: int) -> int:
    """Lists searched per query: max(64, nlist / 32), fewer when that would scan more than
    :data:`SCAN_BUDGET` vector components, at least 16.

    Measured on synthetic galleries (benchmarks/RESULTS.md): recall@10 0.998 at 100k × 128
    (64 of 1024 lists) and at 1M × 128 (128 of 4096); 0.991 at 1M × 512 (80 of 4096, the budget).
    """
    per_list = max(1.0, ntotal / max(nlist, 1))
    by_budget = int(SCAN_BUDGET / (per_list * max(dim, 1)))
    return int(min(nlist, max(16, min(max(64, nlist // 32), by_budget))))


@dataclass(slots=True)
class _Meta:
    generation: int
    epoch: int
    count: int
    id_sum: int
    subjects: int


@dataclass(slots=True)
class _IndexState:
    index: Any
    kind: str  # "flat" | "ivf"
    generation: int
    epoch: int
    count: int
    id_sum: int
    nlist: int = 0
    trained_n: int = 0
    saved_generation: int = -1
    #: owner[template id] = subject id (-1: not in the index); saves a database lookup per search
    owner: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


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
        strategy: (creation only) default subject scoring, ``"max"`` or ``"mean"``.
        index_type: (creation only) ``"auto"`` (exact, then IVF past the exact budget),
            ``"flat"`` (always exact) or ``"ivf"``.
        exact_limit, nlist, nprobe: (creation only) override the automatic index sizes.
        synchronous: SQLite durability: ``"full"`` (survives power loss) or ``"normal"``
            (survives a process crash; faster).
        search_threads: OpenMP threads faiss uses per search (1 keeps single-query latency low
            on a busy machine; None: faiss's default).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool | None = None,
        pipeline: FacePipeline | None = None,
        keep_source_images: bool | None = None,
        strategy: str | None = None,
        index_type: str | None = None,
        exact_limit: int | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        synchronous: str = "full",
        search_threads: int | None = 1,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.location = str(self.path)
        self.search_threads = search_threads
        self._lock = threading.RLock()
        self._state: _IndexState | None = None
        self._data_version = -1
        if synchronous.lower() not in ("full", "normal", "extra"):
            raise ConfigurationError(f"synchronous must be 'full' or 'normal', got {synchronous!r}")
        db = self.path / DB_NAME
        exists = db.is_file()
        if create is True and exists:
            raise GalleryError(f"a gallery already exists at {self.path}; open it instead of creating it")
        if create is False and not exists:
            raise GalleryError(f"no gallery at {self.path}: create one with `faceprint gallery create {self.path}`")
        if not exists:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise GalleryError(f"{self.path} exists and is not a faceprint gallery; choose a new or empty folder")
            self.path.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=60.0)
        try:
            self._conn.execute("PRAGMA busy_timeout = 60000")
            if not exists:
                self._conn.execute("PRAGMA page_size = 32768")  # 2 KiB vectors pack well; before WAL
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise GalleryError(f"cannot use write-ahead logging on {db} (journal mode {mode}); use a local disk")
            self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            if not exists:
                self._create_schema(
                    creation_settings(pipeline, keep_source_images, strategy, index_type, exact_limit, nlist, nprobe)
                )
            self._settings = self._read_settings()
            check_reopen(self._settings, keep_source_images, strategy, index_type, exact_limit, nlist, nprobe, exists)
            if pipeline is not None:
                self._check_model_tag(
                    f"{pipeline.embedder.model_id}@{pipeline.embedder.model_version}",
                    pipeline.embedder.dim,
                    what="the given pipeline's embedder",
                )
                self._pipeline = pipeline
            with self._lock:
                self._sync()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise CorruptStoreError(
                f"gallery database {db} is damaged ({exc}); restore it from a backup or export, "
                f"or remove the gallery folder {self.path}",
                path=str(db),
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    # ----- schema and meta --------------------------------------------------------------

    def _create_schema(self, settings: GallerySettings) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            if c.execute("SELECT 1 FROM meta WHERE key='schema_version'").fetchone() is None:
                rows = {
                    "schema_version": SCHEMA_VERSION,
                    "generation": 0,
                    "epoch": 0,
                    "count": 0,
                    "id_sum": 0,
                    "subjects": 0,
                    "settings": json.dumps(settings.to_dict()),
                }
                c.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in rows.items()])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _read_settings(self) -> GallerySettings:
        try:
            rows = dict(self._conn.execute("SELECT key, value FROM meta WHERE key IN ('schema_version', 'settings')"))
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path / DB_NAME} is not a faceprint gallery database: {exc}") from exc
        if "schema_version" not in rows:
            raise GalleryError(f"{self.path / DB_NAME} is not a faceprint gallery database (no schema version)")
        if int(rows["schema_version"]) > SCHEMA_VERSION:
            raise GalleryError(
                f"gallery {self.path} has schema version {rows['schema_version']}; this faceprint reads up to "
                f"{SCHEMA_VERSION}: upgrade faceprint"
            )
        return GallerySettings.from_dict(json.loads(rows["settings"]))

    def _meta(self) -> _Meta:
        rows = dict(
            self._conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('generation', 'epoch', 'count', 'id_sum', 'subjects')"
            )
        )
        return _Meta(*(int(rows[k]) for k in ("generation", "epoch", "count", "id_sum", "subjects")))

    def _set_meta(self, **values: int | str) -> None:
        self._conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(str(v), k) for k, v in values.items()])

    @contextmanager
    def _write(self) -> Iterator[_Meta]:
        """One write transaction (BEGIN IMMEDIATE: the writer lock), yielding the meta it starts from."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                yield self._meta()
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _write_settings(self, settings: GallerySettings) -> None:
        with self._write():
            self._set_meta(settings=json.dumps(settings.to_dict()))
        self._settings = settings
        if self._state is not None:
            self._apply_search_params(self._state)  # e.g. configure(index={"nprobe": 64})

    def _image_dir(self) -> Path | None:
        return self.path / IMAGES_DIR if self._settings.keep_source_images else None

    # ----- writes -----------------------------------------------------------------------

    def _subject_ids(self, names: Sequence[str]) -> dict[str, int]:
        return {
            name: int(sid)
            for sid, name in self._conn.execute(
                "SELECT id, name FROM subjects WHERE name IN (SELECT value FROM json_each(?))",
                (json.dumps(list(names)),),
            )
        }

    def _insert(self, rows: Sequence[NewTemplate], subject_metadata: Mapping[str, Mapping[str, Any]]) -> list[int]:
        now = time.time()
        names = list(dict.fromkeys([r.subject for r in rows] + list(subject_metadata)))
        with self._lock:
            with self._write() as m:
                c = self._conn
                # the gallery's model, fixed by the first enrolment (re-checked under the write lock)
                stored = GallerySettings.from_dict(
                    json.loads(c.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0])
                )
                if stored.model is None:
                    stored.model, stored.dim = self._settings.model, self._settings.dim
                    self._set_meta(settings=json.dumps(stored.to_dict()))
                elif stored.model != rows[0].model or stored.dim != int(rows[0].vector.shape[0]):
                    raise EmbeddingMismatchError(
                        f"gallery {self.path} holds templates of {stored.model}; cannot add {rows[0].model}"
                    )
                self._settings = stored
                ids_by_name = self._subject_ids(names)
                new = [n for n in names if n not in ids_by_name]
                if new:
                    c.executemany(
                        "INSERT INTO subjects(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                        [
                            (n, json.dumps(dict(subject_metadata[n])) if subject_metadata.get(n) else "{}", now, now)
                            for n in new
                        ],
                    )
                    ids_by_name.update(self._subject_ids(new))
                new_set = set(new)
                old = [n for n in names if n not in new_set]
                if old:
                    c.executemany("UPDATE subjects SET updated = ? WHERE id = ?", [(now, ids_by_name[n]) for n in old])
                    for n in old:
                        md = subject_metadata.get(n)
                        if md:
                            cur = json.loads(
                                c.execute("SELECT metadata FROM subjects WHERE id = ?", (ids_by_name[n],)).fetchone()[0]
                            )
                            cur.update(md)
                            c.execute(
                                "UPDATE subjects SET metadata = ? WHERE id = ?", (json.dumps(cur), ids_by_name[n])
                            )
                seq = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'templates'").fetchone()
                first = (int(seq[0]) if seq else 0) + 1
                ids = list(range(first, first + len(rows)))
                gen = m.generation + 1
                c.executemany(
                    "INSERT INTO templates(id, subject_id, gen, model, image_sha256, x1, y1, x2, y2, quality, "
                    "metadata, "
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
                id_sum = sum(ids)
                self._set_meta(
                    generation=gen, count=m.count + len(ids), id_sum=m.id_sum + id_sum, subjects=m.subjects + len(new)
                )
                data_version = self._dv()
            # committed: add to the in-memory index when it was current, else replay
            st = self._state
            if st is not None and st.generation == m.generation and st.epoch == m.epoch:
                vecs = np.stack([np.asarray(r.vector, dtype=np.float32) for r in rows])
                sids = np.array([ids_by_name[r.subject] for r in rows], np.int64)
                self._add(st, np.asarray(ids, np.int64), vecs, sids)
                st.generation = gen
                self._data_version = data_version
                self._maybe_restructure()
            else:
                self._sync()
        return ids

    def _ensure_subject(self, name: str, metadata: Mapping[str, Any]) -> None:
        now = time.time()
        with self._write() as m:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO subjects(name, metadata, created, updated) VALUES (?, ?, ?, ?)",
                (name, json.dumps(dict(metadata)), now, now),
            )
            if cur.rowcount:
                self._set_meta(subjects=m.subjects + 1)

    def _delete(self, subject: str | None, template_ids: Sequence[int] | None) -> list[str]:
        now = time.time()
        with self._lock:
            with self._write() as m:
                c = self._conn
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
                    arg = (json.dumps([int(i) for i in template_ids or []]),)
                    gone = c.execute(
                        "SELECT id, gen, source FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg
                    ).fetchall()
                    c.execute(
                        "UPDATE subjects SET updated = ? WHERE id IN (SELECT subject_id FROM templates "
                        "WHERE id IN (SELECT value FROM json_each(?)))",
                        (now, arg[0]),
                    )
                    c.execute("DELETE FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg)
                    n_subjects = m.subjects
                gen = m.generation + 1
                c.executemany(
                    "INSERT OR REPLACE INTO removed(id, gen, added_gen) VALUES (?, ?, ?)",
                    [(int(i), gen, int(g)) for i, g, _ in gone],
                )
                self._set_meta(
                    generation=gen,
                    count=m.count - len(gone),
                    id_sum=m.id_sum - sum(int(i) for i, _, _ in gone),
                    subjects=n_subjects,
                )
                data_version = self._dv()
            st = self._state
            if st is not None and st.generation == m.generation and st.epoch == m.epoch:
                if gone:
                    self._remove(st, np.array([int(i) for i, _, _ in gone], np.int64))
                st.generation = gen
                self._data_version = data_version
                self._maybe_restructure()
            else:
                self._sync()
        return [s for _, _, s in gone if s]

    def rename(self, old: str, new: str) -> None:
        self._check_name(new)
        with self._write():
            try:
                cur = self._conn.execute(
                    "UPDATE subjects SET name = ?, updated = ? WHERE name = ?", (new, time.time(), old)
                )
            except sqlite3.IntegrityError:
                raise SubjectExistsError(
                    f"a subject {new!r} already exists in gallery {self.path}; remove it or choose another name"
                ) from None
            if cur.rowcount == 0:
                raise SubjectNotFoundError(f"no subject {old!r} in gallery {self.path}: see `faceprint gallery list`")

    def _replace_vectors(
        self, vectors: Mapping[int, npt.NDArray[np.float32]], drop: Sequence[int], settings: GallerySettings
    ) -> None:
        now = time.time()
        with self._lock:
            with self._write() as m:
                c = self._conn
                c.executemany(
                    "UPDATE templates SET vector = ?, model = ?, updated = ? WHERE id = ?",
                    [(np.asarray(v, _VEC_DTYPE).tobytes(), settings.model, now, int(i)) for i, v in vectors.items()],
                )
                gone: list[tuple[int, int]] = []
                if drop:
                    arg = (json.dumps([int(i) for i in drop]),)
                    gone = c.execute(
                        "SELECT id, gen FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg
                    ).fetchall()
                    c.execute("DELETE FROM templates WHERE id IN (SELECT value FROM json_each(?))", arg)
                gen = m.generation + 1
                c.executemany(
                    "INSERT OR REPLACE INTO removed(id, gen, added_gen) VALUES (?, ?, ?)",
                    [(int(i), gen, int(g)) for i, g in gone],
                )
                self._set_meta(
                    generation=gen,
                    epoch=m.epoch + 1,
                    count=m.count - len(gone),
                    id_sum=m.id_sum - sum(int(i) for i, _ in gone),
                    settings=json.dumps(settings.to_dict()),
                )
            self._settings = settings
            self._state = None
            self._sync()

    # ----- reads ------------------------------------------------------------------------

    def _counts(self) -> tuple[int, int]:
        with self._lock:
            m = self._meta()
            return m.subjects, m.count

    def _find_subject(self, name: str) -> Subject | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT s.id, s.name, s.metadata, s.created, s.updated, "
                "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) FROM subjects s WHERE s.name = ?",
                (name,),
            ).fetchone()
        return None if row is None else _subject(row)

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._lock:
            rows = self._conn.execute(
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
                sid = self._conn.execute("SELECT id FROM subjects WHERE name = ?", (subject,)).fetchone()
                if sid is None:
                    raise SubjectNotFoundError(
                        f"no subject {subject!r} in gallery {self.path}: see `faceprint gallery list`"
                    )
                rows = self._conn.execute(
                    f"SELECT {cols} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                    "WHERE t.subject_id = ? ORDER BY t.id",
                    (int(sid[0]),),
                ).fetchall()
            yield from (_template(r, with_vectors) for r in rows)
            return
        last = 0
        page = 5000
        while True:  # keyset pages, each read under the lock: callers may use the gallery meanwhile
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {cols} FROM templates t JOIN subjects s ON s.id = t.subject_id "
                    "WHERE t.id > ? ORDER BY t.id LIMIT ?",
                    (last, page),
                ).fetchall()
            if not rows:
                return
            yield from (_template(r, with_vectors) for r in rows)
            last = int(rows[-1][0])

    def _template_owners(self, template_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        if not len(template_ids):
            return {}
        ids = np.asarray(template_ids, np.int64)
        with self._lock:
            self._sync()
            st = self._state
            if st is None:
                return {}
            sids = np.full(ids.size, -1, np.int64)
            ok = (ids >= 0) & (ids < st.owner.size)
            sids[ok] = st.owner[ids[ok]]
            wanted = sorted({int(x) for x in sids if x >= 0})
            names = dict(
                self._conn.execute(
                    "SELECT id, name FROM subjects WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(wanted),)
                ).fetchall()
            )
        return {int(t): (int(x), names[int(x)]) for t, x in zip(ids, sids, strict=True) if int(x) in names}

    def _subject_vectors(
        self, subject_ids: Sequence[int]
    ) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT subject_id, id, vector FROM templates "
                "WHERE subject_id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps([int(i) for i in subject_ids]),),
            ).fetchall()
        grouped: dict[int, tuple[list[int], list[bytes]]] = {}
        for sid, tid, blob in rows:
            g = grouped.setdefault(int(sid), ([], []))
            g[0].append(int(tid))
            g[1].append(blob)
        return {
            sid: (
                np.asarray(t, np.int64),
                np.frombuffer(b"".join(b), dtype=_VEC_DTYPE).reshape(len(t), -1).astype(np.float32),
            )
            for sid, (t, b) in grouped.items()
        }

    def _sources_in_use(self, sources: Sequence[str]) -> set[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT source FROM templates WHERE source IN (SELECT value FROM json_each(?))",
                (json.dumps(list(sources)),),
            ).fetchall()
        return {r[0] for r in rows}

    # ----- search -------------------------------------------------------------------------

    def search(self, x: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        with self._lock:
            self._sync()
            q = _as_matrix(x, self._settings.dim)
            st = self._state
            if st is None or st.index.ntotal == 0:
                return np.full((q.shape[0], k), -np.inf, np.float32), np.full((q.shape[0], k), -1, np.int64)
            with _omp_threads(self.search_threads):
                d, i = st.index.search(q, k)
        d = np.where(i < 0, -np.inf, d).astype(np.float32)
        return d, i.astype(np.int64)

    # ----- the vector index ------------------------------------------------------------------

    def _dv(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _sync(self) -> None:
        """Bring settings and the in-memory index up to date with SQLite (caller holds the lock)."""
        dv = self._dv()
        if self._state is not None and dv == self._data_version:
            return
        self._conn.execute("BEGIN")  # one read snapshot for meta, settings and replayed rows
        try:
            self._settings = self._read_settings()
            m = self._meta()
            if self._settings.dim is None:
                self._state = None
            elif self._state is None:
                self._load_or_rebuild(m)
            elif self._state.epoch != m.epoch or self._state.generation > m.generation:
                self._rebuild(m)
            elif self._state.generation < m.generation:
                self._replay(self._state, m)
        finally:
            self._conn.execute("COMMIT")
        self._data_version = dv
        if self._state is not None:
            self._maybe_restructure()

    def _index_path(self) -> Path:
        return self.path / INDEX_NAME

    def _read_header(self) -> dict[str, Any] | None:
        p = self._index_path()
        try:
            with open(p, "rb") as f:
                if f.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
                    log.warning("%s is not a faceprint index file; rebuilding it", p)
                    return None
                (n,) = struct.unpack("<I", f.read(4))
                header = json.loads(f.read(n))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, struct.error) as exc:
            log.warning("cannot read index header of %s (%s); rebuilding it", p, exc)
            return None
        return header if isinstance(header, dict) else None

    def _load_or_rebuild(self, m: _Meta) -> None:
        h = self._read_header()
        s = self._settings
        reason = None
        if h is None:
            reason = "no usable index file"
        elif h.get("version") != INDEX_FORMAT_VERSION or h.get("model") != s.model or h.get("dim") != s.dim:
            reason = "the index file was built for another model or format"
        elif h.get("epoch") != m.epoch:
            reason = "the gallery was re-embedded since the index file was written"
        elif int(h.get("generation", -1)) > m.generation:
            reason = "the index file is newer than the database (restored from a backup?)"
        if reason is None:
            assert h is not None
            try:
                faiss = _faiss()
                with open(self._index_path(), "rb") as f:
                    f.seek(len(INDEX_MAGIC))
                    (n,) = struct.unpack("<I", f.read(4))
                    f.seek(n, os.SEEK_CUR)
                    reader = faiss.PyCallbackIOReader(f.read, 1 << 22)
                    index = faiss.read_index(reader)
                    del reader
            except Exception as exc:  # a torn or corrupt file: the database is the truth
                reason = f"the index file cannot be read ({exc})"
            else:
                st = _IndexState(
                    index=index,
                    kind=str(h["kind"]),
                    generation=int(h["generation"]),
                    epoch=int(h["epoch"]),
                    count=int(h["count"]),
                    id_sum=int(h["id_sum"]),
                    nlist=int(h.get("nlist", 0)),
                    trained_n=int(h.get("trained_n", 0)),
                    saved_generation=int(h["generation"]),
                )
                if st.count != index.ntotal:
                    reason = f"the index file holds {index.ntotal} vectors but its header says {st.count}"
                else:
                    self._apply_search_params(st)
                    pairs = np.array(self._conn.execute("SELECT id, subject_id FROM templates").fetchall(), np.int64)
                    if pairs.size:
                        self._set_owners(st, pairs[:, 0], pairs[:, 1])
                    if st.generation < m.generation:
                        log.info(
                            "index file is at generation %d, database at %d: replaying", st.generation, m.generation
                        )
                        self._replay(st, m)  # keeps st, or rebuilds when the result disagrees with the database
                        return
                    if (st.count, st.id_sum) != (m.count, m.id_sum):
                        reason = "the index file's checksum does not match the database"
                    else:
                        self._state = st
                        return
        log.info("rebuilding the vector index of %s from the database: %s", self.path, reason)
        self._rebuild(m)

    def _replay(self, st: _IndexState, m: _Meta) -> None:
        """Apply the templates added and removed after ``st.generation`` (inside a read snapshot)."""
        c = self._conn
        removed = c.execute("SELECT id, added_gen FROM removed WHERE gen > ?", (st.generation,)).fetchall()
        gone = np.array([int(i) for i, ag in removed if int(ag) <= st.generation], np.int64)
        if gone.size:
            self._remove(st, gone)
        self._add_rows(
            st, c.execute("SELECT id, subject_id, vector FROM templates WHERE gen > ? ORDER BY id", (st.generation,))
        )
        st.generation = m.generation
        if (st.count, st.id_sum) != (m.count, m.id_sum):
            log.warning(
                "vector index of %s disagrees with the database after replay (%d/%d templates); rebuilding",
                self.path,
                st.count,
                m.count,
            )
            self._rebuild(m)
        else:
            self._state = st

    def _add_rows(self, st: _IndexState, cur: sqlite3.Cursor) -> None:
        """Add ``(id, subject_id, vector)`` rows of a cursor to the index, in chunks."""
        while True:
            rows = cur.fetchmany(_CHUNK)
            if not rows:
                break
            ids = np.array([r[0] for r in rows], np.int64)
            sids = np.array([r[1] for r in rows], np.int64)
            vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype=_VEC_DTYPE).reshape(len(rows), -1)
            self._add(st, ids, vecs.astype(np.float32), sids)

    def _set_owners(self, st: _IndexState, ids: npt.NDArray[np.int64], sids: npt.NDArray[np.int64]) -> None:
        if ids.size == 0:
            return
        top = int(ids.max()) + 1
        if top > st.owner.size:
            grown = np.full(max(top, 2 * st.owner.size, 1024), -1, np.int64)
            grown[: st.owner.size] = st.owner
            st.owner = grown
        st.owner[ids] = sids

    def _add(
        self, st: _IndexState, ids: npt.NDArray[np.int64], vecs: npt.NDArray[np.float32], sids: npt.NDArray[np.int64]
    ) -> None:
        st.index.add_with_ids(np.ascontiguousarray(vecs, np.float32), np.ascontiguousarray(ids, np.int64))
        self._set_owners(st, ids, sids)
        st.count += int(ids.size)
        st.id_sum += int(ids.sum())

    def _remove(self, st: _IndexState, ids: npt.NDArray[np.int64]) -> None:
        inside = ids[(ids >= 0) & (ids < st.owner.size)]
        st.owner[inside] = -1
        n = int(st.index.remove_ids(np.ascontiguousarray(ids, np.int64)))
        st.count -= n
        if n == ids.size:
            st.id_sum -= int(ids.sum())
        else:  # some were not there: recompute from the index ids is costly; let the checksum decide
            st.id_sum = -1

    def _plan(self, n: int) -> tuple[str, int]:
        idx = self._settings.index or {}
        dim = int(self._settings.dim or 1)
        typ = idx.get("type") or "auto"
        exact_limit = int(idx.get("exact_limit") or max(1024, EXACT_BUDGET // dim))
        if typ == "flat" or (typ == "auto" and n <= exact_limit):
            return "flat", 0
        nlist = int(idx.get("nlist") or auto_nlist(n))
        return "ivf", max(1, min(nlist, n // 8))

    def _maybe_restructure(self) -> None:
        """Switch exact ↔ IVF, or retrain the IVF, when the gallery size calls for it."""
        st = self._state
        if st is None:
            return
        kind, nlist = self._plan(st.count)
        idx = self._settings.index or {}
        if kind == st.kind == "flat":
            return
        if kind == st.kind == "ivf":
            if idx.get("nlist") or st.count <= RETRAIN_GROWTH * max(st.trained_n, 1):
                self._apply_search_params(st)  # nprobe follows the list sizes
                return
        elif kind == "flat" and st.kind == "ivf":
            exact_limit = int(idx.get("exact_limit") or max(1024, EXACT_BUDGET // int(self._settings.dim or 1)))
            if (idx.get("type") or "auto") == "auto" and st.count > exact_limit // 2:
                return  # hysteresis: do not flap around the limit
        self._conn.execute("BEGIN")
        try:
            m = self._meta()
            log.info("restructuring the index of %s for %d templates: %s → %s", self.path, m.count, st.kind, kind)
            self._rebuild(m)
        finally:
            self._conn.execute("COMMIT")

    def _apply_search_params(self, st: _IndexState) -> None:
        if st.kind == "ivf":
            idx = self._settings.index or {}
            faiss = _faiss()
            ivf = faiss.extract_index_ivf(st.index)
            ivf.nprobe = int(idx.get("nprobe") or auto_nprobe(ivf.nlist, int(ivf.ntotal), int(ivf.d)))

    def _rebuild(self, m: _Meta) -> None:
        """Build the index from every template row (caller holds a read snapshot) and save it."""
        faiss = _faiss()
        t0 = time.perf_counter()
        dim = int(self._settings.dim or 0)
        kind, nlist = self._plan(m.count)
        c = self._conn
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            trained_n = 0
        else:
            all_ids = np.array([r[0] for r in c.execute("SELECT id FROM templates")], np.int64)
            rng = np.random.default_rng(m.generation)
            per_centroid = TRAIN_POINTS_PER_CENTROID if nlist <= 2048 else TRAIN_POINTS_PER_CENTROID // 2
            n_train = min(all_ids.size, nlist * per_centroid)
            sample = np.sort(rng.choice(all_ids, n_train, replace=False))
            train = np.empty((n_train, dim), np.float32)
            pos = 0
            for start in range(0, n_train, _CHUNK):
                part = json.dumps(sample[start : start + _CHUNK].tolist())
                for (blob,) in c.execute(
                    "SELECT vector FROM templates WHERE id IN (SELECT value FROM json_each(?))", (part,)
                ):
                    train[pos] = np.frombuffer(blob, dtype=_VEC_DTYPE)
                    pos += 1
            km = faiss.Kmeans(
                dim,
                nlist,
                niter=10,
                spherical=True,
                seed=1234,
                max_points_per_centroid=per_centroid,
                min_points_per_centroid=16,
                verbose=False,
            )
            km.train(train[:pos])
            quantizer = faiss.IndexFlatIP(dim)  # batched BLAS assignment: fast adds; ≤ 65k centroids
            quantizer.add(km.centroids)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.own_fields = True
            quantizer.this.disown()  # the IVF owns and frees its quantizer
            trained_n = m.count
        st = _IndexState(
            index=index,
            kind=kind,
            generation=m.generation,
            epoch=m.epoch,
            count=0,
            id_sum=0,
            nlist=nlist,
            trained_n=trained_n,
        )
        self._apply_search_params(st)
        self._add_rows(st, c.execute("SELECT id, subject_id, vector FROM templates ORDER BY id"))
        if (st.count, st.id_sum) != (m.count, m.id_sum):
            raise GalleryError(
                f"gallery database {self.path / DB_NAME} is inconsistent (meta says {m.count} templates, "
                f"found {st.count}): restore it from a backup or export what can be read"
            )
        self._state = st
        log.info("built %s index of %d templates in %.1f s", kind, st.count, time.perf_counter() - t0)
        self._save_index()

    def _save_index(self) -> None:
        """Write the index file atomically (skipped when the file on disk is already as new)."""
        st = self._state
        if st is None or st.saved_generation == st.generation:
            return
        h = self._read_header()
        if h is not None and h.get("epoch") == st.epoch and int(h.get("generation", -1)) >= st.generation:
            st.saved_generation = st.generation
            return
        faiss = _faiss()
        ivf = faiss.try_extract_index_ivf(st.index) if st.kind == "ivf" else None
        header = {
            "format": "faceprint-gallery-index",
            "version": INDEX_FORMAT_VERSION,
            "generation": st.generation,
            "epoch": st.epoch,
            "count": st.count,
            "id_sum": st.id_sum,
            "model": self._settings.model,
            "dim": self._settings.dim,
            "kind": st.kind,
            "nlist": st.nlist,
            "trained_n": st.trained_n,
            "nprobe": int(ivf.nprobe) if ivf is not None else None,
            "written_at": time.time(),
        }
        raw = json.dumps(header).encode()
        t0 = time.perf_counter()
        try:
            fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self.path)
        except OSError as exc:
            log.warning("cannot write the index file of %s (%s); it will be rebuilt on open", self.path, exc)
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(INDEX_MAGIC + struct.pack("<I", len(raw)) + raw)
                writer = faiss.PyCallbackIOWriter(f.write, 1 << 22)
                faiss.write_index(st.index, writer)
                del writer
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._index_path())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st.saved_generation = st.generation
        log.info("saved %s index (%d templates) in %.1f s", st.kind, st.count, time.perf_counter() - t0)

    def flush(self) -> None:
        """Write the index file now (it is otherwise written on close and after rebuilds)."""
        with self._lock:
            self._sync()
            self._save_index()

    def check(self) -> dict[str, Any]:
        """Compare the in-memory index with the database row by row (slow; for tests and repair).

        Returns ``{"consistent": bool, "index": n, "database": n, "missing": [...], "extra": [...]}``.
        """
        with self._lock:
            self._sync()
            db_ids = {int(r[0]) for r in self._conn.execute("SELECT id FROM templates")}
            st = self._state
            idx_ids = set() if st is None else {int(i) for i in _index_ids(st)}
        return {
            "consistent": db_ids == idx_ids,
            "index": len(idx_ids),
            "database": len(db_ids),
            "missing": sorted(db_ids - idx_ids)[:100],
            "extra": sorted(idx_ids - db_ids)[:100],
        }

    def _backend_stats(self) -> dict[str, Any]:
        with self._lock:
            self._sync()
            st = self._state
            m = self._meta()
        ivf = _faiss().try_extract_index_ivf(st.index) if st is not None and st.kind == "ivf" else None

        def size(p: Path) -> int:
            return p.stat().st_size if p.exists() else 0

        img = self.path / IMAGES_DIR
        return {
            "index": {
                "kind": None if st is None else st.kind,
                "vectors": 0 if st is None else int(st.index.ntotal),
                "nlist": None if ivf is None else int(ivf.nlist),
                "nprobe": None if ivf is None else int(ivf.nprobe),
                "generation": m.generation,
                "saved_generation": None if st is None else st.saved_generation,
            },
            "disk_bytes": {
                "database": size(self.path / DB_NAME) + size(self.path / (DB_NAME + "-wal")),
                "index": size(self._index_path()),
                "images": sum(p.stat().st_size for p in img.rglob("*") if p.is_file()) if img.exists() else 0,
            },
        }

    def close(self) -> None:
        with self._lock:
            if self._conn is None:  # type: ignore[comparison-overlap]
                return
            try:
                self._save_index()
            finally:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]
                self._state = None


# --- helpers -------------------------------------------------------------------------------------


def _index_ids(st: _IndexState) -> npt.NDArray[np.int64]:
    faiss = _faiss()
    if st.kind == "flat":
        return faiss.vector_to_array(st.index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(st.index)
    inv = ivf.invlists
    out = []
    for lst in range(ivf.nlist):
        n = inv.list_size(lst)
        if n:
            out.append(faiss.rev_swig_ptr(inv.get_ids(lst), n).copy())
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


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
