"""faceprint: face detection, alignment, embedding, verification and identification, offline.

Public API (importing faceprint loads no model; building a :class:`FacePipeline` does)::

    from faceprint import FacePipeline
    pipe = FacePipeline()                     # dlib HOG→MMOD detector + dlib ResNet on onnxruntime
    result = pipe.verify("a.jpg", "b.jpg")    # decision at the calibrated FMR = 1e-3 threshold
    for r in pipe.embed_many(paths):          # streamed, multi-process batch embedding
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import FaceprintError
from .types import AlignedFace, BBox, Decision, Detection, Embedding, Face, Landmarks

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    "FaceprintError",
    "AlignedFace",
    "BBox",
    "Decision",
    "Detection",
    "Embedding",
    "Face",
    "Landmarks",
    "FacePipeline",
    "ImageResult",
    "VerifyResult",
    "load_image",
    "align",
    "cosine",
    "similarity_matrix",
    "calibrate",
    "threshold_at_fmr",
    "detectors",
    "embedders",
]

_LAZY = {
    "FacePipeline": ("pipeline", "FacePipeline"),
    "ImageResult": ("pipeline", "ImageResult"),
    "VerifyResult": ("pipeline", "VerifyResult"),
    "load_image": ("io", "load_image"),
    "align": ("alignment", "align"),
    "cosine": ("scoring", "cosine"),
    "similarity_matrix": ("scoring", "similarity_matrix"),
    "calibrate": ("scoring", "calibrate"),
    "threshold_at_fmr": ("scoring", "threshold_at_fmr"),
    "detectors": ("registry", "detectors"),
    "embedders": ("registry", "embedders"),
}

if TYPE_CHECKING:
    from .alignment import align
    from .io import load_image
    from .pipeline import FacePipeline, ImageResult, VerifyResult
    from .registry import detectors, embedders
    from .scoring import calibrate, cosine, similarity_matrix, threshold_at_fmr


def __getattr__(name: str) -> Any:
    """Import heavier modules (OpenCV, PIL) on first use of their names."""
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'faceprint' has no attribute {name!r}")
