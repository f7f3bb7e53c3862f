"""Issue 15's anonymisation targets on 100 LFW View 1 DevTest mated pairs, by faceprint's own verifier."""

from __future__ import annotations

import pytest

from faceprint.evaluation.anonymization import evaluate_anonymization, lfw_reference_images, protocol_mated_pairs
from faceprint.media.anonymize import DEFAULT_METHOD, Anonymizer, KSameReference

from ..conftest import data_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(pipeline):
    root = data_path("lfw_view1")
    name, pairs, subjects = protocol_mated_pairs("lfw", str(root), n=100)
    ref = KSameReference.from_images(lfw_reference_images(str(root), subjects, 200), pipeline.detector)
    d = pipeline.detector
    anonymizers = {
        "default": Anonymizer(d, DEFAULT_METHOD),
        "weak-blur": Anonymizer(d, "blur", strength=0.03),
        "ksame": Anonymizer(d, "ksame", reference=ref),
    }
    return evaluate_anonymization(pairs, pipeline, anonymizers, protocol=name, detect_after={"none", "ksame"})


def test_default_method_defeats_reidentification(report) -> None:
    assert report.pairs == 100 and report.failed == 0
    # the verifier works on these pairs before anonymisation ...
    assert report.row("none").rate("fmr=1e-2") >= 0.95
    # ... and the shipped default leaves at most 5 % re-identifiable at FMR 1e-2
    assert report.row("default").rate("fmr=1e-2") <= 0.05
    assert report.row("default").rate("fmr=1e-3") <= report.row("default").rate("fmr=1e-2")


def test_blur_strength_matters(report) -> None:
    """A blur with σ = 3 % of the face box (σ ≈ 5 px on LFW) leaves most faces recognisable."""
    weak, default = report.row("weak-blur").rate("fmr=1e-2"), report.row("default").rate("fmr=1e-2")
    assert weak >= 0.3 and weak > default + 0.25


def test_ksame_keeps_a_detectable_face(report) -> None:
    assert report.row("ksame").detection_rate >= 0.95
    assert report.row("ksame").rate("fmr=1e-2") < report.row("none").rate("fmr=1e-2") / 5
    assert report.missed_rate <= 0.05
