"""Conformance checks every :class:`~faceprint.protection.base.TemplateProtector` must pass.

Each check is ``check_…(protector, images)``. The embeddings protected are those of the best face
of ``images["face"]`` and ``images["same_person"]`` (a mated pair) and of every face of
``images["group"]`` (non-mated with both), by faceprint's default embedder (``dlib-resnet-onnx``,
128-D: a protector is checked as built with its default settings, so its default ``dim`` must be
128). Keys are derived from a fixed test secret; the checks share one set of embeddings and keys.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..errors import (
    EmbeddingMismatchError,
    FaceprintError,
    InvalidEmbeddingError,
    KeyMismatchError,
    ProtectionKeyError,
    TemplateMismatchError,
)
from ..protection.base import ProtectedTemplates, ProtectionKey, TemplateProtector, derive_key
from ._assert import require, require_faceprint_error, require_named_backend
from ._images import FaceImages

__all__ = [
    "protection_checks",
    "check_protector_protocol",
    "check_protect_output",
    "check_protect_deterministic",
    "check_protect_bad_input",
    "check_compare_mated_above_nonmated",
    "check_compare_new_key_at_zero_effort",
    "check_compare_refuses_mixing",
    "PROTECT_EMBEDDER",
]

ProtectorCheck = Callable[[TemplateProtector, FaceImages], None]

#: The embedder whose embeddings the checks protect.
PROTECT_EMBEDDER = "dlib-resnet-onnx"
_SECRET = "faceprint conformance-check secret (not for use)"


def _keys(images: FaceImages) -> tuple[ProtectionKey, ProtectionKey]:
    """Two keys of one application (users "a" and "b"), derived once."""

    def derive() -> tuple[ProtectionKey, ProtectionKey]:
        app = derive_key(_SECRET, "conformance")
        return app.child("a"), app.child("b")

    return images.memo(images, "protection-keys", derive)


def _embeddings(images: FaceImages) -> tuple[npt.NDArray[np.float32], list[str]]:
    """float32 (N, 128) embeddings of face, same_person and the group's faces, and their roles."""

    def compute() -> tuple[npt.NDArray[np.float32], list[str]]:
        from ..registry import embedders

        emb = embedders.create(PROTECT_EMBEDDER)
        crops, roles = images.aligned(emb.template)
        return np.asarray(emb.embed(crops), np.float32), roles

    return images.memo(images, f"protection-embeddings:{PROTECT_EMBEDDER}", compute)


def _protected(protector: TemplateProtector, images: FaceImages, which: int = 0) -> ProtectedTemplates:
    x, _ = _embeddings(images)
    key = _keys(images)[which]
    return images.memo(protector, f"protected:{which}", lambda: protector.protect(x.copy(), key))


def _roles(images: FaceImages) -> tuple[int, int, list[int]]:
    _, roles = _embeddings(images)
    return roles.index("face"), roles.index("same_person"), [i for i, r in enumerate(roles) if r == "group"]


def _require_error(what: str, error: type[FaceprintError], fn: Callable[..., object], *args: object) -> None:
    require_faceprint_error(what, fn, *args, error=error)


# --- the checks ------------------------------------------------------------------------------


def check_protector_protocol(protector: TemplateProtector, images: FaceImages) -> None:
    """It is a :class:`TemplateProtector` with a non-empty ``name`` and ``version`` and an int ``dim``."""
    require_named_backend(protector, TemplateProtector, "name, version, dim, protect() or compare()")
    require(isinstance(protector.version, str) and protector.version, "version must be a non-empty str")
    require(isinstance(protector.dim, int) and protector.dim > 0, f"dim must be a positive int: {protector.dim!r}")


def check_protect_output(protector: TemplateProtector, images: FaceImages) -> None:
    """N templates naming the method, version, dim and key fingerprint; row i from embedding i only;
    an empty input gives an empty set; the input is not written to; the key is not in the template."""
    x, _ = _embeddings(images)
    key = _keys(images)[0]
    before = x.copy()
    t = protector.protect(x, key)
    require(np.array_equal(x, before), "protect wrote to its input")
    require(isinstance(t, ProtectedTemplates), f"protect returned {type(t).__name__}, not ProtectedTemplates")
    require(len(t) == len(x), f"protect gave {len(t)} templates for {len(x)} embeddings")
    require((t.method, t.version) == (protector.name, protector.version), f"template says {t.method}@{t.version}")
    require(t.dim == protector.dim, f"template records dim {t.dim}, protector has {protector.dim}")
    require(t.key_fingerprint == key.fingerprint, "template does not carry the key's fingerprint")
    require(key.material not in t.data.tobytes(), "the key material is stored in the template")
    one = protector.protect(x[1:2], key)
    alone, batched = protector.compare(one, t[0]), protector.compare(t[1], t[0])
    require(np.allclose(alone, batched, atol=1e-4), f"row 1 protected alone scores {alone}, in the batch {batched}")
    empty = protector.protect(np.zeros((0, protector.dim), np.float32), key)
    require(len(empty) == 0, f"protecting no embeddings gave {len(empty)} templates")
    s = protector.compare(t, t)
    require(s.shape == (len(x),) and s.dtype == np.float64, f"compare gave {s.shape} {s.dtype}, not ({len(x)},) f8")
    require(bool(np.all(np.isfinite(s))), "compare gave NaN or infinite scores")
    i, j, _ = _roles(images)
    fwd, back = protector.compare(t[i], t[j]), protector.compare(t[j], t[i])
    require(np.allclose(fwd, back), f"compare is not symmetric: {fwd} and {back}")
    row = protector.compare(t[i], t)
    require(row.shape == (len(x),) and np.isclose(row[j], fwd[0]), "one template against N is not row by row")


def check_protect_deterministic(protector: TemplateProtector, images: FaceImages) -> None:
    """The same embeddings under a key derived again from the same secret give the same templates."""
    x, _ = _embeddings(images)
    again = derive_key(_SECRET, "conformance").child("a")
    t = protector.protect(x.copy(), again)
    require(np.array_equal(t.data, _protected(protector, images).data), "the same key gave another template")
    other = _protected(protector, images, 1)
    require(not np.array_equal(other.data, t.data), "another key gave the same templates")


def check_protect_bad_input(protector: TemplateProtector, images: FaceImages) -> None:
    """Wrong dimension, NaN, a 1-D vector, a missing key or a raw secret raise the specific errors."""
    x, _ = _embeddings(images)
    key = _keys(images)[0]
    nan = x.copy()
    nan[0, 3] = np.nan
    wide = np.zeros((1, protector.dim + 1), np.float32)
    _require_error("protect(a wrong-dimension embedding)", EmbeddingMismatchError, protector.protect, wide, key)
    _require_error("protect(an embedding with NaN)", InvalidEmbeddingError, protector.protect, nan, key)
    _require_error("protect(a 1-D vector)", InvalidEmbeddingError, protector.protect, x[0], key)
    _require_error("protect(key=None)", ProtectionKeyError, protector.protect, x, None)
    _require_error("protect(key=the secret)", ProtectionKeyError, protector.protect, x, _SECRET.encode())


def check_compare_mated_above_nonmated(protector: TemplateProtector, images: FaceImages) -> None:
    """Under one key, the mated pair scores above every pair of ``face`` with a group face."""
    t = _protected(protector, images)
    i, j, group = _roles(images)
    mated = float(protector.compare(t[i], t[j])[0])
    nonmated = protector.compare(t[i], t[group])
    require(mated > float(nonmated.max()), f"mated score {mated:.4f} is not above the non-mated {nonmated.round(4)}")


def check_compare_new_key_at_zero_effort(protector: TemplateProtector, images: FaceImages) -> None:
    """Revocability: the same face under a new key scores no higher than a stranger under the old key
    (or cannot be compared with the old template at all: :class:`KeyMismatchError` with ``cross_key``)."""
    t, renewed = _protected(protector, images), _protected(protector, images, 1)
    i, j, group = _roles(images)
    strangers = float(protector.compare(t[i], t[group]).max())
    for k, what in ((i, "the same image"), (j, "the mated image")):
        try:
            s = float(protector.compare(t[i], renewed[k], cross_key=True)[0])
        except KeyMismatchError:
            continue  # templates of two keys cannot be combined at all: revoked

        require(
            s <= strangers, f"{what} under a new key scores {s:.4f}, above a stranger under the old ({strangers:.4f})"
        )


def check_compare_refuses_mixing(protector: TemplateProtector, images: FaceImages) -> None:
    """Templates of two keys raise :class:`KeyMismatchError`; of another method, version or dim, or not
    templates at all, :class:`TemplateMismatchError`."""
    t, other = _protected(protector, images), _protected(protector, images, 1)
    _require_error("compare(templates of two keys)", KeyMismatchError, protector.compare, t, other)
    foreign = ProtectedTemplates("not-" + protector.name, t.version, t.dim, t.key_fingerprint, t.data, t.settings)
    _require_error("compare(another method's templates)", TemplateMismatchError, protector.compare, t, foreign)
    newer = ProtectedTemplates(t.method, t.version + ".x", t.dim, t.key_fingerprint, t.data, t.settings)
    _require_error("compare(another version's templates)", TemplateMismatchError, protector.compare, newer, t)
    wider = ProtectedTemplates(t.method, t.version, t.dim * 2, t.key_fingerprint, t.data, t.settings)
    _require_error("compare(templates of another dim)", TemplateMismatchError, protector.compare, t, wider)
    _require_error("compare(raw arrays)", TemplateMismatchError, protector.compare, t.data, t.data)


def protection_checks() -> list[ProtectorCheck]:
    """Every template-protector check, cheapest first."""
    return [
        check_protector_protocol,
        check_protect_output,
        check_protect_deterministic,
        check_protect_bad_input,
        check_compare_refuses_mixing,
        check_compare_mated_above_nonmated,
        check_compare_new_key_at_zero_effort,
    ]
