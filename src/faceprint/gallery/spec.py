"""The vector index of a gallery, described by one string in faiss ``index_factory`` style.

::

    "Flat"                      exact search, always
    "IVF4096,Flat"              inverted file, 4,096 lists, full vectors
    "IVF4096,SQ8"               the same with 8-bit scalar-quantised vectors (4× less memory)
    "IVF4096_HNSW32,Flat"       the lists found through an HNSW graph of the centroids
    "IVF,SQ8"                   IVF with the list count chosen from the gallery size (see below)
    "IVF,SQ8,RFlat"             … and every hit re-scored exactly from the stored float32 vectors
    "IVF,Flat;nprobe=64"        … with search parameters after a ``;`` (``name=value``, ``,``-separated)

The part before ``;`` is handed to :func:`faiss.index_factory`, with the list count filled in
when it is left out; a trailing ``,RFlat`` (faiss's refinement by exact distances) is done by
the gallery from its store instead of keeping a second, full-precision copy in memory, so the
scores a search returns are exact cosines while the index holds 8-bit codes.

An IVF spec without a list count is *auto*: the gallery is searched exactly
(``Flat``) while ``templates × dim`` ≤ :data:`EXACT_BUDGET`, then by IVF with
:func:`auto_nlist` lists, retrained when the gallery has grown :data:`RETRAIN_GROWTH` times since
the last training. Parameters:

``nprobe``        lists searched per query (default :func:`auto_nprobe`);
``exact_limit``   templates up to which search stays exact (default ``EXACT_BUDGET // dim``);
                  ``0`` trains the IVF from the first template;
``efSearch``      for an HNSW quantizer (default ``2 × nprobe``).

Galleries made by faceprint 0.1 stored four loose settings instead (``type``, ``exact_limit``,
``nlist``, ``nprobe``); :func:`legacy_spec` maps them to the equivalent spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "IndexSpec",
    "IndexPlan",
    "DEFAULT_SPEC",
    "LEGACY_DEFAULT_SPEC",
    "EXACT_BUDGET",
    "SCAN_BUDGET",
    "RETRAIN_GROWTH",
    "auto_nlist",
    "auto_nprobe",
    "legacy_spec",
]

#: The spec of a new gallery: exact while small, then IVF with 8-bit codes (4× less memory than
#: float32, ≈ 2× faster to scan at 512-D), every hit re-scored exactly from the store.
DEFAULT_SPEC = "IVF,SQ8,RFlat"
#: The spec of a gallery made before specs existed (faceprint 0.1 with default settings).
LEGACY_DEFAULT_SPEC = "IVF,Flat"
#: Search stays exact while templates × dim ≤ this (single-query exact search then takes
#: ≲ 0.5 ms on one core; measured by benchmarks/bench_gallery.py --sweep).
EXACT_BUDGET = 4_000_000
#: Vector components (multiply-adds) an IVF search may scan by default: ≈ 1.5–2 ms on one core
#: with float32 codes; 8-bit codes scan about twice as fast, so they get :data:`SQ8_BUDGET_FACTOR` times more.
SCAN_BUDGET = 10_000_000
SQ8_BUDGET_FACTOR = 1.5
#: An auto IVF is retrained once the gallery has grown this many times since training.
RETRAIN_GROWTH = 4

_PARAMS = {"nprobe", "exact_limit", "efSearch"}
_IVF = re.compile(r"^IVF(?P<nlist>\d*)(?P<quantizer>_[A-Za-z0-9]+)?,(?P<codec>[A-Za-z0-9x_]+)(?P<refine>,RFlat)?$")


def auto_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: the power of two nearest 4·√n, within [64, 65536].

    More, smaller lists reach the same recall scanning a smaller share of the gallery (at 1M ×
    512, nlist 4096 needs ≈ 1.6 % for recall@10 0.99, nlist 2048 ≈ 3 %), at the cost of k-means time.
    """
    target = 4.0 * math.sqrt(max(n, 1))
    return int(min(65536, max(64, 2 ** round(math.log2(target)))))


def auto_nprobe(nlist: int, ntotal: int, dim: int, budget: float = SCAN_BUDGET) -> int:
    """Lists searched per query: max(64, nlist / 32), fewer when that would scan more than
    ``budget`` vector components, at least 16.

    Measured on synthetic galleries (benchmarks/RESULTS.md): recall@10 0.998 at 100k × 128
    (64 of 1024 lists) and at 1M × 128 (128 of 4096); 0.991 at 1M × 512 (80 of 4096, the budget).
    """
    per_list = max(1.0, ntotal / max(nlist, 1))
    by_budget = int(budget / (per_list * max(dim, 1)))
    return int(min(nlist, max(16, min(max(64, nlist // 32), by_budget))))


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """What to build for a gallery of a given size: ``factory`` is a complete faiss factory string."""

    kind: str  # "flat" | "ivf"
    factory: str
    nlist: int = 0


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A parsed index spec (see the module docstring). ``str(spec)`` gives the canonical string."""

    factory: str = "IVF,Flat"
    params: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str | IndexSpec | None) -> IndexSpec:
        if isinstance(spec, IndexSpec):
            return spec
        text = (spec or DEFAULT_SPEC).strip()
        factory, _, tail = text.partition(";")
        factory = factory.strip().replace(" ", "")
        params: dict[str, int] = {}
        for item in filter(None, (p.strip() for p in tail.split(","))):
            name, sep, value = item.partition("=")
            if not sep or name.strip() not in _PARAMS:
                raise ConfigurationError(
                    f"bad index parameter {item!r} in {text!r}: use {', '.join(sorted(_PARAMS))} as name=integer"
                )
            try:
                params[name.strip()] = int(value)
            except ValueError:
                raise ConfigurationError(f"index parameter {item!r} in {text!r} needs an integer value") from None
            if params[name.strip()] < 0:
                raise ConfigurationError(f"index parameter {item!r} in {text!r} must be ≥ 0")
        if factory != "Flat" and _IVF.match(factory) is None:
            raise ConfigurationError(
                f"unsupported index spec {text!r}: use 'Flat' or an IVF factory string such as "
                "'IVF,Flat', 'IVF4096,SQ8,RFlat' or 'IVF4096_HNSW32,Flat' (faiss index_factory style)"
            )
        return cls(factory, dict(sorted(params.items())))

    def __str__(self) -> str:
        if not self.params:
            return self.factory
        return self.factory + ";" + ",".join(f"{k}={v}" for k, v in self.params.items())

    def with_params(self, **values: int | None) -> IndexSpec:
        """A copy with parameters set (None removes one)."""
        params = dict(self.params)
        for k, v in values.items():
            if v is None:
                params.pop(k, None)
            else:
                params[k] = int(v)
        return IndexSpec.parse(str(IndexSpec(self.factory, params)))

    @property
    def is_flat(self) -> bool:
        return self.factory == "Flat"

    @property
    def refine(self) -> bool:
        """Whether hits are re-scored exactly from the store (a trailing ``,RFlat``)."""
        return self.factory.endswith(",RFlat")

    @property
    def exact_scores(self) -> bool:
        """Whether the scores a search returns are exact cosines (flat codes, or refined)."""
        m = _IVF.match(self.factory)
        return m is None or m["codec"] == "Flat" or self.refine

    @property
    def fixed_nlist(self) -> int | None:
        """The list count written in the spec (None: auto, or not an IVF)."""
        m = _IVF.match(self.factory)
        return int(m["nlist"]) if m and m["nlist"] else None

    def exact_limit(self, dim: int) -> int:
        if "exact_limit" in self.params:
            return int(self.params["exact_limit"])
        return max(1024, EXACT_BUDGET // max(dim, 1))

    def plan(self, n: int, dim: int) -> IndexPlan:
        """The index for ``n`` templates of dimension ``dim``."""
        m = _IVF.match(self.factory)
        if m is None or n <= self.exact_limit(dim):
            return IndexPlan("flat", "Flat")
        nlist = max(1, min(self.fixed_nlist or auto_nlist(n), n // 8))
        return IndexPlan("ivf", f"IVF{nlist}{m['quantizer'] or ''},{m['codec']}", nlist)

    def needs_retrain(self, current: IndexPlan, trained_n: int, n: int, dim: int) -> bool:
        """Whether an index built as ``current`` on ``trained_n`` templates should be rebuilt at ``n``."""
        target = self.plan(n, dim)
        if target.kind == current.kind == "flat":
            return False
        if target.kind == current.kind == "ivf":
            return self.fixed_nlist is None and n > RETRAIN_GROWTH * max(trained_n, 1)
        if target.kind == "flat" and n > self.exact_limit(dim) // 2:
            return False  # hysteresis: do not flap around the limit
        return True

    def nprobe(self, nlist: int, ntotal: int, dim: int) -> int:
        m = _IVF.match(self.factory)
        budget = SCAN_BUDGET * (SQ8_BUDGET_FACTOR if m is not None and m["codec"] == "SQ8" else 1.0)
        return int(self.params.get("nprobe") or auto_nprobe(nlist, ntotal, dim, budget))


def legacy_spec(index: Mapping[str, Any]) -> IndexSpec:
    """The spec equivalent to faceprint 0.1's index settings ``{type, exact_limit, nlist, nprobe}``."""
    typ = index.get("type") or "auto"
    if typ not in ("auto", "flat", "ivf"):
        raise ConfigurationError(f"unknown index type {typ!r}; use 'auto', 'flat' or 'ivf'")
    if typ == "flat":
        return IndexSpec("Flat")
    nlist = index.get("nlist")
    factory = f"IVF{int(nlist)},Flat" if nlist else LEGACY_DEFAULT_SPEC
    params = {k: int(index[k]) for k in ("exact_limit", "nprobe") if index.get(k)}
    if typ == "ivf":
        params["exact_limit"] = 0
    return IndexSpec.parse(str(IndexSpec(factory, params)))
