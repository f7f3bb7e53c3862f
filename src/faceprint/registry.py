"""Name → backend class registries, one per pipeline stage.

Built-in backends register themselves with a decorator when their module is imported;
third-party packages add backends through the entry-point groups
``faceprint.detectors`` and ``faceprint.embedders`` without touching faceprint.
Registering imports no heavy dependency and loads no model.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import UnknownModelError

__all__ = ["Registry", "detectors", "embedders"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from backend name to the class (or factory) that builds it."""

    def __init__(self, kind: str, entry_point_group: str, builtin_modules: tuple[str, ...]) -> None:
        self.kind = kind
        self.group = entry_point_group
        self._builtin_modules = builtin_modules
        self._items: dict[str, Callable[..., T]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(obj: Callable[..., T]) -> Callable[..., T]:
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
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> Callable[..., T]:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownModelError(self.kind, name, list(self._items)) from None

    def create(self, name: str, **kwargs: object) -> T:
        """Build the backend ``name`` with keyword settings."""
        return self.get(name)(**kwargs)


detectors: Registry[object] = Registry(
    "detector",
    "faceprint.detectors",
    ("faceprint.detection.dlib_detectors", "faceprint.detection.onnx_scrfd", "faceprint.detection.yunet"),
)
embedders: Registry[object] = Registry(
    "embedder",
    "faceprint.embedders",
    ("faceprint.embedding.dlib_resnet", "faceprint.embedding.onnx_arcface"),
)
