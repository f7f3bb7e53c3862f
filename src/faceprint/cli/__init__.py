"""The ``faceprint`` command: thin commands over the library, one module per group."""

from .app import app, main

__all__ = ["app", "main"]
