"""The SQLite embedding cache on its own (the resume behaviour is tested with a real pipeline in test_runner)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import ConfigurationError, EmbeddingCacheError
from faceprint.evaluation.cache import (
    CACHE_FILENAME,
    CachedResult,
    EmbeddingCache,
    default_cache_dir,
    settings_id,
    sha256_bytes,
)

MODEL = "dlib-resnet-v1@1"


def test_results_round_trip_including_failures(tmp_path: Path) -> None:
    v = np.linspace(-1, 1, 128).astype(np.float32)
    with EmbeddingCache(tmp_path) as c:
        assert c.path == tmp_path / CACHE_FILENAME
        sid = c.register_settings({"detector": "dlib-hog", "select": "largest"})
        c.put("aa", MODEL, sid, CachedResult("ok", v))
        c.put("bb", MODEL, sid, CachedResult("no_face"))
        c.put("cc", MODEL, sid, CachedResult("error", error="ImageDecodeError: corrupt JPEG data"))
    with EmbeddingCache(tmp_path / CACHE_FILENAME) as c:
        got = c.get_many(["aa", "bb", "cc", "dd"], MODEL, sid)
        assert sorted(got) == ["aa", "bb", "cc"]
        np.testing.assert_array_equal(got["aa"].vector, v)
        assert got["aa"].vector.dtype == np.float32
        assert got["bb"].status == "no_face" and got["bb"].vector is None
        assert got["cc"].error == "ImageDecodeError: corrupt JPEG data"
        assert c.get("aa", "other-model@2", sid) is None  # the model tag is part of the key
        assert c.get("aa", MODEL, settings_id({"detector": "dlib-mmod"})) is None  # so are the settings
        assert c.count() == {"ok": 1, "no_face": 1, "error": 1} and len(c) == 3
        assert c.settings(sid) == {"detector": "dlib-hog", "select": "largest"}
        assert (c.hits, c.misses) == (3, 3)
        assert c._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_commits_in_batches(tmp_path: Path) -> None:
    c = EmbeddingCache(tmp_path / "c.sqlite", commit_every=3)
    other = sqlite3.connect(tmp_path / "c.sqlite")

    def committed() -> int:
        return int(other.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    for i in range(5):
        c.put(f"h{i}", MODEL, "s", CachedResult("no_face"))
    assert committed() == 3  # one batch of 3; two still buffered
    c.close()
    assert committed() == 5
    c.close()  # twice is fine
    with pytest.raises(EmbeddingCacheError, match="closed"):
        c.get("h0", MODEL, "s")


def test_settings_id_ignores_key_order_and_refuses_non_json() -> None:
    assert settings_id({"a": 1, "b": {"x": 2, "y": 3}}) == settings_id({"b": {"y": 3, "x": 2}, "a": 1})
    assert settings_id({"a": 1}) != settings_id({"a": 2})
    assert len(sha256_bytes(b"abc")) == 64
    with pytest.raises(ConfigurationError):
        CachedResult("ok")  # an ok result needs its vector


def test_not_a_cache_and_wrong_schema(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EmbeddingCacheError, match="not a faceprint embedding cache"):
        EmbeddingCache(junk)
    with EmbeddingCache(tmp_path / "old.sqlite") as c:
        c._conn.execute("UPDATE meta SET value='0' WHERE key='schema'")
        c._conn.commit()
    with pytest.raises(EmbeddingCacheError, match="schema version 0"):
        EmbeddingCache(tmp_path / "old.sqlite")


def test_default_location_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_CACHE_DIR", str(tmp_path / "fpcache"))
    assert default_cache_dir() == tmp_path / "fpcache"
    with EmbeddingCache() as c:
        assert c.path == tmp_path / "fpcache" / CACHE_FILENAME and c.path.exists()
    monkeypatch.delenv("FACEPRINT_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".faceprint" / "cache"
