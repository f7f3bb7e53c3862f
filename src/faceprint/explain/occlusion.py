"""Occlusion (sliding window): hide each region of one chip and see how much the similarity drops.

For a grid of ``cells`` x ``cells`` square windows (side ``window`` x S, spread evenly so the
first touches the top-left corner and the last the bottom-right one), chip A is copied with the
window filled (by the chip's mean colour, or a blurred copy of it), and the cosine of that copy
with B is compared with the cosine of A with B. The drop is the window's importance. The map of
A gives each pixel the mean drop of the windows covering it; B likewise, with the roles swapped.

All ``2 * cells**2 + 2`` chips go through the embedder in one ``embed`` call (it batches them),
so the method needs nothing of the model but its embeddings and works with any embedder.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES
from ..embedding.base import Embedder, model_tag
from ..errors import ConfigurationError
from ..registry import explainers
from .base import Explanation, check_chip_pair

__all__ = ["OcclusionExplainer", "Fill", "filled", "window_boxes"]

log = logging.getLogger(__name__)

Fill = Literal["mean", "blur"]


def filled(chip: npt.NDArray[np.uint8], how: Fill) -> npt.NDArray[np.uint8]:
    """What a hidden region shows: the chip's mean colour everywhere, or a strongly blurred copy."""
    if how == "mean":
        mean = chip.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        return np.broadcast_to(mean, chip.shape).copy()
    if how == "blur":
        import cv2

        sigma = chip.shape[0] / 10.0
        return np.asarray(cv2.GaussianBlur(chip, (0, 0), sigmaX=sigma, sigmaY=sigma), dtype=np.uint8)
    raise ConfigurationError(f"unknown fill {how!r}; use 'mean' or 'blur'")


def window_boxes(size: int, cells: int, window: float) -> list[tuple[int, int, int]]:
    """(y0, x0, side) of each window, row by row: ``cells`` per side, evenly spread over the chip."""
    side = max(1, int(round(window * size)))
    offsets = np.linspace(0, size - side, cells).round().astype(int).tolist()
    return [(y, x, side) for y in offsets for x in offsets]


def _pixel_map(drops: npt.NDArray[np.float64], boxes: list[tuple[int, int, int]], size: int) -> npt.NDArray[np.float32]:
    total = np.zeros((size, size), np.float64)
    count = np.zeros((size, size), np.float64)
    for d, (y, x, s) in zip(drops.tolist(), boxes, strict=True):
        total[y : y + s, x : x + s] += d
        count[y : y + s, x : x + s] += 1.0
    return (total / np.maximum(count, 1.0)).astype(np.float32)


@explainers.register("occlusion")
class OcclusionExplainer:
    """Sliding-window occlusion (model-agnostic; the reference method).

    Settings (keyword-only):
        cells: windows per side (``cells**2`` per chip); 2 to 32.
        window: side of a window as a fraction of the chip side; windows overlap when
            ``window * cells > 1``. Between 0.05 and 0.75.
        fill: what a hidden window shows: ``"mean"`` (the chip's mean colour) or ``"blur"``.
    """

    name = "occlusion"

    def __init__(self, *, cells: int = 7, window: float = 0.25, fill: Fill = "mean") -> None:
        if not 2 <= int(cells) <= 32:
            raise ConfigurationError(f"cells must be between 2 and 32, got {cells}")
        if not 0.05 <= float(window) <= 0.75:
            raise ConfigurationError(f"window must be between 0.05 and 0.75 of the chip side, got {window}")
        if fill not in ("mean", "blur"):
            raise ConfigurationError(f"unknown fill {fill!r}; use 'mean' or 'blur'")
        self.cells = int(cells)
        self.window = float(window)
        self.fill: Fill = fill

    def occluded(self, chip: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint8]]:
        """One copy of ``chip`` per window, that window filled."""
        size = chip.shape[0]
        background = filled(chip, self.fill)
        out = []
        for y, x, s in window_boxes(size, self.cells, self.window):
            c = chip.copy()
            c[y : y + s, x : x + s] = background[y : y + s, x : x + s]
            out.append(c)
        return out

    def explain(self, chip_a: npt.NDArray[np.uint8], chip_b: npt.NDArray[np.uint8], embedder: Embedder) -> Explanation:
        size = TEMPLATES[embedder.template].size
        a, b = check_chip_pair(chip_a, chip_b, size, embedder.template)
        boxes = window_boxes(size, self.cells, self.window)
        n = len(boxes)
        vecs = embedder.embed([a, b, *self.occluded(a), *self.occluded(b)]).astype(np.float64)
        va, vb = vecs[0], vecs[1]
        score = float(va @ vb)
        drops_a = score - vecs[2 : 2 + n] @ vb
        drops_b = score - vecs[2 + n :] @ va
        k = self.cells
        return Explanation(
            method=self.name,
            score=score,
            map_a=_pixel_map(drops_a, boxes, size),
            map_b=_pixel_map(drops_b, boxes, size),
            model=model_tag(embedder),
            grids={
                "drop_a": drops_a.reshape(k, k).astype(np.float32),
                "drop_b": drops_b.reshape(k, k).astype(np.float32),
            },
            settings={"cells": self.cells, "window": self.window, "fill": self.fill, "embeddings": 2 * n + 2},
        )
