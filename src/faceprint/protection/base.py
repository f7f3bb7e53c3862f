"""The TemplateProtector protocol: embeddings and a key in, protected templates out, compared by score.

A protected template is a transform of an embedding under a secret key such that (ISO/IEC 24745)
the same face under two keys cannot be linked (unlinkability), a leaked template is replaced by
protecting the face again under a new key (revocability), and the embedding is hard to recover
from the template (irreversibility). What each method protects against, and what not (a stolen
key), is in ``docs/template-protection.md``.

Conventions every protector follows (checked by :mod:`faceprint.testing.protection`):

* ``protect(embeddings, key)`` takes float32 (N, D) embeddings, D the protector's ``dim``, all
  finite, and a :class:`ProtectionKey`. It returns :class:`ProtectedTemplates` of length N that
  record the method, its version, D and the key's *fingerprint* (never the key). N = 0 gives an
  empty set. The same embeddings and key give the same templates (on any machine: the key-seeded
  random numbers come from SHAKE-256, not from numpy's generators, whose streams may change);
  row i depends only on embedding i. Inputs are not written to.
* ``compare(a, b)`` scores protected templates row by row: ``a`` and ``b`` of equal length N, or
  one of them of length 1 (it is compared with every row of the other). It returns float64
  (N,), higher = more alike. Templates of another method, version or dimension raise
  :class:`~faceprint.errors.TemplateMismatchError`; of another key,
  :class:`~faceprint.errors.KeyMismatchError` (a probe protected with a wrong key gets an error,
  never a score). ``cross_key=True`` lifts the key check only: measurement uses it to score
  templates of two keys (unlinkability, impostors holding their own key, revocability); a
  deployed system never does. A method whose templates under two keys cannot be combined at
  all (``ckks``: two SEAL key pairs) raises :class:`~faceprint.errors.KeyMismatchError` anyway.
* Bad embeddings raise :class:`~faceprint.errors.InvalidEmbeddingError` (not 2-D, NaN or
  infinite values) or :class:`~faceprint.errors.EmbeddingMismatchError` (another dimension); a
  missing or unusable key raises :class:`~faceprint.errors.ProtectionKeyError`.

Keys (:func:`derive_key`): ``scrypt(secret, salt)`` (n = 2**14, r = 8, p = 1, 32 bytes) for an
application key from a secret that may be a passphrase; :meth:`ProtectionKey.child` derives a
per-user (or per-purpose) key from it with HKDF-SHA256-Expand (RFC 5869), cheap enough for one key
per enrolled person. Renewing a key means a new salt (an application) or a new child label (a
user, e.g. ``"alice#2"``), then protecting the face again.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import (
    EmbeddingMismatchError,
    InvalidEmbeddingError,
    KeyMismatchError,
    ProtectionKeyError,
    TemplateMismatchError,
)

__all__ = [
    "TemplateProtector",
    "ProtectedTemplates",
    "ProtectionKey",
    "derive_key",
    "check_embeddings",
    "check_comparable",
    "check_key",
    "key_gaussian",
    "SCRYPT_N",
    "MIN_SECRET_BYTES",
]

#: scrypt cost (CPU and memory: 128 * r * n bytes = 16 MiB) for the application key.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
#: A secret shorter than this is refused (a short passphrase is guessed offline from a template).
MIN_SECRET_BYTES = 12
_DOMAIN = b"faceprint-protect/v1/"


def _bytes(x: bytes | str, what: str) -> bytes:
    if isinstance(x, str):
        x = x.encode("utf-8")
    if not isinstance(x, bytes | bytearray):
        raise ProtectionKeyError(f"the {what} must be bytes or str, not {type(x).__name__}")
    return bytes(x)


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869, section 2.3); ``prk`` is already a uniform key."""
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


@dataclass(frozen=True, slots=True)
class ProtectionKey:
    """A 32-byte key for protecting templates; make one with :func:`derive_key`.

    ``material`` is secret and left out of ``repr``; ``fingerprint`` (16 hex digits of an HMAC of
    the key) names it in templates and messages without revealing it. ``label`` says how it was
    derived (salt and child labels), for messages.
    """

    material: bytes = field(repr=False)
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.material, bytes) or len(self.material) != 32:
            raise ProtectionKeyError("a ProtectionKey holds exactly 32 bytes of key material; use derive_key()")

    @property
    def fingerprint(self) -> str:
        """A public name of the key: equal keys have equal fingerprints; it reveals nothing of the key."""
        return hmac.new(self.material, _DOMAIN + b"fingerprint", hashlib.sha256).hexdigest()[:16]

    def child(self, label: str | bytes) -> ProtectionKey:
        """The key for one user or purpose under this one (HKDF-SHA256-Expand, info = label)."""
        raw = _bytes(label, "child label")
        if not raw:
            raise ProtectionKeyError("a child key needs a non-empty label (a user id, say)")
        shown = raw.decode("utf-8", "replace")
        return ProtectionKey(_hkdf_expand(self.material, _DOMAIN + b"child/" + raw, 32), f"{self.label}/{shown}")

    def stream(self, info: str, nbytes: int) -> bytes:
        """``nbytes`` pseudo-random bytes for purpose ``info`` (SHAKE-256 of an HKDF-derived seed)."""
        seed = _hkdf_expand(self.material, _DOMAIN + b"stream/" + info.encode("utf-8"), 32)
        return hashlib.shake_256(seed).digest(nbytes)


def derive_key(secret: bytes | str, salt: bytes | str) -> ProtectionKey:
    """The application key: ``scrypt(secret, "faceprint-protect/v1/" + salt)``, 32 bytes.

    Args:
        secret: the secret (at least :data:`MIN_SECRET_BYTES` bytes; a str is UTF-8 encoded).
            Keep it out of the template store.
        salt: names the application (or the key generation: a new salt renews every key).

    Raises :class:`ProtectionKeyError` for a missing, short or non-bytes secret or an empty salt.
    """
    raw = _bytes(secret, "secret")
    if len(raw.strip()) < MIN_SECRET_BYTES:
        raise ProtectionKeyError(
            f"the protection secret is {len(raw.strip())} bytes; at least {MIN_SECRET_BYTES} are needed "
            "(e.g. 32 random bytes: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    s = _bytes(salt, "salt")
    if not s:
        raise ProtectionKeyError("the salt is empty; name the application (or key generation) it is for")
    material = hashlib.scrypt(raw, salt=_DOMAIN + s, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return ProtectionKey(material, s.decode("utf-8", "replace"))


def key_gaussian(key: ProtectionKey, info: str, shape: Sequence[int]) -> npt.NDArray[np.float64]:
    """Standard normal numbers of ``shape`` determined by ``key`` and ``info`` (Box-Muller on
    SHAKE-256 output), the same on every machine and numpy version."""
    n = int(np.prod(shape))
    half = (n + 1) // 2
    words = np.frombuffer(key.stream(info, 16 * half), dtype="<u8").reshape(2, half)
    u1 = ((words[0] >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # (0, 1): log is finite
    u2 = (words[1] >> np.uint64(11)).astype(np.float64) * 2.0**-53
    r = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])[:n]
    return z.reshape(tuple(shape))


@dataclass(frozen=True, eq=False)
class ProtectedTemplates:
    """N protected templates of one method, version, dimension and key.

    Attributes:
        method: the protector's registry name (``"biohash"``, ``"iom"``).
        version: the method's version; templates of two versions are not comparable.
        dim: D, the dimension of the embeddings that were protected.
        key_fingerprint: :attr:`ProtectionKey.fingerprint` of the key (not the key).
        data: read-only array, first axis N; its layout belongs to the method.
        settings: the method's settings that shape ``data`` (bits, hash functions…).
    """

    method: str
    version: str
    dim: int
    key_fingerprint: str
    data: npt.NDArray[Any]
    settings: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        d = np.array(self.data, copy=True)
        d.setflags(write=False)
        object.__setattr__(self, "data", d)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int | slice | npt.ArrayLike) -> ProtectedTemplates:
        """The templates at ``index`` (an int keeps one row, as a set of length 1)."""
        rows = self.data[[index]] if isinstance(index, int | np.integer) else self.data[index]  # type: ignore[index]
        return ProtectedTemplates(self.method, self.version, self.dim, self.key_fingerprint, rows, self.settings)

    @property
    def scheme(self) -> str:
        """``method@version`` with the settings, e.g. ``biohash@1(bits=128)``."""
        s = ",".join(f"{k}={v}" for k, v in self.settings)
        return f"{self.method}@{self.version}" + (f"({s})" if s else "")


def check_key(key: object) -> ProtectionKey:
    """``key`` if it is a :class:`ProtectionKey`, else :class:`ProtectionKeyError` (no key, a raw secret…)."""
    if key is None:
        raise ProtectionKeyError("no protection key given; derive one with derive_key(secret, salt)")
    if not isinstance(key, ProtectionKey):
        raise ProtectionKeyError(
            f"the key is a {type(key).__name__}, not a ProtectionKey; derive one with derive_key(secret, salt) "
            "rather than passing the secret itself"
        )
    return key


def check_embeddings(embeddings: npt.ArrayLike, dim: int) -> npt.NDArray[np.float64]:
    """The embeddings as float64 (N, dim), or the specific error the protocol names."""
    x = np.asarray(embeddings)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise InvalidEmbeddingError(
            f"embeddings to protect must be a float (N, {dim}) array, got shape {x.shape} dtype {x.dtype}; "
            "pass one row per face (x[None] for a single embedding)"
        )
    if x.shape[1] != dim:
        raise EmbeddingMismatchError(
            f"embeddings have {x.shape[1]} dimensions but this protector was built for {dim}; "
            f"build it with dim={x.shape[1]} for that embedder (keys and templates are per dimension)"
        )
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InvalidEmbeddingError(
            f"{int(bad.sum())} of {len(x)} embeddings hold NaN or infinite values (first: row {int(np.argmax(bad))})"
        )
    return x.astype(np.float64)


def check_comparable(
    a: object, b: object, *, method: str, version: str, cross_key: bool = False
) -> tuple[ProtectedTemplates, ProtectedTemplates]:
    """``a`` and ``b`` if one protector of ``method@version`` may compare them, else the specific error."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, ProtectedTemplates):
            raise TemplateMismatchError(f"{name} is a {type(t).__name__}, not ProtectedTemplates; protect it first")
        if (t.method, t.version) != (method, version):
            raise TemplateMismatchError(
                f"{name} holds {t.method}@{t.version} templates; this protector compares {method}@{version} only"
            )
    assert isinstance(a, ProtectedTemplates) and isinstance(b, ProtectedTemplates)
    if (a.dim, a.settings) != (b.dim, b.settings):
        raise TemplateMismatchError(
            f"the templates were made with different settings ({a.dim}-D {a.scheme} and {b.dim}-D {b.scheme})"
        )
    if not cross_key and a.key_fingerprint != b.key_fingerprint:
        raise KeyMismatchError(
            f"the templates were protected under different keys (fingerprints {a.key_fingerprint} and "
            f"{b.key_fingerprint}): a probe protected with a wrong key, or templates of two applications"
        )
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise TemplateMismatchError(
            f"compare scores row by row: {len(a)} and {len(b)} templates (give equal lengths, or one template)"
        )
    return a, b


@runtime_checkable
class TemplateProtector(Protocol):
    """A template-protection method (see the module doc for the contract).

    Attributes:
        name: the registry name, stored in every template as ``method``.
        version: the method's version, stored in every template.
        dim: D, the embedding dimension it protects.
    """

    name: str
    version: str
    dim: int

    def protect(self, embeddings: npt.ArrayLike, key: ProtectionKey) -> ProtectedTemplates: ...

    def compare(
        self, a: ProtectedTemplates, b: ProtectedTemplates, *, cross_key: bool = False
    ) -> npt.NDArray[np.float64]: ...
