"""Homomorphic encryption of embeddings with CKKS (TenSEAL; Boddeti, BTAS 2018).

Each embedding is encrypted as one CKKS vector under a SEAL key pair; the inner product of two
encrypted vectors is computed on ciphertexts, and only the holder of the SEAL secret key can
decrypt it. For L2-normalised embeddings that product is the cosine similarity, so scores
match the plaintext ones up to CKKS noise (about 1e-6 with the default parameters).

Who holds what (see ``docs/template-protection.md``): the *key holder* owns a
:class:`CKKSProtector`, which holds one SEAL key pair per :class:`ProtectionKey`; a server that
only scores gets :meth:`CKKSProtector.public_context` (no secret key) and computes encrypted
scores with :func:`encrypted_scores`, which only the key holder can decrypt
(:meth:`CKKSProtector.decrypt`). ``compare`` is the key holder's shortcut for both steps.

Templates: the serialised ciphertext of each row plus an HMAC-SHA256 tag over it, keyed by a
hash of the SEAL secret key and bound to the :class:`ProtectionKey`'s fingerprint, so an
altered, truncated or swapped ciphertext is refused (:class:`TamperedTemplateError`) before it is
scored. Encryption is randomised: the same embedding gives another ciphertext each time (the
conformance check of identical templates is an expected failure for this reason); scores do
not change. Templates of two keys are under two SEAL key pairs and cannot be combined: compare
refuses them (:class:`KeyMismatchError`), ``cross_key=True`` included.

Needs the optional dependency TenSEAL: ``pip install 'faceprint[protect]'``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ProtectionKeyError, TamperedTemplateError
from ..registry import template_protectors
from ._keyed import positive_int
from .base import ProtectedTemplates, ProtectionKey, check_comparable, check_embeddings, check_key

if TYPE_CHECKING:
    from ..testing import BackendCase

__all__ = ["CKKSProtector", "encrypted_scores"]

_TAG = 32
INSTALL = "pip install 'faceprint[protect]'  (or: pip install 'tenseal>=0.3')"


def _tenseal() -> Any:
    try:
        import tenseal
    except ImportError as exc:
        raise BackendUnavailableError(f"the ckks protector needs TenSEAL, which is not installed: {INSTALL}") from exc
    return tenseal


@template_protectors.register("ckks")
class CKKSProtector:
    """CKKS-encrypted embeddings, compared by encrypted inner product (the key holder's side).

    Each :class:`ProtectionKey` gets its own SEAL key pair, made on the first ``protect`` with it
    and kept in this object (SEAL keys cannot be derived from a seed through TenSEAL): save it
    with :meth:`secret_context` and restore it with :meth:`load_context`. Renewing the key means
    a new SEAL key pair, so templates under two keys cannot be combined at all: ``compare``
    refuses them even with ``cross_key=True``.

    Args:
        dim: embedding dimension.
        poly_modulus_degree: CKKS ring dimension (8192: 128-bit security with the default moduli).
    """

    name = "ckks"
    version = "1"

    def __init__(self, *, dim: int = 128, poly_modulus_degree: int = 8192) -> None:
        _tenseal()
        self.dim = positive_int(dim, "dim", high=poly_modulus_degree // 2)
        self.poly_modulus_degree = positive_int(poly_modulus_degree, "poly_modulus_degree", low=4096, high=32768)
        self._contexts: dict[str, tuple[Any, bytes]] = {}

    def _context(self, fingerprint: str, *, create: bool = False) -> tuple[Any, bytes]:
        if fingerprint not in self._contexts:
            if not create:
                raise ProtectionKeyError(
                    f"this ckks protector holds no SEAL key for key {fingerprint}: protect with that key here, or "
                    "restore its context with load_context(key, secret_context_bytes)"
                )
            ts = _tenseal()
            ctx = ts.context(ts.SCHEME_TYPE.CKKS, self.poly_modulus_degree, -1, [60, 40, 40, 60])
            ctx.global_scale = 2.0**40
            ctx.generate_galois_keys()
            self._remember(fingerprint, ctx)
        return self._contexts[fingerprint]

    def _remember(self, fingerprint: str, ctx: Any) -> None:
        secret = ctx.serialize(
            save_public_key=False, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
        )
        self._contexts[fingerprint] = (ctx, hashlib.sha256(b"faceprint-protect/v1/ckks-mac" + secret).digest())

    def load_context(self, key: ProtectionKey, secret_context: bytes) -> None:
        """Restore the SEAL key pair of ``key`` saved with :meth:`secret_context`."""
        ctx = _tenseal().context_from(secret_context)
        if not ctx.has_secret_key():
            raise ProtectionKeyError("that context holds no secret key; load the key holder's secret_context()")
        self._remember(check_key(key).fingerprint, ctx)

    def secret_context(self, key: ProtectionKey) -> bytes:
        """The SEAL context of ``key`` with its secret key: keep it as secret as the key."""
        return bytes(self._context(check_key(key).fingerprint)[0].serialize(save_secret_key=True))

    def public_context(self, key: ProtectionKey) -> bytes:
        """The SEAL context of ``key`` without the secret key, for a server that scores without decrypting."""
        return bytes(self._context(check_key(key).fingerprint)[0].serialize(save_secret_key=False))

    @staticmethod
    def _tag(mac_key: bytes, fingerprint: str, ct: bytes) -> bytes:
        return hmac.new(mac_key, fingerprint.encode() + ct, hashlib.sha256).digest()

    def protect(self, embeddings: npt.ArrayLike, key: ProtectionKey) -> ProtectedTemplates:
        ts = _tenseal()
        fp = check_key(key).fingerprint
        x = check_embeddings(embeddings, self.dim)
        ctx, mac = self._context(fp, create=True)
        rows = np.empty(len(x), dtype=object)
        for i, v in enumerate(x):
            ct = ts.ckks_vector(ctx, v.tolist()).serialize()
            rows[i] = ct + self._tag(mac, fp, ct)
        return ProtectedTemplates(self.name, self.version, self.dim, fp, rows, (("n", self.poly_modulus_degree),))

    def _vectors(self, t: ProtectedTemplates, which: str) -> list[Any]:
        ts = _tenseal()
        ctx, mac = self._context(t.key_fingerprint)
        out = []
        for i, row in enumerate(t.data):
            ok = isinstance(row, bytes) and len(row) > _TAG
            if not ok or not hmac.compare_digest(row[-_TAG:], self._tag(mac, t.key_fingerprint, row[:-_TAG])):
                raise TamperedTemplateError(
                    f"template {i} of {which} fails its integrity check: it was altered, truncated, or made "
                    "under another key; it is not scored"
                )
            out.append(ts.ckks_vector_from(ctx, row[:-_TAG]))
        return out

    def compare(
        self, a: ProtectedTemplates, b: ProtectedTemplates, *, cross_key: bool = False
    ) -> npt.NDArray[np.float64]:
        ta, tb = check_comparable(a, b, method=self.name, version=self.version)
        va, vb = self._vectors(ta, "a"), self._vectors(tb, "b")
        if not va or not vb:
            return np.zeros(0, np.float64)
        n = max(len(va), len(vb))
        pairs = zip(va * n if len(va) == 1 else va, vb * n if len(vb) == 1 else vb, strict=True)
        return np.array([self.decrypt(ta, x.dot(y).serialize()) for x, y in pairs], np.float64)

    def decrypt(self, like: ProtectedTemplates, encrypted_score: bytes) -> float:
        """The plaintext of an encrypted score (from :func:`encrypted_scores`) of templates made
        under the key of ``like``; only the holder of that SEAL secret key can."""
        ctx, _ = self._context(like.key_fingerprint)
        return float(_tenseal().ckks_vector_from(ctx, encrypted_score).decrypt()[0])

    def __repr__(self) -> str:
        return f"CKKSProtector(dim={self.dim}, poly_modulus_degree={self.poly_modulus_degree})"

    @classmethod
    def _conformance_cases(cls, name: str) -> list[BackendCase]:
        from ..testing import BackendCase

        reason = (
            "CKKS encryption is randomised (IND-CPA): the same embedding and key give another ciphertext each "
            "time, by design; the scores of the two ciphertexts are equal"
        )
        return [
            BackendCase(
                name, lambda ctx: cls(), "template protector", expected_failures={"check_protect_deterministic": reason}
            )
        ]


def encrypted_scores(public_context: bytes, probe: bytes, references: list[bytes]) -> list[bytes]:
    """The server's side: encrypted inner products of one encrypted probe with encrypted references.

    ``probe`` and ``references`` are rows of :class:`ProtectedTemplates` ``data`` (ciphertext and
    tag; the tag is checked by the key holder when it decrypts, not here: the server has no key).
    Returns one encrypted score per reference; the server learns nothing of the scores.
    """
    ts = _tenseal()
    ctx = ts.context_from(public_context)
    p = ts.ckks_vector_from(ctx, probe[:-_TAG])
    return [bytes(p.dot(ts.ckks_vector_from(ctx, r[:-_TAG])).serialize()) for r in references]
