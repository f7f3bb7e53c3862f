"""What the checks run on: backend cases, how they are built, and where they come from."""

from __future__ import annotations

import inspect
import os
import unittest
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, ModelNotFoundError
from ..registry import Registry

__all__ = ["BackendCase", "BuildContext", "HOOK", "cases_from"]

#: Name of the optional classmethod a backend class defines to say how the checks build it:
#: ``_conformance_cases(cls, name: str) -> list[BackendCase]`` (``name``: its registry name).
#: Backends without it are built with their default settings.
HOOK = "_conformance_cases"

#: Errors that mean "this backend cannot be built on this machine", turned into a skip.
_UNAVAILABLE: tuple[type[BaseException], ...] = (ModelNotFoundError, BackendUnavailableError)


@dataclass(frozen=True)
class BuildContext:
    """What a case's ``build`` gets: a private working folder and the folders holding test models.

    Attributes:
        workdir: an empty folder for files the build writes (e.g. a tiny ONNX graph), removed
            when the process ends.
        model_dirs: folders of third-party model files the test suite was given, searched
            before faceprint's model directory by :meth:`model_file`.
    """

    workdir: Path
    model_dirs: tuple[Path, ...] = ()

    def model_file(self, relative: str | os.PathLike[str]) -> Path:
        """The first ``model_dirs/relative`` (then model directory/relative) that exists.

        Raises :class:`ModelNotFoundError` (which skips the case) when there is none.
        """
        from ..models import model_dir

        places = [*self.model_dirs, model_dir()]
        for d in places:
            p = Path(d) / relative
            if p.is_file():
                return p
        raise ModelNotFoundError(f"model file {relative} is in none of: {', '.join(str(d) for d in places)}")


@dataclass(frozen=True)
class BackendCase:
    """One backend configuration the checks run on, built lazily (once per test session).

    Attributes:
        id: the backend's part of the test id (``"onnx-scrfd"``, ``"yunet[640]"``).
        build: ``build(ctx)`` returns the backend. Raising :class:`ModelNotFoundError` or
            :class:`BackendUnavailableError` (or ``unittest.SkipTest``) skips every check of
            this case with the error as reason.
        kind: the kind of stage (``"detector"``, ``"embedder"``; a :class:`Registry`'s
            ``kind``); filled in for cases that come from a registry.
        expected_failures: check name → why this configuration cannot pass it (e.g. a
            synthetic model that finds a face everywhere). Those checks are marked
            ``xfail(strict=True)``: one that starts passing fails, so the entry gets removed.
    """

    id: str
    build: Callable[[BuildContext], object]
    kind: str | None = None
    expected_failures: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, backend: object, kind: str | None = None) -> BackendCase:
        """A case for an already-built backend object."""
        name = getattr(backend, "name", None) or getattr(backend, "model_id", None) or type(backend).__name__
        return cls(str(name), lambda ctx: backend, kind)


def _required_settings(factory: Callable[..., object]) -> list[str]:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return []
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]


def _default_case(registry: Registry[Any], name: str, factory: Callable[..., object]) -> BackendCase:
    required = _required_settings(factory)

    def build(ctx: BuildContext) -> object:
        if required:
            raise unittest.SkipTest(
                f"{registry.kind} {name!r} needs settings ({', '.join(required)}) the checks cannot guess; "
                f"give it a {HOOK}() classmethod (see faceprint.testing)"
            )
        return registry.create(name)

    return BackendCase(name, build, registry.kind)


def _failing_case(name: str, kind: str, exc: Exception) -> BackendCase:
    def build(ctx: BuildContext) -> object:
        raise AssertionError(f"{kind} {name!r}: its {HOOK}() hook failed: {exc!r}") from exc

    return BackendCase(name, build, kind)


def _registry_cases(registry: Registry[Any]) -> list[BackendCase]:
    cases: list[BackendCase] = []
    for name in registry.names():
        factory = registry.get(name)
        hook = getattr(factory, HOOK, None)
        if hook is None:
            cases.append(_default_case(registry, name, factory))
            continue
        try:
            found = list(hook(name))
        except Exception as exc:  # one broken hook must not hide the other backends' checks
            cases.append(_failing_case(name, registry.kind, exc))
            continue
        cases.extend(c if c.kind else replace(c, kind=registry.kind) for c in found)
    return cases


def cases_from(backends: Iterable[object], kind_of: Callable[[object], str | None]) -> list[BackendCase]:
    """Expand registries into one case per registered backend; wrap built objects; keep cases.

    ``kind_of(obj)`` names the kind of a built backend object (None: not a known kind).
    """
    out: list[BackendCase] = []
    for b in backends:
        if isinstance(b, Registry):
            out.extend(_registry_cases(b))
        elif isinstance(b, BackendCase):
            out.append(b)
        else:
            out.append(BackendCase.of(b, kind_of(b)))
    seen: set[tuple[str | None, str]] = set()
    for c in out:
        if c.kind is None:
            raise TypeError(f"backend case {c.id!r} has no kind and is not a known kind of backend")
        if (c.kind, c.id) in seen:
            raise ValueError(f"two {c.kind} cases have the id {c.id!r}; give them distinct ids")
        seen.add((c.kind, c.id))
    return out


def build_or_skip(case: BackendCase, ctx: BuildContext) -> object:
    """``case.build(ctx)``, with "not available here" errors turned into ``unittest.SkipTest``."""
    try:
        return case.build(ctx)
    except _UNAVAILABLE as exc:
        raise unittest.SkipTest(f"{case.kind} {case.id!r} is not available here: {exc}") from exc
