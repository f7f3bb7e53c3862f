"""Keys: derived by scrypt + HKDF from a secret, named by a fingerprint that is not the key."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import ProtectionKeyError
from faceprint.protection import ProtectionKey, derive_key
from faceprint.protection.base import key_gaussian

SECRET = "a test secret of enough length"


def test_same_secret_and_salt_give_the_same_key_and_others_do_not() -> None:
    k = derive_key(SECRET, "app")
    assert k.material == derive_key(SECRET.encode(), b"app").material
    assert k.material != derive_key(SECRET, "app2").material
    assert k.material != derive_key(SECRET + "!", "app").material
    assert k.child("alice").material == derive_key(SECRET, "app").child("alice").material
    assert k.child("alice").material not in (k.material, k.child("alice#2").material)


def test_the_key_is_not_shown() -> None:
    k = derive_key(SECRET, "app").child("alice")
    assert k.material.hex() not in repr(k) and str(k.material) not in repr(k)
    assert len(k.fingerprint) == 16 and k.fingerprint not in k.material.hex()
    assert k.fingerprint != derive_key(SECRET, "app").fingerprint


@pytest.mark.parametrize(
    ("secret", "salt"), [("", "app"), ("short", "app"), ("   " * 10, "app"), (SECRET, ""), (None, "app"), (42, "app")]
)
def test_unusable_secrets_and_salts_are_refused(secret: object, salt: str) -> None:
    with pytest.raises(ProtectionKeyError):
        derive_key(secret, salt)  # type: ignore[arg-type]


def test_a_key_holds_32_bytes_and_a_child_needs_a_label() -> None:
    with pytest.raises(ProtectionKeyError):
        ProtectionKey(b"too short")
    with pytest.raises(ProtectionKeyError):
        derive_key(SECRET, "app").child("")


def test_key_seeded_gaussians_are_standard_normal_and_repeatable() -> None:
    k = derive_key(SECRET, "app")
    z = key_gaussian(k, "test", (200, 500))
    assert z.shape == (200, 500)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1.959964) - 0.95) < 0.005
    assert np.array_equal(z, key_gaussian(derive_key(SECRET, "app"), "test", (200, 500)))
    assert not np.array_equal(z, key_gaussian(k, "other purpose", (200, 500)))
