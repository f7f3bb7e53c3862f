"""API keys, roles, gallery scopes and per-key rate limits.

A key looks like ``fp_<id>_<secret>``: ``id`` (12 hex digits) finds the row, ``secret``
(43 url-safe characters, 256 random bits) is checked against a salted scrypt hash with
:func:`hmac.compare_digest`. Only the hash is stored (``keys.sqlite`` in the data dir, mode
0600); the full key is shown once, when it is created.

Roles, each allowing what the one before allows:

============  ==============================================================================
recognize     detect, embed, verify two photos; verify against / identify in its galleries
enroll        + list, enrol and delete subjects of its galleries
admin         + create and delete galleries
============  ==============================================================================

A key made with ``--gallery NAME`` reaches that gallery only (any role); a key without one
reaches every gallery. 401 means "who are you?" (no key, malformed, unknown or revoked); 403
means "you may not" (valid key, wrong role or gallery).

Key ids are not secret, so nothing here may depend on the id alone: an unknown id and a known
id with a wrong secret get the same answer ("invalid API key") after the same scrypt work, and
"revoked" is only said to a caller who sent the right secret. Failed attempts are limited per
client address and per presented secret (never per key id, which would let anyone lock a real
key out), and a failed attempt is charged *before* the scrypt runs, so concurrent guesses cannot
overrun the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from ..errors import (
    APIKeyNotFoundError,
    APIKeyRevokedError,
    AuthenticationError,
    ConfigurationError,
    CorruptStoreError,
    PermissionDeniedError,
    RateLimitError,
)
from .settings import ensure_private_dir

__all__ = [
    "Role",
    "APIKey",
    "KeyStore",
    "Authenticator",
    "TokenBucketLimiter",
    "parse_token",
    "GALLERY_NAME_RE",
]

log = logging.getLogger(__name__)

#: Names of galleries (and API-key scopes): a letter or digit, then letters, digits, ``_.-``.
GALLERY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_TOKEN_RE = re.compile(r"^fp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_KDF_NAME = "scrypt-n16384-r8-p1"
#: The one answer for an unknown key id and for a wrong secret (they must not be told apart).
INVALID_KEY = "invalid API key: check the key you sent, or create one with `faceprint keys create`"
MALFORMED_KEY = "malformed API key; keys look like fp_<id>_<secret>"
_DUMMY_SALT = b"faceprint-dummy!"  # scrypt for unknown ids, so they cost what a known id costs


class Role(StrEnum):
    RECOGNIZE = "recognize"
    ENROLL = "enroll"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.RECOGNIZE: 0, Role.ENROLL: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class APIKey:
    """One API key as stored (no secret): what it may do and whether it still works."""

    id: str
    role: Role
    gallery: str | None
    label: str
    created_at: str
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    def can_access(self, gallery: str) -> bool:
        return self.gallery is None or hmac.compare_digest(self.gallery.encode(), gallery.encode())

    def check(self, role: Role, gallery: str | None = None) -> None:
        """Raise :class:`PermissionDeniedError` unless this key has ``role`` (and reaches ``gallery``)."""
        if not self.allows(role):
            raise PermissionDeniedError(
                f"API key {self.id} has role {self.role.value!r}; this request needs {role.value!r} or higher"
            )
        if gallery is not None and not self.can_access(gallery):
            raise PermissionDeniedError(f"API key {self.id} is limited to gallery {self.gallery!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "role": self.role.value,
            "gallery": self.gallery,
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, **_SCRYPT)


def _busy(exc: sqlite3.DatabaseError) -> bool:
    """A lock held by another process, not damage."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed ``fp_<id>_<secret>`` key, else None."""
    m = _TOKEN_RE.match(token.strip())
    return (m.group(1), m.group(2)) if m else None


class KeyStore:
    """API keys in SQLite: create, list, revoke, and look up by id. Safe to share between threads
    and processes (each call opens its own connection)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        ensure_private_dir(self.path.parent)
        if self.path.exists() and not self.path.is_file():
            raise ConfigurationError(f"the API key store {self.path} is not a file")
        if not self.path.exists():  # created 0600 before SQLite writes a byte (its journals copy the mode)
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass  # another process made it first
        with self._connect() as db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS api_keys (
                    id TEXT PRIMARY KEY,
                    role TEXT NOT NULL,
                    gallery TEXT,
                    label TEXT NOT NULL DEFAULT '',
                    kdf TEXT NOT NULL,
                    salt BLOB NOT NULL,
                    hash BLOB NOT NULL,
                    created_at TEXT NOT NULL,
                    revoked_at TEXT
                )"""
            )

    def _damaged(self, exc: sqlite3.DatabaseError) -> CorruptStoreError:
        return CorruptStoreError(
            f"the API key store {self.path} is damaged ({exc}): restore it from a backup, or move it away "
            "and create new keys with `faceprint keys create`",
            path=str(self.path),
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=10.0)
            try:
                with db:
                    yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise
            raise self._damaged(exc) from exc

    def _reader(self) -> sqlite3.Connection:
        """This thread's long-lived connection for the per-request key lookup (autocommit reads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            self._local.db = db
        return db

    @staticmethod
    def _row(row: tuple[str, str, str | None, str, str, str | None]) -> APIKey:
        return APIKey(row[0], Role(row[1]), row[2], row[3], row[4], row[5])

    def create(self, role: Role | str, *, gallery: str | None = None, label: str = "") -> tuple[APIKey, str]:
        """Make a key; returns its record and the full key text (shown once, never stored)."""
        try:
            role = Role(role)
        except ValueError:
            raise ConfigurationError(f"unknown role {role!r}; use admin, enroll or recognize") from None
        if gallery is not None and not GALLERY_NAME_RE.match(gallery):
            raise ConfigurationError(f"invalid gallery name {gallery!r}: use letters, digits, '_', '.', '-'")
        if len(label) > 200:
            raise ConfigurationError("a key label is at most 200 characters")
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        digest = _hash_secret(secret, salt)
        with self._connect() as db:
            for _ in range(5):
                key_id = secrets.token_hex(6)
                try:
                    db.execute(
                        "INSERT INTO api_keys (id, role, gallery, label, kdf, salt, hash, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key_id, role.value, gallery, label, _KDF_NAME, salt, digest, _now()),
                    )
                    break
                except sqlite3.IntegrityError:  # an id collision: 1 in 2**48, draw again
                    continue
            else:  # pragma: no cover
                raise RuntimeError("could not draw a unique key id")
        record = self.get(key_id)
        assert record is not None
        return record, f"fp_{key_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> list[APIKey]:
        q = "SELECT id, role, gallery, label, created_at, revoked_at FROM api_keys"
        if not include_revoked:
            q += " WHERE revoked_at IS NULL"
        with self._connect() as db:
            return [self._row(r) for r in db.execute(q + " ORDER BY created_at, id")]

    def get(self, key_id: str) -> APIKey | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, role, gallery, label, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return None if row is None else self._row(row)

    def revoke(self, key_id: str) -> APIKey:
        """Mark a key revoked (kept for the audit trail); revoking twice is harmless."""
        with self._connect() as db:
            cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_now(), key_id))
        record = self.get(key_id)
        if record is None:
            raise APIKeyNotFoundError(f"no API key with id {key_id!r}; `faceprint keys list` shows them")
        if cur.rowcount == 0:
            log.info("API key %s was already revoked", key_id)
        return record

    def _lookup(self, key_id: str) -> tuple[APIKey, str, bytes, bytes] | None:
        q = "SELECT id, role, gallery, label, created_at, revoked_at, kdf, salt, hash FROM api_keys WHERE id = ?"
        try:
            row = self._reader().execute(q, (key_id,)).fetchone()
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise
            raise self._damaged(exc) from exc
        if row is None:
            return None
        return self._row(row[:6]), row[6], bytes(row[7]), bytes(row[8])

    def verify(self, token: str) -> APIKey:
        """The key record for a full key text; :class:`AuthenticationError` if it is not a valid key.

        Runs scrypt exactly once for every well-formed key, known id or not (tens of
        milliseconds): call it from a worker thread. An unknown id and a wrong secret raise the
        same :data:`INVALID_KEY`; :class:`APIKeyRevokedError` only follows the right secret.
        :class:`Authenticator` adds an in-memory cache and the failure limits in front of it.
        """
        parsed = parse_token(token)
        if parsed is None:
            raise AuthenticationError(MALFORMED_KEY)
        key_id, secret = parsed
        found = self._lookup(key_id)
        record, kdf, salt, digest = found if found is not None else (None, _KDF_NAME, _DUMMY_SALT, b"")
        computed = _hash_secret(secret, salt)  # the same work whether or not the id exists
        if record is None or kdf != _KDF_NAME or not hmac.compare_digest(computed, digest):
            raise AuthenticationError(INVALID_KEY)
        if record.revoked:
            raise APIKeyRevokedError("this API key was revoked; ask an admin for a new one")
        return record


class TokenBucketLimiter:
    """Per-name token buckets: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, *, max_names: int = 100_000) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_names = max_names
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, name: str, *, now: float | None = None) -> float:
        """Spend one token; returns 0.0 when allowed, else seconds until one is available."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(name, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[name] = (tokens, t)
            while len(self._buckets) > self.max_names:
                self._buckets.popitem(last=False)
            return wait

    def refund(self, name: str) -> None:
        """Give back one token taken by :meth:`take` (e.g. an attempt that turned out fine)."""
        with self._lock:
            found = self._buckets.get(name)
            if found is not None:
                self._buckets[name] = (min(self.burst, found[0] + 1.0), found[1])

    def peek(self, name: str, *, now: float | None = None) -> float:
        """Tokens ``name`` has now, without spending any."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(name, (self.burst, t))
            return min(self.burst, tokens + (t - last) * self.rate)


class Authenticator:
    """Checks API keys for the service: cache, failure limits, rate limit.

    A key that verified once is remembered in memory as a keyed SHA-256 of its secret (the
    process's random pepper makes the cache useless outside it), so later requests skip
    scrypt; the row is still read on every such request, so a revocation (from the CLI, another
    process) takes effect at once.

    Failed attempts (missing, malformed, unknown or wrong keys) are limited to
    ``failures_per_minute`` per client address, and wrong secrets also per presented secret.
    An attempt that needs scrypt is charged before it runs and refunded if the key is right,
    so the limit holds even for many concurrent attempts, and at most ``max_concurrent_kdf``
    scrypt runs at once. A right key that is already cached is never refused by these limits.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        rate_per_s: float,
        burst: int,
        failures_per_minute: int,
        cache_size: int = 4096,
        max_concurrent_kdf: int | None = None,
    ) -> None:
        self.store = store
        self.requests = TokenBucketLimiter(rate_per_s, burst)
        self.failures = TokenBucketLimiter(failures_per_minute / 60.0, failures_per_minute)
        self._pepper = secrets.token_bytes(32)
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._kdf_slots = threading.BoundedSemaphore(max_concurrent_kdf or max(1, (os.cpu_count() or 2) // 2))

    def _fast(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode("ascii"), hashlib.sha256).digest()

    def cached(self, token: str) -> APIKey | None:
        """The key record if ``token`` verified before and the key is still valid; None when only
        :meth:`slow_verify` can tell. Raises :class:`AuthenticationError` for a malformed key and
        :class:`APIKeyRevokedError` for a cached (right) key revoked since."""
        parsed = parse_token(token)
        if parsed is None:
            raise AuthenticationError(MALFORMED_KEY)
        key_id, secret = parsed
        with self._lock:
            known = self._cache.get(key_id)
            if known is not None:
                self._cache.move_to_end(key_id)
        if known is None or not hmac.compare_digest(known, self._fast(secret)):
            return None
        found = self.store._lookup(key_id)
        if found is None or found[0].revoked:
            self.forget(key_id)
            if found is None:
                return None
            raise APIKeyRevokedError("this API key was revoked; ask an admin for a new one")
        return found[0]

    def _charge_failure(self, names: list[str]) -> list[str]:
        """Take one failure token from each bucket (all or none); :class:`RateLimitError` if one is empty."""
        taken: list[str] = []
        for name in names:
            wait = self.failures.take(name)
            if wait > 0:
                for t in taken:
                    self.failures.refund(t)
                retry = max(1, math.ceil(wait))
                raise RateLimitError(
                    f"too many failed authentication attempts; try again in {retry} s", retry_after=retry
                )
            taken.append(name)
        return taken

    def refuse(self, client: str | None) -> None:
        """Count a cheap failure (no key, or a malformed one) against ``client``; raises
        :class:`RateLimitError` once its failure budget is spent."""
        if client:
            self._charge_failure([f"addr:{client}"])

    def slow_verify(self, token: str, client: str | None = None) -> APIKey:
        """Full scrypt check (run it in a worker thread), limited per client address and per secret."""
        parsed = parse_token(token)
        if parsed is None:
            self.refuse(client)
            raise AuthenticationError(MALFORMED_KEY)
        key_id, secret = parsed
        names = ([f"addr:{client}"] if client else []) + ["secret:" + self._fast(secret).hex()]
        charged = self._charge_failure(names)
        try:
            with self._kdf_slots:
                record = self.store.verify(token)
        except AuthenticationError:
            raise  # the attempt stays charged
        except BaseException:
            for name in charged:
                self.failures.refund(name)
            raise
        for name in charged:  # a right key costs nothing
            self.failures.refund(name)
        with self._lock:
            self._cache[key_id] = self._fast(secret)
            self._cache.move_to_end(key_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return record

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)

    def charge(self, key: APIKey) -> None:
        """Spend one request token of ``key``; :class:`RateLimitError` when its bucket is empty."""
        wait = self.requests.take(key.id)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimitError(f"rate limit of API key {key.id} reached; retry in {retry} s", retry_after=retry)
