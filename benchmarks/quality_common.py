"""Shared by train_quality.py and bench_quality.py: detect, measure and embed (degraded) LFW images, cached.

One record per task ``(path, degradation kind, severity, seed)``: whether a face was found,
the component values and qualities, the six stability features and the chip's embedding.
Results are saved every 100 tasks to an ``.npz`` (no pickle), so an interrupted run resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.io import load_image
from faceprint.pipeline import select_faces
from faceprint.quality.components import MEASURED
from faceprint.quality.degrade import degrade
from faceprint.quality.fiqa import measure_faces
from faceprint.quality.stability import PERTURBATIONS, Perturber
from faceprint.quality.unified import feature_vector
from faceprint.registry import detectors, embedders
from faceprint.types import BBox, Detection, Landmarks, QualityComponent

log = logging.getLogger("quality_common")

Task = tuple[str, str, float, int]
FEATURES_FAST: tuple[str, ...] = tuple(f"q:{n}" for n in MEASURED)
FEATURES_FULL: tuple[str, ...] = FEATURES_FAST + tuple(f"stab:{p}" for p in PERTURBATIONS) + ("stab:mean",)


class Extractor:
    """dlib's HOG detector (no slow MMOD fallback) and dlib's ResNet (one thread), central face as for LFW."""

    def __init__(self, detector: str = "dlib-hog") -> None:
        self.detector = detectors.create(detector)
        self.embedder = embedders.create("dlib-resnet-onnx", threads=1)
        self.perturber = Perturber(150)

    def __call__(self, task: Task) -> dict[str, Any] | None:
        path, kind, severity, seed = task
        img = load_image(path)
        if kind != "none":
            img = degrade(img, kind, severity, seed=seed)
        dets = [d for d in select_faces(self.detector.detect(img), img.shape, "central") if d.landmarks]
        if not dets:
            return None
        m = measure_faces([img], dets[:1], embedder=self.embedder, perturber=self.perturber)
        c = m.components[0]
        assert m.stability is not None and m.embeddings is not None
        d = dets[0]
        assert d.landmarks is not None
        return {
            "q": np.array([c[n].quality for n in MEASURED]),
            "v": np.array([c[n].value for n in MEASURED]),
            "stab": m.stability[0],
            "emb": m.embeddings[0],
            "lm": d.landmarks.points,
            "arc": d.landmarks.scheme == "arcface5",
            "box": np.array(d.bbox.as_list()),
        }

    def components(self, task: Task, rec: dict[str, np.ndarray], i: int) -> dict[str, QualityComponent]:
        """The components of task ``i`` measured again from its stored detection (no detection, no embedding)."""
        path, kind, severity, seed = task
        img = load_image(path)
        if kind != "none":
            img = degrade(img, kind, severity, seed=seed)
        lm = Landmarks(rec["lm"][i], "arcface5" if rec["arc"][i] else "dlib5")
        det = Detection(BBox(*(float(v) for v in rec["box"][i])), 1.0, lm)
        return measure_faces([img], [det]).components[0]


def _empty(n: int) -> dict[str, np.ndarray]:
    k = len(MEASURED)
    return {
        "ok": np.zeros(n, bool),
        "done": np.zeros(n, bool),
        "q": np.zeros((n, k)),
        "v": np.zeros((n, k)),
        "stab": np.zeros((n, len(PERTURBATIONS) + 1)),
        "emb": np.zeros((n, 128), np.float32),
        "lm": np.zeros((n, 5, 2), np.float32),
        "arc": np.zeros(n, bool),
        "box": np.zeros((n, 4)),
    }


def run_cached(ext: Extractor, tasks: Sequence[Task], path: Path) -> dict[str, np.ndarray]:
    """Records for every task, computing only those not in the cache file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = np.array([f"{p}|{k}|{s:.6f}|{d}" for p, k, s, d in tasks])
    rec = _empty(len(tasks))
    if path.exists():
        with np.load(path, allow_pickle=False) as old:
            if old["keys"].shape == keys.shape and np.array_equal(old["keys"], keys):
                rec = {k: old[k].copy() for k in rec}
    todo = np.flatnonzero(~rec["done"])
    t0 = time.perf_counter()
    for j, i in enumerate(todo):
        r = ext(tasks[i])
        rec["done"][i] = True
        if r is not None:
            rec["ok"][i] = True
            for k, v in r.items():
                rec[k][i] = v
        if (j + 1) % 100 == 0 or j + 1 == len(todo):
            np.savez(path, keys=keys, **rec)
            rate = (time.perf_counter() - t0) / (j + 1)
            log.info(
                "%s: %d/%d (%.2f s each, %.0f s left)", path.name, j + 1, len(todo), rate, rate * (len(todo) - j - 1)
            )
    return rec


def remeasure(ext: Extractor, tasks: Sequence[Task], rec: dict[str, np.ndarray]) -> None:
    """Recompute every component of ``rec`` in place (after a change to the components), keeping detections."""
    for i in np.flatnonzero(rec["ok"]):
        c = ext.components(tasks[i], rec, i)
        rec["q"][i] = [c[n].quality for n in MEASURED]
        rec["v"][i] = [c[n].value for n in MEASURED]


def components_of(rec: dict[str, np.ndarray], i: int) -> dict[str, QualityComponent]:
    return {n: QualityComponent(rec["v"][i, j], rec["q"][i, j]) for j, n in enumerate(MEASURED)}


def feature_matrix(rec: dict[str, np.ndarray], features: Sequence[str]) -> np.ndarray:
    """(N, F) regressor inputs, made by the library's own :func:`feature_vector` (rows of failed tasks: 0)."""
    out = np.zeros((len(rec["ok"]), len(features)))
    for i in np.flatnonzero(rec["ok"]):
        out[i] = feature_vector(features, components_of(rec, i), rec["stab"][i])
    return out
