"""Append-only audit log: one JSON object per line for every enrolment, deletion, search
(identify, verify against a subject), refusal (401, 403) and key event.

Each line holds the time (UTC, ISO 8601), the action, the API key id that did it (for a 401,
the id that was presented, if any), the gallery and subject concerned and the outcome — never
image data, embeddings, scores or key secrets. The file
is opened with ``O_APPEND`` (mode 0600) for each event and flushed with ``fsync``, so the
service and the ``faceprint keys`` CLI can both append and a crash loses no acknowledged event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .settings import ensure_private_dir

__all__ = ["AuditLog"]

log = logging.getLogger(__name__)

_ALLOWED_EXTRA = frozenset(
    {
        "actor",
        "role",
        "images",
        "templates",
        "key_gallery",
        "label",
        "client",
        "request_id",
        "reason",
        "status",
        "path",
        "candidates",
    }
)


class AuditLog:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(
        self,
        action: str,
        *,
        key_id: str | None,
        gallery: str | None = None,
        subject: str | None = None,
        outcome: str = "ok",
        **extra: Any,
    ) -> dict[str, Any]:
        """Append one event and return it. ``extra`` keys are limited to a known, image-free set."""
        unknown = set(extra) - _ALLOWED_EXTRA
        if unknown:
            raise ValueError(f"audit fields not allowed: {sorted(unknown)}")
        event: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "action": action,
            "key_id": key_id,
            "gallery": gallery,
            "subject": subject,
            "outcome": outcome,
        }
        event.update({k: v for k, v in extra.items() if v is not None})
        line = (json.dumps(event, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8")
        with self._lock:
            ensure_private_dir(self.path.parent)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return event

    def read(self) -> list[dict[str, Any]]:
        """Every event so far (for tests and tools)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
