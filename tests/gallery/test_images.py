"""Enrolling real photographs, keeping their source images, and migrating to another model."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from faceprint.errors import EmbeddingMismatchError, NoFaceError
from faceprint.gallery import open_gallery

from ..conftest import data_path
from .conftest import location

pytestmark = pytest.mark.slow  # real photographs through the default pipeline, twice


class RotatedEmbedder:
    """Another "model" for migration tests: the default embedder followed by a fixed rotation."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.model_id, self.model_version = "rotated-dlib", "test"
        self.dim = inner.dim  # type: ignore[attr-defined]
        self.template = inner.template  # type: ignore[attr-defined]
        q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((self.dim, self.dim)))
        self.rotation = q.astype(np.float32)

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        return (self.inner.embed(crops) @ self.rotation).astype(np.float32)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def rotated(pipeline):  # type: ignore[no-untyped-def]
    from faceprint import FacePipeline

    return FacePipeline(pipeline.detector, RotatedEmbedder(pipeline.embedder))


def faces(*parts: str) -> Path:
    return data_path("faces_small", *parts)


def test_enrol_images_keep_sources_then_migrate_to_a_new_model(tmp_path: Path, backend: str, pipeline, rotated) -> None:  # type: ignore[no-untyped-def]
    loc = location(tmp_path, backend)
    with open_gallery(loc, keep_source_images=True, pipeline=pipeline) as g:
        obama = g.enroll("obama", [faces("obama", "obama.jpg"), faces("obama", "obama2.jpg")], quality=0.9)
        assert len(obama) == 2 and obama[0].quality == pytest.approx(0.9) and obama[0].bbox is not None
        assert obama[0].image_sha256 == hashlib.sha256(faces("obama", "obama.jpg").read_bytes()).hexdigest()
        stored = g.source_image_path(obama[0])
        assert stored is not None and stored.read_bytes() == faces("obama", "obama.jpg").read_bytes()
        with pytest.raises(NoFaceError):
            g.enroll("coffee", data_path("non_faces", "skimage_coffee.png"))
        assert "coffee" not in g
        rep = g.enroll_images(
            [
                ("biden", faces("biden", "biden.jpg")),
                ("kit", faces("kit_harington", "john1.jpeg")),
                ("kit", faces("kit_harington", "john2.jpeg")),
                ("nobody", data_path("non_faces", "skimage_coffee.png")),
            ],
            batch_size=2,
        )
        assert (rep.templates, rep.subjects) == (3, 2)
        assert len(rep.failed) == 1 and rep.failed[0][0] == "nobody" and "NoFaceError" in rep.failed[0][2]
        probe = faces("obama", "obama3.jpg")
        assert g.identify(probe, k=1, threshold=-math.inf).best.subject == "obama"  # type: ignore[union-attr]
        with pytest.raises(EmbeddingMismatchError, match="rotated-dlib@test"):
            g.identify(probe, pipeline=rotated)
        kit_sources = [g.source_image_path(t) for t in g.templates("kit")]

    with open_gallery(loc, create=False) as g:  # stored pipeline settings rebuild the pipeline
        assert g.settings.pipeline is not None and g.settings.pipeline["embedder"] == "dlib-resnet-onnx"
        report = g.migrate(rotated)
        assert report.applied and report.migrated == 5 and not report.missing and not report.failed
        assert g.model == "rotated-dlib@test" and g.stats()["templates"] == 5
        r = g.identify(probe, k=1, threshold=-math.inf, pipeline=rotated)
        assert r.best is not None and r.best.subject == "obama" and r.model == "rotated-dlib@test"
        with pytest.raises(EmbeddingMismatchError, match="migrate"):
            g.identify(probe, pipeline=pipeline)
        assert all(p is not None and p.is_file() for p in kit_sources)
        g.remove("kit")  # removing a subject deletes its stored images
        assert not any(p.exists() for p in kit_sources if p is not None)


def test_migration_lists_templates_without_a_source_image(tmp_path: Path, backend: str, pipeline, rotated) -> None:  # type: ignore[no-untyped-def]
    emb_biden = pipeline.embed_one(faces("biden", "biden.jpg")).embedding
    with open_gallery(location(tmp_path, backend, "plain"), pipeline=pipeline) as g:
        g.enroll("obama", faces("obama", "obama.jpg"))
        g.enroll_embeddings("biden", emb_biden)
        rep = g.migrate(rotated)
        assert not rep.applied and g.model == pipeline.embedder.model_id + "@" + pipeline.embedder.model_version
        assert sorted((s, why.split(" (")[0]) for s, _t, why in rep.missing) == [
            ("biden", "no source image stored"),
            ("obama", "no source image stored"),
        ]
        assert "does not keep source images" in rep.missing[0][2]
    with open_gallery(location(tmp_path, backend, "kept"), pipeline=pipeline, keep_source_images=True) as g:
        g.enroll("obama", faces("obama", "obama.jpg"))
        biden = g.enroll_embeddings("biden", emb_biden)
        rep = g.migrate(rotated)
        assert not rep.applied and [(s, t) for s, t, _ in rep.missing] == [("biden", biden[0].id)]
        assert "enrolled from an embedding" in rep.missing[0][2]
        rep = g.migrate(rotated, drop_unmigratable=True)
        assert rep.applied and rep.migrated == 1 and rep.dropped == 1 and g.model == "rotated-dlib@test"
        assert [s.name for s in g.subjects()] == ["biden", "obama"]  # biden stays, with no templates
        assert g.subject("biden").n_templates == 0
