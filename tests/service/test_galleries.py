"""Galleries over HTTP: enrol, identify (open set), verify against a subject, delete; roles and
gallery scopes; the audit log; templates encrypted at rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import BIDEN, COFFEE, OBAMA, OBAMA2, OBAMA_SMALL, Keys, photo

pytestmark = pytest.mark.service

BIDEN2 = ("faces_small", "biden", "biden2.jpg")
KIT = ("faces_small", "kit_harington", "john1.jpeg")


def _enrol(client: Any, token: str, gallery: str, subject: str, *photos: tuple[str, ...]) -> Any:
    files = [("images", (f"{i}.jpg", photo(*p), "image/jpeg")) for i, p in enumerate(photos)]
    return client.post(f"/v1/galleries/{gallery}/subjects/{subject}/templates", files=files, headers=Keys.header(token))


def _setup(client: Any, keys: Keys, gallery: str = "alpha") -> None:
    r = client.post("/v1/galleries", json={"name": gallery}, headers=keys.header(keys.admin))
    assert r.status_code == 201, r.text
    assert _enrol(client, keys.enroll, gallery, "obama", OBAMA, OBAMA_SMALL).status_code == 201
    assert _enrol(client, keys.enroll, gallery, "biden", BIDEN).status_code == 201


def test_enrol_identify_verify_and_remove(make_client: Any) -> None:
    client, keys, settings = make_client()
    _setup(client, keys)
    h = keys.header(keys.recognize)

    who = client.post("/v1/galleries/alpha/identify", files={"image": photo(*OBAMA2)}, headers=h)
    assert who.status_code == 200, who.text
    body = who.json()
    assert body["identified"] == "obama" and body["candidates"][0] == {
        "subject": "obama",
        "score": pytest.approx(body["candidates"][0]["score"]),
        "rank": 1,
    }
    assert all(c["score"] >= body["threshold"] for c in body["candidates"])  # nobody below the threshold is named
    assert body["width"] == 626 and len(body["face"]["bbox"]) == 4

    stranger = client.post("/v1/galleries/alpha/identify", files={"image": photo(*KIT)}, headers=h)
    assert stranger.status_code == 200 and stranger.json()["identified"] is None and stranger.json()["candidates"] == []

    claim = client.post("/v1/galleries/alpha/subjects/biden/verify", files={"image": photo(*BIDEN2)}, headers=h)
    assert claim.status_code == 200 and claim.json()["match"] is True and claim.json()["subject"] == "biden"
    wrong = client.post("/v1/galleries/alpha/subjects/biden/verify", files={"image": photo(*OBAMA2)}, headers=h)
    assert wrong.status_code == 200 and wrong.json()["match"] is False

    listed = client.get("/v1/galleries/alpha/subjects", headers=keys.header(keys.enroll)).json()
    assert listed["total"] == 2 and {s["id"]: s["templates"] for s in listed["subjects"]} == {"biden": 1, "obama": 2}
    info = client.get("/v1/galleries/alpha", headers=h).json()
    assert info["subjects"] == 2 and info["templates"] == 3 and info["model"].startswith("dlib-resnet-v1@")

    gone = client.delete("/v1/galleries/alpha/subjects/biden", headers=keys.header(keys.enroll))
    assert gone.status_code == 200 and gone.json() == {"deleted": "biden", "templates": 1}
    again = client.post("/v1/galleries/alpha/subjects/biden/verify", files={"image": photo(*BIDEN2)}, headers=h)
    assert again.status_code == 404 and again.json()["code"] == "subject_not_found"
    assert "/" not in again.json()["detail"]  # no server path in messages
    assert (
        client.post("/v1/galleries/beta/identify", files={"image": photo(*OBAMA2)}, headers=h).json()["code"]
        == "gallery_not_found"
    )
    assert client.post("/v1/galleries", json={"name": "alpha"}, headers=keys.header(keys.admin)).status_code == 409
    assert client.delete("/v1/galleries/alpha", headers=keys.header(keys.admin)).json()["deleted"] == "alpha"
    assert not (settings.gallery_dir / "alpha").exists()

    # the audit log: who did what to which subject, never image data or secrets
    from faceprint.service.audit import AuditLog

    events = [e for e in AuditLog(settings.audit_log).read() if e["action"] not in ("identify", "verify")]
    assert [e["action"] for e in events] == ["gallery_create", "enrol", "enrol", "subject_delete", "gallery_delete"]
    enrol = events[1]
    assert enrol["key_id"] == keys.enroll.split("_")[1] and enrol["gallery"] == "alpha" and enrol["subject"] == "obama"
    assert enrol["images"] == 2 and enrol["templates"] == 2 and enrol["ts"].endswith("+00:00")
    raw = settings.audit_log.read_bytes()
    assert photo(*OBAMA)[1000:1032] not in raw and keys.enroll.split("_", 2)[2].encode() not in raw


def test_enrolment_is_all_or_nothing(make_client: Any) -> None:
    client, keys, settings = make_client()
    assert client.post("/v1/galleries", json={"name": "alpha"}, headers=keys.header(keys.admin)).status_code == 201
    r = _enrol(client, keys.enroll, "alpha", "obama", OBAMA_SMALL, COFFEE)
    assert r.status_code == 422 and r.json()["code"] == "no_face" and "images[1]" in r.json()["detail"]
    assert client.get("/v1/galleries/alpha/subjects/obama", headers=keys.header(keys.enroll)).status_code == 404
    from faceprint.service.audit import AuditLog

    failed = AuditLog(settings.audit_log).read()[-1]
    assert failed["action"] == "enrol" and failed["outcome"] == "failed" and failed["reason"] == "no_face"


def test_roles_and_gallery_scopes_are_enforced_on_every_route(make_client: Any) -> None:
    client, keys, _ = make_client()
    _setup(client, keys, "alpha")
    assert client.post("/v1/galleries", json={"name": "beta"}, headers=keys.header(keys.admin)).status_code == 201
    img = {"image": photo(*OBAMA_SMALL)}

    def status(method: str, path: str, token: str, **kw: Any) -> int:
        return client.request(method, path, headers=keys.header(token), **kw).status_code

    # recognize: search only
    assert status("POST", "/v1/galleries/alpha/identify", keys.recognize, files=img) == 200
    assert (
        status(
            "POST", "/v1/galleries/alpha/subjects/x/templates", keys.recognize, files={"images": photo(*OBAMA_SMALL)}
        )
        == 403
    )
    assert status("DELETE", "/v1/galleries/alpha/subjects/obama", keys.recognize) == 403
    assert status("GET", "/v1/galleries/alpha/subjects", keys.recognize) == 403
    assert status("POST", "/v1/galleries", keys.recognize, json={"name": "gamma"}) == 403
    # enroll: subjects but not galleries
    assert status("DELETE", "/v1/galleries/beta", keys.enroll) == 403
    assert status("POST", "/v1/galleries", keys.enroll, json={"name": "gamma"}) == 403
    # a key for gallery alpha cannot touch beta, whatever it asks
    for token in (keys.scoped_enroll, keys.scoped_recognize):
        assert status("POST", "/v1/galleries/beta/identify", token, files=img) == 403
        assert status("GET", "/v1/galleries/beta", token) == 403
    assert (
        status(
            "POST", "/v1/galleries/beta/subjects/x/templates", keys.scoped_enroll, files={"images": photo(*OBAMA_SMALL)}
        )
        == 403
    )
    assert status("POST", "/v1/galleries/alpha/identify", keys.scoped_recognize, files=img) == 200
    listed = client.get("/v1/galleries", headers=keys.header(keys.scoped_recognize)).json()
    assert [g["name"] for g in listed["galleries"]] == ["alpha"]
    # 403 is decided before the upload is parsed, and is distinct from 401
    r = client.post(
        "/v1/galleries/beta/identify",
        content=b"junk",
        headers={**keys.header(keys.scoped_recognize), "Content-Type": "text/plain"},
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert status("DELETE", "/v1/galleries/beta", keys.admin) == 200


def test_templates_are_encrypted_at_rest(tmp_path: Path, pipeline: Any) -> None:
    import secrets

    from fastapi.testclient import TestClient

    from faceprint.errors import ConfigurationError
    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    from .conftest import make_keys

    key = secrets.token_bytes(32)
    settings = ServiceSettings(data_dir=tmp_path / "data", template_key=key)
    keys = make_keys(settings.keys_db)
    with TestClient(create_app(settings, pipelines=[pipeline])) as client:
        _setup(client, keys)
        info = client.get("/v1/galleries/alpha", headers=keys.header(keys.admin)).json()
        assert info["encrypted"] is True and info["templates"] == 3
        r = client.post(
            "/v1/galleries", json={"name": "keep", "keep_source_images": True}, headers=keys.header(keys.admin)
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    # nothing under the data dir holds a template in clear
    vec = pipeline.embed_one(photo(*BIDEN)).embedding.vector.astype("<f4").tobytes()
    for p in settings.data_dir.rglob("*"):
        if p.is_file():
            assert vec[:64] not in p.read_bytes(), p
    assert not settings.gallery_dir.exists() or not any(settings.gallery_dir.iterdir())
    # a restart with the key restores the galleries from the encrypted store
    with TestClient(create_app(settings, pipelines=[pipeline])) as client:
        who = client.post(
            "/v1/galleries/alpha/identify", files={"image": photo(*OBAMA2)}, headers=keys.header(keys.recognize)
        )
        assert who.status_code == 200 and who.json()["identified"] == "obama"
    # the wrong key cannot read them, and says so
    wrong = settings.with_(template_key=secrets.token_bytes(32))
    with pytest.raises(ConfigurationError, match="FACEPRINT_TEMPLATE_KEY"):
        with TestClient(create_app(wrong, pipelines=[pipeline])):
            pass


def test_cipher_binds_templates_to_their_subject() -> None:
    import secrets

    from faceprint.errors import ConfigurationError
    from faceprint.service.crypto import TemplateCipher

    c = TemplateCipher(secrets.token_bytes(32))
    v = np.random.default_rng(0).standard_normal(128).astype(np.float32)
    sealed = c.seal(v, b"alpha/obama")
    assert np.array_equal(c.open(sealed, b"alpha/obama"), v)
    assert v.tobytes()[:16] not in sealed
    with pytest.raises(ConfigurationError):
        c.open(sealed, b"alpha/biden")
    assert c.seal(v, b"x") != c.seal(v, b"x")  # fresh nonce each time
