"""Liveness over HTTP (a server running an attack detector): ``liveness`` in verify and identify
responses, and the refuse-attacks policy at enrolment, verify and identify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faceprint.pipeline import FacePipeline

from ..conftest import shared_model_path
from ..service.conftest import Keys, make_keys

pytestmark = [pytest.mark.service, pytest.mark.slow]


def sample(name: str) -> bytes:
    return shared_model_path("minifasnet", "samples", f"{name}.jpg").read_bytes()


@pytest.fixture
def pad_app(tmp_path: Path, pipeline: FacePipeline) -> Iterator[Any]:
    """``make(refuse) -> (client, keys)``: an app whose pipeline screens faces with MiniFASNet."""
    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    models = shared_model_path("minifasnet", "2.7_80x80_MiniFASNetV2.pth").parents[1]
    clients: list[Any] = []

    def make(refuse: bool) -> tuple[Any, Keys]:
        pipe = FacePipeline(
            pipeline.detector,
            pipeline.embedder,
            pad="minifasnet",
            pad_options={"model_dir": models},
            refuse_attacks=refuse,
        )
        settings = ServiceSettings(data_dir=tmp_path / f"data{len(clients)}", pad="minifasnet", refuse_attacks=refuse)
        keys = make_keys(settings.keys_db)
        client = TestClient(create_app(settings, pipelines=[pipe]), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, keys

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _enrol(client: Any, keys: Keys, subject: str, *images: bytes) -> Any:
    files = [("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return client.post(f"/v1/galleries/g/subjects/{subject}/templates", files=files, headers=keys.header(keys.enroll))


def test_verify_and_identify_carry_liveness(pad_app: Any) -> None:
    client, keys = pad_app(False)
    h = keys.header(keys.recognize)
    v = client.post("/v1/verify", files={"image_a": sample("image_T1"), "image_b": sample("image_F1")}, headers=h)
    assert v.status_code == 200, v.text
    body = v.json()
    assert body["face_a"]["liveness"]["is_attack"] is False and body["face_b"]["liveness"]["is_attack"] is True
    assert body["face_b"]["liveness"]["kind"] == "presentation" and set(body["face_b"]["liveness"]["details"]) == {
        "v2",
        "v1se",
    }
    client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
    assert _enrol(client, keys, "t", sample("image_T1")).status_code == 201  # no policy: report only
    who = client.post("/v1/galleries/g/identify", files={"image": sample("image_F2")}, headers=h)
    assert who.status_code == 200 and who.json()["face"]["liveness"]["is_attack"] is True


def test_refuse_attacks_policy(pad_app: Any) -> None:
    client, keys = pad_app(True)
    h = keys.header(keys.recognize)
    client.post("/v1/galleries", json={"name": "g"}, headers=keys.header(keys.admin))
    bad = _enrol(client, keys, "t", sample("image_T1"), sample("image_F1"))
    assert bad.status_code == 422 and bad.json()["code"] == "attack_detected" and "images[1]" in bad.json()["detail"]
    assert client.get("/v1/galleries/g", headers=keys.header(keys.admin)).json()["templates"] == 0  # all or nothing
    assert _enrol(client, keys, "t", sample("image_T1")).status_code == 201
    v = client.post("/v1/verify", files={"image_a": sample("image_T1"), "image_b": sample("image_F2")}, headers=h)
    assert v.status_code == 422 and v.json()["code"] == "attack_detected"
    who = client.post("/v1/galleries/g/identify", files={"image": sample("image_F1")}, headers=h)
    assert who.status_code == 422 and who.json()["code"] == "attack_detected"
    ok = client.post("/v1/galleries/g/identify", files={"image": sample("image_T1")}, headers=h)
    assert ok.status_code == 200 and ok.json()["identified"] == "t"
