from __future__ import annotations

from pathlib import Path

import pytest

from faceprint.errors import ConfigurationError
from faceprint.evaluation import read_lfw_pairs

from .conftest import data_path


def test_lfw_view1_pair_files_parse_and_name_existing_images() -> None:
    train = read_lfw_pairs(data_path("lfw_view1", "pairsDevTrain.txt"))
    test = read_lfw_pairs(data_path("lfw_view1", "pairsDevTest.txt"))
    assert (sum(p.mated for p in train), sum(not p.mated for p in train)) == (1100, 1100)
    assert (sum(p.mated for p in test), sum(not p.mated for p in test)) == (500, 500)
    for p in train + test:
        assert p.a.is_file() and p.b.is_file()
        assert p.mated == (p.identity_a == p.identity_b)


def test_bad_pairs_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("2\nA 1 2\nA 1 B x\n")
    with pytest.raises(ConfigurationError, match=r"pairs.txt:3"):
        read_lfw_pairs(f)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_lfw_pairs(tmp_path / "missing.txt")
