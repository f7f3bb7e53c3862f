"""One faiss index in memory, built from an :class:`~faceprint.gallery.spec.IndexPlan`.

:class:`FaissIndex` holds the faiss object, its search parameters and the template count and id
checksum it reflects. It knows nothing of storage: :mod:`faceprint.gallery.sqlite.index_file`
keeps one in step with the SQLite store and writes it to disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError
from .spec import IndexPlan, IndexSpec

__all__ = ["FaissIndex", "faiss_module", "omp_threads", "TRAIN_POINTS_PER_CENTROID"]

log = logging.getLogger(__name__)

#: k-means training points per IVF centroid (half as many above 2048 lists, to bound training time).
TRAIN_POINTS_PER_CENTROID = 32


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
    per_centroid = TRAIN_POINTS_PER_CENTROID if nlist <= 2048 else TRAIN_POINTS_PER_CENTROID // 2
    return nlist * per_centroid


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
        index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.spherical = True
        ivf.cp.niter = 10
        ivf.cp.seed = 1234
        ivf.cp.min_points_per_centroid = 16
        ivf.cp.max_points_per_centroid = training_size(plan.nlist) // max(plan.nlist, 1)
        ivf.cp.verbose = False
        return cls(index, plan, dim)

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
    ) -> FaissIndex:
        """Build the index ``spec`` plans for ``n`` templates: train on ``sample(size)`` vectors,
        then add every ``(ids, vectors)`` chunk of ``rows``."""
        t0 = time.perf_counter()
        plan = spec.plan(n, dim)
        fi = cls.empty(plan, dim)
        with omp_threads(threads):
            if plan.kind == "ivf":
                fi.index.train(np.ascontiguousarray(sample(min(n, training_size(plan.nlist))), np.float32))
                fi.trained_n = n
            fi.set_search_params(spec)
            for ids, vecs in rows:
                fi.add(ids, vecs)
        log.info("built %s index of %d templates in %.1f s", plan.factory, fi.count, time.perf_counter() - t0)
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
