"""Synthetic attacks: deterministic per seed, they change the image as documented, sets carry a manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.attacks.synthetic import MANIFEST, SPECIES, build_attack_set, image_seed, make_attack, read_manifest
from faceprint.errors import ConfigurationError, ImageDimensionError
from faceprint.io import load_image

from ..conftest import data_path


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(data_path("lfw_view1", "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg"))


@pytest.mark.parametrize("species", SPECIES)
def test_deterministic_per_seed_and_the_image_changes(photo: np.ndarray, species: str) -> None:
    before = photo.copy()
    a = make_attack(photo, species, seed=3)
    assert a.shape == photo.shape and a.dtype == np.uint8
    assert np.array_equal(a, make_attack(photo, species, seed=3))
    assert not np.array_equal(a, make_attack(photo, species, seed=4))
    assert np.array_equal(photo, before)  # the input is not written to
    assert np.abs(a.astype(int) - photo).mean() > 5


def test_print_raises_the_black_level_and_mask_leaves_the_background(photo: np.ndarray) -> None:
    p = make_attack(photo, "print", seed=1)
    assert np.percentile(p, 1) >= np.percentile(photo, 1) + 10  # ink on paper never reaches black
    m = make_attack(photo, "mask", seed=1).astype(int)
    corner = np.abs(m[:30, :30] - photo[:30, :30]).mean()
    centre = np.abs(m[100:150, 100:150] - photo[100:150, 100:150]).mean()
    assert corner < 8 < centre  # the paper covers the face, not the corners


def test_bad_input(photo: np.ndarray) -> None:
    with pytest.raises(ConfigurationError, match="species"):
        make_attack(photo, "hologram", seed=0)
    with pytest.raises(ImageDimensionError):
        make_attack(photo.astype(np.float32), "print", seed=0)  # type: ignore[arg-type]


def test_build_attack_set_keeps_subject_folders_and_writes_a_manifest(tmp_path: Path) -> None:
    root = data_path("lfw_view1")
    src = sorted((root / "Aaron_Peirsol").glob("*.jpg"))[:2]
    out = build_attack_set(src, tmp_path / "atk", root=root, species=("print", "replay"), seed=7)
    assert [p.relative_to(tmp_path / "atk").as_posix() for p in out["print"]] == [
        f"print/Aaron_Peirsol/{p.stem}.jpg" for p in src
    ]
    manifest = json.loads((tmp_path / "atk" / "print" / MANIFEST).read_text())
    assert manifest["synthetic"] and manifest["label"] == "synthetic attacks" and manifest["seed"] == 7
    assert read_manifest(tmp_path / "atk" / "replay") is not None and read_manifest(root) is None
    again = build_attack_set(src, tmp_path / "again", root=root, species=("print",), seed=7)
    assert out["print"][0].read_bytes() == again["print"][0].read_bytes()
    assert image_seed(7, "print", "a/b.jpg") != image_seed(7, "replay", "a/b.jpg")
