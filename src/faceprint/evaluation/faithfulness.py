"""Is an explanation faithful to the model? Deletion and insertion curves, and the randomisation check.

A similarity map ranks the regions of each chip. The chips are cut into ``grid`` x ``grid``
blocks and the blocks ordered by the map's mean value in them (most important first), then:

* **deletion**: the first k blocks of one chip are hidden (filled with the chip's mean colour)
  for k = 0 … all, the other chip kept whole, and the cosine of the two embeddings traced (the
  mean of "A changed vs B" and "B changed vs A"). A faithful map makes it fall fast: a *low*
  area under the curve (AUC) is good.
* **insertion**: the changed chip starts blurred (sigma = a tenth of the side) and the first k
  blocks get their pixels back. A faithful map makes the similarity come back fast: a *high*
  AUC is good.

One chip changes at a time because two chips emptied together look alike to a face network (two
flat grey squares score about 0.99 with dlib's), which would bend both curves back up.

Each curve is also drawn in two orders that know nothing of the model: **random** (a seeded
permutation of the blocks) and **centre-first** (blocks by distance of their centre from the
chip centre, since faces are aligned, the centre holds eyes, nose and mouth). A map earns its
keep where it beats both. The AUC is the trapezoid area over the fraction of blocks, in units of
cosine similarity; all orders share both endpoints, so their AUCs compare directly.

**Sanity check** (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): the map
of a pair under a copy of the model with random weights must differ from the map under the
trained model. :func:`randomisation_correlation` gives the Spearman rank correlation of the two
(block means); a method whose maps stay correlated shows the image, not the model.

:func:`explain_protocol` runs all this over the mated and non-mated pairs of a protocol
(``faceprint explain eval``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from ..embedding.base import Embedder, model_tag
from ..errors import ConfigurationError, FaceprintError, LayerNotFoundError
from ..explain.base import Explainer, Explanation, check_chip_pair
from ..explain.occlusion import filled

if TYPE_CHECKING:
    from ..pipeline import FacePipeline

__all__ = [
    "ORDERS",
    "Curve",
    "PairFaithfulness",
    "MethodSummary",
    "FaithfulnessReport",
    "block_labels",
    "block_means",
    "block_ranking",
    "faithfulness_curves",
    "masked_drop",
    "rank_correlation",
    "randomisation_correlation",
    "randomised_copy",
    "evaluate_pairs",
    "protocol_chips",
    "sample_pairs",
    "explain_protocol",
]

log = logging.getLogger(__name__)

Order = Literal["map", "random", "centre"]
#: The orders every curve is drawn in: the map's, and the two baselines.
ORDERS: tuple[Order, ...] = ("map", "random", "centre")
Kind = Literal["deletion", "insertion"]


def _trapezoid(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


@dataclass(frozen=True, eq=False)
class Curve:
    """Cosine similarity of the pair against the fraction of blocks deleted (or inserted)."""

    kind: Kind
    order: Order
    fractions: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]

    @property
    def auc(self) -> float:
        return _trapezoid(self.scores, self.fractions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "order": self.order,
            "auc": round(self.auc, 6),
            "fractions": np.round(self.fractions, 4).tolist(),
            "scores": np.round(self.scores, 6).tolist(),
        }


# --- blocks and orders ------------------------------------------------------------------------


def block_labels(size: int, grid: int) -> npt.NDArray[np.intp]:
    """(size, size) block id of each pixel, for ``grid`` x ``grid`` blocks (row by row)."""
    edges = np.linspace(0, size, grid + 1).round().astype(int)
    idx = np.searchsorted(edges, np.arange(size), side="right") - 1
    return np.asarray(idx[:, None] * grid + idx[None, :], dtype=np.intp)


def block_means(m: npt.ArrayLike, grid: int) -> npt.NDArray[np.float64]:
    """The mean of an (S, S) map over each of the ``grid**2`` blocks."""
    arr = np.asarray(m, dtype=np.float64)
    labels = block_labels(arr.shape[0], grid).ravel()
    sums = np.bincount(labels, arr.ravel(), minlength=grid * grid)
    return np.asarray(sums / np.bincount(labels, minlength=grid * grid), dtype=np.float64)


def block_ranking(m: npt.ArrayLike | None, grid: int, order: Order, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Block ids, most important first: by the map (``m``), at random, or centre first."""
    n = grid * grid
    if order == "map":
        if m is None:
            raise ConfigurationError("ranking by the map needs a map")
        return np.asarray(np.argsort(-block_means(m, grid), kind="stable"), dtype=np.intp)
    if order == "random":
        return np.asarray(rng.permutation(n), dtype=np.intp)
    if order == "centre":
        c = (np.arange(grid) + 0.5) - grid / 2.0
        d = (c[:, None] ** 2 + c[None, :] ** 2).ravel()
        return np.asarray(np.argsort(d, kind="stable"), dtype=np.intp)
    raise ConfigurationError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")


def _chips_at(
    chip: npt.NDArray[np.uint8],
    other: npt.NDArray[np.uint8],
    ranking: npt.NDArray[np.intp],
    labels: npt.NDArray[np.intp],
    counts: Sequence[int],
) -> list[npt.NDArray[np.uint8]]:
    """For each k in ``counts``: ``chip`` where the first k ranked blocks are, ``other`` elsewhere."""
    position = np.empty_like(ranking)
    position[ranking] = np.arange(ranking.size)
    pos = position[labels][..., None]
    return [np.where(pos < k, chip, other) for k in counts]


def _counts(grid: int, steps: int) -> tuple[npt.NDArray[np.float64], list[int]]:
    n = grid * grid
    counts = sorted({int(round(f * n)) for f in np.linspace(0.0, 1.0, steps + 1)})
    return np.array(counts, dtype=np.float64) / n, counts


def faithfulness_curves(
    chip_a: npt.NDArray[np.uint8],
    chip_b: npt.NDArray[np.uint8],
    rankings: dict[Order, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    embedder: Embedder,
    *,
    grid: int = 15,
    steps: int = 10,
) -> list[Curve]:
    """Deletion and insertion curves of a pair for each order's (ranking of A, ranking of B).

    One chip is changed at a time, the other kept whole: the score at a step is the mean of
    cos(A changed, B) and cos(A, B changed). All chips of all curves go through the embedder in
    one call.
    """
    labels = block_labels(chip_a.shape[0], grid)
    fractions, counts = _counts(grid, steps)
    background = {
        "deletion": (filled(chip_a, "mean"), filled(chip_b, "mean")),
        "insertion": (filled(chip_a, "blur"), filled(chip_b, "blur")),
    }
    batch: list[npt.NDArray[np.uint8]] = [chip_a, chip_b]
    plan: list[tuple[Kind, Order]] = []
    for order, (ra, rb) in rankings.items():
        for kind in ("deletion", "insertion"):
            ba, bb = background[kind]
            if kind == "deletion":  # the background where the first k blocks are, the photo elsewhere
                batch += _chips_at(ba, chip_a, ra, labels, counts) + _chips_at(bb, chip_b, rb, labels, counts)
            else:  # the photo where the first k blocks are, the blurred canvas elsewhere
                batch += _chips_at(chip_a, ba, ra, labels, counts) + _chips_at(chip_b, bb, rb, labels, counts)
            plan.append((kind, order))  # type: ignore[arg-type]
    vecs = embedder.embed(batch).astype(np.float64)
    va, vb = vecs[0], vecs[1]
    k = len(counts)
    out = []
    for i, (kind, order) in enumerate(plan):
        start = 2 + 2 * i * k
        changed_a, changed_b = vecs[start : start + k], vecs[start + k : start + 2 * k]
        out.append(Curve(kind, order, fractions, 0.5 * (changed_a @ vb + changed_b @ va)))
    return out


def masked_drop(
    chip_a: npt.NDArray[np.uint8],
    chip_b: npt.NDArray[np.uint8],
    explanation: Explanation,
    embedder: Embedder,
    *,
    fraction: float = 0.1,
    grid: int = 15,
    seed: int = 0,
) -> tuple[float, float]:
    """(similarity lost when the ``fraction`` of blocks its map ranks highest is hidden, lost for a
    random ``fraction``), each the mean over hiding them in A (B whole) and in B (A whole). A map
    that points where the similarity comes from makes the first the larger."""
    if not 0.0 < fraction < 1.0:
        raise ConfigurationError(f"fraction must be between 0 and 1, got {fraction}")
    labels = block_labels(chip_a.shape[0], grid)
    k = max(1, int(round(fraction * grid * grid)))
    rng = np.random.default_rng(seed)
    ba, bb = filled(chip_a, "mean"), filled(chip_b, "mean")
    chips = [chip_a, chip_b]
    for ra, rb in (
        (block_ranking(explanation.map_a, grid, "map", rng), block_ranking(explanation.map_b, grid, "map", rng)),
        (block_ranking(None, grid, "random", rng), block_ranking(None, grid, "random", rng)),
    ):
        chips += _chips_at(ba, chip_a, ra, labels, [k]) + _chips_at(bb, chip_b, rb, labels, [k])
    v = embedder.embed(chips).astype(np.float64)
    base = float(v[0] @ v[1])

    def drop(i: int) -> float:  # chips i (A hidden) and i + 1 (B hidden)
        return base - 0.5 * (float(v[i] @ v[1]) + float(v[i + 1] @ v[0]))

    return drop(2), drop(4)


# --- the sanity check -------------------------------------------------------------------------


def rank_correlation(m1: npt.ArrayLike, m2: npt.ArrayLike, *, grid: int = 15) -> float:
    """Spearman rank correlation of two maps' block means (0 when either map is constant)."""
    from scipy.stats import spearmanr

    x, y = block_means(m1, grid), block_means(m2, grid)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def randomisation_correlation(
    explainer: Explainer,
    chip_a: npt.NDArray[np.uint8],
    chip_b: npt.NDArray[np.uint8],
    embedder: Embedder,
    randomised: Embedder,
    *,
    original: Explanation | None = None,
    grid: int = 15,
) -> float:
    """Mean over both chips of the rank correlation between the map under ``embedder`` and the
    map under ``randomised`` (the same network with random weights). Near 1: the map ignores the
    weights, so it cannot be explaining the model."""
    e0 = original or explainer.explain(chip_a, chip_b, embedder)
    e1 = explainer.explain(chip_a, chip_b, randomised)
    return 0.5 * (rank_correlation(e0.map_a, e1.map_a, grid=grid) + rank_correlation(e0.map_b, e1.map_b, grid=grid))


def randomised_copy(embedder: Embedder, *, seed: int = 0) -> Embedder:
    """The embedder's network with random weights (:meth:`OnnxFeatureModel.randomised`);
    :class:`LayerNotFoundError` when faceprint cannot rebuild that network."""
    from ..explain.features import OnnxFeatureModel, feature_source

    source = feature_source(embedder)
    if not isinstance(source, OnnxFeatureModel):
        raise LayerNotFoundError(f"cannot randomise the weights of {embedder.model_id}: its graph is not available")
    return source.randomised(seed=seed)


# --- many pairs -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PairFaithfulness:
    """What one method's explanation of one pair scored."""

    mated: bool
    score: float
    curves: list[Curve]
    top_drop: float
    random_drop: float
    reconstructed_score: float | None = None
    randomisation_rho: float | None = None

    def auc(self, kind: Kind, order: Order) -> float:
        return next(c.auc for c in self.curves if c.kind == kind and c.order == order)


def _mean(xs: Iterable[float | None]) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


@dataclass(frozen=True)
class MethodSummary:
    """Means over the pairs of one kind (mated or non-mated) for one method."""

    method: str
    pairs: str  # "mated" | "non-mated"
    n: int
    deletion_auc: dict[str, float | None]  # order → mean AUC (lower is better)
    insertion_auc: dict[str, float | None]  # order → mean AUC (higher is better)
    deletion_beats_random: float | None  # share of pairs whose map deletion AUC < random's
    insertion_beats_random: float | None
    top10_beats_random: float | None  # share of pairs where hiding the top 10 % lowers more than a random 10 %
    reconstruction_mae: float | None  # mean |reconstructed - score| (xcos)
    randomisation_rho: float | None  # mean Spearman rho, trained vs random weights
    randomisation_n: int

    @classmethod
    def of(cls, method: str, pairs: str, rows: Sequence[PairFaithfulness]) -> MethodSummary:
        def share(pred: Callable[[PairFaithfulness], bool]) -> float | None:
            return float(np.mean([pred(r) for r in rows])) if rows else None

        rec = [abs(r.reconstructed_score - r.score) for r in rows if r.reconstructed_score is not None]
        rhos = [r.randomisation_rho for r in rows if r.randomisation_rho is not None]
        return cls(
            method,
            pairs,
            len(rows),
            {o: _mean(r.auc("deletion", o) for r in rows) for o in ORDERS},
            {o: _mean(r.auc("insertion", o) for r in rows) for o in ORDERS},
            share(lambda r: r.auc("deletion", "map") < r.auc("deletion", "random")),
            share(lambda r: r.auc("insertion", "map") > r.auc("insertion", "random")),
            share(lambda r: r.top_drop > r.random_drop),
            _mean(rec),
            _mean(rhos),
            len(rhos),
        )

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "method": self.method,
            "pairs": self.pairs,
            "n": self.n,
            "deletion_auc": {k: r(v) for k, v in self.deletion_auc.items()},
            "insertion_auc": {k: r(v) for k, v in self.insertion_auc.items()},
            "deletion_beats_random": r(self.deletion_beats_random),
            "insertion_beats_random": r(self.insertion_beats_random),
            "top10_beats_random": r(self.top10_beats_random),
            "reconstruction_mae": r(self.reconstruction_mae),
            "randomisation_rho": r(self.randomisation_rho),
            "randomisation_pairs": self.randomisation_n,
        }


@dataclass(frozen=True, eq=False)
class FaithfulnessReport:
    """Faithfulness of each method over a set of pairs (``faceprint explain eval``)."""

    protocol: str
    model: str
    summaries: list[MethodSummary]
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "settings": self.settings,
            "skipped_pairs": self.skipped,
            "summaries": [s.to_dict() for s in self.summaries],
        }

    def markdown(self) -> str:
        """The table of RESULTS.md: AUCs per order, win rates, reconstruction and sanity figures."""

        def f(x: float | None, nd: int = 3) -> str:
            return "–" if x is None else f"{x:.{nd}f}"

        head = (
            "| method | pairs | n | deletion AUC ↓ map / random / centre | insertion AUC ↑ map / random / centre "
            "| del. < random | ins. > random | top 10 % > random | xcos MAE | rand. ρ (n) |\n"
            "|---|---|---|---|---|---|---|---|---|---|"
        )
        rows = [head]
        for s in self.summaries:
            d = " / ".join(f(s.deletion_auc[o]) for o in ORDERS)
            i = " / ".join(f(s.insertion_auc[o]) for o in ORDERS)
            rows.append(
                f"| {s.method} | {s.pairs} | {s.n} | {d} | {i} | {f(s.deletion_beats_random, 2)} "
                f"| {f(s.insertion_beats_random, 2)} | {f(s.top10_beats_random, 2)} | {f(s.reconstruction_mae)} "
                f"| {f(s.randomisation_rho, 2)} ({s.randomisation_n}) |"
            )
        return "\n".join(rows)


ChipPair = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], bool]


def evaluate_pairs(
    pairs: Sequence[ChipPair],
    explainers: dict[str, Explainer],
    embedder: Embedder,
    *,
    grid: int = 15,
    steps: int = 10,
    seed: int = 0,
    sanity_pairs: int = 20,
    progress: Callable[[int], None] | None = None,
    protocol: str = "",
) -> FaithfulnessReport:
    """Explain each (chip A, chip B, mated) pair with each method and measure faithfulness.

    The baselines (random, centre-first) are the same for every method of a pair. The
    randomisation check runs on the first ``sanity_pairs`` pairs of each kind (it explains each
    pair again under a randomised copy of the network; skipped when faceprint cannot rebuild it).
    """
    randomised: Embedder | None
    try:
        randomised = randomised_copy(embedder, seed=seed) if sanity_pairs > 0 else None
    except LayerNotFoundError as exc:
        log.warning("no randomisation check: %s", exc)
        randomised = None
    rows: dict[tuple[str, bool], list[PairFaithfulness]] = {}
    done = {True: 0, False: 0}
    for i, (a, b, mated) in enumerate(pairs):
        rng = np.random.default_rng([seed, i])
        base = {o: (block_ranking(None, grid, o, rng), block_ranking(None, grid, o, rng)) for o in ("random", "centre")}
        base_curves = faithfulness_curves(a, b, base, embedder, grid=grid, steps=steps)  # type: ignore[arg-type]
        sanity = randomised is not None and done[mated] < sanity_pairs
        for name, explainer in explainers.items():
            e = explainer.explain(a, b, embedder)
            own = {"map": (block_ranking(e.map_a, grid, "map", rng), block_ranking(e.map_b, grid, "map", rng))}
            curves = faithfulness_curves(a, b, own, embedder, grid=grid, steps=steps) + base_curves  # type: ignore[arg-type]
            top, rand = masked_drop(a, b, e, embedder, grid=grid, seed=seed + i)
            rho = (
                randomisation_correlation(explainer, a, b, embedder, randomised, original=e, grid=grid)
                if sanity and randomised is not None
                else None
            )
            rows.setdefault((name, mated), []).append(
                PairFaithfulness(mated, e.score, curves, top, rand, e.reconstructed_score, rho)
            )
        done[mated] += 1
        if progress is not None:
            progress(1)
    summaries = [
        MethodSummary.of(name, "mated" if mated else "non-mated", rows.get((name, mated), []))
        for name in explainers
        for mated in (True, False)
    ]
    settings = {
        "grid": grid,
        "steps": steps,
        "seed": seed,
        "sanity_pairs": sanity_pairs,
        "deletion_fill": "mean",
        "insertion_start": "blur",
    }
    return FaithfulnessReport(protocol, model_tag(embedder), summaries, settings)


def protocol_chips(
    pipeline: FacePipeline,
    refs: Iterable[tuple[Any, Any, bool]],
    *,
    select: str = "largest",
) -> tuple[list[ChipPair], int]:
    """Aligned chips of the main face of each side of each (image a, image b, mated) pair.

    Pairs where a side cannot be read or shows no face, or whose two chips are identical, are
    left out; their number is returned with the pairs.
    """
    out: list[ChipPair] = []
    skipped = 0
    cache: dict[str, npt.NDArray[np.uint8] | None] = {}

    def chip(ref: Any) -> npt.NDArray[np.uint8] | None:
        if ref.key not in cache:
            try:
                faces = pipeline.analyze(ref.source, select=select, keep_aligned=True)  # type: ignore[arg-type]
                cache[ref.key] = faces[0].aligned.image if faces and faces[0].aligned is not None else None
            except FaceprintError as exc:
                log.warning("%s: %s", ref.key, exc)
                cache[ref.key] = None
        return cache[ref.key]

    template = pipeline.embedder.template
    for ra, rb, mated in refs:
        a, b = chip(ra), chip(rb)
        if a is None or b is None:
            skipped += 1
            continue
        try:
            check_chip_pair(a, b, a.shape[0], template)
        except FaceprintError:
            skipped += 1
            continue
        out.append((a, b, mated))
    return out, skipped


def sample_pairs(mated: npt.NDArray[np.bool_], n_mated: int, n_nonmated: int, seed: int) -> npt.NDArray[np.intp]:
    """Indices of ``n_mated`` mated and ``n_nonmated`` non-mated pairs drawn with ``seed``, in protocol order."""
    rng = np.random.default_rng(seed)
    idx_m, idx_n = np.flatnonzero(mated), np.flatnonzero(~mated)
    pick = [rng.permutation(idx_m)[:n_mated], rng.permutation(idx_n)[:n_nonmated]]
    return np.sort(np.concatenate(pick)).astype(np.intp)


def explain_protocol(
    kind: str,
    data: str,
    *,
    pipeline: FacePipeline,
    explainers: dict[str, Explainer],
    pairs: str | None = None,
    n_mated: int = 200,
    n_nonmated: int = 200,
    seed: int = 0,
    sanity_pairs: int = 20,
    grid: int = 15,
    steps: int = 10,
    progress: Callable[[int], None] | None = None,
) -> FaithfulnessReport:
    """Faithfulness over ``n_mated`` mated and ``n_nonmated`` non-mated pairs (a seeded sample)
    of a verification protocol read by :func:`~faceprint.evaluation.protocols.open_protocol`."""
    from .protocols import VerificationProtocol, open_protocol

    if n_mated < 0 or n_nonmated < 0 or n_mated + n_nonmated == 0:
        raise ConfigurationError("ask for at least one mated or non-mated pair")
    src = open_protocol(kind, data, pairs=pairs)
    proto = src.protocol
    if not isinstance(proto, VerificationProtocol) or proto.templates is not None:
        raise ConfigurationError(f"protocol {proto.name!r} does not compare single images; explain needs image pairs")
    sub = proto.subset(sample_pairs(proto.mated, n_mated, n_nonmated, seed))
    chips, skipped = protocol_chips(pipeline, sub.pairs(), select=proto.select or "largest")
    report = evaluate_pairs(
        chips,
        explainers,
        pipeline.embedder,
        grid=grid,
        steps=steps,
        seed=seed,
        sanity_pairs=sanity_pairs,
        progress=progress,
        protocol=proto.name,
    )
    return FaithfulnessReport(report.protocol, report.model, report.summaries, report.settings, skipped)
