"""One folder per identity: every mated pair, and all or a seeded sample of the non-mated pairs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError
from .base import ImageRef, VerificationProtocol, _pair_groups
from .labels import LabelKind, group_of, read_labels
from .registry import ProtocolKind, ProtocolSource, Task, need_dir, register_protocol_kind

__all__ = ["IMAGE_EXTENSIONS", "folder_protocol"]

log = logging.getLogger(__name__)

#: File name endings :func:`folder_protocol` treats as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")

IndexArray = npt.NDArray[np.intp]


def folder_protocol(
    root: str | os.PathLike[str],
    *,
    nonmated: int | None = None,
    seed: int = 0,
    all_pairs_limit: int = 200_000,
    labels: str | os.PathLike[str] | None = None,
    same_group_nonmated: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    name: str | None = None,
) -> VerificationProtocol:
    """A protocol from a folder with one sub-folder of images per identity.

    Every mated pair (two images of one identity) is compared. Non-mated pairs: all of them
    when the number of all image pairs, n(n-1)/2, is at most ``all_pairs_limit``; otherwise a
    uniform sample without repetition of ``nonmated`` pairs (default: as many as there are
    mated pairs, at least 1000), drawn with ``numpy.random.default_rng(seed)`` - the same
    folder and seed always give the same pairs.

    Args:
        labels: a CSV of demographic (or any) groups, ``identity,group`` or ``path,group``
            (path relative to ``root``); an optional header row names the first column
            (``identity``/``subject`` or ``path``/``image``). Pairs get ``groups``; images and
            identities not listed get the group ``""``.
        same_group_nonmated: draw non-mated pairs only between identities of the same group
            (as demographic-differential studies do).

    Identities (folder names) are the subject ids; image keys are ``<identity>/<file>``.
    """
    rootp = Path(root)
    if not rootp.is_dir():
        raise ConfigurationError(f"{rootp} is not a folder; pass a folder with one sub-folder per identity")
    label_kind, label_map = (None, {}) if labels is None else read_labels(Path(labels))
    images = _scan(rootp, tuple(e.lower() for e in extensions), label_kind, label_map)
    if len(images) < 2:
        raise ConfigurationError(f"{rootp} holds {len(images)} images in identity sub-folders; need at least 2")
    if label_map and not any(im.group for im in images):
        log.warning("no image or identity of %s is listed in %s", rootp, labels)
    subj = np.array([im.subject for im in images], dtype=np.str_)
    _, subj_id = np.unique(subj, return_inverse=True)
    grp = np.array([im.group or "" for im in images], dtype=np.str_)

    def allowed(i: IndexArray, j: IndexArray) -> npt.NDArray[np.bool_]:
        ok = subj_id[i] != subj_id[j]
        if same_group_nonmated:
            ok &= grp[i] == grp[j]
        return ok

    ma, mb = _mated_pairs(subj_id)
    if not len(ma):
        log.warning("no identity in %s has two images: the protocol has no mated pairs", rootp)
    n = len(images)
    if n * (n - 1) // 2 <= all_pairs_limit:
        i, j = np.triu_indices(n, k=1)
        keep = allowed(i, j)
        na, nb = i[keep], j[keep]
    else:
        want = nonmated if nonmated is not None else max(len(ma), 1000)
        na, nb = _sample_pairs(n, want, allowed, np.random.default_rng(seed))
    a = np.concatenate([ma, na]).astype(np.intp)
    b = np.concatenate([mb, nb]).astype(np.intp)
    return VerificationProtocol(
        name=name or rootp.name,
        images=images,
        a=a,
        b=b,
        mated=np.concatenate([np.ones(len(ma), bool), np.zeros(len(na), bool)]),
        subject_a=subj[a],
        subject_b=subj[b],
        groups=_pair_groups(images, a, b) if label_map else None,
    )


def _scan(root: Path, exts: tuple[str, ...], label_kind: LabelKind, label_map: dict[str, str]) -> list[ImageRef]:
    """Every image of every identity sub-folder (sorted), with its group when labels are given."""
    images: list[ImageRef] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(q for q in sub.iterdir() if q.is_file() and q.suffix.lower() in exts):
            key = f"{sub.name}/{f.name}"
            group = group_of(sub.name, key, label_kind, label_map) if label_map else None
            images.append(ImageRef(key=key, path=os.fspath(f), subject=sub.name, group=group))
    return images


def _mated_pairs(subj_id: npt.NDArray[np.intp]) -> tuple[IndexArray, IndexArray]:
    """Every pair i < j of images of one identity."""
    mated_a: list[IndexArray] = []
    mated_b: list[IndexArray] = []
    for s in np.unique(subj_id):
        idx = np.flatnonzero(subj_id == s)
        if idx.size >= 2:
            i, j = np.triu_indices(idx.size, k=1)
            mated_a.append(idx[i])
            mated_b.append(idx[j])
    if not mated_a:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(mated_a), np.concatenate(mated_b)


def _sample_pairs(
    n: int, want: int, allowed: Callable[[IndexArray, IndexArray], npt.NDArray[np.bool_]], rng: np.random.Generator
) -> tuple[IndexArray, IndexArray]:
    """``want`` distinct allowed pairs i < j of n images, drawn uniformly without repetition."""
    chosen: set[tuple[int, int]] = set()
    tries = 0
    while len(chosen) < want:
        tries += 1
        if tries > 1000:
            raise ConfigurationError(
                f"could only find {len(chosen)} of {want} distinct non-mated pairs; ask for fewer (nonmated=)"
            )
        draw = rng.integers(0, n, size=(2 * (want - len(chosen)) + 16, 2))
        i = np.minimum(draw[:, 0], draw[:, 1])
        j = np.maximum(draw[:, 0], draw[:, 1])
        keep = allowed(i, j)
        for x, y in zip(i[keep].tolist(), j[keep].tolist(), strict=True):
            if len(chosen) >= want:
                break
            chosen.add((x, y))
    pairs = np.array(sorted(chosen), dtype=np.intp).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def open_folder(data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int) -> ProtocolSource:
    """``--protocol folder``: one sub-folder per identity."""
    need_dir(data, "identity folder")
    p = folder_protocol(data, labels=labels, seed=seed)
    return ProtocolSource(
        "folder",
        p,
        (labels,) if labels is not None else (),
        None,
        f"folder {data.name}: every mated pair, non-mated pairs sampled with seed {seed}",
    )


register_protocol_kind(ProtocolKind("folder", open_folder, "folder: one sub-folder per identity.", applies_labels=True))
