"""A faiss index kept in step with a store's change log, and saved beside it as ``index.faiss``.

The file holds a small JSON header (generation, epoch, template count and id checksum, spec) and
the faiss data. On open (or when another process has written since) the index is brought up to
date by replaying only the rows of later generations; a missing, unreadable or inconsistent file
is rebuilt from the store, which is the truth. The file is written on close (and after a
rebuild), atomically: a crash loses no template, only the replay work.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import GalleryError
from ..faiss_index import FaissIndex
from ..spec import IndexPlan, IndexSpec
from ..store import Change, ChangeFeed, FeedReader, FeedState
from ..values import GallerySettings

__all__ = ["SyncedFaissIndex", "INDEX_NAME", "INDEX_MAGIC", "INDEX_FORMAT_VERSION"]

log = logging.getLogger(__name__)

INDEX_NAME = "index.faiss"
INDEX_MAGIC = b"FPGIDX01"
INDEX_FORMAT_VERSION = 1


class SyncedFaissIndex:
    """The :class:`~faceprint.gallery.store.GalleryIndex` of a store with a change log.

    Args:
        feed: the store (a :class:`~faceprint.gallery.store.ChangeFeed`).
        file: where the index is saved.
        threads: OpenMP threads faiss uses per search (1 keeps single-query latency low on a
            busy machine; None: faiss's default).
    """

    def __init__(self, feed: ChangeFeed, file: str | os.PathLike[str], *, threads: int | None = 1) -> None:
        self.feed = feed
        self.file = Path(file)
        self.threads = threads
        self._lock = threading.RLock()
        self._fi: FaissIndex | None = None
        self._spec = IndexSpec.parse(None)
        self._settings = GallerySettings()
        self._version: int | None = None
        self.generation = -1
        self.epoch = -1
        self.saved_generation = -1
        self.refresh(force=True)

    # ----- GalleryIndex -----------------------------------------------------------------

    def search(self, x: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        with self._lock:
            self.refresh()
            if self._fi is None:
                return np.full((x.shape[0], k), -np.inf, np.float32), np.full((x.shape[0], k), -1, np.int64)
            return self._fi.search(x, k, self.threads)

    def update(self, change: Change) -> None:
        with self._lock:
            fi = self._fi
            if fi is None or change.generation is None or change.epoch != self.epoch or change.base != self.generation:
                self.refresh(force=True)  # replays what this index has not seen
                return
            fi.remove(change.removed_ids)
            if change.added_vectors is not None:
                fi.add(change.added_ids, change.added_vectors)
            self.generation = change.generation
            self._restructure_if_needed()

    def refresh(self, *, force: bool = False) -> None:
        with self._lock:
            v = self.feed.version()
            if not force and self._fi is not None and v == self._version:
                return
            with self.feed.snapshot() as r:
                self._settings = r.settings()
                m = r.state()
                spec = IndexSpec.parse(self._settings.index)
                if self._settings.dim is None:
                    self._fi = None
                elif self._fi is None:
                    self._load_or_rebuild(r, m, spec)
                elif self.epoch != m.epoch or self.generation > m.generation or spec.factory != self._spec.factory:
                    self._rebuild(r, m, spec)
                else:
                    self._spec = spec
                    if self.generation < m.generation:
                        self._replay(r, m)
            self._version = v
            if self._fi is not None:
                self._restructure_if_needed()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self.refresh()
            fi = self._fi
            return {
                "kind": None if fi is None else fi.plan.kind,
                "spec": str(self._spec),
                "factory": None if fi is None else fi.plan.factory,
                "vectors": 0 if fi is None else fi.ntotal,
                "nlist": None if fi is None or fi.plan.kind != "ivf" else fi.plan.nlist,
                "nprobe": None if fi is None else fi.nprobe,
                "generation": self.generation,
                "saved_generation": None if fi is None else self.saved_generation,
            }

    def close(self) -> None:
        self.save()

    # ----- keeping up with the store --------------------------------------------------------

    def _replay(self, r: FeedReader, m: FeedState) -> None:
        """Apply the templates added and removed after this index's generation."""
        fi = self._fi
        assert fi is not None
        gone = np.array([i for i, added in r.removed_since(self.generation) if added <= self.generation], np.int64)
        fi.remove(gone)
        for ids, vecs in r.added_since(self.generation):
            fi.add(ids, vecs)
        self.generation = m.generation
        if (fi.count, fi.id_sum) != (m.count, m.id_sum):
            log.warning(
                "vector index of %s disagrees with the database after replay (%d/%d templates); rebuilding",
                self.feed.location,
                fi.count,
                m.count,
            )
            self._rebuild(r, m, self._spec)

    def _restructure_if_needed(self) -> None:
        """Switch exact ↔ IVF, or retrain the IVF, when the gallery size calls for it."""
        fi = self._fi
        assert fi is not None
        if not self._spec.needs_retrain(fi.plan, fi.trained_n, fi.count, fi.dim):
            fi.set_search_params(self._spec)  # nprobe follows the list sizes
            return
        with self.feed.snapshot() as r:
            m = r.state()
            log.info("restructuring the index of %s for %d templates (%s)", self.feed.location, m.count, self._spec)
            self._rebuild(r, m, self._spec)

    def _rebuild(self, r: FeedReader, m: FeedState, spec: IndexSpec) -> None:
        """Build the index from every template of the snapshot ``r``, and save it."""
        dim = int(self._settings.dim or 0)
        fi = FaissIndex.build(spec, dim, m.count, lambda n: r.sample(n, seed=m.generation), r.added_since(-1))
        if (fi.count, fi.id_sum) != (m.count, m.id_sum):
            raise GalleryError(
                f"gallery database of {self.feed.location} is inconsistent (meta says {m.count} templates, "
                f"found {fi.count}): restore it from a backup or export what can be read"
            )
        self._fi, self._spec = fi, spec
        self.generation, self.epoch, self.saved_generation = m.generation, m.epoch, -1
        self.save()

    # ----- the file ----------------------------------------------------------------------------

    def _read_header(self) -> dict[str, Any] | None:
        try:
            with open(self.file, "rb") as f:
                if f.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
                    log.warning("%s is not a faceprint index file; rebuilding it", self.file)
                    return None
                (n,) = struct.unpack("<I", f.read(4))
                header = json.loads(f.read(n))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, struct.error) as exc:
            log.warning("cannot read index header of %s (%s); rebuilding it", self.file, exc)
            return None
        return header if isinstance(header, dict) else None

    def _stale(self, h: dict[str, Any] | None, m: FeedState, spec: IndexSpec) -> str | None:
        """Why the index file cannot be used as it is (None: it can)."""
        s = self._settings
        if h is None:
            return "no usable index file"
        if h.get("version") != INDEX_FORMAT_VERSION or h.get("model") != s.model or h.get("dim") != s.dim:
            return "the index file was built for another model or format"
        if h.get("epoch") != m.epoch:
            return "the gallery was re-embedded since the index file was written"
        if int(h.get("generation", -1)) > m.generation:
            return "the index file is newer than the database (restored from a backup?)"
        if "spec" in h and IndexSpec.parse(h["spec"]).factory != spec.factory:
            return f"the index file was built as {h['spec']!r}, the gallery now asks for {str(spec)!r}"
        return None

    def _load_or_rebuild(self, r: FeedReader, m: FeedState, spec: IndexSpec) -> None:
        h = self._read_header()
        reason = self._stale(h, m, spec)
        if reason is None:
            assert h is not None
            try:
                fi = self._read_file(h)
            except Exception as exc:  # a torn or corrupt file: the database is the truth
                reason = f"the index file cannot be read ({exc})"
            else:
                if fi.count != fi.ntotal:
                    reason = f"the index file holds {fi.ntotal} vectors but its header says {fi.count}"
                else:
                    self._fi, self._spec = fi, spec
                    self.generation = self.saved_generation = int(h["generation"])
                    self.epoch = int(h["epoch"])
                    fi.set_search_params(spec)
                    if self.generation < m.generation:
                        log.info(
                            "index file is at generation %d, database at %d: replaying", self.generation, m.generation
                        )
                        self._replay(r, m)  # keeps it, or rebuilds when the result disagrees with the database
                        return
                    if (fi.count, fi.id_sum) == (m.count, m.id_sum):
                        return
                    reason = "the index file's checksum does not match the database"
        log.info("rebuilding the vector index of %s from the database: %s", self.feed.location, reason)
        self._rebuild(r, m, spec)

    def _read_file(self, h: dict[str, Any]) -> FaissIndex:
        kind, nlist = str(h["kind"]), int(h.get("nlist", 0))
        factory = h.get("factory") or ("Flat" if kind == "flat" else f"IVF{nlist},Flat")
        with open(self.file, "rb") as f:
            f.seek(len(INDEX_MAGIC))
            (n,) = struct.unpack("<I", f.read(4))
            f.seek(n, os.SEEK_CUR)
            return FaissIndex.read(
                f,
                IndexPlan(kind, factory, nlist),
                int(self._settings.dim or 0),
                trained_n=int(h.get("trained_n", 0)),
                count=int(h["count"]),
                id_sum=int(h["id_sum"]),
            )

    def save(self) -> None:
        """Write the index file atomically (skipped when the file on disk is already as new)."""
        with self._lock:
            fi = self._fi
            if fi is None or self.saved_generation == self.generation:
                return
            h = self._read_header()
            if h is not None and h.get("epoch") == self.epoch and int(h.get("generation", -1)) >= self.generation:
                self.saved_generation = self.generation
                return
            header = {
                "format": "faceprint-gallery-index",
                "version": INDEX_FORMAT_VERSION,
                "generation": self.generation,
                "epoch": self.epoch,
                "count": fi.count,
                "id_sum": fi.id_sum,
                "model": self._settings.model,
                "dim": self._settings.dim,
                "kind": fi.plan.kind,
                "factory": fi.plan.factory,
                "spec": str(self._spec),
                "nlist": fi.plan.nlist,
                "trained_n": fi.trained_n,
                "nprobe": fi.nprobe,
                "written_at": time.time(),
            }
            if self._write_file(fi, header):
                self.saved_generation = self.generation

    def _write_file(self, fi: FaissIndex, header: dict[str, Any]) -> bool:
        raw = json.dumps(header).encode()
        t0 = time.perf_counter()
        try:
            fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=self.file.parent)
        except OSError as exc:
            log.warning("cannot write the index file %s (%s); it will be rebuilt on open", self.file, exc)
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(INDEX_MAGIC + struct.pack("<I", len(raw)) + raw)
                fi.write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.info("saved %s index (%d templates) in %.1f s", fi.plan.factory, fi.count, time.perf_counter() - t0)
        return True

    def ids(self) -> set[int]:
        """Every template id in the index (slow: for consistency checks)."""
        with self._lock:
            self.refresh()
            return set() if self._fi is None else {int(i) for i in self._fi.ids()}
