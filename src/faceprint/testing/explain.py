"""Conformance checks every :class:`~faceprint.explain.base.Explainer` must pass.

Each check is ``check_…(explainer, images)``. The pair explained is the best face of
``images["face"]`` and of ``images["same_person"]`` (a mated pair), aligned for faceprint's
default embedder (``dlib-resnet-onnx``, built once per set of images), whose similarity is
explained. Checks share one ``explain`` of that pair per explainer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ..embedding.base import Embedder
from ..errors import IdenticalImagesError
from ..explain.base import Explainer, Explanation
from ._assert import require, require_faceprint_error
from ._images import FaceImages

__all__ = [
    "explainer_checks",
    "check_explainer_protocol",
    "check_explain_output",
    "check_explain_bad_input",
    "check_explain_identical_chips",
    "check_explain_leaves_input_unchanged",
    "check_explain_deterministic",
    "check_explain_swap_swaps_maps",
    "check_explain_points_at_similarity",
    "EXPLAIN_EMBEDDER",
]

ExplainerCheck = Callable[[Explainer, FaceImages], None]

#: The embedder whose similarity the checks explain.
EXPLAIN_EMBEDDER = "dlib-resnet-onnx"
#: Two runs, or a swapped run, may differ by this much relative to the largest map value.
RTOL = 1e-3


def _embedder(images: FaceImages) -> Embedder:
    def build() -> Embedder:
        from ..registry import embedders

        return embedders.create(EXPLAIN_EMBEDDER)

    return images.memo(images, f"explain-embedder:{EXPLAIN_EMBEDDER}", build)


def _pair(images: FaceImages) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], Embedder]:
    emb = _embedder(images)
    crops, roles = images.aligned(emb.template)
    return crops[roles.index("face")], crops[roles.index("same_person")], emb


def _explained(explainer: Explainer, images: FaceImages) -> Explanation:
    a, b, emb = _pair(images)
    return images.memo(explainer, "explain", lambda: explainer.explain(a.copy(), b.copy(), emb))


def _close_maps(x: Explanation, y: Explanation, what: str, *, swapped: bool = False) -> None:
    ya, yb = (y.map_b, y.map_a) if swapped else (y.map_a, y.map_b)
    scale = max(float(np.max(np.abs(x.map_a))), float(np.max(np.abs(x.map_b))), 1e-6)
    err = max(float(np.max(np.abs(x.map_a - ya))), float(np.max(np.abs(x.map_b - yb))))
    require(err <= RTOL * scale, f"{what}: maps differ by up to {err:.3g} (largest value {scale:.3g})")


# --- the checks ------------------------------------------------------------------------------


def check_explainer_protocol(explainer: Explainer, images: FaceImages) -> None:
    """It is an :class:`Explainer` with a non-empty ``name``."""
    require(isinstance(explainer, Explainer), f"{type(explainer).__name__} lacks a name or explain()")
    require(
        isinstance(explainer.name, str) and explainer.name.strip(), f"name must be a non-empty str: {explainer.name!r}"
    )


def check_explain_output(explainer: Explainer, images: FaceImages) -> None:
    """Finite float32 (S, S) maps, the embedder's cosine as ``score``, its name and model recorded."""
    a, b, emb = _pair(images)
    e = _explained(explainer, images)
    require(isinstance(e, Explanation), f"explain returned {type(e).__name__}, not an Explanation")
    s = a.shape[0]
    for name, m in (("map_a", e.map_a), ("map_b", e.map_b)):
        require(m.shape == (s, s), f"{name} has shape {m.shape}, expected ({s}, {s}) like the chips")
        require(m.dtype == np.float32, f"{name} has dtype {m.dtype}, expected float32")
        require(bool(np.all(np.isfinite(m))), f"{name} holds NaN or infinite values")
        require(float(np.ptp(m)) > 0, f"{name} is constant: it ranks nothing")
    v = emb.embed([a, b]).astype(np.float64)
    cos = float(v[0] @ v[1])
    require(abs(e.score - cos) <= 1e-4, f"score {e.score:.6f} is not the embedder's cosine {cos:.6f}")
    require(e.method == explainer.name, f"method {e.method!r} is not the explainer's name {explainer.name!r}")
    require(e.model == f"{emb.model_id}@{emb.model_version}", f"model {e.model!r} is not the embedder's")


def check_explain_bad_input(explainer: Explainer, images: FaceImages) -> None:
    """Chips of the wrong shape, size or dtype raise a :class:`FaceprintError`."""
    a, b, emb = _pair(images)
    s = a.shape[0]
    bad: list[tuple[str, object, object]] = [
        ("a non-square chip", a[:, : s - 2], b),
        ("a chip of another size", np.zeros((s + 8, s + 8, 3), np.uint8), b),
        ("a float32 chip", a, b.astype(np.float32)),
        ("a 2-D grey chip", a[..., 0], b),
        ("an RGBA chip", a, np.zeros((s, s, 4), np.uint8)),
    ]
    for what, x, y in bad:
        require_faceprint_error(f"explain({what})", explainer.explain, x, y, emb)


def check_explain_identical_chips(explainer: Explainer, images: FaceImages) -> None:
    """Two identical chips raise :class:`IdenticalImagesError` (there is nothing to explain)."""
    a, _, emb = _pair(images)
    try:
        explainer.explain(a.copy(), a.copy(), emb)
    except IdenticalImagesError:
        return
    except Exception as exc:
        raise AssertionError(f"explain(a, a) raised {type(exc).__name__}: {exc}, not IdenticalImagesError") from exc
    raise AssertionError("explain(a, a) returned instead of raising IdenticalImagesError")


def check_explain_leaves_input_unchanged(explainer: Explainer, images: FaceImages) -> None:
    """``explain`` does not write into the chips it is given."""
    a, b, emb = _pair(images)
    ca, cb = a.copy(), b.copy()
    explainer.explain(ca, cb, emb)
    require(np.array_equal(ca, a) and np.array_equal(cb, b), "explain modified its input chips")


def check_explain_deterministic(explainer: Explainer, images: FaceImages) -> None:
    """The same chips twice give the same maps."""
    a, b, emb = _pair(images)
    _close_maps(_explained(explainer, images), explainer.explain(a.copy(), b.copy(), emb), "explain twice")


def check_explain_swap_swaps_maps(explainer: Explainer, images: FaceImages) -> None:
    """``explain(b, a)`` gives A's map as B's and B's as A's, and the same score."""
    a, b, emb = _pair(images)
    e, s = _explained(explainer, images), explainer.explain(b.copy(), a.copy(), emb)
    require(abs(e.score - s.score) <= 1e-5, f"score {e.score:.6f} swapped to {s.score:.6f}")
    _close_maps(e, s, "explain(b, a) vs explain(a, b)", swapped=True)


def _hide(chip: npt.NDArray[np.uint8], m: npt.NDArray[np.float32], share: float, top: bool) -> npt.NDArray[np.uint8]:
    """``chip`` with the ``share`` of pixels the map ranks highest (or lowest) set to its mean colour."""
    order = np.argsort(m.ravel(), kind="stable")
    k = int(round(share * order.size))
    chosen = order[-k:] if top else order[:k]
    out = chip.reshape(-1, 3).copy()
    out[chosen] = chip.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    return out.reshape(chip.shape)


def check_explain_points_at_similarity(explainer: Explainer, images: FaceImages) -> None:
    """On the mated pair, hiding the 20 % of each chip its map ranks highest lowers the similarity
    more than hiding the 20 % it ranks lowest: the map points where the similarity comes from."""
    a, b, emb = _pair(images)
    e = _explained(explainer, images)
    chips = [a, b]
    for top in (True, False):
        chips += [_hide(a, e.map_a, 0.2, top), _hide(b, e.map_b, 0.2, top)]
    v = emb.embed(chips).astype(np.float64)
    base, top_cos, low_cos = float(v[0] @ v[1]), float(v[2] @ v[3]), float(v[4] @ v[5])
    require(
        base - top_cos > base - low_cos,
        f"hiding the top-ranked 20 % lowered the similarity by {base - top_cos:.4f}, the lowest-ranked "
        f"20 % by {base - low_cos:.4f}: the map does not point where the similarity comes from",
    )


def explainer_checks() -> list[ExplainerCheck]:
    """Every explainer check, cheapest first."""
    return [
        check_explainer_protocol,
        check_explain_bad_input,
        check_explain_identical_chips,
        check_explain_output,
        check_explain_leaves_input_unchanged,
        check_explain_deterministic,
        check_explain_swap_swaps_maps,
        check_explain_points_at_similarity,
    ]
