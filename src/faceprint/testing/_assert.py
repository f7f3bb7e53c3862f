"""Assertions the checks share (explicit ``AssertionError``s: they must hold under ``python -O`` too)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FaceprintError

__all__ = ["require", "require_faceprint_error", "require_named_backend"]


def require(ok: object, message: str) -> None:
    """Raise ``AssertionError(message)`` unless ``ok``."""
    if not ok:
        raise AssertionError(message)


def require_faceprint_error(
    what: str, fn: Callable[..., object], *args: object, error: type[FaceprintError] = FaceprintError
) -> None:
    """``fn(*args)`` must raise ``error`` (a :class:`FaceprintError`); returning or any other exception fails."""
    try:
        fn(*args)
    except error:
        return
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}, not a {error.__name__}") from exc
    raise AssertionError(f"{what} returned instead of raising a {error.__name__}")


def require_named_backend(backend: object, protocol: type, members: str) -> None:
    """``backend`` follows ``protocol`` (naming its ``members`` when not) and has a non-empty ``name``."""
    require(isinstance(backend, protocol), f"{type(backend).__name__} lacks {members}")
    name = getattr(backend, "name", None)
    require(isinstance(name, str) and name, f"name must be a non-empty str, got {name!r}")
