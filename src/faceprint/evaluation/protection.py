"""Template protection measured in the terms of ISO/IEC 30136: accuracy, unlinkability, revocability.

Unlinkability (Gomez-Barrero et al., "General framework to evaluate unlinkability in biometric
template protection systems", IEEE TIFS 2018): an attacker holds two templates from two
applications (two keys) and asks whether they are of one person. Scores of *mated* templates
under different keys (H_m) and of *non-mated* ones under different keys (H_nm) are
histogrammed; with the likelihood ratio LR(s) = p(s|H_m) / p(s|H_nm) and the prior ratio
omega = p(H_m)/p(H_nm) = 1,

    D<->(s) = max(0, p(H_m|s) - p(H_nm|s)) = max(0, 2 omega LR(s) / (1 + omega LR(s)) - 1)

and the global D<->sys = integral of D<->(s) p(s|H_m) ds, in [0, 1]: 0 = fully unlinkable,
1 = fully linkable. Bins where no non-mated score falls but mated ones do count as D = 1. The
estimate on finite samples is above 0 even for identical distributions; :func:`noise_floor`
measures that level on the data itself (the same estimate between two halves of the
non-mated scores).

Accuracy scenarios of :func:`evaluate_protection` (keys from one application key, one child key
per subject):

* ``own_key``: a subject's references and probes are protected under their own key; an impostor
  presents their own key (the non-mated probe is protected under the impostor's key).
* ``stolen_key``: the impostor holds the victim's key, so every comparison is under one key.
* ``unprotected``: cosine similarity of the embeddings, on the same pairs.

Revocability: each pair's reference under the subject's key against the same image protected
under the subject's renewed key; the share of those scores reaching the own-key EER threshold,
next to the zero-effort (non-mated) rate at that threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..protection.base import ProtectedTemplates, ProtectionKey, TemplateProtector
from ..rates import eer, fnmr_at_fmr

if TYPE_CHECKING:
    from ..batch import ProgressHook
    from .cache import EmbeddingCache
    from .pipeline_settings import PipelineSpec

__all__ = [
    "Linkability",
    "ModeAccuracy",
    "ProtectionEvaluation",
    "linkability",
    "noise_floor",
    "evaluate_protection",
    "protect_protocol",
    "markdown",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Linkability:
    """D<->(s) per histogram bin and the global D<->sys.

    Attributes:
        d_sys: global linkability in [0, 1].
        bin_centres: centre of each score bin.
        d_local: D<->(s) in each bin.
        n_mated, n_nonmated: numbers of scores the estimate rests on.
    """

    d_sys: float
    bin_centres: FloatArray
    d_local: FloatArray
    n_mated: int
    n_nonmated: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "d_sys": round(self.d_sys, 6),
            "n_mated": self.n_mated,
            "n_nonmated": self.n_nonmated,
            "bin_centres": np.round(self.bin_centres, 6).tolist(),
            "d_local": np.round(self.d_local, 6).tolist(),
        }


def _finite(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ConfigurationError(f"{name} scores must be a non-empty set of finite numbers ({a.size} given)")
    return a


def linkability(
    mated: npt.ArrayLike, nonmated: npt.ArrayLike, *, bins: int | None = None, omega: float = 1.0
) -> Linkability:
    """D<->(s) and D<->sys from mated and non-mated cross-key scores (see the module doc).

    Args:
        mated: scores of mated templates under two different keys.
        nonmated: scores of non-mated templates under two different keys.
        bins: number of equal-width bins over the range of all scores; default
            ``min(max(n_mated // 10, 10), 100)`` as in the authors' reference code.
        omega: prior ratio p(H_m) / p(H_nm).
    """
    m, n = _finite(mated, "mated"), _finite(nonmated, "non-mated")
    k = bins if bins is not None else min(max(len(m) // 10, 10), 100)
    if k < 2 or omega <= 0:
        raise ConfigurationError(f"linkability needs at least 2 bins and omega > 0 (got bins={k}, omega={omega})")
    lo, hi = float(min(m.min(), n.min())), float(max(m.max(), n.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, k + 1)
    pm = np.histogram(m, edges)[0] / len(m)  # probability mass per bin
    pn = np.histogram(n, edges)[0] / len(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = omega * pm / pn
        d = np.where(pn > 0, 2 * lr / (1 + lr) - 1, np.where(pm > 0, 1.0, 0.0))
    d = np.clip(d, 0.0, 1.0)
    return Linkability(float(np.sum(d * pm)), (edges[:-1] + edges[1:]) / 2, d, len(m), len(n))


def noise_floor(nonmated: npt.ArrayLike, *, bins: int | None = None, seed: int = 0) -> float:
    """D<->sys between two random halves of the non-mated scores (the same distribution): the
    level a D<->sys estimate on this much data reaches without any linkability."""
    n = _finite(nonmated, "non-mated")
    if len(n) < 4:
        raise ConfigurationError(f"a noise floor needs at least 4 non-mated scores, got {len(n)}")
    perm = np.random.default_rng(seed).permutation(len(n))
    half = len(n) // 2
    return linkability(n[perm[:half]], n[perm[half : 2 * half]], bins=bins).d_sys


@dataclass(frozen=True)
class ModeAccuracy:
    """Accuracy of one scenario on the pairs: EER and FNMR at the target FMR (None when too few)."""

    eer: float
    eer_threshold: float
    target_fmr: float
    fnmr: float | None
    mated: FloatArray
    nonmated: FloatArray

    def to_dict(self) -> dict[str, Any]:
        return {
            "eer": round(self.eer, 6),
            "eer_threshold": round(self.eer_threshold, 6),
            "target_fmr": self.target_fmr,
            "fnmr_at_target_fmr": None if self.fnmr is None else round(self.fnmr, 6),
        }


def _accuracy(mated: FloatArray, nonmated: FloatArray, target_fmr: float) -> ModeAccuracy:
    e = eer(mated, nonmated)
    f = fnmr_at_fmr(mated, nonmated, target_fmr, confidence=None)[0]
    return ModeAccuracy(e.eer, e.threshold, target_fmr, f.fnmr, mated, nonmated)


@dataclass(frozen=True)
class ProtectionEvaluation:
    """Every figure of :func:`evaluate_protection`."""

    scheme: str
    n_mated: int
    n_nonmated: int
    accuracy: dict[str, ModeAccuracy]
    unlinkability: Linkability
    unlinkability_unprotected: Linkability
    noise_floor: float
    renewed_match_rate: float
    zero_effort_rate: float
    protocol: str = ""
    model: str = ""
    failures: dict[str, str] = field(default_factory=dict)
    pairs_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "model": self.model,
            "pairs_dropped": self.pairs_dropped,
            "failures": dict(self.failures),
            "scheme": self.scheme,
            "pairs": {"mated": self.n_mated, "non_mated": self.n_nonmated},
            "accuracy": {k: v.to_dict() for k, v in self.accuracy.items()},
            "unlinkability": {
                "d_sys": round(self.unlinkability.d_sys, 6),
                "d_sys_unprotected": round(self.unlinkability_unprotected.d_sys, 6),
                "noise_floor": round(self.noise_floor, 6),
                "protected": self.unlinkability.to_dict(),
            },
            "revocability": {
                "renewed_match_rate": round(self.renewed_match_rate, 6),
                "zero_effort_rate": round(self.zero_effort_rate, 6),
                "threshold": "own_key EER threshold",
            },
        }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def markdown(r: ProtectionEvaluation) -> str:
    """The figures of one evaluation as a Markdown report."""
    rows = [f"| {mode.replace('_', ' ')} | {_pct(a.eer)} | {_pct(a.fnmr)} |" for mode, a in r.accuracy.items()]
    fmr = next(iter(r.accuracy.values())).target_fmr
    return "\n".join(
        [
            f"# Template protection: {r.scheme} on {r.protocol or 'the pairs'}",
            "",
            f"{r.n_mated} mated and {r.n_nonmated} non-mated pairs"
            + (f", model {r.model}" if r.model else "")
            + (f"; {r.pairs_dropped} pairs left out (no face acquired)" if r.pairs_dropped else "")
            + ".",
            "",
            f"| scenario | EER | FNMR at FMR {fmr:g} |",
            "|---|---|---|",
            *rows,
            "",
            "Unlinkability (Gomez-Barrero et al. 2018; 0 = unlinkable, 1 = fully linkable):",
            f"D<->sys protected under two keys {r.unlinkability.d_sys:.3f} (noise floor {r.noise_floor:.3f}), "
            f"unprotected {r.unlinkability_unprotected.d_sys:.3f}.",
            "",
            f"Revocability: {_pct(r.renewed_match_rate)} of templates renewed under a new key match the old one at "
            f"the own-key EER threshold; the zero-effort rate there is {_pct(r.zero_effort_rate)}.",
        ]
    )


def _protect_rows(
    protector: TemplateProtector,
    x: npt.NDArray[np.float32],
    labels: npt.NDArray[np.str_],
    key: Callable[[str], ProtectionKey],
) -> list[ProtectedTemplates]:
    """Row i of ``x`` protected under ``key(labels[i])``, one ``protect`` call per key."""
    out: list[ProtectedTemplates | None] = [None] * len(x)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        t = protector.protect(x[idx], key(str(label)))
        for r, i in enumerate(idx):
            out[i] = t[r]
    return [t for t in out if t is not None]


def _pair_scores(
    protector: TemplateProtector, a: list[ProtectedTemplates], b: list[ProtectedTemplates], *, cross_key: bool
) -> FloatArray:
    return np.array([protector.compare(x, y, cross_key=cross_key)[0] for x, y in zip(a, b, strict=True)], np.float64)


def _cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> FloatArray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    return np.sum(a64 * b64, axis=1) / np.maximum(na * nb, 1e-12)  # type: ignore[no-any-return]


def evaluate_protection(
    protector: TemplateProtector,
    emb_a: npt.ArrayLike,
    emb_b: npt.ArrayLike,
    mated: npt.ArrayLike,
    subject_a: npt.ArrayLike,
    subject_b: npt.ArrayLike,
    app_key: ProtectionKey,
    *,
    target_fmr: float = 1e-3,
) -> ProtectionEvaluation:
    """Accuracy (own key, stolen key, unprotected), unlinkability and revocability on P pairs.

    Args:
        protector: the method measured.
        emb_a, emb_b: float32 (P, D) embeddings of the two sides of each pair.
        mated: bool (P,), True where both sides show one subject.
        subject_a, subject_b: (P,) subject ids (one key per subject).
        app_key: the application key; subject keys are its children (``"own/<subject>"``,
            renewed ``"renewed/<subject>"``; the two applications of the unlinkability
            analysis use ``"app-1/<subject>"`` and ``"app-2/<subject>"``).
        target_fmr: FMR of the reported FNMR.
    """
    a, b = np.asarray(emb_a, np.float32), np.asarray(emb_b, np.float32)
    m = np.asarray(mated, bool)
    sa, sb = np.asarray(subject_a).astype(str), np.asarray(subject_b).astype(str)
    if not (len(a) == len(b) == len(m) == len(sa) == len(sb)) or m.all() or not m.any():
        raise ConfigurationError("evaluate_protection needs equal numbers of a, b, mated and subjects, both kinds")

    def child(prefix: str) -> Callable[[str], ProtectionKey]:
        return lambda s: app_key.child(f"{prefix}/{s}")

    ref = _protect_rows(protector, a, sa, child("own"))
    own = _pair_scores(protector, ref, _protect_rows(protector, b, sb, child("own")), cross_key=True)
    stolen = _pair_scores(protector, ref, _protect_rows(protector, b, sa, child("own")), cross_key=False)
    plain = _cosine(a, b)
    acc = {
        "own_key": _accuracy(own[m], own[~m], target_fmr),
        "stolen_key": _accuracy(stolen[m], stolen[~m], target_fmr),
        "unprotected": _accuracy(plain[m], plain[~m], target_fmr),
    }
    link = _pair_scores(
        protector,
        _protect_rows(protector, a, sa, child("app-1")),
        _protect_rows(protector, b, sb, child("app-2")),
        cross_key=True,
    )
    renewed = _pair_scores(protector, ref, _protect_rows(protector, a, sa, child("renewed")), cross_key=True)
    thr = acc["own_key"].eer_threshold
    return ProtectionEvaluation(
        scheme=ref[0].scheme if ref else protector.name,
        n_mated=int(m.sum()),
        n_nonmated=int((~m).sum()),
        accuracy=acc,
        unlinkability=linkability(link[m], link[~m]),
        unlinkability_unprotected=linkability(plain[m], plain[~m]),
        noise_floor=noise_floor(link[~m]),
        renewed_match_rate=float(np.mean(renewed >= thr)),
        zero_effort_rate=float(np.mean(own[~m] >= thr)),
    )


def protect_protocol(
    kind: str,
    data: str,
    protector: TemplateProtector,
    app_key: ProtectionKey,
    *,
    pairs: str | None = None,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    workers: int | None = None,
    target_fmr: float = 1e-3,
    progress: ProgressHook | None = None,
) -> ProtectionEvaluation:
    """:func:`evaluate_protection` on the image pairs of a verification protocol read by
    :func:`~faceprint.evaluation.protocols.open_protocol` (its subject ids give one key per subject).

    Pairs with an image where no face was acquired are left out and listed in ``failures``
    (image key → reason). ``cache`` (none by default) keeps the embeddings between runs.
    """
    from .embedding import embed_protocol
    from .protocols import VerificationProtocol, open_protocol

    proto = open_protocol(kind, data, pairs=pairs).protocol
    if not isinstance(proto, VerificationProtocol) or proto.templates is not None:
        raise ConfigurationError(f"protocol {proto.name!r} does not compare single images; protect eval needs pairs")
    if proto.subject_a is None or proto.subject_b is None:
        raise ConfigurationError(
            f"protocol {proto.name!r} names no subject per image; per-subject keys need them (use lfw or folder)"
        )
    emb = embed_protocol(proto, pipeline_settings, cache, workers=workers, progress=progress)
    ka, kb = proto.side_keys()
    a, ok_a = emb.matrix(ka)
    b, ok_b = emb.matrix(kb)
    ok = ok_a & ok_b
    failures = {k: str(f) for k, f in emb.failures.items()}
    result = evaluate_protection(
        protector,
        a[ok],
        b[ok],
        proto.mated[ok],
        proto.subject_a[ok],
        proto.subject_b[ok],
        app_key,
        target_fmr=target_fmr,
    )
    dropped = int((~ok).sum())
    return replace(result, protocol=proto.name, model=str(emb.model), failures=failures, pairs_dropped=dropped)
