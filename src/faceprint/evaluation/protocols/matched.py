"""Demographically matched non-mated pairs (``--impostors same-group``).

Per-group FMR needs impostor comparisons *within* each group: a non-mated pair of two groups is
an impostor attempt against neither. Protocol pair lists (LFW's) hold few same-group non-mated
pairs for a minority group (40 female ones on View 1 DevTest), so their FMR intervals say
little. As NIST FRVT's demographic reports and ISO/IEC 19795-10 do, the non-mated pairs are
drawn anew among the protocol's own images, between different subjects of the **same** group:
every group gets ``per_group`` pairs (all of them when it has fewer), seeded. Mated pairs are
kept as they are. The images (hence embeddings) do not change; only which pairs are scored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ...errors import ConfigurationError
from .base import VerificationProtocol
from .folder import _sample_pairs
from .labels import pair_groups

__all__ = ["DEFAULT_PER_GROUP", "IMPOSTOR_MODES", "same_group_impostors"]

#: non-mated pairs drawn per group by default
DEFAULT_PER_GROUP = 5000
#: ``--impostors`` choices: the protocol's own non-mated pairs, or same-group ones drawn anew
IMPOSTOR_MODES = ("protocol", "same-group")


def _image_subjects(protocol: VerificationProtocol) -> npt.NDArray[np.str_]:
    subj = [im.subject for im in protocol.images]
    for side, s in ((protocol.a, protocol.subject_a), (protocol.b, protocol.subject_b)):
        if s is not None:
            for i, v in zip(side.tolist(), s.tolist(), strict=True):
                subj[i] = subj[i] or str(v)
    if any(s is None or s == "" for s in subj):
        raise ConfigurationError(
            f"protocol {protocol.name!r} does not name the subject of every image: same-group impostors need it"
        )
    return np.array(subj, dtype=np.str_)


def same_group_impostors(
    protocol: VerificationProtocol,
    image_groups: Sequence[str] | npt.NDArray[np.str_],
    *,
    per_group: int = DEFAULT_PER_GROUP,
    seed: int = 0,
) -> VerificationProtocol:
    """``protocol`` with its mated pairs and, as non-mated pairs, ``per_group`` pairs of different
    subjects within each group of ``image_groups`` (one label per image; ``""`` = unknown, left out).

    Each group's pairs are all its different-subject pairs when there are at most ``per_group``,
    else a uniform seeded sample without repetition. Pairs get ``groups``; folds are dropped.
    """
    if protocol.templates is not None:
        raise ConfigurationError("same-group impostors need an image protocol, not templates (IJB)")
    if isinstance(per_group, bool) or not isinstance(per_group, int) or per_group < 1:
        raise ConfigurationError(f"per_group must be a positive integer, got {per_group!r}")
    g = np.asarray(image_groups, dtype=np.str_)
    if g.shape != (len(protocol.images),):
        raise ConfigurationError(f"need one group per image ({len(protocol.images)}), got shape {g.shape}")
    subj = _image_subjects(protocol)
    rng = np.random.default_rng(seed)
    na: list[npt.NDArray[np.intp]] = []
    nb: list[npt.NDArray[np.intp]] = []
    for grp in sorted(set(g.tolist()) - {""}):
        idx = np.flatnonzero(g == grp)
        s = subj[idx]

        def allowed(
            i: npt.NDArray[np.intp], j: npt.NDArray[np.intp], s: npt.NDArray[np.str_] = s
        ) -> npt.NDArray[np.bool_]:
            return np.asarray(s[i] != s[j])

        n_all = idx.size * (idx.size - 1) // 2
        keep = None
        if n_all <= 2 * per_group:  # small group: enumerate, take all if there are few enough
            i, j = np.triu_indices(idx.size, k=1)
            keep = allowed(i, j)
        if keep is not None and int(keep.sum()) <= per_group:
            i, j = i[keep], j[keep]
        else:
            i, j = _sample_pairs(idx.size, per_group, allowed, rng)
        na.append(idx[i])
        nb.append(idx[j])
    if not na or not sum(x.size for x in na):
        raise ConfigurationError("no group has two subjects: no same-group non-mated pair can be drawn")
    mated = np.flatnonzero(protocol.mated)
    a = np.concatenate([protocol.a[mated], *na]).astype(np.intp)
    b = np.concatenate([protocol.b[mated], *nb]).astype(np.intp)
    n_non = len(a) - mated.size
    return dataclasses.replace(
        protocol,
        name=f"{protocol.name}+same-group-impostors",
        a=a,
        b=b,
        mated=np.concatenate([np.ones(mated.size, bool), np.zeros(n_non, bool)]),
        folds=None,
        subject_a=subj[a],
        subject_b=subj[b],
        groups=pair_groups(g, a, b),
    )
