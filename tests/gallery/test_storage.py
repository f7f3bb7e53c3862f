"""Durability and index upkeep: crash mid-enrolment, concurrent readers, stale or missing index files."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import open_gallery
from faceprint.gallery.sqlite import INDEX_MAGIC, INDEX_NAME

from ._writer import vectors
from .conftest import MODEL_ID, MODEL_VERSION, emb, location, unit_vectors

WRITER = Path(__file__).with_name("_writer.py")
TAG = f"{MODEL_ID}@{MODEL_VERSION}"


def start_writer(loc: str, batches: int, size: int, dim: int, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), loc, str(batches), str(size), str(dim), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_commits(proc: subprocess.Popen[str], n: int, timeout: float = 120.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < n:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise AssertionError(f"writer ended early: {proc.stderr.read()}")  # type: ignore[union-attr]
        lines.append(line.strip())
        if time.monotonic() > deadline:
            raise AssertionError("writer too slow")
    return lines


# --- crash ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_mid_enrolment_keeps_every_committed_batch(tmp_path: Path, backend: str) -> None:
    loc = location(tmp_path, backend)
    size, dim, batches = 400, 32, 500
    proc = start_writer(loc, batches, size, dim, 0.0)
    seen = wait_for_commits(proc, 4)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _err = proc.communicate(timeout=60)
    committed = len(seen) + sum(1 for line in rest.splitlines() if line.startswith("committed"))
    assert proc.returncode == -signal.SIGKILL and committed < batches

    x = vectors(batches, size, dim)
    with open_gallery(loc, create=False) as g:
        n = g.stats()["templates"]
        # every batch printed as committed is there; batches are all-or-nothing
        assert n % size == 0 and committed * size <= n <= (committed + 1) * size
        assert len(g) == n
        if backend == "sqlite":
            report = g.check()  # type: ignore[attr-defined]
            assert report["consistent"], report
            assert report["index"] == n
        last = x[n - size : n : 37]
        d, i = g.search(last, 1)
        assert np.all(d[:, 0] > 0.999)
        owners = g._template_owners(i[:, 0].tolist())
        assert [owners[int(t)][1] for t in i[:, 0]] == [f"s{r}" for r in range(n - size, n, 37)]
        # and the gallery takes new enrolments after the crash
        g.enroll_many(["after"], unit_vectors(1, dim), model=TAG)
        assert g.stats()["templates"] == n + 1


# --- concurrent readers --------------------------------------------------------------------------


@pytest.mark.slow
def test_reader_process_sees_whole_batches_while_another_process_enrols(tmp_path: Path) -> None:
    loc = location(tmp_path, "sqlite")
    size, dim, batches = 200, 32, 40
    x = vectors(batches, size, dim)
    proc = start_writer(loc, batches, size, dim, 0.03)
    wait_for_commits(proc, 1)
    seen_counts: set[int] = set()
    with open_gallery(loc, create=False) as g:
        while proc.poll() is None:
            n = g.stats()["templates"]
            assert n % size == 0, f"a reader saw a partial batch: {n} templates"
            seen_counts.add(n)
            row = n - 1 - (len(seen_counts) % size)
            d, i = g.search(x[row], 1)  # the reader's index catches up with the writer's commits
            assert d[0, 0] > 0.999 and i[0, 0] == row + 1
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert g.stats()["templates"] == batches * size
        d, i = g.search(x[-1], 1)
        assert i[0, 0] == batches * size
        assert g.check()["consistent"]  # type: ignore[attr-defined]
    assert len(seen_counts) >= 3, "the reader never overlapped the writer"


def test_reader_thread_with_its_own_gallery_while_this_thread_enrols(tmp_path: Path) -> None:
    import threading

    loc = location(tmp_path, "sqlite")
    x = unit_vectors(3000, 16, seed=3)
    writer = open_gallery(loc)
    writer.enroll_many(["s0"], x[:1], model=TAG)
    reader = open_gallery(loc, create=False)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                n = reader.stats()["templates"]
                counts.append(n)
                d, i = reader.search(x[n - 1], 1)
                assert i[0, 0] == n and d[0, 0] > 0.999
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=read)
    t.start()
    for b in range(1, 3000, 100):
        writer.enroll_many([f"s{i}" for i in range(b, min(3000, b + 100))], x[b : b + 100], model=TAG)
    stop.set()
    t.join(30)
    writer.close()
    reader.close()
    assert not errors, errors[0]
    assert len(set(counts)) >= 2


# --- the index file ---------------------------------------------------------------------------


def _gallery_with(tmp_path: Path, n: int, **kw: object):  # type: ignore[no-untyped-def]
    x = unit_vectors(n, 32, seed=7)
    g = open_gallery(location(tmp_path, "sqlite"), **kw)  # type: ignore[arg-type]
    g.enroll_many([f"s{i}" for i in range(n)], x, model=TAG, batch_size=100)
    return g, x


def test_missing_index_file_is_rebuilt_from_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    g, x = _gallery_with(tmp_path, 300)
    g.close()
    index = tmp_path / "g" / INDEX_NAME
    assert index.is_file()
    index.unlink()
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.sqlite"):
        with open_gallery(location(tmp_path, "sqlite"), create=False) as g:
            assert "no usable index file" in caplog.text
            assert g.check()["consistent"]  # type: ignore[attr-defined]
            assert g.identify(emb(x[123]), k=1, threshold=-math.inf).best.subject == "s123"  # type: ignore[union-attr]
    assert index.is_file()


def test_stale_index_file_is_caught_up_by_replaying_later_generations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    g, x = _gallery_with(tmp_path, 200)
    g.close()
    index = tmp_path / "g" / INDEX_NAME
    old = tmp_path / "old.faiss"
    shutil.copy(index, old)
    y = unit_vectors(50, 32, seed=8)
    with open_gallery(location(tmp_path, "sqlite")) as g:
        g.enroll_many([f"new{i}" for i in range(50)], y, model=TAG)
        g.remove("s7")
    shutil.copy(old, index)  # the index file now lags the database by two generations
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.sqlite"):
        with open_gallery(location(tmp_path, "sqlite"), create=False) as g:
            assert "replaying" in caplog.text and "rebuilding" not in caplog.text
            assert g.check()["consistent"]  # type: ignore[attr-defined]
            assert g.identify(emb(y[9]), k=1, threshold=-math.inf).best.subject == "new9"  # type: ignore[union-attr]
            assert g.identify(emb(x[7]), k=1, threshold=-math.inf).best.subject != "s7"  # type: ignore[union-attr]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "checksum", "newer"])
def test_damaged_or_foreign_index_file_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    g, x = _gallery_with(tmp_path, 150)
    g.close()
    index = tmp_path / "g" / INDEX_NAME
    raw = index.read_bytes()
    if damage == "garbage":
        index.write_bytes(b"not an index at all")
    elif damage == "truncated":
        index.write_bytes(raw[: len(raw) // 2])
    else:
        (n,) = struct.unpack("<I", raw[len(INDEX_MAGIC) : len(INDEX_MAGIC) + 4])
        header = json.loads(raw[len(INDEX_MAGIC) + 4 : len(INDEX_MAGIC) + 4 + n])
        if damage == "checksum":
            header["id_sum"] += 1
        else:
            header["generation"] += 5
        new = json.dumps(header).encode()
        index.write_bytes(INDEX_MAGIC + struct.pack("<I", len(new)) + new + raw[len(INDEX_MAGIC) + 4 + n :])
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.sqlite"):
        with open_gallery(location(tmp_path, "sqlite"), create=False) as g:
            assert "rebuilding the vector index" in caplog.text
            assert g.check()["consistent"]  # type: ignore[attr-defined]
            assert g.identify(emb(x[42]), k=1, threshold=-math.inf).best.subject == "s42"  # type: ignore[union-attr]


def test_search_goes_from_exact_to_ivf_past_the_exact_limit_and_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    g, x = _gallery_with(tmp_path, 3000, exact_limit=1000)
    st = g.stats()["index"]
    assert st["kind"] == "ivf" and st["vectors"] == 3000 and st["nlist"] >= 64
    found = g.identify_many(x[::100], k=1, threshold=-math.inf)
    assert [r.best.subject for r in found] == [f"s{i}" for i in range(0, 3000, 100)]  # type: ignore[union-attr]
    g.configure(index={"nprobe": 3})
    assert g.stats()["index"]["nprobe"] == 3
    g.close()
    with caplog.at_level(logging.INFO, logger="faceprint.gallery.sqlite"):
        g = open_gallery(location(tmp_path, "sqlite"), create=False)
    assert "rebuilding" not in caplog.text and g.stats()["index"]["kind"] == "ivf"
    assert g.stats()["index"]["nprobe"] == 3
    g.remove_templates(list(range(1, 2701)))
    assert g.stats()["index"]["kind"] == "flat" and g.check()["consistent"]  # type: ignore[attr-defined]
    assert g.identify(emb(x[2900]), k=1, threshold=-math.inf).best.subject == "s2900"  # type: ignore[union-attr]
    g.close()


def test_a_folder_that_is_not_a_gallery_is_refused(tmp_path: Path) -> None:
    from faceprint.errors import GalleryError

    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    with pytest.raises(GalleryError, match="not a faceprint gallery"):
        open_gallery(tmp_path / "stuff")
