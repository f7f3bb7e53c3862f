"""Name → backend registries, one per kind of pipeline stage, typed by that kind's protocol.

Built-in backends register themselves with a decorator when their module is imported;
third-party packages add backends through an entry-point group (``faceprint.detectors``,
``faceprint.embedders``) without touching faceprint. Registering imports no heavy dependency
and loads no model; :meth:`Registry.create` builds one and checks that it follows the protocol.

A new kind of stage (attack detector, template protector, landmarker…) gets its registry here
in one statement, after its protocol in ``<kind>/base.py``, as the quality assessors did::

    from .quality.base import QualityAssessor

    quality_assessors: Registry[QualityAssessor] = Registry(
        "quality assessor", QualityAssessor, "faceprint.quality_assessors", ("faceprint.quality.fiqa",)
    )

and its conformance checks in :mod:`faceprint.testing` (see ``docs/ARCHITECTURE.md``).
Protocol modules (``base.py``) must not import this module; backend modules do.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, cast

from .attacks.base import AttackDetector
from .attributes.base import AttributeEstimator
from .detection.base import Detector
from .embedding.base import Embedder
from .errors import BackendProtocolError, UnknownModelError
from .explain.base import Explainer
from .protection.base import TemplateProtector
from .quality.base import QualityAssessor

__all__ = [
    "Registry",
    "attack_detectors",
    "attribute_estimators",
    "detectors",
    "embedders",
    "explainers",
    "quality_assessors",
    "template_protectors",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What ``register`` decorates: a class, or any callable that builds a backend. It is returned
#: unchanged (a decorated class keeps its own type); whether it builds a ``T`` is checked when
#: :meth:`Registry.create` builds it.
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[T]):
    """A mapping from backend name to the class (or factory) that builds it.

    Args:
        kind: what a backend is, in words (``"detector"``); used in error messages.
        protocol: the ``runtime_checkable`` protocol every built backend must satisfy (``T``).
        entry_point_group: entry-point group third-party packages register backends under.
        builtin_modules: modules whose import registers the built-in backends.
    """

    def __init__(
        self, kind: str, protocol: type[Any], entry_point_group: str, builtin_modules: tuple[str, ...]
    ) -> None:
        self.kind = kind
        self.protocol = protocol
        self.group = entry_point_group
        self._builtin_modules = builtin_modules
        self._items: dict[str, Callable[..., object]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering a backend class or factory under ``name``."""

        def deco(obj: F) -> F:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin_modules:
            importlib.import_module(mod)
        for ep in entry_points(group=self.group):
            if ep.name in self._items:
                continue
            try:
                self._items[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not break the built-ins
                log.warning("could not load %s plugin %r: %s", self.kind, ep.name, exc)

    def names(self) -> list[str]:
        """Every registered name: built-ins and installed plug-ins, sorted."""
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> Callable[..., T]:
        """The class or factory registered under ``name`` (:class:`UnknownModelError` if none)."""
        self._load()
        try:
            return cast(Callable[..., T], self._items[name])
        except KeyError:
            raise UnknownModelError(self.kind, name, list(self._items)) from None

    def create(self, name: str, **kwargs: object) -> T:
        """Build the backend ``name`` with keyword settings.

        Raises :class:`UnknownModelError` for an unregistered name and
        :class:`BackendProtocolError` when what was built does not follow the protocol.
        """
        backend = self.get(name)(**kwargs)
        if not isinstance(backend, self.protocol):
            missing = [m for m in _protocol_members(self.protocol) if not hasattr(backend, m)]
            raise BackendProtocolError(
                f"{self.kind} {name!r} built a {type(backend).__name__} that is not a {self.protocol.__name__}"
                + (f" (missing: {', '.join(missing)})" if missing else "")
                + "; fix the backend or uninstall the package that provides it"
            )
        return backend

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.protocol.__name__}, {self.group!r})"


def _protocol_members(protocol: type[Any]) -> list[str]:
    """Public attributes and methods a protocol declares (for the error message)."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v)}
    return sorted(n for n in names if not n.startswith("_"))


detectors: Registry[Detector] = Registry(
    "detector",
    Detector,
    "faceprint.detectors",
    ("faceprint.detection.dlib_detectors", "faceprint.detection.onnx_scrfd", "faceprint.detection.yunet"),
)
embedders: Registry[Embedder] = Registry(
    "embedder",
    Embedder,
    "faceprint.embedders",
    (
        "faceprint.embedding.dlib_resnet",
        "faceprint.embedding.onnx_arcface",
        "faceprint.embedding.facenet",
        "faceprint.embedding.fused",
    ),
)
quality_assessors: Registry[QualityAssessor] = Registry(
    "quality assessor", QualityAssessor, "faceprint.quality_assessors", ("faceprint.quality.fiqa",)
)
explainers: Registry[Explainer] = Registry(
    "explainer", Explainer, "faceprint.explainers", ("faceprint.explain.occlusion", "faceprint.explain.xcos")
)
template_protectors: Registry[TemplateProtector] = Registry(
    "template protector",
    TemplateProtector,
    "faceprint.template_protectors",
    ("faceprint.protection.biohash", "faceprint.protection.iom", "faceprint.protection.ckks"),
)
attack_detectors: Registry[AttackDetector] = Registry(
    "attack detector",
    AttackDetector,
    "faceprint.attack_detectors",
    ("faceprint.attacks.minifasnet", "faceprint.attacks.mesonet", "faceprint.attacks.texture", "faceprint.attacks.mad"),
)
attribute_estimators: Registry[AttributeEstimator] = Registry(
    "attribute estimator",
    AttributeEstimator,
    "faceprint.attribute_estimators",
    ("faceprint.attributes.dlib_age_gender",),
)
