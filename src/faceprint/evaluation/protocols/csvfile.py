"""A plain CSV protocol: ``image_a,image_b,mated[,fold][,group][,subject_a,subject_b]``."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from ...errors import DataFormatError
from .base import ImageRef, VerificationProtocol, _image_index, _read_text
from .registry import ProtocolKind, ProtocolSource, Task, need_dir, need_file, register_protocol_kind

__all__ = ["read_csv_protocol"]

#: spellings of the ``mated`` column (other tools write genuine/impostor)
_TRUE = {"1", "true", "t", "yes", "y", "mated", "genuine"}
_FALSE = {"0", "false", "f", "no", "n", "non-mated", "nonmated", "impostor"}


def _parse_bool(value: str, where: str, column: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise DataFormatError(f"{where}: {column} must be 1/0 or true/false, got {value!r}")


def read_csv_protocol(
    path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    prealigned: str | None = None,
) -> VerificationProtocol:
    """A protocol from a CSV with header ``image_a,image_b,mated[,fold][,group][,subject_a,subject_b]``.

    Image paths are relative to ``image_root`` (default: the CSV's folder) unless absolute;
    ``mated`` is ``1``/``0`` or ``true``/``false``; ``fold`` an integer. Extra columns are ignored.
    """
    p = Path(path)
    root = Path(image_root) if image_root is not None else p.parent
    text = _read_text(p, "protocol CSV")
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in (reader.fieldnames or [])]
    reader.fieldnames = fields
    missing = [c for c in ("image_a", "image_b", "mated") if c not in fields]
    if missing:
        raise DataFormatError(
            f"{p}:1: header must name image_a,image_b,mated (missing {', '.join(missing)}); got {fields}"
        )
    has_fold = "fold" in fields
    has_group = "group" in fields
    has_subj = "subject_a" in fields and "subject_b" in fields
    images: list[ImageRef] = []
    index: dict[str, int] = {}
    a: list[int] = []
    b: list[int] = []
    mated: list[bool] = []
    folds: list[int] = []
    groups: list[str] = []
    sa: list[str] = []
    sb: list[str] = []

    def ref(value: str, where: str, column: str) -> int:
        v = value.strip()
        if not v:
            raise DataFormatError(f"{where}: {column} is empty")
        full = Path(v) if Path(v).is_absolute() else root / v
        return _image_index(images, index, ImageRef(key=v.replace(os.sep, "/"), path=os.fspath(full)))

    for row in reader:
        where = f"{p}:{reader.line_num}"
        if None in row or any(row.get(c) is None for c in ("image_a", "image_b", "mated")):
            raise DataFormatError(f"{where}: expected {len(fields)} columns ({','.join(fields)})")
        if not any((v or "").strip() for v in row.values()):
            continue
        a.append(ref(row["image_a"], where, "image_a"))
        b.append(ref(row["image_b"], where, "image_b"))
        mated.append(_parse_bool(row["mated"], where, "mated"))
        if has_fold:
            try:
                folds.append(int(row["fold"]))
            except (TypeError, ValueError):
                raise DataFormatError(f"{where}: fold must be an integer, got {row['fold']!r}") from None
        if has_group:
            groups.append((row["group"] or "").strip())
        if has_subj:
            sa.append((row["subject_a"] or "").strip())
            sb.append((row["subject_b"] or "").strip())
    if not a:
        raise DataFormatError(f"{p}: no pairs below the header")
    return VerificationProtocol(
        name=name or p.stem,
        images=images,
        a=np.array(a, dtype=np.intp),
        b=np.array(b, dtype=np.intp),
        mated=np.array(mated, dtype=bool),
        folds=np.array(folds, dtype=np.int32) if has_fold else None,
        subject_a=np.array(sa, dtype=np.str_) if has_subj else None,
        subject_b=np.array(sb, dtype=np.str_) if has_subj else None,
        groups=np.array(groups, dtype=np.str_) if has_group else None,
        prealigned=prealigned,
    )


def open_csv(data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int) -> ProtocolSource:
    """``--protocol csv``: the CSV is ``pairs`` (images relative to the folder ``data``) or ``data`` itself."""
    if pairs is None:
        csv_file = need_file(data, "protocol CSV")
        root = None
    else:
        csv_file = need_file(pairs, "protocol CSV")
        root = need_dir(data, "image folder") if data.is_dir() or not data.exists() else data.parent
    p = read_csv_protocol(csv_file, root)
    return ProtocolSource("csv", p, (csv_file,), None, f"CSV protocol {csv_file.name}")


register_protocol_kind(ProtocolKind("csv", open_csv, "csv: the image root (or the CSV itself)."))
