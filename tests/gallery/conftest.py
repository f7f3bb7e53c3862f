"""Fixtures of the gallery tests: a gallery of either backend, synthetic and real embeddings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faceprint.gallery import Gallery, open_gallery
from faceprint.testing.gallery import MODEL_ID, MODEL_VERSION, emb, unit_vectors

__all__ = ["MODEL_ID", "MODEL_VERSION", "emb", "unit_vectors", "location"]

BACKENDS = ["sqlite", "milvus"]


def location(tmp_path: Path, backend: str, name: str = "g") -> str:
    return str(tmp_path / (f"{name}.db" if backend == "milvus" else name))


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
