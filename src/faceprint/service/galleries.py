"""Named galleries of the service: ``DATA_DIR/galleries/<name>/`` each a :mod:`faceprint.gallery`
folder (SQLite + faiss), opened once and shared by the request threads (gallery methods take
the gallery's own lock).

With a template key, the durable copy of the templates is :class:`~.crypto.EncryptedTemplateStore`
and the searchable galleries live in a RAM-backed folder for the life of the process (see
:mod:`faceprint.service.crypto`).

Error messages from here never show server paths: the gallery library's messages name its
folder, so the errors a client can cause are re-raised with the gallery's *name*.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    GalleryExistsError,
    GalleryNotFoundError,
    SubjectNotFoundError,
)
from ..gallery import Gallery, IdentifyResult, Subject, Template, open_gallery
from ..gallery.base import split_model_tag
from ..types import BBox, Decision, Embedding
from .auth import GALLERY_NAME_RE
from .crypto import EncryptedTemplateStore, TemplateCipher
from .settings import ServiceSettings

__all__ = ["GalleryManager", "ram_dir"]

log = logging.getLogger(__name__)

_DB = "gallery.sqlite"


def ram_dir() -> Path:
    """A RAM-backed folder for decrypted galleries: ``$FACEPRINT_RAM_DIR`` or ``/dev/shm``."""
    candidate = Path(os.environ.get("FACEPRINT_RAM_DIR", "/dev/shm"))
    if not candidate.is_dir() or not os.access(candidate, os.W_OK):
        raise ConfigurationError(
            f"template encryption keeps decrypted galleries in RAM, but {candidate} is not a writable folder: "
            "set FACEPRINT_RAM_DIR to a tmpfs mount"
        )
    return candidate


class GalleryManager:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._open: dict[str, Gallery] = {}
        self.vault: EncryptedTemplateStore | None = None
        self.work_dir: Path | None = None
        if settings.template_key is not None:
            if settings.keep_source_images:
                raise ConfigurationError("keep_source_images cannot be combined with template encryption")
            self.vault = EncryptedTemplateStore(
                settings.data_dir / "templates.enc.sqlite", TemplateCipher(settings.template_key)
            )
            self.work_dir = Path(tempfile.mkdtemp(prefix="faceprint-galleries-", dir=ram_dir()))
            os.chmod(self.work_dir, 0o700)
            try:
                for name in self.vault.galleries():
                    self._restore(name)
            except BaseException:
                self.close()
                raise
        else:
            settings.gallery_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def encrypted(self) -> bool:
        return self.vault is not None

    def _path(self, name: str) -> Path:
        return (self.work_dir if self.work_dir is not None else self.settings.gallery_dir) / name

    @staticmethod
    def _check(name: str) -> str:
        if not GALLERY_NAME_RE.match(name):
            raise ConfigurationError(f"invalid gallery name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        return name

    # --- galleries ------------------------------------------------------------------------

    def names(self) -> list[str]:
        if self.vault is not None:
            return sorted(self.vault.galleries())
        root = self.settings.gallery_dir
        return sorted(p.name for p in root.iterdir() if GALLERY_NAME_RE.match(p.name) and (p / _DB).is_file())

    def exists(self, name: str) -> bool:
        return name in self._open or (GALLERY_NAME_RE.match(name) is not None and (self._path(name) / _DB).is_file())

    def get(self, name: str) -> Gallery:
        with self._lock:
            g = self._open.get(name)
            if g is not None:
                return g
            if not self.exists(name):
                raise GalleryNotFoundError(f"no gallery {name!r}: an admin creates it with POST /v1/galleries")
            g = open_gallery(self._path(name), create=False, synchronous=self._sync_mode())
            self._open[name] = g
            return g

    def _sync_mode(self) -> str:
        return "normal" if self.encrypted else "full"  # RAM galleries are rebuilt from the vault

    def create(self, name: str, *, keep_source_images: bool | None = None) -> Gallery:
        self._check(name)
        keep = self.settings.keep_source_images if keep_source_images is None else bool(keep_source_images)
        if keep and self.encrypted:
            raise ConfigurationError("this service encrypts templates at rest and cannot keep source images")
        with self._lock:
            if self.exists(name):
                raise GalleryExistsError(f"a gallery {name!r} already exists")
            g = open_gallery(self._path(name), create=True, keep_source_images=keep, synchronous=self._sync_mode())
            if self.vault is not None:
                try:
                    self.vault.add_gallery(name, {"keep_source_images": False})
                except BaseException:
                    g.close()
                    shutil.rmtree(self._path(name), ignore_errors=True)
                    raise
            self._open[name] = g
            return g

    def delete(self, name: str) -> None:
        with self._lock:
            g = self.get(name)
            g.close()
            self._open.pop(name, None)
            if self.vault is not None:
                self.vault.drop_gallery(name)
            shutil.rmtree(self._path(name))

    def describe(self, name: str) -> dict[str, Any]:
        g = self.get(name)
        st = g.stats()
        return {
            "name": name,
            "model": st.get("model"),
            "subjects": st.get("subjects"),
            "templates": st.get("templates"),
            "keep_source_images": st.get("keep_source_images"),
            "encrypted": self.encrypted,
            "created_at": _iso(g.settings.created),
        }

    # --- subjects -------------------------------------------------------------------------

    def subjects(self, name: str, *, limit: int, offset: int) -> tuple[list[Subject], int]:
        g = self.get(name)
        try:
            page = g.subjects(limit=limit, offset=offset)  # type: ignore[call-arg]
        except TypeError:  # a backend without paging
            page = g.subjects()[offset : offset + limit]
        return page, len(g)

    def subject(self, name: str, subject: str) -> Subject:
        g = self.get(name)
        try:
            return g.subject(subject)
        except SubjectNotFoundError:
            raise SubjectNotFoundError(f"no subject {subject!r} in gallery {name!r}") from None

    def enroll(
        self,
        name: str,
        subject: str,
        embeddings: Sequence[Embedding],
        *,
        bboxes: Sequence[BBox],
        image_sha256: Sequence[str],
    ) -> list[Template]:
        """Add templates computed by the service's pipeline (one transaction; the vault too when encrypted)."""
        g = self.get(name)
        try:
            templates = g.enroll_embeddings(
                subject,
                list(embeddings),
                bboxes=list(bboxes),
                image_sha256=None if self.encrypted else list(image_sha256),
            )
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(
                f"gallery {name!r} holds templates of {g.model}; this service makes {embeddings[0].model}"
            ) from None
        if self.vault is not None:
            try:
                self.vault.add(
                    name, subject, embeddings[0].model, [e.vector for e in embeddings], [b.as_list() for b in bboxes]
                )
            except BaseException:
                g.remove_templates([t.id for t in templates])
                raise
        return templates

    def enroll_images(self, name: str, subject: str, images: Sequence[bytes], pipeline: Any) -> list[Template]:
        """Enrol through the gallery itself, which keeps the source images (galleries created so)."""
        g = self.get(name)
        try:
            return g.enroll(subject, list(images), pipeline=pipeline)
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of another model") from None

    def remove_subject(self, name: str, subject: str) -> int:
        g = self.get(name)
        try:
            n = g.remove(subject)
        except SubjectNotFoundError:
            raise SubjectNotFoundError(f"no subject {subject!r} in gallery {name!r}") from None
        if self.vault is not None:
            self.vault.remove_subject(name, subject)
        return n

    # --- search ---------------------------------------------------------------------------

    def identify(self, name: str, probe: Embedding, k: int, threshold: float | None) -> IdentifyResult:
        g = self.get(name)
        try:
            return g.identify(probe, k, threshold=threshold)
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of {g.model}, not {probe.model}") from None

    def verify(self, name: str, subject: str, probe: Embedding, threshold: float | None) -> Decision:
        g = self.get(name)
        try:
            return g.verify(probe, subject, threshold=threshold)
        except SubjectNotFoundError:
            raise SubjectNotFoundError(f"no subject {subject!r} with templates in gallery {name!r}") from None
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of {g.model}, not {probe.model}") from None

    # --- life cycle -----------------------------------------------------------------------

    def _restore(self, name: str) -> None:
        """Rebuild one gallery in RAM from its encrypted templates."""
        assert self.vault is not None
        g = open_gallery(self._path(name), create=True, synchronous="normal")
        self._open[name] = g
        by_subject: dict[str, list[Any]] = defaultdict(list)
        for t in self.vault.load(name):
            by_subject[t.subject].append(t)
        for subject, rows in by_subject.items():
            model_id, version = split_model_tag(rows[0].model)
            g.enroll_embeddings(
                subject,
                [Embedding(r.vector, model_id, version) for r in rows],
                bboxes=[r.bbox for r in rows],
            )
        log.info("restored gallery %r: %d subjects from encrypted templates", name, len(by_subject))

    def close(self) -> None:
        with self._lock:
            for name, g in list(self._open.items()):
                try:
                    g.close()
                except Exception:  # keep closing the others
                    log.exception("closing gallery %r failed", name)
            self._open.clear()
            if self.work_dir is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)


def _iso(ts: float | None) -> str | None:
    from datetime import UTC, datetime

    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")
