"""Registries: names, typed creation, protocol check, and entry-point plug-ins (real ones, on sys.path)."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from faceprint.detection.base import Detector
from faceprint.errors import BackendProtocolError, FaceprintError, UnknownModelError
from faceprint.registry import Registry, detectors, embedders

PLUGIN_MODULE = '''
from faceprint.types import BBox, Detection


class GoodDetector:
    """Finds one face covering the middle of any image."""

    name = "plugin-good"

    def __init__(self, *, margin=0.25):
        self.margin = margin

    def detect(self, image):
        h, w = image.shape[:2]
        m = self.margin
        return [Detection(BBox(w * m, h * m, w * (1 - m), h * (1 - m)), 0.5, None, self.name)]

    def detect_batch(self, images):
        return [self.detect(i) for i in images]


class NotADetector:
    name = "plugin-incomplete"

    def detect(self, image):
        return []
'''


def write_plugin(root: Path, group: str) -> Path:
    """A real installed distribution: a module plus a ``.dist-info`` with entry points."""
    (root / "fp_test_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = root / "fp_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fp-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{group}]\n"
        "plugin-good = fp_test_plugin:GoodDetector\n"
        "plugin-incomplete = fp_test_plugin:NotADetector\n"
        "plugin-broken = fp_test_plugin_missing_module:Whatever\n"
        "dlib-hog = fp_test_plugin:GoodDetector\n"  # may not shadow a built-in
    )
    return root


@pytest.fixture
def plugin_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry[Detector]:
    group = "faceprint.tests_detectors"
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path, group)))
    importlib.invalidate_caches()
    reg: Registry[Detector] = Registry("detector", Detector, group, ())

    @reg.register("dlib-hog")
    class BuiltIn:
        name = "dlib-hog"

        def detect(self, image):
            return []

        def detect_batch(self, images):
            return [[] for _ in images]

    return reg


def test_builtin_names() -> None:
    assert {"dlib-hog", "dlib-mmod", "dlib-hog-mmod", "onnx-scrfd"} <= set(detectors.names())
    assert {"dlib-resnet", "dlib-resnet-onnx", "onnx-arcface"} <= set(embedders.names())
    assert detectors.protocol is Detector


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(UnknownModelError, match="choose one of: .*dlib-hog") as exc:
        detectors.create("no-such-detector")
    assert isinstance(exc.value, LookupError) and exc.value.kind == "detector"


def test_register_twice() -> None:
    reg: Registry[Detector] = Registry("detector", Detector, "faceprint.none", ())

    class A: ...

    class B: ...

    assert reg.register("a")(A) is A  # the decorator returns the class itself
    reg.register("a")(A)  # the same object again is fine (module re-import)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(B)


def test_plugins_load_and_a_broken_one_breaks_nothing(
    plugin_registry: Registry[Detector], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="faceprint.registry"):
        names = plugin_registry.names()
    assert names == ["dlib-hog", "plugin-good", "plugin-incomplete"]
    assert "plugin-broken" in caplog.text and "fp_test_plugin_missing_module" in caplog.text
    assert plugin_registry.get("dlib-hog").__name__ == "BuiltIn"  # a plug-in cannot replace a built-in
    det = plugin_registry.create("plugin-good", margin=0.1)
    assert isinstance(det, Detector) and det.margin == 0.1


def test_create_checks_the_protocol(plugin_registry: Registry[Detector]) -> None:
    with pytest.raises(BackendProtocolError, match="'plugin-incomplete'.*not a Detector.*missing: detect_batch") as e:
        plugin_registry.create("plugin-incomplete")
    assert isinstance(e.value, FaceprintError) and isinstance(e.value, TypeError)


def test_broken_plugin_in_the_real_group_keeps_builtins(tmp_path: Path) -> None:
    """The process-wide ``detectors`` registry, with plug-ins installed under its own group."""
    write_plugin(tmp_path, "faceprint.detectors")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(src)])}
    code = "from faceprint.registry import detectors; print(','.join(detectors.names()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = out.stdout.strip().split(",")
    assert {"dlib-hog", "dlib-mmod", "dlib-hog-mmod", "onnx-scrfd", "plugin-good"} <= set(names)
    assert "plugin-broken" not in names
    assert "could not load detector plugin 'plugin-broken'" in out.stderr
