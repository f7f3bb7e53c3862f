"""Protocol kinds: name → how to read that family of datasets from user data, and one ``open_protocol``.

Each dataset family (LFW, InsightFace ``.bin``, IJB, folder, CSV) registers a
:class:`ProtocolKind` in its own module; ``faceprint eval run --protocol`` takes its choices
from :func:`protocol_kinds`. A new family is one module with a reader and an opener, plus
:func:`register_protocol_kind` - nothing else changes.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from ...errors import ConfigurationError
from .base import IdentificationProtocol, VerificationProtocol

__all__ = [
    "ProtocolSource",
    "ProtocolKind",
    "register_protocol_kind",
    "protocol_kinds",
    "open_protocol",
]

Task = Literal["verification", "identification"]

#: the modules that register the built-in kinds, imported on first use
_BUILTIN = ("lfw", "insightface", "ijb", "folder", "csvfile")
#: the order built-in kinds are listed in (help text, errors); others follow in registration order
_ORDER = ("lfw", "bin", "ijb", "folder", "csv")
_KINDS: dict[str, ProtocolKind] = {}


@dataclass(frozen=True, eq=False)
class ProtocolSource:
    """A protocol read from user data, with what the report needs to know about where it came from."""

    kind: str
    protocol: VerificationProtocol | IdentificationProtocol
    files: tuple[Path, ...]
    calibration: VerificationProtocol | None = None
    description: str = ""

    @property
    def n_images(self) -> int:
        """Distinct images to embed (protocol and calibration together)."""
        keys = {im.key for im in self.protocol.images}
        if self.calibration is not None:
            keys.update(im.key for im in self.calibration.images)
        return len(keys)


class Opener(Protocol):
    def __call__(
        self, data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int
    ) -> ProtocolSource: ...


@dataclass(frozen=True)
class ProtocolKind:
    """One ``--protocol`` value.

    Attributes:
        name: the value (``"lfw"``).
        open: reads the protocol: ``open(data, pairs=, labels=, task=, seed=) -> ProtocolSource``.
        data_help: what ``--data`` is for this kind (one short sentence, for ``--help``).
        tasks: the tasks it offers (``"verification"``, ``"identification"``).
        applies_labels: the opener reads ``labels`` itself (else :func:`open_protocol` applies
            them to the pairs it returns).
    """

    name: str
    open: Opener
    data_help: str
    tasks: tuple[Task, ...] = ("verification",)
    applies_labels: bool = False


def register_protocol_kind(kind: ProtocolKind) -> ProtocolKind:
    """Add a protocol kind (a name may be registered once)."""
    if kind.name in _KINDS and _KINDS[kind.name] != kind:
        raise ConfigurationError(f"protocol kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def protocol_kinds() -> dict[str, ProtocolKind]:
    """Every registered kind, built-ins first (in the order LFW, bin, IJB, folder, CSV)."""
    for mod in _BUILTIN:
        importlib.import_module(f"{__package__}.{mod}")
    rank = {name: i for i, name in enumerate(_ORDER)}
    return dict(sorted(_KINDS.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def need_dir(p: Path, what: str) -> Path:
    """``p`` if it is an existing folder, else a :class:`ConfigurationError` naming ``what``."""
    return _need(p, what, p.is_dir, "a folder", "; check --data")


def need_file(p: Path, what: str) -> Path:
    """``p`` if it is an existing file, else a :class:`ConfigurationError` naming ``what``."""
    return _need(p, what, p.is_file, "a file", "")


def _need(p: Path, what: str, is_kind: Callable[[], bool], kind: str, hint: str) -> Path:
    if not p.exists():
        raise ConfigurationError(f"{what} {p} does not exist{hint}")
    if not is_kind():
        raise ConfigurationError(f"{what} {p} is not {kind}")
    return p


def open_protocol(
    kind: str,
    data: str | os.PathLike[str],
    *,
    pairs: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    task: Task = "verification",
    seed: int = 0,
) -> ProtocolSource:
    """Read a protocol the way ``faceprint eval run --protocol KIND --data DATA`` does.

    ``kind`` is a registered :class:`ProtocolKind` (:func:`protocol_kinds`):

    * ``lfw`` - ``data`` is the folder of ``Name/Name_NNNN.jpg`` images; the pairs files are in
      ``pairs`` (a file or folder; default ``data``). ``pairs.txt`` → View 2 (10 folds);
      ``pairsDevTrain.txt`` + ``pairsDevTest.txt`` → View 1 (threshold chosen on DevTrain,
      reported on DevTest).
    * ``bin`` - ``data`` is an InsightFace ``.bin`` file (10 folds, prealigned crops).
    * ``ijb`` - ``data`` is the IJBB/IJBC folder; ``task`` picks 1:1 or 1:N.
    * ``folder`` - ``data`` has one sub-folder per identity (all mated pairs, sampled non-mated).
    * ``csv`` - ``pairs`` (or ``data`` when it is a file) is an ``image_a,image_b,mated[,fold][,group]``
      CSV; image paths are relative to ``data`` when it is a folder.

    ``labels``: an ``identity,group`` or ``path,group`` CSV giving per-pair groups (fairness).
    """
    kinds = protocol_kinds()
    k = kinds.get(kind)
    if k is None:
        raise ConfigurationError(f"unknown protocol kind {kind!r}; use one of {', '.join(kinds)}")
    if task not in k.tasks:
        offering = [n for n, x in kinds.items() if task in x.tasks]
        raise ConfigurationError(f"{task} is available for --protocol {' or '.join(offering)} only")
    lab = need_file(Path(labels), "labels file") if labels is not None else None
    pp = Path(pairs) if pairs is not None else None
    src = k.open(Path(data), pairs=pp, labels=lab, task=task, seed=seed)
    if lab is None or k.applies_labels:
        return src
    return with_labels(src, lab)


def with_labels(src: ProtocolSource, labels: Path) -> ProtocolSource:
    """``src`` with per-pair groups from a labels CSV (protocol and calibration set alike)."""
    from .labels import apply_labels

    if not isinstance(src.protocol, VerificationProtocol):
        raise ConfigurationError("--labels applies to verification protocols")
    cal = apply_labels(src.calibration, labels) if src.calibration is not None else None
    return replace(src, protocol=apply_labels(src.protocol, labels), files=(*src.files, labels), calibration=cal)
