"""Conformance checks any backend must pass; the gallery store checks live in :mod:`faceprint.testing.gallery`."""
