"""From template hits to ranked subjects: the closed-set step shared by identification and calibration.

A subject's score is the ``max`` or the ``mean`` of its templates' cosine similarities to the
probe. The index is asked for enough templates (``kk``) to cover ``k`` subjects; when the hits
hold fewer than ``k`` subjects, ``kk`` grows until they do or the gallery is exhausted.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .core import GalleryCore
from .values import Candidate

__all__ = ["rank_subjects"]

#: subject id → (best score, its template id, templates hit, name)
_Hits = dict[int, tuple[float, int, int, str]]


def rank_subjects(g: GalleryCore, x: npt.NDArray[np.float32], k: int, strategy: str) -> list[list[Candidate]]:
    """Top-``k`` subjects per query row of ``x`` (normalised (N, D)), scored by ``strategy``, no threshold."""
    n_subjects, n_templates = g.store.counts(exact=False)
    if n_templates == 0:
        return [[] for _ in range(x.shape[0])]
    per_subject = max(1.0, n_templates / max(1, n_subjects))
    kk = min(n_templates, max(4 * k, int(math.ceil(2 * per_subject * k)), 16))
    while True:
        d, ids = g.search(x, kk)
        owners = g.store.template_owners(sorted({int(i) for i in ids.ravel() if i >= 0}))
        short = False
        results: list[list[Candidate]] = []
        for row in range(x.shape[0]):
            best = _group(d[row], ids[row], owners)
            if len(best) < k and kk < n_templates:
                short = True
            results.append(_score_row(g, x[row], best, k, strategy))
        if not short or kk >= n_templates:
            return results
        kk = min(n_templates, kk * 4)


def _group(scores: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], owners: dict[int, tuple[int, str]]) -> _Hits:
    best: _Hits = {}
    for score, tid in zip(scores, ids, strict=True):
        if tid < 0 or int(tid) not in owners:
            continue
        sid, name = owners[int(tid)]
        if sid in best:
            s0, t0, c0, _ = best[sid]
            best[sid] = (s0, t0, c0 + 1, name) if s0 >= score else (float(score), int(tid), c0 + 1, name)
        else:
            best[sid] = (float(score), int(tid), 1, name)
    return best


def _score_row(g: GalleryCore, q: npt.NDArray[np.float32], hits: _Hits, k: int, strategy: str) -> list[Candidate]:
    if strategy == "mean" and hits:
        vecs = g.store.subject_vectors(list(hits))
        scored = []
        for sid, (_best, _tid, _c, name) in hits.items():
            tids, v = vecs.get(sid, (np.zeros(0, np.int64), np.zeros((0, q.shape[0]), np.float32)))
            if v.shape[0] == 0:
                continue
            s = v @ q
            scored.append((float(np.mean(s)), int(tids[int(np.argmax(s))]), int(v.shape[0]), name))
    else:
        scored = [(s, tid, c, name) for s, tid, c, name in hits.values()]
    scored.sort(key=lambda r: (-r[0], r[3]))
    return [
        Candidate(name, max(-1.0, min(1.0, float(s))), i + 1, tid, c) for i, (s, tid, c, name) in enumerate(scored[:k])
    ]
