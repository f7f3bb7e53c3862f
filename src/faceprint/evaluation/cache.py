"""A persistent cache of what the pipeline made of each image, for evaluation runs.

One SQLite file (WAL journal) holds two things, so that choosing another face of an image
(``--select``) or another embedding setting never detects again, and choosing another face
never embeds again:

* per image, keyed ``(sha256 of the encoded bytes, acquisition settings id)``: the faces the
  detector found (boxes, scores, landmarks) and the image size - or the fact that it found
  none, or that the image could not be processed (a failure to acquire is a result too and is
  remembered, so a re-run does not retry it): :meth:`EmbeddingCache.get_images`;
* per face, keyed ``(sha256, embedding settings id, model tag, face index)``: the embedding
  (float32 blob): :meth:`EmbeddingCache.get_faces`.

The acquisition settings id hashes every pipeline setting that changes detection (detector and
its options, pixel limit, or the pre-aligned template); the embedding settings id hashes every
pipeline setting (embedder, its options, test-time augmentation …). Face selection is in
neither: it is applied after the cache. :func:`settings_id` computes ids and
:meth:`EmbeddingCache.register_settings` keeps the settings readable beside them.

The per-image results of faceprint 0.1 (one embedding per image and settings,
:meth:`EmbeddingCache.put` / :meth:`EmbeddingCache.get_many`) are still stored and read.

Keys use the image *content*, not its path: a second protocol over the same images (LFW View 1
then View 2, or the same photos under another folder) reuses the work, and a changed file is
embedded again. Writes are committed in batches (``commit_every``), so an interrupted run
keeps everything up to its last commit and a re-run computes only the rest.

The default location is ``$FACEPRINT_CACHE_DIR`` or ``~/.faceprint/cache``; an evaluation
report may keep its own cache beside it (pass a path).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, EmbeddingCacheError
from ..types import BBox, Detection, Landmarks

__all__ = [
    "CACHE_ENV",
    "CACHE_FILENAME",
    "CachedResult",
    "CachedImage",
    "EmbeddingCache",
    "default_cache_dir",
    "settings_id",
    "sha256_bytes",
]

log = logging.getLogger(__name__)

#: Environment variable naming the default cache folder.
CACHE_ENV = "FACEPRINT_CACHE_DIR"
#: File name of the database inside a cache folder.
CACHE_FILENAME = "embeddings.sqlite"

_SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (
    settings_id TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    settings_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'no_face', 'error')),
    dim INTEGER,
    vector BLOB,
    error TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (sha256, model, settings_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS images (
    sha256 TEXT NOT NULL,
    settings_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'no_face', 'error')),
    width INTEGER,
    height INTEGER,
    detections TEXT,
    error TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (sha256, settings_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS faces (
    sha256 TEXT NOT NULL,
    settings_id TEXT NOT NULL,
    model TEXT NOT NULL,
    face INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (sha256, settings_id, model, face)
) WITHOUT ROWID;
"""
#: schema versions this code opens (older ones gain the new tables)
_UPGRADABLE = ("1",)
_MAX_PARAMS = 500

Status = Literal["ok", "no_face", "error"]


def default_cache_dir() -> Path:
    """``$FACEPRINT_CACHE_DIR`` if set, else ``~/.faceprint/cache``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".faceprint" / "cache"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of encoded image bytes: the image part of a cache key."""
    return hashlib.sha256(data).hexdigest()


def settings_id(settings: Mapping[str, Any]) -> str:
    """A short stable id (24 hex digits) of JSON-able pipeline settings; key order does not matter."""
    try:
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"pipeline settings must be JSON-able to key the cache: {exc}") from exc
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True, eq=False)
class CachedResult:
    """What the pipeline made of one image: ``status`` ``"ok"`` with ``vector`` float32 (D,), or
    ``"no_face"``, or ``"error"`` with ``error`` (``"ErrorClass: message"``)."""

    status: Status
    vector: npt.NDArray[np.float32] | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("ok", "no_face", "error"):
            raise ConfigurationError(f"status must be 'ok', 'no_face' or 'error', got {self.status!r}")
        if (self.status == "ok") != (self.vector is not None):
            raise ConfigurationError("an 'ok' result needs a vector, and only an 'ok' result has one")


@dataclass(frozen=True, slots=True, eq=False)
class CachedImage:
    """What the detector made of one image: ``status`` ``"ok"`` with its ``detections`` (every face
    found, in the detector's order) and size, ``"no_face"``, or ``"error"`` with ``error``
    (``"ErrorClass: message"``). Faces are referred to by their index in ``detections``."""

    status: Status
    detections: tuple[Detection, ...] = ()
    width: int = 0
    height: int = 0
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("ok", "no_face", "error"):
            raise ConfigurationError(f"status must be 'ok', 'no_face' or 'error', got {self.status!r}")
        if (self.status == "ok") != bool(self.detections):
            raise ConfigurationError("an 'ok' image has detections, and only an 'ok' image has them")


def _detections_json(dets: tuple[Detection, ...]) -> str:
    """Exact JSON of detections (floats as Python writes them: float32 values round-trip)."""
    return json.dumps(
        [
            {
                "bbox": d.bbox.as_list(),
                "score": float(d.score),
                "landmarks": None if d.landmarks is None else d.landmarks.points.astype(float).tolist(),
                "scheme": None if d.landmarks is None else d.landmarks.scheme,
                "detector": d.detector,
            }
            for d in dets
        ],
        separators=(",", ":"),
    )


def _detections_from(text: str | None) -> tuple[Detection, ...]:
    out = []
    for d in json.loads(text or "[]"):
        lm = None if d["landmarks"] is None else Landmarks(np.asarray(d["landmarks"], np.float32), d["scheme"])
        out.append(Detection(BBox(*d["bbox"]), float(d["score"]), lm, d["detector"]))
    return tuple(out)


class EmbeddingCache:
    """The SQLite embedding cache. Use as a context manager (or call :meth:`close`).

    Args:
        path: the database file, or a folder (the file is ``embeddings.sqlite`` in it);
            None: :func:`default_cache_dir`. Missing folders are created.
        commit_every: images buffered (by :meth:`put_image`, :meth:`put_faces`, :meth:`put`)
            before a commit.
        timeout: seconds to wait for another process holding the write lock.

    One object belongs to one thread; several processes may share the file (WAL mode lets
    readers and one writer work at once).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        commit_every: int = 256,
        timeout: float = 30.0,
    ) -> None:
        if commit_every < 1:
            raise ConfigurationError(f"commit_every must be ≥ 1, got {commit_every}")
        p = Path(path).expanduser() if path is not None else default_cache_dir()
        if p.is_dir() or (path is None) or (not p.suffix and not p.exists()):
            p = p / CACHE_FILENAME
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddingCacheError(
                f"cannot create the cache folder {p.parent}: {exc.strerror or exc}; pass another cache path"
            ) from exc
        self.path = p
        self.commit_every = int(commit_every)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []  # (statement, row), committed together
        self._items = 0  # images (or 0.1-style results) buffered
        self.hits = 0
        self.misses = 0
        self.writes = 0
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(p, timeout=timeout)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                log.info("cache %s: WAL journal not available (%s); using the default journal", p, mode)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                self._db.commit()
            elif row[0] in _UPGRADABLE:
                self._db.execute("UPDATE meta SET value=? WHERE key='schema'", (_SCHEMA_VERSION,))
                self._db.commit()
                log.info("cache %s: upgraded from schema %s to %s", p, row[0], _SCHEMA_VERSION)
            elif row[0] != _SCHEMA_VERSION:
                raise EmbeddingCacheError(
                    f"cache {p} has schema version {row[0]}, this faceprint uses {_SCHEMA_VERSION}; "
                    "delete the file or pass another cache path"
                )
        except sqlite3.DatabaseError as exc:
            raise EmbeddingCacheError(
                f"{p} is not a faceprint embedding cache ({exc}); delete it or pass another cache path"
            ) from exc

    # --- context manager -------------------------------------------------------------------

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise EmbeddingCacheError(f"cache {self.path} is closed")
        return self._db

    def close(self) -> None:
        """Commit what is buffered and close the database (safe to call twice)."""
        if self._db is None:
            return
        try:
            self.flush()
        finally:
            self._db.close()
            self._db = None

    # --- reading ----------------------------------------------------------------------------

    def get_many(self, sha256s: Iterable[str], model: str, settings: str) -> dict[str, CachedResult]:
        """0.1-style per-image results for those image hashes under one model tag and settings id
        (misses omitted)."""
        wanted = list(dict.fromkeys(sha256s))
        out: dict[str, CachedResult] = {}
        q = "SELECT sha256, status, dim, vector, error FROM results WHERE model=? AND settings_id=? AND sha256 IN"
        for sha, status, dim, blob, error in self._select(q, (model, settings), wanted):
            out[sha] = _row_result(status, dim, blob, error)
        self.hits += len(out)
        self.misses += len(wanted) - len(out)
        return out

    def get(self, sha256: str, model: str, settings: str) -> CachedResult | None:
        return self.get_many([sha256], model, settings).get(sha256)

    def __len__(self) -> int:
        """Distinct images with a stored result (detections, or a 0.1-style per-image result)."""
        self.flush()
        q = "SELECT COUNT(*) FROM (SELECT sha256 FROM images UNION SELECT sha256 FROM results)"
        return int(self._conn.execute(q).fetchone()[0])

    def get_images(self, sha256s: Iterable[str], settings: str) -> dict[str, CachedImage]:
        """Stored detections of those images under one acquisition settings id (misses omitted).

        Counts as a hit (or a miss) per image in :attr:`hits` / :attr:`misses`.
        """
        out: dict[str, CachedImage] = {}
        wanted = list(dict.fromkeys(sha256s))
        q = "SELECT sha256, status, width, height, detections, error FROM images WHERE settings_id=? AND sha256 IN"
        for sha, status, w, h, dets, error in self._select(q, (settings,), wanted):
            out[sha] = CachedImage(status, _detections_from(dets), int(w or 0), int(h or 0), error)
        self.hits += len(out)
        self.misses += len(wanted) - len(out)
        return out

    def get_faces(self, sha256s: Iterable[str], settings: str, model: str) -> dict[str, dict[int, FloatVector]]:
        """Stored face embeddings: image sha256 → face index → float32 (D,), under one embedding
        settings id and model tag (images without any omitted)."""
        out: dict[str, dict[int, FloatVector]] = {}
        q = "SELECT sha256, face, dim, vector FROM faces WHERE settings_id=? AND model=? AND sha256 IN"
        for sha, face, dim, blob in self._select(q, (settings, model), list(dict.fromkeys(sha256s))):
            out.setdefault(sha, {})[int(face)] = _vector(blob, dim)
        return out

    def _select(self, query: str, params: tuple[Any, ...], keys: list[str]) -> Iterator[tuple[Any, ...]]:
        """``query ({marks})`` for the keys, ``_MAX_PARAMS`` at a time."""
        for i in range(0, len(keys), _MAX_PARAMS):
            part = keys[i : i + _MAX_PARAMS]
            marks = ",".join("?" * len(part))
            yield from self._conn.execute(f"{query} ({marks})", (*params, *part)).fetchall()  # only '?' marks

    def count(self, model: str | None = None, settings: str | None = None) -> dict[str, int]:
        """Number of stored results per status, optionally for one model tag and settings id."""
        self.flush()
        q = "SELECT status, COUNT(*) FROM results WHERE (? IS NULL OR model=?) AND (? IS NULL OR settings_id=?)"
        rows = self._conn.execute(q + " GROUP BY status", (model, model, settings, settings)).fetchall()
        return {str(s): int(n) for s, n in rows}

    def settings(self, settings: str) -> dict[str, Any] | None:
        """The settings registered under an id, or None."""
        row = self._conn.execute("SELECT json FROM settings WHERE settings_id=?", (settings,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    # --- writing ----------------------------------------------------------------------------

    def register_settings(self, settings: Mapping[str, Any]) -> str:
        """Store JSON-able settings and return their :func:`settings_id`."""
        sid = settings_id(settings)
        text = json.dumps(settings, sort_keys=True, default=str)
        self._conn.execute("INSERT OR IGNORE INTO settings(settings_id, json) VALUES (?, ?)", (sid, text))
        self._conn.commit()
        return sid

    def put(self, sha256: str, model: str, settings: str, result: CachedResult) -> None:
        """Buffer one 0.1-style per-image result; committed with the next batch (every ``commit_every``)
        or :meth:`flush`."""
        if result.vector is not None:
            v = np.ascontiguousarray(result.vector, dtype="<f4").reshape(-1)
            dim, blob = int(v.shape[0]), v.tobytes()
        else:
            dim, blob = None, None
        row = (sha256, model, settings, result.status, dim, blob, result.error, time.time())
        self._buffer([(_PUT_RESULT, row)])

    def put_image(
        self,
        sha256: str,
        settings: str,
        image: CachedImage,
        faces: Mapping[int, npt.ArrayLike] | None = None,
        *,
        face_settings: str = "",
        model: str = "",
    ) -> None:
        """Buffer one image's detections (under the acquisition ``settings`` id) and the embeddings
        of some of its faces (under ``face_settings`` and ``model``): one item of a batch."""
        now = time.time()
        dets = _detections_json(image.detections) if image.detections else None
        row = (sha256, settings, image.status, image.width, image.height, dets, image.error, now)
        self._buffer([(_PUT_IMAGE, row), *self._face_rows(sha256, face_settings, model, faces or {}, now)])

    def put_faces(self, sha256: str, settings: str, model: str, faces: Mapping[int, npt.ArrayLike]) -> None:
        """Buffer embeddings of faces of an image whose detections are stored already: one item."""
        if faces:
            self._buffer(self._face_rows(sha256, settings, model, faces, time.time()))

    def _face_rows(
        self, sha256: str, settings: str, model: str, faces: Mapping[int, npt.ArrayLike], now: float
    ) -> list[tuple[str, tuple[Any, ...]]]:
        if faces and not (settings and model):
            raise ConfigurationError("face embeddings need their settings id and model tag")
        rows = []
        for k, vec in sorted(faces.items()):
            v = np.ascontiguousarray(vec, dtype="<f4").reshape(-1)
            rows.append((_PUT_FACE, (sha256, settings, model, int(k), int(v.shape[0]), v.tobytes(), now)))
        return rows

    def _buffer(self, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._pending += rows
        self._items += 1
        if self._items >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Commit what is buffered."""
        if not self._pending or self._db is None:
            return
        rows, items = self._pending, self._items
        self._pending, self._items = [], 0
        try:
            with self._db:
                for statement in dict.fromkeys(q for q, _ in rows):
                    self._db.executemany(statement, [r for q, r in rows if q == statement])
        except sqlite3.Error as exc:
            raise EmbeddingCacheError(f"cannot write to the cache {self.path}: {exc}") from exc
        self.writes += items
        log.debug("cache %s: committed %d images (%d rows)", self.path, items, len(rows))


_PUT_RESULT = (
    "INSERT OR REPLACE INTO results(sha256, model, settings_id, status, dim, vector, error, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_PUT_IMAGE = (
    "INSERT OR REPLACE INTO images(sha256, settings_id, status, width, height, detections, error, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_PUT_FACE = (
    "INSERT OR REPLACE INTO faces(sha256, settings_id, model, face, dim, vector, created) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

FloatVector = npt.NDArray[np.float32]


def _vector(blob: bytes | None, dim: int | None) -> FloatVector:
    v = np.frombuffer(blob or b"", dtype="<f4").astype(np.float32)
    if dim is not None and v.shape[0] != dim:
        raise EmbeddingCacheError(f"a cached embedding has {v.shape[0]} values, expected {dim}; delete the cache")
    return v


def _row_result(status: str, dim: int | None, blob: bytes | None, error: str | None) -> CachedResult:
    if status == "ok":
        return CachedResult("ok", _vector(blob, dim))
    return CachedResult(status, None, error)  # type: ignore[arg-type]
