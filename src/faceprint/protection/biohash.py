"""BioHashing (Jin, Ling & Goh 2004): a key-seeded random orthonormal projection, then the sign of each
projected value as one bit; templates are compared by Hamming similarity.

The projection is the Q factor of a (D, bits) standard normal matrix drawn from the key
(:func:`~faceprint.protection.base.key_gaussian`), its column signs fixed by R's diagonal so
that it is unique. A bit is 1 where the projected value is > 0. For L2-normalised embeddings
the expected Hamming distance of two templates under one key is their angle / pi (random
hyperplanes), so similarity follows cosine similarity; under two keys it is 0.5 whatever the
faces. The bits are packed 8 per byte (``numpy.packbits``); the score is
``1 - popcount(a xor b) / bits``, in [0, 1].

BioHashing's protection rests on the key: with the key, the template is a 1-bit quantisation
of a rotation of the embedding, which a regression inverts well (see the threat model).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..registry import template_protectors
from ._keyed import KeyedProjection, positive_int
from .base import ProtectionKey, key_gaussian

__all__ = ["BioHash"]


@template_protectors.register("biohash")
class BioHash(KeyedProjection):
    """BioHashing with ``bits`` ≤ ``dim`` bits (a multiple of 8; default ``dim``).

    Args:
        dim: embedding dimension (128 for faceprint's default dlib embedder, 512 for ArcFace).
        bits: template length in bits.
    """

    name = "biohash"
    version = "1"

    def __init__(self, *, dim: int = 128, bits: int | None = None) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim", low=8)
        self.bits = self.dim if bits is None else positive_int(bits, "bits", low=8)
        if self.bits > self.dim or self.bits % 8:
            raise ConfigurationError(
                f"bits must be a multiple of 8 and at most dim={self.dim} (an orthonormal projection "
                f"has at most dim columns), got {self.bits}"
            )

    def _settings(self) -> tuple[tuple[str, int], ...]:
        return (("bits", self.bits),)

    def _matrix(self, key: ProtectionKey) -> npt.NDArray[np.float64]:
        g = key_gaussian(key, self._info(), (self.dim, self.bits))
        q, r = np.linalg.qr(g)
        return q * np.where(np.diag(r) < 0, -1.0, 1.0)  # type: ignore[no-any-return]

    def _encode(self, x: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        return np.packbits(x @ m > 0, axis=1)

    def _score(self, a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        differ = np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int64)
        return 1.0 - differ / float(self.bits)  # type: ignore[no-any-return]
