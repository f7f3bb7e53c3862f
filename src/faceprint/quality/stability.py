"""Embedding stability: how much a face's embedding moves under small, seeded perturbations.

In the spirit of SER-FIQ (Terhörst et al., CVPR 2020), which measures the spread of stochastic
embeddings of one face: a face the network recognises well keeps its embedding when the chip
is mirrored, shifted by 5 % of its side, rotated by 10°, blurred (σ 2 px), given noise (σ 10)
or reduced to a third of its resolution; a blurred, tiny, occluded or badly exposed face moves
more (or, for the blur and resolution perturbations, less: it has no detail left to lose).
Instead of dropout inside the network (which an ONNX graph does not expose) the perturbations
are made on the input chip, always the same ones (the noise pattern comes from a fixed seed),
so the measure is deterministic.

The features are the cosine similarities between the embedding of the chip and the embedding
of each perturbed chip, and their mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from ..embedding.base import Embedder

__all__ = ["PERTURBATIONS", "Perturber", "stability_features", "stability_embeddings"]

#: names of the perturbations, in the order of the features
PERTURBATIONS: tuple[str, ...] = ("flip", "shift", "rotate", "blur", "noise", "lowres")
_SEED = 29794


class Perturber:
    """Makes the perturbed copies of a chip of side ``size``; holds the seeded noise pattern."""

    def __init__(self, size: int, *, noise_sigma: float = 10.0) -> None:
        self.size = int(size)
        rng = np.random.default_rng(_SEED)
        self._noise = rng.normal(0.0, noise_sigma, (self.size, self.size, 3)).astype(np.float32)
        c = (self.size - 1) / 2.0
        self._shift = np.array([[1.0, 0.0, 0.05 * size], [0.0, 1.0, -0.033 * size]])
        self._rotate = np.asarray(cv2.getRotationMatrix2D((c, c), -10.0, 0.85), dtype=np.float64)
        self._low = max(8, size // 3)

    def _warp(self, chip: npt.NDArray[np.uint8], m: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        out = cv2.warpAffine(chip, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.asarray(out, dtype=np.uint8)

    def __call__(self, chip: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint8]]:
        """The perturbed copies of ``chip`` (S, S, 3) uint8, in :data:`PERTURBATIONS` order."""
        s = self.size
        low = cv2.resize(chip, (self._low, self._low), interpolation=cv2.INTER_AREA)
        return [
            np.ascontiguousarray(chip[:, ::-1]),
            self._warp(chip, self._shift),
            self._warp(chip, self._rotate),
            np.asarray(cv2.GaussianBlur(chip, (0, 0), 2.0), dtype=np.uint8),
            np.clip(chip.astype(np.float32) + self._noise, 0, 255).astype(np.uint8),
            np.asarray(cv2.resize(low, (s, s), interpolation=cv2.INTER_LINEAR), dtype=np.uint8),
        ]


def stability_embeddings(
    embedder: Embedder, perturber: Perturber, chips: Sequence[npt.NDArray[np.uint8]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """(features (N, len(PERTURBATIONS) + 1), the chips' own embeddings (N, D)).

    The features are the cosine of each perturbed embedding to the chip's own, then their mean.
    One batched ``embed`` call for all chips and their perturbations.
    """
    k = len(PERTURBATIONS)
    if len(chips) == 0:
        return np.zeros((0, k + 1)), np.zeros((0, embedder.dim), np.float32)
    batch: list[npt.NDArray[np.uint8]] = []
    for c in chips:
        batch.append(c)
        batch.extend(perturber(c))
    raw = np.asarray(embedder.embed(batch), dtype=np.float32).reshape(len(chips), k + 1, -1)
    e = raw.astype(np.float64)
    cos = np.einsum("nd,nkd->nk", e[:, 0], e[:, 1:])
    return np.concatenate([cos, cos.mean(axis=1, keepdims=True)], axis=1), raw[:, 0]


def stability_features(
    embedder: Embedder, perturber: Perturber, chips: Sequence[npt.NDArray[np.uint8]]
) -> npt.NDArray[np.float64]:
    """(N, len(PERTURBATIONS) + 1) stability features of :func:`stability_embeddings`."""
    return stability_embeddings(embedder, perturber, chips)[0]
