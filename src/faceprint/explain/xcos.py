"""xCos-style patch similarity (after Lin et al., "xCos: An Explainable Cosine Metric for Face
Verification Task", 2021), without training anything.

At a late convolutional layer each chip is an h x w grid of C-channel feature vectors. When the
layer's channels reach the final linear layer through identity shortcuts (dlib's last four
residual blocks, 256 channels), each vector is first mapped into the embedding space by that
layer's weights, so a patch vector is "what this patch adds to the descriptor". Then:

* patch cosine ``c_p = cos(f_A[p], f_B[p])`` at each grid position p (the chips are aligned, so
  a position is the same part of the face in both);
* attention ``w_p = |f_A[p]| |f_B[p]| / sum_q |f_A[q]| |f_B[q]|``: how much of both descriptors
  comes from there;
* ``xcos = sum_p w_p c_p``, which approximates the final cosine (``reconstructed_score``), and
  the map is the contribution ``w_p c_p`` of each cell (the same grid for both chips, bilinear
  between cell centres).

The cosine between every patch of A and every patch of B gives the correspondences: for each
patch of A its most similar patch of B, the ``top_k`` with the largest similarity x attention kept.

How well ``xcos`` reconstructs the final cosine is measured in ``benchmarks/bench_explain.py``
and ``tests/explain/test_xcos.py`` (for the dlib ResNet at ``block13``, 4 x 4 x 256: mean
absolute error about 0.02 on LFW View 1 pairs, whose scores span about 0.6 to 1.0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES
from ..embedding.base import Embedder, model_tag
from ..errors import ConfigurationError
from ..registry import explainers
from .base import Correspondence, Explanation, check_chip_pair
from .features import feature_source

if TYPE_CHECKING:
    from ..testing import BackendCase

__all__ = ["XCosExplainer", "DEFAULT_LAYER"]

#: dlib ResNet: the 4 x 4 x 256 output of the third-last residual block.
DEFAULT_LAYER = "block13"


def upsample(grid: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.float32]:
    """An (h, w) grid of cell values to (size, size) pixels, bilinear between cell centres."""
    import cv2

    return np.asarray(cv2.resize(grid.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR), np.float32)


def _centres(h: int, w: int, size: int) -> npt.NDArray[np.float64]:
    """(x, y) chip-pixel centre of each of the h*w cells, row by row."""
    ys, xs = np.meshgrid((np.arange(h) + 0.5) * size / h, (np.arange(w) + 0.5) * size / w, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


@explainers.register("xcos")
class XCosExplainer:
    """Patch cosines at a late layer, weighted to reconstruct the score (see the module doc).

    Settings (keyword-only):
        layer: the feature layer to read (dlib ResNet: ``block1`` … ``block14``).
        top_k: correspondences to keep (0: none).
        threads: ONNX Runtime threads of the feature model built for an embedder (None: default).
    """

    name = "xcos"

    def __init__(self, *, layer: str = DEFAULT_LAYER, top_k: int = 8, threads: int | None = None) -> None:
        if not isinstance(layer, str) or not layer:
            raise ConfigurationError(f"layer must be a layer name, got {layer!r}")
        if not 0 <= int(top_k) <= 64:
            raise ConfigurationError(f"top_k must be between 0 and 64, got {top_k}")
        self.layer = layer
        self.top_k = int(top_k)
        self.threads = threads

    @classmethod
    def _conformance_cases(cls, name: str) -> list[BackendCase]:
        """Default settings; the map fails the occlusion-style check, which is the finding."""
        from ..testing import BackendCase

        reason = (
            "xcos maps where patch features agree, and for dlib's ResNet that is not where hiding pixels "
            "lowers the score (rank correlation with occlusion maps below 0 on mated LFW pairs; RESULTS.md)"
        )
        return [BackendCase(name, lambda ctx: cls(), expected_failures={"check_explain_points_at_similarity": reason})]

    def explain(self, chip_a: npt.NDArray[np.uint8], chip_b: npt.NDArray[np.uint8], embedder: Embedder) -> Explanation:
        size = TEMPLATES[embedder.template].size
        a, b = check_chip_pair(chip_a, chip_b, size, embedder.template)
        source = feature_source(embedder, threads=self.threads)
        desc, maps = source.feature_maps([a, b], self.layer)
        head = source.feature_head(self.layer)
        _, c, h, w = maps.shape
        patches = maps.astype(np.float64).reshape(2, c, h * w).transpose(0, 2, 1)  # (2, hw, C)
        if head is not None:
            patches = patches @ head.astype(np.float64)
        pa, pb = patches[0], patches[1]
        na, nb = np.linalg.norm(pa, axis=1), np.linalg.norm(pb, axis=1)
        dots = pa @ pb.T
        cos = dots / np.maximum(np.outer(na, nb), 1e-12)
        mass = na * nb
        total = float(mass.sum())
        attention = mass / total if total > 0 else np.full(h * w, 1.0 / (h * w))
        contribution = attention * np.diag(cos)
        grid = contribution.reshape(h, w)
        m = upsample(grid, size)
        return Explanation(
            method=self.name,
            score=float(np.clip(desc[0].astype(np.float64) @ desc[1], -1.0, 1.0)),
            map_a=m,
            map_b=m.copy(),
            model=model_tag(source),
            correspondences=self._matches(cos, attention, h, w, size),
            reconstructed_score=float(contribution.sum()),
            grids={
                "patch_cosine": np.diag(cos).reshape(h, w).astype(np.float32),
                "attention": attention.reshape(h, w).astype(np.float32),
                "contribution": grid.astype(np.float32),
            },
            settings={"layer": self.layer, "grid": [h, w], "projected": head is not None, "top_k": self.top_k},
        )

    def _matches(
        self, cos: npt.NDArray[np.float64], attention: npt.NDArray[np.float64], h: int, w: int, size: int
    ) -> tuple[Correspondence, ...]:
        """For each patch of A the most similar patch of B (cosine); the ``top_k`` whose
        similarity times A's attention is largest (strong matches of patches that weigh)."""
        if self.top_k == 0:
            return ()
        centres = _centres(h, w, size)
        best = cos.argmax(axis=1)
        weight = cos[np.arange(len(best)), best] * attention
        order = np.argsort(-weight, kind="stable")[: self.top_k]
        return tuple(
            Correspondence(
                a=(float(centres[p, 0]), float(centres[p, 1])),
                b=(float(centres[best[p], 0]), float(centres[best[p], 1])),
                similarity=float(cos[p, best[p]]),
                weight=float(weight[p]),
            )
            for p in order.tolist()
        )
