"""Quality over HTTP (a server running a quality assessor): per-face quality in detect, verify and
identify responses, verify/identify flags, the enrolment gate, template quality stored (also in the
encrypted store across a restart) and identification filtered by template quality."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from faceprint.gallery import open_gallery
from faceprint.io import load_image
from faceprint.pipeline import FacePipeline
from faceprint.quality.degrade import degrade

from .conftest import BIDEN, OBAMA, OBAMA2, TWO_PEOPLE, Keys, make_keys, photo

pytestmark = pytest.mark.service


def png(pixels: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def noisy_obama() -> bytes:
    """obama.jpg under heavy seeded noise: still a face, of much lower quality."""
    return png(degrade(load_image(photo(*OBAMA)), "noise", 1.0, seed=1))


def quality_pipeline(pipeline: FacePipeline, min_quality: float | None = None) -> FacePipeline:
    """The session's detector and embedder, with the fiqa-fast quality stage."""
    return FacePipeline(pipeline.detector, pipeline.embedder, quality="fiqa-fast", min_quality=min_quality)


@pytest.fixture
def quality_app(tmp_path: Path, pipeline: FacePipeline) -> Iterator[Any]:
    """``make(min_quality=None) -> (client, keys, settings, pipe)``: an app whose pipeline
    assesses quality with fiqa-fast."""
    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    clients: list[Any] = []

    def make(min_quality: float | None = None) -> tuple[Any, Keys, Any, FacePipeline]:
        pipe = quality_pipeline(pipeline, min_quality)
        settings = ServiceSettings(
            data_dir=tmp_path / f"data{len(clients)}", quality="fiqa-fast", min_quality=min_quality
        )
        keys = make_keys(settings.keys_db)
        client = TestClient(create_app(settings, pipelines=[pipe]), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, keys, settings, pipe

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _enrol(client: Any, keys: Keys, gallery: str, subject: str, *images: bytes) -> Any:
    files = [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    return client.post(
        f"/v1/galleries/{gallery}/subjects/{subject}/templates", files=files, headers=keys.header(keys.enroll)
    )


def test_detect_verify_and_identify_carry_each_faces_quality(quality_app: Any, noisy_obama: bytes) -> None:
    client, keys, _settings, pipe = quality_app()
    h = keys.header(keys.recognize)
    assert client.get("/readyz").json()["quality"] == "fiqa-fast"

    det = client.post("/v1/detect", files={"image": photo(*TWO_PEOPLE)}, headers=h)
    assert det.status_code == 200, det.text
    faces = det.json()["faces"]
    assert len(faces) == 2
    expected = sorted(round(f.quality.quality, 1) for f in pipe.assess_quality(photo(*TWO_PEOPLE)))  # type: ignore[union-attr]
    assert sorted(f["quality"]["quality"] for f in faces) == pytest.approx(expected, abs=0.051)
    q = faces[0]["quality"]
    assert q["assessor"].startswith("fiqa-fast@") and {"value", "quality"} == set(q["components"]["sharpness"])
    assert isinstance(q["reasons"], list)

    v = client.post("/v1/verify", files={"image_a": photo(*OBAMA), "image_b": noisy_obama}, headers=h)
    assert v.status_code == 200, v.text
    body = v.json()
    qa, qb = body["face_a"]["quality"]["quality"], body["face_b"]["quality"]["quality"]
    assert qb < qa and body["flags"] == []  # no min_quality on this server: nothing is flagged
    assert body["face_b"]["quality"]["reasons"]  # the weak components, in words

    emb = client.post("/v1/embed", files={"image": photo(*OBAMA)}, headers=h).json()
    assert emb["faces"][0]["quality"]["quality"] == pytest.approx(qa)

    client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
    assert _enrol(client, keys, "g", "obama", photo(*OBAMA)).status_code == 201
    who = client.post("/v1/galleries/g/identify", files={"image": photo(*OBAMA2)}, headers=h).json()
    assert who["identified"] == "obama" and 0 < who["face"]["quality"]["quality"] <= 100 and who["flags"] == []


def test_min_quality_refuses_enrolment_and_flags_probes(
    quality_app: Any, noisy_obama: bytes, pipeline: FacePipeline
) -> None:
    client, keys, settings, pipe = quality_app(min_quality=60)
    q_noisy, q_clean = (pipe.analyze(x, select="largest")[0].quality.quality for x in (noisy_obama, photo(*OBAMA)))  # type: ignore[union-attr]
    assert q_noisy < 60 <= q_clean, (q_noisy, q_clean)
    h = keys.header(keys.recognize)

    v = client.post("/v1/verify", files={"image_a": photo(*OBAMA), "image_b": noisy_obama}, headers=h).json()
    [line] = v["flags"]
    assert line.startswith(f"image b: quality {q_noisy:.0f} below 60") and v["match"] in (True, False)

    client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
    bad = _enrol(client, keys, "g", "obama", photo(*OBAMA), noisy_obama)
    assert bad.status_code == 422 and bad.json()["code"] == "low_quality"
    assert "images[1]" in bad.json()["detail"] and "below 60" in bad.json()["detail"]
    assert client.get("/v1/galleries/g", headers=keys.header(keys.admin)).json()["templates"] == 0  # all or nothing

    ok = _enrol(client, keys, "g", "obama", photo(*OBAMA))
    assert ok.status_code == 201, ok.text
    rq = ok.json()["faces"][0]["quality"]["quality"]
    with open_gallery(settings.gallery_dir / "g", create=False) as g:
        [t] = g.templates("obama")
    assert t.quality == pytest.approx(q_clean) and rq == pytest.approx(q_clean, abs=0.051)

    who = client.post("/v1/galleries/g/identify", files={"image": noisy_obama}, headers=h).json()
    assert who["flags"] and who["flags"][0].startswith("image: quality")
    sv = client.post("/v1/galleries/g/subjects/obama/verify", files={"image": noisy_obama}, headers=h).json()
    assert sv["flags"] == who["flags"]


def test_identify_filters_templates_by_quality(quality_app: Any, noisy_obama: bytes) -> None:
    client, keys, _settings, _pipe = quality_app()
    client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
    poor = _enrol(client, keys, "g", "obama", noisy_obama).json()["faces"][0]["quality"]["quality"]
    good = _enrol(client, keys, "g", "biden", photo(*BIDEN)).json()["faces"][0]["quality"]["quality"]
    assert poor != good
    h = keys.header(keys.admin)

    def subjects(**params: Any) -> list[str]:
        r = client.post(
            "/v1/galleries/g/identify",
            params={"threshold": -1, "top_k": 2, **params},
            files={"image": photo(*OBAMA2)},
            headers=h,
        )
        assert r.status_code == 200, r.text
        return [c["subject"] for c in r.json()["candidates"]]

    assert subjects() == ["obama", "biden"]
    above_poor = {"min_template_quality": poor + 0.1}
    assert "obama" not in subjects(**above_poor)
    assert ("biden" in subjects(**above_poor)) == (good >= poor + 0.1)
    r = client.post("/v1/galleries/g/identify", params={"min_template_quality": 101}, files={"image": b"x"}, headers=h)
    assert r.status_code == 422


def test_encrypted_templates_keep_their_quality_across_a_restart(tmp_path: Path, pipeline: FacePipeline) -> None:
    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path / "data", template_key=secrets.token_bytes(32), quality="fiqa-fast")
    keys = make_keys(settings.keys_db)
    pipe = quality_pipeline(pipeline)
    with TestClient(create_app(settings, pipelines=[pipe])) as client:
        client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
        q = _enrol(client, keys, "g", "obama", photo(*OBAMA)).json()["faces"][0]["quality"]["quality"]
    with TestClient(create_app(settings, pipelines=[pipe])) as client:  # rebuilt from the encrypted store
        [t] = client.app.state.faceprint.galleries.get("g").templates("obama")
    assert t.quality is not None and t.quality == pytest.approx(q, abs=0.051)


def test_galleries_that_keep_photos_store_quality_too(quality_app: Any) -> None:
    client, keys, settings, _ = quality_app()
    r = client.post("/v1/galleries", json={"name": "kept", "keep_source_images": True}, headers=keys.header(keys.admin))
    assert r.status_code == 201, r.text
    out = _enrol(client, keys, "kept", "obama", photo(*OBAMA))
    assert out.status_code == 201, out.text
    with open_gallery(settings.gallery_dir / "kept", create=False) as g:
        [t] = g.templates("obama")
    assert t.source is not None and t.quality == pytest.approx(out.json()["faces"][0]["quality"]["quality"], abs=0.051)
