"""The evaluation runner with the real default pipeline on real LFW photographs.

Work is counted with a wrapper around the real detector (every image that is not prealigned
passes through ``detect`` exactly once), never with a mock of the runner or the cache.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from faceprint import FacePipeline
from faceprint.alignment import align
from faceprint.evaluation.cache import EmbeddingCache
from faceprint.evaluation.protocols import (
    IdentificationProtocol,
    ImageRef,
    TemplateSet,
    VerificationProtocol,
    read_csv_protocol,
    read_insightface_bin,
)
from faceprint.evaluation.runner import (
    EmbeddingResults,
    Failure,
    embed_images,
    embed_protocol,
    score_identification,
    score_protocol,
)
from faceprint.types import Detection, Embedding

from ..conftest import data_path


class CountingDetector:
    """The real detector, counting the images it sees; optionally 'crashes' after ``fail_after``."""

    def __init__(self, inner: object, fail_after: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.calls = 0
        self.fail_after = fail_after

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated crash in the middle of a run")
        return self.inner.detect(image)  # type: ignore[attr-defined]

    def detect_batch(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[list[Detection]]:
        return [self.detect(im) for im in images]


def counting(pipeline: FacePipeline, fail_after: int | None = None) -> tuple[FacePipeline, CountingDetector]:
    det = CountingDetector(pipeline.detector, fail_after)
    return FacePipeline(detector=det, embedder=pipeline.embedder), det  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lfw20() -> list[Path]:
    root = data_path("lfw_view1")
    return sorted(root.glob("*/*.jpg"))[:20]


def vec(x: Embedding | Failure) -> npt.NDArray[np.float32]:
    assert isinstance(x, Embedding), x
    return x.vector


@pytest.mark.slow
def test_embed_images_in_process_gives_embeddings_and_failures(pipeline: FacePipeline, lfw20: list[Path]) -> None:
    non_face = data_path("non_faces", "skimage_coffee.png")
    images = [*lfw20[:3], non_face, b"this is not an image", "/nonexistent/face.jpg"]
    res = embed_images(images, pipeline, workers=1)
    assert isinstance(res, EmbeddingResults) and len(res) == 6
    assert res.model == f"{pipeline.embedder.model_id}@{pipeline.embedder.model_version}"
    for p in lfw20[:3]:
        np.testing.assert_allclose(vec(res[str(p)]), pipeline.embed_one(p).embedding.vector, atol=1e-6)
    assert res[str(non_face)] == Failure("no_face")
    bad = [v for k, v in res.items() if k.startswith("sha256:")][0]
    assert isinstance(bad, Failure) and bad.kind == "error" and bad.error_type == "UnsupportedImageError"
    assert res["/nonexistent/face.jpg"].error_type == "ImageNotFoundError"  # type: ignore[union-attr]
    assert res.stats == {"images": 6, "cached": 0, "computed": 5, "no_face": 1, "error": 2}
    assert sorted(res.failures) == sorted(k for k in res if not isinstance(res[k], Embedding))


@pytest.mark.slow
def test_cache_reused_across_protocols_and_failures_remembered(
    pipeline: FacePipeline, lfw20: list[Path], tmp_path: Path
) -> None:
    root = lfw20[0].parents[1]
    rel = [p.relative_to(root).as_posix() for p in lfw20[:5]]
    non_face = data_path("non_faces", "skimage_coffee.png")
    (tmp_path / "one.csv").write_text(
        f"image_a,image_b,mated\n{rel[0]},{rel[1]},1\n{rel[2]},{rel[3]},0\n{rel[0]},{non_face},0\n"
    )
    (tmp_path / "two.csv").write_text(f"image_a,image_b,mated\n{rel[3]},{rel[0]},0\n{rel[1]},{rel[4]},0\n")
    progress: list[tuple[int, int | None]] = []
    with EmbeddingCache(tmp_path / "cache") as cache:
        pipe, det = counting(pipeline)
        p1 = read_csv_protocol(tmp_path / "one.csv", root)
        r1 = embed_protocol(p1, pipe, cache, workers=1, progress=lambda d, t: progress.append((d, t)))
        assert det.calls == 5 and r1[str(non_face)] == Failure("no_face")
        assert progress[-1] == (5, 5)
        pipe, det = counting(pipeline)
        r1b = embed_protocol(p1, pipe, cache, workers=1)  # a re-run: nothing is detected again
        assert det.calls == 0 and r1b.stats["cached"] == 5 and r1b[str(non_face)] == Failure("no_face")
        np.testing.assert_array_equal(score_protocol(p1, r1b), score_protocol(p1, r1))
        p2 = read_csv_protocol(tmp_path / "two.csv", root)
        r2 = embed_protocol(p2, pipe, cache, workers=1)  # another protocol over the same images
        assert det.calls == 1 and r2.stats["cached"] == 3  # only rel[4] is new
        # another face selection is applied after the cache (issue 8 §5): nothing is detected or embedded
        other = embed_protocol(p2, pipe, cache, workers=1, select="central")
        assert det.calls == 1 and other.stats["cached"] == 4
        assert other.work == {"images_detected": 0, "faces_embedded": 0}


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(pipeline: FacePipeline, lfw20: list[Path], tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path, commit_every=4) as cache:
        pipe, det = counting(pipeline, fail_after=10)
        with pytest.raises(KeyboardInterrupt):  # dies on the 11th image, inside the third chunk of 4
            embed_images(lfw20, pipe, cache, workers=1, chunk_size=4)
        assert det.calls == 11
    with EmbeddingCache(tmp_path, commit_every=4) as cache:  # a new process would see the same file
        assert len(cache) == 8
        pipe, det = counting(pipeline)
        res = embed_images(lfw20, pipe, cache, workers=1, chunk_size=4)
        assert det.calls == 12  # only the rest
        assert (res.stats["cached"], res.stats["computed"]) == (8, 12)
        fresh = embed_images(lfw20, pipeline, None, workers=1)
        for k in fresh:
            np.testing.assert_allclose(vec(res[k]), vec(fresh[k]), atol=1e-6)


@pytest.mark.slow
def test_score_protocol_cosine_and_nan_where_a_side_failed(pipeline: FacePipeline) -> None:
    def ref(name: str, n: int) -> ImageRef:
        return ImageRef.from_path(data_path("lfw_view1", name, f"{name}_{n:04d}.jpg"), subject=name)

    imgs = [ref("Abdullah_Gul", 13), ref("Abdullah_Gul", 14), ref("Aaron_Peirsol", 1)]
    imgs.append(ImageRef("coffee", path=str(data_path("non_faces", "skimage_coffee.png"))))
    p = VerificationProtocol("t", imgs, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 0]), np.array([1, 0, 0, 0]))
    res = embed_protocol(p, pipeline, workers=1)
    s = score_protocol(p, res)
    assert s.dtype == np.float64 and np.isnan(s[3]) and not np.isnan(s[:3]).any()
    assert s[0] == pytest.approx(float(vec(res[imgs[0].key]) @ vec(res[imgs[1].key])), abs=1e-6)
    assert s[0] > s[1] and s[0] > s[2]


@pytest.mark.slow
def test_prealigned_bin_skips_detection(pipeline: FacePipeline, tmp_path: Path) -> None:
    """A tiny InsightFace .bin of real 112×112 ArcFace-aligned crops (made here from LFW photos)."""
    people = [("Abdullah_Gul", 13), ("Abdullah_Gul", 14), ("Aaron_Peirsol", 1), ("Aaron_Peirsol", 2)]
    crops: list[bytes] = []
    for name, n in people:
        img = pipeline.load(data_path("lfw_view1", name, f"{name}_{n:04d}.jpg"))
        det = max(pipeline.detector.detect(img), key=lambda d: d.bbox.area)
        buf = io.BytesIO()
        Image.fromarray(align(img, det, "arcface112").image).save(buf, format="JPEG", quality=95)
        crops.append(buf.getvalue())
    bins = [crops[0], crops[1], crops[2], crops[3], crops[0], crops[2], crops[1], crops[3]] * 5
    with open(tmp_path / "mini.bin", "wb") as f:
        pickle.dump((bins, [True, True, False, False] * 5), f, protocol=2)
    p = read_insightface_bin(tmp_path / "mini.bin")
    pipe, det = counting(pipeline)
    with EmbeddingCache(tmp_path) as cache:
        res = embed_protocol(p, pipe, cache, workers=1)
        assert det.calls == 0  # prealigned: no detection
        assert res.stats["computed"] == 4 and len(res) == 40  # identical crops embedded once
        s = score_protocol(p, res)
        assert not np.isnan(s).any()
        assert s[p.mated].min() > s[~p.mated].max()
        detected = embed_protocol(p, pipe, cache, workers=1, prealigned=None)  # opt out: detect
        assert det.calls == 4 and detected.settings != res.settings


def test_template_protocols_aggregate_then_score() -> None:
    e = {
        "1.jpg": Embedding(np.array([1, 0, 0], np.float32), "m", "1"),
        "2.jpg": Embedding(np.array([0, 1, 0], np.float32), "m", "1"),
        "3.jpg": Failure("no_face"),
        "4.jpg": Failure("error", "corrupt", "ImageDecodeError"),
        "5.jpg": Embedding(np.array([1, 0, 0], np.float32), "m", "1"),
    }
    imgs = [ImageRef(k, path=k) for k in e]
    t = TemplateSet(
        ids=np.array([7, 9, 11]),
        image=np.array([0, 1, 2, 3, 4]),
        template=np.array([0, 0, 0, 1, 2]),
        media=np.array([1, 2, 3, 4, 5]),
        subjects=np.array(["a", "b", "a"]),
    )
    p = VerificationProtocol("ijb", imgs, np.array([0, 0, 1]), np.array([2, 1, 2]), np.array([1, 0, 0]), templates=t)
    s = score_protocol(p, e)
    assert s[0] == pytest.approx(2**-0.5) and np.isnan(s[1]) and np.isnan(s[2])  # template 9 failed to acquire
    ident = IdentificationProtocol("1n", imgs, t, {"G1": np.array([0, 1])}, np.array([2]))
    m = score_identification(ident, e)["G1"]
    assert m.shape == (1, 2) and m[0, 0] == pytest.approx(2**-0.5) and np.isnan(m[0, 1])


@pytest.mark.slow
def test_worker_processes_match_in_process(pipeline: FacePipeline, lfw20: list[Path]) -> None:
    here = embed_images(lfw20[:6], pipeline, workers=1)
    pool = embed_images(lfw20[:6], pipeline, workers=2, chunk_size=2)
    for k in here:
        np.testing.assert_allclose(vec(pool[k]), vec(here[k]), atol=1e-5)


@pytest.mark.slow
def test_dask_local_cluster_matches_in_process(pipeline: FacePipeline, lfw20: list[Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    here = embed_images(lfw20, pipeline, workers=1)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        EmbeddingCache(tmp_path) as cache,
    ):
        remote = embed_images(lfw20, pipeline, cache, dask=client, chunk_size=4)
        assert remote.stats["computed"] == 20
        assert len(client.run(lambda: 1)) == 2  # both workers alive (each built its own pipeline)
        again = embed_images(lfw20, pipeline, cache, dask=client)
        assert again.stats["cached"] == 20
    assert remote.model == here.model
    for k in here:
        np.testing.assert_allclose(vec(remote[k]), vec(here[k]), atol=1e-5)
