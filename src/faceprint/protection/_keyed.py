"""What the hash protectors share: checks, one key-seeded projection per key (kept for a few keys),
and the template object."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from .base import ProtectedTemplates, ProtectionKey, check_comparable, check_embeddings, check_key

__all__ = ["KeyedProjection", "positive_int"]

#: Projections kept in memory (one per key; an evaluation with a key per person cycles through them).
_CACHE = 8


def positive_int(value: object, name: str, *, low: int = 1, high: int = 1 << 16) -> int:
    """``value`` as an int in [low, high], else :class:`ConfigurationError`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= int(value) <= high:
        raise ConfigurationError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


class KeyedProjection:
    """Base of a protector whose template is a function of a key-seeded random matrix of the embedding.

    Subclasses set ``name``, ``version``, define :meth:`_matrix` (the key's projection),
    :meth:`_encode` (embeddings and projection → template rows) and :meth:`_score` (row-wise).
    """

    name = ""
    version = ""
    dim = 0

    def __init__(self) -> None:
        self._projections: OrderedDict[str, npt.NDArray[np.float64]] = OrderedDict()

    def _settings(self) -> tuple[tuple[str, int], ...]:
        raise NotImplementedError

    def _matrix(self, key: ProtectionKey) -> npt.NDArray[np.float64]:
        raise NotImplementedError

    def _encode(self, x: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        raise NotImplementedError

    def _score(self, a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        raise NotImplementedError

    def _info(self) -> str:
        """What the key's random numbers are for: method, version and settings (another setting, another matrix)."""
        return f"{self.name}/v{self.version}/dim={self.dim}/" + ",".join(f"{k}={v}" for k, v in self._settings())

    def projection(self, key: ProtectionKey) -> npt.NDArray[np.float64]:
        """The key's projection matrix (secret, like the key)."""
        fp = key.fingerprint
        m = self._projections.pop(fp, None)
        if m is None:
            m = self._matrix(key)
            m.setflags(write=False)
        self._projections[fp] = m
        while len(self._projections) > _CACHE:
            self._projections.popitem(last=False)
        return m

    def protect(self, embeddings: npt.ArrayLike, key: ProtectionKey) -> ProtectedTemplates:
        k = check_key(key)
        x = check_embeddings(embeddings, self.dim)
        data = self._encode(x, self.projection(k))
        return ProtectedTemplates(self.name, self.version, self.dim, k.fingerprint, data, self._settings())

    def compare(
        self, a: ProtectedTemplates, b: ProtectedTemplates, *, cross_key: bool = False
    ) -> npt.NDArray[np.float64]:
        ta, tb = check_comparable(a, b, method=self.name, version=self.version, cross_key=cross_key)
        if len(ta) == 0 or len(tb) == 0:
            return np.zeros(0, np.float64)
        return self._score(ta.data, tb.data)

    def __repr__(self) -> str:
        s = ", ".join(f"{k}={v}" for k, v in self._settings())
        return f"{type(self).__name__}(dim={self.dim}, {s})"
