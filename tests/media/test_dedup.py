"""Deduplication on real photos: exact copies by pixels, near copies, bad input, and never deleting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.cli import main
from faceprint.io import load_image
from faceprint.media._seed import near_duplicate

from ..conftest import data_path


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    obama = data_path("faces_small", "obama", "obama.jpg")
    (d / "obama.jpg").write_bytes(obama.read_bytes())
    # same pixels, other file bytes: a PNG re-save of the decoded JPEG
    Image.fromarray(load_image(obama)).save(d / "sub" / "obama_copy.png")
    # a near copy: mirrored and rotated
    Image.fromarray(near_duplicate(near_duplicate(load_image(obama), "flip"), "rotate")).save(d / "obama_edit.jpg")
    # the same person, another photo; and someone else
    (d / "obama2.jpg").write_bytes(data_path("faces_small", "obama", "obama2.jpg").read_bytes())
    (d / "biden.jpg").write_bytes(data_path("faces_small", "biden", "biden.jpg").read_bytes())
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.mark.slow
def test_dedup_finds_exact_and_near_copies_and_lists_skipped_files(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    before = sorted(p.relative_to(d) for p in d.rglob("*"))
    out, html, keep = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "keep.txt"
    assert main(["dedup", str(d), "-o", str(out), "--html", str(html), "--keep-list", str(keep)]) == 0
    doc = json.loads(out.read_text())
    assert doc["images"] == 5 and [s["path"] for s in doc["skipped"]] == [str(d / "notes.txt")]
    assert doc["exact_duplicates"] == 1
    (group,) = doc["groups"]
    assert {group["keep"], *group["duplicates"]} == {
        str(d / "obama.jpg"),
        str(d / "sub" / "obama_copy.png"),
        str(d / "obama_edit.jpg"),
    }
    exact = [p for p in group["pairs"] if p["kind"] == "exact"]
    assert {exact[0]["a"], exact[0]["b"]} == {str(d / "obama.jpg"), str(d / "sub" / "obama_copy.png")}
    # obama2 is the same person, not a copy: an identity group, not a duplicate
    assert any(str(d / "obama2.jpg") in g and str(d / "obama.jpg") in g for g in doc["identity_groups"])
    kept = keep.read_text().splitlines()
    assert len(kept) == 3 and str(d / "obama2.jpg") in kept and str(d / "biden.jpg") in kept
    page = html.read_text()
    assert page.count("data:image/jpeg;base64,") >= 3 and "notes.txt" in page
    assert sorted(p.relative_to(d) for p in d.rglob("*")) == before  # nothing moved or deleted
    assert out.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_move_to_moves_redundant_copies_and_deletes_nothing(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    n = len(list(d.rglob("*.*")))
    dest = tmp_path / "dupes"
    assert main(["dedup", str(d), "-o", str(tmp_path / "r.json"), "--move-to", str(dest)]) == 0
    moved = sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file())
    assert len(moved) == 2
    assert len(list(d.rglob("*.*"))) + len(moved) == n
    assert main(["dedup", str(d), "-o", str(tmp_path / "r.json"), "--move-to", str(d / "inside")]) == 2


@pytest.mark.slow
def test_against_lists_images_and_people_also_in_the_other_set(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    other = tmp_path / "train"
    other.mkdir()
    (other / "o2.jpg").write_bytes(data_path("faces_small", "obama", "obama3.jpg").read_bytes())
    (other / "same.jpg").write_bytes(data_path("faces_small", "biden", "biden.jpg").read_bytes())
    out = tmp_path / "r.json"
    assert main(["dedup", str(d), "--against", str(other), "-o", str(out)]) == 0
    against = json.loads(out.read_text())["against"]
    assert [(x["a"], x["b"]) for x in against["duplicates"]] == [(str(d / "biden.jpg"), str(other / "same.jpg"))]
    people = {(x["image"], x["other"]) for x in against["identities"]}
    assert (str(d / "obama2.jpg"), str(other / "o2.jpg")) in people


def test_empty_folder_reports_nothing_cleanly(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "r.json"
    assert main(["dedup", str(empty), "-o", str(out), "--json"]) == 0
    doc = json.loads(out.read_text())
    assert doc["images"] == 0 and doc["groups"] == [] and doc["skipped"] == []
    assert json.loads(capsys.readouterr().out)["duplicate_groups"] == 0
    assert main(["dedup", str(tmp_path / "missing"), "-o", str(out)]) == 2


def test_near_duplicate_edits_change_the_pixels() -> None:
    img = load_image(data_path("faces_small", "biden", "biden.jpg"))
    for kind in ("resize", "jpeg30", "crop8", "blur", "flip", "rotate"):
        e = near_duplicate(img, kind)
        assert e.shape != img.shape or not np.array_equal(e, img), kind
