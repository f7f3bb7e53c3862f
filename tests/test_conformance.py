"""Conformance suite: every registered detector and embedder passes the same checks.

Like scikit-learn's estimator checks, one parametrised test per property, run on every backend
in the registries (dlib ones with their real weights, ONNX ones with tiny models built here).
A backend registered later is picked up automatically and must pass too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.alignment import TEMPLATES, align
from faceprint.detection.base import Detector
from faceprint.embedding.base import Embedder
from faceprint.io import load_image
from faceprint.registry import detectors, embedders

from .conftest import data_path, shared_model_path
from .detection.test_onnx_scrfd import FACE_A, build_scrfd
from .embedding.test_onnx_arcface import build_model

# Settings the tests need for backends whose model file the user supplies.
_NEEDS_MODEL = {"onnx-scrfd", "onnx-arcface"}
# Backends whose real weights are in ../shared/models (the test skips when they are absent).
_SHARED_MODEL = {"yunet": ("yunet", "yunet_s_dynamic.onnx")}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "onnx-scrfd": build_scrfd(d / "det.onnx", [FACE_A]),
        "onnx-arcface": build_model(d / "arc.onnx"),
    }


def _make(registry: Any, name: str, tiny_models: dict[str, Path]) -> Any:
    kwargs: dict[str, Any] = {"model": tiny_models[name]} if name in _NEEDS_MODEL else {}
    if name in _SHARED_MODEL:
        kwargs = {"model": shared_model_path(*_SHARED_MODEL[name])}
    return registry.create(name, **kwargs)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [
        load_image(data_path("lfw_view1", "AJ_Cook", "AJ_Cook_0001.jpg")),
        load_image(data_path("group_photos", "face_recognition_two_people.jpg")),
        load_image(data_path("non_faces", "skimage_coins.png")),
    ]


@pytest.mark.parametrize("name", detectors.names())
def test_detector_conformance(name: str, tiny_models: dict[str, Path], photos: list[np.ndarray]) -> None:
    det = _make(detectors, name, tiny_models)
    assert isinstance(det, Detector)
    singles = [det.detect(p) for p in photos]
    # batch == one by one, and determinism
    batch = det.detect_batch(photos)
    again = det.detect_batch(photos)
    for s, b, a in zip(singles, batch, again, strict=True):
        assert [d.bbox.as_list() for d in s] == [d.bbox.as_list() for d in b] == [d.bbox.as_list() for d in a]
        assert [d.score for d in s] == [d.score for d in b]
    for img, found in zip(photos, singles, strict=True):
        h, w = img.shape[:2]
        assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
        for d in found:
            assert 0 <= d.bbox.x1 < d.bbox.x2 <= w and 0 <= d.bbox.y1 < d.bbox.y2 <= h
            assert np.isfinite(d.score)
            if d.landmarks is not None:
                assert d.landmarks.points.shape == (5, 2) and d.landmarks.points.dtype == np.float32
    # tiny and thin images and an empty list are normal input, never a crash
    for shape in [(1, 1, 3), (7, 300, 3), (300, 7, 3), (20, 20, 3)]:
        assert isinstance(det.detect(np.zeros(shape, np.uint8)), list)
    assert det.detect(np.zeros((1, 1, 3), np.uint8)) == [] or name == "onnx-scrfd"
    assert det.detect_batch([]) == []
    # the input is not modified
    before = photos[0].copy()
    det.detect(photos[0])
    assert np.array_equal(before, photos[0])


@pytest.mark.parametrize("name", embedders.names())
def test_embedder_conformance(name: str, tiny_models: dict[str, Path], photos: list[np.ndarray], hog) -> None:
    emb = _make(embedders, name, tiny_models)
    assert isinstance(emb, Embedder)
    assert emb.template in TEMPLATES and emb.model_id and emb.model_version
    size = TEMPLATES[emb.template].size
    crops = [align(photos[1], d, emb.template).image for d in hog.detect(photos[1])]
    crops.append(align(photos[0], hog.detect(photos[0])[0], emb.template).image)
    assert len(crops) == 3 and crops[0].shape == (size, size, 3)
    out = emb.embed(crops)
    assert out.shape == (3, emb.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([emb.embed([c]) for c in crops])
    np.testing.assert_allclose(out, one_by_one, atol=1e-5)
    np.testing.assert_array_equal(out, emb.embed(crops))  # deterministic
    assert emb.embed([]).shape == (0, emb.dim)
    from faceprint.errors import ImageDimensionError

    with pytest.raises(ImageDimensionError):
        emb.embed([np.zeros((size + 1, size, 3), np.uint8)])
