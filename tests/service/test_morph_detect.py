"""``POST /v1/morph/detect``: D-MAD with a trusted photo, S-MAD without; the usual auth and upload checks."""

from __future__ import annotations

from typing import Any

import cv2
import pytest

from faceprint.attacks.morph import Morpher
from tests.conftest import data_path

from .conftest import COFFEE, Keys, photo

pytestmark = pytest.mark.service

A = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg")
A_PROBE = ("lfw_view1", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg")
B = ("lfw_view1", "Adam_Scott", "Adam_Scott_0001.jpg")


@pytest.fixture(scope="module")
def morph_png() -> bytes:
    img = Morpher("flow", select="central").morph(data_path(*A), data_path(*B)).image
    return cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_morph_detect(client_keys: tuple[Any, Keys], morph_png: bytes) -> None:
    client, keys = client_keys
    h = keys.header(keys.recognize)
    diff = client.post("/v1/morph/detect", files={"image": morph_png, "trusted": photo(*A_PROBE)}, headers=h)
    assert diff.status_code == 200, diff.text
    d = diff.json()
    assert d["differential"] is True and d["detector"].startswith("dmad@") and 0.0 <= d["score"] <= 1.0
    assert d["is_morph"] == (d["score"] >= d["threshold"])
    bona = client.post("/v1/morph/detect", files={"image": photo(*A), "trusted": photo(*A_PROBE)}, headers=h)
    assert bona.status_code == 200 and bona.json()["score"] < d["score"]
    single = client.post("/v1/morph/detect", files={"image": morph_png}, headers=h)
    assert single.status_code == 200 and single.json()["detector"].startswith("smad@")
    assert "weak" in single.json()["note"]


def test_morph_detect_errors(client_keys: tuple[Any, Keys]) -> None:
    client, keys = client_keys
    assert client.post("/v1/morph/detect", files={"image": photo(*A)}).status_code == 401
    h = keys.header(keys.recognize)
    noface = client.post("/v1/morph/detect", files={"image": photo(*A), "trusted": photo(*COFFEE)}, headers=h)
    assert noface.status_code == 422 and noface.json()["code"] == "no_face" and "trusted" in noface.json()["detail"]
    missing = client.post("/v1/morph/detect", files={"trusted": photo(*A)}, headers=h)
    assert missing.status_code == 422 and "image" in missing.json()["detail"]
