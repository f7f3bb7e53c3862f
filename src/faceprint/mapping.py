"""Cross-model embedding maps: model A's embeddings → model B's space, learnt from paired images.

A map is fitted on the embeddings of the same face images by two models (:func:`fit_ridge`):
ridge regression with a bias, its strength chosen by k-fold cross-validation on the training
pairs, the output L2-normalised. Uses:

* **search across models**: map probes of model A into a gallery of model B
  (:meth:`EmbeddingMap.apply`), e.g. while a migration is pending;
* **gallery migration without images** (``faceprint gallery migrate G --map map.npz``):
  every stored template of model A is replaced by its mapped vector, tagged as model B;
* **disagreement screening** (:meth:`EmbeddingMap.screen`): on clean faces the mapped A
  embedding and B's own embedding of the same crop agree to a degree the map measured on its
  training pairs (``disagreement`` quantiles). An input where they disagree far beyond that
  (a trigger/backdoor patch that fires in one model only, an adversarial crop tuned against one
  model) is flagged. Its false-flag rate on clean data is the chosen quantile by construction on
  the training data; ``benchmarks/bench_models.py report`` measures it on LFW View 1 DevTest.

A map file (``.npz``, written 0600, no pickle) names the two models by ``model_id@version``;
applying it to embeddings of any other model is refused (:class:`~faceprint.errors.MapMismatchError`),
as is comparing embeddings of different dimensions without one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .embedding.base import l2_normalise
from .errors import ConfigurationError, DataFormatError, EmbeddingMismatchError, MapMismatchError

if TYPE_CHECKING:
    from .pipeline import FacePipeline

__all__ = ["EmbeddingMap", "fit_ridge", "load_map", "check_comparable", "paired_embeddings", "MAP_FORMAT"]

log = logging.getLogger(__name__)

MAP_FORMAT = "faceprint-embedding-map"
MAP_VERSION = 1
#: ridge strengths tried by cross-validation (relative to the number of training pairs)
ALPHAS = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
#: quantiles of the clean-data disagreement (1 - cosine) a map stores for screening
SCREEN_QUANTILES = (0.5, 0.9, 0.99, 0.999)


def _as_rows(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or not np.all(np.isfinite(a)):
        raise DataFormatError(f"{what} must be a non-empty finite (N, D) array, got shape {a.shape}")
    return a


@dataclass(frozen=True)
class EmbeddingMap:
    """A fitted map from ``source`` embeddings (model tag ``id@version``, ``source_dim``) to ``target``'s."""

    source: str
    target: str
    weights: npt.NDArray[np.float32]  # (source_dim, target_dim)
    bias: npt.NDArray[np.float32]  # (target_dim,)
    kind: str = "ridge"
    alpha: float = 0.0
    n_train: int = 0
    #: quantile → 1 - cos(map(a), b) on the training pairs (clean data), for :meth:`screen`
    disagreement: dict[str, float] = field(default_factory=dict)
    fitted_on: str = ""
    #: embedder backends that made the two sides (``{"source": ..., "target": ...}``), when known
    backends: dict[str, str] = field(default_factory=dict)

    @property
    def source_dim(self) -> int:
        return int(self.weights.shape[0])

    @property
    def target_dim(self) -> int:
        return int(self.weights.shape[1])

    def check_models(self, source: str | None = None, target: str | None = None) -> None:
        """Refuse embeddings of models this map was not fitted for (``MapMismatchError``)."""
        for given, fitted, side in ((source, self.source, "from"), (target, self.target, "to")):
            if given is not None and given != fitted:
                raise MapMismatchError(
                    f"this map was fitted {side} {fitted!r}, not {given!r}; fit one for these models with "
                    f"`faceprint map fit --from ... --to ...`"
                )

    def apply(self, x: npt.ArrayLike, *, source: str | None = None) -> npt.NDArray[np.float32]:
        """Map (N, source_dim) embeddings of model ``source`` (checked when given) to unit (N, target_dim)."""
        self.check_models(source=source)
        a = _as_rows(np.atleast_2d(x), "embeddings to map")
        if a.shape[1] != self.source_dim:
            raise EmbeddingMismatchError(
                f"this map takes {self.source_dim}-D embeddings of {self.source}; got {a.shape[1]}-D"
            )
        return l2_normalise(a @ self.weights.astype(np.float64) + self.bias.astype(np.float64))

    def disagreement_of(self, a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """1 - cos(map(a_i), b_i) for paired embeddings of the same inputs by the two models."""
        mapped = self.apply(a).astype(np.float64)
        bb = l2_normalise(_as_rows(np.atleast_2d(b), "target embeddings")).astype(np.float64)
        if bb.shape != mapped.shape:
            raise EmbeddingMismatchError(
                f"{bb.shape[0]} {bb.shape[1]}-D target embeddings for {mapped.shape[0]} inputs"
            )
        return np.asarray(1.0 - np.sum(mapped * bb, axis=1), dtype=np.float64)

    def screening_threshold(self, quantile: float = 0.999, factor: float = 1.0) -> float:
        """The disagreement above which :meth:`screen` flags: ``factor`` × the clean-data quantile."""
        key = f"{quantile:g}"
        if key not in self.disagreement:
            raise ConfigurationError(
                f"this map stores disagreement quantiles {', '.join(self.disagreement) or 'none'}; not {key}"
            )
        return float(self.disagreement[key]) * float(factor)

    def screen(
        self, a: npt.ArrayLike, b: npt.ArrayLike, *, quantile: float = 0.999, factor: float = 1.0
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
        """(flags, disagreements): inputs whose two models disagree beyond the calibrated level."""
        d = self.disagreement_of(a, b)
        return d > self.screening_threshold(quantile, factor), d

    def info(self) -> dict[str, Any]:
        return {
            "format": MAP_FORMAT,
            "version": MAP_VERSION,
            "kind": self.kind,
            "source": self.source,
            "target": self.target,
            "source_dim": self.source_dim,
            "target_dim": self.target_dim,
            "alpha": self.alpha,
            "n_train": self.n_train,
            "disagreement": self.disagreement,
            "fitted_on": self.fitted_on,
            "backends": self.backends,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the map as ``.npz`` (0600; no pickle): ``weights``, ``bias`` and a JSON ``info``."""
        from .gallery.files import atomic_write

        p = Path(path)
        if p.suffix.lower() != ".npz":
            raise ConfigurationError(f"a map is written as an .npz file; got {p.name!r}")
        if not p.parent.exists():
            raise ConfigurationError(f"output folder {p.parent} does not exist")
        info = json.dumps(self.info())
        atomic_write(
            p, lambda f: np.savez(f, weights=self.weights, bias=self.bias, info=np.array(info)), prefix=".faceprint-"
        )
        return p


def load_map(path: str | os.PathLike[str]) -> EmbeddingMap:
    """Read a map written by :meth:`EmbeddingMap.save`; ``DataFormatError`` for anything else."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"map file {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            w = np.asarray(z["weights"], np.float32)
            b = np.asarray(z["bias"], np.float32)
    except Exception as exc:  # not a zip, no such array, bad JSON, pickled data
        raise DataFormatError(f"{p} is not a faceprint embedding map ({type(exc).__name__}: {exc})") from exc
    if not isinstance(info, dict) or info.get("format") != MAP_FORMAT:
        raise DataFormatError(f"{p} is not a faceprint embedding map")
    if int(info.get("version", 0)) > MAP_VERSION:
        raise DataFormatError(f"{p} is an embedding map of a newer version than this faceprint reads")
    if w.ndim != 2 or b.shape != (w.shape[1],) or not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise DataFormatError(f"{p}: weights {w.shape} and bias {b.shape} do not make a map")
    return EmbeddingMap(
        source=str(info["source"]),
        target=str(info["target"]),
        weights=w,
        bias=b,
        kind=str(info.get("kind", "ridge")),
        alpha=float(info.get("alpha", 0.0)),
        n_train=int(info.get("n_train", 0)),
        disagreement={str(k): float(v) for k, v in (info.get("disagreement") or {}).items()},
        fitted_on=str(info.get("fitted_on", "")),
        backends={str(k): str(v) for k, v in (info.get("backends") or {}).items()},
    )


def _ridge(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised bias: centre, solve (XᵀX + α n I) W = XᵀY."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    g = xc.T @ xc + alpha * len(x) * np.eye(x.shape[1])
    w = np.linalg.solve(g, xc.T @ yc)
    return w, my - mx @ w


def _cv_alpha(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], folds: int, seed: int) -> float:
    """The alpha with the best mean cosine between mapped and true held-out embeddings."""
    n = len(x)
    k = min(folds, n)
    if k < 2:
        return ALPHAS[len(ALPHAS) // 2]
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, k)
    best, best_score = ALPHAS[0], -np.inf
    for alpha in ALPHAS:
        score = 0.0
        for i in range(k):
            test = parts[i]
            train = np.concatenate([parts[j] for j in range(k) if j != i])
            w, b = _ridge(x[train], y[train], alpha)
            pred = l2_normalise(x[test] @ w + b).astype(np.float64)
            score += float(np.sum(pred * l2_normalise(y[test]))) / n
        if score > best_score:
            best, best_score = alpha, score
    return best


def fit_ridge(
    source_vectors: npt.ArrayLike,
    target_vectors: npt.ArrayLike,
    *,
    source: str,
    target: str,
    alpha: float | None = None,
    folds: int = 5,
    seed: int = 0,
    fitted_on: str = "",
) -> EmbeddingMap:
    """Fit a ridge map from paired embeddings (row i of both: the same face image).

    Args:
        source_vectors, target_vectors: (N, Da) and (N, Db) embeddings of the same N images.
        source, target: the two models' tags (``model_id@version``), stored in the map.
        alpha: ridge strength (× N); None chooses it by ``folds``-fold cross-validation.
    """
    x = _as_rows(source_vectors, "source embeddings")
    y = _as_rows(target_vectors, "target embeddings")
    if len(x) != len(y):
        raise DataFormatError(f"{len(x)} source embeddings but {len(y)} target embeddings: they must be paired")
    if len(x) < 2:
        raise DataFormatError("fitting a map needs at least 2 paired embeddings")
    if alpha is not None and not (alpha >= 0 and np.isfinite(alpha)):
        raise ConfigurationError(f"alpha must be a finite number ≥ 0, got {alpha}")
    t0 = time.perf_counter()
    a = float(alpha) if alpha is not None else _cv_alpha(x, y, folds, seed)
    w, b = _ridge(x, y, a)
    emap = EmbeddingMap(source, target, w.astype(np.float32), b.astype(np.float32), "ridge", a, len(x), {}, fitted_on)
    d = emap.disagreement_of(x, y)
    quantiles = {f"{q:g}": float(np.quantile(d, q)) for q in SCREEN_QUANTILES}
    log.info(
        "fitted a ridge map %s → %s on %d pairs (alpha %g) in %.2f s",
        source,
        target,
        len(x),
        a,
        time.perf_counter() - t0,
    )
    return EmbeddingMap(source, target, emap.weights, emap.bias, "ridge", a, len(x), quantiles, fitted_on)


def check_comparable(a_model: str, a_dim: int, b_model: str, b_dim: int) -> None:
    """Refuse to compare embeddings of different dimensions, naming the fix (a map)."""
    if a_dim != b_dim:
        raise EmbeddingMismatchError(
            f"{a_model} embeddings are {a_dim}-D and {b_model} embeddings are {b_dim}-D: they cannot be compared "
            "without a fitted map (`faceprint map fit --from A --to B`)"
        )


def paired_embeddings(
    sources: Sequence[Any],
    a: FacePipeline,
    b: FacePipeline,
    *,
    select: str = "largest",
    batch: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[int], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Both pipelines' embeddings of the same face in each source image.

    The face is found once, by ``a``'s detector (``select``: ``"largest"`` or ``"central"``), and
    aligned for each embedder, so the two models see the same face. Images that cannot be read
    or hold no face are skipped (logged). Returns (indices of the sources used, A (N, Da), B (N, Db)).
    """
    from .alignment import align
    from .errors import FaceprintError
    from .pipeline import select_faces

    if select not in ("largest", "central"):
        raise ConfigurationError("paired embeddings need select='largest' or 'central'")
    used: list[int] = []
    va: list[npt.NDArray[np.float32]] = []
    vb: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(sources), batch):
        crops_a, crops_b = [], []
        for i in range(start, min(start + batch, len(sources))):
            try:
                img = a.load(sources[i])
                dets = select_faces(a.detect(img), img.shape, select)  # type: ignore[arg-type]
                if not dets:
                    log.info("no face in %s: skipped", sources[i])
                    continue
                crops_a.append(align(img, dets[0], a.embedder.template).image)
                crops_b.append(align(img, dets[0], b.embedder.template).image)
                used.append(i)
            except FaceprintError as exc:
                log.info("%s: skipped (%s)", sources[i], exc)
        if crops_a:
            va.append(a.embedder.embed(crops_a))
            vb.append(b.embedder.embed(crops_b))
        if progress is not None:
            progress(min(start + batch, len(sources)) - start)
    da, db = int(a.embedder.dim), int(b.embedder.dim)
    return (
        used,
        np.concatenate(va) if va else np.zeros((0, da), np.float32),
        np.concatenate(vb) if vb else np.zeros((0, db), np.float32),
    )
