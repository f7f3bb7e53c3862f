"""Face detection: the :class:`Detector` protocol and its backends (one module each)."""

from .base import Detector

__all__ = ["Detector"]
