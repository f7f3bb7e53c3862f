"""Conformance: every registered detector, embedder, quality assessor and explainer passes every check
of faceprint.testing.

One test per check per backend (``test_conformance[dlib-hog-check_detect_no_face]``), built from
the registries, so a backend registered later, or an installed plug-in, is checked too. Backends
that need a model file say how to build one through their ``_conformance_cases`` hook; those
whose model is absent from ../shared/models skip with the reason. Each backend is built once
and each photograph decoded once for the whole session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest

from faceprint.detection.base import Detector
from faceprint.errors import ModelNotFoundError
from faceprint.registry import (
    Registry,
    attack_detectors,
    detectors,
    embedders,
    explainers,
    quality_assessors,
    template_protectors,
)
from faceprint.testing import (
    BackendCase,
    BuildContext,
    FaceImages,
    check_backend,
    checks_for,
    parametrize_with_checks,
)
from faceprint.testing._cases import cases_from

from .conftest import DATA, data_path

pytest_plugins = ["pytester"]

MODELS = DATA.parent / "models"


def lfw(name: str, n: int) -> Path:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg")


def photo_paths() -> dict[str, Path]:
    """Small real photographs (slow detectors scan each a few times): 250×250 LFW faces,
    a 501×700 two-person photograph and a 128×128 photograph without a face."""
    return {
        "face": lfw("Aaron_Peirsol", 1),
        "same_person": lfw("Aaron_Peirsol", 2),
        "group": data_path("group_photos", "face_recognition_kit_with_rose.jpg"),
        "no_face": data_path("non_faces", "matplotlib_Minduka_Present_Blue_Pack.png"),
    }


def photos() -> FaceImages:
    return FaceImages(**photo_paths())


@parametrize_with_checks(
    [detectors, embedders, quality_assessors, explainers, template_protectors, attack_detectors],
    images=photos,
    model_dirs=[MODELS],
)
def test_conformance(backend: BackendCase, check) -> None:
    check(backend)


# --- the suite itself: it must be able to fail, and a plug-in author must be able to use it ------


@pytest.fixture(scope="module")
def images() -> FaceImages:
    return photos()


def test_checks_catch_raw_exceptions_and_wrong_order(images: FaceImages, hog) -> None:
    class Sloppy:
        name = "sloppy"

        def detect(self, image):
            return hog.detect(image)[::-1]  # worst face first

        def detect_batch(self, images):
            return [self.detect(i) for i in images]

    names = {c.__name__: c for c in checks_for("detector")}
    with pytest.raises(AssertionError, match="descending"):
        names["check_detect_sorted_by_score"](Sloppy(), images)

    class Raw(Sloppy):
        def detect(self, image):
            return hog.detect(image) if np.asarray(image).dtype == np.uint8 else [][0]  # raw IndexError

    with pytest.raises(AssertionError, match="IndexError.*not a FaceprintError"):
        names["check_detect_bad_input"](Raw(), images)


def test_a_case_without_its_model_skips_with_the_reason(images: FaceImages, tmp_path: Path) -> None:
    def build(ctx: BuildContext) -> Detector:
        ctx.model_file("no_such_pack/detector.onnx")
        raise AssertionError("model_file returned a path that does not exist")

    case = BackendCase("needs-a-model", build, "detector")
    with pytest.raises(unittest.SkipTest, match="not available here.*no_such_pack/detector.onnx"):
        check_backend(case, images, model_dirs=[tmp_path])
    with pytest.raises(ModelNotFoundError):
        BuildContext(tmp_path, (tmp_path,)).model_file("absent.onnx")


class MeanColourEmbedder:
    """Mean colour of each crop, centred on the batch mean: not unit length, and batch-dependent."""

    model_id, model_version, dim, template = "mean-colour", "1", 3, "arcface112"

    def embed(self, crops):
        x = np.array([np.asarray(c, np.float32).mean(axis=(0, 1)) for c in crops], np.float32).reshape(-1, 3)
        return x - x.mean(axis=0) if len(x) > 1 else x


def test_checks_catch_an_embedder_that_is_not_normalised_nor_batch_independent(images: FaceImages) -> None:
    names = {c.__name__: c for c in checks_for("embedder")}
    emb = MeanColourEmbedder()
    names["check_embed_output"](emb, images)  # the shape and dtype are right
    with pytest.raises(AssertionError, match="row norms .* are not 1"):
        names["check_embed_l2_normalised"](emb, images)
    with pytest.raises(AssertionError, match="batch vs one by one: differ by up to"):
        names["check_embed_batch_equals_single"](emb, images)
    emb.template = "nope"
    with pytest.raises(AssertionError, match="template 'nope'"):
        names["check_embedder_protocol"](emb, images)


def test_registry_backends_that_cannot_be_built_by_default(images: FaceImages) -> None:
    """No hook and a required setting: skipped, saying what to add; a hook that raises: that backend fails."""
    reg: Registry[Detector] = Registry("detector", Detector, "faceprint.tests_none", ())

    @reg.register("needs-model")
    class NeedsModel:
        def __init__(self, *, model: str) -> None: ...

    with pytest.raises(unittest.SkipTest, match=r"needs settings \(model\).*_conformance_cases"):
        check_backend(reg, images)

    @reg.register("broken-hook")
    class BrokenHook:
        @classmethod
        def _conformance_cases(cls, name: str) -> list[BackendCase]:
            raise RuntimeError("no graph for you")

    cases = {c.id: c for c in cases_from([reg], lambda b: None)}
    assert set(cases) == {"needs-model", "broken-hook"} and cases["broken-hook"].kind == "detector"
    with pytest.raises(AssertionError, match="hook failed: RuntimeError"):
        check_backend(cases["broken-hook"], images)


def test_build_context_finds_model_files(tmp_path: Path) -> None:
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "det.onnx").write_bytes(b"x")
    ctx = BuildContext(tmp_path / "work", (tmp_path / "elsewhere", tmp_path))
    assert ctx.model_file("pack/det.onnx") == tmp_path / "pack" / "det.onnx"


def test_expected_failures_must_name_real_checks(images: FaceImages) -> None:
    case = BackendCase("typo", lambda ctx: None, "detector", {"check_detect_no_faces": "typo"})
    with pytest.raises(ValueError, match="unknown checks: check_detect_no_faces"):
        check_backend(case, images)


PLUGIN_TESTS = """
import numpy as np
from faceprint.detection.dlib_detectors import DlibHogDetector
from faceprint.testing import BackendCase, FaceImages, parametrize_with_checks
from faceprint.types import BBox, Detection

IMAGES = FaceImages(face={face!r}, same_person={same_person!r}, group={group!r}, no_face={no_face!r})


class Everywhere:
    name = "everywhere"

    def detect(self, image):
        h, w = image.shape[:2]
        return [Detection(BBox(0.0, 0.0, float(w), float(h)), 1.0, None, self.name)] if h and w else []

    def detect_batch(self, images):
        return [self.detect(i) for i in images]


BACKENDS = [
    DlibHogDetector(),
    BackendCase("absent", lambda ctx: ctx.model_file("no_such_model.onnx"), "detector"),
    BackendCase("everywhere", lambda ctx: Everywhere(), "detector", {{"check_detect_no_face": "it is"}}),
]


@parametrize_with_checks(BACKENDS, images=IMAGES)
def test_conformance(backend, check):
    check(backend)
"""


def test_usable_from_a_plugin_test_suite(pytester: pytest.Pytester) -> None:
    """A third-party test module: built objects and cases, its own photographs, a skip, an xfail."""
    paths = {role: str(p) for role, p in photo_paths().items()}
    pytester.makepyfile(test_plugin=PLUGIN_TESTS.format(**paths))
    result = pytester.runpytest_inprocess("-q", "-rsfx", "-p", "no:cacheprovider")
    n = len(checks_for("detector"))
    # Everywhere finds one face in the two-person photograph and does not check its input
    result.assert_outcomes(passed=2 * n - 3, skipped=n, failed=2, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "FAILED *everywhere-check_detect_finds_faces*",
            "E * AssertionError: found 1 face(s) in the group photograph, expected ≥ 2",
            "FAILED *everywhere-check_detect_bad_input*",
            "E * AssertionError: detect(a float32 image) returned instead of raising a FaceprintError",
            "SKIPPED [[]13[]] *detector 'absent' is not available here: *no_such_model.onnx*",
            "XFAIL *everywhere-check_detect_no_face* - it is",
        ]
    )


def test_importing_faceprint_testing_is_light() -> None:
    code = (
        "import sys, faceprint.testing as t\n"
        "print(sorted(m for m in ('pytest', 'onnx', 'onnxruntime', 'dlib') if m in sys.modules))\n"
        "try:\n    t.no_such_check\nexcept AttributeError as e:\n    print('AttributeError')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "AttributeError"]


def test_one_test_per_check_per_backend() -> None:
    registries = [detectors, embedders, quality_assessors, explainers, template_protectors]
    mark = parametrize_with_checks(registries, images=photos)
    ids = [p.id for p in mark.args[1]]
    kinds = ["detector", "embedder", "quality assessor", "explainer", "template protector"]
    n = sum(len(r.names()) * len(checks_for(k)) for r, k in zip(registries, kinds, strict=True))
    assert len(ids) == len(set(ids)) == n
    assert "dlib-hog-check_detect_no_face" in ids and "onnx-arcface-check_embed_l2_normalised" in ids
    assert "fiqa-check_assess_blur_lowers_quality" in ids and "fiqa-fast-check_assess_output" in ids
    assert "occlusion-check_explain_points_at_similarity" in ids and "xcos-check_explain_swap_swaps_maps" in ids
    assert "biohash-check_compare_refuses_mixing" in ids and "iom-check_compare_new_key_at_zero_effort" in ids
