"""``POST /v1/explain`` on real photographs: maps, PNG, limits, roles and specific errors."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest

from ..service.conftest import BIDEN, COFFEE, OBAMA, OBAMA2, Keys, make_client, photo  # noqa: F401  (fixture)

pytestmark = pytest.mark.service


@pytest.fixture
def client_keys(make_client: Any) -> tuple[Any, Keys]:  # noqa: F811
    client, keys, _ = make_client()
    return client, keys


def _png(body: dict[str, Any]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["png"]))))


@pytest.mark.slow
def test_explain_returns_maps_a_png_and_the_limits(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    files = {"image_a": photo(*OBAMA), "image_b": photo(*OBAMA2)}
    r = client.post("/v1/explain", params={"map_size": 10}, files=files, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["match"] is True and body["method"] == "occlusion" and body["reconstructed_score"] is None
    assert body["chip_size"] == 150 and body["map_size"] == 10
    ma = np.array(body["map_a"])
    assert ma.shape == (10, 10) and np.array(body["map_b"]).shape == (10, 10) and np.ptp(ma) > 0
    assert "not why a person is who they are" in body["limits"]
    img = _png(body)
    assert img.ndim == 3 and img.shape[0] == 2 * 150 and img.shape[1] > 4 * 150  # both chips, side by side
    # the score is verify's score for the same photos
    v = client.post("/v1/verify", files=files, headers=h).json()
    assert body["score"] == pytest.approx(v["score"], abs=1e-5)

    x = client.post("/v1/explain", params={"method": "xcos"}, files=files, headers=h)
    assert x.status_code == 200, x.text
    xb = x.json()
    assert xb["method"] == "xcos" and abs(xb["reconstructed_score"] - xb["score"]) < 0.1
    assert 0 < len(xb["correspondences"]) <= 8 and len(xb["correspondences"][0]["a"]) == 2
    assert np.array(xb["map_a"]).shape == (30, 30)  # the default map size


@pytest.mark.slow
def test_explain_errors_are_specific(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    noface = client.post("/v1/explain", files={"image_a": photo(*OBAMA), "image_b": photo(*COFFEE)}, headers=h)
    assert noface.status_code == 422 and noface.json()["code"] == "no_face" and "image_b" in noface.json()["detail"]
    same = client.post("/v1/explain", files={"image_a": photo(*BIDEN), "image_b": photo(*BIDEN)}, headers=h)
    assert same.status_code == 422 and same.json()["code"] == "identical_images"
    bad = client.post(
        "/v1/explain",
        params={"method": "gradcam"},
        files={"image_a": photo(*OBAMA), "image_b": photo(*BIDEN)},
        headers=h,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    anon = client.post("/v1/explain", files={"image_a": photo(*OBAMA), "image_b": photo(*BIDEN)})
    assert anon.status_code == 401
