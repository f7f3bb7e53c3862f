"""Safe by default: authentication, roles, rate limits, upload limits, content sniffing, timeouts,
and errors that never leak a traceback."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pytest
from PIL import Image

from faceprint import errors as E
from faceprint.service.auth import APIKey, Authenticator, KeyStore, Role, TokenBucketLimiter, parse_token
from faceprint.service.errors import problem_spec

from .conftest import OBAMA, OBAMA2, OBAMA_SMALL, Keys, photo

pytestmark = pytest.mark.service


def _verify_files() -> dict[str, bytes]:
    return {"image_a": photo(*OBAMA_SMALL), "image_b": photo(*OBAMA_SMALL)}


# --- authentication: 401 ----------------------------------------------------------------------


def test_missing_malformed_unknown_and_wrong_keys_are_401(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    key_id = parse_token(keys.recognize)[0]  # type: ignore[index]
    cases = {
        "none": {},
        "malformed": {"Authorization": "Bearer hello"},
        "not bearer": {"Authorization": "Basic " + keys.recognize},
        "unknown id": {"X-API-Key": "fp_000000000000_" + "A" * 43},
        "wrong secret": {"X-API-Key": f"fp_{key_id}_" + "B" * 43},
    }
    for name, headers in cases.items():
        r = client.post("/v1/verify", files=_verify_files(), headers=headers)
        assert r.status_code == 401, name
        assert r.headers["www-authenticate"].startswith("Bearer") and r.json()["code"] == "unauthorized", name
        assert parse_token(keys.recognize)[1] not in r.text  # type: ignore[index]
    ok = client.post("/v1/verify", files=_verify_files(), headers={"X-API-Key": keys.recognize})
    assert ok.status_code == 200


def test_revoked_key_is_refused_at_once_even_after_it_was_cached(make_client: Any) -> None:
    client, keys, settings = make_client()
    h = keys.header(keys.recognize)
    assert client.post("/v1/verify", files=_verify_files(), headers=h).status_code == 200  # now in the cache
    KeyStore(settings.keys_db).revoke(parse_token(keys.recognize)[0])  # type: ignore[index]  # as the CLI does
    r = client.post("/v1/verify", files=_verify_files(), headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_keys_are_stored_only_as_salted_hashes(tmp_path: Any) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    rec1, tok1 = store.create("admin")
    rec2, tok2 = store.create("admin")
    assert tok1.startswith(f"fp_{rec1.id}_") and parse_token(tok1) == (rec1.id, tok1.split("_", 2)[2])
    raw = (tmp_path / "keys.sqlite").read_bytes()
    for tok in (tok1, tok2):
        assert tok.split("_", 2)[2].encode() not in raw
    import sqlite3

    with sqlite3.connect(tmp_path / "keys.sqlite") as db:
        salts = [bytes(r[0]) for r in db.execute("SELECT salt FROM api_keys")]
    assert len(set(salts)) == 2 and all(len(s) == 16 for s in salts)
    assert (tmp_path / "keys.sqlite").stat().st_mode & 0o077 == 0
    assert store.verify(tok1).id == rec1.id
    with pytest.raises(E.AuthenticationError):
        store.verify(tok1[:-1] + ("A" if tok1[-1] != "A" else "B"))


def test_guessing_secrets_is_rate_limited_per_client_address_and_secret(tmp_path: Any) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    rec, tok = store.create("recognize")
    auth = Authenticator(store, rate_per_s=100, burst=100, failures_per_minute=3)
    for i in range(3):
        with pytest.raises(E.AuthenticationError):
            auth.slow_verify(f"fp_{rec.id}_" + str(i) * 43, "10.0.0.1")
    with pytest.raises(E.RateLimitError) as info:
        auth.slow_verify(f"fp_{rec.id}_" + "C" * 43, "10.0.0.1")
    assert info.value.retry_after and info.value.retry_after >= 1
    # the key itself is not locked: its owner, elsewhere, gets in (and is cached)
    assert auth.slow_verify(tok, "10.0.0.2").id == rec.id and auth.cached(tok) is not None
    # one secret tried from many addresses is limited too
    for i in range(3):
        with pytest.raises(E.AuthenticationError):
            auth.slow_verify(f"fp_{rec.id}_" + "D" * 43, f"10.1.0.{i}")
    with pytest.raises(E.RateLimitError):
        auth.slow_verify(f"fp_{rec.id}_" + "D" * 43, "10.1.0.9")
    # a right key costs nothing from its address's budget
    auth2 = Authenticator(store, rate_per_s=100, burst=100, failures_per_minute=1)
    for _ in range(3):
        auth2.forget(rec.id)
        assert auth2.slow_verify(tok, "10.0.0.3").id == rec.id
    with pytest.raises(E.AuthenticationError):
        auth2.slow_verify(f"fp_{rec.id}_" + "E" * 43, "10.0.0.3")
    assert auth2.cached(tok) is not None


# --- authorisation: 403 -----------------------------------------------------------------------


def test_roles_and_gallery_scopes() -> None:
    rec = APIKey("a" * 12, Role.RECOGNIZE, None, "", "t")
    enr = APIKey("b" * 12, Role.ENROLL, "alpha", "", "t")
    adm = APIKey("c" * 12, Role.ADMIN, None, "", "t")
    rec.check(Role.RECOGNIZE, "anything")
    with pytest.raises(E.PermissionDeniedError):
        rec.check(Role.ENROLL, "alpha")
    enr.check(Role.ENROLL, "alpha")
    enr.check(Role.RECOGNIZE, "alpha")
    with pytest.raises(E.PermissionDeniedError, match="limited to gallery"):
        enr.check(Role.RECOGNIZE, "beta")
    with pytest.raises(E.PermissionDeniedError):
        enr.check(Role.ADMIN, "alpha")
    adm.check(Role.ADMIN, "beta")


# --- rate limits: 429 -------------------------------------------------------------------------


def test_per_key_rate_limit_answers_429_with_retry_after(make_client: Any) -> None:
    client, keys, _ = make_client(rate_limit_per_s=0.2, rate_limit_burst=2)
    codes = [
        client.post("/v1/detect", files={"image": photo(*OBAMA_SMALL)}, headers=keys.header(keys.recognize)).status_code
        for _ in range(2)
    ]
    assert codes == [200, 200]
    r = client.post("/v1/detect", files={"image": photo(*OBAMA_SMALL)}, headers=keys.header(keys.recognize))
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    # buckets are per key
    other = client.post("/v1/detect", files={"image": photo(*OBAMA_SMALL)}, headers=keys.header(keys.enroll))
    assert other.status_code == 200


def test_token_bucket_refills_at_its_rate() -> None:
    b = TokenBucketLimiter(rate=2.0, burst=2)
    assert b.take("k", now=0.0) == 0 and b.take("k", now=0.0) == 0
    assert b.take("k", now=0.0) == pytest.approx(0.5)
    assert b.take("k", now=0.6) == 0  # 1.2 tokens came back
    assert b.take("other", now=0.6) == 0


# --- input limits: 413, 415, 422 ----------------------------------------------------------------


def test_oversized_body_is_refused_from_content_length_and_while_streaming(make_client: Any) -> None:
    client, keys, _ = make_client(max_request_bytes=100_000, max_image_bytes=60_000)
    h = keys.header(keys.recognize)
    big = photo(*OBAMA)  # 280 kB
    r = client.post("/v1/detect", files={"image": big}, headers=h)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    # no Content-Length: a chunked body is counted as it arrives
    body, ctype = _multipart({"image": big})

    def chunks() -> Any:
        for i in range(0, len(body), 16_384):
            yield body[i : i + 16_384]

    r = client.post("/v1/detect", content=chunks(), headers={**h, "Content-Type": ctype})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    # one file over the per-image limit, inside the request limit
    medium = photo(*OBAMA_SMALL) + b"\0" * 40_000  # 73 kB
    r = client.post("/v1/detect", files={"image": medium}, headers=h)
    assert r.status_code == 413 and "'image'" in r.json()["detail"]
    # unauthenticated: 413 is decided from the header, before the key is even looked at
    assert client.post("/v1/detect", files={"image": big}).status_code == 413


def test_too_many_pixels_is_refused_from_the_header_before_decoding(make_client: Any) -> None:
    client, keys, _ = make_client(max_pixels=1_000_000)
    buf = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buf, "PNG")  # 16 Mpx, a few kB compressed
    r = client.post("/v1/detect", files={"image": buf.getvalue()}, headers=keys.header(keys.recognize))
    assert r.status_code == 413 and r.json()["code"] == "image_too_large" and "4000x4000" in r.json()["detail"]
    # the header alone (signature + IHDR, no pixel data) gets the same answer: nothing was decoded
    r = client.post("/v1/detect", files={"image": buf.getvalue()[:64]}, headers=keys.header(keys.recognize))
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"


def test_content_is_sniffed_not_the_declared_type(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    for content in (b"%PDF-1.4 not an image", b"<html><script>alert(1)</script></html>", b"plain text"):
        r = client.post("/v1/detect", files={"image": ("x.jpg", content, "image/jpeg")}, headers=h)
        assert r.status_code == 415 and r.json()["code"] == "unsupported_image", content
    ok = client.post("/v1/detect", files={"image": ("notes.txt", photo(*OBAMA_SMALL), "text/plain")}, headers=h)
    assert ok.status_code == 200 and len(ok.json()["faces"]) == 1
    not_multipart = client.post("/v1/detect", content=photo(*OBAMA_SMALL), headers={**h, "Content-Type": "image/jpeg"})
    assert not_multipart.status_code == 415 and not_multipart.json()["code"] == "unsupported_media_type"


def test_corrupt_images_are_422_with_codes(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    jpeg = photo(*OBAMA_SMALL)
    truncated = client.post("/v1/detect", files={"image": jpeg[: len(jpeg) // 2]}, headers=h)
    assert truncated.status_code == 422 and truncated.json()["code"] == "truncated_image"
    garbage = client.post("/v1/detect", files={"image": b"\xff\xd8\xff\xe0" + b"\x13" * 500}, headers=h)
    assert garbage.status_code == 422 and garbage.json()["code"] in ("image_decode_error", "truncated_image")
    empty = client.post("/v1/detect", files={"image": b""}, headers=h)
    assert empty.status_code == 422 and empty.json()["code"] == "empty_image"
    for r in (truncated, garbage, empty):
        assert "Traceback" not in r.text and "<bytes" not in r.text


# --- time and load limits: 503/504 --------------------------------------------------------------


def test_slow_inference_answers_504(make_client: Any) -> None:
    client, keys, _ = make_client(inference_timeout_s=0.001)
    r = client.post(
        "/v1/verify", files={"image_a": photo(*OBAMA), "image_b": photo(*OBAMA2)}, headers=keys.header(keys.recognize)
    )
    assert (
        r.status_code == 504
        and r.json()["code"] == "timeout"
        and r.headers["content-type"] == "application/problem+json"
    )


def test_a_full_queue_answers_503_with_retry_after() -> None:
    from faceprint.service.inference import InferencePool
    from faceprint.service.metrics import Metrics
    from faceprint.service.settings import ServiceSettings

    class Dummy:
        class embedder:  # noqa: N801 - stands in for an Embedder
            model_id, model_version = "m", "1"

        detector = object()

    pool = InferencePool([Dummy()], ServiceSettings(data_dir="/nonexistent", max_pending=1), Metrics())  # type: ignore[list-item]

    async def scenario() -> None:
        slow = asyncio.ensure_future(pool.run("x", lambda p: time.sleep(0.3) or 1))
        await asyncio.sleep(0.05)
        with pytest.raises(E.ServiceUnavailableError) as info:
            await pool.run("x", lambda p: 2)
        assert info.value.retry_after == 1
        assert await slow == 1
        assert await pool.run("x", lambda p: 3) == 3

    asyncio.run(scenario())
    pool.close()


def test_unexpected_errors_are_a_generic_500_logged_server_side(
    client_keys: tuple[Any, Keys], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = client_keys

    async def boom() -> None:
        raise RuntimeError("secret internal state /etc/passwd")

    client.app.add_api_route("/boom", boom)
    r = client.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal_error"
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert any("secret internal state" in str(rec.exc_info) for rec in caplog.records if rec.exc_info)


def test_every_faceprint_error_has_a_stable_code_and_status() -> None:
    seen: dict[str, type] = {}
    for name in E.__all__:
        cls = getattr(E, name)
        try:
            exc = cls("x") if cls is not E.UnknownModelError else cls("model", "x", [])
        except TypeError:
            continue
        spec = problem_spec(exc)
        assert 400 <= spec.status < 600 and spec.code.isidentifier() and spec.code == spec.code.lower(), name
        if cls is not E.FaceprintError:
            assert spec.code not in seen or seen[spec.code] is cls, (
                f"{name} and {seen[spec.code].__name__} share {spec.code}"
            )
            seen[spec.code] = cls
    assert problem_spec(E.ImageDecodeError("x")).code == "image_decode_error"
    assert problem_spec(E.NoFaceError("x")).code == "no_face"
    assert problem_spec(E.EmbeddingMismatchError("x")).code == "embedding_mismatch"
    assert problem_spec(E.UnsupportedImageError("x")).status == 415


def _multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "faceprinttestboundary"
    parts = []
    for name, data in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_slow_upload_answers_408() -> None:
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from faceprint.service.uploads import read_form

    chunks = [
        b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8\xff',
        b"\0" * 10,
    ]

    async def receive() -> dict[str, Any]:
        if len(chunks) == 1:
            await asyncio.sleep(5)  # the client stalls
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/detect",
        "headers": [(b"content-type", b"multipart/form-data; boundary=xyz")],
    }

    async def scenario() -> None:
        with pytest.raises(HTTPException) as info:
            await read_form(Request(scope, receive), max_files=1, max_file_bytes=1000, timeout_s=0.2)
        assert info.value.status_code == 408

    asyncio.run(asyncio.wait_for(scenario(), 60))  # a hang guard, not a timing claim
