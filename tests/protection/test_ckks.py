"""CKKS (TenSEAL): encrypted scores equal the plaintext cosine; tampered or foreign ciphertexts are refused."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from faceprint.errors import BackendUnavailableError, KeyMismatchError, ProtectionKeyError, TamperedTemplateError
from faceprint.protection import ProtectedTemplates, derive_key
from faceprint.registry import template_protectors

from .conftest import devtest_pairs

APP = derive_key("a test secret of enough length", "tests")


@pytest.fixture(scope="module")
def ckks():  # type: ignore[no-untyped-def]
    pytest.importorskip("tenseal", reason="TenSEAL is not installed (pip install 'faceprint[protect]')")
    return template_protectors.create("ckks")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a.astype(np.float64) @ b.astype(np.float64))


def test_encrypted_scores_equal_the_plaintext_cosine(ckks, faces) -> None:  # type: ignore[no-untyped-def]
    x = np.stack([faces["a1"], faces["a2"], faces["b"], faces["c"]])
    t = ckks.protect(x, APP.child("alice"))
    got = ckks.compare(t[0], t)
    want = [_cos(x[0], v) for v in x]
    assert np.max(np.abs(got - want)) <= 1e-4
    assert got[1] > max(got[2], got[3])


def test_the_server_scores_without_the_secret_key(ckks, faces) -> None:  # type: ignore[no-untyped-def]
    import tenseal as ts

    from faceprint.protection.ckks import encrypted_scores

    key = APP.child("alice")
    t = ckks.protect(np.stack([faces["a1"], faces["a2"], faces["b"]]), key)
    public = ckks.public_context(key)
    assert not ts.context_from(public).has_secret_key()
    enc = encrypted_scores(public, t.data[0], list(t.data[1:]))
    with pytest.raises(ValueError):  # the server cannot decrypt its own result
        ts.ckks_vector_from(ts.context_from(public), enc[0]).decrypt()
    plain = [ckks.decrypt(t, e) for e in enc]
    assert np.allclose(plain, ckks.compare(t[0], t[1:]), atol=1e-6)


def test_tampered_truncated_and_foreign_ciphertexts_are_refused(ckks, faces) -> None:  # type: ignore[no-untyped-def]
    key = APP.child("alice")
    t = ckks.protect(np.stack([faces["a1"], faces["a2"]]), key)
    row = bytearray(t.data[1])
    row[len(row) // 2] ^= 0x01
    for bad in (bytes(row), t.data[1][:-40], t.data[1][:100]):
        forged = ProtectedTemplates(t.method, t.version, t.dim, t.key_fingerprint, np.array([bad], object), t.settings)
        with pytest.raises(TamperedTemplateError, match="integrity"):
            ckks.compare(t[0], forged)
    other = ckks.protect(faces["a2"][None], APP.child("bob"))
    for cross in (False, True):
        with pytest.raises(KeyMismatchError):
            ckks.compare(t[0], other, cross_key=cross)
    relabelled = ProtectedTemplates(t.method, t.version, t.dim, other.key_fingerprint, t.data[1:], t.settings)
    with pytest.raises(TamperedTemplateError):  # a ciphertext of alice's key passed off as bob's
        ckks.compare(other, relabelled)


def test_the_key_holder_restores_a_saved_context(ckks, faces) -> None:  # type: ignore[no-untyped-def]
    key = APP.child("carol")
    t = ckks.protect(np.stack([faces["a1"], faces["b"]]), key)
    fresh = template_protectors.create("ckks")
    with pytest.raises(ProtectionKeyError, match="load_context"):
        fresh.compare(t[0], t[1])
    fresh.load_context(key, ckks.secret_context(key))
    assert np.allclose(fresh.compare(t[0], t[1]), ckks.compare(t[0], t[1]), atol=1e-6)
    with pytest.raises(ProtectionKeyError, match="no secret key"):
        fresh.load_context(key, ckks.public_context(key))


def test_without_tenseal_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tenseal", None)  # import tenseal now raises ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'faceprint\[protect\]'"):
        template_protectors.create("ckks")


@pytest.mark.slow
def test_ckks_decisions_equal_plaintext_decisions_on_devtest_pairs(ckks, embed) -> None:  # type: ignore[no-untyped-def]
    """The issue's 200 DevTest pairs (100 mated + 100 non-mated; bench_protect runs all 1000)."""
    rows = devtest_pairs(100)
    assert len(rows) == 200
    a = np.stack([embed(r[0]) for r in rows])
    b = np.stack([embed(r[1]) for r in rows])
    key = APP.child("devtest")
    ta, tb = ckks.protect(a, key), ckks.protect(b, key)
    enc = ckks.compare(ta, tb)
    plain = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)
    assert np.max(np.abs(enc - plain)) <= 1e-4
    for threshold in (float(np.median(plain)), 0.908):  # the median, and the DevTrain EER threshold of a gallery
        assert np.array_equal(enc >= threshold, plain >= threshold)
