"""Named galleries of the service: ``DATA_DIR/galleries/<name>/`` each a :mod:`faceprint.gallery`
folder (SQLite + faiss), opened once and shared by the request threads (gallery methods take
the gallery's own lock).

With a template key, the durable copy of the templates is :class:`~.crypto.EncryptedTemplateStore`
and the searchable galleries live in a RAM-backed folder (``/dev/shm``, mode 0700) for the life
of the process (see :mod:`faceprint.service.crypto`). The folder holds a lock file the server
keeps locked while it runs; a server that starts removes every such folder whose lock is free
(left by a server that was killed), so decrypted templates do not outlive their process. A data
folder holding encrypted templates is refused without the key, rather than served as empty.

A damaged gallery (its SQLite database cannot be read) raises
:class:`~faceprint.errors.CorruptStoreError` for requests to *that* gallery only: the list
shows it with ``status: "damaged"``, and an admin can delete it, which removes its folder
without opening it.

A *protected* gallery (``POST /v1/galleries`` with ``protect``: ``biohash``, ``iom`` or ``ckks``;
:mod:`faceprint.gallery.protected`) lives in ``DATA_DIR/galleries/<name>/protected.sqlite`` and
holds only protected templates. Its key derives from the server's protection secret
(``ServiceSettings.protect_secret``, from ``FACEPRINT_PROTECT_SECRET_FILE``), which never travels
in a request: the same routes enrol, list, remove, identify and verify on it. Without that
secret, or with another one, its requests answer 503 ``protection_unavailable`` (never a score);
operations that need plain templates answer 409 ``protected_gallery``. A CKKS gallery is
searched by a linear encrypted scan (about 25-30 ms per template on one core): it is capped at
``ckks_max_templates`` templates, and one scan runs at a time per gallery (another answers 503).

Error messages from here never show server paths: the gallery library's messages name its
folder, so the errors a client can cause are re-raised with the gallery's *name*.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import (
    ConfigurationError,
    CorruptStoreError,
    EmbeddingMismatchError,
    GalleryError,
    GalleryExistsError,
    GalleryNotFoundError,
    KeyMismatchError,
    ProtectedGalleryError,
    ProtectionKeyError,
    ProtectionNotConfiguredError,
    ProtectionUnavailableError,
    ServiceUnavailableError,
    SubjectNotFoundError,
)
from ..gallery import Gallery, IdentifyResult, Template, open_gallery, split_model_tag
from ..gallery.files import remove_gallery
from ..gallery.protected import PROTECTED_DB, ProtectedGallery, open_protected_gallery
from ..types import BBox, Decision, Embedding, Face
from .auth import GALLERY_NAME_RE
from .crypto import EncryptedTemplateStore, TemplateCipher
from .settings import ServiceSettings, ensure_private_dir

__all__ = ["GalleryManager", "ram_dir", "VAULT_NAME", "embedder_info"]

log = logging.getLogger(__name__)

_DB = "gallery.sqlite"
VAULT_NAME = "templates.enc.sqlite"
_RAM_PREFIX = "faceprint-galleries-"
_RAM_LOCK = ".lock"
_FLOOR_NOTE = "a lower threshold needs an admin key"


def ram_dir() -> Path:
    """A RAM-backed folder for decrypted galleries: ``$FACEPRINT_RAM_DIR`` or ``/dev/shm``."""
    candidate = Path(os.environ.get("FACEPRINT_RAM_DIR", "/dev/shm"))
    if not candidate.is_dir() or not os.access(candidate, os.W_OK):
        raise ConfigurationError(
            f"template encryption keeps decrypted galleries in RAM, but {candidate} is not a writable folder: "
            "set FACEPRINT_RAM_DIR to a tmpfs mount"
        )
    return candidate


def remove_stale_ram_dirs(root: Path) -> list[Path]:
    """Remove the decrypted-gallery folders under ``root`` left by servers that no longer run
    (their lock file is not locked any more). Only folders of this user are touched."""
    removed = []
    for d in sorted(root.glob(_RAM_PREFIX + "*")):
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != os.getuid():
                continue
            fd = os.open(d / _RAM_LOCK, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:  # no lock file: not ours to judge (or already gone)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a running server holds it
            os.close(fd)
            continue
        try:
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)
        log.warning("removed %s: decrypted templates left by a faceprint server that did not shut down", d)
        removed.append(d)
    return removed


class GalleryManager:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._open: dict[str, Gallery] = {}
        self._protected: dict[str, ProtectedGallery] = {}
        self._scans: dict[str, threading.BoundedSemaphore] = defaultdict(lambda: threading.BoundedSemaphore(1))
        self.vault: EncryptedTemplateStore | None = None
        self.work_dir: Path | None = None
        self._work_lock: int | None = None
        vault_path = ensure_private_dir(settings.data_dir) / VAULT_NAME
        if settings.template_key is not None:
            if settings.keep_source_images:
                raise ConfigurationError("keep_source_images cannot be combined with template encryption")
            plain = self._plain_galleries()
            if plain:
                log.warning(
                    "%s holds %d unencrypted galleries (%s) that this server, run with a template key, does not "
                    "serve; their templates are stored in clear: delete them or start without the key",
                    settings.gallery_dir,
                    len(plain),
                    ", ".join(plain),
                )
            self.vault = EncryptedTemplateStore(vault_path, TemplateCipher(settings.template_key))
            try:
                self._make_work_dir()
                for name in self.vault.galleries():
                    self._restore(name)
            except BaseException:
                self.close()
                raise
        else:
            if vault_path.exists():
                raise ConfigurationError(
                    f"{settings.data_dir} holds encrypted galleries ({VAULT_NAME}) but no template key was given: "
                    "set FACEPRINT_TEMPLATE_KEY or FACEPRINT_TEMPLATE_KEY_FILE to the key they were encrypted "
                    "with. Without it they stay locked, and this server refuses to start rather than serve "
                    "an empty gallery list"
                )
            ensure_private_dir(settings.gallery_dir, "gallery folder")
        self._check_protected()

    def _protected_names(self) -> list[str]:
        root = self.settings.gallery_dir
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if GALLERY_NAME_RE.match(p.name) and (p / PROTECTED_DB).is_file())

    def _check_protected(self) -> None:
        """Say at start-up, in the log, which protected galleries this server's secret cannot open
        (their requests then answer 503; the other galleries keep working)."""
        for name in self._protected_names():
            try:
                self.protected(name)
            except ProtectionUnavailableError as exc:
                log.error("%s", exc)
            except CorruptStoreError as exc:
                log.error("protected gallery %r is damaged: %s", name, exc)

    def _plain_galleries(self) -> list[str]:
        root = self.settings.gallery_dir
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / _DB).is_file())

    def _make_work_dir(self) -> None:
        """A fresh 0700 RAM folder, locked for the life of this process; stale ones are removed first."""
        root = ram_dir()
        remove_stale_ram_dirs(root)
        work = Path(tempfile.mkdtemp(prefix=_RAM_PREFIX, dir=root))  # mkdtemp makes it 0700
        os.chmod(work, 0o700)
        fd = os.open(work / _RAM_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.work_dir, self._work_lock = work, fd

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
            return sorted({*self.vault.galleries(), *self._protected_names()})
        root = self.settings.gallery_dir
        plain = [p.name for p in root.iterdir() if GALLERY_NAME_RE.match(p.name) and (p / _DB).is_file()]
        return sorted({*plain, *self._protected_names()})

    def exists(self, name: str) -> bool:
        return (
            name in self._open
            or self.is_protected(name)
            or (GALLERY_NAME_RE.match(name) is not None and (self._path(name) / _DB).is_file())
        )

    def is_protected(self, name: str) -> bool:
        return name in self._protected or (
            GALLERY_NAME_RE.match(name) is not None and (self.settings.gallery_dir / name / PROTECTED_DB).is_file()
        )

    def protected(self, name: str) -> ProtectedGallery | None:
        """The protected gallery ``name`` opened with the server's secret; None when ``name`` is not one.

        Raises :class:`ProtectionUnavailableError` (503) without the secret or with another one."""
        with self._lock:
            pg = self._protected.get(name)
            if pg is not None or not self.is_protected(name):
                return pg
            secret = self.settings.protect_secret
            if secret is None:
                raise ProtectionUnavailableError(
                    f"gallery {name!r} is protected and this server has no protection secret: start it with "
                    "FACEPRINT_PROTECT_SECRET_FILE (a 0600 file holding the gallery's secret)",
                    retry_after=None,
                )
            with self.guard(name):
                try:
                    pg = open_protected_gallery(self.settings.gallery_dir / name, secret, create=False)
                except (KeyMismatchError, ProtectionKeyError):
                    raise ProtectionUnavailableError(
                        f"this server's protection secret does not open gallery {name!r} (its templates are under "
                        "another key): start the server with that gallery's secret"
                    ) from None
            self._protected[name] = pg
            return pg

    def keeps_source_images(self, name: str) -> bool:
        if self.is_protected(name):
            return False
        return bool(self.get(name).settings.keep_source_images)

    @staticmethod
    def _damaged(name: str) -> CorruptStoreError:
        return CorruptStoreError(
            f"gallery {name!r} is damaged: its database cannot be read. Restore it from a backup, or have an "
            f"admin delete it (DELETE /v1/galleries/{name}) and enrol its subjects again"
        )

    @contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Turn a damaged database under gallery ``name`` into a :class:`CorruptStoreError` naming the
        gallery (not its path), and close it so the next request tries to open it afresh."""
        try:
            yield
        except (CorruptStoreError, sqlite3.DatabaseError) as exc:
            log.error("gallery %r is damaged: %s", name, exc)
            with self._lock:
                g = self._open.pop(name, None)
            if g is not None:
                try:
                    g.close()
                except Exception:  # it is damaged; closing is best effort
                    log.debug("closing damaged gallery %r failed", name, exc_info=True)
            raise self._damaged(name) from None

    def get(self, name: str) -> Gallery:
        with self._lock:
            g = self._open.get(name)
            if g is not None:
                return g
            if not self.exists(name):
                raise GalleryNotFoundError(f"no gallery {name!r}: an admin creates it with POST /v1/galleries")
            if self.is_protected(name):
                raise ProtectedGalleryError(f"gallery {name!r} is protected; this operation needs a plain gallery")
            with self.guard(name):
                try:
                    g = open_gallery(self._path(name), create=False, synchronous=self._sync_mode())
                except GalleryError as exc:
                    if isinstance(exc, CorruptStoreError) or "not a faceprint gallery database" not in str(exc):
                        raise
                    raise CorruptStoreError(str(exc)) from exc
            self._open[name] = g
            return g

    def _sync_mode(self) -> str:
        return "normal" if self.encrypted else "full"  # RAM galleries are rebuilt from the vault

    def create_protected(self, name: str, method: str, embedder: dict[str, Any]) -> ProtectedGallery:
        """A new protected gallery for the workers' model (``embedder``: :func:`embedder_info`)."""
        self._check(name)
        if self.settings.protect_secret is None:
            raise ProtectionNotConfiguredError(
                "this server has no protection secret, so it cannot create protected galleries: start it with "
                "FACEPRINT_PROTECT_SECRET_FILE (a 0600 file; `faceprint protect keygen FILE` writes one)"
            )
        with self._lock:
            if self.exists(name):
                raise GalleryExistsError(f"a gallery {name!r} already exists")
            ensure_private_dir(self.settings.gallery_dir, "gallery folder")
            described = SimpleNamespace(
                embedder=SimpleNamespace(
                    model_id=embedder["model_id"], model_version=embedder["model_version"], dim=embedder["dim"]
                ),
                detector_spec=self.settings.detector,
                embedder_spec=self.settings.embedder,
                detector_options=dict(self.settings.detector_options),
                embedder_options=dict(self.settings.embedder_options),
                max_pixels=self.settings.max_pixels,
            )
            pg = open_protected_gallery(
                self.settings.gallery_dir / name,
                self.settings.protect_secret,
                protect=method,
                create=True,
                pipeline=described,
                keep_source_images=False,
            )
            self._protected[name] = pg
            return pg

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

    def delete(self, name: str) -> int | None:
        """Delete gallery ``name``; the number of templates it held (None when it is damaged).

        A damaged gallery is removed without being opened: its folder is deleted as it is.
        """
        with self._lock:
            if not self.exists(name):
                raise GalleryNotFoundError(f"no gallery {name!r}")
            try:
                n: int | None = int(self.describe(name).get("templates") or 0)
            except (CorruptStoreError, ProtectionUnavailableError):
                n = None
            if self.is_protected(name):
                pg = self._protected.pop(name, None)
                if pg is not None:
                    pg.close()
                remove_gallery(self.settings.gallery_dir / name)
                return n
            g = self._open.pop(name, None)
            if g is not None:
                g.close()
            if self.vault is not None:
                self.vault.drop_gallery(name)
            remove_gallery(self._path(name))  # refuses a folder holding files a gallery does not write
            return n

    def describe(self, name: str) -> dict[str, Any]:
        pg = self.protected(name)
        g = self.get(name) if pg is None else None
        with self.guard(name):
            st = pg.stats() if pg is not None else g.stats()  # type: ignore[union-attr]
        out = {
            "name": name,
            "status": "ok",
            "model": st.get("model"),
            "subjects": st.get("subjects"),
            "templates": st.get("templates"),
            "keep_source_images": bool(st.get("keep_source_images")),
            "encrypted": self.encrypted,
            "protection": st.get("protection"),
            "created_at": None if g is None else _iso(g.settings.created),
        }
        if pg is not None:  # a ckks gallery's templates are encrypted; the vault holds no protected one
            out.update(encrypted=pg.method == "ckks", threshold=pg.threshold)
        return out

    def listing(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """:meth:`describe` of each gallery; a damaged one is listed with ``status: "damaged"``."""
        out = []
        for name in names:
            try:
                out.append(self.describe(name))
            except CorruptStoreError as exc:
                out.append({"name": name, "status": "damaged", "problem": str(exc), "encrypted": self.encrypted})
            except ProtectionUnavailableError as exc:  # listed, not hidden: an admin sees why it is locked
                out.append({"name": name, "status": "locked", "problem": str(exc), "protection": "unknown"})
        return out

    # --- subjects -------------------------------------------------------------------------

    def subjects(self, name: str, *, limit: int, offset: int) -> tuple[list[Any], int]:
        pg = self.protected(name)
        if pg is not None:
            with self.guard(name):
                return pg.subjects(limit=limit, offset=offset), len(pg)
        g = self.get(name)
        with self.guard(name):
            return g.subjects(limit=limit, offset=offset), len(g)

    def subject(self, name: str, subject: str) -> Any:
        pg = self.protected(name)
        try:
            with self.guard(name):
                return pg.subject(subject) if pg is not None else self.get(name).subject(subject)
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
        qualities: Sequence[float | None] | None = None,
    ) -> list[Template]:
        """Add templates computed by the service's pipeline (one transaction; the vault too when
        encrypted), with their faces' quality when the service assesses it. A protected gallery
        stores only their protected templates (returned as objects with an ``id``)."""
        pg = self.protected(name)
        if pg is not None:
            return self._enroll_protected(name, pg, subject, embeddings)  # type: ignore[return-value]
        g = self.get(name)
        quals = list(qualities) if qualities is not None else [None] * len(embeddings)
        try:
            with self.guard(name):
                templates = g.enroll_embeddings(
                    subject,
                    list(embeddings),
                    bboxes=list(bboxes),
                    image_sha256=None if self.encrypted else list(image_sha256),
                    qualities=quals,
                )
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(
                f"gallery {name!r} holds templates of {g.model}; this service makes {embeddings[0].model}"
            ) from None
        if self.vault is not None:
            try:
                self.vault.add(
                    name,
                    subject,
                    embeddings[0].model,
                    [e.vector for e in embeddings],
                    [b.as_list() for b in bboxes],
                    quals,
                )
            except BaseException:
                g.remove_templates([t.id for t in templates])
                raise
        return templates

    def _enroll_protected(
        self, name: str, pg: ProtectedGallery, subject: str, embeddings: Sequence[Embedding]
    ) -> list[SimpleNamespace]:
        cap = self.settings.ckks_max_templates
        if pg.method == "ckks" and int(pg.stats()["templates"]) + len(embeddings) > cap:
            raise ProtectedGalleryError(
                f"gallery {name!r} is a CKKS gallery, searched by a linear encrypted scan (about 25-30 ms per "
                f"template): this server caps it at {cap} templates (FACEPRINT_CKKS_MAX_TEMPLATES)"
            )
        try:
            with self.guard(name):
                ids = pg.enroll_embeddings(subject, [e.vector for e in embeddings], model=embeddings[0].model)
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(
                f"gallery {name!r} holds templates of another model than {embeddings[0].model}"
            ) from None
        return [SimpleNamespace(id=i) for i in ids]

    def enroll_images(self, name: str, subject: str, images: Sequence[bytes], faces: Sequence[Face]) -> list[Template]:
        """Enrol through the gallery itself, which keeps the source images (galleries created so).

        ``faces`` are the main faces an inference worker found in ``images``, in order: the
        gallery is handed them instead of running a model in the server process.
        """
        g = self.get(name)
        try:
            with self.guard(name):
                return g.enroll(subject, list(images), pipeline=_FoundFaces(faces, self.settings))  # type: ignore[arg-type]
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of another model") from None

    def remove_subject(self, name: str, subject: str) -> int:
        pg = self.protected(name)
        try:
            with self.guard(name):
                n = pg.remove(subject) if pg is not None else self.get(name).remove(subject)
        except SubjectNotFoundError:
            raise SubjectNotFoundError(f"no subject {subject!r} in gallery {name!r}") from None
        if self.vault is not None and pg is None:
            self.vault.remove_subject(name, subject)
        return n

    # --- search ---------------------------------------------------------------------------

    def identify(
        self,
        name: str,
        probe: Embedding,
        k: int,
        threshold: float | None,
        *,
        floor: bool = False,
        min_template_quality: float | None = None,
    ) -> IdentifyResult:
        """Top-``k`` search. With ``floor`` (keys below admin), ``threshold`` may raise the gallery's
        own operating threshold but not lower it: a lower value is raised to it, and
        ``threshold_source`` says so. Without that, a low threshold would list every subject.
        ``min_template_quality``: as :meth:`Gallery.identify` (it only ever removes candidates)."""
        pg = self.protected(name)
        if pg is not None:
            if min_template_quality is not None:
                raise ProtectedGalleryError(
                    f"gallery {name!r} is protected: its templates carry no quality, so min_template_quality "
                    "cannot apply"
                )
            return self._identify_protected(name, pg, probe, k, threshold, floor=floor)
        g = self.get(name)
        try:
            with self.guard(name):
                r = g.identify(
                    probe, k, threshold=None if floor else threshold, min_template_quality=min_template_quality
                )
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of {g.model}, not {probe.model}") from None
        if not floor or threshold is None:
            return r
        if not threshold > r.threshold:
            note = f"{r.threshold_source} (the requested {threshold:g} is lower: {_FLOOR_NOTE})"
            return replace(r, threshold_source=note)
        # the top-k above a higher threshold are the head of the top-k above the lower one
        kept = [c for c in r.candidates if c.score >= threshold]
        return replace(r, candidates=kept, threshold=float(threshold), threshold_source="explicit")

    def _check_model(self, name: str, pg: ProtectedGallery, probe: Embedding) -> None:
        model = pg.stats().get("model")
        if model is not None and probe.model != model:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of {model}, not {probe.model}")

    @contextmanager
    def _scan(self, name: str, pg: ProtectedGallery) -> Iterator[None]:
        """One CKKS scan at a time per gallery (its cost grows with the gallery); another answers 503."""
        if pg.method != "ckks":
            yield
            return
        sem = self._scans[name]
        if not sem.acquire(blocking=False):
            raise ServiceUnavailableError(
                f"gallery {name!r} is a CKKS gallery and is scanning for another request; retry shortly",
                retry_after=2,
            )
        try:
            yield
        finally:
            sem.release()

    def _identify_protected(
        self, name: str, pg: ProtectedGallery, probe: Embedding, k: int, threshold: float | None, *, floor: bool
    ) -> IdentifyResult:
        """:meth:`identify` on a protected gallery: the probe is protected under the gallery key and
        searched there; the same threshold rules (below admin, ``threshold`` can only raise the gallery's)."""
        from ..gallery.values import Candidate

        self._check_model(name, pg, probe)
        own = pg.threshold
        default = f"protected gallery default ({pg.method})"
        if threshold is None:
            thr, source = own, default
        elif floor and not threshold > own:
            thr, source = own, f"{default} (the requested {threshold:g} is lower: {_FLOOR_NOTE})"
        else:
            thr, source = float(threshold), "explicit"
        with self.guard(name), self._scan(name, pg):
            r = pg.identify(probe.vector, k, threshold=thr)
        kept = [c for c in r.candidates if c.score >= thr]
        return IdentifyResult(
            candidates=[Candidate(c.subject, c.score, i + 1, -1, 0) for i, c in enumerate(kept)],
            threshold=thr,
            threshold_source=source,
            strategy="max",
            model=probe.model,
            k=k,
        )

    def verify(
        self, name: str, subject: str, probe: Embedding, threshold: float | None, *, floor: bool = False
    ) -> Decision:
        """1:1 against an enrolled subject; ``floor`` as in :meth:`identify` (against the model's
        calibrated 1:1 threshold, or a protected gallery's own)."""
        pg = self.protected(name)
        if pg is not None:
            self._check_model(name, pg, probe)
            own = pg.threshold
            thr = own if threshold is None or (floor and not threshold > own) else float(threshold)
            try:
                with self.guard(name), self._scan(name, pg):
                    match, score = pg.verify(probe.vector, subject, threshold=thr)
            except SubjectNotFoundError:
                raise SubjectNotFoundError(f"no subject {subject!r} with templates in gallery {name!r}") from None
            point = f"protected-{pg.method}" if thr == own else "custom"
            return Decision(score, thr, point, float("nan"), match, probe.model)
        g = self.get(name)
        try:
            with self.guard(name):
                d = g.verify(probe, subject, threshold=None if floor else threshold)
        except SubjectNotFoundError:
            raise SubjectNotFoundError(f"no subject {subject!r} with templates in gallery {name!r}") from None
        except EmbeddingMismatchError:
            raise EmbeddingMismatchError(f"gallery {name!r} holds templates of {g.model}, not {probe.model}") from None
        if not floor or threshold is None or not threshold > d.threshold:
            return d
        t = float(threshold)
        return replace(d, threshold=t, operating_point="custom", fmr=float("nan"), match=d.score >= t)

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
                qualities=[r.quality for r in rows],
            )
        log.info("restored gallery %r: %d subjects from encrypted templates", name, len(by_subject))

    def close(self) -> None:
        with self._lock:
            for pg in self._protected.values():
                pg.close()
            self._protected.clear()
            for name, g in list(self._open.items()):
                try:
                    g.close()
                except Exception:  # keep closing the others
                    log.exception("closing gallery %r failed", name)
            self._open.clear()
            if self.work_dir is not None:
                shutil.rmtree(self.work_dir, ignore_errors=True)
                self.work_dir = None
            if self._work_lock is not None:
                os.close(self._work_lock)
                self._work_lock = None


def embedder_info(pipe: Any) -> dict[str, Any]:
    """Run in an inference worker: the model id, version and dimension of its embedder (what a new
    protected gallery is fixed to), without loading a model in the server process."""
    e = pipe.embedder
    return {"model_id": e.model_id, "model_version": e.model_version, "dim": int(e.dim)}


class _FoundFaces:
    """Stands in for a FacePipeline inside ``Gallery.enroll``: hands back, in order, the faces an
    inference worker already found, and describes the service's pipeline for the gallery's records."""

    def __init__(self, faces: Sequence[Face], settings: ServiceSettings) -> None:
        first = faces[0].embedding if faces else None
        if first is None:
            raise ConfigurationError("no faces to enrol")
        self._faces = iter(faces)
        self.embedder = SimpleNamespace(model_id=first.model_id, model_version=first.model_version, dim=first.dim)
        self.model_tag = first.model
        self.quality = None  # the workers assessed (and gated) the faces already; their reports come with them
        self.detector_spec = settings.detector
        self.embedder_spec = settings.embedder
        self.detector_options = dict(settings.detector_options)
        self.embedder_options = dict(settings.embedder_options)
        self.max_pixels = settings.max_pixels

    def embed_one(self, _image: Any, select: str = "largest") -> Face:
        return next(self._faces)


def _iso(ts: float | None) -> str | None:
    from datetime import UTC, datetime

    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")
