"""Index rebuilds off the enrolment path: the old index serves (correctly) until the new one is swapped in."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import Gallery, open_gallery
from faceprint.gallery.sqlite import INDEX_NAME, SqliteStore, SyncedFaissIndex
from faceprint.gallery.sqlite.store import SqliteReader

from .conftest import MODEL_ID, MODEL_VERSION, unit_vectors

TAG = f"{MODEL_ID}@{MODEL_VERSION}"
DIM = 32


class PausedBuildStore(SqliteStore):
    """A real SQLite store whose background readers (the index builder) stop after taking their
    snapshot until ``go`` is set, so that a test can write and search while a rebuild is under way."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.go = threading.Event()
        self.snapshot_taken = threading.Event()

    @contextmanager
    def snapshot(self, *, own_connection: bool = False) -> Iterator[SqliteReader]:
        with super().snapshot(own_connection=own_connection) as r:
            if own_connection:
                r.state()  # the snapshot is fixed by the first read
                self.snapshot_taken.set()
                assert self.go.wait(60), "the test never let the build go on"
            yield r


def paused_gallery(path: Path, spec: str) -> tuple[Gallery, PausedBuildStore, SyncedFaissIndex]:
    store = PausedBuildStore(path, create=None)
    index = SyncedFaissIndex(store, path / INDEX_NAME, background_above=0)
    return Gallery(store, index, index_spec=spec), store, index


def top1(g: Gallery, x: np.ndarray) -> list[int]:
    _d, i = g.search(x, 1)
    return [int(t) for t in i[:, 0]]


def test_searches_during_a_rebuild_use_the_old_index_and_see_every_write(tmp_path: Path) -> None:
    x = unit_vectors(6000, DIM, seed=11)
    g, store, index = paused_gallery(tmp_path / "g", "IVF,Flat;exact_limit=2000")
    try:
        g.enroll_many([f"s{i}" for i in range(2000)], x[:2000], model=TAG)  # ids 1..2000, exact
        assert g.stats()["index"]["kind"] == "flat" and not index.building
        g.enroll_many([f"s{i}" for i in range(2000, 3000)], x[2000:3000], model=TAG)  # past the limit
        assert index.building and store.snapshot_taken.wait(30)
        # the builder holds a snapshot of 3000 templates; the old (exact) index serves meanwhile
        for b in range(3000, 6000, 500):
            g.enroll_many([f"s{i}" for i in range(b, b + 500)], x[b : b + 500], model=TAG)
            assert top1(g, x[b : b + 500 : 50]) == list(range(b + 1, b + 501, 50))  # new writes found at once
        assert g.remove("s10") == 1 and g.remove_templates([4001, 4002]) == 2
        assert g.stats()["index"]["kind"] == "flat" and index.building
        assert 11 not in g.search(x[10], 5)[1] and top1(g, x[:2000:97]) == list(range(1, 2001, 97))
        store.go.set()
        assert index.wait(60) and not index.building
        st = g.stats()["index"]
        assert st["kind"] == "ivf" and st["vectors"] == 5997 and st["generation"] == 10
        assert index.ids() == store.all_ids()  # the swap replayed every write made during the build
        keep = [i for i in range(6000) if i not in (10, 4000, 4001)]
        found = g.identify_many(x[keep[::37]], k=1, threshold=-math.inf)
        assert [r.best.subject for r in found] == [f"s{i}" for i in keep[::37]]  # type: ignore[union-attr]
    finally:
        store.go.set()
        g.close()
    with open_gallery(tmp_path / "g", create=False) as h:  # the file written after the swap reopens as is
        assert h.stats()["index"]["kind"] == "ivf" and h.check()["consistent"]  # type: ignore[attr-defined]


def test_a_build_overtaken_by_a_spec_change_is_dropped(tmp_path: Path) -> None:
    x = unit_vectors(3000, DIM, seed=12)
    g, store, index = paused_gallery(tmp_path / "g", "IVF,Flat;exact_limit=1000")
    try:
        g.enroll_many([f"s{i}" for i in range(3000)], x, model=TAG, batch_size=1000)
        assert index.building and store.snapshot_taken.wait(30)
        g.configure(index="Flat")  # a spec change rebuilds now, and cancels the build under way
        assert not index.building
        store.go.set()
        assert index.wait(60)
        assert g.stats()["index"]["kind"] == "flat" and index.ids() == store.all_ids()
    finally:
        store.go.set()
        g.close()


WRITER = """
import sys, numpy as np
from faceprint.gallery import open_gallery
loc, dim = sys.argv[1], 32
rng = np.random.default_rng(5)
x = rng.standard_normal((40 * 500, dim)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
g = open_gallery(loc, index="IVF,Flat;exact_limit=1500", background_above=0)
for b in range(40):
    g.enroll_many([f"s{i}" for i in range(b * 500, b * 500 + 500)], x[b * 500 : b * 500 + 500], model="test-model@1")
    print(f"committed {b} building={g.index.building}", flush=True)
"""


def test_a_crash_during_a_background_rebuild_loses_nothing_committed(tmp_path: Path) -> None:
    loc = str(tmp_path / "g")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, loc], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    committed = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        committed += line.startswith("committed")
        if "building=True" in line and committed >= 6:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed mid-rebuild"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40 * 500, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with open_gallery(loc, create=False) as g:
        n = g.stats()["templates"]
        assert n % 500 == 0 and n >= committed * 500
        assert g.check()["consistent"]  # type: ignore[attr-defined]
        assert top1(g, x[:n:101]) == list(range(1, n + 1, 101))


def test_refined_ivf_returns_exact_cosines(tmp_path: Path) -> None:
    x = unit_vectors(3000, 64, seed=13)
    q = unit_vectors(20, 64, seed=14)
    scores = {}
    for spec in ("IVF,SQ8;exact_limit=0,nprobe=64", "IVF,SQ8,RFlat;exact_limit=0,nprobe=64"):
        with open_gallery(tmp_path / spec.split(";")[0].replace(",", "-"), index=spec) as g:
            g.enroll_many([f"s{i}" for i in range(3000)], x, model=TAG)
            assert g.stats()["index"]["factory"].endswith(",SQ8")
            d, i = g.search(q, 10)
            exact = np.einsum("nkd,nd->nk", x[i - 1], q)
            scores[spec] = float(np.max(np.abs(d - exact)))
            assert np.all(np.diff(d, axis=1) <= 1e-6)  # still best first
    assert scores["IVF,SQ8,RFlat;exact_limit=0,nprobe=64"] < 1e-5 < scores["IVF,SQ8;exact_limit=0,nprobe=64"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["IVF,Flat", "IVF,SQ8,RFlat"])
def test_gallery_search_agrees_with_a_faiss_index_built_by_hand(tmp_path: Path, spec: str) -> None:
    import faiss

    x = unit_vectors(20_000, DIM, seed=15)
    q = x[::400] + 0.02 * unit_vectors(50, DIM, seed=16)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    with open_gallery(tmp_path / "g", index=spec + ";exact_limit=0") as g:
        g.enroll_many([f"s{i}" for i in range(20_000)], x, model=TAG, batch_size=5000)
        g.index.wait()  # type: ignore[attr-defined]
        _d, got = g.search(q, 1)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    _d, truth = flat.search(q, 1)
    assert np.mean(got[:, 0] - 1 == truth[:, 0]) >= 0.98
