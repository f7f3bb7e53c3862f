"""Deprecated: the old home of the gallery API, kept for one release.

``faceprint.gallery.base`` held the whole gallery (1,549 lines). The API now lives in
:mod:`faceprint.gallery` (import from there); its parts are :mod:`.api` (the composed
:class:`~faceprint.gallery.Gallery`), :mod:`.values`, :mod:`.store`, :mod:`.spec`, :mod:`.core`,
:mod:`.enrolment`, :mod:`.ranking`, :mod:`.calibration`, :mod:`.identification` and
:mod:`.transfer`. Every name this module used to export still resolves here, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "Gallery": "api",
    "GallerySettings": "values",
    "Template": "values",
    "Subject": "values",
    "Candidate": "values",
    "IdentifyResult": "values",
    "OpenSetCalibration": "values",
    "EnrollReport": "values",
    "MigrationReport": "values",
    "ScoreStrategy": "values",
    "STRATEGIES": "values",
    "NewTemplate": "values",
    "split_model_tag": "values",
    "fpir_threshold": "calibration",
    "open_set_rates": "calibration",
    "EXPORT_FORMAT": "transfer",
    "EXPORT_VERSION": "transfer",
    "DEFAULT_BATCH": "enrolment",
    "ProgressHook": "enrolment",
    "pipeline_settings": "core",
    "creation_settings": "core",
    "check_reopen": "core",
}

__all__ = sorted(_MOVED)


def __getattr__(name: str) -> Any:
    where = _MOVED.get(name)
    if where is None:
        raise AttributeError(f"module 'faceprint.gallery.base' has no attribute {name!r}")
    warnings.warn(
        f"faceprint.gallery.base is deprecated: import {name} from faceprint.gallery "
        f"(it lives in faceprint.gallery.{where})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(f"faceprint.gallery.{where}"), name)
