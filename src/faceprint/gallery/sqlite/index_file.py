"""A faiss index kept in step with a store's change log, and saved beside it as ``index.faiss``.

The file holds a small JSON header (generation, epoch, template count and id checksum, spec) and
the faiss data. On open (or when another process has written since) the index is brought up to
date by replaying only the rows of later generations; a missing, unreadable or inconsistent file
is rebuilt from the store, which is the truth. The file is written on close (and after a
rebuild), atomically: a crash loses no template, only the replay work.

**Rebuilds off the enrolment path.** When the gallery outgrows its index (exact → IVF, or an
IVF grown :data:`~faceprint.gallery.spec.RETRAIN_GROWTH` times since training), the new index is
trained and filled in a background thread, on its own SQLite connection, reading the rows of
the generation it was started at in short transactions (a snapshot held for the whole build
would keep SQLite from checkpointing: the write-ahead log would grow by every write made
meanwhile). The current index keeps serving searches and takes every new template. When the
new one is ready it is written to the index file, brought up to date with the writes made since
(most of them outside the lock), and swapped in atomically under the lock.
A crash meanwhile loses nothing: the store is the truth and the file on disk is always a
complete index of some generation. Small rebuilds (≤ ``background_above`` templates, a fraction
of a second) run inline.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ...errors import CorruptStoreError
from ..faiss_index import BuildCancelled, FaissIndex, training_size
from ..files import private_tmp
from ..spec import IndexPlan, IndexSpec
from ..store import Change, ChangeFeed, FeedReader, FeedState
from ..values import GallerySettings

__all__ = ["SyncedFaissIndex", "INDEX_NAME", "INDEX_MAGIC", "INDEX_FORMAT_VERSION"]

log = logging.getLogger(__name__)

INDEX_NAME = "index.faiss"
INDEX_MAGIC = b"FPGIDX01"
INDEX_FORMAT_VERSION = 1
#: Rebuilds of more templates than this run in a background thread.
BACKGROUND_ABOVE = 10_000
#: Writes a new index may lag behind while it catches up; more make writers wait, so that the
#: last ones, applied under the lock at the swap, are few (no long pause of searches).
MAX_BACKLOG = 4


@dataclass(eq=False)
class _Build:
    """A rebuild running in a background thread, and the writes the live index took meanwhile."""

    spec: IndexSpec
    epoch: int
    cancel: threading.Event = field(default_factory=threading.Event)
    changes: list[Change] = field(default_factory=list)  # this process's writes, in order
    gaps: bool = False  # other writes reached the live index too (replayed): catch up from the store
    thread: threading.Thread | None = None
    present: _Owners = field(default_factory=lambda: _Owners())  # the templates the new index holds
    catching_up: bool = False  # the new index is built and follows the writes made meanwhile
    followed: int = 0  # how many of ``changes`` it has applied


class SyncedFaissIndex:
    """The :class:`~faceprint.gallery.store.GalleryIndex` of a store with a change log.

    Args:
        feed: the store (a :class:`~faceprint.gallery.store.ChangeFeed`).
        file: where the index is saved.
        threads: OpenMP threads faiss uses per search (1 keeps single-query latency low on a
            busy machine; None: faiss's default).
        background_above: rebuilds of more templates than this run in a background thread
            (0: all of them; None: none).
    """

    def __init__(
        self,
        feed: ChangeFeed,
        file: str | os.PathLike[str],
        *,
        threads: int | None = 1,
        background_above: int | None = BACKGROUND_ABOVE,
    ) -> None:
        self.feed = feed
        self.file = Path(file)
        self.threads = threads
        self.background_above = background_above
        self._build: _Build | None = None
        self._owners = _Owners()
        self._lock = threading.RLock()
        self._caught_up = threading.Condition(self._lock)
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
            fi = self._fi
            if fi is None:
                return np.full((x.shape[0], k), -np.inf, np.float32), np.full((x.shape[0], k), -1, np.int64)
            d, i = fi.search(x, k, self.threads)
            refine = fi.plan.kind == "ivf" and self._spec.refine
        return _rescored(self.feed, x, d, i) if refine else (d, i)

    def update(self, change: Change) -> None:
        with self._lock:
            fi = self._fi
            same_epoch = fi is not None and change.generation is not None and change.epoch == self.epoch
            if same_epoch and change.generation <= self.generation:  # type: ignore[operator]
                return  # already in (a catch-up or a swap saw it first)
            if fi is None or not same_epoch or change.base != self.generation:
                self.refresh(force=True)  # replays what this index has not seen
                return
            _apply(fi, self._owners, change)
            self.generation = int(change.generation)  # type: ignore[arg-type]
            b = self._build
            if b is not None:
                b.changes.append(change)
                while b is self._build and b.catching_up and len(b.changes) - b.followed > MAX_BACKLOG:
                    self._caught_up.wait(1.0)  # backpressure: lets the new index catch up (searches go on)
            self._restructure_if_needed()
            if change.removed_ids.size:
                self.save()  # rewrite the file now: no copy of a removed template stays on disk

    def owners(self, template_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        with self._lock:
            return self._owners.get(np.asarray(template_ids, np.int64))

    @property
    def building(self) -> bool:
        """Whether a rebuild is running in the background."""
        return self._build is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for background rebuilds to finish (and be swapped in); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                b = self._build
            if b is None or b.thread is None:
                return True
            b.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if b.thread.is_alive():
                return False

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
        """Let a background rebuild finish (its work is not thrown away), then save the index."""
        self.wait()
        self.save()

    # ----- keeping up with the store --------------------------------------------------------

    def _replay(self, r: FeedReader, m: FeedState) -> None:
        """Apply the templates added and removed after this index's generation."""
        fi = self._fi
        assert fi is not None
        _catch_up(fi, self._owners, r, self.generation)
        self.generation = m.generation
        if self._build is not None:
            self._build.gaps = True
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
        b = self._build
        if b is not None:
            if b.spec.factory == self._spec.factory:
                return  # on its way (search parameters are applied when it is swapped in)
            self._cancel_build()
        if self.background_above is not None and fi.count > self.background_above:
            self._start_build()
            return
        with self.feed.snapshot() as r:
            m = r.state()
            log.info("restructuring the index of %s for %d templates (%s)", self.feed.location, m.count, self._spec)
            self._rebuild(r, m, self._spec)

    def _rebuild(self, r: FeedReader, m: FeedState, spec: IndexSpec) -> None:
        """Build the index from every template of the snapshot ``r``, and save it (blocking)."""
        self._cancel_build()
        dim = int(self._settings.dim or 0)
        owners = _Owners()
        rows = ((ids, vecs) for ids, sids, vecs in _recording(r.added_since(-1), owners))
        fi = FaissIndex.build(spec, dim, m.count, lambda n: r.sample(n, seed=m.generation), rows)
        self._owners = owners
        if (fi.count, fi.id_sum) != (m.count, m.id_sum):
            raise CorruptStoreError(
                f"gallery database of {self.feed.location} is inconsistent (its counters say {m.count} templates, "
                f"it holds {fi.count}): restore it from a backup or export what can be read",
                path=self.feed.location,
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
                    self._owners = _Owners()
                    self._owners.set(*r.owners())  # the store's now: a replay below only adds and drops
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
            header = _header(fi, self.generation, self.epoch, self._spec, self._settings)
            if self._write_file(fi, header):
                self.saved_generation = self.generation

    def _write_file(self, fi: FaissIndex, header: dict[str, Any]) -> bool:
        tmp = self._write_tmp(fi, header)
        if tmp is not None:
            os.replace(tmp, self.file)
        return tmp is not None

    def _write_tmp(self, fi: FaissIndex, header: dict[str, Any]) -> str | None:
        """The index written (0600, fsynced) to a temporary file beside the index file; None if impossible."""
        raw = json.dumps(header).encode()
        t0 = time.perf_counter()

        def write(f: BinaryIO) -> None:
            f.write(INDEX_MAGIC + struct.pack("<I", len(raw)) + raw)
            fi.write(f)

        try:
            tmp = private_tmp(self.file.parent, write, prefix=".index-", suffix=".tmp")
        except OSError as exc:
            log.warning("cannot write the index file %s (%s); it will be rebuilt on open", self.file, exc)
            return None
        log.info("wrote %s index (%d templates) in %.1f s", fi.plan.factory, fi.count, time.perf_counter() - t0)
        return tmp

    def ids(self) -> set[int]:
        """Every template id in the index (slow: for consistency checks)."""
        with self._lock:
            self.refresh()
            return set() if self._fi is None else {int(i) for i in self._fi.ids()}

    # ----- rebuilds in the background --------------------------------------------------------

    def _start_build(self) -> None:
        b = _Build(self._spec, self.epoch)
        b.thread = threading.Thread(target=self._run_build, args=(b,), name="faceprint-index-build", daemon=True)
        self._build = b
        log.info("rebuilding the index of %s in the background (%s)", self.feed.location, self._spec)
        b.thread.start()

    def _cancel_build(self) -> None:
        if self._build is not None:
            self._build.cancel.set()
            self._build = None
            self._caught_up.notify_all()

    def _run_build(self, b: _Build) -> None:
        """The background thread: build from a snapshot, write the file, then swap (under the lock)."""
        try:
            with self.feed.snapshot(own_connection=True) as r:  # short: what to build, and the training sample
                m, settings = r.state(), r.settings()
                if m.epoch != b.epoch or settings.dim is None:
                    return
                x = r.sample(training_size(b.spec.plan(m.count, int(settings.dim)).nlist), seed=m.generation)
            rows = ((ids, vecs) for ids, sids, vecs in _recording(self.feed.rows_upto(m.generation), b.present))
            fi = FaissIndex.build(b.spec, int(settings.dim), m.count, lambda n: x[:n], rows, cancel=b.cancel)
            if fi.count != m.count and not any(c.removed_ids.size for c in b.changes) and not b.gaps:
                log.error("background rebuild of %s read %d of %d templates", self.feed.location, fi.count, m.count)
                return
            tmp = (
                None if b.cancel.is_set() else self._write_tmp(fi, _header(fi, m.generation, m.epoch, b.spec, settings))
            )
            done, gen = self._follow_outside_lock(b, fi, m.generation)
            with self._lock:
                # a file of the snapshot must not bring back templates removed since: then the swap rewrites it
                removed = b.gaps or any(c.removed_ids.size for c in b.changes)
                if tmp is not None and (removed or self._build is not b):
                    Path(tmp).unlink(missing_ok=True)
                elif tmp is not None:
                    os.replace(tmp, self.file)
                self._swap(b, fi, m, tmp is not None and not removed, done, gen)
        except BuildCancelled:
            log.info("background rebuild of %s cancelled", self.feed.location)
        except Exception:  # the live index keeps serving; the next write tries again
            log.exception("background rebuild of the index of %s failed", self.feed.location)
        finally:
            with self._lock:
                if self._build is b:
                    self._build = None
                self._caught_up.notify_all()

    def _follow_outside_lock(self, b: _Build, fi: FaissIndex, gen: int) -> tuple[int, int]:
        """Apply the writes made during the build to the new index without holding the lock
        (searches and writes go on meanwhile), in rounds until few are left for the swap; writers
        wait while more than :data:`MAX_BACKLOG` are behind (see :meth:`update`)."""
        done = 0
        with self._lock:
            b.catching_up = True
        while True:
            with self._lock:
                b.followed = done
                self._caught_up.notify_all()
                if self._build is not b or b.gaps or len(b.changes) - done <= 1:
                    break
                upto = len(b.changes)
            done, gen, ok = _follow(b.changes[done:upto], fi, b.present, done, gen)
            if not ok:
                break
        return done, gen

    def _swap(self, b: _Build, fi: FaissIndex, m: FeedState, written: bool, done: int, gen: int) -> None:
        """Bring the new index (at generation ``gen``, ``done`` of the build's writes applied) up to
        date with the rest, and make it the live one (under the lock)."""
        if b.cancel.is_set() or self._build is not b or self.epoch != m.epoch or self._spec.factory != b.spec.factory:
            return
        ok = not b.gaps
        if ok:
            done, gen, ok = _follow(b.changes[done:], fi, b.present, done, gen)
        if ok and gen >= self.generation:
            generation = gen
        else:  # writes reached the live index another way (another process): read them from the store
            with self.feed.snapshot() as r:
                _catch_up(fi, b.present, r, gen, exact=True)
                generation = r.state().generation
        self._fi, self._build = fi, None
        self.generation = generation
        self.saved_generation = m.generation if written else -1
        fi.set_search_params(self._spec)
        log.info("swapped in the rebuilt %s index of %s (%d templates)", fi.plan.factory, self.feed.location, fi.count)
        if not written and any(c.removed_ids.size for c in b.changes):
            self.save()  # no file may keep a removed template
        self._restructure_if_needed()


class _Owners:
    """template id → subject id, for the templates in the index (ids are small positive integers)."""

    def __init__(self) -> None:
        self.sid = np.zeros(0, np.int64)

    def set(self, ids: npt.NDArray[np.int64], sids: npt.NDArray[np.int64]) -> None:
        if ids.size == 0:
            return
        top = int(ids.max()) + 1
        if top > self.sid.size:
            grown = np.full(max(top, 2 * self.sid.size, 1024), -1, np.int64)
            grown[: self.sid.size] = self.sid
            self.sid = grown
        self.sid[ids] = sids

    def drop(self, ids: npt.NDArray[np.int64]) -> None:
        self.sid[ids[(ids >= 0) & (ids < self.sid.size)]] = -1

    def get(self, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        out = np.full(ids.shape, -1, np.int64)
        ok = (ids >= 0) & (ids < self.sid.size)
        out[ok] = self.sid[ids[ok]]
        return out


def _apply(fi: FaissIndex, owners: _Owners | None, c: Change) -> None:
    """Apply a write to ``fi`` (and to the map of what it holds, when given: only removed
    templates it holds are removed, so that its checksum stays exact)."""
    gone = c.removed_ids if owners is None else c.removed_ids[owners.get(c.removed_ids) >= 0]
    fi.remove(gone)
    if owners is not None:
        owners.drop(gone)
    if c.added_vectors is not None:
        fi.add(c.added_ids, c.added_vectors)
        if owners is not None and c.added_subjects is not None:
            owners.set(c.added_ids, c.added_subjects)


def _recording(
    rows: Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]], owners: _Owners
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    for ids, sids, vecs in rows:
        owners.set(ids, sids)
        yield ids, sids, vecs


def _follow(changes: list[Change], fi: FaissIndex, present: _Owners, done: int, gen: int) -> tuple[int, int, bool]:
    """Apply ``changes`` (this process's writes, in order) to ``fi``, an index of generation ``gen``,
    while they chain on from it; returns (changes consumed in all, new generation, whether all chained)."""
    for c in changes:
        if c.generation is None or (c.generation > gen and c.base != gen):
            return done, gen, False
        if c.generation > gen:  # older ones are in the snapshot already
            _apply(fi, present, c)  # only the removed templates it holds: its checksum stays exact
            gen = c.generation
        done += 1
    return done, gen, True


def _catch_up(fi: FaissIndex, owners: _Owners | None, r: FeedReader, generation: int, *, exact: bool = False) -> None:
    """Apply to ``fi`` (an index of ``generation``) every write after it, keeping ``owners`` in step
    (``exact``: ``owners`` says what ``fi`` holds, and only removed templates it holds are removed)."""
    gone = np.array([i for i, added in r.removed_since(generation) if added <= generation], np.int64)
    if owners is not None:
        if exact:
            gone = gone[owners.get(gone) >= 0]
        owners.drop(gone)
    fi.remove(gone)
    for ids, sids, vecs in r.added_since(generation):
        fi.add(ids, vecs)
        if owners is not None:
            owners.set(ids, sids)


def _header(fi: FaissIndex, generation: int, epoch: int, spec: IndexSpec, settings: GallerySettings) -> dict[str, Any]:
    return {
        "format": "faceprint-gallery-index",
        "version": INDEX_FORMAT_VERSION,
        "generation": generation,
        "epoch": epoch,
        "count": fi.count,
        "id_sum": fi.id_sum,
        "model": settings.model,
        "dim": settings.dim,
        "kind": fi.plan.kind,
        "factory": fi.plan.factory,
        "spec": str(spec),
        "nlist": fi.plan.nlist,
        "trained_n": fi.trained_n,
        "nprobe": fi.nprobe,
        "written_at": time.time(),
    }


def _rescored(
    feed: ChangeFeed, q: npt.NDArray[np.float32], d: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The hits re-scored with the stored float32 vectors (exact cosines), re-sorted best first."""
    have, vecs = feed.vectors(sorted({int(i) for i in ids.ravel() if i >= 0}))
    if have.size == 0:
        return d, ids
    order = np.argsort(have)
    pos = np.searchsorted(have[order], ids)
    pos = np.minimum(pos, have.size - 1)
    found = (ids >= 0) & (have[order][pos] == ids)
    rows = vecs[order][pos]  # (N, k, D)
    exact = np.where(found, np.einsum("nkd,nd->nk", rows, q), -np.inf).astype(np.float32)
    best = np.argsort(-exact, axis=1, kind="stable")
    out_i = np.where(np.take_along_axis(found, best, axis=1), np.take_along_axis(ids, best, axis=1), -1)
    return np.take_along_axis(exact, best, axis=1), out_i.astype(np.int64)
