"""Score-level fusion of several face models, as one embedder (``"fused"``).

Fusion rule: a weighted sum of the members' cosine scores, ``s = Σ wᵢ cosᵢ / Σ wᵢ``, with
weights learnt on a training split only (:func:`fit_fusion`):

``"logistic"`` (default)
    logistic regression of mated vs non-mated on the members' scores (classes balanced):
    ``b + Σ wᵢ cosᵢ`` is then a calibrated log-likelihood ratio at equal priors, and the fused
    score is that LLR rescaled (``llr = offset + scale · s``, both stored);
``"znorm"``
    each member's score z-normalised by its non-mated mean and spread, then summed:
    ``wᵢ = 1 / σᵢ`` (the means only shift the threshold).

Because the rule is linear in the cosines, the fused embedding is simply the concatenation of
the members' unit embeddings, each scaled by ``sqrt(wᵢ / Σ w)``: its cosine with another fused
embedding *is* the fused score. So fusion works unchanged wherever embeddings go: ``verify``,
``eval run``, galleries (a fused template holds one template per member model, side by side)
and score files. Operating points are calibrated on the fused score like any model's.

Members need different crops (dlib's 150×150 chip, FaceNet's wider 160×160 crop). The fused
embedder takes crops of the member template that covers most of the face's surroundings and cuts
each member's crop out of it with the similarity that maps one template onto the other (both
are dlib 5-point templates, so the map is exact up to resampling).

The built-in fusion ``fused-dlib-facenet`` (dlib ResNet + FaceNet) is in the model manifest
with its weights, learnt on LFW View 1 DevTrain (``benchmarks/bench_models.py``). FaceNet is
research use only, so the fusion is too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES, similarity_transform
from ..errors import ConfigurationError, DataFormatError
from ..models import get_spec
from ..registry import embedders
from .base import Embedder, check_crops

__all__ = ["FusedEmbedder", "fit_fusion", "FUSION_METHODS", "DEFAULT_FUSION"]

log = logging.getLogger(__name__)

FUSION_METHODS = ("logistic", "znorm")
DEFAULT_FUSION = "fused-dlib-facenet"


def fit_fusion(
    scores: npt.ArrayLike,
    mated: npt.ArrayLike,
    *,
    split: npt.ArrayLike | None = None,
    train: str = "train",
    method: str = "logistic",
) -> dict[str, Any]:
    """Learn fusion weights from comparison scores of a training split.

    Args:
        scores: (N, M) cosine scores of N comparisons by M models.
        mated: (N,) True for mated comparisons.
        split: optional (N,) split label per comparison; only rows equal to ``train`` are used,
            so the other rows (a test split) cannot influence the weights.
        method: ``"logistic"`` or ``"znorm"``.

    Returns:
        ``{"method", "weights" (M floats summing to 1), "scale", "offset", "n_mated", "n_nonmated"}``
        where ``llr ≈ offset + scale · Σ wᵢ sᵢ`` (logistic; for ``znorm`` the z-score sum).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(mated, dtype=bool)
    if s.ndim != 2 or y.shape != (s.shape[0],) or not np.all(np.isfinite(s)):
        raise DataFormatError(f"scores must be a finite (N, M) array with N labels; got {s.shape} and {y.shape}")
    if split is not None:
        keep = np.asarray(split).astype(str) == train
        if keep.shape != y.shape:
            raise DataFormatError(f"{keep.shape[0]} split labels for {y.shape[0]} comparisons")
        s, y = s[keep], y[keep]
    n_m, n_n = int(y.sum()), int((~y).sum())
    if n_m < 2 or n_n < 2:
        raise DataFormatError(f"the training split needs mated and non-mated comparisons; it has {n_m} and {n_n}")
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4, class_weight="balanced", max_iter=1000)
        lr.fit(s, y)
        raw = lr.coef_[0].astype(np.float64)
        offset = float(lr.intercept_[0])
    elif method == "znorm":
        raw = 1.0 / np.maximum(s[~y].std(axis=0), 1e-12)
        offset = float(-(s[~y].mean(axis=0) * raw).sum())
    else:
        raise ConfigurationError(f"unknown fusion method {method!r}; use one of {', '.join(FUSION_METHODS)}")
    if np.any(raw <= 0):
        bad = [i for i in range(len(raw)) if raw[i] <= 0]
        raise ConfigurationError(
            f"fusion gives model(s) {bad} a weight ≤ 0 ({raw.tolist()}): they add nothing on this data; leave them out"
        )
    total = float(raw.sum())
    return {
        "method": method,
        "weights": (raw / total).tolist(),
        "scale": total,
        "offset": offset,
        "n_mated": n_m,
        "n_nonmated": n_n,
    }


def _crop_map(outer: str, inner: str) -> npt.NDArray[np.float64] | None:
    """(2, 3) map from crops of template ``outer`` to crops of ``inner`` (None: the same)."""
    if outer == inner:
        return None
    a, b = TEMPLATES[outer], TEMPLATES[inner]
    # dlib-convention templates place the points at pixel corners (dlib's chip sampling); map centres
    return similarity_transform(a.dlib5, b.dlib5)


@embedders.register("fused")
class FusedEmbedder:
    """Several embedders whose cosine scores are fused with learnt weights (see the module doc).

    Args:
        model: a fusion in the model manifest (default ``fused-dlib-facenet``), which names the
            members (embedder backends) and their weights.
        members, weights: instead of ``model``: embedders (objects or registered names) and
            their fusion weights (from :func:`fit_fusion`); ``model_id`` then names the fusion.
        threads: onnxruntime threads for members built by name.
    """

    name = "fused"

    def __init__(
        self,
        *,
        model: str = DEFAULT_FUSION,
        members: Sequence[str | Embedder] | None = None,
        weights: Sequence[float] | None = None,
        model_id: str | None = None,
        threads: int | None = None,
    ) -> None:
        if members is None:
            spec = get_spec(model)
            if spec.kind != "fusion":
                raise ConfigurationError(f"model {model!r} is a {spec.kind}, not a fusion")
            entries: list[Mapping[str, Any]] = list(spec.extra.get("members", []))
            members = [str(e["backend"]) for e in entries]
            weights = [float(e["weight"]) for e in entries]
            model_id, version = spec.name, spec.version
        else:
            version = "1"
        if not members or weights is None or len(weights) != len(members):
            raise ConfigurationError("a fusion needs members and one weight per member")
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ConfigurationError(f"fusion weights must be finite and > 0, got {list(weights)}")
        self.weights = w / w.sum()
        opts: dict[str, Any] = {} if threads is None else {"threads": threads}
        self.members: list[Embedder] = [embedders.create(m, **opts) if isinstance(m, str) else m for m in members]
        # the crop: the member template with the largest margin (its crop contains all the others)
        self.template = max((m.template for m in self.members), key=lambda t: _margin(t))
        self._size = TEMPLATES[self.template].size
        self._maps = [_crop_map(self.template, m.template) for m in self.members]
        self.dim = int(sum(m.dim for m in self.members))
        tags = ";".join(
            f"{m.model_id}@{m.model_version}:{wi:.6f}" for m, wi in zip(self.members, self.weights, strict=True)
        )
        self.model_id = model_id or "fused"
        self.model_version = f"{version}-{hashlib.sha256(tags.encode()).hexdigest()[:12]}"
        self._scale = np.sqrt(self.weights).astype(np.float32)

    def member_crops(self, crops: npt.NDArray[np.uint8], index: int) -> list[npt.NDArray[np.uint8]]:
        """Member ``index``'s crops cut out of the fused template's crops."""
        m = self._maps[index]
        if m is None:
            return list(crops)
        size = TEMPLATES[self.members[index].template].size
        return [
            np.asarray(
                cv2.warpAffine(c, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT),
                dtype=np.uint8,
            )
            for c in crops
        ]

    def embed_members(self, crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        """Each member's unit embeddings of the crops."""
        x = check_crops(crops, self._size)
        return [m.embed(self.member_crops(x, i)) for i, m in enumerate(self.members)]

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Crops of the fusion's template → (N, Σ Dᵢ) unit rows: members' embeddings × sqrt(wᵢ)."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [v * s for v, s in zip(self.embed_members(crops), self._scale, strict=True)]
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def __repr__(self) -> str:
        names = ", ".join(f"{m.model_id}×{w:.3f}" for m, w in zip(self.members, self.weights, strict=True))
        return f"FusedEmbedder({self.model_id}: {names})"


def _margin(template: str) -> float:
    """How much of the face's surroundings a template's crop holds (crop side / eye-mouth extent)."""
    t = TEMPLATES[template]
    pts = t.dlib5
    extent = float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1]))
    return t.size / max(extent, 1e-9)
