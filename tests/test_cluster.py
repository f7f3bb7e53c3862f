"""Identity clustering: synthetic clusters, golden metric values, real photos and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from faceprint import cluster as cl
from faceprint.cluster import (
    METHODS,
    ClusterResult,
    FaceClustering,
    FaceRef,
    bcubed_f1,
    cluster_embeddings,
    cluster_faces,
    export_cluster_folders,
    pairwise_prf,
    similarity_edges,
)
from faceprint.errors import ConfigurationError, InvalidEmbeddingError
from faceprint.models import get_spec
from faceprint.types import BBox, Detection

from .conftest import data_path

SIZES = (20, 13, 8, 5, 3, 2)  # six clusters, then three faces like no other


def synthetic(seed: int = 0, dim: int = 128, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated clusters around random unit centres (within-cluster cosine ≳ 0.99, across ≲ 0.4),
    shuffled; truth labels 0…5 by size, -1 for the three isolated faces."""
    rng = np.random.default_rng(seed)
    k = len(SIZES) + 3
    centres = rng.normal(size=(k, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.concatenate([np.full(n, i) for i, n in enumerate(SIZES)] + [np.full(1, -1)] * 3)
    which = np.concatenate(
        [np.full(n, i) for i, n in enumerate(SIZES)] + [np.full(1, len(SIZES) + j) for j in range(3)]
    )
    x = centres[which] + noise * rng.normal(size=(which.size, dim)) / np.sqrt(dim)
    x *= rng.uniform(0.5, 3.0, size=(which.size, 1))  # any norm: rows are normalised
    perm = rng.permutation(which.size)
    return x[perm].astype(np.float32), truth[perm]


# --- cluster_embeddings ------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_well_separated_clusters_are_recovered_exactly(method: str) -> None:
    x, truth = synthetic()
    r = cluster_embeddings(x, method=method, threshold=0.8)
    assert isinstance(r, ClusterResult) and r.method == method
    # canonical labels: same numbering as the truth (largest cluster 0), isolated faces -1
    np.testing.assert_array_equal(r.labels, truth)
    assert r.n_clusters == len(SIZES) and r.sizes == list(SIZES) and r.n_singletons == 3
    assert r.labels.dtype == np.int64 and not r.labels.flags.writeable
    assert pairwise_prf(truth, r.labels) == (1.0, 1.0, 1.0)
    assert [m.size for m in r.members()] == list(SIZES)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_given_the_seed(method: str) -> None:
    x, _ = synthetic(seed=3, noise=0.9)  # noisier: ties and borderline edges exist
    a = cluster_embeddings(x, method=method, threshold=0.6, seed=7)
    b = cluster_embeddings(x, method=method, threshold=0.6, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.seed == 7


def test_chinese_whispers_seed_changes_only_the_visit_order() -> None:
    x, truth = synthetic(seed=1)
    for seed in range(4):
        np.testing.assert_array_equal(cluster_embeddings(x, threshold=0.8, seed=seed).labels, truth)


def test_min_cluster_size() -> None:
    x, truth = synthetic()
    r = cluster_embeddings(x, threshold=0.8, min_cluster_size=1)
    assert r.n_singletons == 0 and r.n_clusters == len(SIZES) + 3
    r = cluster_embeddings(x, threshold=0.8, min_cluster_size=4)
    assert r.sizes == [20, 13, 8, 5] and r.n_singletons == 3 + 3 + 2
    one = cluster_embeddings(x[:1], threshold=0.8)
    assert one.labels.tolist() == [-1] and one.n_clusters == 0
    assert cluster_embeddings(x[:1], threshold=0.8, min_cluster_size=1).labels.tolist() == [0]


def test_edges_are_found_blockwise_like_the_full_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = synthetic(seed=2, noise=1.0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    monkeypatch.setattr(cl, "_BLOCK_BYTES", 4 * x.shape[0] * 7)  # 7 rows per block
    i, j, w = similarity_edges(x, 0.5)
    s = x @ x.T
    ei, ej = np.nonzero(np.triu(s >= 0.5, k=1))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(zip(ei.tolist(), ej.tolist(), strict=True))
    np.testing.assert_allclose(w, s[i, j], rtol=1e-5)
    with pytest.raises(ConfigurationError, match="raise the threshold"):
        cluster_embeddings(x, threshold=-1.0, max_edges=100)


def test_default_threshold_is_a_calibrated_operating_point_of_the_model() -> None:
    x, _ = synthetic()
    points = get_spec("dlib-resnet-v1").operating_points
    r = cluster_embeddings(x, model="dlib-resnet-v1")
    assert r.threshold == pytest.approx(points["fmr=0.0001"].threshold) and r.operating_point == "fmr=0.0001"
    tagged = cluster_embeddings(x, model="dlib-resnet-v1@1-55533b28a958", operating_point="eer")
    assert tagged.operating_point == "eer" and tagged.threshold == pytest.approx(points["eer"].threshold)
    explicit = cluster_embeddings(x, threshold=0.5, model="dlib-resnet-v1")
    assert explicit.threshold == 0.5 and explicit.operating_point is None
    # hdbscan needs no threshold and takes one only when it is given explicitly
    assert cluster_embeddings(x, method="hdbscan", model="dlib-resnet-v1").threshold is None


@pytest.mark.parametrize(
    ("vectors", "match"),
    [
        (np.zeros((0, 128), np.float32), "no embeddings"),
        (np.ones(128, np.float32), "2-D"),
        (np.ones((3, 4, 5), np.float32), "2-D"),
        (np.ones((3, 0), np.float32), "zero length"),
        (np.array([[1.0, 0.0], [np.nan, 1.0]], np.float32), "NaN"),
        (np.array([[1.0, 0.0], [0.0, np.inf]], np.float32), "NaN or infinite"),
        (np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), "zero norm"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_bad_vectors_are_refused(vectors: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidEmbeddingError, match=match) as info:
        cluster_embeddings(vectors, threshold=0.9)
    assert isinstance(info.value, ValueError)


def test_bad_settings_are_refused() -> None:
    x, _ = synthetic()
    with pytest.raises(ConfigurationError, match="chinese-whispers, agglomerative, hdbscan"):
        cluster_embeddings(x, method="kmeans", threshold=0.9)
    with pytest.raises(ConfigurationError, match="needs a similarity threshold"):
        cluster_embeddings(x)
    with pytest.raises(ConfigurationError, match=r"\[-1, 1\]"):
        cluster_embeddings(x, threshold=1.5)
    with pytest.raises(ConfigurationError, match="min_cluster_size"):
        cluster_embeddings(x, threshold=0.9, min_cluster_size=0)
    with pytest.raises(ConfigurationError, match="hdbscan needs min_cluster_size"):
        cluster_embeddings(x, method="hdbscan", min_cluster_size=1)
    with pytest.raises(ConfigurationError, match="no operating point"):
        cluster_embeddings(x, model="dlib-resnet-v1", operating_point="fmr=0.5")


# --- evaluation: golden values -----------------------------------------------------------------

# truth: {0,1,2} {3,4} {5}; prediction: {0,1} {2,3,4} and 5 a singleton.
# pairs: true (0,1)(0,2)(1,2)(3,4); predicted (0,1)(2,3)(2,4)(3,4); both (0,1)(3,4) → P = R = 2/4.
# BCubed per item (P, R): 0,1: (2/2, 2/3); 2: (1/3, 1/3); 3,4: (2/3, 2/2); 5: (1, 1)
# → P = (1 + 1 + 1/3 + 2/3 + 2/3 + 1)/6 = 7/9, R = (2/3 + 2/3 + 1/3 + 1 + 1 + 1)/6 = 7/9, F1 = 7/9.
TRUE = [0, 0, 0, 1, 1, 2]
PRED = [0, 0, 1, 1, 1, -1]


def test_pairwise_golden() -> None:
    assert pairwise_prf(TRUE, PRED) == pytest.approx((0.5, 0.5, 0.5))
    assert pairwise_prf(TRUE, TRUE) == (1.0, 1.0, 1.0)
    # one person split into {0,1}, {2}, {3}: 1 of 6 pairs found, none wrong
    assert pairwise_prf([0, 0, 0, 0], [0, 0, 1, -1]) == pytest.approx((1.0, 1 / 6, 2 / 7))
    # everything in one cluster: 15 pairs claimed, 4 right
    assert pairwise_prf(TRUE, [7] * 6) == pytest.approx((4 / 15, 1.0, 2 * (4 / 15) / (1 + 4 / 15)))
    # all singletons: nothing claimed (precision 1 by convention), nothing found
    assert pairwise_prf(TRUE, [-1] * 6) == (1.0, 0.0, 0.0)
    # -1 in the truth is a singleton too: two people wrongly joined
    assert pairwise_prf([-1, -1], [0, 0]) == (0.0, 1.0, 0.0)


def test_bcubed_golden() -> None:
    p, r, f = bcubed_f1(TRUE, PRED)
    assert (p, r, f) == pytest.approx((7 / 9, 7 / 9, 7 / 9))
    # one person split into {0,1}, {2}, {3}: every item pure; recall 2/4, 2/4, 1/4, 1/4
    assert bcubed_f1([0, 0, 0, 0], [0, 0, 1, -1]) == pytest.approx((1.0, 3 / 8, 6 / 11))
    assert bcubed_f1(TRUE, TRUE) == pytest.approx((1.0, 1.0, 1.0))
    # one big cluster: items of {0,1,2}: 3/6, of {3,4}: 2/6, of {5}: 1/6 → P = (9 + 4 + 1)/36
    assert bcubed_f1(TRUE, [7] * 6) == pytest.approx((14 / 36, 1.0, 2 * (14 / 36) / (1 + 14 / 36)))
    # all singletons: P = 1, R = (1/3·3 + 1/2·2 + 1)/6 = 1/2
    assert bcubed_f1(TRUE, [-1] * 6) == pytest.approx((1.0, 0.5, 2 / 3))
    assert bcubed_f1([-1, -1], [0, 0]) == pytest.approx((0.5, 1.0, 2 / 3))


def test_metrics_accept_names_and_match_sklearn() -> None:
    names = ["ann", "ann", "ann", "bob", "bob", "cy"]
    assert pairwise_prf(names, PRED) == pytest.approx((0.5, 0.5, 0.5))
    assert bcubed_f1(names, PRED) == pytest.approx((7 / 9, 7 / 9, 7 / 9))
    # relabelling either side changes nothing; swapping the sides swaps precision and recall
    assert bcubed_f1([5, 5, 5, 9, 9, 1], [3, 3, 0, 0, 0, -1]) == pytest.approx((7 / 9, 7 / 9, 7 / 9))
    assert bcubed_f1([0, 0, 1, -1], [0, 0, 0, 0]) == pytest.approx((3 / 8, 1.0, 6 / 11))
    from sklearn.metrics.cluster import pair_confusion_matrix

    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 12, 300), rng.integers(0, 9, 300)
    c = pair_confusion_matrix(t, p)  # counts ordered pairs
    prec, rec, _ = pairwise_prf(t, p)
    assert prec == pytest.approx(c[1, 1] / (c[1, 1] + c[0, 1])) and rec == pytest.approx(c[1, 1] / (c[1, 1] + c[1, 0]))


def test_metrics_refuse_bad_input() -> None:
    with pytest.raises(ConfigurationError, match="6 items but labels_pred has 5"):
        pairwise_prf(TRUE, PRED[:5])
    with pytest.raises(ConfigurationError, match="no labels"):
        bcubed_f1([], [])
    with pytest.raises(ConfigurationError, match="1-D"):
        bcubed_f1([[0, 1]], [[0, 1]])


# --- export folders (synthetic clustering over small files) ------------------------------------


def _fake_clustering(tmp_path: Path) -> tuple[FaceClustering, dict[str, bytes]]:
    """photo a/x.jpg: faces in clusters 0 and 1; b/x.jpg (same name): cluster 0; c.jpg: a singleton."""
    src = tmp_path / "photos"
    files = {"a/x.jpg": b"A", "b/x.jpg": b"B", "c.jpg": b"C"}
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    det = Detection(BBox(1, 2, 3, 4), 0.9)
    refs = (
        FaceRef(str(src / "a/x.jpg"), 0, det),
        FaceRef(str(src / "a/x.jpg"), 1, det),
        FaceRef(str(src / "b/x.jpg"), 0, det),
        FaceRef(str(src / "c.jpg"), 0, det),
    )
    labels = np.array([0, 1, 0, -1])
    res = ClusterResult(labels, 2, "chinese-whispers", 0.9)
    return FaceClustering(refs, np.eye(4, 8, dtype=np.float32), res, "m@1", images=3), {
        str(src / k): v for k, v in files.items()
    }


@pytest.mark.parametrize("mode", ["copy", "link", "symlink"])
def test_export_puts_each_photo_in_each_of_its_clusters(tmp_path: Path, mode: str) -> None:
    fc, originals = _fake_clustering(tmp_path)
    out = tmp_path / "out"
    rows = export_cluster_folders(fc, out, mode=mode)  # type: ignore[arg-type]
    got = sorted(str(Path(r["path"]).relative_to(out)) for r in rows)
    assert got == ["cluster_0001/x.jpg", "cluster_0001/x_2.jpg", "cluster_0002/x.jpg", "singletons/c.jpg"]
    for r in rows:
        assert Path(r["path"]).read_bytes() == originals[r["image"]]
        assert r["kind"] == {"copy": "copy", "symlink": "symlink"}.get(mode, r["kind"])
        if mode == "symlink":
            assert Path(r["path"]).is_symlink()
    for path, data in originals.items():
        assert Path(path).read_bytes() == data and not Path(path).is_symlink()


def test_export_refuses_a_non_empty_folder_and_never_overwrites(tmp_path: Path) -> None:
    fc, originals = _fake_clustering(tmp_path)
    out = tmp_path / "out"
    (out / "cluster_0001").mkdir(parents=True)
    (out / "cluster_0001" / "x.jpg").write_bytes(b"mine")
    with pytest.raises(ConfigurationError, match="not empty"):
        export_cluster_folders(fc, out)
    rows = export_cluster_folders(fc, out, force=True)
    assert (out / "cluster_0001" / "x.jpg").read_bytes() == b"mine"
    assert sorted(p.name for p in (out / "cluster_0001").iterdir()) == ["x.jpg", "x_2.jpg", "x_3.jpg"]
    assert len(rows) == 4
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigurationError, match="not a folder"):
        export_cluster_folders(fc, tmp_path / "file")
    with pytest.raises(ConfigurationError, match="export mode"):
        export_cluster_folders(fc, tmp_path / "new", mode="move")  # type: ignore[arg-type]


def test_to_dict_lists_clusters_singletons_and_settings(tmp_path: Path) -> None:
    fc, _ = _fake_clustering(tmp_path)
    d = fc.to_dict()
    assert d["n_clusters"] == 2 and [c["id"] for c in d["clusters"]] == ["cluster_0001", "cluster_0002"]
    assert d["clusters"][0]["faces"][1] == {
        "image": str(tmp_path / "photos/b/x.jpg"),
        "face_index": 0,
        "bbox": [1, 2, 3, 4],
    }
    assert [s["image"] for s in d["singletons"]] == [str(tmp_path / "photos/c.jpg")]
    assert d["settings"]["method"] == "chinese-whispers" and d["settings"]["threshold"] == 0.9
    json.dumps(d)


# --- real photos -------------------------------------------------------------------------------


def _person(source: str) -> str:
    return Path(source).parent.name


@pytest.fixture(scope="module")
def small_clustering(pipeline) -> FaceClustering:  # type: ignore[no-untyped-def]
    folder = data_path("faces_small")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return cluster_faces(paths, pipeline, workers=1)


@pytest.mark.slow
def test_faces_small_is_clustered_into_its_people(small_clustering: FaceClustering) -> None:
    fc = small_clustering
    assert fc.images == 17 and not fc.failed and len(fc.faces) >= 17
    assert fc.model.startswith("dlib-resnet-v1@") and fc.embeddings.shape == (len(fc.faces), 128)
    assert fc.result.operating_point == "fmr=0.0001"
    truth = [_person(f.source) for f in fc.faces]
    p, r, f1 = pairwise_prf(truth, fc.result.labels)
    bp, br, bf1 = bcubed_f1(truth, fc.result.labels)
    assert f1 >= 0.9 and bf1 >= 0.9, (p, r, bp, br)
    # the one person with a single photo is a singleton; each cluster is one person
    assert "lin_manuel_miranda" in {_person(f.source) for f in fc.singletons()}
    assert all(len({_person(f.source) for f in c}) == 1 for c in fc.clusters())


@pytest.mark.slow
def test_faces_small_with_the_other_methods(small_clustering: FaceClustering) -> None:
    truth = [_person(f.source) for f in small_clustering.faces]
    thr = small_clustering.result.threshold
    for method in ("agglomerative", "hdbscan"):
        r = cluster_embeddings(small_clustering.embeddings, method=method, threshold=thr)
        assert bcubed_f1(truth, r.labels)[2] >= 0.9, method


@pytest.mark.slow
def test_no_faces_gives_zero_clusters(pipeline) -> None:  # type: ignore[no-untyped-def]
    fc = cluster_faces([data_path("non_faces", "skimage_coffee.png"), b"not an image"], pipeline, workers=1)
    assert fc.images == 2 and len(fc.failed) == 1 and fc.images_without_face == 1
    assert fc.result.n_clusters == 0 and fc.embeddings.shape == (0, 128) and fc.to_dict()["clusters"] == []


# --- CLI ---------------------------------------------------------------------------------------


def _digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_cli_cluster_copies_photos_into_cluster_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from faceprint.cli import main

    folder = data_path("faces_small")
    before = _digest(folder)
    out_json, outdir = tmp_path / "clusters.json", tmp_path / "sorted"
    code = main(["cluster", str(folder), "-o", str(out_json), "--copy-to", str(outdir), "--workers", "1", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["images"] == 17 and summary["clusters"] == 5 and summary["files_written"] == 17

    doc = json.loads(out_json.read_text())
    assert doc["model"].startswith("dlib-resnet-v1@") and doc["n_clusters"] == 5
    assert doc["settings"]["method"] == "chinese-whispers" and doc["settings"]["operating_point"] == "fmr=0.0001"
    assert doc["settings"]["threshold"] == pytest.approx(0.94, abs=0.01)
    assert doc["export"] == {"folder": str(outdir), "mode": "copy", "files": 17}
    for c in doc["clusters"]:
        assert len({_person(f["image"]) for f in c["faces"]}) == 1
        for f in c["faces"]:
            assert Path(f["image"]).is_file() and len(f["bbox"]) == 4 and f["face_index"] >= 0
            copy = outdir / c["id"] / Path(f["image"]).name
            assert copy.read_bytes() == Path(f["image"]).read_bytes() and not copy.is_symlink()
    assert "lin_manuel_miranda" in {_person(s["image"]) for s in doc["singletons"]}
    assert (outdir / "singletons" / "lin-manuel-miranda.png").is_file()
    assert _digest(folder) == before  # originals untouched

    # a non-empty OUTDIR is refused (before any embedding), as are conflicting options
    again = main(["cluster", str(folder), "-o", str(out_json), "--copy-to", str(outdir)])
    assert again == 2 and "not empty" in capsys.readouterr().err
    both = main(
        [
            "cluster",
            str(folder),
            "-o",
            str(out_json),
            "--copy-to",
            str(tmp_path / "a"),
            "--link-to",
            str(tmp_path / "b"),
        ]
    )
    assert both == 2
    inside = main(["cluster", str(folder), "-o", str(out_json), "--copy-to", str(folder / "out")])
    assert inside == 2 and not (folder / "out").exists()
