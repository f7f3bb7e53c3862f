"""Source images a gallery keeps (``keep_source_images=True``): content-addressed files under one folder.

An image is stored once per content (``<sha[:2]>/<sha><suffix>``), written atomically, and
deleted when no template refers to it any more.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigurationError
from .files import atomic_write, private_dir

if TYPE_CHECKING:
    from ..io import ImageSource

__all__ = ["store", "forget", "source_bytes", "is_single_source"]

log = logging.getLogger(__name__)

#: ``<sha[:2]>/<sha256><.suffix>``: the only names :func:`store` makes.
_STORED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,8}")


def store(root: Path | None, data: bytes, sha: str, suffix: str) -> str:
    """Keep ``data`` under ``root``; returns its path relative to ``root``."""
    if root is None:
        raise ConfigurationError("this gallery has no image folder to keep source images in")
    rel = f"{sha[:2]}/{sha}{suffix or '.img'}"
    path = root / rel
    if not path.exists():
        private_dir(root)
        private_dir(path.parent)
        atomic_write(path, lambda f: f.write(data))
    return rel


def forget(root: Path | None, sources: Iterable[str]) -> None:
    """Delete stored images (their templates are gone); only names this module makes, inside ``root``."""
    if root is None:
        return
    for rel in set(sources):
        if _STORED.fullmatch(rel):
            (root / rel).unlink(missing_ok=True)
        else:
            log.warning("not deleting %r: not a stored image name (a damaged or altered gallery database?)", rel)


def is_single_source(x: object) -> bool:
    """Whether ``x`` is one image (a path, bytes, an array, a file object) rather than a sequence."""
    return isinstance(x, (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray)) or hasattr(x, "read")


def source_bytes(src: ImageSource) -> tuple[bytes | None, str, str]:
    """(encoded bytes or None when unreadable here, label, file suffix) of an image source."""
    from ..io import describe_source

    label = describe_source(src)
    if isinstance(src, (str, os.PathLike)):
        p = Path(os.fsdecode(os.fspath(src)))
        try:
            return p.read_bytes(), label, p.suffix.lower() or ".img"
        except OSError:
            return None, label, ""  # the loader reports it with the library's own error
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), label, _suffix_of(bytes(src))
    if isinstance(src, np.ndarray) or type(src).__module__.startswith("PIL"):
        from PIL import Image

        from ..io import load_image

        buf = io.BytesIO()
        Image.fromarray(load_image(src)).save(buf, format="PNG")
        return buf.getvalue(), label, ".png"
    if hasattr(src, "read"):
        data = src.read()  # type: ignore[union-attr]
        return bytes(data), label, _suffix_of(bytes(data))
    return None, label, ""


def _suffix_of(data: bytes) -> str:
    try:
        from ..io import read_image_header

        fmt = read_image_header(data)[0].lower()
    except Exception:
        return ".img"
    return {"jpeg": ".jpg", "tiff": ".tif"}.get(fmt, f".{fmt}")
