"""Conformance checks any backend must pass: ours, or a plug-in's in its own test suite.

Like scikit-learn's ``estimator_checks``: one function per property of a kind of stage
(``check_detect_…`` in :mod:`faceprint.testing.detection`, ``check_embed_…`` in
:mod:`faceprint.testing.embedding`, ``check_assess_…`` in :mod:`faceprint.testing.quality`),
and :func:`parametrize_with_checks`, which turns them into
one pytest test per check per backend. The checks run on real photographs that the caller
passes as :class:`FaceImages`. A plug-in package tests its backends with::

    from faceprint.testing import FaceImages, parametrize_with_checks

    IMAGES = FaceImages(face="tests/data/a1.jpg", same_person="tests/data/a2.jpg",
                        group="tests/data/group.jpg", no_face="tests/data/tree.jpg")

    @parametrize_with_checks([MyDetector(), MyEmbedder(model="tests/data/tiny.onnx")], images=IMAGES)
    def test_faceprint_conformance(backend, check):
        check(backend)

Passing a registry (``faceprint.registry.detectors``) checks every backend registered in it,
plug-ins included. A backend class that cannot be built with its default settings (it needs a
model file, say) tells the checks how to build it with a classmethod
``_conformance_cases(cls, name) -> list[BackendCase]``; a case whose model file is absent is
skipped with the reason. The gallery store checks live in :mod:`faceprint.testing.gallery`.

Importing this package loads no model and does not need pytest; :func:`parametrize_with_checks`
imports pytest when called.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._cases import HOOK, BackendCase, BuildContext
from ._images import FaceImages, ImageLike
from ._suite import KINDS, BoundCheck, check_backend, checks_for, parametrize_with_checks
from .attacks import *  # noqa: F403
from .attacks import __all__ as _attacks_all
from .detection import *  # noqa: F403  (the check functions, listed in detection.__all__)
from .detection import __all__ as _detection_all
from .embedding import *  # noqa: F403
from .embedding import __all__ as _embedding_all
from .explain import *  # noqa: F403
from .explain import __all__ as _explain_all
from .protection import *  # noqa: F403
from .protection import __all__ as _protection_all
from .quality import *  # noqa: F403
from .quality import __all__ as _quality_all

__all__ = [
    "FaceImages",
    "ImageLike",
    "BackendCase",
    "BuildContext",
    "BoundCheck",
    "HOOK",
    "KINDS",
    "parametrize_with_checks",
    "check_backend",
    "checks_for",
    *_detection_all,
    *_embedding_all,
    *_quality_all,
    *_explain_all,
    *_protection_all,
    *_attacks_all,
]

#: Submodules whose public names this package re-exports on first use, so that importing
#: faceprint.testing does not import them (nor fail where one is not there).
_LAZY_MODULES = ("gallery",)


def __getattr__(name: str) -> Any:
    for sub in _LAZY_MODULES:
        try:
            mod = importlib.import_module(f".{sub}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{sub}":
                raise  # the module exists but something it imports does not
            continue
        public = getattr(mod, "__all__", None)
        if (name in public) if public is not None else (hasattr(mod, name) and not name.startswith("_")):
            value = getattr(mod, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
