"""Conformance checks every :class:`~faceprint.embedding.base.Embedder` must pass.

Each check is ``check_…(embedder, images)``; the crops are the faces of :class:`FaceImages`
aligned to the embedder's template. Checks share one ``embed`` of all crops per embedder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..alignment import TEMPLATES
from ..embedding.base import Embedder
from ._assert import require, require_faceprint_error
from ._images import FaceImages

__all__ = [
    "embedder_checks",
    "check_embedder_protocol",
    "check_embed_output",
    "check_embed_l2_normalised",
    "check_embed_empty",
    "check_embed_batch_equals_single",
    "check_embed_deterministic",
    "check_embed_leaves_input_unchanged",
    "check_embed_accepts_views",
    "check_embed_bad_input",
    "check_embed_same_person_closest",
]

EmbedderCheck = Callable[[Embedder, FaceImages], None]

#: Batch and one-by-one results may differ by this much (batched BLAS kernels sum in another order).
ATOL = 1e-5


def _crops(embedder: Embedder, images: FaceImages) -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
    require(embedder.template in TEMPLATES, f"template {embedder.template!r} is not one of {list(TEMPLATES)}")
    return images.aligned(embedder.template)


def _run(embedder: Embedder, images: FaceImages) -> tuple[npt.NDArray[np.float32], bool]:
    """(``embed`` of writable copies of every crop, whether it wrote into them), once per embedder."""

    def compute() -> tuple[npt.NDArray[np.float32], bool]:
        crops = _crops(embedder, images)[0]
        copies = [c.copy() for c in crops]
        out = embedder.embed(copies)
        changed = any(not np.array_equal(a, b) for a, b in zip(copies, crops, strict=True))
        return out, changed

    return images.memo(embedder, "embed", compute)


def _embedded(embedder: Embedder, images: FaceImages) -> npt.NDArray[np.float32]:
    return _run(embedder, images)[0]


def _close(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], what: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    require(a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}")
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    require(err <= ATOL, f"{what}: differ by up to {err:.2e} (> {ATOL:g})")


# --- the checks ------------------------------------------------------------------------------


def check_embedder_protocol(embedder: Embedder, images: FaceImages) -> None:
    """It is an :class:`Embedder`: model id and version to tag templates with, dimension, template."""
    require(isinstance(embedder, Embedder), f"{type(embedder).__name__} lacks Embedder attributes or embed()")
    for attr in ("model_id", "model_version"):
        v = getattr(embedder, attr)
        require(isinstance(v, str) and v.strip(), f"{attr} must be a non-empty str, got {v!r}")
    dim = embedder.dim
    require(isinstance(dim, int) and not isinstance(dim, bool) and dim > 0, f"dim must be an int > 0, got {dim!r}")
    require(embedder.template in TEMPLATES, f"template {embedder.template!r} is not one of {list(TEMPLATES)}")


def check_embed_output(embedder: Embedder, images: FaceImages) -> None:
    """``embed`` of N crops is a finite float32 array of shape (N, dim), dim as declared."""
    n = len(_crops(embedder, images)[0])
    out = _embedded(embedder, images)
    require(isinstance(out, np.ndarray), f"embed returned {type(out).__name__}, not a numpy array")
    require(out.shape == (n, embedder.dim), f"embed of {n} crops has shape {out.shape}, expected ({n}, {embedder.dim})")
    require(out.dtype == np.float32, f"embed returned dtype {out.dtype}, expected float32")
    require(np.all(np.isfinite(out)), "embed returned NaN or infinite values")


def check_embed_l2_normalised(embedder: Embedder, images: FaceImages) -> None:
    """Every row has unit L2 norm."""
    norms = np.linalg.norm(_embedded(embedder, images).astype(np.float64), axis=1)
    require(np.allclose(norms, 1.0, atol=1e-5), f"row norms {norms.tolist()} are not 1")


def check_embed_empty(embedder: Embedder, images: FaceImages) -> None:
    """``embed([])`` is a float32 array of shape (0, dim)."""
    out = embedder.embed([])
    require(isinstance(out, np.ndarray) and out.shape == (0, embedder.dim), f"embed([]) gave {out!r}")
    require(out.dtype == np.float32, f"embed([]) has dtype {out.dtype}")


def check_embed_batch_equals_single(embedder: Embedder, images: FaceImages) -> None:
    """One batch gives what one-by-one calls give, in input order (also in reverse order)."""
    crops = _crops(embedder, images)[0]
    batch = _embedded(embedder, images)
    one_by_one = np.concatenate([embedder.embed([c.copy()]) for c in crops])
    _close(batch, one_by_one, "batch vs one by one")
    _close(batch[::-1], embedder.embed([c.copy() for c in crops[::-1]]), "batch vs reversed batch")


def check_embed_deterministic(embedder: Embedder, images: FaceImages) -> None:
    """The same crops twice give the same vectors."""
    crops = _crops(embedder, images)[0]
    _close(_embedded(embedder, images), embedder.embed([c.copy() for c in crops]), "embed twice")


def check_embed_leaves_input_unchanged(embedder: Embedder, images: FaceImages) -> None:
    """``embed`` does not write into the crops it is given."""
    require(not _run(embedder, images)[1], "embed modified its input crops")


def check_embed_accepts_views(embedder: Embedder, images: FaceImages) -> None:
    """Read-only, non-contiguous views of the crops give the same vectors as the crops."""
    crops = _crops(embedder, images)[0]
    views = []
    for c in crops:
        wide = np.zeros((c.shape[0], c.shape[1] * 2, 3), np.uint8)
        wide[:, 1::2] = c
        v = wide[:, 1::2]
        v.setflags(write=False)
        views.append(v)
    _close(_embedded(embedder, images), embedder.embed(views), "strided read-only views vs arrays")


def check_embed_bad_input(embedder: Embedder, images: FaceImages) -> None:
    """Crops of the wrong size, dtype or channel count raise a :class:`FaceprintError`."""
    s = TEMPLATES[embedder.template].size
    good = _crops(embedder, images)[0][0]
    bad_batches: list[tuple[str, list[object]]] = [
        ("a crop one pixel too tall", [np.zeros((s + 1, s, 3), np.uint8)]),
        ("a float32 crop", [good.astype(np.float32)]),
        ("a 2-D grey crop", [np.zeros((s, s), np.uint8)]),
        ("an RGBA crop", [np.zeros((s, s, 4), np.uint8)]),
        ("a good crop and a half-size one", [good.copy(), np.zeros((s // 2, s, 3), np.uint8)]),
    ]
    for what, batch in bad_batches:
        require_faceprint_error(f"embed({what})", embedder.embed, batch)


def check_embed_same_person_closest(embedder: Embedder, images: FaceImages) -> None:
    """The two photographs of one person are closer (cosine) than that person and anyone in the group."""
    out = _embedded(embedder, images).astype(np.float64)
    roles = _crops(embedder, images)[1]
    mated = float(out[0] @ out[roles.index("same_person")])
    others = [float(out[0] @ out[i]) for i, r in enumerate(roles) if r == "group"]
    require(mated > max(others), f"same person: {mated:.3f}; people in the group: {[round(o, 3) for o in others]}")


def embedder_checks() -> list[EmbedderCheck]:
    """Every embedder check, cheapest first."""
    return [
        check_embedder_protocol,
        check_embed_empty,
        check_embed_bad_input,
        check_embed_output,
        check_embed_l2_normalised,
        check_embed_leaves_input_unchanged,
        check_embed_same_person_closest,
        check_embed_batch_equals_single,
        check_embed_deterministic,
        check_embed_accepts_views,
    ]
