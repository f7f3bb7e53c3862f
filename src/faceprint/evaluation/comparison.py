"""Scoring a protocol from its embeddings: one cosine similarity per pair, or a probe × gallery matrix.

A side that failed to acquire (no face, unreadable) gives NaN. Template protocols (IJB) are
aggregated from their images first (:func:`~.protocols.aggregate_templates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, EmbeddingMismatchError
from ..types import Embedding
from .embedding import Failure
from .protocols import IdentificationProtocol, VerificationProtocol, aggregate_templates

__all__ = ["score_protocol", "score_identification", "embedding_matrix"]

#: pairs scored at a time (bounds memory for IJB-C's 15M pairs)
_SCORE_BLOCK = 65536


def embedding_matrix(
    embeddings: Mapping[str, Embedding | Failure], keys: Sequence[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Embeddings of ``keys`` as float32 (N, D) (NaN rows for failures) and bool (N,) acquired."""
    tags: set[str] = set()
    dim = 0
    for k in keys:
        v = embeddings.get(k)
        if isinstance(v, Embedding):
            tags.add(v.model)
            dim = v.dim
    if len(tags) > 1:
        raise EmbeddingMismatchError(f"embeddings of several models ({', '.join(sorted(tags))}) cannot be compared")
    out = np.full((len(keys), max(dim, 1)), np.nan, dtype=np.float32)
    ok = np.zeros(len(keys), dtype=bool)
    missing: list[str] = []
    for i, k in enumerate(keys):
        v = embeddings.get(k)
        if isinstance(v, Embedding):
            if v.dim != dim:
                raise EmbeddingMismatchError(f"embedding dimensions differ: {v.dim} vs {dim}")
            out[i] = v.vector
            ok[i] = True
        elif v is None:
            missing.append(k)
    if missing:
        raise ConfigurationError(
            f"{len(missing)} protocol images have no result (e.g. {missing[0]!r}); embed the protocol's images first"
        )
    return out, ok


def _side_vectors(
    protocol: VerificationProtocol | IdentificationProtocol, embeddings: Mapping[str, Embedding | Failure]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Vectors that pair indices refer to: image embeddings, or aggregated templates."""
    x, ok = embedding_matrix(embeddings, [im.key for im in protocol.images])
    t = protocol.templates
    if t is None:
        return x, ok
    return aggregate_templates(x, t.image, t.template, t.media, n_templates=len(t), valid=ok)


def score_protocol(
    protocol: VerificationProtocol, embeddings: Mapping[str, Embedding | Failure]
) -> npt.NDArray[np.float64]:
    """Cosine similarity of each pair, float64 (P,); NaN where a side failed to acquire.

    For template protocols (``protocol.templates`` set) image embeddings are first aggregated
    per template (:func:`aggregate_templates`); a template without any acquired image is a
    failure to acquire.
    """
    x, ok = _side_vectors(protocol, embeddings)
    p = len(protocol)
    scores = np.full(p, np.nan, dtype=np.float64)
    for s in range(0, p, _SCORE_BLOCK):
        a = protocol.a[s : s + _SCORE_BLOCK]
        b = protocol.b[s : s + _SCORE_BLOCK]
        both = ok[a] & ok[b]
        va = x[a[both]].astype(np.float64)
        vb = x[b[both]].astype(np.float64)
        block = scores[s : s + _SCORE_BLOCK]
        block[both] = np.clip(np.einsum("ij,ij->i", va, vb), -1.0, 1.0)
    return scores


def score_identification(
    protocol: IdentificationProtocol, embeddings: Mapping[str, Embedding | Failure]
) -> dict[str, npt.NDArray[np.float64]]:
    """Gallery name → float64 (n_probes, n_gallery) cosine similarities of each probe template
    against each gallery template; NaN rows/columns for templates without any acquired image."""
    x, ok = _side_vectors(protocol, embeddings)
    probes = x[protocol.probes].astype(np.float64)
    pok = ok[protocol.probes]
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, g in protocol.galleries.items():
        gal = x[g].astype(np.float64)
        gok = ok[g]
        m = np.full((len(probes), len(g)), np.nan)
        m[np.ix_(pok, gok)] = np.clip(probes[pok] @ gal[gok].T, -1.0, 1.0)
        out[name] = m
    return out
