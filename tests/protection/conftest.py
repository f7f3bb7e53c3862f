"""Fixtures for the template-protection tests: real LFW View 1 faces, embedded once per session (in memory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ..conftest import data_path

Vec = npt.NDArray[np.float32]


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


def devtest_pairs(n_each: int) -> list[tuple[Path, Path, bool, str, str]]:
    """The first ``n_each`` mated and ``n_each`` non-mated pairs of pairsDevTest.txt, in file order."""
    from faceprint.evaluation.protocols import read_lfw_pairs

    root = data_path("lfw_view1")
    pairs = read_lfw_pairs(root / "pairsDevTest.txt", root)
    chosen = [p for p in pairs if p.mated][:n_each] + [p for p in pairs if not p.mated][:n_each]
    return [(Path(p.a), Path(p.b), p.mated, p.identity_a, p.identity_b) for p in chosen]


@pytest.fixture(scope="session")
def embed(pipeline) -> Callable[[Path], Vec]:  # type: ignore[no-untyped-def]
    """The default pipeline's embedding of the central face of an LFW image, kept in memory."""
    cache: dict[Path, Vec] = {}

    def one(path: Path) -> Vec:
        if path not in cache:
            cache[path] = np.asarray(pipeline.embed_one(path, select="central").embedding.vector, np.float32)
        return cache[path]

    return one


@pytest.fixture(scope="session")
def faces(embed) -> dict[str, Vec]:  # type: ignore[no-untyped-def]
    """A mated pair (Aaron Peirsol 1 and 2) and two other people."""
    return {
        "a1": embed(lfw("Aaron_Peirsol", 1)),
        "a2": embed(lfw("Aaron_Peirsol", 2)),
        "b": embed(lfw("Aaron_Sorkin", 1)),
        "c": embed(lfw("Abdullah_Gul", 13)),
    }
