"""Template protection: cancelable (revocable, unlinkable) templates under a secret key.

Methods (registry :data:`faceprint.registry.template_protectors`, names for ``faceprint protect --method``):

``biohash`` (:mod:`.biohash`)
    BioHashing: key-seeded random orthonormal projection, sign bits, Hamming similarity.
``iom`` (:mod:`.iom`)
    Index-of-Max hashing (Gaussian random projections): argmax indices, fraction of equal indices.
``ckks`` (:mod:`.ckks`)
    CKKS homomorphic encryption (TenSEAL, optional extra ``protect``): encrypted inner product,
    decrypted only by the holder of the SEAL secret key; ciphertexts carry an HMAC tag.

Keys: :func:`derive_key` (scrypt over a secret and an application salt) and
:meth:`ProtectionKey.child` (HKDF per user). Measurement of unlinkability, accuracy with own and
stolen keys and revocability: :mod:`faceprint.evaluation.protection`. Who holds which key, and
what each method does not protect against: ``docs/template-protection.md``.
"""

from __future__ import annotations

from .base import ProtectedTemplates, ProtectionKey, TemplateProtector, derive_key

__all__ = ["ProtectedTemplates", "ProtectionKey", "TemplateProtector", "derive_key"]
