"""LFW: the pair files of View 1 (``pairsDevTrain.txt`` / ``pairsDevTest.txt``) and View 2 (``pairs.txt``).

LFW images are 250×250 crops centred on the labelled person, so LFW protocols select the face
nearest the image centre by default (``select="central"``); other faces in the photo are often
larger.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigurationError, DataFormatError
from .base import ImageRef, VerificationProtocol, _read_text
from .registry import ProtocolKind, ProtocolSource, Task, need_dir, register_protocol_kind

__all__ = ["Pair", "read_lfw_pairs", "read_lfw_protocol"]


@dataclass(frozen=True, slots=True)
class Pair:
    """Two images and whether they show the same person (mated)."""

    a: Path
    b: Path
    mated: bool
    identity_a: str
    identity_b: str


def _records(lines: list[str], start: int, path: Path) -> Iterator[tuple[str, int, str, int]]:
    """``(person_a, n_a, person_b, n_b)`` per pair line from line ``start`` (0-based) on.

    Mated lines are ``name n1 n2``, non-mated ``name1 n1 name2 n2``; the pair is mated when
    ``person_a == person_b``. A bad line raises :class:`DataFormatError` naming ``path:line``.
    """
    for lineno, line in enumerate(lines[start:], start + 1):
        f = line.split()
        if not f:
            continue
        try:
            if len(f) == 3:
                yield f[0], int(f[1]), f[0], int(f[2])
            elif len(f) == 4:
                yield f[0], int(f[1]), f[2], int(f[3])
            else:
                raise ValueError(f"expected 3 fields (mated) or 4 (non-mated), got {len(f)}")
        except ValueError as exc:
            raise DataFormatError(f"{path}:{lineno}: not an LFW pairs line ({exc}): {line!r}") from None


def _image_key(person: str, num: int) -> str:
    return f"{person}/{person}_{num:04d}.jpg"


def read_lfw_pairs(pairs_file: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Read an LFW pairs file (``pairsDevTrain.txt``, ``pairsDevTest.txt`` or View 2 ``pairs.txt``).

    Mated lines are ``name n1 n2``, non-mated ``name1 n1 name2 n2``; a first line of integers
    (the count, or folds and count) is skipped. Images are
    ``<image_root>/<name>/<name>_<nnnn>.jpg``; ``image_root`` defaults to the file's folder.
    :func:`read_lfw_protocol` reads the same files into a :class:`VerificationProtocol`.
    """
    path = Path(pairs_file)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc
    start = 1 if lines and lines[0].split() and all(x.isdigit() for x in lines[0].split()) else 0
    return [
        Pair(root / _image_key(pa, na), root / _image_key(pb, nb), pa == pb, pa, pb)
        for pa, na, pb, nb in _records(lines, start, path)
    ]


def read_lfw_protocol(
    pairs_file: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
) -> VerificationProtocol:
    """LFW View 1 (``pairsDevTrain.txt`` / ``pairsDevTest.txt``) or View 2 (``pairs.txt``).

    A first line of two integers ``"10 300"`` (View 2) means 10 folds, each of 300 mated pairs
    followed by 300 non-mated pairs: fold ids are recorded. A first line of one integer (View 1)
    gives no folds. Images are ``<image_root>/<name>/<name>_<nnnn>.jpg`` (``image_root``: the
    pairs file's folder); keys are ``<name>/<name>_<nnnn>.jpg``. The protocol selects the
    central face of each image by default (LFW crops are centred on the labelled person).
    """
    path = Path(pairs_file)
    root = Path(image_root) if image_root is not None else path.parent
    lines = _read_text(path, "LFW pairs file").splitlines()
    header = lines[0].split() if lines else []
    n_sets = per_set = 0
    start = 0
    if header and all(x.isdigit() for x in header) and len(header) in (1, 2):
        start = 1
        if len(header) == 2:
            n_sets, per_set = int(header[0]), int(header[1])
    images: list[ImageRef] = []
    index: dict[str, int] = {}

    def ref(person: str, num: int) -> int:
        key = _image_key(person, num)
        i = index.get(key)
        if i is None:
            i = index[key] = len(images)
            images.append(ImageRef(key=key, path=os.fspath(root / key), subject=person))
        return i

    rows = [(ref(pa, na), ref(pb, nb), pa, pb) for pa, na, pb, nb in _records(lines, start, path)]
    folds = None
    if n_sets:
        if len(rows) != n_sets * 2 * per_set:
            raise DataFormatError(
                f"{path}:1: header says {n_sets} folds of {per_set} mated + {per_set} non-mated pairs "
                f"({n_sets * 2 * per_set} lines) but the file has {len(rows)} pairs"
            )
        folds = np.arange(len(rows), dtype=np.int32) // (2 * per_set)
    return VerificationProtocol(
        name=name or f"lfw:{path.stem}",
        images=images,
        a=np.array([r[0] for r in rows], dtype=np.intp),
        b=np.array([r[1] for r in rows], dtype=np.intp),
        mated=np.array([r[2] == r[3] for r in rows], dtype=bool),
        folds=folds,
        subject_a=np.array([r[2] for r in rows], dtype=np.str_),
        subject_b=np.array([r[3] for r in rows], dtype=np.str_),
        select="central",
    )


def open_lfw(data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int) -> ProtocolSource:
    """``--protocol lfw``: View 2 (``pairs.txt``) or View 1 (DevTrain + DevTest) from ``pairs`` or ``data``."""
    root = need_dir(data, "LFW image folder")
    where = pairs if pairs is not None else root
    if where.is_file():
        if where.name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
            where = where.parent
        else:
            p = read_lfw_protocol(where, root, name=f"lfw:{where.stem}")
            how = "10-fold (View 2)" if p.folds is not None else "one score set, no folds"
            return ProtocolSource("lfw", p, (where,), None, f"LFW pairs file {where.name}: {how}")
    elif not where.exists():
        raise ConfigurationError(f"LFW pairs file or folder {where} does not exist")
    view2 = where / "pairs.txt"
    train, test = where / "pairsDevTrain.txt", where / "pairsDevTest.txt"
    if view2.is_file() and not (pairs is not None and pairs.is_file()):
        p = read_lfw_protocol(view2, root, name="lfw-view2")
        return ProtocolSource("lfw", p, (view2,), None, "LFW View 2 pairs.txt: 10-fold cross-validation")
    if train.is_file() and test.is_file():
        cal = read_lfw_protocol(train, root, name="lfw-view1-devtrain")
        p = read_lfw_protocol(test, root, name="lfw-view1-devtest")
        return ProtocolSource(
            "lfw",
            p,
            (train, test),
            cal,
            "LFW View 1: threshold chosen on pairsDevTrain.txt, results reported on pairsDevTest.txt",
        )
    raise ConfigurationError(
        f"no LFW pairs files in {where}: expected pairs.txt (View 2) or pairsDevTrain.txt + pairsDevTest.txt "
        "(View 1); pass --pairs"
    )


register_protocol_kind(ProtocolKind("lfw", open_lfw, "lfw: the image folder (with the pairs files, unless --pairs)."))
