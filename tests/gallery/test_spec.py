"""The index spec: one string in faiss index_factory style, and faceprint 0.1's four settings mapped to it."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from faceprint.errors import ConfigurationError
from faceprint.gallery import IndexSpec, open_gallery
from faceprint.gallery.spec import legacy_spec

from .conftest import MODEL_ID, MODEL_VERSION, emb, unit_vectors

TAG = f"{MODEL_ID}@{MODEL_VERSION}"


def test_spec_strings_round_trip_and_plan_by_size() -> None:
    s = IndexSpec.parse("IVF4096_HNSW32,SQ8; nprobe=64, exact_limit=0")
    assert str(s) == "IVF4096_HNSW32,SQ8;exact_limit=0,nprobe=64" and IndexSpec.parse(str(s)) == s
    assert s.plan(100_000, 512).factory == "IVF4096_HNSW32,SQ8"
    assert s.plan(1_000, 512).factory == "IVF125_HNSW32,SQ8"  # at most n / 8 lists
    auto = IndexSpec.parse(None)
    assert str(auto) == "IVF,SQ8,RFlat" and auto.refine and auto.exact_scores
    assert auto.plan(5_000, 512).kind == "flat"  # exact below 4M components
    assert auto.plan(1_000_000, 128).factory == "IVF4096,SQ8"  # the refinement is the gallery's, not faiss's
    assert not IndexSpec.parse("IVF,SQ8").exact_scores and IndexSpec.parse("IVF64,Flat").exact_scores
    assert IndexSpec.parse("Flat").plan(10**7, 128).kind == "flat"
    for bad in ("HNSW32", "IVF1024,Flat;nprobe=x", "IVF1024,Flat;speed=9", "PQ16"):
        with pytest.raises(ConfigurationError):
            IndexSpec.parse(bad)


def test_retraining_rule() -> None:
    auto = IndexSpec.parse("IVF,Flat;exact_limit=1000")
    flat, ivf = auto.plan(500, 32), auto.plan(4000, 32)
    assert auto.needs_retrain(flat, 0, 1001, 32)  # exact → IVF past the limit
    assert not auto.needs_retrain(ivf, 4000, 16_000, 32) and auto.needs_retrain(ivf, 4000, 16_001, 32)  # grown 4×
    assert not auto.needs_retrain(ivf, 4000, 501, 32) and auto.needs_retrain(ivf, 4000, 500, 32)  # hysteresis
    fixed = IndexSpec.parse("IVF64,Flat;exact_limit=1000")
    assert not fixed.needs_retrain(fixed.plan(4000, 32), 4000, 10**6, 32)  # a fixed nlist is never retrained


@pytest.mark.parametrize(
    ("old", "spec"),
    [
        ({}, "IVF,Flat"),
        ({"type": "flat"}, "Flat"),
        ({"type": "ivf", "nlist": 256, "nprobe": 8}, "IVF256,Flat;exact_limit=0,nprobe=8"),
        ({"type": "auto", "exact_limit": 1000}, "IVF,Flat;exact_limit=1000"),
    ],
)
def test_faceprint_0_1_index_settings_map_to_a_spec(old: dict, spec: str) -> None:
    assert str(legacy_spec(old)) == spec


def test_a_gallery_with_the_old_settings_still_opens_and_keeps_its_index(tmp_path: Path) -> None:
    x = unit_vectors(3000, 32, seed=4)
    with open_gallery(tmp_path / "g", index="IVF,Flat;exact_limit=1000,nprobe=7") as g:
        g.enroll_many([f"s{i}" for i in range(3000)], x, model=TAG)
    db = sqlite3.connect(tmp_path / "g" / "gallery.sqlite")  # write the settings as faceprint 0.1 did
    settings = json.loads(db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()[0])
    settings["index"] = {"type": "auto", "exact_limit": 1000, "nprobe": 7}
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
    db.close()
    with open_gallery(tmp_path / "g", create=False) as g:
        assert g.settings.index == "IVF,Flat;exact_limit=1000,nprobe=7"
        st = g.stats()["index"]
        assert (st["kind"], st["nprobe"], st["vectors"]) == ("ivf", 7, 3000)
        assert g.identify(emb(x[42]), k=1, threshold=-math.inf).best.subject == "s42"  # type: ignore[union-attr]
        g.configure(index={"nprobe": 9})  # a faceprint 0.1 style change still works
        assert g.stats()["index"]["nprobe"] == 9 and g.settings.index == "IVF,Flat;exact_limit=1000,nprobe=9"
        g.configure(index="Flat")
        assert g.stats()["index"]["kind"] == "flat" and g.check()["consistent"]  # type: ignore[attr-defined]
