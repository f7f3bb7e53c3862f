"""Group labels (demographic or any) for per-group error rates: an ``identity,group`` or ``path,group`` CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError, DataFormatError
from .base import VerificationProtocol, _read_text

__all__ = ["read_labels", "apply_labels", "image_groups", "pair_groups"]

log = logging.getLogger(__name__)

#: what the first column names: identities, image paths, or unknown (no header: try both)
LabelKind = Literal["identity", "path"] | None


def read_labels(path: Path) -> tuple[LabelKind, dict[str, str]]:
    """(kind ``"identity"``/``"path"``/None when unknown, key → group) from a 2-column CSV."""
    text = _read_text(path, "group label CSV")
    rows = list(csv.reader(io.StringIO(text)))
    kind: LabelKind = None
    out: dict[str, str] = {}
    start = 0
    if rows and rows[0]:
        h = rows[0][0].strip().lower()
        if h in ("identity", "subject", "subject_id", "name"):
            kind, start = "identity", 1
        elif h in ("path", "image", "file", "filename"):
            kind, start = "path", 1
    for lineno, row in enumerate(rows[start:], start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            raise DataFormatError(f"{path}:{lineno}: expected 'identity,group' or 'path,group', got {row!r}")
        out[row[0].strip().replace(os.sep, "/")] = row[1].strip()
    return kind, out


def group_of(subject: str | None, key: str, kind: LabelKind, mapping: dict[str, str]) -> str:
    """The group of an image: by its identity, else by its key (as the CSV's kind allows); ``""`` if unlisted."""
    g = None
    if kind != "path" and subject is not None:
        g = mapping.get(subject)
    if g is None and kind != "identity":
        g = mapping.get(key)
    return g or ""


def image_groups(protocol: VerificationProtocol, labels: Path) -> npt.NDArray[np.str_]:
    """The group of each of ``protocol``'s images from a labels CSV (``""``: not listed)."""
    if protocol.templates is not None:
        raise ConfigurationError("--labels applies to image protocols, not to template protocols (IJB)")
    kind, mapping = read_labels(labels)
    img_subject: dict[int, str] = {}
    for side, s in ((protocol.a, protocol.subject_a), (protocol.b, protocol.subject_b)):
        if s is not None:
            for i, v in zip(side.tolist(), s.tolist(), strict=True):
                img_subject.setdefault(i, str(v))
    groups = [group_of(im.subject or img_subject.get(i), im.key, kind, mapping) for i, im in enumerate(protocol.images)]
    if not any(groups):
        log.warning("no image or identity of protocol %s is listed in %s", protocol.name, labels)
    return np.array(groups, dtype=np.str_)


def pair_groups(groups: npt.NDArray[np.str_], a: npt.NDArray[np.intp], b: npt.NDArray[np.intp]) -> npt.NDArray[np.str_]:
    """The group of each pair: its sides' group, or ``"<group_a>|<group_b>"`` when they differ."""
    ga, gb = groups[a], groups[b]
    return np.asarray(np.where(ga == gb, ga, np.char.add(np.char.add(ga, "|"), gb)), dtype=np.str_)


def apply_labels(protocol: VerificationProtocol, labels: Path) -> VerificationProtocol:
    """Per-pair groups from a labels CSV (as :func:`~.folder.folder_protocol` gives them).

    Pairs whose sides are in different groups get ``"<group_a>|<group_b>"``.
    """
    g = image_groups(protocol, labels)
    return dataclasses.replace(protocol, groups=pair_groups(g, protocol.a, protocol.b))
