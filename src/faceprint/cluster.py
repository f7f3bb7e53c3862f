"""Identity clustering: group faces of unknown people, and measure how well a grouping matches.

Data flow::

    images ──FacePipeline.embed_many──▶ Embedding (N, D) ──cluster_embeddings──▶ labels (N,)
           ──export_cluster_folders──▶ OUTDIR/cluster_0001/…      (copies or links of the photos)
    labels + true identities ──pairwise_prf / bcubed_f1──▶ precision, recall, F1

Three methods, all on cosine similarity of L2-normalised embeddings (rows are normalised here,
so any non-zero vectors may be given):

``"chinese-whispers"`` (default)
    Graph clustering: faces are vertices, an edge joins two faces whose similarity is
    ``≥ threshold``, weighted by its margin above the threshold. The edges are found block by block, so 50k
    faces never need the 50k × 50k matrix at once, and only the edges are kept. The label
    propagation itself is dlib's C++ ``chinese_whispers`` (dlib is already a faceprint
    dependency; it is much faster than a Python loop over vertices). dlib's random generator
    cannot be seeded from Python, so ``seed`` shuffles the vertex numbering handed to dlib,
    which changes its visit order and tie-breaking; the same seed always gives the same result.
``"agglomerative"``
    scikit-learn average linkage on cosine distance, cut at ``1 − threshold``: two groups merge
    while their mean pairwise similarity exceeds ``threshold``. Needs the full distance matrix
    (N² / 2 float64), so it suits up to ~20k faces.
``"hdbscan"``
    scikit-learn HDBSCAN on the unit vectors with euclidean distance (a monotone function of
    cosine similarity, ``d = sqrt(2 − 2 s)``, which lets it use a tree instead of an N × N
    matrix). It needs no threshold and uses none unless one is passed explicitly; then a face
    stays in its cluster only if some fellow member is at least that similar. HDBSCAN's noise
    points become singletons. Needs scikit-learn, like ``"agglomerative"``.

Labels are canonical: clusters are numbered 0, 1, … by decreasing size (ties: the cluster with
the earliest member first), and a face in a cluster smaller than ``min_cluster_size`` (with
the default of 2: a face like no other) gets ``-1``, a *singleton*.

The default threshold is a calibrated operating point of the embedder from the model manifest
(``faceprint models list``) when a ``model`` id is given: ``"fmr=0.0001"``, not the verification
``"eer"`` point. Clustering N faces makes N²/2 comparisons, so a face meets about FMR × N
impostors above the threshold: at the EER point of dlib-resnet-v1 (FMR 1.3 %) each face of a
3,000-face collection has ~40 false neighbours and chinese whispers merges almost everyone
(``benchmarks/RESULTS.md``); the stricter the point, the larger the collection it suits.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    EmbeddingMismatchError,
    InvalidEmbeddingError,
)
from .types import Detection

if TYPE_CHECKING:
    from .io import ImageSource
    from .pipeline import FacePipeline, ImageResult, Selection

__all__ = [
    "ClusterMethod",
    "ExportMode",
    "METHODS",
    "ClusterResult",
    "FaceRef",
    "FaceClustering",
    "cluster_embeddings",
    "cluster_faces",
    "resolve_threshold",
    "similarity_edges",
    "check_export_folder",
    "export_cluster_folders",
    "pairwise_prf",
    "bcubed_f1",
]

log = logging.getLogger(__name__)

ClusterMethod = Literal["chinese-whispers", "agglomerative", "hdbscan"]
#: The clustering methods, default first.
METHODS: tuple[str, ...] = get_args(ClusterMethod)
ExportMode = Literal["copy", "link", "symlink"]

#: Bytes of similarity block computed at once by the edge search (float32).
_BLOCK_BYTES = 64 << 20
#: Above this many faces, agglomerative clustering warns about its N² memory.
_DENSE_WARN = 20_000


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ClusterResult:
    """Outcome of :func:`cluster_embeddings`.

    Attributes:
        labels: int64 (N,): cluster of each face, 0 … n_clusters − 1 by decreasing size;
            ``-1`` for a singleton (a face in no cluster of at least ``min_cluster_size``).
        n_clusters: number of clusters (labels ≥ 0).
        method: the method used.
        threshold: cosine similarity used for edges / the linkage cut / HDBSCAN's membership
            check; ``None`` for HDBSCAN without one.
        operating_point: name of the manifest operating point the threshold came from
            (``"fmr=0.0001"`` …), or ``None`` when it was given explicitly.
        min_cluster_size, seed: the settings used.
    """

    labels: npt.NDArray[np.int64]
    n_clusters: int
    method: str
    threshold: float | None
    operating_point: str | None = None
    min_cluster_size: int = 2
    seed: int = 0

    @property
    def n_singletons(self) -> int:
        return int(np.count_nonzero(self.labels < 0))

    @property
    def sizes(self) -> list[int]:
        """Size of each cluster, in label order (non-increasing)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_clusters).tolist()

    def members(self) -> list[npt.NDArray[np.int64]]:
        """Indices of the faces of each cluster, in label order."""
        order = np.argsort(self.labels, kind="stable")
        sorted_labels = self.labels[order]
        bounds = np.searchsorted(sorted_labels, np.arange(self.n_clusters + 1))
        return [order[bounds[k] : bounds[k + 1]] for k in range(self.n_clusters)]

    def settings(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "threshold": None if self.threshold is None else round(float(self.threshold), 6),
            "operating_point": self.operating_point,
            "min_cluster_size": self.min_cluster_size,
            "seed": self.seed,
        }


# --- validation and thresholds -----------------------------------------------------------------


def _check_vectors(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """(N, D) finite non-zero rows → L2-normalised float32 copy."""
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise InvalidEmbeddingError(f"expected a 2-D (N, D) array of embeddings, got shape {x.shape}")
    if x.shape[0] == 0:
        raise InvalidEmbeddingError("no embeddings to cluster (N = 0)")
    if x.shape[1] == 0:
        raise InvalidEmbeddingError(f"embeddings have zero length (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InvalidEmbeddingError(f"embeddings must be real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=True)
    bad = ~np.all(np.isfinite(x), axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InvalidEmbeddingError(
            f"{rows.size} embeddings contain NaN or infinite values (first at row {int(rows[0])}); "
            "drop or re-embed them"
        )
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidEmbeddingError(f"embedding at row {int(np.flatnonzero(norms[:, 0] == 0)[0])} has zero norm")
    x /= norms
    return x


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigurationError(f"unknown clustering method {method!r}; choose one of: {', '.join(METHODS)}")
    return method


def resolve_threshold(
    threshold: float | None, model: str | None, operating_point: str = "fmr=0.0001"
) -> tuple[float | None, str | None]:
    """(threshold, operating point name): ``threshold`` as given, else the model's calibrated one.

    ``model`` is a manifest model id (``"dlib-resnet-v1"``) or an embedding tag
    (``"dlib-resnet-v1@1-55533b28a958"``). Returns ``(None, None)`` when neither is given.
    """
    if threshold is not None:
        t = float(threshold)
        if not -1.0 <= t <= 1.0:
            raise ConfigurationError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        return t, None
    if model is None:
        return None, None
    from .scoring import operating_point as stored_point

    point = stored_point(model.split("@", 1)[0], operating_point)
    return float(point.threshold), point.name


def _canonical(raw: npt.NDArray[np.integer], min_size: int) -> tuple[npt.NDArray[np.int64], int]:
    """Relabel: clusters ≥ min_size numbered by (size desc, first member), others -1."""
    n = raw.shape[0]
    _, first, inverse, counts = np.unique(raw, return_index=True, return_inverse=True, return_counts=True)
    keep = counts >= min_size
    order = np.lexsort((first, -counts))  # by size desc, then first index
    order = order[keep[order]]
    new = np.full(counts.shape[0], -1, dtype=np.int64)
    new[order] = np.arange(order.shape[0], dtype=np.int64)
    labels = new[inverse.reshape(n)]
    return labels, int(order.shape[0])


# --- the methods -------------------------------------------------------------------------------


def similarity_edges(
    x: npt.NDArray[np.float32], threshold: float, *, max_edges: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """All pairs ``i < j`` of unit rows with ``x[i] · x[j] ≥ threshold``: (i, j, similarity).

    Computed in row blocks of about 64 MiB of similarities, each against the rows after it.
    """
    n = x.shape[0]
    rows = max(1, min(n, _BLOCK_BYTES // (4 * max(n, 1))))
    ii: list[npt.NDArray[np.int64]] = []
    jj: list[npt.NDArray[np.int64]] = []
    ww: list[npt.NDArray[np.float32]] = []
    total = 0
    for a in range(0, n, rows):
        b = min(n, a + rows)
        s = x[a:b] @ x[a:].T  # (b - a, n - a); column c is row a + c
        s[np.tril_indices(b - a, 0, s.shape[1])] = -np.inf  # keep j > i only
        r, c = np.nonzero(s >= threshold)
        total += r.size
        if max_edges is not None and total > max_edges:
            raise ConfigurationError(
                f"threshold {threshold:.4f} links more than {max_edges:,} pairs of faces; "
                "raise the threshold (or max_edges)"
            )
        ii.append(r.astype(np.int64) + a)
        jj.append(c.astype(np.int64) + a)
        ww.append(s[r, c].astype(np.float32))
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(ww)


def _chinese_whispers(
    x: npt.NDArray[np.float32], threshold: float, seed: int, max_edges: int | None
) -> npt.NDArray[np.int64]:
    import dlib

    n = x.shape[0]
    i, j, w = similarity_edges(x, threshold, max_edges=max_edges)
    raw = np.arange(n, dtype=np.int64)  # isolated faces keep their own label
    if i.size == 0:
        return raw
    # only vertices with an edge go to dlib, under a seeded random numbering
    nodes = np.unique(np.concatenate([i, j]))
    rng = np.random.default_rng(seed)
    new_id = np.empty(n, dtype=np.int64)
    new_id[nodes] = rng.permutation(nodes.size)
    # weight = margin above the threshold: a pair just over it is weak evidence, a near-duplicate
    # strong; on LFW this keeps chance edges from chaining people together far better than
    # weighting by the similarity itself (which is almost constant above a high threshold)
    margin = (w.astype(np.float64) - threshold) / max(1.0 - threshold, 1e-6) + 1e-3
    edges = list(zip(new_id[i].tolist(), new_id[j].tolist(), margin.tolist(), strict=True))
    log.debug("chinese whispers: %d faces, %d with edges, %d edges", n, nodes.size, len(edges))
    labels = np.asarray(dlib.chinese_whispers(edges), dtype=np.int64)
    raw[nodes] = n + labels[new_id[nodes]]  # offset: never collide with an isolated face's own index
    return raw


def _sklearn(name: str) -> Any:
    try:
        import sklearn.cluster as skc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError(
            f"clustering with {name!r} needs scikit-learn: pip install 'scikit-learn>=1.3' "
            "(or use method='chinese-whispers', which needs only dlib)"
        ) from exc
    return skc


def _agglomerative(x: npt.NDArray[np.float32], threshold: float) -> npt.NDArray[np.int64]:
    n = x.shape[0]
    if n > _DENSE_WARN:
        log.warning(
            "agglomerative clustering of %d faces needs about %.1f GB for its distance matrix; "
            "chinese-whispers does not",
            n,
            n * (n - 1) / 2 * 8 / 1e9,
        )
    skc = _sklearn("agglomerative")
    model = skc.AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=max(1.0 - threshold, 0.0),
        compute_full_tree=True,
    )
    return np.asarray(model.fit_predict(x.astype(np.float64)), dtype=np.int64)


def _hdbscan(x: npt.NDArray[np.float32], threshold: float | None, min_cluster_size: int) -> npt.NDArray[np.int64]:
    skc = _sklearn("hdbscan")
    model = skc.HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean", copy=True)
    labels = np.asarray(model.fit_predict(x.astype(np.float64)), dtype=np.int64)
    if threshold is not None:
        # HDBSCAN may hang a face like no other on some cluster; with a threshold, a face stays
        # in its cluster only if some other member is at least that similar
        for k in np.unique(labels[labels >= 0]):
            idx = np.flatnonzero(labels == k)
            for a in range(0, idx.size, 4096):
                s = x[idx[a : a + 4096]] @ x[idx].T
                s[np.arange(s.shape[0]), a + np.arange(s.shape[0])] = -np.inf
                lone = idx[a : a + 4096][s.max(axis=1) < threshold]
                labels[lone] = -1
    # noise (-1) → each its own raw label, so _canonical makes them singletons
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return labels


def cluster_embeddings(
    vectors: npt.ArrayLike,
    *,
    method: ClusterMethod | str = "chinese-whispers",
    threshold: float | None = None,
    model: str | None = None,
    operating_point: str = "fmr=0.0001",
    min_cluster_size: int = 2,
    seed: int = 0,
    max_edges: int | None = 50_000_000,
) -> ClusterResult:
    """Group embeddings of the same (unknown) person.

    Args:
        vectors: float (N, D) embeddings, N ≥ 1; rows are L2-normalised here.
        method: ``"chinese-whispers"``, ``"agglomerative"`` or ``"hdbscan"`` (see the module docs).
        threshold: cosine similarity at which two faces count as the same person (an edge of the
            graph; the average-linkage cut is ``1 − threshold``). Default: the calibrated
            ``operating_point`` of ``model`` from the manifest. HDBSCAN uses one only when it is
            given here (see the module docs).
        model: model id or embedding tag whose operating point gives the default threshold.
        operating_point: which calibrated point to use (``"fmr=0.0001"``, ``"fmr=0.001"``,
            ``"eer"`` …).
        min_cluster_size: clusters with fewer faces become singletons (label ``-1``); ≥ 1
            (≥ 2 for HDBSCAN). With 1 every face is in a cluster.
        seed: makes chinese whispers reproducible (the other methods are deterministic).
        max_edges: chinese whispers refuses a threshold linking more pairs than this (memory
            guard); ``None``: no limit.

    Returns:
        :class:`ClusterResult` with canonical labels (largest cluster 0; ``-1`` singletons).

    Raises:
        InvalidEmbeddingError: wrong shape, empty input, NaN/inf or zero-norm rows.
        ConfigurationError: unknown method, bad threshold/min_cluster_size, or no threshold
            and no model for a method that needs one.
    """
    method = _check_method(str(method))
    if isinstance(min_cluster_size, bool) or int(min_cluster_size) != min_cluster_size or min_cluster_size < 1:
        raise ConfigurationError(f"min_cluster_size must be an integer ≥ 1, got {min_cluster_size!r}")
    min_cluster_size = int(min_cluster_size)
    if method == "hdbscan" and min_cluster_size < 2:
        raise ConfigurationError("hdbscan needs min_cluster_size ≥ 2")
    x = _check_vectors(vectors)
    thr, point = resolve_threshold(threshold, None if method == "hdbscan" else model, operating_point)
    if thr is None and method != "hdbscan":
        raise ConfigurationError(
            f"{method} needs a similarity threshold: pass threshold=… or model=… "
            "(e.g. model='dlib-resnet-v1' uses its calibrated operating point)"
        )
    n = x.shape[0]
    if n < 2 or (method == "hdbscan" and n < min_cluster_size):
        raw = np.arange(n, dtype=np.int64)
    elif method == "chinese-whispers":
        assert thr is not None
        raw = _chinese_whispers(x, thr, int(seed), max_edges)
    elif method == "agglomerative":
        assert thr is not None
        raw = _agglomerative(x, thr)
    else:
        raw = _hdbscan(x, thr, min_cluster_size)
    labels, k = _canonical(raw, min_cluster_size)
    labels.setflags(write=False)
    log.info("%s: %d faces → %d clusters, %d singletons", method, n, k, int((labels < 0).sum()))
    return ClusterResult(labels, k, method, thr, point, min_cluster_size, int(seed))


# --- faces in images ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FaceRef:
    """One face of one image: the image as the pipeline named it and the face's index in it."""

    source: str
    face_index: int
    detection: Detection

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.source,
            "face_index": self.face_index,
            "bbox": [round(v, 2) for v in self.detection.bbox.as_list()],
        }


@dataclass(frozen=True, slots=True, eq=False)
class FaceClustering:
    """Outcome of :func:`cluster_faces`: the faces, their embeddings (N, D) and their clusters."""

    faces: tuple[FaceRef, ...]
    embeddings: npt.NDArray[np.float32]
    result: ClusterResult
    model: str
    images: int = 0
    images_without_face: int = 0
    failed: tuple[ImageResult, ...] = field(default=())

    def clusters(self) -> list[list[FaceRef]]:
        """Faces of each cluster, largest cluster first."""
        return [[self.faces[i] for i in idx] for idx in self.result.members()]

    def singletons(self) -> list[FaceRef]:
        return [f for f, lab in zip(self.faces, self.result.labels, strict=True) if lab < 0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``faceprint cluster`` writes."""
        return {
            "model": self.model,
            "settings": self.result.settings(),
            "images": self.images,
            "faces": len(self.faces),
            "images_without_face": self.images_without_face,
            "failed": [
                {"image": r.source, "error": type(r.error).__name__, "message": str(r.error)} for r in self.failed
            ],
            "n_clusters": self.result.n_clusters,
            "clusters": [
                {"id": _folder_name(k), "size": len(members), "faces": [f.to_dict() for f in members]}
                for k, members in enumerate(self.clusters())
            ],
            "singletons": [f.to_dict() for f in self.singletons()],
        }


def cluster_faces(
    sources: Iterable[ImageSource],
    pipeline: FacePipeline,
    *,
    method: ClusterMethod | str = "chinese-whispers",
    threshold: float | None = None,
    operating_point: str = "fmr=0.0001",
    min_cluster_size: int = 2,
    seed: int = 0,
    select: Selection = "all",
    workers: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    total: int | None = None,
    dask: Any = None,
) -> FaceClustering:
    """Embed every face of every image (``pipeline.embed_many``) and cluster them.

    ``workers`` / ``dask`` say where the embedding runs (:meth:`FacePipeline.embed_many`:
    ``dask`` is a ``distributed.Client``, a scheduler address or ``"local"``).

    The default threshold is the pipeline embedder's calibrated ``operating_point``. Images that
    cannot be read are kept in ``failed`` and do not stop the run; images with no face count in
    ``images_without_face``. With no face at all the result has zero clusters.
    """
    method = _check_method(str(method))
    model_id = None if method == "hdbscan" else pipeline.embedder.model_id
    thr, point = resolve_threshold(threshold, model_id, operating_point)  # fail before the slow part
    refs: list[FaceRef] = []
    vecs: list[npt.NDArray[np.float32]] = []
    failed: list[ImageResult] = []
    model: str | None = None
    images = no_face = 0
    stream = pipeline.embed_many(sources, select=select, workers=workers, progress=progress, total=total, dask=dask)
    for res in stream:
        images += 1
        if res.error is not None:
            failed.append(res)
            continue
        if not res.faces:
            no_face += 1
        for k, face in enumerate(res.faces):
            if face.embedding is None:
                continue
            if model is None:
                model = face.embedding.model
            elif face.embedding.model != model:
                raise EmbeddingMismatchError(f"cannot cluster embeddings of {model} with {face.embedding.model}")
            refs.append(FaceRef(res.source, k, face.detection))
            vecs.append(face.embedding.vector)
    dim = int(getattr(pipeline.embedder, "dim", 0) or (vecs[0].shape[0] if vecs else 0))
    emb = np.asarray(vecs, dtype=np.float32).reshape(len(vecs), dim)
    if refs:
        result = cluster_embeddings(emb, method=method, threshold=thr, min_cluster_size=min_cluster_size, seed=seed)
        result = ClusterResult(
            result.labels, result.n_clusters, result.method, result.threshold, point, min_cluster_size, int(seed)
        )
    else:
        result = ClusterResult(np.zeros(0, np.int64), 0, method, thr, point, min_cluster_size, int(seed))
    tag = model or pipeline.model_tag
    return FaceClustering(tuple(refs), emb, result, tag, images, no_face, tuple(failed))


# --- folders of photos per cluster -------------------------------------------------------------


def _folder_name(label: int) -> str:
    return f"cluster_{label + 1:04d}"


#: Folder (under the export folder) for photos whose faces are singletons.
SINGLETONS_FOLDER = "singletons"


def check_export_folder(outdir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """The export folder, checked: it must be absent, an empty folder, or ``force`` must be set."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} exists and is not a folder; choose a new folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigurationError(
            f"{out} is not empty; choose a new or empty folder, or pass --force "
            "(force=True) to add to it (existing files are never overwritten)"
        )
    return out


def _place(src: Path, folder: Path, mode: ExportMode) -> tuple[Path, str]:
    """Copy or link ``src`` into ``folder`` under a name that exists nowhere there yet."""
    stem, suffix = src.stem, src.suffix
    for n in range(1, 1_000_000):
        dst = folder / (src.name if n == 1 else f"{stem}_{n}{suffix}")
        if dst.exists() or dst.is_symlink():
            continue
        try:
            if mode == "copy":
                with open(src, "rb") as fin, open(dst, "xb") as fout:  # "x": never overwrite
                    shutil.copyfileobj(fin, fout)
                shutil.copystat(src, dst)
                return dst, "copy"
            if mode == "link":
                try:
                    os.link(src, dst)
                    return dst, "hardlink"
                except FileExistsError:
                    raise
                except OSError as exc:  # another filesystem, or links not allowed
                    log.warning("cannot hard-link %s (%s); making a symbolic link instead", src, exc)
            os.symlink(src.resolve(), dst)
            return dst, "symlink"
        except FileExistsError:
            continue
    raise ConfigurationError(f"no free file name for {src.name} in {folder}")  # pragma: no cover


def export_cluster_folders(
    clustering: FaceClustering,
    outdir: str | os.PathLike[str],
    *,
    mode: ExportMode = "copy",
    force: bool = False,
) -> list[dict[str, str]]:
    """Copy or link each photo into ``outdir/cluster_0001/`` … (and ``outdir/singletons/``).

    A photo with faces in several clusters goes into each of them (once per folder). Originals
    are never moved or changed, and no existing file is overwritten: a name already taken gets
    ``_2``, ``_3`` … ``mode``: ``"copy"``, ``"link"`` (hard link, or a symbolic link where a hard
    link is impossible) or ``"symlink"`` (absolute symbolic links). Hard links share the file's
    data with the original: editing one edits both.

    Returns one ``{"image", "path", "folder", "kind"}`` row per file written.
    """
    if mode not in get_args(ExportMode):
        raise ConfigurationError(f"unknown export mode {mode!r}; choose one of: {', '.join(get_args(ExportMode))}")
    out = check_export_folder(outdir, force=force)
    groups: list[tuple[str, list[FaceRef]]] = [(_folder_name(k), m) for k, m in enumerate(clustering.clusters())]
    groups.append((SINGLETONS_FOLDER, clustering.singletons()))
    written: list[dict[str, str]] = []
    for name, members in groups:
        images = list(dict.fromkeys(f.source for f in members))  # each photo once per folder, in order
        if not images:
            continue
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for image in images:
            dst, kind = _place(Path(image), folder, mode)
            written.append({"image": image, "path": str(dst), "folder": name, "kind": kind})
    log.info("wrote %d files into %s", len(written), out)
    return written


# --- evaluation --------------------------------------------------------------------------------


def _codes(labels: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
    """Integer codes of a label vector; every integer ``-1`` becomes a code of its own."""
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ConfigurationError(f"{what} must be a 1-D sequence of labels, got shape {a.shape}")
    _, codes = np.unique(a, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    if a.dtype.kind in "iu":
        single = a == -1
        if single.any():
            codes[single] = codes.max(initial=0) + 1 + np.arange(int(single.sum()))
    return codes


def _contingency(
    labels_true: npt.ArrayLike, labels_pred: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Sparse contingency: (true code, pred code, count) of each non-empty cell, plus N."""
    t = _codes(labels_true, "labels_true")
    p = _codes(labels_pred, "labels_pred")
    if t.shape != p.shape:
        raise ConfigurationError(f"labels_true has {t.size} items but labels_pred has {p.size}")
    if t.size == 0:
        raise ConfigurationError("no labels to compare")
    cells, counts = np.unique(np.stack([t, p], axis=1), axis=0, return_counts=True)
    return cells[:, 0], cells[:, 1], counts.astype(np.int64), int(t.size)


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def pairwise_prf(labels_true: npt.ArrayLike, labels_pred: npt.ArrayLike) -> tuple[float, float, float]:
    """Pairwise (precision, recall, F1) of a clustering.

    Over all pairs of items: precision = pairs put together that belong together / pairs put
    together; recall = pairs put together that belong together / pairs that belong together.
    An integer label ``-1`` (in either vector) is a singleton, in no pair. With no pair put
    together precision is 1.0 (nothing claimed), with no pair belonging together recall is 1.0.
    """
    ti, pi, nij, _n = _contingency(labels_true, labels_pred)
    pred_sizes = np.bincount(pi, weights=nij).astype(np.int64)
    true_sizes = np.bincount(ti, weights=nij).astype(np.int64)
    both = int(np.sum(nij * (nij - 1) // 2))
    pred_pairs = int(np.sum(pred_sizes * (pred_sizes - 1) // 2))
    true_pairs = int(np.sum(true_sizes * (true_sizes - 1) // 2))
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    return precision, recall, _f1(precision, recall)


def bcubed_f1(labels_true: npt.ArrayLike, labels_pred: npt.ArrayLike) -> tuple[float, float, float]:
    """BCubed (precision, recall, F1) (Bagga & Baldwin 1998; Amigó et al. 2009).

    For each item: precision = share of its predicted cluster with its true identity, recall =
    share of its true identity in its predicted cluster; both averaged over items, F1 their
    harmonic mean. An integer label ``-1`` is a singleton (a cluster of its own).
    """
    ti, pi, nij, n = _contingency(labels_true, labels_pred)
    pred_sizes = np.bincount(pi, weights=nij)
    true_sizes = np.bincount(ti, weights=nij)
    sq = nij.astype(np.float64) ** 2
    precision = float(np.sum(sq / pred_sizes[pi]) / n)
    recall = float(np.sum(sq / true_sizes[ti]) / n)
    return precision, recall, _f1(precision, recall)
