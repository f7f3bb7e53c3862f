"""Training the unified quality regressor: SDD-FIQA-style labels and a small MLP written as JSON.

Used by ``benchmarks/train_quality.py``; nothing here runs when faceprint assesses a face.

Labels (Ou et al., "SDD-FIQA", CVPR 2021): a face image's utility is the distance between the
distribution of its mated comparison scores (against the other images of its subject) and of
its non-mated ones (against the images of everyone else). We use the 1-D Wasserstein distance,
signed: negative when the mated scores lie below the non-mated ones on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError

__all__ = ["signed_wasserstein", "sdd_labels", "fit_mlp", "model_dict"]


def signed_wasserstein(mated: npt.ArrayLike, nonmated: npt.ArrayLike) -> float:
    """W1 distance between two 1-D samples, with the sign of ``mean(mated) − mean(nonmated)``."""
    from scipy.stats import wasserstein_distance

    m, n = np.asarray(mated, dtype=np.float64), np.asarray(nonmated, dtype=np.float64)
    if m.size == 0 or n.size == 0:
        raise ConfigurationError("a label needs at least one mated and one non-mated score")
    w = float(wasserstein_distance(m, n))
    return w if m.mean() >= n.mean() else -w


def sdd_labels(
    probes: npt.NDArray[np.floating[Any]],
    probe_subjects: Sequence[str],
    probe_self: Sequence[int],
    references: npt.NDArray[np.floating[Any]],
    reference_subjects: Sequence[str],
) -> npt.NDArray[np.float64]:
    """One label per probe embedding (rows L2-normalised, cosine scores).

    ``probe_self[i]`` is the index in ``references`` of the probe's own (undegraded) image,
    left out of its comparisons (-1: none). A probe whose subject has no other reference gets NaN.
    """
    refs = np.asarray(references, dtype=np.float64)
    subj = np.asarray(reference_subjects)
    scores = np.asarray(probes, dtype=np.float64) @ refs.T
    out = np.full(len(scores), np.nan)
    for i, row in enumerate(scores):
        keep = np.ones(len(refs), dtype=bool)
        if probe_self[i] >= 0:
            keep[probe_self[i]] = False
        mated = keep & (subj == probe_subjects[i])
        if mated.any():
            out[i] = signed_wasserstein(row[mated], row[keep & ~mated])
    return out


def fit_mlp(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    *,
    hidden: tuple[int, ...] = (16,),
    alpha: float = 1e-2,
    seed: int = 0,
) -> tuple[Any, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(sklearn MLPRegressor, feature mean, feature scale) fitted on standardised ``x`` and ``y``.

    ``hidden=()`` is a linear regression. The target's scaling is folded into the output layer,
    so ``reg.predict((x - mean) / scale)`` is on the label's scale.
    """
    from sklearn.neural_network import MLPRegressor

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    ym, ys = float(y.mean()), float(y.std()) or 1.0
    reg = MLPRegressor(
        hidden_layer_sizes=hidden, alpha=alpha, max_iter=1000, early_stopping=True, random_state=seed, tol=1e-5
    )
    reg.fit((x - mean) / scale, (y - ym) / ys)
    reg.coefs_[-1] = reg.coefs_[-1] * ys
    reg.intercepts_[-1] = reg.intercepts_[-1] * ys + ym
    return reg, mean, scale


def model_dict(
    reg: Any,
    mean: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    features: Sequence[str],
    train_predictions: npt.NDArray[np.float64],
    *,
    embedder: str | None,
    training: dict[str, Any],
) -> dict[str, Any]:
    """The JSON form :func:`faceprint.quality.unified.load_model` reads (weights, calibration, recipe)."""
    qs = np.linspace(0.0, 100.0, 101)
    cx = np.quantile(train_predictions, qs / 100.0)
    cx = np.maximum.accumulate(cx)
    return {
        "features": list(features),
        "mean": [float(v) for v in mean],
        "scale": [float(v) for v in scale],
        "layers": [
            {"w": np.asarray(w, dtype=np.float64).tolist(), "b": np.asarray(b, dtype=np.float64).tolist()}
            for w, b in zip(reg.coefs_, reg.intercepts_, strict=True)
        ],
        "calibration": {"x": [float(v) for v in cx], "y": [float(v) for v in qs]},
        "embedder": embedder,
        "training": training,
    }
