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


#: Where the quick loop draws the line (besides ``@pytest.mark.slow`` on single tests): whole files
#: and parametrisations that each cost seconds — the service (an app with inference workers per
#: test), MMOD's and dlib's own CNN (no BLAS), milvus-lite (a server per gallery), CKKS keys, and the
#: CLI tests that start fresh processes. CI runs them all.
_SLOW_FILES = (
    "tests/service/",
    "tests/gallery/test_hardening.py",
    "tests/protection/test_ckks.py",
    "tests/protection/test_evaluation.py",
    "tests/evaluation/test_usability.py",
    "tests/test_cli_eval.py",
    "tests/test_cli_recognize.py",
    "tests/test_cli.py",
    "tests/quality/test_cli_quality.py",
    "tests/quality/test_pipeline_quality.py",
)
_SLOW_PARAMS = ("[dlib-mmod-", "[dlib-hog-mmod-", "[dlib-resnet-", "[ckks-", "milvus")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow set (see ``_SLOW_FILES``): ``pytest -m "not slow"`` is the quick loop."""
    for item in items:
        params = item.nodeid.partition("[")[2]
        if item.nodeid.startswith(_SLOW_FILES) or any(p in "[" + params for p in _SLOW_PARAMS):
            item.add_marker(pytest.mark.slow)
