"""A persistent cache of what the pipeline made of each image, for evaluation runs.

One SQLite file (WAL journal) holds, for each key

    (sha256 of the encoded image bytes, model tag ``model_id@version``, settings id)

either the embedding (float32 blob) or the fact that no face was found or that the image
could not be processed - a failure to acquire is a result too and is remembered, so a re-run
does not retry it. The settings id is a hash of every pipeline setting that changes the
embedding (detector and its options, face selection, pre-aligned template, embedder options,
pixel limit); :func:`settings_id` computes it and :meth:`EmbeddingCache.register_settings`
keeps the settings readable beside it.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, EmbeddingCacheError

__all__ = [
    "CACHE_ENV",
    "CACHE_FILENAME",
    "CachedResult",
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

_SCHEMA_VERSION = "1"
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
"""
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


class EmbeddingCache:
    """The SQLite embedding cache. Use as a context manager (or call :meth:`close`).

    Args:
        path: the database file, or a folder (the file is ``embeddings.sqlite`` in it);
            None: :func:`default_cache_dir`. Missing folders are created.
        commit_every: results buffered by :meth:`put` before a commit.
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
        self._pending: list[tuple[Any, ...]] = []
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
        """Cached results for those image hashes under one model tag and settings id (misses omitted)."""
        wanted = list(dict.fromkeys(sha256s))
        out: dict[str, CachedResult] = {}
        for i in range(0, len(wanted), _MAX_PARAMS):
            part = wanted[i : i + _MAX_PARAMS]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT sha256, status, dim, vector, error FROM results "  # noqa: S608 - only '?' marks
                f"WHERE model=? AND settings_id=? AND sha256 IN ({marks})",
                (model, settings, *part),
            ).fetchall()
            for sha, status, dim, blob, error in rows:
                out[sha] = _row_result(status, dim, blob, error)
        self.hits += len(out)
        self.misses += len(wanted) - len(out)
        return out

    def get(self, sha256: str, model: str, settings: str) -> CachedResult | None:
        return self.get_many([sha256], model, settings).get(sha256)

    def __len__(self) -> int:
        self.flush()
        return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

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
        """Buffer one result; committed with the next batch (every ``commit_every``) or :meth:`flush`."""
        if result.vector is not None:
            v = np.ascontiguousarray(result.vector, dtype="<f4").reshape(-1)
            dim, blob = int(v.shape[0]), v.tobytes()
        else:
            dim, blob = None, None
        self._pending.append((sha256, model, settings, result.status, dim, blob, result.error, time.time()))
        if len(self._pending) >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Commit buffered results."""
        if not self._pending or self._db is None:
            return
        rows, self._pending = self._pending, []
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results(sha256, model, settings_id, status, dim, vector, error, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise EmbeddingCacheError(f"cannot write to the cache {self.path}: {exc}") from exc
        self.writes += len(rows)
        log.debug("cache %s: committed %d results", self.path, len(rows))


def _row_result(status: str, dim: int | None, blob: bytes | None, error: str | None) -> CachedResult:
    if status == "ok":
        v = np.frombuffer(blob or b"", dtype="<f4").astype(np.float32)
        if dim is not None and v.shape[0] != dim:
            raise EmbeddingCacheError(f"a cached embedding has {v.shape[0]} values, expected {dim}; delete the cache")
        return CachedResult("ok", v)
    return CachedResult(status, None, error)  # type: ignore[arg-type]
