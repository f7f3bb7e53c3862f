"""The Embedder protocol: aligned face crops in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import ImageDimensionError
from ..types import Embedding

__all__ = ["Embedder", "model_tag", "to_embeddings", "check_crops", "l2_normalise"]


@runtime_checkable
class Embedder(Protocol):
    """A face embedder.

    Attributes:
        model_id, model_version: stored with every template; embeddings compare only when equal.
        dim: embedding length D.
        template: name of the alignment template (see :mod:`faceprint.alignment`) whose crops
            ``embed`` expects, e.g. ``"dlib150"`` or ``"arcface112"``.

    ``embed`` takes N aligned RGB uint8 crops of shape (S, S, 3) (S from the template) and
    returns float32 (N, D), each row L2-normalised. ``embed([])`` returns shape (0, D).
    Batch results equal one-by-one results.
    """

    model_id: str
    model_version: str
    dim: int
    template: str

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...


def model_tag(embedder: Embedder) -> str:
    """``model_id@model_version`` of an embedder: the tag stored beside its embeddings and templates
    (:attr:`faceprint.types.Embedding.model` of what it embeds)."""
    return f"{embedder.model_id}@{embedder.model_version}"


def l2_normalise(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Row-wise L2 normalisation of an (N, D) array, as float32."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return (x / n).astype(np.float32, copy=False)


def check_crops(crops: Sequence[npt.NDArray[np.uint8]], size: int) -> npt.NDArray[np.uint8]:
    """Stack crops into (N, size, size, 3) uint8, raising a clear error for any other shape."""
    if len(crops) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    out = np.empty((len(crops), size, size, 3), dtype=np.uint8)
    for i, c in enumerate(crops):
        a = np.asarray(c)
        if a.shape != (size, size, 3) or a.dtype != np.uint8:
            raise ImageDimensionError(
                f"aligned crop {i} has shape {a.shape} dtype {a.dtype}; this embedder expects "
                f"uint8 ({size}, {size}, 3) crops from faceprint.alignment"
            )
        out[i] = a
    return out


def to_embeddings(embedder: Embedder, vectors: npt.NDArray[np.float32]) -> list[Embedding]:
    """Wrap rows of an (N, D) array as :class:`Embedding` objects tagged with the embedder's model."""
    return [Embedding(v, embedder.model_id, embedder.model_version) for v in vectors]
