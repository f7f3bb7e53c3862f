"""A gallery that stores only protected templates (``faceprint gallery create G --protect METHOD``).

::

    from faceprint.gallery.protected import open_protected_gallery

    with open_protected_gallery("people/", secret, protect="biohash", create=True) as g:
        g.enroll("ada", ["ada1.jpg", "ada2.jpg"])
        result = g.identify("probe.jpg", k=5)

The folder holds one SQLite file, ``protected.sqlite`` (0600, in a 0700 folder), with the
gallery's settings, its subjects and their *protected* templates, and, when source images are
kept, an ``images/`` folder. No plain embedding is ever written: images are embedded in memory,
protected, and only the protected template is stored. There is no index file: the search
structure is rebuilt in memory when the gallery is opened.

One application key protects every template of a gallery (1:N search compares a probe with all
templates, so they must share a key): ``derive_key(secret, "gallery/<salt>/<generation>")``,
the salt a random value made at creation and stored, the secret supplied by whoever opens the
gallery (the CLI reads ``--secret-file`` or ``$FACEPRINT_PROTECT_SECRET``). The key's
fingerprint is stored; a secret that derives another key is refused with
:class:`~faceprint.errors.KeyMismatchError` before anything is scored.

Search per method:

``biohash``  a faiss binary index (``IndexBinaryFlat``, exact Hamming distance on the packed bits);
             score ``1 - hamming / bits``.
``iom``      the same faiss binary index over the indices one-hot coded (q bits per hash function:
             two templates differ in 2 bits per unequal index, so score = 1 - hamming / (2 hashes),
             exactly the share of equal indices).
``ckks``     a linear encrypted scan: one encrypted inner product per template, decrypted by the
             key holder (this object, which unwraps the SEAL secret key stored AES-GCM-encrypted
             under the gallery key). Cost: about 25-30 ms per template on one core
             (benchmarks/RESULTS.md), so a CKKS gallery suits hundreds of templates, not millions.

Key renewal (:meth:`ProtectedGallery.rekey`) re-enrols every template from its stored source
image under a new key generation (and optionally a new secret); a gallery created without
``keep_source_images`` cannot be re-keyed and says so (the subjects must enrol again).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ..errors import (
    ConfigurationError,
    CorruptStoreError,
    GalleryError,
    KeyMismatchError,
    SubjectNotFoundError,
)
from ..protection.base import ProtectedTemplates, ProtectionKey, TemplateProtector, derive_key
from . import images
from .files import private_dir, private_file, tighten
from .names import check_subject_name
from .protected_search import ProtectedIndex as _Index

if TYPE_CHECKING:
    from ..io import ImageSource
    from ..pipeline import FacePipeline

__all__ = [
    "PROTECTED_DB",
    "PROTECT_METHODS",
    "ProtectedGallery",
    "ProtectedCandidate",
    "ProtectedSubject",
    "ProtectedIdentifyResult",
    "open_protected_gallery",
    "is_protected_gallery",
    "DEFAULT_THRESHOLDS",
]

log = logging.getLogger(__name__)

PROTECTED_DB = "protected.sqlite"
PROTECT_METHODS = ("biohash", "iom", "ckks")
#: Decision thresholds on each method's score with the default 128-D model (dlib ResNet): the EER
#: thresholds on LFW View 1 DevTrain with every template under one key (the scenario of a
#: gallery, whose templates share its key), measured by the command in benchmarks/RESULTS.md.
#: ``biohash`` is with a centre (``centre=``), ``biohash-uncentred`` without.
DEFAULT_THRESHOLDS = {"biohash": 0.630, "biohash-uncentred": 0.860, "iom": 0.611, "ckks": 0.908}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    subject_id INTEGER NOT NULL REFERENCES subjects(id),
    template BLOB NOT NULL,
    source TEXT
);
"""
_SCHEMA_VERSION = "1"
_CKKS_AAD = b"faceprint-protected-gallery/ckks-secret-context"


def is_protected_gallery(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is the folder of a protected gallery."""
    return (Path(path) / PROTECTED_DB).is_file()


@dataclass(frozen=True, slots=True)
class ProtectedSubject:
    name: str
    n_templates: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_templates": self.n_templates}


@dataclass(frozen=True, slots=True)
class ProtectedCandidate:
    subject: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "score": round(self.score, 6)}


@dataclass(frozen=True, slots=True)
class ProtectedIdentifyResult:
    """Candidates ranked by score (best first) and whether the best reaches ``threshold``."""

    candidates: list[ProtectedCandidate]
    threshold: float
    method: str

    @property
    def best(self) -> ProtectedCandidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def identified(self) -> bool:
        return bool(self.candidates) and self.candidates[0].score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "identified": self.best.subject if self.identified and self.best else None,
            "threshold": self.threshold,
            "method": self.method,
            "candidates": [c.to_dict() for c in self.candidates],
        }


@dataclass
class _Settings:
    method: str
    options: dict[str, Any]
    salt: str
    generation: int
    fingerprint: str
    keep_source_images: bool
    threshold: float
    model: str | None = None
    dim: int | None = None
    pipeline: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _key(secret: bytes, salt: str, generation: int) -> ProtectionKey:
    return derive_key(secret, f"gallery/{salt}/{generation}")


def _build_protector(method: str, dim: int, options: dict[str, Any]) -> TemplateProtector:
    from ..registry import template_protectors

    return template_protectors.create(method, dim=dim, **options)  # type: ignore[no-any-return]


class ProtectedGallery:
    """Protected templates of enrolled subjects, searched without ever holding a plain template on disk.

    Use :func:`open_protected_gallery`. Thread-safe (one lock); not shared between processes
    while writing (SQLite serialises writers, but the in-memory search structure of another
    process is not refreshed: reopen after another process enrolled).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        secret: bytes | str,
        *,
        protect: str | None = None,
        create: bool | None = None,
        pipeline: FacePipeline | None = None,
        keep_source_images: bool | None = None,
        threshold: float | None = None,
        centre: npt.ArrayLike | None = None,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        db = self.path / PROTECTED_DB
        exists = db.is_file()
        if (self.path / "gallery.sqlite").exists():
            raise GalleryError(
                f"{self.path} holds an unprotected gallery; open it without --protect (a gallery's protection "
                "is fixed at creation: enrol the subjects into a new protected gallery)"
            )
        if create is True and exists:
            raise GalleryError(f"a protected gallery already exists at {self.path}")
        if create is False and not exists:
            raise GalleryError(f"no protected gallery at {self.path}")
        if not exists and protect is None:
            raise ConfigurationError(
                f"creating a protected gallery needs a method: one of {', '.join(PROTECT_METHODS)}"
            )
        if protect is not None and protect not in PROTECT_METHODS:
            raise ConfigurationError(f"unknown protection method {protect!r}; use one of {', '.join(PROTECT_METHODS)}")
        if not exists:
            private_dir(self.path)
            private_file(db)
        else:
            tighten(self.path)
            tighten(db)
        try:
            self._conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CorruptStoreError(f"the protected gallery database {db} cannot be read: {exc}") from None
        self._pipeline = pipeline
        try:
            if exists and self._meta("settings") is not None:
                self._settings = self._open_existing(protect, keep_source_images)
            else:
                self._settings = self._create(protect or "", pipeline, keep_source_images, threshold, centre)
        except BaseException:
            self._conn.close()
            raise
        if threshold is not None:
            self._settings.threshold = float(threshold)
        self._key = _key(self._secret, self._settings.salt, self._settings.generation)
        self._protector = self._make_protector(self._key)
        self._index: _Index | None = None

    # ----- settings and keys -----------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _put_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _create(
        self,
        method: str,
        pipeline: FacePipeline | None,
        keep: bool | None,
        threshold: float | None,
        centre: npt.ArrayLike | None = None,
    ) -> _Settings:
        from ..batch import model_tag
        from ..pipeline import FacePipeline
        from .core import pipeline_settings

        pipe = pipeline or FacePipeline()
        self._pipeline = pipe
        dim = int(pipe.embedder.dim)
        options: dict[str, Any] = {}
        default = method
        if centre is not None:
            if method != "biohash":
                raise ConfigurationError(f"a centre is a biohash setting; {method} takes none")
            options["centre"] = [float(v) for v in np.asarray(centre, np.float64).ravel()]
        elif method == "biohash":
            default = "biohash-uncentred"
            log.warning("biohash without a centre: much weaker with a stolen key (docs/template-protection.md)")
        _build_protector(method, dim, options)  # a bad centre fails here, before anything is written
        salt = secrets.token_hex(16)
        key = _key(self._secret, salt, 1)
        s = _Settings(
            method=method,
            options=options,
            salt=salt,
            generation=1,
            fingerprint=key.fingerprint,
            keep_source_images=bool(keep),
            threshold=DEFAULT_THRESHOLDS[default] if threshold is None else float(threshold),
            model=model_tag(pipe),
            dim=dim,
            pipeline=pipeline_settings(pipe),
        )
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._put_meta("schema_version", _SCHEMA_VERSION)
            self._put_meta("settings", s.to_json())
            if method == "ckks":
                self._store_ckks_context(key, _build_protector(method, dim, options))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return s

    def _open_existing(self, protect: str | None, keep: bool | None) -> _Settings:
        if self._meta("schema_version") != _SCHEMA_VERSION:
            raise GalleryError(
                f"{self.path}: protected gallery schema {self._meta('schema_version')!r} is not supported"
            )
        try:
            s = _Settings(**json.loads(self._meta("settings") or ""))
        except (TypeError, ValueError) as exc:
            raise CorruptStoreError(f"the settings of protected gallery {self.path} are damaged: {exc}") from None
        if protect is not None and protect != s.method:
            raise ConfigurationError(
                f"gallery {self.path} holds {s.method} templates, not {protect}; its protection is fixed at creation"
            )
        if keep is not None and bool(keep) != s.keep_source_images:
            raise ConfigurationError(f"this gallery was created with keep_source_images={s.keep_source_images}")
        key = _key(self._secret, s.salt, s.generation)
        if key.fingerprint != s.fingerprint:
            raise KeyMismatchError(
                f"the secret does not open protected gallery {self.path}: it derives key {key.fingerprint}, the "
                f"gallery's templates are under key {s.fingerprint}"
            )
        return s

    def _aead(self, key: ProtectionKey) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(key.stream("gallery/ckks-context-wrap", 32))

    def _store_ckks_context(self, key: ProtectionKey, protector: Any) -> None:
        protector.protect(np.zeros((0, protector.dim), np.float32), key)  # makes the key's SEAL key pair
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead(key).encrypt(nonce, protector.secret_context(key), _CKKS_AAD)
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ckks_context', ?)", (sealed.hex(),))

    def _make_protector(self, key: ProtectionKey) -> TemplateProtector:
        s = self._settings
        p = _build_protector(s.method, int(s.dim or 0), s.options)
        if s.method == "ckks":
            from cryptography.exceptions import InvalidTag

            sealed = bytes.fromhex(self._meta("ckks_context") or "")
            try:
                ctx = self._aead(key).decrypt(sealed[:12], sealed[12:], _CKKS_AAD)
            except (InvalidTag, ValueError):
                raise CorruptStoreError(f"the encrypted SEAL key of gallery {self.path} is damaged") from None
            p.load_context(key, ctx)  # type: ignore[attr-defined]
        return p

    @property
    def method(self) -> str:
        return self._settings.method

    @property
    def threshold(self) -> float:
        return self._settings.threshold

    @property
    def key_fingerprint(self) -> str:
        return self._settings.fingerprint

    # ----- dunders ---------------------------------------------------------------------------

    def __enter__(self) -> ProtectedGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])

    def __repr__(self) -> str:
        return f"<ProtectedGallery {self.location!r} {self.method}>"

    # ----- enrolment -------------------------------------------------------------------------

    def get_pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            from ..pipeline import FacePipeline

            self._pipeline = FacePipeline(**self._settings.pipeline) if self._settings.pipeline else FacePipeline()
        return self._pipeline

    def _embed(self, sources: Sequence[ImageSource]) -> npt.NDArray[np.float32]:
        pipe = self.get_pipeline()
        vecs = [pipe.embed_one(src).embedding.vector for src in sources]  # type: ignore[union-attr]
        return np.asarray(vecs, np.float32).reshape(len(vecs), int(self._settings.dim or 0))

    def _rows(self, t: ProtectedTemplates) -> list[bytes]:
        if t.method == "ckks":
            return [bytes(r) for r in t.data]
        return [np.ascontiguousarray(r).tobytes() for r in t.data]

    def _templates(self, blobs: Sequence[bytes]) -> ProtectedTemplates:
        """Stored rows back into :class:`ProtectedTemplates` under the gallery's key."""
        s, p = self._settings, self._protector
        probe = p.protect(np.zeros((0, int(s.dim or 0)), np.float32), self._key)
        if s.method == "ckks":
            data: npt.NDArray[Any] = np.empty(len(blobs), dtype=object)
            for i, b in enumerate(blobs):
                data[i] = b
        else:
            width = probe.data.shape[1]
            raw = np.frombuffer(b"".join(blobs), np.uint8)
            if raw.size != width * len(blobs):
                raise CorruptStoreError(f"a template of protected gallery {self.path} has the wrong length")
            data = raw.reshape(len(blobs), width)
        return ProtectedTemplates(probe.method, probe.version, probe.dim, probe.key_fingerprint, data, probe.settings)

    def enroll(self, subject: str, sources: ImageSource | Iterable[ImageSource]) -> int:
        """Embed the main face of each image, protect it, store it; returns the templates added.

        Raises the pipeline's errors (NoFaceError, ImageError…) before anything is written."""
        name = check_subject_name(subject)
        items: list[ImageSource] = (
            [cast("ImageSource", sources)]
            if images.is_single_source(sources)
            else list(cast("Iterable[ImageSource]", sources))
        )
        if not items:
            raise ConfigurationError(f"no images given for {name!r}")
        x = self._embed(items)
        t = self._protector.protect(x, self._key)
        del x
        kept: list[str | None] = [None] * len(items)
        if self._settings.keep_source_images:
            for i, src in enumerate(items):
                data, label, suffix = images.source_bytes(src)
                if data is None:
                    raise GalleryError(f"cannot keep the source image {label}")
                import hashlib

                kept[i] = images.store(self.path / "images", data, hashlib.sha256(data).hexdigest(), suffix)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("INSERT OR IGNORE INTO subjects (name) VALUES (?)", (name,))
                sid = self._conn.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()[0]
                self._conn.executemany(
                    "INSERT INTO templates (subject_id, template, source) VALUES (?, ?, ?)",
                    [(sid, blob, src) for blob, src in zip(self._rows(t), kept, strict=True)],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._index = None
        return len(t)

    def enroll_embeddings(self, subject: str, embeddings: npt.ArrayLike, *, model: str | None = None) -> list[int]:
        """Protect embeddings computed elsewhere (e.g. the REST service's inference workers) and store
        only the protected templates; returns their template ids. ``model``: the ``model_id@version``
        they come from, refused (:class:`~faceprint.errors.EmbeddingMismatchError`) when not the
        gallery's. The plain vectors are never written. A gallery that keeps source images needs
        :meth:`enroll` (the images), not this."""
        from ..errors import EmbeddingMismatchError

        name = check_subject_name(subject)
        s = self._settings
        if s.keep_source_images:
            raise GalleryError(f"gallery {self.path} keeps source images: enrol the images, not embeddings")
        if model is not None and s.model is not None and model != s.model:
            raise EmbeddingMismatchError(f"gallery {self.path} holds templates of {s.model}, not {model}")
        x = np.asarray(embeddings, np.float32)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != int(s.dim or 0):
            raise EmbeddingMismatchError(f"expected (n, {s.dim}) embeddings, got shape {x.shape}")
        t = self._protector.protect(x, self._key)
        del x
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("INSERT OR IGNORE INTO subjects (name) VALUES (?)", (name,))
                sid = self._conn.execute("SELECT id FROM subjects WHERE name = ?", (name,)).fetchone()[0]
                ids = [
                    int(
                        self._conn.execute(
                            "INSERT INTO templates (subject_id, template, source) VALUES (?, ?, NULL)", (sid, blob)
                        ).lastrowid
                        or 0
                    )
                    for blob in self._rows(t)
                ]
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._index = None
        return ids

    def subject(self, subject: str) -> ProtectedSubject:
        """One subject and its template count."""
        row = self._conn.execute(
            "SELECT s.name, COUNT(t.id) FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id "
            "WHERE s.name = ? GROUP BY s.id",
            (subject,),
        ).fetchone()
        if row is None:
            raise SubjectNotFoundError(f"no subject {subject!r} in {self.path}")
        return ProtectedSubject(str(row[0]), int(row[1]))

    def remove(self, subject: str) -> int:
        """Delete a subject, its templates and stored images no other template uses; returns the templates removed."""
        with self._lock:
            row = self._conn.execute("SELECT id FROM subjects WHERE name = ?", (subject,)).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no subject {subject!r} in {self.path}")
            sources = [r[0] for r in self._conn.execute("SELECT source FROM templates WHERE subject_id = ?", row)]
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM templates WHERE subject_id = ?", row)
            self._conn.execute("DELETE FROM subjects WHERE id = ?", row)
            self._conn.execute("COMMIT")
            still = {r[0] for r in self._conn.execute("SELECT source FROM templates WHERE source IS NOT NULL")}
            images.forget(self.path / "images", [s for s in sources if s and s not in still])
            self._index = None
        return len(sources)

    def subjects(self, *, limit: int | None = None, offset: int = 0) -> list[ProtectedSubject]:
        """Subjects sorted by name with their template counts: all, or ``limit`` after skipping ``offset``."""
        rows = self._conn.execute(
            "SELECT s.name, COUNT(t.id) FROM subjects s LEFT JOIN templates t ON t.subject_id = s.id "
            "GROUP BY s.id ORDER BY s.name LIMIT ? OFFSET ?",
            (-1 if limit is None else int(limit), int(offset)),
        ).fetchall()
        return [ProtectedSubject(name, int(n)) for name, n in rows]

    def stats(self) -> dict[str, Any]:
        n_t = int(self._conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])
        s = self._settings
        return {
            "backend": "protected-sqlite",
            "location": self.location,
            "protection": s.method,
            "scheme": self._templates([]).scheme,
            "key_fingerprint": s.fingerprint,
            "key_generation": s.generation,
            "threshold": s.threshold,
            "keep_source_images": s.keep_source_images,
            "model": s.model,
            "dim": s.dim,
            "subjects": len(self),
            "templates": n_t,
        }

    # ----- search ----------------------------------------------------------------------------

    def _search_index(self) -> _Index:
        with self._lock:
            if self._index is None:
                rows = self._conn.execute("SELECT id, subject_id, template FROM templates ORDER BY id").fetchall()
                names = dict(self._conn.execute("SELECT id, name FROM subjects").fetchall())
                t = self._templates([r[2] for r in rows])
                owners = np.array([r[1] for r in rows], np.int64)
                self._index = _Index(self._protector, t, owners, names)
            return self._index

    def protect_probe(self, probe: ImageSource | npt.ArrayLike) -> ProtectedTemplates:
        """A probe image (or an (D,)/(1, D) embedding of the gallery's model) protected under the gallery key."""
        if isinstance(probe, np.ndarray) and probe.dtype.kind == "f":
            x = np.asarray(probe, np.float32).reshape(1, -1)
        else:
            x = self._embed([probe])  # type: ignore[list-item]
        return self._protector.protect(x, self._key)

    def identify(
        self, probe: ImageSource | npt.ArrayLike | ProtectedTemplates, k: int = 5, *, threshold: float | None = None
    ) -> ProtectedIdentifyResult:
        """The ``k`` best subjects for the probe (a subject's score: its best template's)."""
        if k < 1:
            raise ConfigurationError(f"k must be ≥ 1, got {k}")
        t = probe if isinstance(probe, ProtectedTemplates) else self.protect_probe(probe)
        ranked = self._search_index().rank(t, k)
        thr = self._settings.threshold if threshold is None else float(threshold)
        return ProtectedIdentifyResult([ProtectedCandidate(n, s) for n, s in ranked], thr, self.method)

    def verify(
        self, probe: ImageSource | npt.ArrayLike, subject: str, *, threshold: float | None = None
    ) -> tuple[bool, float]:
        """(match, score) of the probe against one subject's templates (its best)."""
        row = self._conn.execute("SELECT id FROM subjects WHERE name = ?", (subject,)).fetchone()
        if row is None:
            raise SubjectNotFoundError(f"no subject {subject!r} in {self.path}")
        blobs = [r[0] for r in self._conn.execute("SELECT template FROM templates WHERE subject_id = ?", row)]
        score = float(np.max(self._protector.compare(self.protect_probe(probe), self._templates(blobs))))
        thr = self._settings.threshold if threshold is None else float(threshold)
        return score >= thr, score

    # ----- key renewal -----------------------------------------------------------------------

    def rekey(self, new_secret: bytes | str | None = None) -> int:
        """Renew the gallery key (next generation; ``new_secret`` also replaces the secret) and
        re-protect every template from its stored source image. Returns the templates renewed.

        Raises :class:`GalleryError` when the gallery keeps no source images: protected
        templates cannot be re-protected without the face, so the subjects must enrol again."""
        s = self._settings
        if not s.keep_source_images:
            raise GalleryError(
                f"gallery {self.path} keeps no source images, so its templates cannot be re-protected under a new "
                "key: create a new protected gallery and enrol the subjects again from their images"
            )
        secret = (
            self._secret
            if new_secret is None
            else (new_secret.encode("utf-8") if isinstance(new_secret, str) else bytes(new_secret))
        )
        gen = s.generation + 1
        key = _key(secret, s.salt, gen)
        protector = _build_protector(s.method, int(s.dim or 0), s.options)
        rows = self._conn.execute("SELECT id, source FROM templates ORDER BY id").fetchall()
        root = self.path / "images"
        missing = [tid for tid, src in rows if not src or not (root / src).is_file()]
        if missing:
            raise GalleryError(
                f"{len(missing)} templates have no stored source image (e.g. id {missing[0]}); not re-keyed"
            )
        new_blobs: list[tuple[bytes, int]] = []
        for tid, src in rows:
            t = protector.protect(self._embed([root / src]), key)
            new_blobs.append((self._rows(t)[0], tid))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if s.method == "ckks":
                    self._store_ckks_context(key, protector)
                self._conn.executemany("UPDATE templates SET template = ? WHERE id = ?", new_blobs)
                new = _Settings(**{**s.__dict__, "generation": gen, "fingerprint": key.fingerprint})
                self._put_meta("settings", new.to_json())
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._settings, self._secret, self._key = new, secret, key
            self._protector = protector
            self._index = None
        return len(new_blobs)


def open_protected_gallery(path: str | os.PathLike[str], secret: bytes | str, **options: Any) -> ProtectedGallery:
    """Open (or create, with ``protect``) the protected gallery in folder ``path`` with ``secret``.

    Options (keywords of :class:`ProtectedGallery`):
        protect: (creation) ``"biohash"``, ``"iom"`` or ``"ckks"``; when opening, the expected
            method (another is refused with :class:`~faceprint.errors.ConfigurationError`).
        create: None: open, creating when missing; True: create only; False: open only.
        pipeline: the FacePipeline to embed images with (creation: fixes the model).
        keep_source_images: (creation) keep enrolled images so :meth:`ProtectedGallery.rekey` can
            re-protect templates under a new key.
        threshold: (creation) the decision threshold, else the method's :data:`DEFAULT_THRESHOLDS`;
            when opening, an override for this session.
        centre: (creation, biohash) the population mean to centre embeddings on
            (:func:`faceprint.protection.biohash.fit_centre` of other people's embeddings).

    Raises :class:`~faceprint.errors.KeyMismatchError` when ``secret`` is not the gallery's,
    :class:`~faceprint.errors.GalleryError` for an unprotected gallery folder, a
    :class:`~faceprint.errors.ProtectionKeyError` without a secret.
    """
    if not isinstance(secret, bytes | str) or not secret:
        from ..errors import ProtectionKeyError

        raise ProtectionKeyError("a protected gallery needs its secret (--secret-file or FACEPRINT_PROTECT_SECRET)")
    try:
        return ProtectedGallery(path, secret, **options)
    except sqlite3.DatabaseError as exc:
        raise CorruptStoreError(f"protected gallery {path} is damaged: {exc}") from None
