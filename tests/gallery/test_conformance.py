"""The Gallery API contract, run identically against every backend (SQLite + faiss, milvus-lite).

The checks live in :mod:`faceprint.testing.gallery` so that a third-party store can run them too;
here each check is one test per backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.gallery import fpir_threshold, open_set_rates
from faceprint.testing.gallery import (
    MILVUS_LITE,
    SQLITE,
    GalleryBackend,
    check_export_then_import,
    parametrize_with_checks,
)


@parametrize_with_checks([SQLITE, MILVUS_LITE])
def test_gallery_conformance(backend: GalleryBackend, check) -> None:  # type: ignore[no-untyped-def]
    check(backend)


@pytest.mark.parametrize(
    ("backend", "other"), [(SQLITE, MILVUS_LITE), (MILVUS_LITE, SQLITE)], ids=["sqlite-to-milvus", "milvus-to-sqlite"]
)
def test_export_then_import_into_the_other_backend(backend: GalleryBackend, other: GalleryBackend) -> None:
    if MILVUS_LITE.missing():
        pytest.skip(f"milvus-lite needs {', '.join(MILVUS_LITE.missing())}")
    check_export_then_import(backend, other)


def test_fpir_threshold_and_rates_are_the_iso_definitions() -> None:
    nonmated = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    t = fpir_threshold(nonmated, 0.2)
    assert 0.8 < t < 0.8 + 1e-9  # at most 2 of the 10 non-mated searches reach it
    fpir, fnir = open_set_rates([0.99, 0.85, 0.79, -np.inf, float("nan")], nonmated, t)
    assert fpir == pytest.approx(0.2) and fnir == pytest.approx(0.6)
    with pytest.raises(ConfigurationError):
        fpir_threshold(nonmated, 1.5)
