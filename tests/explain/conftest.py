"""Fixtures for the explanation tests: real LFW pairs, aligned once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ..conftest import data_path

Chip = npt.NDArray[np.uint8]


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


def devtest_pairs(mated: bool, n: int) -> list[tuple[Path, Path]]:
    """The first ``n`` mated (or non-mated) pairs of LFW View 1 pairsDevTest.txt, in file order."""
    from faceprint.evaluation.protocols import read_lfw_pairs

    root = data_path("lfw_view1")
    pairs = [p for p in read_lfw_pairs(root / "pairsDevTest.txt", root) if p.mated == mated]
    return [(Path(p.a), Path(p.b)) for p in pairs[:n]]


@pytest.fixture(scope="session")
def chips_of(pipeline) -> Callable[[Path], Chip]:  # type: ignore[no-untyped-def]
    """Aligned chip of the central face of an LFW image (the protocol's selection), cached."""
    cache: dict[Path, Chip] = {}

    def chip(path: Path) -> Chip:
        if path not in cache:
            faces = pipeline.analyze(path, select="central", keep_aligned=True)
            assert faces and faces[0].aligned is not None, f"no face in {path}"
            cache[path] = faces[0].aligned.image
        return cache[path]

    return chip


@pytest.fixture(scope="session")
def peirsol(chips_of) -> tuple[Chip, Chip]:  # type: ignore[no-untyped-def]
    """A mated pair (Aaron Peirsol 1 and 2), aligned for the default embedder."""
    return chips_of(lfw("Aaron_Peirsol", 1)), chips_of(lfw("Aaron_Peirsol", 2))


@pytest.fixture(scope="session")
def embedder(pipeline):  # type: ignore[no-untyped-def]
    return pipeline.embedder
