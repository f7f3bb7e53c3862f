"""Fixtures for the REST service: in-process apps sharing the session's models, and a real
``faceprint serve`` process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

with warnings.catch_warnings():  # starlette asks for httpx2 instead of httpx; httpx is what we have
    warnings.simplefilter("ignore")
    import fastapi.testclient  # noqa: F401

from ..conftest import data_path

pytestmark = pytest.mark.service


@dataclass
class Keys:
    admin: str
    enroll: str
    recognize: str
    scoped_enroll: str  # enroll key limited to gallery "alpha"
    scoped_recognize: str  # recognize key limited to gallery "alpha"

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_keys(keys_db: Path) -> Keys:
    from faceprint.service.auth import KeyStore

    store = KeyStore(keys_db)
    return Keys(
        admin=store.create("admin", label="test admin")[1],
        enroll=store.create("enroll")[1],
        recognize=store.create("recognize")[1],
        scoped_enroll=store.create("enroll", gallery="alpha")[1],
        scoped_recognize=store.create("recognize", gallery="alpha")[1],
    )


def photo(*parts: str) -> bytes:
    return data_path(*parts).read_bytes()


OBAMA = ("faces_small", "obama", "obama.jpg")
OBAMA2 = ("faces_small", "obama", "obama2.jpg")
OBAMA_SMALL = ("faces_small", "obama", "obama_small.jpg")
BIDEN = ("faces_small", "biden", "biden.jpg")
COFFEE = ("non_faces", "skimage_coffee.png")
TWO_PEOPLE = ("group_photos", "face_recognition_two_people.jpg")


@pytest.fixture
def make_client(tmp_path: Path, pipeline: Any) -> Iterator[Any]:
    """``make_client(**settings) -> (client, keys, settings)``: an app on the session's models."""
    from fastapi.testclient import TestClient

    from faceprint.service.app import create_app
    from faceprint.service.settings import ServiceSettings

    clients: list[Any] = []

    def make(**overrides: Any) -> tuple[Any, Keys, ServiceSettings]:
        data_dir = tmp_path / f"data{len(clients)}"
        settings = ServiceSettings(data_dir=data_dir, **overrides)
        keys = make_keys(settings.keys_db)
        client = TestClient(create_app(settings, pipelines=[pipeline]), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, keys, settings

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client_keys(make_client: Any) -> tuple[Any, Keys]:
    client, keys, _ = make_client()
    return client, keys


# --- a real server process -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    tmp_dir: Path
    keys: Keys
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def start_server(
    root: Path, *, env: dict[str, str] | None = None, workers: int = 1, keys: Keys | None = None
) -> LiveServer:
    """``python -m faceprint serve`` on a free loopback port, TMPDIR pointed at ``root/tmp``.
    ``keys``: a restart on the data dir of an earlier server, whose keys they are."""
    data_dir = root / "data"
    tmp_dir = root / "tmp"
    data_dir.mkdir(parents=True, exist_ok=keys is not None)
    tmp_dir.mkdir(exist_ok=keys is not None)
    keys = keys or make_keys(data_dir / "keys.sqlite")
    port = free_port()
    log_path = root / "server.log"
    full_env = {**os.environ, "TMPDIR": str(tmp_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("FACEPRINT_DATA_DIR", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "faceprint",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--workers",
                str(workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, tmp_dir, keys, proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"faceprint serve exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"faceprint serve did not become ready in 60 s:\n{server.log()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("live"),
        workers=2,
        # quality on (fiqa-fast, a few ms per face): the real workers build the quality stage
        env={
            "FACEPRINT_MAX_REQUEST_BYTES": "3000000",
            "FACEPRINT_MAX_IMAGE_BYTES": "3000000",
            "FACEPRINT_QUALITY": "fiqa-fast",
        },
    )
    yield server
    server.stop()
