"""The unified quality score: a small regressor read from a JSON file, no pickle, no code.

The regressor maps the quality components (and, for ``"fiqa"``, the embedding-stability
features of :mod:`.stability`) to an SDD-FIQA-style utility label: the Wasserstein distance
between a face image's mated and non-mated comparison-score distributions (Ou et al., CVPR
2021), learned on the images of LFW View 1 ``pairsDevTrain.txt`` only. Its prediction is turned
into 0-100 by the training set's quantiles, so a score of 30 means that 30 % of the training
faces were predicted to be less useful.

``benchmarks/train_quality.py`` trains it and writes ``faceprint/data/quality_fiqa.json`` with
its recipe, the command, a sha256 of the training image list and the fit's figures. The file
holds numbers only; :func:`load_model` checks its shape before use.

Feature names say how each input is computed from a face's components and stability features:
``q:<component>`` its quality / 100, ``v:<component>`` its native value, ``abs:<component>``
the absolute native value, ``stab:<perturbation>`` a stability cosine (``stab:mean`` their mean).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ModelFormatError
from ..types import QualityComponent
from .stability import PERTURBATIONS

__all__ = ["UnifiedModel", "load_model", "feature_vector", "MODEL_FILE"]

#: the model file shipped in the package (``faceprint/data``)
MODEL_FILE = "quality_fiqa.json"
_FORMAT = "faceprint-quality-model"


def feature_vector(
    names: Sequence[str], components: Mapping[str, QualityComponent], stability: npt.NDArray[np.float64] | None
) -> npt.NDArray[np.float64]:
    """The regressor's input for one face, in the order of ``names``."""
    out = np.empty(len(names))
    for i, name in enumerate(names):
        kind, _, key = name.partition(":")
        if kind == "stab":
            if stability is None:
                raise ConfigurationError(f"feature {name!r} needs the embedding-stability features")
            j = len(PERTURBATIONS) if key == "mean" else PERTURBATIONS.index(key)
            out[i] = float(stability[j])
        elif kind == "q":
            out[i] = components[key].quality / 100.0
        elif kind == "v":
            out[i] = components[key].value
        elif kind == "abs":
            out[i] = abs(components[key].value)
        else:
            raise ModelFormatError(f"unknown feature kind in {name!r}")
    return out


def _array(d: Mapping[str, Any], key: str, ndim: int) -> npt.NDArray[np.float64]:
    try:
        a = np.asarray(d[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"quality model: {key!r} is missing or not numeric ({exc})") from None
    if a.ndim != ndim or not np.all(np.isfinite(a)):
        raise ModelFormatError(f"quality model: {key!r} must be a finite {ndim}-D array")
    return a


@dataclass(frozen=True)
class UnifiedModel:
    """A standardiser, a multilayer perceptron (ReLU hidden layers, linear output) and a 0-100 calibration.

    A model with no hidden layer is a linear regression.
    """

    name: str
    features: tuple[str, ...]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weights: tuple[npt.NDArray[np.float64], ...]
    biases: tuple[npt.NDArray[np.float64], ...]
    calib_x: npt.NDArray[np.float64]
    calib_y: npt.NDArray[np.float64]
    embedder: str | None
    version: str

    @property
    def needs_stability(self) -> bool:
        return any(f.startswith("stab:") for f in self.features)

    def raw(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The predicted utility (Wasserstein distance) of (N, F) features."""
        h = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return np.asarray(h[:, 0])

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Unified quality 0-100 of (N, F) features (monotone in :meth:`raw`)."""
        return np.round(np.interp(self.raw(x), self.calib_x, self.calib_y), 1)

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], version: str) -> UnifiedModel:
        features = tuple(str(f) for f in d.get("features", ()))
        mean, scale = _array(d, "mean", 1), _array(d, "scale", 1)
        layers = d.get("layers")
        if not features or not isinstance(layers, list) or not layers:
            raise ModelFormatError(f"quality model {name!r}: needs 'features' and 'layers'")
        weights = tuple(_array(layer, "w", 2) for layer in layers)
        biases = tuple(_array(layer, "b", 1) for layer in layers)
        width = len(features)
        for w, b in zip(weights, biases, strict=True):
            if w.shape[0] != width or b.shape != (w.shape[1],):
                raise ModelFormatError(f"quality model {name!r}: layer shapes do not chain")
            width = w.shape[1]
        calib = d.get("calibration", {})
        cx, cy = _array(calib, "x", 1), _array(calib, "y", 1)
        n = (len(features),)
        if width != 1 or mean.shape != n or scale.shape != n or cx.shape != cy.shape or np.any(scale <= 0):
            raise ModelFormatError(f"quality model {name!r}: inconsistent shapes")
        if np.any(np.diff(cx) < 0) or np.any(np.diff(cy) < 0):
            raise ModelFormatError(f"quality model {name!r}: the calibration must increase")
        return cls(name, features, mean, scale, weights, biases, cx, cy, d.get("embedder"), version)


def _read(path: Path | None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("faceprint").joinpath(f"data/{MODEL_FILE}").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        doc = json.loads(text)
    except FileNotFoundError as exc:
        raise ModelFormatError(f"quality model file not found: {exc.filename or MODEL_FILE}") from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot read the quality model {path or MODEL_FILE}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ModelFormatError(f"{path or MODEL_FILE} is not a faceprint quality model (format {_FORMAT!r})")
    return doc


def load_model(name: str, path: str | Path | None = None) -> UnifiedModel:
    """The model ``name`` (``"fiqa"``, ``"fiqa-fast"``) of a model file (default: the shipped one)."""
    doc = _read(None if path is None else Path(path))
    models = doc.get("models", {})
    if name not in models:
        raise ModelFormatError(f"the quality model file has no model {name!r} (has: {', '.join(models)})")
    version = str(doc.get("version", "0"))
    return UnifiedModel.from_dict(name, models[name], version)
