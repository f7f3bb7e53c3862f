"""Every protector on real LFW faces: mated above non-mated, keys, refusals; and the checks can fail."""

from __future__ import annotations

import numpy as np
import pytest

from faceprint.errors import (
    ConfigurationError,
    EmbeddingMismatchError,
    InvalidEmbeddingError,
    KeyMismatchError,
    ProtectionKeyError,
    TemplateMismatchError,
)
from faceprint.protection import derive_key
from faceprint.registry import template_protectors
from faceprint.testing import checks_for

APP = derive_key("a test secret of enough length", "tests")
METHODS = template_protectors.names()


def test_the_built_in_methods_are_registered() -> None:
    assert {"biohash", "iom"} <= set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_mated_lfw_pair_scores_above_non_mated_under_one_key(method: str, faces) -> None:
    p = template_protectors.create(method)
    x = np.stack([faces["a1"], faces["a2"], faces["b"], faces["c"]])
    t = p.protect(x, APP.child("alice"))
    mated = p.compare(t[0], t[1])[0]
    assert mated > p.compare(t[0], t[2])[0] and mated > p.compare(t[0], t[3])[0]
    assert mated > p.compare(t[1], t[2])[0] and mated > p.compare(t[1], t[3])[0]


@pytest.mark.parametrize("method", METHODS)
def test_a_probe_under_a_wrong_key_gets_an_error_not_a_score(method: str, faces) -> None:
    p = template_protectors.create(method)
    ref = p.protect(faces["a1"][None], APP.child("alice"))
    probe = p.protect(faces["a2"][None], derive_key("somebody else's secret!", "tests").child("alice"))
    with pytest.raises(KeyMismatchError, match="different keys"):
        p.compare(ref, probe)
    other = template_protectors.create(next(m for m in METHODS if m != method))
    with pytest.raises(TemplateMismatchError):
        p.compare(ref, other.protect(faces["a2"][None], APP.child("alice")))


@pytest.mark.parametrize("method", METHODS)
def test_bad_embeddings_and_keys_are_refused(method: str, faces) -> None:
    p = template_protectors.create(method)
    with pytest.raises(EmbeddingMismatchError, match="512 dimensions"):
        p.protect(np.zeros((1, 512), np.float32), APP)
    bad = faces["a1"][None].copy()
    bad[0, 0] = np.inf
    with pytest.raises(InvalidEmbeddingError, match="NaN or infinite"):
        p.protect(bad, APP)
    with pytest.raises(ProtectionKeyError, match="derive_key"):
        p.protect(faces["a1"][None], "the secret")  # type: ignore[arg-type]
    wide = template_protectors.create(method, dim=512)
    t = wide.protect(np.ones((2, 512), np.float32), APP)
    with pytest.raises(TemplateMismatchError, match="settings"):
        p.compare(p.protect(faces["a1"][None], APP), t)


def test_biohash_similarity_follows_the_angle(faces) -> None:
    """Random hyperplanes: expected Hamming distance = angle / pi; 1024 bits of 8 keys keep the noise small."""
    p = template_protectors.create("biohash")
    a, b = faces["a1"].astype(np.float64), faces["b"].astype(np.float64)
    angle = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    scores = []
    for i in range(8):
        t = p.protect(np.stack([faces["a1"], faces["b"]]), APP.child(str(i)))
        scores.append(p.compare(t[0], t[1])[0])
    assert np.mean(scores) == pytest.approx(1 - angle / np.pi, abs=0.04)


def test_settings_out_of_range_are_refused() -> None:
    for method, settings in [
        ("biohash", {"bits": 129}),
        ("biohash", {"bits": 256}),
        ("iom", {"q": 1}),
        ("iom", {"dim": 0}),
    ]:
        with pytest.raises(ConfigurationError):
            template_protectors.create(method, **settings)


class KeyBlind:
    """A broken protector: a fixed projection whatever the key, so keys neither renew nor separate."""

    name, version, dim = "biohash", "1", 128

    def __init__(self) -> None:
        self.inner = template_protectors.create("biohash")

    def protect(self, embeddings, key):  # type: ignore[no-untyped-def]
        return self.inner.protect(embeddings, APP)

    def compare(self, a, b, *, cross_key=False):  # type: ignore[no-untyped-def]
        return self.inner.compare(a, b, cross_key=cross_key)


def test_the_checks_catch_a_protector_that_ignores_its_key() -> None:
    from ..test_conformance import photos

    images = photos()
    names = {c.__name__: c for c in checks_for("template protector")}
    with pytest.raises(AssertionError, match="fingerprint"):
        names["check_protect_output"](KeyBlind(), images)
    with pytest.raises(AssertionError, match="another key gave the same templates"):
        names["check_protect_deterministic"](KeyBlind(), images)
    names["check_compare_mated_above_nonmated"](KeyBlind(), images)  # what it does not break still passes
