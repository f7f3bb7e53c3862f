"""Regression tests for the security review of the gallery (issue 8 §4): damaged files, file
permissions, deleted templates left on disk, half-made imports, subject names, CLI tracebacks.

Each test fails on faceprint 0.1 (before these fixes).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceprint.cli import main
from faceprint.errors import CorruptStoreError, ImageError
from faceprint.gallery import open_gallery

from ..conftest import data_path
from .conftest import MODEL_ID, MODEL_VERSION, emb, unit_vectors

TAG = f"{MODEL_ID}@{MODEL_VERSION}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["gallery", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> bool:
    lines = [x for x in err.splitlines() if x.strip()]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def synthetic_gallery(path: Path, n: int = 300, dim: int = 32) -> np.ndarray:
    x = unit_vectors(n, dim, seed=21)
    with open_gallery(path) as g:
        g.enroll_many([f"s{i}" for i in range(n)], x, model=TAG)
    return x


# --- damaged files ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbage", "emptied"])
def test_a_damaged_database_is_exit_7_with_one_line_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    g = tmp_path / "g"
    synthetic_gallery(g)
    db = g / "gallery.sqlite"
    raw = db.read_bytes()
    db.write_bytes({"truncated": raw[: len(raw) // 3], "garbage": os.urandom(len(raw)), "emptied": b""}[damage])
    probe = str(data_path("faces_small", "obama", "obama.jpg"))
    for argv in (["stats", str(g)], ["list", str(g)], ["identify", str(g), probe], ["remove", str(g), "s1"]):
        code, _out, err = run(capsys, *argv)
        assert code == 7 and one_error_line(err), (argv, code, err)
        assert "damaged" in err
    code, out, _err = run(capsys, "check", str(g), "--json")
    assert code == 7 and json.loads(out)["corrupt"] is True
    assert run(capsys, "destroy", str(g), "--yes")[0] == 0 and not g.exists()


def test_a_database_damaged_after_opening_raises_corrupt_store_error(tmp_path: Path) -> None:
    path = tmp_path / "g"
    synthetic_gallery(path, n=4000, dim=512)  # 8 MB of vectors: more than SQLite's page cache
    g = open_gallery(path, create=False)
    try:
        db = path / "gallery.sqlite"
        raw = bytearray(db.read_bytes())
        raw[65536:-65536] = os.urandom(len(raw) - 131072)  # keep the first pages (schema, meta)
        db.write_bytes(bytes(raw))
        with pytest.raises(CorruptStoreError, match="damaged") as info:
            sum(1 for _ in g.templates(with_vectors=True))
        assert info.value.path == str(db)
    finally:
        try:
            g.close()
        except CorruptStoreError:
            pass


def test_a_damaged_index_file_is_rebuilt_from_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = tmp_path / "g"
    synthetic_gallery(g)
    (g / "index.faiss").write_bytes(b"FPGIDX01" + os.urandom(5000))
    code, out, err = run(capsys, "stats", str(g), "--json")
    assert code == 0 and json.loads(out)["templates"] == 300 and "Traceback" not in err


def test_check_gallery_and_remove_gallery_work_without_opening(tmp_path: Path) -> None:
    from faceprint.errors import GalleryError
    from faceprint.gallery import check_gallery, remove_gallery

    good, bad = tmp_path / "good", tmp_path / "bad"
    synthetic_gallery(good)
    shutil.copytree(good, bad)
    (bad / "gallery.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    assert check_gallery(good).ok and check_gallery(good, thorough=True).ok
    h = check_gallery(bad)
    assert not h.ok and h.corrupt and isinstance(h.error, CorruptStoreError)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not yours")
    with pytest.raises(GalleryError, match="does not write"):
        remove_gallery(other)
    remove_gallery(bad)
    assert not bad.exists() and (other / "holiday.jpg").exists() and check_gallery(good).ok


# --- permissions ---------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_gallery_files_are_0600_and_folders_0700_whatever_the_umask(
    tmp_path: Path, open_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    g = tmp_path / "g"
    img = str(data_path("faces_small", "obama", "obama.jpg"))
    assert run(capsys, "create", str(g), "--keep-source-images")[0] == 0
    assert run(capsys, "enroll", str(g), "obama", img)[0] == 0
    assert run(capsys, "export", str(g), str(tmp_path / "g.npz"))[0] == 0
    with open_gallery(g, create=False) as opened:  # while open: the -wal and -shm files exist
        opened.enroll_embeddings("x", emb(unit_vectors(1, 128)[0], "dlib-resnet-v1", opened.model.split("@")[1]))  # type: ignore[union-attr]
        found = modes(g)
        assert {"g/gallery.sqlite-wal", "g/gallery.sqlite-shm", "g/index.faiss", "g/images"} <= set(found)
    found.update(modes(g))
    assert any(name.endswith(".jpg") for name in found)
    wrong = {n: oct(m) for n, m in found.items() if m != (0o700 if (tmp_path / n).is_dir() else 0o600)}
    assert not wrong, wrong
    assert stat.S_IMODE((tmp_path / "g.npz").stat().st_mode) == 0o600


def test_an_existing_gallery_is_tightened_when_opened(tmp_path: Path) -> None:
    g = tmp_path / "g"
    synthetic_gallery(g)
    os.chmod(g, 0o755)
    os.chmod(g / "gallery.sqlite", 0o644)
    with open_gallery(g, create=False):
        pass
    assert stat.S_IMODE(g.stat().st_mode) == 0o700 and stat.S_IMODE((g / "gallery.sqlite").stat().st_mode) == 0o600


# --- deleted templates ----------------------------------------------------------------------------


def test_a_removed_subject_leaves_no_bytes_of_its_templates_in_any_file(tmp_path: Path) -> None:
    path = tmp_path / "g"
    x = unit_vectors(200, 64, seed=22)
    with open_gallery(path) as g:
        g.enroll_many([f"s{i}" for i in range(200)], x, model=TAG)
        bob = g.enroll_embeddings("bob", [emb(v) for v in unit_vectors(3, 64, seed=23)])
        secrets = [t.vector.astype("<f4").tobytes() for t in g.templates("bob", with_vectors=True)]  # type: ignore[union-attr]
        assert len(secrets) == 3 and len(bob) == 3
        g.flush()  # type: ignore[attr-defined]
        on_disk = b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())
        assert all(s[:32] in on_disk for s in secrets)  # the test can see them before
        assert g.remove("bob") == 3
        for p in path.rglob("*"):  # while the gallery is still open: -wal and -shm included
            if p.is_file():
                raw = p.read_bytes()
                assert not any(s[:32] in raw for s in secrets), f"a removed template's bytes are in {p.name}"
        assert g.identify(emb(x[5]), k=1, threshold=-1.0).best.subject == "s5"  # type: ignore[union-attr]


# --- imports -------------------------------------------------------------------------------------


def _bad_exports(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    synthetic_gallery(src, n=50)
    good = tmp_path / "good.npz"
    with open_gallery(src, create=False) as g:
        g.export(good)
    raw = good.read_bytes()
    out = {"garbage": os.urandom(2000), "truncated": raw[: len(raw) // 2]}
    with np.load(good) as z:
        manifest, vectors = json.loads(str(z["manifest"])), np.array(z["vectors"])
    bad_vectors = vectors.copy()
    bad_vectors[7] = np.nan
    no_subject = json.loads(json.dumps(manifest))
    del no_subject["templates"][30]["subject"]
    for name, (m, v) in {"nan": (manifest, bad_vectors), "malformed": (no_subject, vectors)}.items():
        p = tmp_path / f"{name}.npz"
        np.savez(p, vectors=v, template_ids=np.arange(len(v)), manifest=np.array(json.dumps(m)))
        out[name] = p.read_bytes()
    paths = {}
    for name, data in out.items():
        paths[name] = tmp_path / f"bad-{name}.npz"
        paths[name].write_bytes(data)
    return paths


def test_a_failed_import_leaves_no_half_made_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "existing"
    synthetic_gallery(existing, n=20)
    for name, bad in _bad_exports(tmp_path).items():
        new = tmp_path / f"new-{name}"
        code, _out, err = run(capsys, "import", str(new), str(bad))
        assert code == 6 and one_error_line(err) and "export" in err, (name, code, err)
        assert not new.exists(), f"{name}: a half-made gallery was left behind"
        code, _out, err = run(capsys, "import", str(existing), str(bad))
        assert code == 6 and one_error_line(err), (name, err)
        with open_gallery(existing, create=False) as g:
            assert g.stats()["templates"] == 20, f"{name}: part of a bad export was imported"


# --- the CLI's inputs -----------------------------------------------------------------------------


@pytest.fixture
def cli_gallery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    g = str(tmp_path / "g")
    assert run(capsys, "create", g)[0] == 0
    return g


def test_enrol_without_images_is_a_usage_error(cli_gallery: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "enroll", cli_gallery, "bob")
    assert code == 2 and one_error_line(err) and "no images" in err
    empty = Path(cli_gallery).parent / "empty"
    empty.mkdir()
    assert run(capsys, "enroll", cli_gallery, "bob", str(empty))[0] == 2


@pytest.mark.parametrize("name", ["", "./bob", "bob/", "a//b", "../bob", "bob\n"])
def test_subject_names_are_checked_as_the_service_does_never_normalised(
    cli_gallery: str, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    img = str(data_path("faces_small", "obama", "obama.jpg"))
    code, _out, err = run(capsys, "enroll", cli_gallery, name, img)
    assert code == 2 and one_error_line(err) and "invalid subject name" in err
    assert run(capsys, "list", cli_gallery)[1] == ""  # nothing enrolled, under any name


def test_valid_names_are_kept_verbatim_and_folder_names_are_checked(
    tmp_path: Path, cli_gallery: str, capsys: pytest.CaptureFixture[str]
) -> None:
    img = data_path("faces_small", "obama", "obama.jpg")
    assert run(capsys, "enroll", cli_gallery, "Bob.Smith-2@example", str(img))[0] == 0
    code, out, _err = run(capsys, "list", cli_gallery, "--json")
    assert [json.loads(x)["name"] for x in out.splitlines()] == ["Bob.Smith-2@example"]
    assert run(capsys, "rename", cli_gallery, "Bob.Smith-2@example", "bob smith")[0] == 2
    people = tmp_path / "people"
    (people / "ada lovelace").mkdir(parents=True)
    shutil.copy(img, people / "ada lovelace" / "a.jpg")
    code, _out, err = run(capsys, "enroll", cli_gallery, "--folders", str(people))
    assert code == 2 and "ada lovelace" in err


def test_an_embedder_without_its_model_file_is_exit_5(cli_gallery: str, capsys: pytest.CaptureFixture[str]) -> None:
    img = str(data_path("faces_small", "obama", "obama.jpg"))
    code, _out, err = run(capsys, "enroll", cli_gallery, "--embedder", "onnx-arcface", "bob", img)
    assert code == 5 and one_error_line(err) and "model" in err
    code, _out, err = run(capsys, "migrate", cli_gallery, "--embedder", "onnx-arcface")
    assert code == 5 and one_error_line(err) and "model" in err


def test_enrolment_failures_keep_their_exceptions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with open_gallery(tmp_path / "lib") as g:
        rep = g.enroll_images([("bob", bad)])
    assert rep.templates == 0 and isinstance(rep.failed[0].exception, ImageError)
    assert rep.failed[0].error.startswith(type(rep.failed[0].exception).__name__)
    g2 = str(tmp_path / "g")
    assert run(capsys, "create", g2)[0] == 0
    assert run(capsys, "enroll", g2, "bob", str(bad))[0] == 3  # mapped by the exception's type
    no_face = str(data_path("non_faces", "skimage_coffee.png"))
    assert run(capsys, "enroll", g2, "bob", no_face)[0] == 4


# --- more of the same kind --------------------------------------------------------------------------


def test_verify_refuses_a_nan_threshold(cli_gallery: str, capsys: pytest.CaptureFixture[str]) -> None:
    img = str(data_path("faces_small", "obama", "obama.jpg"))
    assert run(capsys, "enroll", cli_gallery, "obama", img)[0] == 0
    code, _out, err = run(capsys, "verify", cli_gallery, img, "obama", "--threshold", "nan")
    assert code == 2 and one_error_line(err) and "NaN" in err


def test_a_gallery_path_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    code, _out, err = run(capsys, "create", str(tmp_path / "file" / "g"))
    assert code == 6 and one_error_line(err)


def test_removing_a_subject_only_deletes_images_inside_the_gallery(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    path = tmp_path / "g"
    with open_gallery(path, keep_source_images=True) as g:
        g.enroll_embeddings("bob", emb(unit_vectors(1)[0]))
    (path / "images" / "ab").mkdir(parents=True)  # as in a gallery that has kept images
    db = sqlite3.connect(path / "gallery.sqlite")  # a tampered database: a source outside images/
    with db:
        db.execute("UPDATE templates SET source = 'ab/../../../victim.txt'")
    db.close()
    with open_gallery(path, create=False) as g:
        assert g.remove("bob") == 1
    assert victim.read_text() == "keep me"
