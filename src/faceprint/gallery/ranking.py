"""From template hits to ranked subjects: the closed-set step shared by identification and calibration.

A subject's score is the ``max`` or the ``mean`` of its templates' cosine similarities to the
probe, or their ``quality-mean``: the mean weighted by each template's stored quality
(:func:`template_weights`). With ``min_quality``, templates whose stored quality is below it
are left out (those without a stored quality are kept); the filter is applied to the hits after
retrieval, for every store alike, and the search widens as below when it leaves too few.

The index is asked for about twice the templates a subject has on average per wanted subject
(``kk``); when the hits hold fewer than ``k`` subjects, ``kk`` grows 4× until they do or the
gallery is exhausted. Every hit is scored exactly, so ``kk`` is kept small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .core import GalleryCore
from .values import Candidate

__all__ = ["rank_subjects", "template_weights", "subject_score", "kept_by_quality"]

#: subject id → (best score, its template id, templates hit)
_Hits = dict[int, tuple[float, int, int]]


def template_weights(qualities: Sequence[float | None]) -> npt.NDArray[np.float64]:
    """Weights of a subject's templates in the ``quality-mean``: each one's stored quality (at
    least 1, so a 0 still counts a little); a template without a stored quality weighs the mean
    of the others' weights, and when none has one they weigh the same (the plain mean)."""
    w = np.array([np.nan if q is None else max(1.0, float(q)) for q in qualities], np.float64)
    known = ~np.isnan(w)
    if not known.any():
        return np.ones(len(w))
    w[~known] = float(np.mean(w[known]))
    return w


def subject_score(scores: npt.NDArray[np.float32], strategy: str, qualities: Sequence[float | None] = ()) -> float:
    """A subject's score from its templates' ``scores`` by ``strategy`` (``qualities``: for ``quality-mean``)."""
    if strategy == "max":
        return float(np.max(scores))
    if strategy == "quality-mean":
        return float(np.average(scores, weights=template_weights(qualities)))
    return float(np.mean(scores))


def kept_by_quality(quality: float | None, min_quality: float | None) -> bool:
    """Whether a template of stored ``quality`` passes the ``min_quality`` filter (no stored quality: kept)."""
    return min_quality is None or quality is None or quality >= min_quality


def rank_subjects(
    g: GalleryCore, x: npt.NDArray[np.float32], k: int, strategy: str, min_quality: float | None = None
) -> list[list[Candidate]]:
    """Top-``k`` subjects per query row of ``x`` (normalised (N, D)), scored by ``strategy``, no
    threshold; templates below ``min_quality`` left out (see the module doc)."""
    n_subjects, n_templates = g.store.counts(exact=False)
    if n_templates == 0:
        return [[] for _ in range(x.shape[0])]
    per_subject = max(1.0, n_templates / max(1, n_subjects))
    kk = min(n_templates, max(k + 4, int(math.ceil(2 * per_subject * k)), 16))  # widened below when short
    while True:
        d, ids = g.search(x, kk)
        owner = _owners(g, ids)
        if min_quality is not None:
            qualities = g.store.template_qualities(list(owner))
            owner = {t: sid for t, sid in owner.items() if kept_by_quality(qualities.get(t), min_quality)}
        short = False
        rows: list[list[tuple[float, int, int, int]]] = []
        for row in range(x.shape[0]):
            best = _group(d[row], ids[row], owner)
            if len(best) < k and kk < n_templates:
                short = True
            rows.append(_score_row(g, x[row], best, k, strategy, min_quality))
        if not short or kk >= n_templates:
            return _named(g, rows, k)
        kk = min(n_templates, kk * 4)


def _owners(g: GalleryCore, ids: npt.NDArray[np.int64]) -> dict[int, int]:
    """template id → subject id for the hits: from the index, or from the store for those it does not know."""
    hits = np.unique(ids[ids >= 0])
    sids = g.index.owners(hits)
    owner = {int(t): int(s) for t, s in zip(hits, sids, strict=True) if s >= 0}
    unknown = [int(t) for t, s in zip(hits, sids, strict=True) if s < 0]
    if unknown:
        owner.update({t: sid for t, (sid, _name) in g.store.template_owners(unknown).items()})
    return owner


def _group(scores: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], owner: dict[int, int]) -> _Hits:
    best: _Hits = {}
    for score, tid in zip(scores, ids, strict=True):
        sid = owner.get(int(tid), -1)
        if sid < 0:
            continue
        if sid in best:
            s0, t0, c0 = best[sid]
            best[sid] = (s0, t0, c0 + 1) if s0 >= score else (float(score), int(tid), c0 + 1)
        else:
            best[sid] = (float(score), int(tid), 1)
    return best


def _score_row(
    g: GalleryCore, q: npt.NDArray[np.float32], hits: _Hits, k: int, strategy: str, min_quality: float | None
) -> list[tuple[float, int, int, int]]:
    """``(score, template id, templates scored, subject id)`` of the best subjects, best first: the
    top ``k`` and any tied with the ``k``-th (names break ties)."""
    if strategy != "max" and hits:
        vecs = g.store.subject_vectors(list(hits))
        quals = _qualities_of(g, vecs, strategy, min_quality)
        scored = []
        for sid in hits:
            tids, v = vecs.get(sid, (np.zeros(0, np.int64), np.zeros((0, q.shape[0]), np.float32)))
            tq = [quals.get(int(t)) for t in tids]
            if min_quality is not None:
                keep = np.array([kept_by_quality(x, min_quality) for x in tq], bool)
                tids, v, tq = tids[keep], v[keep], [x for x, kept in zip(tq, keep, strict=True) if kept]
            if v.shape[0] == 0:
                continue
            s = v @ q
            scored.append((subject_score(s, strategy, tq), int(tids[int(np.argmax(s))]), int(v.shape[0]), sid))
    else:
        scored = [(s, tid, c, sid) for sid, (s, tid, c) in hits.items()]
    scored.sort(key=lambda r: -r[0])
    if len(scored) > k:
        scored = [r for r in scored if r[0] >= scored[k - 1][0]]
    return scored


def _qualities_of(
    g: GalleryCore,
    vecs: Mapping[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]],
    strategy: str,
    min_quality: float | None,
) -> dict[int, float | None]:
    """Stored qualities of the templates in ``vecs``, read only when the strategy or filter needs them."""
    if strategy != "quality-mean" and min_quality is None:
        return {}
    return g.store.template_qualities([int(t) for tids, _ in vecs.values() for t in tids])


def _named(g: GalleryCore, rows: list[list[tuple[float, int, int, int]]], k: int) -> list[list[Candidate]]:
    """Candidates with their subjects' names (read for the few subjects returned), ties broken by name."""
    names = g.store.subject_names(sorted({sid for row in rows for *_r, sid in row}))
    out = []
    for row in rows:
        named = sorted(((s, tid, c, names[sid]) for s, tid, c, sid in row if sid in names), key=lambda r: (-r[0], r[3]))
        out.append(
            [
                Candidate(name, max(-1.0, min(1.0, float(s))), i + 1, tid, c)
                for i, (s, tid, c, name) in enumerate(named[:k])
            ]
        )
    return out
