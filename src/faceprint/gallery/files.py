"""Files a gallery writes: private permissions, and removing or checking a gallery folder without opening it.

Everything a gallery writes holds templates (the database, its ``-wal`` and ``-shm`` files, the
index file, kept source images, exports), so files are created ``0600`` and folders ``0700``
whatever the umask, and existing ones are tightened when a gallery is opened.

:func:`check_gallery` and :func:`remove_gallery` work on a folder without opening the gallery,
so a damaged one can be listed as broken and removed (the REST service does both).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptStoreError, FaceprintError, GalleryError

__all__ = [
    "FILE_MODE",
    "DIR_MODE",
    "private_dir",
    "private_file",
    "private_tmp",
    "atomic_write",
    "tighten",
    "GalleryHealth",
    "check_gallery",
    "remove_gallery",
    "GALLERY_ENTRIES",
]

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
#: What a SQLite gallery folder may hold (with the index's temporary files, ``.index-*.tmp``).
GALLERY_ENTRIES = frozenset(
    {"gallery.sqlite", "gallery.sqlite-wal", "gallery.sqlite-shm", "gallery.sqlite-journal", "index.faiss", "images"}
    # a protected gallery (gallery/protected.py): its one database and SQLite's side files
    | {"protected.sqlite", "protected.sqlite-journal", "protected.sqlite-wal", "protected.sqlite-shm"}
)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as a ``0700`` folder, or tighten an existing one."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode ``0600`` if missing (so that SQLite, which gives its ``-wal``
    and ``-shm`` files the database file's mode, never makes world-readable ones)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    tighten(path)
    return path


def private_tmp(folder: Path, write: Callable[[BinaryIO], object], *, prefix: str = ".tmp-", suffix: str = "") -> str:
    """A new ``0600`` temporary file in ``folder`` holding what ``write(f)`` wrote, flushed to disk
    (removed again if writing fails); rename it into place with :func:`os.replace`."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, write: Callable[[BinaryIO], object], *, prefix: str = ".tmp-") -> None:
    """Write ``path`` (0600) atomically: readers see the old file or the whole new one."""
    os.replace(private_tmp(path.parent, write, prefix=prefix, suffix=path.suffix), path)


def tighten(path: Path) -> None:
    """Drop group and other permissions from a file (→ 0600) or folder (→ 0700) we own; best effort."""
    try:
        st = path.stat()
        want = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & want)
    except OSError as exc:  # not ours, or read-only media: reading still works
        log.debug("cannot tighten the permissions of %s: %s", path, exc)


@dataclass(frozen=True, slots=True)
class GalleryHealth:
    """What :func:`check_gallery` found: ``ok``, or the ``error`` that opening would raise."""

    path: str
    ok: bool
    error: FaceprintError | None = None

    @property
    def corrupt(self) -> bool:
        return isinstance(self.error, CorruptStoreError)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "ok": self.ok,
            "corrupt": self.corrupt,
            "error": None if self.error is None else {"type": type(self.error).__name__, "message": str(self.error)},
        }


def check_gallery(path: str | os.PathLike[str], *, thorough: bool = False) -> GalleryHealth:
    """Whether the SQLite gallery in ``path`` opens: its database is readable and holds a
    faceprint gallery (``thorough``: SQLite's ``quick_check`` of every page too, slow on big
    galleries). Never raises for a damaged gallery, and never writes or locks it for long."""
    from .sqlite.store import DB_NAME, damaged, open_read_only, read_settings_and_counts

    p = Path(path)
    db = p / DB_NAME
    if not db.is_file():
        return GalleryHealth(str(p), False, GalleryError(f"no gallery at {p}"))
    try:
        if db.stat().st_size == 0:
            raise damaged(p, "the database file is empty")
        conn = open_read_only(db)
        try:
            read_settings_and_counts(conn, p)
            if thorough:
                problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise damaged(p, "; ".join(problems[:3]))
        finally:
            conn.close()
    except FaceprintError as exc:
        return GalleryHealth(str(p), False, exc)
    except (sqlite3.Error, OSError) as exc:  # pragma: no cover - mapped by open_read_only's guard
        return GalleryHealth(str(p), False, GalleryError(f"cannot read gallery {p}: {exc}"))
    return GalleryHealth(str(p), True)


def remove_gallery(path: str | os.PathLike[str]) -> None:
    """Delete the SQLite gallery folder ``path`` — also a damaged one — without opening it.

    Refuses (:class:`~faceprint.errors.GalleryError`) a folder that holds anything a gallery
    does not write, so that a mistyped path cannot delete unrelated files. Close any open
    gallery object on the folder first.
    """
    p = Path(path)
    if not p.is_dir():
        raise GalleryError(f"no gallery folder at {p}")
    foreign = [e.name for e in p.iterdir() if e.name not in GALLERY_ENTRIES and not _temporary(e.name)]
    if foreign:
        raise GalleryError(
            f"{p} holds files a faceprint gallery does not write ({', '.join(sorted(foreign)[:5])}); "
            "not removing it: remove it by hand if you are sure"
        )
    if not (p / "gallery.sqlite").exists() and not (p / "protected.sqlite").exists() and any(p.iterdir()):
        raise GalleryError(f"{p} has no gallery database; not removing it")
    shutil.rmtree(p)


def _temporary(name: str) -> bool:
    return name.startswith(".index-") and name.endswith(".tmp")
