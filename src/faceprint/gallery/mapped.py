"""Migrating a gallery to another model through a fitted embedding map, without its images.

``faceprint gallery migrate G --map map.npz --embedder B``: every template of model A is replaced
by ``map(template)``, tagged as model B; probes are then embedded by B natively. Templates are
never re-derived from images, so this works for galleries that keep none. Accuracy is that of
cross-model search (A mapped against B), measured in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ..errors import EmbeddingMismatchError, MapMismatchError
from .core import model_tag, pipeline_settings
from .values import MigrationReport

if TYPE_CHECKING:
    from ..mapping import EmbeddingMap
    from ..pipeline import FacePipeline
    from .api import Gallery

__all__ = ["migrate_with_map"]

log = logging.getLogger(__name__)

_CHUNK = 65536


def migrate_with_map(gallery: Gallery, emap: EmbeddingMap, pipeline: FacePipeline) -> MigrationReport:
    """Map every template of ``gallery`` (model ``emap.source``) into ``pipeline``'s model (``emap.target``).

    Raises :class:`MapMismatchError` when the map was fitted for another gallery model or another
    target than ``pipeline``'s; nothing changes then. The open-set calibration is cleared.
    """
    g = gallery
    old = g._settings.model
    new = model_tag(pipeline)
    if old is None:
        raise EmbeddingMismatchError(f"gallery {g.location} holds no templates yet: nothing to migrate")
    emap.check_models(source=old, target=new)
    if g._settings.dim is not None and g._settings.dim != emap.source_dim:
        raise MapMismatchError(
            f"gallery {g.location} holds {g._settings.dim}-D templates; the map takes {emap.source_dim}-D"
        )
    ids: list[int] = []
    chunk: list[np.ndarray] = []
    new_vecs: dict[int, np.ndarray] = {}

    def flush() -> None:
        if chunk:
            for i, v in zip(ids[-len(chunk) :], emap.apply(np.stack(chunk)), strict=True):
                new_vecs[i] = v
            chunk.clear()

    for t in g.templates(with_vectors=True):
        assert t.vector is not None
        ids.append(t.id)
        chunk.append(t.vector)
        if len(chunk) >= _CHUNK:
            flush()
    flush()
    s = g.settings
    s.model = new
    s.dim = emap.target_dim
    s.pipeline = pipeline_settings(pipeline)
    if s.calibration:
        log.warning("migration cleared the open-set calibration: recalibrate with gallery.calibrate(...)")
    s.calibration = None
    with g._lock:
        change = g.store.replace_vectors(new_vecs, [], s)
        g._settings = s
        g._apply(change)
        g._pipeline = pipeline
    return MigrationReport(True, old, new, len(new_vecs))
