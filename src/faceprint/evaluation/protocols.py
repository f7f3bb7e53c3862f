"""Verification protocols as distributed: which image pairs to compare and whether they are mated."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["Pair", "read_lfw_pairs"]


@dataclass(frozen=True, slots=True)
class Pair:
    """Two images and whether they show the same person (mated)."""

    a: Path
    b: Path
    mated: bool
    identity_a: str
    identity_b: str


def read_lfw_pairs(pairs_file: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Read an LFW pairs file (``pairsDevTrain.txt``, ``pairsDevTest.txt`` or View 2 ``pairs.txt``).

    Mated lines are ``name n1 n2``, non-mated ``name1 n1 name2 n2``; a first line of one or two
    integers (the count, or folds and count) is skipped. Images are
    ``<image_root>/<name>/<name>_<nnnn>.jpg``; ``image_root`` defaults to the file's folder.
    """
    path = Path(pairs_file)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc

    def img(name: str, num: str) -> Path:
        return root / name / f"{name}_{int(num):04d}.jpg"

    pairs: list[Pair] = []
    for lineno, line in enumerate(lines, 1):
        f = line.split()
        if not f:
            continue
        if lineno == 1 and all(x.isdigit() for x in f):
            continue
        try:
            if len(f) == 3:
                pairs.append(Pair(img(f[0], f[1]), img(f[0], f[2]), True, f[0], f[0]))
            elif len(f) == 4:
                pairs.append(Pair(img(f[0], f[1]), img(f[2], f[3]), False, f[0], f[2]))
            else:
                raise ValueError("expected 3 or 4 fields")
        except ValueError as exc:
            raise ConfigurationError(f"{path}:{lineno}: not an LFW pairs line ({exc}): {line!r}") from None
    return pairs
