"""Running the checks: which checks each kind of stage has, ``parametrize_with_checks``, ``check_backend``."""

from __future__ import annotations

import tempfile
import unittest
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..attacks.base import AttackDetector
from ..attributes.base import AttributeEstimator
from ..detection.base import Detector
from ..embedding.base import Embedder
from ..explain.base import Explainer
from ..protection.base import TemplateProtector
from ..quality.base import QualityAssessor
from ._cases import BackendCase, BuildContext, build_or_skip, cases_from
from ._images import FaceImages

if TYPE_CHECKING:
    import pytest

__all__ = ["KINDS", "checks_for", "parametrize_with_checks", "check_backend"]

Check = Callable[[Any, FaceImages], None]


def _detector_checks() -> list[Check]:
    from .detection import detector_checks

    return list(detector_checks())


def _embedder_checks() -> list[Check]:
    from .embedding import embedder_checks

    return list(embedder_checks())


def _quality_checks() -> list[Check]:
    from .quality import quality_checks

    return list(quality_checks())


def _explainer_checks() -> list[Check]:
    from .explain import explainer_checks

    return list(explainer_checks())


def _protector_checks() -> list[Check]:
    from .protection import protection_checks

    return list(protection_checks())


def _attribute_checks() -> list[Check]:
    from .attributes import attribute_checks

    return list(attribute_checks())


def _attack_checks() -> list[Check]:
    from .attacks import attack_checks

    return list(attack_checks())


#: kind of stage (a registry's ``kind``) → (its protocol, the function listing its checks).
#: A new kind of stage adds one line here and a ``faceprint/testing/<kind>.py`` of checks.
KINDS: dict[str, tuple[type[Any], Callable[[], list[Check]]]] = {
    "detector": (Detector, _detector_checks),
    "embedder": (Embedder, _embedder_checks),
    "quality assessor": (QualityAssessor, _quality_checks),
    "explainer": (Explainer, _explainer_checks),
    "template protector": (TemplateProtector, _protector_checks),
    "attribute estimator": (AttributeEstimator, _attribute_checks),
    "attack detector": (AttackDetector, _attack_checks),
}


def kind_of(backend: object) -> str | None:
    """The kind of stage a built backend object is, by the protocols in :data:`KINDS`."""
    for kind, (protocol, _) in KINDS.items():
        if isinstance(backend, protocol):
            return kind
    return None


def checks_for(kind: str) -> list[Check]:
    """Every check of a kind of stage, cheapest first."""
    if kind not in KINDS:
        raise ValueError(f"no conformance checks for {kind!r}; known kinds: {', '.join(KINDS)}")
    return KINDS[kind][1]()


class _Session:
    """Shared by all checks of one ``parametrize_with_checks``: images, built backends, a work folder."""

    def __init__(
        self,
        images: FaceImages | Callable[[], FaceImages],
        model_dirs: Sequence[str | Path],
        *,
        under_pytest: bool = False,
    ) -> None:
        self.under_pytest = under_pytest
        self._images_source = images
        self._images: FaceImages | None = images if isinstance(images, FaceImages) else None
        self._model_dirs = tuple(Path(d) for d in model_dirs)
        self._ctx: BuildContext | None = None
        self._built: dict[tuple[str | None, str], object] = {}
        self._skipped: dict[tuple[str | None, str], str] = {}

    def images(self) -> FaceImages:
        if self._images is None:
            assert callable(self._images_source)
            self._images = self._images_source()
        return self._images

    def context(self) -> BuildContext:
        if self._ctx is None:
            tmp = tempfile.TemporaryDirectory(prefix="faceprint-conformance-")
            weakref.finalize(self, tmp.cleanup)
            self._ctx = BuildContext(Path(tmp.name), self._model_dirs)
        return self._ctx

    def backend(self, case: BackendCase) -> object:
        """The case's backend, built on first use and kept for every later check."""
        key = (case.kind, case.id)
        if key in self._skipped:
            raise unittest.SkipTest(self._skipped[key])
        if key not in self._built:
            try:
                self._built[key] = build_or_skip(case, self.context())
            except unittest.SkipTest as exc:
                self._skipped[key] = str(exc)
                raise
        return self._built[key]


class BoundCheck:
    """One check bound to the images and build cache of its test session; ``check(backend)``.

    ``backend`` is a :class:`BackendCase` (built on first use, then shared) or a built backend.
    """

    def __init__(self, fn: Check, session: _Session) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self._session = session

    def __call__(self, backend: object) -> None:
        try:
            obj = self._session.backend(backend) if isinstance(backend, BackendCase) else backend
        except unittest.SkipTest as exc:
            if self._session.under_pytest:  # a pytest skip, not one through pytest's unittest shim
                import pytest

                pytest.skip(str(exc))
            raise
        self.fn(obj, self._session.images())

    def __repr__(self) -> str:
        return f"<check {self.__name__}>"


def _check_names(case: BackendCase, checks: Iterable[Check]) -> set[str]:
    names = {c.__name__ for c in checks}
    unknown = set(case.expected_failures) - names
    if unknown:
        raise ValueError(f"{case.id}: expected_failures names unknown checks: {', '.join(sorted(unknown))}")
    return names


def parametrize_with_checks(
    backends: Iterable[object],
    *,
    images: FaceImages | Callable[[], FaceImages],
    model_dirs: Sequence[str | Path] = (),
) -> pytest.MarkDecorator:
    """Pytest decorator giving one test per check per backend, with ids ``<backend>-<check>``.

    Args:
        backends: registries (every registered backend, built-in or plug-in, is checked),
            :class:`BackendCase` objects, or built detector / embedder objects.
        images: the photographs to check with, or a function returning them (called in the
            first test that needs them, so it may ``pytest.skip`` when they are absent).
        model_dirs: folders holding third-party model files that backend cases look up
            with :meth:`BuildContext.model_file`; a case whose model is absent is skipped.

    Each backend is built once for all its checks and each photograph decoded once. Use::

        from faceprint.testing import FaceImages, parametrize_with_checks

        @parametrize_with_checks([MyDetector(), MyEmbedder()], images=FaceImages(face=..., ...))
        def test_faceprint_conformance(backend, check):
            check(backend)
    """
    import pytest

    session = _Session(images, model_dirs, under_pytest=True)
    params = []
    for case in cases_from(backends, kind_of):
        assert case.kind is not None
        checks = checks_for(case.kind)
        _check_names(case, checks)
        for fn in checks:
            marks = []
            if fn.__name__ in case.expected_failures:
                reason = case.expected_failures[fn.__name__]
                marks.append(pytest.mark.xfail(reason=reason, raises=AssertionError, strict=True))
            params.append(pytest.param(case, BoundCheck(fn, session), id=f"{case.id}-{fn.__name__}", marks=marks))
    return pytest.mark.parametrize(("backend", "check"), params)


def check_backend(backend: object, images: FaceImages, *, model_dirs: Sequence[str | Path] = ()) -> list[str]:
    """Run every check on one backend (a built object, a :class:`BackendCase` or a registry).

    Stops at the first failing check (``AssertionError``); checks a case lists in
    ``expected_failures`` are left out. Returns the names of the checks that passed, as
    ``"<backend>-<check>"``. Raises ``unittest.SkipTest`` when a case cannot be built here.
    """
    session = _Session(images, model_dirs)
    passed = []
    for case in cases_from([backend], kind_of):
        assert case.kind is not None
        checks = checks_for(case.kind)
        _check_names(case, checks)
        for fn in checks:
            if fn.__name__ not in case.expected_failures:
                BoundCheck(fn, session)(case)
                passed.append(f"{case.id}-{fn.__name__}")
    return passed
