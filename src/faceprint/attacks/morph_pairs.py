"""Identity-aware choice of morph contributor pairs, as attackers choose them.

A morph works best when its two contributors already look alike: an attacker picks an
accomplice whose face is close to their own. :func:`select_pairs` picks pairs of *different*
identities either by embedding similarity (``"lookalike"``: the most similar pairs first, each
identity used at most ``max_uses`` times) or uniformly at random (``"random"``, seeded), with an
optional attribute (e.g. apparent gender) that both contributors must share.

Folder-per-person data (:func:`identity_images`): each identity's first image (sorted by name)
is its *contributor* image; its other images are probes for :mod:`faceprint.evaluation.morph`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, DataFormatError

__all__ = [
    "STRATEGIES",
    "MorphPair",
    "identity_images",
    "select_pairs",
    "read_pairs",
    "write_pairs",
    "read_attributes",
    "attribute_of",
    "protocol_identities",
]

STRATEGIES: tuple[str, ...] = ("lookalike", "random")
_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


@dataclass(frozen=True, slots=True)
class MorphPair:
    """Two contributor images of different identities, and their comparison score (NaN: not computed)."""

    a: str
    b: str
    similarity: float = float("nan")


def identity_images(root: str | Path, *, min_images: int = 1) -> dict[str, list[Path]]:
    """``{identity: sorted image paths}`` of a folder-per-person tree, identities with ≥ ``min_images`` images."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigurationError(f"{base} is not a folder (expected one sub-folder of images per person)")
    out: dict[str, list[Path]] = {}
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        imgs = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES)
        if len(imgs) >= max(1, min_images):
            out[d.name] = imgs
    return out


def select_pairs(
    identities: Sequence[str],
    embeddings: npt.ArrayLike,
    *,
    strategy: str = "lookalike",
    n: int = 100,
    seed: int = 0,
    max_uses: int = 1,
    attributes: Sequence[str | None] | None = None,
) -> list[tuple[int, int, float]]:
    """Choose up to ``n`` pairs ``(i, j, cosine)`` of rows with different ``identities``.

    Args:
        identities: one identity label per row of ``embeddings``.
        embeddings: (N, D) L2-normalised embeddings of the candidate contributor images.
        strategy: ``"lookalike"`` (most similar first, greedy) or ``"random"`` (seeded).
        max_uses: how many pairs one identity may contribute to (lookalike and random).
        attributes: one label per row; a pair needs equal, known labels (None: no constraint).
    """
    if strategy not in STRATEGIES:
        raise ConfigurationError(f"unknown pair strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] != len(identities):
        raise ConfigurationError(f"need one embedding row per identity label, got {e.shape} for {len(identities)}")
    if n < 1 or max_uses < 1:
        raise ConfigurationError("n and max_uses must be at least 1")
    ids = np.asarray(identities, dtype=object)
    k = len(ids)
    sim = e @ e.T
    iu, ju = np.triu_indices(k, 1)
    ok = ids[iu] != ids[ju]
    if attributes is not None:
        att = np.asarray(attributes, dtype=object)
        ok &= (att[iu] == att[ju]) & np.array([a is not None for a in att[iu]], dtype=bool)
    iu, ju = iu[ok], ju[ok]
    if strategy == "lookalike":
        order = np.lexsort((ju, iu, -sim[iu, ju]))  # most similar first; ties by index: deterministic
    else:
        order = np.random.default_rng(seed).permutation(len(iu))
    uses: dict[object, int] = {}
    chosen: list[tuple[int, int, float]] = []
    for t in order:
        i, j = int(iu[t]), int(ju[t])
        if uses.get(ids[i], 0) >= max_uses or uses.get(ids[j], 0) >= max_uses:
            continue
        uses[ids[i]] = uses.get(ids[i], 0) + 1
        uses[ids[j]] = uses.get(ids[j], 0) + 1
        chosen.append((i, j, float(sim[i, j])))
        if len(chosen) >= n:
            break
    return chosen


def read_attributes(path: str | Path, root: str | Path | None = None) -> dict[str, str]:
    """``{identity or image path: label}`` from a CSV ``image,label`` (e.g. LFW's ``lfw_gender.csv``).

    Keys are the path as written and its first component (the identity folder), so either an
    image or an identity can be looked up.
    """
    out: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise DataFormatError(f"cannot read the attribute file {path}: {exc.strerror or exc}") from None
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            raise DataFormatError(f"{path}:{line}: expected 'image,label', got {row!r}")
        out[row[0]] = row[1]
        out.setdefault(Path(row[0]).parts[0], row[1])
    return out


def write_pairs(pairs: Sequence[MorphPair], path: str | Path | None = None) -> str:
    """The pairs as TSV (``a<TAB>b<TAB>similarity``, with a header); written to ``path`` when given."""
    lines = ["a\tb\tsimilarity"] + [f"{p.a}\t{p.b}\t{p.similarity:.6f}" for p in pairs]
    text = "\n".join(lines) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def read_pairs(path: str | Path, *, base: str | Path | None = None) -> list[MorphPair]:
    """Pairs from a TSV or whitespace file of ``a b [similarity]`` lines (a header line ``a b …`` is skipped).

    Relative image paths are taken relative to ``base`` (default: the pairs file's folder).
    """
    p = Path(path)
    root = Path(base) if base is not None else p.parent
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFormatError(f"cannot read the pairs file {p}: {exc.strerror or exc}") from None
    out: list[MorphPair] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if line_no == 1 and cols[:2] == ["a", "b"]:
            continue
        if len(cols) < 2:
            raise DataFormatError(f"{p}:{line_no}: expected two image paths, got {line!r}")
        a, b = (str(c if Path(c).is_absolute() else root / c) for c in cols[:2])
        sim = float("nan")
        if len(cols) > 2:
            try:
                sim = float(cols[2])
            except ValueError:
                raise DataFormatError(f"{p}:{line_no}: the third column must be a number, got {cols[2]!r}") from None
        out.append(MorphPair(a, b, sim))
    if not out:
        raise DataFormatError(f"{p} holds no pairs")
    return out


def attribute_of(path: Path, root: Path, attrs: Mapping[str, str]) -> str | None:
    """The attribute label of an image under ``root``: by its relative path, else by its identity folder."""
    rel = path.relative_to(root).as_posix()
    return attrs.get(rel, attrs.get(path.parent.name))


def protocol_identities(pairs_file: str | Path) -> set[str]:
    """Every identity named in an LFW-format pairs file (``name i j`` / ``name1 i name2 j`` lines),
    e.g. to keep detector training (pairsDevTrain) and testing (pairsDevTest) identities disjoint."""
    try:
        lines = Path(pairs_file).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataFormatError(f"cannot read the pairs file {pairs_file}: {exc.strerror or exc}") from None
    names: set[str] = set()
    for line in lines[1:]:
        cols = line.split()
        if len(cols) == 3:
            names.add(cols[0])
        elif len(cols) == 4:
            names.update((cols[0], cols[2]))
    return names
