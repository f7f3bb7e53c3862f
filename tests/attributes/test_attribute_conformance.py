"""The attribute estimators pass the conformance checks of faceprint.testing.attributes on real photographs."""

from __future__ import annotations

from faceprint.registry import attribute_estimators
from faceprint.testing import BackendCase, parametrize_with_checks
from tests.test_conformance import photos


@parametrize_with_checks([attribute_estimators], images=photos)
def test_attribute_conformance(backend: BackendCase, check) -> None:
    check(backend)
