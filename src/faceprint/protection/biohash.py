"""BioHashing (Jin, Ling & Goh 2004): a key-seeded random orthonormal projection, then the sign of each
projected value as one bit; templates are compared by Hamming similarity.

The projection is the Q factor of a (D, bits) standard normal matrix drawn from the key
(:func:`~faceprint.protection.base.key_gaussian`), its column signs fixed by R's diagonal so
that it is unique. A bit is 1 where the projected value is > 0. For L2-normalised embeddings
the expected Hamming distance of two templates under one key is their angle / pi (random
hyperplanes), so similarity follows cosine similarity; under two keys it is 0.5 whatever the
faces. The bits are packed 8 per byte (``numpy.packbits``); the score is
``1 - popcount(a xor b) / bits``, in [0, 1].

Centring: the sign bits split each projected value at 0, so they are balanced only when the
embeddings are centred. dlib's 128-D embeddings share a large common component (the mean of the
LFW View 1 DevTrain embeddings has norm 0.91 against unit-norm embeddings), so without centring
the bits of two different people agree far more often than random-hyperplane theory assumes and
the stolen-key EER on DevTrain is 8.3 % (unprotected 1.1 %). Subtracting a population mean
``centre`` before projecting (estimated on data disjoint from the test subjects, stored in the
protector and named in every template's settings) brings it to 2.8 % (DevTrain, 3 keys; chosen
there, DevTest in benchmarks/RESULTS.md). Thresholding at the median projection of the same
data does as well; centring is kept because it is one vector for every key. A centre is public
population statistics, not a secret and not any person's template.

BioHashing's protection rests on the key: with the key, the template is a 1-bit quantisation
of a rotation of the embedding, which a regression inverts well (see the threat model).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..registry import template_protectors
from ._keyed import KeyedProjection, positive_int
from .base import ProtectionKey, check_embeddings, key_gaussian

__all__ = ["BioHash", "fit_centre", "centre_id"]


def fit_centre(embeddings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The population mean to centre embeddings on: the mean of L2-normalised ``embeddings``
    (N ≥ 2, of people other than those the protector will be measured on)."""
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or len(x) < 2 or not np.all(np.isfinite(x)):
        raise ConfigurationError(f"a centre needs at least 2 finite (N, D) embeddings, got shape {x.shape}")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(np.mean(x / np.maximum(n, 1e-12), axis=0), np.float64)


def centre_id(centre: npt.NDArray[np.float64]) -> int:
    """A 31-bit name of a centre vector (templates made with another centre are not comparable)."""
    return int.from_bytes(hashlib.sha256(np.ascontiguousarray(centre, "<f8").tobytes()).digest()[:4], "big") >> 1


@template_protectors.register("biohash")
class BioHash(KeyedProjection):
    """BioHashing with ``bits`` ≤ ``dim`` bits (a multiple of 8; default ``dim``).

    Args:
        dim: embedding dimension (128 for faceprint's default dlib embedder, 512 for ArcFace).
        bits: template length in bits.
        centre: a (dim,) population mean subtracted before projecting (see :func:`fit_centre`);
            None keeps faceprint 0.1's uncentred BioHashing (much weaker with a stolen key).
    """

    name = "biohash"
    version = "1"

    def __init__(self, *, dim: int = 128, bits: int | None = None, centre: npt.ArrayLike | None = None) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim", low=8)
        self.bits = self.dim if bits is None else positive_int(bits, "bits", low=8)
        if self.bits > self.dim or self.bits % 8:
            raise ConfigurationError(
                f"bits must be a multiple of 8 and at most dim={self.dim} (an orthonormal projection "
                f"has at most dim columns), got {self.bits}"
            )
        self.centre: npt.NDArray[np.float64] | None = None
        if centre is not None:
            c = np.asarray(centre, np.float64)
            if c.ndim != 1:
                raise ConfigurationError(f"the centre must be one vector of {self.dim} values, got shape {c.shape}")
            self.centre = check_embeddings(c[None], self.dim)[0].copy()
            self.centre.setflags(write=False)

    def _settings(self) -> tuple[tuple[str, int], ...]:
        if self.centre is None:
            return (("bits", self.bits),)
        return (("bits", self.bits), ("centre", centre_id(self.centre)))

    def _matrix(self, key: ProtectionKey) -> npt.NDArray[np.float64]:
        g = key_gaussian(key, self._info(), (self.dim, self.bits))
        q, r = np.linalg.qr(g)
        return q * np.where(np.diag(r) < 0, -1.0, 1.0)  # type: ignore[no-any-return]

    def _encode(self, x: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        if self.centre is not None:
            x = x - self.centre
        return np.packbits(x @ m > 0, axis=1)

    def _score(self, a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        differ = np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int64)
        return 1.0 - differ / float(self.bits)  # type: ignore[no-any-return]
