"""Fixtures of the gallery tests: a gallery of either backend, synthetic and real embeddings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.gallery import Gallery, open_gallery
from faceprint.types import Embedding

BACKENDS = ["sqlite", "milvus"]
MODEL_ID, MODEL_VERSION = "test-model", "1"


def location(tmp_path: Path, backend: str, name: str = "g") -> str:
    return str(tmp_path / (f"{name}.db" if backend == "milvus" else name))


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def emb(v: np.ndarray, model_id: str = MODEL_ID, version: str = MODEL_VERSION) -> Embedding:
    return Embedding(np.asarray(v, np.float32), model_id, version)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
    return str(request.param)


@pytest.fixture
def make_gallery(tmp_path: Path, backend: str) -> Iterator[Callable[..., Gallery]]:
    """``make_gallery(name="g", **options)`` opens a gallery of the test's backend in tmp_path."""
    opened: list[Gallery] = []

    def make(name: str = "g", **options: Any) -> Gallery:
        g = open_gallery(location(tmp_path, backend, name), **options)
        opened.append(g)
        return g

    yield make
    for g in opened:
        g.close()
