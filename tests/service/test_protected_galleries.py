"""Protected galleries through the REST service (issue 14): the real FastAPI app on real faces.

The server holds the protection secret (settings / FACEPRINT_PROTECT_SECRET_FILE); clients use the
ordinary routes and never send it. Nothing the service writes holds a plain embedding of an
enrolled face; a server without the secret, or with another, answers 503, never a score.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint.errors import ConfigurationError
from faceprint.service.settings import ServiceSettings, load_protect_secret

from ..conftest import data_path
from .conftest import BIDEN, OBAMA, OBAMA2, Keys, photo

SECRET = b"the server's protection secret, 32+ bytes"
LFW = {"peirsol": ("Aaron_Peirsol", 1), "sorkin": ("Aaron_Sorkin", 1), "gul": ("Abdullah_Gul", 13)}
PROBE = ("Aaron_Peirsol", 2)


def lfw(name: str, n: int) -> bytes:
    return data_path("lfw_view1", name, f"{name}_{n:04d}.jpg").read_bytes()


def _create(client: Any, keys: Keys, name: str, protect: str | None, **extra: Any) -> Any:
    body = {"name": name, **({"protect": protect} if protect else {}), **extra}
    return client.post("/v1/galleries", json=body, headers=keys.header(keys.admin))


def _enrol(client: Any, keys: Keys, gallery: str, subject: str, data: bytes) -> Any:
    return client.post(
        f"/v1/galleries/{gallery}/subjects/{subject}/templates",
        files={"images": data},
        headers=keys.header(keys.enroll),
    )


def _identify(client: Any, keys: Keys, gallery: str, data: bytes, token: str | None = None, **params: Any) -> Any:
    return client.post(
        f"/v1/galleries/{gallery}/identify",
        params=params,
        files={"image": data},
        headers=keys.header(token or keys.recognize),
    )


def _verify(client: Any, keys: Keys, gallery: str, subject: str, data: bytes) -> Any:
    return client.post(
        f"/v1/galleries/{gallery}/subjects/{subject}/verify", files={"image": data}, headers=keys.header(keys.recognize)
    )


def _embedding(client: Any, keys: Keys, data: bytes) -> np.ndarray:
    r = client.post("/v1/embed", files={"image": data}, headers=keys.header(keys.recognize))
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["faces"][0]["embedding"], np.float32)


def _plain_patterns(vectors: list[np.ndarray]) -> list[bytes]:
    """The first 8 components of each vector as float32 and float64 bytes (little- and big-endian)."""
    out = []
    for v in vectors:
        for dt in ("<f4", ">f4", "<f8", ">f8"):
            out.append(np.asarray(v[:8], dt).tobytes())
    return out


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("method", ["biohash", "iom", pytest.param("ckks", marks=pytest.mark.slow)])
def test_enrol_identify_verify_on_a_protected_gallery_leave_no_plain_template(method: str, make_client: Any) -> None:
    client, keys, settings = make_client(protect_secret=SECRET)
    r = _create(client, keys, "prot", method)
    assert r.status_code == 201, r.text
    assert r.json()["protection"] == method and r.json()["keep_source_images"] is False

    enrolled = []
    for subject, (name, i) in LFW.items():
        data = lfw(name, i)
        r = _enrol(client, keys, "prot", subject, data)
        assert r.status_code == 201, r.text
        assert r.json()["added"] == 1 and r.json()["templates"] == 1
        assert "embedding" not in r.text and 'template"' not in r.text  # nothing of the template comes back
        enrolled.append(_embedding(client, keys, data))

    who = _identify(client, keys, "prot", lfw(*PROBE))
    assert who.status_code == 200, who.text
    body = who.json()
    assert body["identified"] == "peirsol", body
    assert body["threshold_source"].startswith("protected gallery default")
    scores = {c["subject"]: c["score"] for c in body["candidates"]}
    assert all(s >= body["threshold"] for s in scores.values())

    v = _verify(client, keys, "prot", "peirsol", lfw(*PROBE)).json()
    assert v["match"] is True and v["operating_point"] == f"protected-{method}"
    impostor = _verify(client, keys, "prot", "gul", lfw(*PROBE)).json()
    assert impostor["match"] is False and impostor["score"] < v["score"]

    # listing, describing, removing work as on a plain gallery
    subjects = client.get("/v1/galleries/prot/subjects", headers=keys.header(keys.enroll)).json()
    assert [s["id"] for s in subjects["subjects"]] == sorted(LFW) and subjects["total"] == 3
    listed = client.get("/v1/galleries", headers=keys.header(keys.admin)).json()["galleries"]
    assert [(g["name"], g["protection"], g["templates"]) for g in listed] == [("prot", method, 3)]
    assert client.delete("/v1/galleries/prot/subjects/peirsol", headers=keys.header(keys.enroll)).status_code == 200
    after = _identify(client, keys, "prot", lfw(*PROBE)).json()
    assert after["identified"] != "peirsol"

    # no plain float vector of an enrolled face anywhere under the data dir
    patterns = _plain_patterns(enrolled)
    for f in _files(settings.data_dir):
        raw = f.read_bytes()
        assert not any(p in raw for p in patterns), f"a plain template of an enrolled face is in {f}"
    # the scan can fail: a plain gallery on the same faces does hold these bytes
    assert _create(client, keys, "plain", None).status_code == 201
    assert _enrol(client, keys, "plain", "peirsol", lfw(*LFW["peirsol"])).status_code == 201
    assert any(p in f.read_bytes() for f in _files(settings.data_dir / "galleries" / "plain") for p in patterns)


def test_protected_gallery_refusals(make_client: Any) -> None:
    client, keys, _ = make_client(protect_secret=SECRET)
    assert _create(client, keys, "prot", "iom").status_code == 201
    assert _enrol(client, keys, "prot", "obama", photo(*OBAMA)).status_code == 201

    # keeping photos, an unknown method, a quality filter (no template carries one): clear refusals
    r = _create(client, keys, "keep", "biohash", keep_source_images=True)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert _create(client, keys, "bad", "rot13").status_code == 422
    r = _identify(client, keys, "prot", photo(*OBAMA2), min_template_quality=50)
    assert r.status_code == 409 and r.json()["code"] == "protected_gallery"
    # creation is admin-only, as for a plain gallery; the name is taken whatever the mode
    r = client.post("/v1/galleries", json={"name": "x", "protect": "iom"}, headers=keys.header(keys.enroll))
    assert r.status_code == 403
    assert _create(client, keys, "prot", None).status_code == 409

    # below admin, the threshold can only be raised
    low = _identify(client, keys, "prot", photo(*BIDEN), threshold=-1.0).json()
    assert low["candidates"] == [] and "lower" in low["threshold_source"]
    admin = _identify(client, keys, "prot", photo(*BIDEN), token=keys.admin, threshold=-1.0).json()
    assert [c["subject"] for c in admin["candidates"]] == ["obama"]
    assert client.delete("/v1/galleries/prot", headers=keys.header(keys.admin)).json()["templates"] == 1


def test_a_server_without_the_secret_or_with_another_never_scores(make_client: Any, tmp_path: Path) -> None:
    client, keys, settings = make_client(protect_secret=SECRET)
    assert _create(client, keys, "prot", "biohash").status_code == 201
    assert _enrol(client, keys, "prot", "obama", photo(*OBAMA)).status_code == 201
    client.__exit__(None, None, None)

    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app

    for secret, words in ((None, "no protection secret"), (b"another secret of enough length", "does not open")):
        s = settings.with_(protect_secret=secret)
        other = TestClient(create_app(s, pipelines=[client.app.state.faceprint.pool._workers[0].pipe]))
        with other:
            r = _identify(other, keys, "prot", photo(*OBAMA2))
            assert r.status_code == 503 and r.json()["code"] == "protection_unavailable", r.text
            assert words in r.json()["detail"] and "score" not in r.json() and "candidates" not in r.json()
            assert _verify(other, keys, "prot", "obama", photo(*OBAMA2)).status_code == 503
            listed = other.get("/v1/galleries", headers=keys.header(keys.admin)).json()["galleries"]
            assert listed[0]["status"] == "locked"
            # and it cannot make protected galleries without a secret
            r = _create(other, keys, "new", "iom")
            assert r.status_code == (409 if secret is None else 201), r.text
            if secret is None:
                assert r.json()["code"] == "protection_not_configured"


def test_the_secret_file_must_be_private(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_bytes(SECRET + b"\n")
    os.chmod(f, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_protect_secret({"FACEPRINT_PROTECT_SECRET_FILE": str(f)})
    os.chmod(f, 0o600)
    assert load_protect_secret({"FACEPRINT_PROTECT_SECRET_FILE": str(f)}) == SECRET
    s = ServiceSettings.from_env({"FACEPRINT_PROTECT_SECRET_FILE": str(f), "FACEPRINT_DATA_DIR": str(tmp_path)})
    assert s.protect_secret == SECRET and SECRET.decode() not in repr(s)
    with pytest.raises(ConfigurationError, match="at least"):
        ServiceSettings(data_dir=tmp_path, protect_secret=b"short")


def test_the_service_serves_a_centred_biohash_gallery_made_with_the_library(make_client: Any, pipeline: Any) -> None:
    """A gallery made outside the service (centred BioHashing, which the service does not fit) in its
    gallery folder, with the server's secret, is served by the ordinary routes."""
    from faceprint.gallery.protected import open_protected_gallery
    from faceprint.protection.biohash import fit_centre

    client, keys, settings = make_client(protect_secret=SECRET)
    others = [("Adam_Sandler", 1), ("Abel_Pacheco", 1), ("Aaron_Guiel", 1), ("Abdoulaye_Wade", 4)]
    centre = fit_centre(np.stack([pipeline.embed_one(lfw(n, i)).embedding.vector for n, i in others]))
    with open_protected_gallery(
        settings.gallery_dir / "centred", SECRET, protect="biohash", create=True, pipeline=pipeline, centre=centre
    ):
        pass
    for subject, (name, i) in LFW.items():
        assert _enrol(client, keys, "centred", subject, lfw(name, i)).status_code == 201
    body = _identify(client, keys, "centred", lfw(*PROBE)).json()
    assert body["identified"] == "peirsol" and body["threshold"] == pytest.approx(0.63)


@pytest.mark.slow
def test_a_ckks_gallery_is_capped(make_client: Any) -> None:
    client, keys, _ = make_client(protect_secret=SECRET, ckks_max_templates=1)
    assert _create(client, keys, "enc", "ckks").status_code == 201
    assert _enrol(client, keys, "enc", "obama", photo(*OBAMA)).status_code == 201
    r = _enrol(client, keys, "enc", "biden", photo(*BIDEN))
    assert r.status_code == 409 and "FACEPRINT_CKKS_MAX_TEMPLATES" in r.json()["detail"]
    assert client.get("/v1/galleries/enc", headers=keys.header(keys.admin)).json()["templates"] == 1
