"""Provenance of an evaluation: dataset checksums, model files and software versions.

Everything here is what a reader needs to reproduce a report or to tell two reports apart:
the sha256 of each protocol file, a digest of the image list, the manifest entries (version,
file sha256, licence) of the models used, and the versions of faceprint and its runtimes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError
from .protocols import ImageRef

__all__ = [
    "ImageDigestMethod",
    "file_sha256",
    "file_entry",
    "image_list_digest",
    "software_versions",
    "model_provenance",
]

ImageDigestMethod = Literal["content", "stat"]

_DIGEST_METHODS = {
    "content": "sha256 over the sorted lines '<image key>\\t<sha256 of the image bytes>\\n' of every protocol "
    "image (a content hash: moving or copying the dataset does not change it, editing an image does)",
    "stat": "sha256 over the sorted lines '<image key>\\t<size in bytes>\\t<mtime in ns>\\n' of every protocol "
    "image (file metadata only: fast, but a copy with new mtimes changes it)",
}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "sha256", "bytes"}`` of a protocol file, as the report lists it."""
    return {"path": os.fspath(path), "sha256": file_sha256(path), "bytes": os.path.getsize(path)}


def image_list_digest(images: Sequence[ImageRef], method: ImageDigestMethod = "content") -> dict[str, Any]:
    """A digest over a protocol's image list: ``{"count", "missing", "method", "description", "sha256"}``.

    ``method="content"`` hashes every image's bytes (in-memory images too); ``"stat"`` only the
    file size and mtime (in-memory images: their bytes). Missing files are listed as such.
    """
    if method not in _DIGEST_METHODS:
        raise ConfigurationError(f"image digest method must be 'content' or 'stat', got {method!r}")
    lines: list[str] = []
    missing = 0
    for ref in images:
        try:
            if ref.path is not None and method == "stat":
                st = os.stat(ref.path)
                lines.append(f"{ref.key}\t{st.st_size}\t{st.st_mtime_ns}\n")
            else:
                lines.append(f"{ref.key}\t{hashlib.sha256(ref.read_bytes()).hexdigest()}\n")
        except OSError:
            missing += 1
            lines.append(f"{ref.key}\tmissing\n")
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8"))
    return {
        "count": len(lines),
        "missing": missing,
        "method": method,
        "description": _DIGEST_METHODS[method],
        "sha256": h.hexdigest(),
    }


def _dist_version(*names: str) -> str | None:
    for n in names:
        try:
            v = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            continue
        return v if n == names[0] else f"{v} ({n})"
    return None


def software_versions() -> dict[str, str | None]:
    """Versions of faceprint, its numeric and model runtimes, Python and the platform (no imports)."""
    from .. import __version__

    return {
        "faceprint": __version__,
        "numpy": _dist_version("numpy"),
        "scipy": _dist_version("scipy"),
        "onnxruntime": _dist_version("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
        "dlib": _dist_version("dlib", "dlib-bin"),
        "matplotlib": _dist_version("matplotlib"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _model_entries(names: Sequence[str]) -> list[dict[str, Any]]:
    """Manifest entries (version, file sha256, licence) of the models these backend names use."""
    from ..models import manifest

    specs = manifest()
    wanted: list[str] = []
    for name in names:
        if not name:
            continue
        parts = name.split("-")
        cands = [name] + [f"{parts[0]}-{p}" for p in parts[1:]]
        if name.startswith("dlib-") and any(specs.get(c) and specs[c].kind == "detector" for c in cands):
            cands.append("dlib-5pt")  # dlib detectors place 5 landmarks with it
        wanted += [c for c in cands if c in specs and c not in wanted]
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "version": s.version,
            "licence": s.licence,
            "files": [{"filename": f.filename, "sha256": f.sha256} for f in s.files],
        }
        for s in (specs[n] for n in wanted)
    ]


def model_provenance(model: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The embedding model, backends and the manifest entries (versions, file sha256) behind them."""
    model_id = model.split("@", 1)[0] if model else ""
    det = str(settings.get("detector") or "")
    return {
        "embedding_model": model,
        "embedder_backend": settings.get("embedder"),
        "detector_backend": det or None,
        "prealigned": settings.get("prealigned"),
        "manifest": _model_entries([model_id, str(settings.get("embedder") or ""), det]),
    }
