"""Against a real ``faceprint serve`` process (uvicorn) on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import BIDEN, OBAMA, OBAMA2, OBAMA_SMALL, Keys, LiveServer, photo, start_server

pytestmark = pytest.mark.service


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode):  # e.g. the socket of the inference workers' forkserver
                    continue
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def test_concurrent_verify_through_uvicorn(live_server: LiveServer) -> None:
    h = Keys.header(live_server.keys.recognize)
    pairs = [(OBAMA, OBAMA2, True), (OBAMA, BIDEN, False), (OBAMA_SMALL, OBAMA2, True)] * 2

    def one(pair: tuple[tuple[str, ...], tuple[str, ...], bool]) -> tuple[int, bool, bool]:
        a, b, expected = pair
        r = httpx.post(
            live_server.url + "/v1/verify", files={"image_a": photo(*a), "image_b": photo(*b)}, headers=h, timeout=60
        )
        return r.status_code, r.json().get("match"), expected

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, pairs))
    assert all(code == 200 for code, _, _ in results), results
    assert all(match == expected for _, match, expected in results)
    metrics = httpx.get(live_server.url + "/metrics").text
    assert 'faceprint_inference_seconds_count{operation="verify"}' in metrics


def test_uvicorn_refuses_oversized_chunked_and_declared_bodies(live_server: LiveServer) -> None:
    h = Keys.header(live_server.keys.recognize)
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
    )

    def body():  # no Content-Length: Transfer-Encoding chunked, 5 MB against a 3 MB limit
        yield head
        for _ in range(20):
            yield b"\0" * 250_000

    r = httpx.post(
        live_server.url + "/v1/detect",
        content=body(),
        headers={**h, "Content-Type": "multipart/form-data; boundary=xyz"},
        timeout=60,
    )
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert "request body" in r.json()["detail"]
    # a declared Content-Length over the limit is refused before the body is read (raw socket:
    # the client announces 100 MiB and sends only the headers)
    host, port = live_server.url.removeprefix("http://").split(":")
    token = live_server.keys.recognize
    request = (
        f"POST /v1/detect HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {100 << 20}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        reply = ""
        while "payload_too_large" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and "application/problem+json" in reply and "payload_too_large" in reply
    # the server still answers afterwards
    assert httpx.get(live_server.url + "/healthz").status_code == 200


def test_verify_and_identify_write_nothing_to_disk(live_server: LiveServer) -> None:
    """Uploads stay in memory: no file appears in TMPDIR or the data dir, none changes size, and
    none holds image bytes, while photos are verified and searched."""
    keys = live_server.keys
    url = live_server.url
    assert (
        httpx.post(url + "/v1/galleries", json={"name": "privacy"}, headers=Keys.header(keys.admin)).status_code == 201
    )
    r = httpx.post(
        url + "/v1/galleries/privacy/subjects/obama/templates",
        files={"images": photo(*OBAMA)},
        headers=Keys.header(keys.enroll),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    big = photo(*OBAMA2)
    padded = big + b"\0" * (1_200_000 - len(big))  # over the 1 MiB at which Starlette would spool to disk
    before = _snapshot(live_server.tmp_dir, live_server.data_dir)
    h = Keys.header(keys.recognize)
    for files in (
        {"image_a": padded, "image_b": photo(*OBAMA)},
        {"image_a": photo(*OBAMA_SMALL), "image_b": photo(*BIDEN)},
    ):
        r = httpx.post(url + "/v1/verify", files=files, headers=h, timeout=60)
        assert r.status_code == 200, r.text
    for image in (padded, photo(*BIDEN)):
        r = httpx.post(url + "/v1/galleries/privacy/identify", files={"image": image}, headers=h, timeout=60)
        assert r.status_code == 200, r.text
    r = httpx.post(url + "/v1/galleries/privacy/subjects/obama/verify", files={"image": padded}, headers=h, timeout=60)
    assert r.status_code == 200 and r.json()["match"] is True
    after = _snapshot(live_server.tmp_dir, live_server.data_dir)
    # (onnxruntime writes a small .ses id file to TMPDIR at start-up, before the snapshot)
    assert set(after) == set(before), set(after) ^ set(before)
    for path, (size, mtime) in after.items():
        if path.endswith("-shm"):  # SQLite's shared-memory index: readers touch it by design
            continue
        if path.endswith("audit.jsonl"):  # searches are audited (who, when, outcome: no image data)
            continue
        assert (size, mtime) == before[path], path
    probes = [big[len(big) // 2 : len(big) // 2 + 64], photo(*BIDEN)[5000:5064]]
    for path in after:
        content = Path(path).read_bytes()
        assert not any(p in content for p in probes), path


def test_shutdown_finishes_the_enrolment_in_flight(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        keys = server.keys
        assert (
            httpx.post(server.url + "/v1/galleries", json={"name": "g"}, headers=Keys.header(keys.admin)).status_code
            == 201
        )
        files = [("images", photo(*p)) for p in (OBAMA, OBAMA2, ("faces_small", "obama", "obama1.jpg"))]
        with ThreadPoolExecutor(1) as ex:
            pending = ex.submit(
                httpx.post,
                server.url + "/v1/galleries/g/subjects/obama/templates",
                files=files,
                headers=Keys.header(keys.enroll),
                timeout=60,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until the server is working on it
                m = httpx.get(server.url + "/metrics").text
                if "faceprint_inference_jobs_pending 1.0" in m:
                    break
                time.sleep(0.02)
            server.proc.send_signal(signal.SIGTERM)
            response = pending.result(timeout=60)
        assert response.status_code == 201, response.text
        assert response.json()["added"] == 3
        assert server.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
    finally:
        server.stop()
    from faceprint.gallery import open_gallery

    with open_gallery(server.data_dir / "galleries" / "g", create=False) as g:
        assert g.subject("obama").n_templates == 3
    events = [json.loads(x) for x in (server.data_dir / "audit.jsonl").read_text().splitlines()]
    assert events[-1]["action"] == "enrol" and events[-1]["outcome"] == "ok" and events[-1]["templates"] == 3
    assert "Finished server process" in server.log()


def _blank_png(size: int = 1000) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), "white").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_face_less_images_do_not_starve_normal_traffic(tmp_path: Path) -> None:
    """A blank 1000×1000 PNG sends the detector through every fallback (seconds of work with the
    GIL held). Four of them at once, from one key, while another key verifies photos and a probe
    polls /healthz: health answers every time within its timeout, the normal requests all
    succeed, and the face-less ones end (200, or 504 once their time is up and their worker was
    stopped) instead of stalling the server. Counts, not timings, are asserted; the latency
    ratio is printed for information."""
    import statistics
    import threading

    server = start_server(tmp_path, workers=2, env={"FACEPRINT_INFERENCE_TIMEOUT_S": "10"})
    try:
        url = server.url
        normal = Keys.header(server.keys.recognize)
        heavy = Keys.header(server.keys.enroll)
        pair = {"image_a": photo(*OBAMA_SMALL), "image_b": photo(*OBAMA2)}

        def verify_once() -> tuple[int, float]:
            t = time.perf_counter()
            r = httpx.post(url + "/v1/verify", files=pair, headers=normal, timeout=60)
            return r.status_code, time.perf_counter() - t

        baseline = [verify_once() for _ in range(3)]
        assert all(code == 200 for code, _ in baseline), baseline
        stop = threading.Event()
        health: list[object] = []

        def probe() -> None:
            while not stop.is_set():
                try:
                    health.append(httpx.get(url + "/healthz", timeout=2).status_code)
                except httpx.TimeoutException:
                    health.append("timeout")
                time.sleep(0.25)

        blank = _blank_png()
        prober = threading.Thread(target=probe)
        prober.start()
        with ThreadPoolExecutor(4) as ex:
            attacks = [
                ex.submit(lambda: httpx.post(url + "/v1/detect", files={"image": blank}, headers=heavy, timeout=90))
                for _ in range(4)
            ]
            time.sleep(1.0)  # the face-less images are being worked on
            loaded = [verify_once() for _ in range(8)]
            heavy_codes = [f.result().status_code for f in attacks]
        stop.set()
        prober.join()
        ratio = statistics.median(t for _, t in loaded) / statistics.median(t for _, t in baseline)
        print(f"verify latency under load / alone: {ratio:.2f}x; face-less answers {heavy_codes}; {len(health)} probes")
        assert health and all(code == 200 for code in health), health
        assert [code for code, _ in loaded] == [200] * len(loaded), loaded
        assert set(heavy_codes) <= {200, 504}, heavy_codes
        assert httpx.get(url + "/readyz", timeout=5).status_code == 200
    finally:
        server.stop()


@pytest.mark.slow
def test_decrypted_templates_do_not_outlive_a_killed_server(tmp_path: Path) -> None:
    """kill -9 leaves the decrypted RAM copy behind; the next start removes it."""
    ram = tmp_path / "ram"
    ram.mkdir()
    env = {"FACEPRINT_TEMPLATE_KEY": os.urandom(32).hex(), "FACEPRINT_RAM_DIR": str(ram)}
    server = start_server(tmp_path, env=env)
    try:
        h = Keys.header(server.keys.admin)
        assert httpx.post(server.url + "/v1/galleries", json={"name": "g"}, headers=h).status_code == 201
        r = httpx.post(
            server.url + "/v1/galleries/g/subjects/obama/templates",
            files={"images": photo(*OBAMA)},
            headers=Keys.header(server.keys.enroll),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        work = [p for p in ram.iterdir() if p.name.startswith("faceprint-galleries-")]
        assert len(work) == 1 and (work[0].stat().st_mode & 0o777) == 0o700
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        assert work[0].exists()  # what a crash leaves: decrypted templates in RAM
        again = start_server(tmp_path, env=env, keys=server.keys)
        try:
            assert not work[0].exists()
            now = [p for p in ram.iterdir() if p.name.startswith("faceprint-galleries-")]
            assert len(now) == 1 and now != work
            who = httpx.post(
                again.url + "/v1/galleries/g/identify",
                files={"image": photo(*OBAMA2)},
                headers=Keys.header(again.keys.recognize),
                timeout=60,
            )
            assert who.status_code == 200 and who.json()["identified"] == "obama"
        finally:
            again.stop()
        assert not any(p.name.startswith("faceprint-galleries-") for p in ram.iterdir())  # a clean stop
    finally:
        server.stop()
