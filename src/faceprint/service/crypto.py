"""Templates encrypted at rest (AES-256-GCM), for galleries served with a template key.

:mod:`faceprint.gallery` stores template vectors as plain float32 in SQLite and in its faiss
index file, and has no hook to encrypt them. So with ``FACEPRINT_TEMPLATE_KEY`` (or
``FACEPRINT_TEMPLATE_KEY_FILE``) set, the service keeps the durable copy of every template in
:class:`EncryptedTemplateStore` (``DATA_DIR/templates.enc.sqlite``: each vector sealed with
AES-GCM, a fresh 96-bit nonce, and the gallery, subject and model bound in as associated data, so
a row moved to another subject no longer decrypts), and serves searches from galleries it
rebuilds at start-up in a RAM-backed folder (``/dev/shm``) that is removed at shutdown. Nothing
on disk then holds a template in clear. Source images cannot be kept in this mode.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, CorruptStoreError

__all__ = ["TemplateCipher", "EncryptedTemplateStore", "SealedTemplate"]

_NONCE = 12


class TemplateCipher:
    """AES-256-GCM sealing of float32 vectors, bound to a context (associated data)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("the template key must be 32 bytes (AES-256)")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def seal(self, vector: npt.NDArray[np.float32], context: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, np.asarray(vector, "<f4").tobytes(), context)

    def open(self, blob: bytes, context: bytes) -> npt.NDArray[np.float32]:
        from cryptography.exceptions import InvalidTag

        try:
            raw = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context)
        except InvalidTag:
            raise ConfigurationError(
                "cannot decrypt a stored template: FACEPRINT_TEMPLATE_KEY is not the key the templates were "
                "encrypted with (or the store was tampered with)"
            ) from None
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _context(gallery: str, subject: str, model: str) -> bytes:
    return json.dumps([gallery, subject, model], ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class SealedTemplate:
    id: int
    gallery: str
    subject: str
    model: str
    vector: npt.NDArray[np.float32]
    bbox: list[float] | None
    created: float
    quality: float | None = None


class EncryptedTemplateStore:
    """The durable, encrypted copy of every template of every gallery (one SQLite file)."""

    def __init__(self, path: str | os.PathLike[str], cipher: TemplateCipher) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self._lock = threading.Lock()
        if not self.path.exists():  # 0600 before SQLite writes a byte (its journals copy the mode)
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
        with self._db() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS galleries (
                    name TEXT PRIMARY KEY, created REAL NOT NULL, settings TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS templates (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    gallery TEXT NOT NULL REFERENCES galleries(name),
                    subject TEXT NOT NULL,
                    model TEXT NOT NULL,
                    sealed BLOB NOT NULL,
                    bbox TEXT,
                    created REAL NOT NULL
                );
                CREATE INDEX IF NOT EXISTS templates_gallery_subject ON templates(gallery, subject);
                """
            )
            if "quality" not in {r[1] for r in db.execute("PRAGMA table_info(templates)")}:
                db.execute("ALTER TABLE templates ADD COLUMN quality REAL")  # stores of faceprint < 0.2

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                db = sqlite3.connect(self.path, timeout=30.0)
                try:
                    db.execute("PRAGMA synchronous = FULL")
                    with db:
                        yield db
                finally:
                    db.close()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                    raise
                raise CorruptStoreError(
                    f"the encrypted template store {self.path} is damaged ({exc}): restore it from a backup",
                    path=str(self.path),
                ) from exc

    def galleries(self) -> dict[str, dict[str, object]]:
        with self._db() as db:
            return {
                n: {"created": c, **json.loads(s)}
                for n, c, s in db.execute("SELECT name, created, settings FROM galleries")
            }

    def add_gallery(self, name: str, settings: dict[str, object]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO galleries(name, created, settings) VALUES (?, ?, ?)",
                (name, time.time(), json.dumps(settings)),
            )

    def drop_gallery(self, name: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM templates WHERE gallery = ?", (name,))
            db.execute("DELETE FROM galleries WHERE name = ?", (name,))

    def add(
        self,
        gallery: str,
        subject: str,
        model: str,
        vectors: Sequence[npt.NDArray[np.float32]],
        bboxes: Sequence[list[float] | None],
        qualities: Sequence[float | None] | None = None,
    ) -> list[int]:
        ctx = _context(gallery, subject, model)
        now = time.time()
        ids = []
        quals = list(qualities) if qualities is not None else [None] * len(vectors)
        with self._db() as db:
            for v, b, q in zip(vectors, bboxes, quals, strict=True):
                cur = db.execute(
                    "INSERT INTO templates(gallery, subject, model, sealed, bbox, created, quality) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (gallery, subject, model, self.cipher.seal(v, ctx), None if b is None else json.dumps(b), now, q),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def remove(self, ids: Sequence[int]) -> None:
        with self._db() as db:
            db.executemany("DELETE FROM templates WHERE id = ?", [(int(i),) for i in ids])

    def remove_subject(self, gallery: str, subject: str) -> int:
        with self._db() as db:
            return int(
                db.execute("DELETE FROM templates WHERE gallery = ? AND subject = ?", (gallery, subject)).rowcount
            )

    def load(self, gallery: str) -> Iterator[SealedTemplate]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, subject, model, sealed, bbox, created, quality FROM templates "
                "WHERE gallery = ? ORDER BY id",
                (gallery,),
            ).fetchall()
        for tid, subject, model, sealed, bbox, created, quality in rows:
            vec = self.cipher.open(bytes(sealed), _context(gallery, subject, model))
            yield SealedTemplate(
                int(tid),
                gallery,
                subject,
                model,
                vec,
                None if bbox is None else json.loads(bbox),
                float(created),
                None if quality is None else float(quality),
            )
