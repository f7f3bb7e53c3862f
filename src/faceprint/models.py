"""Model manifest: which files make each model, their sha256, licence and operating points.

Nothing here downloads. Files come from installed packages (``face_recognition_models``
ships dlib's weights) or from a local model directory the user fills
(``$FACEPRINT_MODEL_DIR``, default ``~/.faceprint/models``).

The manifest lives in ``faceprint/data/models.json`` so that calibration scripts can update
the operating points without editing code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, ModelChecksumError, ModelNotFoundError, UnknownModelError

__all__ = [
    "ModelFile",
    "ModelSpec",
    "OperatingPoint",
    "manifest",
    "get_spec",
    "operating_points_for",
    "manifest_identity",
    "model_dir",
    "package_dir",
    "resolve_file",
    "sha256_file",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A decision threshold with the error rates measured where it was calibrated."""

    name: str
    threshold: float
    fmr: float
    fnmr: float
    calibrated_on: str


@dataclass(frozen=True, slots=True)
class ModelFile:
    filename: str
    sha256: str
    package: str | None = None  # installed package holding the file; None = local model dir
    subdir: str = ""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    kind: str  # "detector" | "landmarker" | "embedder"
    files: tuple[ModelFile, ...]
    licence: str
    commercial_use: bool
    description: str
    version: str = "1"
    default: bool = False
    embedding_dim: int | None = None
    operating_points: dict[str, OperatingPoint] = field(default_factory=dict)
    #: detectors only: operating points of embedders (by model id, TTA included) fed by this
    #: detector's landmarks, where they differ from the embedder's own (calibrated with dlib's)
    operating_points_by_model: dict[str, dict[str, OperatingPoint]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "licence": self.licence,
            "commercial_use": self.commercial_use,
            "default": self.default,
            "description": self.description,
            "embedding_dim": self.embedding_dim,
            "files": [f.filename for f in self.files],
            "operating_points": _points_dict(self.operating_points),
            **(
                {"operating_points_by_model": {m: _points_dict(p) for m, p in self.operating_points_by_model.items()}}
                if self.operating_points_by_model
                else {}
            ),
        }


def _points_dict(points: dict[str, OperatingPoint]) -> dict[str, dict[str, Any]]:
    return {
        k: {"threshold": op.threshold, "fmr": op.fmr, "fnmr": op.fnmr, "calibrated_on": op.calibrated_on}
        for k, op in points.items()
    }


def _parse_points(d: dict[str, Any] | None) -> dict[str, OperatingPoint]:
    return {
        k: OperatingPoint(k, float(v["threshold"]), float(v["fmr"]), float(v["fnmr"]), str(v["calibrated_on"]))
        for k, v in (d or {}).items()
    }


def _parse_spec(d: dict[str, Any]) -> ModelSpec:
    ops = _parse_points(d.get("operating_points"))
    files = tuple(ModelFile(f["filename"], f["sha256"], f.get("package"), f.get("subdir", "")) for f in d["files"])
    return ModelSpec(
        name=d["name"],
        kind=d["kind"],
        files=files,
        licence=d["licence"],
        commercial_use=bool(d["commercial_use"]),
        description=d["description"],
        version=str(d.get("version", "1")),
        default=bool(d.get("default", False)),
        embedding_dim=d.get("embedding_dim"),
        operating_points=ops,
        operating_points_by_model={m: _parse_points(p) for m, p in d.get("operating_points_by_model", {}).items()},
        extra=d.get("extra", {}),
    )


def _augmented(base: ModelSpec, tta: str, points: dict[str, Any] | None) -> ModelSpec:
    """The spec of ``base`` run with test-time augmentation ``tta``: same files and licence, its
    own name (``<base>+<tta>``) and operating points."""
    ops = _parse_points(points)
    return replace(
        base,
        name=f"{base.name}+{tta}",
        description=f"{base.name} with test-time augmentation {tta!r}: the mean of the embeddings of its views.",
        default=False,
        operating_points=ops,
        extra={"base": base.name, "tta": tta},
    )


@cache
def manifest() -> dict[str, ModelSpec]:
    """All models faceprint knows, by name (read once from ``faceprint/data/models.json``).

    An embedder's ``"tta"`` entries (operating points calibrated with test-time augmentation)
    appear as models of their own, named ``<model>+<tta>`` (e.g. ``dlib-resnet-v1+flip``).
    """
    raw = json.loads(resources.files("faceprint").joinpath("data/models.json").read_text("utf-8"))
    specs: dict[str, ModelSpec] = {}
    for d in raw["models"]:
        spec = specs[d["name"]] = _parse_spec(d)
        for tta, entry in d.get("tta", {}).items():
            aug = _augmented(spec, tta, entry.get("operating_points"))
            specs[aug.name] = aug
    return specs


# --- test-time augmentation settings: parsed here because they name models (<model>+<tta>) ---
# (the augmentation itself is faceprint.embedding.tta)

TTA_NONE = "none"
_JITTER_RE = re.compile(r"(flip-)?jitter([1-9][0-9]?)")
_MAX_JITTERS = 64


@dataclass(frozen=True, slots=True)
class TtaSpec:
    """A parsed TTA setting: its canonical name, whether to add the mirror image, and jitter count."""

    name: str
    flip: bool = False
    jitters: int = 0

    @property
    def views(self) -> int:
        """Network runs per face."""
        if self.flip:
            return 2 * (self.jitters + 1)
        return self.jitters or 1


def parse_tta(tta: str | None) -> TtaSpec:
    """Parse ``"none"``, ``"flip"`` or ``"jitterN"``; anything else is a :class:`ConfigurationError`."""
    name = TTA_NONE if tta is None else str(tta).strip().lower()
    if name in ("", TTA_NONE):
        return TtaSpec(TTA_NONE)
    if name == "flip":
        return TtaSpec("flip", flip=True)
    m = _JITTER_RE.fullmatch(name)
    if m and 1 <= int(m.group(2)) <= (_MAX_JITTERS // 2 if m.group(1) else _MAX_JITTERS):
        return TtaSpec(name, flip=bool(m.group(1)), jitters=int(m.group(2)))
    raise ConfigurationError(
        f"unknown test-time augmentation {tta!r}; use 'none', 'flip', 'jitterN' (N from 1 to {_MAX_JITTERS}) "
        f"or 'flip-jitterN' (N from 1 to {_MAX_JITTERS // 2})"
    )


def get_spec(name: str) -> ModelSpec:
    """A model's spec by name; ``<embedder>+<tta>`` names a known embedder with test-time
    augmentation (without operating points unless the manifest has them)."""
    specs = manifest()
    if name in specs:
        return specs[name]
    base, plus, tta = name.partition("+")
    if plus and base in specs and specs[base].kind == "embedder":
        parsed = parse_tta(tta).name  # ConfigurationError for an unknown setting
        if parsed != TTA_NONE and parsed == tta:
            return _augmented(specs[base], tta, None)
    raise UnknownModelError("model", name, list(specs))


def manifest_identity(name: str) -> tuple[str, str]:
    """(model_id, model_version) of a manifest embedder: its name, and its version plus the first
    12 hex digits of its weights' sha256 (so a changed file never passes for the old model)."""
    spec = get_spec(name)
    return spec.name, f"{spec.version}-{spec.files[0].sha256[:12]}"


def operating_points_for(model_id: str, detector: str | None = None) -> dict[str, OperatingPoint]:
    """Calibrated operating points of embedding model ``model_id`` (e.g. ``dlib-resnet-v1+flip``)
    when its faces come from ``detector`` (a registered detector name): the detector's own
    calibration for that model if the manifest has one, else the model's."""
    if detector is not None:
        det = manifest().get(detector)
        if det is not None and model_id in det.operating_points_by_model:
            return det.operating_points_by_model[model_id]
    return get_spec(model_id).operating_points


def model_dir() -> Path:
    """The local model directory: ``$FACEPRINT_MODEL_DIR`` or ``~/.faceprint/models``."""
    env = os.environ.get("FACEPRINT_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".faceprint" / "models"


def package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it.

    ``face_recognition_models/__init__.py`` imports ``pkg_resources``, which setuptools ≥ 81
    no longer ships, so importing it can fail on a fresh machine; its data files are fine.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the package {package!r} holding faceprint's default models is not installed; "
            f"run: pip install {package.replace('_', '-')}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> Path:
    """Check ``path`` against its sha256 (once per process per unchanged file)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if _verified.get(key) == expected_sha256:
            return path
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise ModelChecksumError(
            f"{path} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}…: the file is corrupt "
            "or a different model; reinstall its package or replace the file"
        )
    with _verified_lock:
        _verified[key] = expected_sha256
    return path


def resolve_file(f: ModelFile, *, verify: bool = True) -> Path:
    """Absolute path of a model file, checked to exist and (by default) to match its sha256."""
    if f.package is not None:
        base = package_dir(f.package)
        hint = f"reinstall it: pip install --force-reinstall {f.package.replace('_', '-')}"
    else:
        base = model_dir()
        hint = f"put the file in the model directory {base} (set FACEPRINT_MODEL_DIR to use another)"
    path = base / f.subdir / f.filename if f.subdir else base / f.filename
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} is missing; {hint}")
    return verify_file(path, f.sha256) if verify else path


def model_path(name: str, index: int = 0, *, verify: bool = True) -> Path:
    """Path of file ``index`` of model ``name`` from the manifest."""
    return resolve_file(get_spec(name).files[index], verify=verify)
