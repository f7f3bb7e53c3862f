"""The recognition routes on real photographs, health and metrics, and the committed OpenAPI spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import BIDEN, COFFEE, OBAMA, OBAMA2, OBAMA_SMALL, TWO_PEOPLE, Keys, photo

pytestmark = pytest.mark.service

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "src" / "faceprint" / "service" / "openapi.json"


def test_verify_same_person_matches_and_others_do_not(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    same = client.post("/v1/verify", files={"image_a": photo(*OBAMA), "image_b": photo(*OBAMA2)}, headers=h)
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["match"] is True and body["operating_point"] == "fmr=0.001" and body["fmr"] == pytest.approx(0.001)
    assert body["model"].startswith("dlib-resnet-v1@") and body["score"] > body["threshold"]
    assert len(body["face_a"]["bbox"]) == 4 and len(body["face_a"]["landmarks"]) == 5
    assert body["image_a"] == {"width": 910, "height": 1137}
    other = client.post("/v1/verify", files={"image_a": photo(*OBAMA), "image_b": photo(*BIDEN)}, headers=h)
    assert other.status_code == 200 and other.json()["match"] is False
    # an explicit threshold overrides the operating point; "eer" is another calibrated point
    loose = client.post(
        "/v1/verify", params={"threshold": -1.0}, files={"image_a": photo(*OBAMA), "image_b": photo(*BIDEN)}, headers=h
    )
    assert loose.json()["match"] is True and loose.json()["operating_point"] == "custom" and loose.json()["fmr"] is None
    eer = client.post(
        "/v1/verify",
        params={"operating_point": "eer"},
        files={"image_a": photo(*OBAMA), "image_b": photo(*OBAMA2)},
        headers=h,
    )
    assert eer.json()["operating_point"] == "eer"


def test_verify_problems_name_the_field_and_use_stable_codes(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    noface = client.post("/v1/verify", files={"image_a": photo(*OBAMA), "image_b": photo(*COFFEE)}, headers=h)
    assert noface.status_code == 422 and noface.headers["content-type"] == "application/problem+json"
    p = noface.json()
    assert p["code"] == "no_face" and "image_b" in p["detail"] and p["type"] == "urn:faceprint:problem:no_face"
    assert p["status"] == 422 and p["instance"] == "/v1/verify" and p["request_id"] == noface.headers["x-request-id"]
    missing = client.post("/v1/verify", files={"image_a": photo(*OBAMA)}, headers=h)
    assert missing.status_code == 422 and "image_b" in missing.json()["detail"]
    unknown_point = client.post(
        "/v1/verify",
        params={"operating_point": "fmr=0.5"},
        files={"image_a": photo(*OBAMA), "image_b": photo(*OBAMA2)},
        headers=h,
    )
    assert unknown_point.status_code == 400 and unknown_point.json()["code"] == "invalid_argument"
    bad_query = client.post("/v1/verify", params={"threshold": 7}, files={"image_a": b"x", "image_b": b"y"}, headers=h)
    assert bad_query.status_code == 422 and bad_query.json()["code"] == "validation_error"
    assert bad_query.json()["errors"][0]["loc"] == ["query", "threshold"]


def test_detect_finds_every_face_with_landmarks(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    r = client.post("/v1/detect", files={"image": photo(*TWO_PEOPLE)}, headers=keys.header(keys.recognize))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["faces"]) == 2 and body["width"] > 0 and body["height"] > 0
    for f in body["faces"]:
        x1, y1, x2, y2 = f["bbox"]
        assert 0 <= x1 < x2 <= body["width"] and 0 <= y1 < y2 <= body["height"]
        assert len(f["landmarks"]) == 5 and f["landmark_scheme"] == "dlib5"
    none = client.post("/v1/detect", files={"image": photo(*COFFEE)}, headers=keys.header(keys.recognize))
    assert none.status_code == 200 and none.json()["faces"] == []  # no face is a normal result


def test_embed_returns_normalised_templates_tagged_with_the_model(client_keys: tuple[Any, Keys], pipeline: Any) -> None:
    client, keys = client_keys
    r = client.post(
        "/v1/embed",
        params={"select": "largest"},
        files={"image": photo(*OBAMA_SMALL)},
        headers=keys.header(keys.recognize),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dim"] == 128 and len(body["faces"]) == 1 and body["model"].startswith("dlib-resnet-v1@")
    v = np.asarray(body["faces"][0]["embedding"], dtype=np.float32)
    assert v.shape == (128,) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-4
    direct = pipeline.embed_one(photo(*OBAMA_SMALL)).embedding.vector
    assert float(v @ direct) > 0.9999  # the service gives the library's template


def test_health_readiness_and_metrics(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["workers"] == 1
    client.post(
        "/v1/verify",
        files={"image_a": photo(*OBAMA_SMALL), "image_b": photo(*OBAMA_SMALL)},
        headers=keys.header(keys.recognize),
    )
    client.post("/v1/verify", files={"image_a": photo(*OBAMA_SMALL)})
    text = client.get("/metrics").text
    assert 'faceprint_http_requests_total{method="POST",route="/v1/verify",status="200"} 1.0' in text
    assert 'faceprint_http_requests_total{method="POST",route="/v1/verify",status="401"} 1.0' in text
    assert 'faceprint_inference_seconds_count{operation="verify"} 1.0' in text
    assert 'faceprint_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/v1/verify"} 2.0' in text
    assert 'faceprint_auth_failures_total{reason="missing"} 1.0' in text and "faceprint_ready 1.0" in text


def test_every_response_carries_security_headers_and_no_cdn_docs(client_keys: tuple[Any, Keys]) -> None:
    client, _ = client_keys
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert (
        r.headers["x-content-type-options"] == "nosniff"
        and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    )
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"] != "<script>"
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_committed_openapi_matches_the_app() -> None:
    from faceprint.service.app import openapi_json

    generated = openapi_json()
    assert OPENAPI_FILE.exists(), "run `faceprint serve --print-openapi > src/faceprint/service/openapi.json`"
    assert OPENAPI_FILE.read_text() == generated, (
        "the committed OpenAPI spec is stale: run "
        "`faceprint serve --print-openapi > src/faceprint/service/openapi.json`"
    )
    spec = json.loads(generated)
    verify = spec["paths"]["/v1/verify"]["post"]
    assert set(verify["requestBody"]["content"]) == {"multipart/form-data"}
    assert set(verify["responses"]["401"]["content"]) == {"application/problem+json"}
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
