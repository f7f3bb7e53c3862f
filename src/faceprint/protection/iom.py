"""Index-of-Max hashing, Gaussian random projection variant (GRP-IoM; Jin et al., IEEE TIFS 2018).

Each of ``hashes`` hash functions holds ``q`` key-seeded standard normal projection vectors
(:func:`~faceprint.protection.base.key_gaussian`); its value for an embedding is the index
(0..q-1) of the largest projection. A template is the ``hashes`` indices (uint8); the score is
the fraction of hash functions whose indices agree, in [0, 1]. Under two keys the indices agree
by chance, about 1/q of the time, whatever the faces. Only ranks survive, not magnitudes, which
is what makes the transform harder to invert than BioHashing when the key is stolen.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..registry import template_protectors
from ._keyed import KeyedProjection, positive_int
from .base import ProtectionKey, key_gaussian

__all__ = ["IndexOfMax"]


@template_protectors.register("iom")
class IndexOfMax(KeyedProjection):
    """GRP Index-of-Max hashing.

    Args:
        dim: embedding dimension (128 for faceprint's default dlib embedder, 512 for ArcFace).
        hashes: number of hash functions (template length, one byte each).
        q: projections per hash function (2..256).
    """

    name = "iom"
    version = "1"

    def __init__(self, *, dim: int = 128, hashes: int = 256, q: int = 16) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim", low=2)
        self.hashes = positive_int(hashes, "hashes", high=4096)
        self.q = positive_int(q, "q", low=2, high=256)

    def _settings(self) -> tuple[tuple[str, int], ...]:
        return (("hashes", self.hashes), ("q", self.q))

    def _matrix(self, key: ProtectionKey) -> npt.NDArray[np.float64]:
        return key_gaussian(key, self._info(), (self.dim, self.hashes * self.q))

    def _encode(self, x: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        y = (x @ m).reshape(len(x), self.hashes, self.q)
        return np.argmax(y, axis=2).astype(np.uint8)

    def _score(self, a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        return np.mean(a == b, axis=1, dtype=np.float64)  # type: ignore[no-any-return]
