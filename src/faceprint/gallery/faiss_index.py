"""One faiss index in memory, built from an :class:`~faceprint.gallery.spec.IndexPlan`.

:class:`FaissIndex` holds the faiss object, its search parameters and the template count and id
checksum it reflects. It knows nothing of storage: :mod:`faceprint.gallery.sqlite.index_file`
keeps one in step with the SQLite store and writes it to disk.

IVF centroids come from spherical k-means on a sample of the gallery
(:data:`TRAIN_POINTS_PER_CENTROID` per list). Above :data:`TWO_LEVEL_ABOVE` lists the k-means
is two-level (√nlist coarse clusters, then each split in proportion to its size), which costs
≈ √nlist times less than one k-means over every list for the same sample, so training stays a
small part of a rebuild even at 65k lists.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError
from .spec import IndexPlan, IndexSpec

__all__ = [
    "FaissIndex",
    "BuildCancelled",
    "faiss_module",
    "omp_threads",
    "train_centroids",
    "TRAIN_POINTS_PER_CENTROID",
]

log = logging.getLogger(__name__)

#: k-means training points per IVF centroid.
TRAIN_POINTS_PER_CENTROID = 32
#: List counts above this are trained by two-level k-means.
TWO_LEVEL_ABOVE = 256
_KMEANS_ITERATIONS = 10


class BuildCancelled(Exception):
    """A background build was asked to stop (the gallery closed, or was re-embedded)."""


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency of the gallery
        raise BackendUnavailableError("the gallery's vector index needs faiss: pip install faiss-cpu") from exc
    return faiss


@contextmanager
def omp_threads(n: int | None) -> Iterator[None]:
    """Run faiss with ``n`` OpenMP threads in this thread (None: leave as is)."""
    if not n:
        yield
        return
    faiss = faiss_module()
    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def training_size(nlist: int) -> int:
    return nlist * TRAIN_POINTS_PER_CENTROID


def train_centroids(x: npt.NDArray[np.float32], nlist: int, seed: int = 1234) -> npt.NDArray[np.float32]:
    """``nlist`` unit-norm centroids of ``x`` by spherical k-means (two-level above :data:`TWO_LEVEL_ABOVE`)."""
    faiss = faiss_module()
    x = np.ascontiguousarray(x, np.float32)
    d = x.shape[1]
    kw: dict[str, Any] = {"niter": _KMEANS_ITERATIONS, "spherical": True, "verbose": False}
    kw["min_points_per_centroid"] = 1  # small samples are expected; faiss would warn on stderr

    def kmeans(data: npt.NDArray[np.float32], k: int, s: int) -> npt.NDArray[np.float32]:
        if k >= data.shape[0]:
            return data[:k].copy()
        km = faiss.Kmeans(d, k, seed=s, max_points_per_centroid=max(1, data.shape[0] // k + 1), **kw)
        km.train(data)
        return np.asarray(km.centroids, np.float32)

    if nlist <= TWO_LEVEL_ABOVE:
        return kmeans(x, nlist, seed)
    top = kmeans(x, int(round(np.sqrt(nlist))), seed)
    coarse = faiss.IndexFlatIP(d)
    coarse.add(top)
    _, assign = coarse.search(x, 1)
    assign = assign.ravel()
    parts = [x[assign == c] for c in range(top.shape[0])]
    shares = _allocate(np.array([p.shape[0] for p in parts]), nlist)
    with omp_threads(1):  # many small k-means: OpenMP's spinning barriers cost more than they bring
        out = [kmeans(p, int(k), seed + 1 + c) for c, (p, k) in enumerate(zip(parts, shares, strict=True)) if k > 0]
    return np.ascontiguousarray(np.concatenate(out), np.float32)


def _allocate(sizes: npt.NDArray[np.int64], total: int) -> npt.NDArray[np.int64]:
    """Split ``total`` centroids over clusters in proportion to their sizes (none more than its size)."""
    share = np.minimum(sizes, np.floor(sizes * total / max(int(sizes.sum()), 1)).astype(np.int64))
    for c in np.argsort(-sizes):  # hand out the remainder, biggest clusters first
        if share.sum() >= total:
            break
        share[c] += min(int(sizes[c] - share[c]), total - int(share.sum()))
    return share


@dataclass(slots=True)
class FaissIndex:
    """A faiss index with template ids, and what it was built as.

    ``count``/``id_sum`` track the templates it holds (``id_sum`` is -1 once unknown);
    ``trained_n`` is the gallery size the IVF was trained at.
    """

    index: Any
    plan: IndexPlan
    dim: int
    trained_n: int = 0
    count: int = 0
    id_sum: int = 0

    # ----- building ---------------------------------------------------------------------

    @classmethod
    def empty(cls, plan: IndexPlan, dim: int) -> FaissIndex:
        """An untrained index of this plan (a flat one needs no training)."""
        faiss = faiss_module()
        if plan.kind == "flat":
            return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), plan, dim)
        return cls(faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT), plan, dim)

    @classmethod
    def build(
        cls,
        spec: IndexSpec,
        dim: int,
        n: int,
        sample: Callable[[int], npt.NDArray[np.float32]],
        rows: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]],
        *,
        threads: int | None = None,
        cancel: threading.Event | None = None,
    ) -> FaissIndex:
        """Build the index ``spec`` plans for ``n`` templates: train on ``sample(size)`` vectors,
        then add every ``(ids, vectors)`` chunk of ``rows`` (:class:`BuildCancelled` when ``cancel`` is set)."""
        t0 = time.perf_counter()
        plan = spec.plan(n, dim)
        fi = cls.empty(plan, dim)
        with omp_threads(threads):
            if plan.kind == "ivf":
                x = np.ascontiguousarray(sample(min(n, training_size(plan.nlist))), np.float32)
                ivf = faiss_module().extract_index_ivf(fi.index)
                ivf.quantizer.add(train_centroids(x, plan.nlist))
                fi.index.train(x)  # the quantizer is full: this trains only the codec (e.g. SQ8 ranges)
                fi.trained_n = n
            t1 = time.perf_counter()
            fi.set_search_params(spec)
            for ids, vecs in rows:
                if cancel is not None and cancel.is_set():
                    raise BuildCancelled(plan.factory)
                fi.add(ids, vecs)
        log.info(
            "built %s index of %d templates in %.1f s (training %.1f s)",
            plan.factory,
            fi.count,
            time.perf_counter() - t0,
            t1 - t0,
        )
        return fi

    def set_search_params(self, spec: IndexSpec) -> None:
        if self.plan.kind != "ivf":
            return
        faiss = faiss_module()
        ivf = faiss.extract_index_ivf(self.index)
        ivf.nprobe = spec.nprobe(int(ivf.nlist), max(self.count, self.trained_n), self.dim)
        hnsw = _hnsw_quantizer(ivf)
        if hnsw is not None:
            hnsw.hnsw.efSearch = int(spec.params.get("efSearch") or max(2 * int(ivf.nprobe), 16))

    # ----- contents -------------------------------------------------------------------------

    def add(self, ids: npt.NDArray[np.int64], vecs: npt.NDArray[np.float32]) -> None:
        if ids.size == 0:
            return
        self.index.add_with_ids(np.ascontiguousarray(vecs, np.float32), np.ascontiguousarray(ids, np.int64))
        self.count += int(ids.size)
        if self.id_sum >= 0:
            self.id_sum += int(ids.sum())

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        if ids.size == 0:
            return
        n = int(self.index.remove_ids(np.ascontiguousarray(ids, np.int64)))
        self.count -= n
        if n == ids.size and self.id_sum >= 0:
            self.id_sum -= int(ids.sum())
        else:  # some were not there: let the checksum against the store decide
            self.id_sum = -1

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def nprobe(self) -> int | None:
        if self.plan.kind != "ivf":
            return None
        return int(faiss_module().extract_index_ivf(self.index).nprobe)

    def search(
        self, q: npt.NDArray[np.float32], k: int, threads: int | None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        if self.index.ntotal == 0:
            return np.full((q.shape[0], k), -np.inf, np.float32), np.full((q.shape[0], k), -1, np.int64)
        with omp_threads(threads):
            d, i = self.index.search(q, k)
        return np.where(i < 0, -np.inf, d).astype(np.float32), i.astype(np.int64)

    def ids(self) -> npt.NDArray[np.int64]:
        """Every template id in the index (slow: for consistency checks)."""
        faiss = faiss_module()
        if self.plan.kind == "flat":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self.index)
        inv = ivf.invlists
        out = []
        for lst in range(ivf.nlist):
            n = inv.list_size(lst)
            if n:
                out.append(faiss.rev_swig_ptr(inv.get_ids(lst), n).copy())
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    # ----- files --------------------------------------------------------------------------------

    def write(self, f: BinaryIO) -> None:
        faiss = faiss_module()
        writer = faiss.PyCallbackIOWriter(f.write, 1 << 22)
        faiss.write_index(self.index, writer)
        del writer

    @classmethod
    def read(cls, f: BinaryIO, plan: IndexPlan, dim: int, *, trained_n: int, count: int, id_sum: int) -> FaissIndex:
        faiss = faiss_module()
        reader = faiss.PyCallbackIOReader(f.read, 1 << 22)
        index = faiss.read_index(reader)
        del reader
        return cls(index, plan, dim, trained_n=trained_n, count=count, id_sum=id_sum)


def _hnsw_quantizer(ivf: Any) -> Any:
    faiss = faiss_module()
    q = faiss.downcast_index(ivf.quantizer)
    return q if hasattr(q, "hnsw") else None
