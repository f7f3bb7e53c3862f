"""Face embedding: the :class:`Embedder` protocol and its backends (one module each)."""

from .base import Embedder, l2_normalise, to_embeddings

__all__ = ["Embedder", "l2_normalise", "to_embeddings"]
