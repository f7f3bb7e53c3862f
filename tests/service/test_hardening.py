"""Regression tests for the security review of the service (issue 8, §4): lock-out by key id,
concurrent guesses, the key-id oracle, enumeration through identify, damaged stores, decrypted
templates left behind, locked galleries, and the audit of searches and refusals."""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from faceprint import errors as E
from faceprint.service import auth as auth_mod
from faceprint.service.auth import KeyStore, parse_token

from .conftest import BIDEN, OBAMA, OBAMA2, OBAMA_SMALL, Keys, make_keys, photo

pytestmark = pytest.mark.service

KIT = ("faces_small", "kit_harington", "john1.jpeg")  # never enrolled here


def _guess(key_id: str) -> dict[str, str]:
    """A well-formed key with a real (or made-up) id and a random secret."""
    return {"X-API-Key": f"fp_{key_id}_{secrets.token_urlsafe(32)}"}


def _enrol(client: Any, token: str, gallery: str, subject: str, *photos: tuple[str, ...]) -> Any:
    files = [("images", (f"{i}.jpg", photo(*p), "image/jpeg")) for i, p in enumerate(photos)]
    return client.post(f"/v1/galleries/{gallery}/subjects/{subject}/templates", files=files, headers=Keys.header(token))


def _gallery(client: Any, keys: Keys, name: str, *subjects: tuple[str, tuple[str, ...]]) -> None:
    assert client.post("/v1/galleries", json={"name": name}, headers=keys.header(keys.admin)).status_code == 201
    for subject, p in subjects:
        assert _enrol(client, keys.enroll, name, subject, p).status_code == 201


# --- authentication ----------------------------------------------------------------------------


def test_wrong_secrets_sent_with_a_real_key_id_do_not_lock_the_real_key_out(make_client: Any) -> None:
    from fastapi.testclient import TestClient

    client, keys, _ = make_client(auth_failures_per_minute=5)
    key_id = parse_token(keys.recognize)[0]  # type: ignore[index]
    attacker = TestClient(client.app, client=("203.0.113.66", 40000), raise_server_exceptions=False)
    codes = [attacker.get("/v1/galleries", headers=_guess(key_id)).status_code for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3  # the attacker's address is limited...
    owner = TestClient(client.app, client=("198.51.100.7", 40001), raise_server_exceptions=False)
    r = owner.get("/v1/galleries", headers=keys.header(keys.recognize))  # ...not the key (never used before)
    assert r.status_code == 200, r.text
    # the same secret tried against other ids, from other addresses, is limited too
    secret = secrets.token_urlsafe(32)
    spread = [
        TestClient(client.app, client=(f"192.0.2.{i}", 40000), raise_server_exceptions=False)
        .get("/v1/galleries", headers={"X-API-Key": f"fp_{secrets.token_hex(6)}_{secret}"})
        .status_code
        for i in range(7)
    ]
    assert spread == [401] * 5 + [429] * 2


def test_concurrent_wrong_secrets_cannot_overrun_the_failure_limit(make_client: Any) -> None:
    client, keys, _ = make_client(auth_failures_per_minute=5)
    key_id = parse_token(keys.recognize)[0]  # type: ignore[index]

    def one(_: int) -> int:
        return int(client.get("/v1/galleries", headers=_guess(key_id)).status_code)

    with ThreadPoolExecutor(30) as ex:
        codes = list(ex.map(one, range(30)))
    assert codes.count(401) == 5 and codes.count(429) == 25, sorted(codes)


def test_unknown_ids_and_wrong_secrets_get_the_same_answer_after_the_same_work(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys, settings = make_client()
    rec_id = parse_token(keys.recognize)[0]  # type: ignore[index]
    enr_id = parse_token(keys.enroll)[0]  # type: ignore[index]
    KeyStore(settings.keys_db).revoke(enr_id)
    calls: list[int] = []
    real = auth_mod._hash_secret

    def counting(secret: str, salt: bytes) -> bytes:
        calls.append(1)
        return real(secret, salt)

    monkeypatch.setattr(auth_mod, "_hash_secret", counting)
    answers = {}
    for name, key_id in {"unknown id": "0123456789ab", "wrong secret": rec_id, "revoked, wrong secret": enr_id}.items():
        calls.clear()
        r = client.get("/v1/galleries", headers=_guess(key_id))
        body = r.json()
        answers[name] = (r.status_code, body["code"], body["detail"], r.headers["www-authenticate"])
        assert len(calls) == 1, f"{name}: {len(calls)} scrypt runs"
    assert len(set(answers.values())) == 1, answers
    assert "revoked" not in str(list(answers.values())) and "unknown" not in str(list(answers.values()))
    # only the holder of the right secret learns that the key was revoked
    r = client.get("/v1/galleries", headers=keys.header(keys.enroll))
    assert r.status_code == 401 and r.json()["code"] == "api_key_revoked"


# --- enumeration through identify ------------------------------------------------------------------


def test_keys_below_admin_cannot_enumerate_subjects_through_identify(make_client: Any, pipeline: Any) -> None:
    client, keys, _ = make_client()
    _gallery(client, keys, "alpha", ("obama", OBAMA), ("biden", BIDEN))
    store = client.app.state.faceprint.galleries
    face = pipeline.embed_one(photo(*OBAMA_SMALL))
    for i in range(12):  # twelve look-alikes, to see top_k capped
        store.enroll("alpha", f"twin{i:02d}", [face.embedding], bboxes=[face.detection.bbox], image_sha256=["0" * 64])
    stranger = {"image": photo(*KIT)}
    loose = "/v1/galleries/alpha/identify?threshold=-1&top_k=100"
    r = client.post(loose, files=stranger, headers=keys.header(keys.recognize))
    assert r.status_code == 200 and r.json()["candidates"] == [] and r.json()["identified"] is None
    assert "admin" in r.json()["threshold_source"] and r.json()["threshold"] > 0
    r = client.post(loose, files=stranger, headers=keys.header(keys.enroll))
    assert r.json()["candidates"] == []
    admin = client.post(loose, files=stranger, headers=keys.header(keys.admin))
    assert len(admin.json()["candidates"]) == 14  # an admin may rank the whole gallery
    many = client.post(loose, files={"image": photo(*OBAMA2)}, headers=keys.header(keys.recognize)).json()
    assert len(many["candidates"]) == 10 and many["identified"] is not None
    # a stricter threshold than the gallery's is always allowed
    strict = client.post(
        "/v1/galleries/alpha/identify?threshold=0.99",
        files={"image": photo(*OBAMA2)},
        headers=keys.header(keys.recognize),
    ).json()
    assert strict["threshold"] == 0.99 and strict["candidates"] == [] and strict["threshold_source"] == "explicit"
    # the same floor for verification against a claimed subject
    claim = "/v1/galleries/alpha/subjects/biden/verify?threshold=-1"
    assert client.post(claim, files=stranger, headers=keys.header(keys.recognize)).json()["match"] is False
    assert client.post(claim, files=stranger, headers=keys.header(keys.admin)).json()["match"] is True


# --- damaged stores --------------------------------------------------------------------------------


def _damage(db: Path) -> None:
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 3)


def test_a_damaged_gallery_is_listed_as_damaged_and_can_be_deleted(tmp_path: Path, pipeline: Any) -> None:
    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path / "data")
    keys = make_keys(settings.keys_db)
    with TestClient(create_app(settings, pipelines=[pipeline])) as client:
        _gallery(client, keys, "alpha", ("obama", OBAMA), ("biden", BIDEN))
        _gallery(client, keys, "beta", ("obama", OBAMA))
    _damage(settings.gallery_dir / "alpha" / "gallery.sqlite")
    with TestClient(create_app(settings, pipelines=[pipeline]), raise_server_exceptions=False) as client:
        for token in (keys.recognize, keys.admin):
            r = client.get("/v1/galleries", headers=keys.header(token))
            assert r.status_code == 200, r.text
            listed = {g["name"]: g for g in r.json()["galleries"]}
            assert listed["alpha"]["status"] == "damaged" and "alpha" in listed["alpha"]["problem"]
            assert listed["beta"]["status"] == "ok" and listed["beta"]["templates"] == 1
        ok = client.post(
            "/v1/galleries/beta/identify", files={"image": photo(*OBAMA2)}, headers=keys.header(keys.recognize)
        )
        assert ok.status_code == 200 and ok.json()["identified"] == "obama"
        bad = client.post(
            "/v1/galleries/alpha/identify", files={"image": photo(*OBAMA2)}, headers=keys.header(keys.recognize)
        )
        assert bad.status_code == 500 and bad.json()["code"] == "corrupt_store"
        assert bad.json()["type"].endswith("corrupt_store") and "alpha" in bad.json()["detail"]
        assert str(tmp_path) not in bad.text and "Traceback" not in bad.text
        assert client.delete("/v1/galleries/alpha", headers=keys.header(keys.enroll)).status_code == 403
        gone = client.delete("/v1/galleries/alpha", headers=keys.header(keys.admin))
        assert gone.status_code == 200 and gone.json() == {"deleted": "alpha", "templates": None}
        assert not (settings.gallery_dir / "alpha").exists()
        names = [g["name"] for g in client.get("/v1/galleries", headers=keys.header(keys.admin)).json()["galleries"]]
        assert names == ["beta"]


def test_a_damaged_key_store_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "keys.sqlite"
    KeyStore(store).create("admin")
    store.write_bytes(b"garbage" * 300)
    with pytest.raises(E.CorruptStoreError, match="API key store .* is damaged") as info:
        KeyStore(store).list()
    assert info.value.path == str(store)


# --- template encryption at rest ----------------------------------------------------------------


def _encrypted_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: bytes | None) -> Any:
    from faceprint.service.settings import ServiceSettings

    ram = tmp_path / "ram"
    ram.mkdir(exist_ok=True)
    monkeypatch.setenv("FACEPRINT_RAM_DIR", str(ram))
    return ServiceSettings(data_dir=tmp_path / "data", template_key=key)


def test_decrypted_templates_left_by_a_killed_server_are_removed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Any
) -> None:
    from faceprint.service.galleries import GalleryManager

    settings = _encrypted_settings(tmp_path, monkeypatch, secrets.token_bytes(32))
    face = pipeline.embed_one(photo(*OBAMA))
    first = GalleryManager(settings)
    first.create("alpha")
    first.enroll("alpha", "obama", [face.embedding], bboxes=[face.detection.bbox], image_sha256=["0" * 64])
    left = first.work_dir
    assert left is not None and (left.stat().st_mode & 0o777) == 0o700
    assert any(p.is_file() and p.stat().st_size for p in left.rglob("*"))  # the decrypted copy
    other = tmp_path / "ram" / "faceprint-galleries-other"  # another user's or an old-style folder: left alone
    other.mkdir()
    os.close(first._work_lock)  # the process dies (kill -9): the kernel drops its lock, the folder stays
    first._work_lock = None
    second = GalleryManager(settings)
    try:
        assert not left.exists()
        assert other.exists()
        assert second.names() == ["alpha"] and second.subject("alpha", "obama").n_templates == 1
        # a running server's folder is never removed by another one starting
        third = GalleryManager(settings)
        assert second.work_dir is not None and second.work_dir.exists()
        third.close()
    finally:
        second.close()
    assert not any(p.name.startswith("faceprint-galleries-") and p != other for p in (tmp_path / "ram").iterdir())


def test_encrypted_galleries_without_the_key_refuse_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faceprint.cli import main
    from faceprint.service.galleries import GalleryManager

    settings = _encrypted_settings(tmp_path, monkeypatch, secrets.token_bytes(32))
    m = GalleryManager(settings)
    m.create("alpha")
    m.close()
    with pytest.raises(E.ConfigurationError, match="encrypted galleries .* no template key"):
        GalleryManager(settings.with_(template_key=None))
    monkeypatch.delenv("FACEPRINT_TEMPLATE_KEY", raising=False)
    monkeypatch.delenv("FACEPRINT_TEMPLATE_KEY_FILE", raising=False)
    assert main(["serve", "--data-dir", str(settings.data_dir), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "FACEPRINT_TEMPLATE_KEY" in err and "Traceback" not in err


# --- audit log ----------------------------------------------------------------------------------


def test_searches_and_refusals_are_audited_without_images_or_secrets(make_client: Any) -> None:
    from faceprint.service.audit import AuditLog

    client, keys, settings = make_client()
    _gallery(client, keys, "alpha", ("obama", OBAMA))
    rec_id = parse_token(keys.recognize)[0]  # type: ignore[index]
    h = keys.header(keys.recognize)
    assert client.post("/v1/galleries/alpha/identify", files={"image": photo(*OBAMA2)}, headers=h).status_code == 200
    assert client.post("/v1/galleries/alpha/identify", files={"image": photo(*KIT)}, headers=h).status_code == 200
    verify = "/v1/galleries/alpha/subjects/{}/verify"
    assert client.post(verify.format("obama"), files={"image": photo(*BIDEN)}, headers=h).status_code == 200
    assert client.post(verify.format("nobody"), files={"image": photo(*BIDEN)}, headers=h).status_code == 404
    guess = _guess(rec_id)
    assert client.post("/v1/galleries/alpha/identify", files={"image": photo(*KIT)}, headers=guess).status_code == 401
    assert client.get("/v1/galleries/alpha").status_code == 401
    scoped = keys.header(keys.scoped_recognize)
    assert client.post("/v1/galleries/beta/identify", files={"image": photo(*KIT)}, headers=scoped).status_code == 403
    assert client.get("/v1/galleries/alpha/subjects", headers=h).status_code == 403

    events = [e for e in AuditLog(settings.audit_log).read() if e["action"] not in ("gallery_create", "enrol")]
    seen = [(e["action"], e["key_id"], e["gallery"], e["subject"], e["outcome"], e.get("reason")) for e in events]
    scoped_id = parse_token(keys.scoped_recognize)[0]  # type: ignore[index]
    assert seen == [
        ("identify", rec_id, "alpha", "obama", "identified", None),
        ("identify", rec_id, "alpha", None, "not_identified", None),
        ("verify", rec_id, "alpha", "obama", "no_match", None),
        ("verify", rec_id, "alpha", "nobody", "failed", "subject_not_found"),
        ("auth_refused", rec_id, "alpha", None, "refused", "invalid"),
        ("auth_refused", None, "alpha", None, "refused", "missing"),
        ("access_denied", scoped_id, "beta", None, "refused", "gallery scope"),
        ("access_denied", rec_id, "alpha", None, "refused", "needs enroll"),
    ]
    assert all(e["ts"].endswith("+00:00") and e["client"] == "testclient" for e in events)
    assert [e["status"] for e in events if "status" in e] == [401, 401, 403, 403]
    raw = settings.audit_log.read_bytes()
    assert guess["X-API-Key"].split("_", 2)[2].encode() not in raw
    assert keys.recognize.split("_", 2)[2].encode() not in raw and photo(*KIT)[2000:2032] not in raw
    assert b"score" not in raw


def test_audit_log_refuses_fields_that_could_hold_images_or_secrets(tmp_path: Path) -> None:
    from faceprint.service.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    for field in ("image", "embedding", "secret", "key", "score"):
        with pytest.raises(ValueError, match="not allowed"):
            log.record("identify", key_id="k", **{field: "x"})
    assert not (tmp_path / "audit.jsonl").exists()


def test_a_key_store_damaged_while_serving_answers_corrupt_store(make_client: Any) -> None:
    client, keys, settings = make_client()
    assert client.get("/v1/galleries", headers=keys.header(keys.admin)).status_code == 200
    settings.keys_db.write_bytes(b"garbage" * 1000)
    r = client.get("/v1/galleries", headers=keys.header(keys.recognize))
    assert r.status_code == 500 and r.json()["code"] == "corrupt_store" and "Traceback" not in r.text


def test_galleries_that_keep_photos_store_them_with_the_faces_the_workers_found(make_client: Any) -> None:
    """Enrolment runs no model in the server process, also when the gallery keeps the photos."""
    client, keys, settings = make_client()
    r = client.post("/v1/galleries", json={"name": "kept", "keep_source_images": True}, headers=keys.header(keys.admin))
    assert r.status_code == 201 and r.json()["keep_source_images"] is True
    enrolled = _enrol(client, keys.enroll, "kept", "obama", OBAMA, OBAMA_SMALL)
    assert enrolled.status_code == 201 and enrolled.json()["added"] == 2, enrolled.text
    g = client.app.state.faceprint.galleries.get("kept")
    stored = [g.source_image_path(t) for t in g.templates("obama")]
    assert sorted(p.read_bytes() for p in stored) == sorted([photo(*OBAMA), photo(*OBAMA_SMALL)])
    assert g.settings.pipeline["detector"] == settings.detector and g.settings.pipeline["embedder"] == settings.embedder
    who = client.post(
        "/v1/galleries/kept/identify", files={"image": photo(*OBAMA2)}, headers=keys.header(keys.recognize)
    )
    assert who.json()["identified"] == "obama"
