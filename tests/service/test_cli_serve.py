"""``faceprint keys create | list | revoke`` and ``faceprint serve --print-openapi``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceprint.cli import main
from faceprint.cli.serve import _is_loopback
from faceprint.service.audit import AuditLog
from faceprint.service.auth import KeyStore

pytestmark = pytest.mark.service


def test_keys_create_list_revoke_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert (
        main(["keys", "create", "--role", "enroll", "--gallery", "alpha", "--label", "kiosk", "--data-dir", str(data)])
        == 0
    )
    token = capsys.readouterr().out.strip()
    assert token.startswith("fp_") and len(token.split("_", 2)[2]) == 43
    assert main(["keys", "create", "--role", "admin", "--data-dir", str(data), "--json"]) == 0
    admin = json.loads(capsys.readouterr().out)
    assert admin["role"] == "admin" and admin["gallery"] is None and admin["key"].startswith(f"fp_{admin['id']}_")

    assert main(["keys", "list", "--data-dir", str(data), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {k["role"] for k in listed} == {"enroll", "admin"} and all("key" not in k for k in listed)
    key_id = token.split("_")[1]
    assert main(["keys", "revoke", key_id, "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--data-dir", str(data), "--active"]) == 0
    out = capsys.readouterr().out
    assert key_id not in out and admin["id"] in out and token.split("_", 2)[2] not in out
    assert KeyStore(data / "keys.sqlite").get(key_id).revoked  # type: ignore[union-attr]

    events = AuditLog(data / "audit.jsonl").read()
    assert [e["action"] for e in events] == ["key_create", "key_create", "key_revoke"]
    assert events[0]["key_id"] == key_id and events[0]["gallery"] == "alpha" and events[0]["role"] == "enroll"
    text = (data / "audit.jsonl").read_text()
    assert token.split("_", 2)[2] not in text and admin["key"].split("_", 2)[2] not in text

    assert main(["keys", "revoke", "ffffffffffff", "--data-dir", str(data)]) != 0
    assert main(["keys", "create", "--role", "superuser", "--data-dir", str(data)]) != 0


def test_print_openapi_is_the_committed_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--print-openapi"]) == 0
    committed = Path(__file__).resolve().parents[2] / "src" / "faceprint" / "service" / "openapi.json"
    assert capsys.readouterr().out == committed.read_text()


def test_loopback_detection_for_the_bind_warning() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert _is_loopback(host)
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org"):
        assert not _is_loopback(host)


def test_a_damaged_key_store_ends_serve_and_keys_with_exit_7_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "keys.sqlite").write_bytes(b"not a database " * 200)  # e.g. overwritten or truncated
    for args in (["serve", "--data-dir", str(data)], ["keys", "list", "--data-dir", str(data)]):
        assert main(args) == 7, args
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "key store" in lines[0] and "damaged" in lines[0], err
    assert main(["keys", "list", "--data-dir", str(data), "--json"]) == 7
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "corrupt_store"


def test_serve_refuses_bad_quality_settings_before_loading_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert main(["serve", "--data-dir", data, "--quality", "sharpest"]) != 0
    err = capsys.readouterr().err
    assert "sharpest" in err and "fiqa-fast" in err  # the known assessors are named
    assert main(["serve", "--data-dir", data, "--min-quality", "40"]) == 2
    assert "needs a quality assessor" in capsys.readouterr().err
    assert main(["serve", "--data-dir", data, "--quality", "fiqa-fast", "--min-quality", "140"]) == 2
    assert "[0, 100]" in capsys.readouterr().err
