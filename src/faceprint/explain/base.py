"""The Explainer protocol: two aligned face chips and the embedder in, a similarity map per face out.

An explanation answers "where in these two crops does the model's similarity come from?". It
does not answer "why is this person who they are": a map describes the model, not the face.

Conventions every explainer follows (checked by :mod:`faceprint.testing.explain`):

* ``explain(chip_a, chip_b, embedder)`` takes two RGB uint8 crops of shape (S, S, 3), aligned
  to ``embedder.template`` (S = that template's size), and the embedder whose similarity is
  explained. It returns an :class:`Explanation`.
* ``map_a`` / ``map_b`` are float32 (S, S), finite, one value per pixel of each chip. Higher
  means more of the similarity comes from there (hiding that region lowers the score); values
  may be negative where a region pulls the two faces apart. Units depend on the method; only
  the ranking of pixels is comparable across methods.
* ``score`` is the cosine similarity of the two chips' embeddings, as the embedder computes it.
* Swapping the chips swaps the maps. The same input gives the same output; inputs are not
  written to.
* Bad input raises a specific :class:`~faceprint.errors.FaceprintError`: a chip of another
  shape or dtype (:class:`~faceprint.errors.ImageDimensionError`), two identical chips
  (:class:`~faceprint.errors.IdenticalImagesError`), a model without the layer a method needs
  (:class:`~faceprint.errors.LayerNotFoundError`).

An embedder that can show its intermediate feature maps implements :class:`FeatureMapEmbedder`;
methods that read a layer (``xcos``) use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import IdenticalImagesError, ImageDimensionError

if TYPE_CHECKING:
    from ..embedding.base import Embedder

__all__ = [
    "Explainer",
    "Explanation",
    "Correspondence",
    "FeatureMapEmbedder",
    "check_chip_pair",
    "LIMITS",
]

#: What a map means and what it does not, for mated and non-mated pairs. Shown in figure
#: captions, ``--json`` output, the REST response and the README.
LIMITS = (
    "A map shows where the model's similarity comes from, not why a person is who they are. "
    "For a mated pair (the same person) bright regions are those the model matched; for a "
    "non-mated pair they are the regions that made two different people look alike to it, "
    "not evidence that they are one person. A map depends on the model, the alignment and the "
    "method; it is no proof of identity and no substitute for an examiner's comparison."
)


@dataclass(frozen=True, slots=True)
class Correspondence:
    """A patch of chip A whose features best match a patch of chip B.

    ``a`` and ``b`` are the (x, y) centres of the two patches in chip pixels; ``similarity``
    is the cosine of their feature vectors; ``weight`` ranks correspondences (larger: stronger).
    """

    a: tuple[float, float]
    b: tuple[float, float]
    similarity: float
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": [round(self.a[0], 2), round(self.a[1], 2)],
            "b": [round(self.b[0], 2), round(self.b[1], 2)],
            "similarity": round(self.similarity, 6),
            "weight": round(self.weight, 6),
        }


def _pool(m: npt.NDArray[np.float32], size: int) -> npt.NDArray[np.float32]:
    """Block-average an (S, S) map down to (size, size) (S need not be a multiple of size)."""
    s = m.shape[0]
    edges = np.linspace(0, s, size + 1).round().astype(int)
    out = np.empty((size, size), np.float32)
    for i in range(size):
        for j in range(size):
            out[i, j] = m[edges[i] : edges[i + 1], edges[j] : edges[j + 1]].mean()
    return out


@dataclass(frozen=True, eq=False)
class Explanation:
    """Where the similarity of two face chips comes from, according to one method.

    Attributes:
        method: the explainer's registry name (``"occlusion"``, ``"xcos"``).
        score: cosine similarity of the two chips' embeddings.
        map_a, map_b: float32 (S, S), one value per chip pixel (see the module doc).
        model: ``model_id@model_version`` of the embedder explained.
        correspondences: strongest patch-to-patch matches, strongest first (``()`` when the
            method gives none).
        reconstructed_score: the method's own estimate of ``score`` (xcos: the weighted sum of
            patch cosines), or None.
        grids: method-specific coarse maps by name (xcos: ``"patch_cosine"``, ``"attention"``,
            ``"contribution"``; occlusion: ``"drop_a"``, ``"drop_b"``), each float32 (h, w).
        settings: the explainer's settings, for the record.
    """

    method: str
    score: float
    map_a: npt.NDArray[np.float32]
    map_b: npt.NDArray[np.float32]
    model: str
    correspondences: tuple[Correspondence, ...] = ()
    reconstructed_score: float | None = None
    grids: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("map_a", "map_b"):
            m = np.asarray(getattr(self, name), dtype=np.float32)
            m.setflags(write=False)
            object.__setattr__(self, name, m)

    @property
    def size(self) -> int:
        """Side S of the chips (and maps)."""
        return int(self.map_a.shape[0])

    def to_dict(self, *, map_size: int | None = None, decimals: int = 5) -> dict[str, Any]:
        """JSON-ready: maps as nested lists (block-averaged to ``map_size`` per side when given)."""

        def lists(m: npt.NDArray[np.float32]) -> list[list[float]]:
            if map_size is not None and map_size < m.shape[0]:
                m = _pool(m, map_size)
            return np.round(m.astype(np.float64), decimals).tolist()  # type: ignore[no-any-return]

        return {
            "method": self.method,
            "score": round(float(self.score), 6),
            "reconstructed_score": None if self.reconstructed_score is None else round(self.reconstructed_score, 6),
            "model": self.model,
            "chip_size": self.size,
            "map_size": min(map_size, self.size) if map_size else self.size,
            "map_a": lists(self.map_a),
            "map_b": lists(self.map_b),
            "grids": {k: lists(v) for k, v in self.grids.items()},
            "correspondences": [c.to_dict() for c in self.correspondences],
            "settings": dict(self.settings),
        }


@runtime_checkable
class Explainer(Protocol):
    """A similarity explainer (see the module doc for the contract).

    Attributes:
        name: the registry name, stored in every :class:`Explanation` as ``method``.
    """

    name: str

    def explain(
        self, chip_a: npt.NDArray[np.uint8], chip_b: npt.NDArray[np.uint8], embedder: Embedder
    ) -> Explanation: ...


@runtime_checkable
class FeatureMapEmbedder(Protocol):
    """An embedder that also shows intermediate feature maps (for layer-reading explainers).

    Attributes:
        feature_layers: the names ``feature_maps`` accepts, earliest first.

    ``feature_maps(crops, layer)`` returns ``(descriptors, maps)``: the (N, D) float32
    L2-normalised embeddings ``embed`` would return, and float32 (N, C, h, w) activations of
    ``layer`` for the same crops, from one pass. ``feature_head(layer)`` is a (C, D) matrix
    that maps a C-channel feature vector of ``layer`` into the embedding space (the final
    linear layer, when the channels of ``layer`` reach it through identity shortcuts), or
    None. Unknown layers raise :class:`~faceprint.errors.LayerNotFoundError`.
    """

    model_id: str
    model_version: str
    dim: int
    template: str
    feature_layers: tuple[str, ...]

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...

    def feature_maps(
        self, crops: Sequence[npt.NDArray[np.uint8]], layer: str
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...

    def feature_head(self, layer: str) -> npt.NDArray[np.float32] | None: ...


def check_chip_pair(
    chip_a: npt.ArrayLike, chip_b: npt.ArrayLike, size: int, template: str
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The two chips as uint8 (size, size, 3) arrays, or the specific error the protocol names."""
    out = []
    for name, chip in (("A", chip_a), ("B", chip_b)):
        a = np.asarray(chip)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ImageDimensionError(
                f"face chip {name} has shape {a.shape} dtype {a.dtype}; an explainer takes RGB uint8 "
                f"({size}, {size}, 3) chips aligned to the {template!r} template"
            )
        if a.shape[0] != a.shape[1]:
            raise ImageDimensionError(
                f"face chip {name} is {a.shape[1]}x{a.shape[0]}, not square; align the face with "
                f"faceprint.alignment to the {template!r} template ({size}x{size})"
            )
        if a.shape[0] != size:
            raise ImageDimensionError(
                f"face chip {name} is {a.shape[0]}x{a.shape[0]}; the embedder's {template!r} template "
                f"makes {size}x{size} chips"
            )
        out.append(a)
    if np.array_equal(out[0], out[1]):
        raise IdenticalImagesError(
            "the two face chips are identical: every region matches itself, so there is no similarity to "
            "explain; compare two different photographs"
        )
    return out[0], out[1]
