"""Shared fixtures: the real photographs in ../shared/data and session-wide models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


MODELS = Path(os.environ.get("FACEPRINT_TEST_MODELS", Path(__file__).resolve().parents[1].parent / "shared" / "models"))


def shared_model_path(*parts: str) -> Path:
    """A third-party model file from ../shared/models (not on PyPI); skips the test when absent."""
    p = MODELS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"model file {p} not found (set FACEPRINT_TEST_MODELS to the shared models folder)")
    return p


def data_path(*parts: str) -> Path:
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} not found (set FACEPRINT_TEST_DATA)")
    return p


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return data_path()


@pytest.fixture(scope="session")
def pipeline():
    """The default pipeline, built once (loading the models takes about a second)."""
    from faceprint import FacePipeline

    return FacePipeline()


@pytest.fixture(scope="session")
def hog():
    from faceprint.detection.dlib_detectors import DlibHogDetector

    return DlibHogDetector()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow set also holds MMOD's conformance checks (its CNN takes seconds per photo without
    BLAS) and the service tests (each builds an app with inference workers): the quick loop
    (``pytest -m "not slow"``) is the library and the CLI; ``pytest tests/service`` and CI run the rest."""
    for item in items:
        if "[dlib-mmod-" in item.nodeid or "[dlib-hog-mmod-" in item.nodeid or item.nodeid.startswith("tests/service/"):
            item.add_marker(pytest.mark.slow)
