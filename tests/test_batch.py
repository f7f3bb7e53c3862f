"""faceprint.batch, the one batch engine: in-process, worker processes and Dask, on real photographs.

Dask runs on a ``distributed.LocalCluster`` with one worker thread in this process
(``processes=False``), so the workers build their own pipeline from ``FacePipeline.settings()``
without starting processes on a 2-core machine.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from faceprint import FacePipeline, batch
from faceprint.alignment import align
from faceprint.errors import ConfigurationError, EmbeddingMismatchError
from faceprint.pipeline import ImageResult
from faceprint.types import Detection

from .conftest import data_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return sorted(data_path("lfw_view1").glob("*/*.jpg"))[:10]


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl,
        distributed.Client(cl) as c,
    ):
        yield c


def vectors(results: Sequence[ImageResult]) -> list[npt.NDArray[np.float32] | None]:
    return [r.faces[0].embedding.vector if r.faces and r.faces[0].embedding is not None else None for r in results]


def assert_same(a: Sequence[ImageResult], b: Sequence[ImageResult]) -> None:
    assert [r.source for r in a] == [r.source for r in b]
    assert [type(r.error).__name__ if r.error else None for r in a] == [
        type(r.error).__name__ if r.error else None for r in b
    ]
    for x, y in zip(vectors(a), vectors(b), strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_allclose(x, y, atol=1e-5)


def test_dask_equals_in_process_with_a_bad_file_in_the_middle(
    pipeline: FacePipeline, photos: list[Path], client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    sources = [*map(str, photos[:4]), str(bad), str(tmp_path / "missing.jpg"), *map(str, photos[4:])]
    seen: list[tuple[int, int | None]] = []
    here = list(pipeline.embed_many(sources, select="largest", workers=1, chunk_size=3))
    remote = list(
        pipeline.embed_many(
            sources,
            select="largest",
            dask=client,
            chunk_size=3,
            progress=lambda d, t: seen.append((d, t)),
            total=len(sources),
        )
    )
    assert len(remote) == len(sources) == 12
    assert_same(remote, here)
    assert remote[4].error is not None and remote[5].error is not None  # the batch went on after them
    assert all(r.ok and r.faces for r in remote[6:])
    assert seen == [(3, 12), (6, 12), (9, 12), (12, 12)]  # a plain callable, once per chunk


def test_dask_workers_rebuild_the_pipeline_from_all_its_settings(
    pipeline: FacePipeline, photos: list[Path], client
) -> None:  # type: ignore[no-untyped-def]
    small = FacePipeline(pipeline.detector_spec, pipeline.embedder_spec, max_pixels=10_000)  # type: ignore[arg-type]
    out = list(small.embed_many(map(str, photos[:3]), dask=client))
    assert [type(r.error).__name__ for r in out] == ["ImageTooLargeError"] * 3  # the worker got max_pixels


def test_prealigned_path_on_dask_and_here(pipeline: FacePipeline, photos: list[Path], client) -> None:  # type: ignore[no-untyped-def]
    crops = []
    for p in photos[:4]:
        img = pipeline.load(p)
        det = max(pipeline.detector.detect(img), key=lambda d: d.bbox.area)
        buf = io.BytesIO()
        Image.fromarray(align(img, det, "arcface112").image).save(buf, format="PNG")
        crops.append(buf.getvalue())
    crops.insert(2, b"\x89PNG broken")
    here = list(pipeline.embed_many(crops, prealigned="arcface112", workers=1))
    remote = list(pipeline.embed_many(crops, prealigned="arcface112", dask=client, chunk_size=2))
    assert_same(remote, here)
    assert [r.ok for r in here] == [True, True, False, True, True]
    assert all(len(r.faces) == 1 for r in here if r.ok)
    # the crop's embedding is close to the one of the detected face it was cut from
    direct = pipeline.embed_one(photos[0]).embedding
    assert direct is not None and float(direct.vector @ vectors(here)[0]) > 0.9  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="prealigned must be one of"):
        list(pipeline.embed_many(crops, prealigned="nope"))


def test_memory_stays_bounded_and_order_is_kept(pipeline: FacePipeline, photos: list[Path], client) -> None:  # type: ignore[no-untyped-def]
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(40):
            pulled += 1
            yield str(photos[i % len(photos)])

    chunk = 2
    n = 0
    for r in pipeline.embed_many(source(), select="largest", dask=client, chunk_size=chunk):
        n += 1
        # one worker: at most 2 chunks in flight, plus the one being filled
        assert pulled - n <= 3 * chunk
        assert r.source == str(photos[(n - 1) % len(photos)])
    assert n == 40


class RaisingDetector:
    """The real detector, raising an unexpected (non-faceprint) error on images of one width."""

    def __init__(self, inner: object, width: int) -> None:
        self.inner, self.width = inner, width
        self.name = inner.name  # type: ignore[attr-defined]

    def detect(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        if image.shape[1] == self.width:
            raise RuntimeError("detector crashed")
        return self.inner.detect(image)  # type: ignore[attr-defined,no-any-return]


def test_an_unexpected_error_fails_only_its_input(pipeline: FacePipeline, photos: list[Path]) -> None:
    odd = data_path("faces_small", "biden", "biden.jpg")
    width = pipeline.load(odd).shape[1]
    pipe = FacePipeline(RaisingDetector(pipeline.detector, width), pipeline.embedder)  # type: ignore[arg-type]
    sources = [photos[0], odd, photos[1]]
    out = list(pipe.embed_many(sources, select="largest", workers=1, chunk_size=3))
    assert [r.ok for r in out] == [True, False, True]
    assert "unexpected RuntimeError: detector crashed" in str(out[1].error)
    with pytest.raises(ConfigurationError, match="backend names"):
        list(pipe.embed_many(sources, workers=2))  # an object-built pipeline cannot reach workers


def test_engine_checks_worker_models_and_inputs(pipeline: FacePipeline, photos: list[Path]) -> None:
    task = partial(batch.detect_embed, select="largest")
    with pytest.raises(EmbeddingMismatchError, match="install the same"):
        list(batch.run_chunks(pipeline, task, [str(photos[0])], executor=batch.InProcess(), expected_model="x@1"))
    with pytest.raises(ConfigurationError, match="workers must be"):
        batch.executor_for(workers=0)
    with pytest.raises(ConfigurationError, match="dask must be"):
        batch.executor_for(dask="somewhere")
    assert isinstance(batch.executor_for(workers=1), batch.InProcess)
    assert isinstance(batch.executor_for(dask="local"), batch.DaskCluster)
    assert batch.executor_for(workers=3).workers == 3  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="JSON"):
        batch._settings_json({"detector": object()})
    assert json.loads(batch._settings_json(pipeline)) == pipeline.settings(worker_threads=1)


def test_cli_embed_and_cluster_on_a_dask_scheduler(tmp_path: Path, client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from faceprint.cli import main

    folder = tmp_path / "photos"
    people = [d for d in sorted(data_path("lfw_view1").iterdir()) if d.is_dir() and len(list(d.glob("*.jpg"))) >= 3]
    for person in people[:2]:
        (folder / person.name).mkdir(parents=True)
        for p in sorted(person.glob("*.jpg"))[:3]:
            (folder / person.name / p.name).symlink_to(p)
    address = client.scheduler.address
    assert main(["embed", str(folder), "-o", str(tmp_path / "here.npz"), "--workers", "1", "--json"]) == 0
    assert main(["embed", str(folder), "-o", str(tmp_path / "dask.npz"), "--dask", address, "--json"]) == 0
    a, b = np.load(tmp_path / "here.npz"), np.load(tmp_path / "dask.npz")
    assert a["embeddings"].shape == b["embeddings"].shape and a["embeddings"].shape[0] >= 6
    np.testing.assert_allclose(a["embeddings"], b["embeddings"], atol=1e-5)
    assert list(a["paths"]) == list(b["paths"])
    capsys.readouterr()
    assert main(["cluster", str(folder), "-o", str(tmp_path / "c1.json"), "--workers", "1"]) == 0
    assert main(["cluster", str(folder), "-o", str(tmp_path / "c2.json"), "--dask", address]) == 0
    c1 = json.loads((tmp_path / "c1.json").read_text())
    c2 = json.loads((tmp_path / "c2.json").read_text())
    assert c1["clusters"] == c2["clusters"] and c1["singletons"] == c2["singletons"] and c1["clusters"]
