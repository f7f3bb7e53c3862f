"""Searching a protected gallery: a faiss binary (Hamming) index over hash templates (biohash's
bits, iom's one-hot indices), a linear scan through the protector's ``compare`` otherwise (ckks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..protection.base import ProtectedTemplates, TemplateProtector

__all__ = ["ProtectedIndex", "binary_codes"]


def binary_codes(t: ProtectedTemplates) -> tuple[npt.NDArray[np.uint8], int, int] | None:
    """(packed bit codes, code bits, Hamming distance per unit of score) of hash templates, or None.

    biohash: the template bits themselves; score = 1 - d / bits. iom: each index one-hot in q
    bits, so two templates differ in 2 bits per unequal index; score = 1 - d / (2 hashes)."""
    if t.method == "biohash":
        bits = int(dict(t.settings)["bits"])
        return np.ascontiguousarray(t.data, np.uint8), bits, bits
    if t.method == "iom":
        q, hashes = int(dict(t.settings)["q"]), int(t.data.shape[1])
        if (hashes * q) % 8:
            return None
        out = np.empty((len(t), hashes * q // 8), np.uint8)
        offsets = np.arange(hashes) * q
        for lo in range(0, len(t), 8192):  # bounded memory: 8192 x hashes x q booleans at a time
            idx = np.asarray(t.data[lo : lo + 8192], np.int64)
            hot = np.zeros((len(idx), hashes * q), bool)
            hot[np.arange(len(idx))[:, None], offsets + idx] = True
            out[lo : lo + len(idx)] = np.packbits(hot, axis=1)
        return out, hashes * q, 2 * hashes
    return None


class ProtectedIndex:
    """The in-memory search structure of one method over every stored template: a faiss binary
    (Hamming) index for the hashes, a linear scan through ``compare`` otherwise (ckks)."""

    def __init__(
        self, protector: TemplateProtector, t: ProtectedTemplates, owners: npt.NDArray[np.int64], names: dict[int, str]
    ) -> None:
        self.protector, self.t, self.owners, self.names = protector, t, owners, names
        self.binary: Any = None
        codes = binary_codes(t) if len(t) else None
        if codes is not None:
            import faiss

            data, nbits, self.scale = codes
            self.binary = faiss.IndexBinaryFlat(nbits)
            self.binary.add(data)

    def rank(self, probe: ProtectedTemplates, k: int) -> list[tuple[str, float]]:
        if len(self.t) == 0:
            return []
        if self.binary is not None:
            # the key checks of compare(), on the probe alone (the index holds the gallery's templates)
            self.protector.compare(probe, self.t[0])
            codes = binary_codes(probe)
            assert codes is not None
            kk = min(len(self.t), max(4 * k, 64))
            dist, idx = self.binary.search(codes[0], kk)
            keep = idx[0] >= 0
            scores, rows = 1.0 - dist[0][keep] / self.scale, idx[0][keep]
        else:
            scores, rows = self.protector.compare(probe, self.t), np.arange(len(self.t))
        best: dict[int, float] = {}
        for r, sc in zip(rows.tolist(), np.asarray(scores, np.float64).tolist(), strict=True):
            sid = int(self.owners[r])
            if sc > best.get(sid, -np.inf):
                best[sid] = sc
        top = sorted(best.items(), key=lambda kv: -kv[1])[:k]
        return [(self.names[sid], float(sc)) for sid, sc in top]
