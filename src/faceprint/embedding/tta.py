"""Test-time augmentation (TTA): embed a face chip and altered copies of it, and average.

A TTA setting is a string:

``"none"``
    the chip alone (default).
``"flip"``
    the chip and its mirror image; the mean of the two embeddings, renormalised.
``"jitter<N>"`` (N = 1 … 64), e.g. ``"jitter8"``
    the mean of N jittered copies, as dlib's ``num_jitters``: each copy is the chip slightly
    rotated (±3°), zoomed (crop 0.97–1.0 of the chip shrunk by 3 px) and shifted (±2 %), and
    mirrored with probability ½ (``dlib::jitter_image``). The N transforms are drawn once from a
    fixed seed, so the same face always gives the same embedding, alone or in any batch.
``"flip-jitter<N>"`` (N = 1 … 32)
    the chip, N jittered copies (as above, never mirrored by chance), and the mirror image of
    each: 2N + 2 views, mirror-symmetric like ``"flip"``.

:class:`TtaEmbedder` wraps any :class:`~faceprint.embedding.Embedder` with a setting. Averaging
changes the scores, so an augmented embedder has its own model id, ``<model_id>+<setting>``
(e.g. ``dlib-resnet-v1+flip``): its templates do not compare with plain ones by accident, and
its operating points are calibrated separately (``faceprint models list``). The cost is one
network run per view: ×2 for ``flip``, ×N for ``jitterN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES
from ..errors import ConfigurationError
from ..models import TTA_NONE, TtaSpec, parse_tta
from .base import Embedder, check_crops, l2_normalise

__all__ = ["TTA_NONE", "TtaSpec", "parse_tta", "augment", "TtaEmbedder", "with_tta"]

_JITTER_SEED = 20170212  # fixed: the same jitters for every face, every run


@lru_cache(maxsize=16)
def _jitter_transforms(n: int, size: int, mirror: bool = True) -> tuple[npt.NDArray[np.float64], ...]:
    """N (2, 3) chip → jittered-chip matrices, dlib's ``jitter_image`` parameters, fixed seed
    (``mirror=False``: without its random mirroring)."""
    rng = np.random.default_rng(_JITTER_SEED)
    rect = size - 6.0  # shrink_rect(get_rect(img), 3)
    c = (size - 1) / 2.0
    out = []
    for _ in range(n):
        tx, ty = rng.uniform(-0.02, 0.02, size=2) * rect
        box = rect / rng.uniform(0.97, 0.99999)  # side of the region that fills the output
        angle = np.deg2rad(rng.uniform(-3.0, 3.0))
        flip = rng.random() > 0.5
        # output pixel u ← input point centre + t + R(angle) · (u − c) · box / size
        k = box / size
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * k
        m_out_to_in = np.empty((2, 3))
        m_out_to_in[:, :2] = rot
        m_out_to_in[:, 2] = np.array([c + tx, c + ty]) - rot @ np.array([c, c])
        if flip and mirror:  # mirror the output: u_x → size − 1 − u_x
            f = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            m_out_to_in = m_out_to_in @ f
        out.append(m_out_to_in)
    return tuple(out)


def augment(crops: npt.NDArray[np.uint8], spec: TtaSpec) -> npt.NDArray[np.uint8]:
    """The views of (N, S, S, 3) crops as (V, N, S, S, 3), V = ``spec.views``; view 0 is the crops
    themselves unless the setting is ``jitterN``."""
    x = np.asarray(crops, dtype=np.uint8)
    if spec.jitters == 0:
        return x[None] if not spec.flip else np.stack([x, x[:, :, ::-1]])
    import cv2

    n, size = x.shape[0], x.shape[1]
    views = [x] if spec.flip else []
    for m in _jitter_transforms(spec.jitters, size, mirror=not spec.flip):
        v = np.empty_like(x)
        for i in range(n):
            v[i] = cv2.warpAffine(
                x[i], m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT
            )
        views.append(v)
    if spec.flip:
        views += [v[:, :, ::-1] for v in views]
    return np.stack(views)


class TtaEmbedder:
    """An :class:`Embedder` that averages the embeddings of a chip's augmented views.

    ``model_id`` is the wrapped embedder's plus ``+<setting>``; ``model_version``, ``dim`` and
    ``template`` are the wrapped embedder's. ``inner`` is the wrapped embedder.
    """

    def __init__(self, inner: Embedder, tta: str) -> None:
        self.spec = parse_tta(tta)
        if self.spec.name == TTA_NONE:
            raise ConfigurationError("TtaEmbedder needs an augmentation; use the embedder itself for 'none'")
        self.inner = inner
        self.tta = self.spec.name
        self.model_id = f"{inner.model_id}+{self.spec.name}"
        self.model_version = inner.model_version
        self.dim = inner.dim
        self.template = inner.template

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Aligned crops → (N, D) float32 unit rows: the renormalised mean over the views."""
        x = check_crops(crops, TEMPLATES[self.template].size)
        if len(x) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        views = augment(x, self.spec)
        v, n = views.shape[:2]
        vecs = self.inner.embed(views.reshape(v * n, *x.shape[1:]))  # type: ignore[arg-type]
        return l2_normalise(vecs.reshape(v, n, -1).mean(axis=0))

    def __repr__(self) -> str:
        return f"TtaEmbedder({self.inner!r}, tta={self.tta!r})"


def with_tta(embedder: Embedder, tta: str | None) -> Embedder:
    """``embedder`` itself for ``"none"``, else wrapped in a :class:`TtaEmbedder`."""
    spec = parse_tta(tta)
    return embedder if spec.name == TTA_NONE else TtaEmbedder(embedder, spec.name)
