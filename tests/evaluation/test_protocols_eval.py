"""Protocol loaders: LFW views, InsightFace .bin, IJB-B/C, folder-per-identity and CSV."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint.errors import ConfigurationError, DataFormatError
from faceprint.evaluation.protocols import (
    ImageRef,
    aggregate_templates,
    folder_protocol,
    kfold_ids,
    read_csv_protocol,
    read_ijb_identification,
    read_ijb_verification,
    read_insightface_bin,
    read_lfw_protocol,
)

from ..conftest import data_path


def lfw_jpeg(name: str, num: int, size: int | None = None) -> bytes:
    """Real JPEG bytes of an LFW image, optionally resized to size×size."""
    im = Image.open(data_path("lfw_view1", name, f"{name}_{num:04d}.jpg")).convert("RGB")
    if size:
        im = im.resize((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --- LFW ------------------------------------------------------------------------------------------


def test_lfw_view1_protocol_counts_subjects_and_existing_images() -> None:
    p = read_lfw_protocol(data_path("lfw_view1", "pairsDevTest.txt"))
    assert (len(p), p.n_mated, p.n_nonmated, p.folds) == (1000, 500, 500, None)
    assert len({im.key for im in p.images}) == len(p.images)
    assert all(os.path.isfile(im.path) for im in p.images[:50])
    assert p.images[0].key == "Abdullah_Gul/Abdullah_Gul_0013.jpg"
    np.testing.assert_array_equal(p.mated, p.subject_a == p.subject_b)
    for a, b, mated in list(p.pairs())[:5]:
        assert mated == (a.subject == b.subject)


def test_lfw_view2_header_gives_contiguous_folds(tmp_path: Path) -> None:
    lines = ["2 2"]
    for k in range(2):
        lines += [f"A{k} 1 2", f"B{k} 1 3", f"A{k} 1 B{k} 2", f"C{k} 4 D{k} 1"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    p = read_lfw_protocol(tmp_path / "pairs.txt", name="view2")
    np.testing.assert_array_equal(p.folds, [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(p.mated, [1, 1, 0, 0] * 2)
    assert p.n_folds == 2 and len(p.fold(1)) == 4 and p.fold(1).images is p.images
    assert p.images[p.b[2]].key == "B0/B0_0002.jpg"

    (tmp_path / "bad.txt").write_text("2 2\nA 1 2\n")
    with pytest.raises(DataFormatError, match=r"bad.txt:1: header says 2 folds"):
        read_lfw_protocol(tmp_path / "bad.txt")
    (tmp_path / "bad2.txt").write_text("1\nA 1 2 3 4 5\n")
    with pytest.raises(DataFormatError, match=r"bad2.txt:2"):
        read_lfw_protocol(tmp_path / "bad2.txt")


# --- InsightFace .bin -------------------------------------------------------------------------------


def write_bin(path: Path, bins: list[object], issame: list[object], protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    with open(path, "wb") as f:
        pickle.dump((bins, issame), f, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_insightface_bin_with_real_jpeg_bytes(tmp_path: Path, protocol: int) -> None:
    people = [("Abdullah_Gul", 13), ("Abdullah_Gul", 14), ("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2)]
    jpgs = [lfw_jpeg(n, k, 112) for n, k in people]
    bins = [jpgs[0], jpgs[1], jpgs[0], jpgs[2]] * 10  # 20 pairs: mated, non-mated, …
    issame = [True, False] * 10
    p = read_insightface_bin(write_bin(tmp_path / "tiny.bin", bins, issame, protocol))
    assert (p.name, len(p), len(p.images), p.prealigned) == ("tiny", 20, 40, "arcface112")
    np.testing.assert_array_equal(p.a, np.arange(0, 40, 2))
    np.testing.assert_array_equal(p.b, np.arange(1, 40, 2))
    np.testing.assert_array_equal(p.mated, issame)
    np.testing.assert_array_equal(p.folds, np.repeat(np.arange(10), 2))
    assert p.images[3].key == "tiny#3" and p.images[3].data == jpgs[2] and p.images[3].path is None
    assert Image.open(io.BytesIO(p.images[0].read_bytes())).size == (112, 112)
    assert read_insightface_bin(tmp_path / "tiny.bin", prealigned=None).prealigned is None


def test_insightface_bin_numpy_image_arrays_and_bools(tmp_path: Path) -> None:
    jpg = lfw_jpeg("Abdullah_Gul", 13, 112)
    arr = np.frombuffer(jpg, dtype=np.uint8)
    f = write_bin(tmp_path / "np.bin", [arr] * 20, list(np.array([True, False] * 5)))
    p = read_insightface_bin(f, n_folds=5)
    assert p.images[0].data == jpg and p.n_mated == 5
    np.testing.assert_array_equal(p.folds, np.repeat(np.arange(5), 2))


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getcwd, ())  # harmless stand-in for os.system


def test_insightface_bin_refuses_code_and_bad_structure(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"refusing to load posix.getcwd|refusing to load os.getcwd"):
        read_insightface_bin(write_bin(tmp_path / "evil.bin", [_Evil()], [True]))
    with pytest.raises(DataFormatError, match="two images per pair"):
        read_insightface_bin(write_bin(tmp_path / "odd.bin", [b"x"] * 3, [True]))
    (tmp_path / "junk.bin").write_bytes(b"not a pickle at all")
    with pytest.raises(DataFormatError, match="not an InsightFace"):
        read_insightface_bin(tmp_path / "junk.bin")
    with pytest.raises(DataFormatError, match="does not exist"):
        read_insightface_bin(tmp_path / "missing.bin")
    with pytest.raises(ConfigurationError, match="prealigned"):
        read_insightface_bin(write_bin(tmp_path / "ok.bin", [b"x"] * 20, [True] * 10), prealigned="nope")


def test_kfold_ids_match_sklearn_kfold_without_shuffle() -> None:
    # sklearn.model_selection.KFold(3).split(range(10)) gives test folds of 4, 3, 3 contiguous items
    np.testing.assert_array_equal(kfold_ids(10, 3), [0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert np.bincount(kfold_ids(6000)).tolist() == [600] * 10
    with pytest.raises(ConfigurationError):
        kfold_ids(5, 10)


# --- IJB-B / IJB-C -------------------------------------------------------------------------------


def make_ijb(root: Path) -> Path:
    meta = root / "meta"
    meta.mkdir(parents=True)
    # image, template id, media id: template 7 has two frames of video 100 and one photo 101
    (meta / "ijbc_face_tid_mid.txt").write_text(
        "1.jpg 7 100\n2.jpg 7 100\n3.jpg 7 101\n4.jpg 9 200\n5.jpg 11 300\n6.jpg 11 301\n7.jpg 13 400\n"
    )
    (meta / "ijbc_template_pair_label.txt").write_text("7 9 1\n7 11 0\n9 13 0\n11 13 1\n")
    (meta / "ijbc_1N_gallery_G1.csv").write_text("TEMPLATE_ID,SUBJECT_ID,FILENAME\n7,1,img/1.jpg\n7,1,img/2.jpg\n")
    (meta / "ijbc_1N_gallery_G2.csv").write_text("TEMPLATE_ID,SUBJECT_ID,FILENAME\n11,2,img/5.jpg\n")
    (meta / "ijbc_1N_probe_mixed.csv").write_text(
        "TEMPLATE_ID,SUBJECT_ID,FILENAME\n9,1,frames/1.png\n13,2,frames/2.png\n13,2,frames/3.png\n"
    )
    return root


def test_ijb_verification_reads_templates_and_pairs(tmp_path: Path) -> None:
    root = make_ijb(tmp_path / "IJBC")
    p = read_ijb_verification(root)
    t = p.templates
    assert t is not None and p.name == "IJBC-1:1"
    assert t.ids.tolist() == [7, 9, 11, 13]
    assert [im.key for im in p.images] == [f"{i}.jpg" for i in range(1, 8)]
    assert p.images[0].path == os.fspath(root / "loose_crop" / "1.jpg")
    assert t.ids[p.a].tolist() == [7, 7, 9, 11] and t.ids[p.b].tolist() == [9, 11, 13, 13]
    assert p.mated.tolist() == [True, False, False, True]
    assert p.side_keys()[0][0] == "template:7"

    (root / "meta" / "ijbc_template_pair_label.txt").write_text("7 9 1\n7 99 0\n")
    with pytest.raises(DataFormatError, match=r"template ids \[99\]"):
        read_ijb_verification(root)
    (root / "meta" / "ijbc_template_pair_label.txt").write_text("7 9 1\n7 x 0\n")
    with pytest.raises(DataFormatError, match=r"ijbc_template_pair_label.txt:2"):
        read_ijb_verification(root)


def test_ijb_identification_galleries_and_probes(tmp_path: Path) -> None:
    p = read_ijb_identification(make_ijb(tmp_path / "IJBC"))
    ids = p.templates.ids
    assert sorted(p.galleries) == ["G1", "G2"]
    assert ids[p.galleries["G1"]].tolist() == [7] and ids[p.galleries["G2"]].tolist() == [11]
    assert ids[p.probes].tolist() == [9, 13]
    assert p.subjects(p.probes).tolist() == ["1", "2"]
    assert p.subjects(p.galleries["G1"]).tolist() == ["1"]


def test_aggregate_templates_mean_per_media_then_sum_normalised() -> None:
    e = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [np.nan, np.nan, np.nan]], dtype=np.float32)
    image = [0, 1, 2, 3, 4, 3]
    template = [0, 0, 0, 1, 2, 3]
    media = [10, 10, 11, 20, 30, 40]
    out, ok = aggregate_templates(e, image, template, media)
    # template 0: mean(e0, e1) of media 10 + e2 of media 11 = (.5, .5, 1) → normalised
    np.testing.assert_allclose(out[0], np.array([0.5, 0.5, 1.0]) / np.sqrt(1.5), rtol=1e-6)
    np.testing.assert_allclose(out[1], [2**-0.5, 2**-0.5, 0], rtol=1e-6)
    assert ok.tolist() == [True, True, False, True] and np.isnan(out[2]).all()
    # media=None: every image its own media (a plain mean); valid= masks failures
    out2, ok2 = aggregate_templates(e, image, template, valid=[True, False, True, True, True])
    np.testing.assert_allclose(out2[0], [2**-0.5, 0, 2**-0.5], rtol=1e-6)
    # weights scale images before the per-media mean
    out3, _ = aggregate_templates(e, [0, 1], [0, 0], [1, 2], weights=[3.0, 1.0])
    np.testing.assert_allclose(out3[0], np.array([3, 1, 0]) / np.sqrt(10), rtol=1e-6)


# --- folder per identity ---------------------------------------------------------------------------


def make_tree(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for k in range(n):
            (root / name / f"{name}_{k}.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not an identity")
    return root


def test_folder_protocol_all_pairs_when_small(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ids", {"ann": 3, "bob": 2, "cy": 1})
    p = folder_protocol(root)
    assert (len(p.images), p.n_mated, p.n_nonmated) == (6, 3 + 1, 15 - 4)
    np.testing.assert_array_equal(p.mated, p.subject_a == p.subject_b)
    assert p.images[0].key == "ann/ann_0.jpg" and p.images[0].subject == "ann"
    assert p.groups is None


def test_folder_protocol_sampling_is_seeded_and_reproducible(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ids", {f"p{i:02d}": 3 for i in range(30)})
    p1 = folder_protocol(root, all_pairs_limit=100, nonmated=200, seed=1)
    p2 = folder_protocol(root, all_pairs_limit=100, nonmated=200, seed=1)
    p3 = folder_protocol(root, all_pairs_limit=100, nonmated=200, seed=2)
    assert p1.n_mated == 90 and p1.n_nonmated == 200
    np.testing.assert_array_equal(p1.a, p2.a)
    np.testing.assert_array_equal(p1.b, p2.b)
    assert not np.array_equal(p1.a, p3.a)
    nm = ~p1.mated
    assert not np.any(p1.subject_a[nm] == p1.subject_b[nm])
    assert len({(a, b) for a, b in zip(p1.a[nm], p1.b[nm], strict=True)}) == 200  # no repeats


def test_folder_protocol_group_labels(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ids", {"ann": 2, "bob": 2, "cy": 2})
    (tmp_path / "groups.csv").write_text("identity,group\nann,A\nbob,A\ncy,B\n")
    p = folder_protocol(root, labels=tmp_path / "groups.csv")
    assert p.groups is not None
    g = dict(zip(zip(p.subject_a, p.subject_b, strict=True), p.groups, strict=True))
    assert g[("ann", "ann")] == "A" and g[("cy", "cy")] == "B" and g[("ann", "cy")] == "A|B"
    same = folder_protocol(root, labels=tmp_path / "groups.csv", same_group_nonmated=True)
    assert set(same.groups[~same.mated].tolist()) == {"A"}
    (tmp_path / "paths.csv").write_text("path,group\nann/ann_0.jpg,X\n")
    q = folder_protocol(root, labels=tmp_path / "paths.csv")
    assert [im.group for im in q.images[:3]] == ["X", "", ""]


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_protocol_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "prot.csv"
    f.write_text("image_a,image_b,mated,fold,group\na/1.jpg,a/2.jpg,1,0,F\na/1.jpg,b/1.jpg,false,1,M\n")
    p = read_csv_protocol(f)
    assert [im.key for im in p.images] == ["a/1.jpg", "a/2.jpg", "b/1.jpg"]
    assert p.images[2].path == os.fspath(tmp_path / "b/1.jpg")
    assert p.mated.tolist() == [True, False] and p.folds.tolist() == [0, 1] and p.groups.tolist() == ["F", "M"]
    assert read_csv_protocol(f, image_root="/data").images[0].path == os.fspath(Path("/data/a/1.jpg"))

    f.write_text("image_a,image_b,mated\na.jpg,b.jpg,1\na.jpg,c.jpg,maybe\n")
    with pytest.raises(DataFormatError, match=r"prot.csv:3: mated must be"):
        read_csv_protocol(f)
    f.write_text("left,right,mated\n")
    with pytest.raises(DataFormatError, match=r"prot.csv:1: header must name image_a,image_b,mated"):
        read_csv_protocol(f)
    f.write_text("image_a,image_b,mated\na.jpg,b.jpg\n")
    with pytest.raises(DataFormatError, match=r"prot.csv:2: expected 3 columns"):
        read_csv_protocol(f)


def test_protocol_validation_and_image_refs() -> None:
    with pytest.raises(ConfigurationError, match="exactly one of"):
        ImageRef("x")
    with pytest.raises(ConfigurationError, match="outside"):
        from faceprint.evaluation.protocols import VerificationProtocol

        VerificationProtocol("p", [ImageRef("a", data=b"1")], np.array([0]), np.array([1]), np.array([True]))
