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

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
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
    "protocol_images",
    "markdown",
    "write_report",
    "Inversion",
    "inversion_attack",
    "template_features",
    "fmr_threshold",
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
    inversion: tuple[Inversion, ...] = ()
    link_scores: tuple[FloatArray, FloatArray] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inversion": [i.to_dict() for i in self.inversion],
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
            *_inversion_lines(r),
        ]
    )


def _inversion_lines(r: ProtectionEvaluation) -> list[str]:
    if not r.inversion:
        return []
    head = r.inversion[0]
    return [
        "",
        f"Inversion attack (attacker holds the key and {head.n_train} embeddings of other people; success = the "
        f"reconstruction matches the victim's other image at FMR {head.target_fmr:g}, threshold {head.threshold:.4f}):",
        "",
        "| regressor | success on protected templates | success on unprotected templates | mean cosine to truth |",
        "|---|---|---|---|",
        *[
            f"| {i.regressor} | {_pct(i.success_rate)} | {_pct(i.success_rate_unprotected)} | {i.mean_cosine:.3f} |"
            for i in r.inversion
        ],
    ]


def write_report(r: ProtectionEvaluation, folder: str | os.PathLike[str]) -> list[Path]:
    """``protection.md``, ``protection.html`` (self-contained), ``protection.json`` and the D<->
    plot ``linkability.png`` in ``folder`` (created); returns the paths written."""
    import json

    from .plots import pyplot
    from .report.document import Document, json_default, write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    link = r.unlinkability
    width = float(link.bin_centres[1] - link.bin_centres[0]) if len(link.bin_centres) > 1 else 0.01
    if r.link_scores is not None:
        m, n = r.link_scores
        ax2 = ax.twinx()
        edges = np.concatenate([link.bin_centres - width / 2, [link.bin_centres[-1] + width / 2]])
        ax2.hist(n, edges, density=True, alpha=0.35, color="tab:red", label="non-mated, two keys")
        ax2.hist(m, edges, density=True, alpha=0.35, color="tab:green", label="mated, two keys")
        ax2.set_ylabel("score density")
        ax2.legend(loc="upper right")
        ax.set_zorder(ax2.get_zorder() + 1)  # the D<-> curve over the histograms
        ax.patch.set_visible(False)
    ax.plot(link.bin_centres, link.d_local, color="black", lw=2, label="D<->(s)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("protected score")
    ax.set_ylabel("local linkability D<->(s)")
    ax.set_title(f"{r.scheme}: D<->sys = {link.d_sys:.3f} (noise floor {r.noise_floor:.3f})")
    ax.legend(loc="upper left")
    png = out / "linkability.png"
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    doc = Document()
    for block in markdown(r).split("\n\n"):
        if block.startswith("# "):
            doc.h(1, block[2:])
        elif block.startswith("|"):
            lines = [ln.strip("|").split("|") for ln in block.splitlines() if ln.strip()]
            doc.table([c.strip() for c in lines[0]], [[c.strip() for c in row] for row in lines[2:]])
        else:
            doc.p(block)
    doc.img(png, "Local linkability D<->(s) over the cross-key score distributions (Gomez-Barrero et al. 2018)")
    paths = [out / "protection.md", out / "protection.html", out / "protection.json"]
    write_text(paths[0], doc.markdown())
    write_text(paths[1], doc.html(f"Template protection: {r.scheme}"))
    write_text(paths[2], json.dumps(r.to_dict(), indent=2, default=json_default) + "\n")
    return [*paths, png]


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
        link_scores=(link[m], link[~m]),
    )


def _protocol_embeddings(
    kind: str,
    data: str,
    pairs: str | None,
    pipeline_settings: PipelineSpec,
    cache: EmbeddingCache | None,
    workers: int | None,
    progress: ProgressHook | None,
) -> tuple[Any, Any, Any]:
    """(protocol, embeddings, model) of a verification protocol with subject ids per image."""
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
    return proto, emb, emb.model


def protocol_images(
    kind: str,
    data: str,
    *,
    pairs: str | None = None,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    workers: int | None = None,
    progress: ProgressHook | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]]:
    """The embeddings of the distinct images of a protocol's pairs (where a face was acquired) and
    their subject ids: the attacker's data of the inversion attack and the data a BioHashing
    centre is fitted on (use a split whose subjects are not the measured ones: LFW DevTrain)."""
    if kind == "lfw" and pairs is not None and Path(pairs).is_file():
        # open_protocol reads a View 1 folder as DevTest with DevTrain for calibration; here the named file is meant
        from .embedding import embed_protocol
        from .protocols import read_lfw_protocol

        proto = read_lfw_protocol(pairs, data)
        emb = embed_protocol(proto, pipeline_settings, cache, workers=workers, progress=progress)
    else:
        proto, emb, _ = _protocol_embeddings(kind, data, pairs, pipeline_settings, cache, workers, progress)
    ka, kb = proto.side_keys()
    keys = np.concatenate([np.asarray(ka), np.asarray(kb)])
    subjects = np.concatenate([proto.subject_a, proto.subject_b]).astype(str)
    _, first = np.unique(keys, return_index=True)
    x, ok = emb.matrix([str(k) for k in keys[first]])
    return x[ok], subjects[first][ok]


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
    train: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    regressors: tuple[str, ...] = ("ridge",),
) -> ProtectionEvaluation:
    """:func:`evaluate_protection` on the image pairs of a verification protocol read by
    :func:`~faceprint.evaluation.protocols.open_protocol` (its subject ids give one key per subject).

    Pairs with an image where no face was acquired are left out and listed in ``failures``
    (image key → reason). ``cache`` (none by default) keeps the embeddings between runs.
    ``train``: (embeddings, subject ids) of other people (:func:`protocol_images` of a training
    split): the inversion attack (:func:`inversion_attack`, one per ``regressors``) is then run
    with them as the attacker's data against the mated pairs, for the hash methods.
    """
    proto, emb, model = _protocol_embeddings(kind, data, pairs, pipeline_settings, cache, workers, progress)
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
    inv: tuple[Inversion, ...] = ()
    if train is not None and protector.name in ("biohash", "iom"):
        m = proto.mated[ok]
        key = app_key.child("inversion/victim")
        inv = tuple(
            inversion_attack(
                protector, key, train[0], train[1], a[ok][m], b[ok][m], regressor=reg, target_fmr=target_fmr
            )
            for reg in regressors
        )
    dropped = int((~ok).sum())
    return replace(
        result, protocol=proto.name, model=str(model), failures=failures, pairs_dropped=dropped, inversion=inv
    )


# ----- irreversibility: the inversion attack ----------------------------------------------------


@dataclass(frozen=True)
class Inversion:
    """How often a reconstructed embedding passes for its victim (ISO/IEC 30136 irreversibility).

    Attributes:
        regressor: ``"ridge"`` or ``"mlp"``.
        success_rate: share of victims whose embedding, reconstructed from their protected
            template, matches their other image at ``threshold``.
        success_rate_unprotected: the same attack on unprotected templates (the leaked
            embedding itself is presented: 1 - FNMR at ``threshold``).
        threshold: the unprotected system's cosine threshold at ``target_fmr``, set on the
            attacker's own data (all non-mated pairs of it).
        mean_cosine: mean cosine of reconstruction and true embedding (how close it gets).
        n_train, n_victims: attacker's embeddings and victims attacked.
    """

    regressor: str
    success_rate: float
    success_rate_unprotected: float
    threshold: float
    target_fmr: float
    mean_cosine: float
    n_train: int
    n_victims: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "regressor": self.regressor,
            "success_rate": round(self.success_rate, 6),
            "success_rate_unprotected": round(self.success_rate_unprotected, 6),
            "threshold": round(self.threshold, 6),
            "target_fmr": self.target_fmr,
            "mean_cosine_to_true_embedding": round(self.mean_cosine, 6),
            "n_train": self.n_train,
            "n_victims": self.n_victims,
        }


def template_features(t: ProtectedTemplates) -> FloatArray:
    """What a regression sees of protected templates: biohash bits as ±1, iom indices one-hot."""
    if t.method == "biohash":
        bits = int(dict(t.settings)["bits"])
        return np.unpackbits(np.asarray(t.data, np.uint8), axis=1)[:, :bits].astype(np.float64) * 2.0 - 1.0
    if t.method == "iom":
        q = int(dict(t.settings)["q"])
        idx = np.asarray(t.data, np.int64)
        out = np.zeros((idx.shape[0], idx.shape[1] * q), np.float64)
        out[np.arange(idx.shape[0])[:, None], np.arange(idx.shape[1]) * q + idx] = 1.0
        return out
    raise ConfigurationError(
        f"no inversion attack for {t.method} templates: their holder decrypts them exactly (ckks), so the "
        "attacker with the key holds the embedding itself; see the threat model"
    )


def _unit(x: npt.ArrayLike) -> FloatArray:
    a = np.asarray(x, np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # type: ignore[no-any-return]


def fmr_threshold(embeddings: npt.ArrayLike, subjects: npt.ArrayLike, target_fmr: float) -> float:
    """The cosine threshold at ``target_fmr`` over every non-mated pair of ``embeddings`` (one per image)."""
    x = _unit(embeddings)
    s = np.asarray(subjects).astype(str)
    _, code = np.unique(s, return_inverse=True)
    scores = x @ x.T
    iu = np.triu_indices(len(x), 1)
    non = scores[iu][code[iu[0]] != code[iu[1]]]
    if len(non) * target_fmr < 10:
        raise ConfigurationError(f"{len(non)} non-mated pairs cannot set a threshold at FMR {target_fmr:g}")
    return float(np.quantile(non, 1.0 - target_fmr, method="higher"))


def inversion_attack(
    protector: TemplateProtector,
    key: ProtectionKey,
    train: npt.ArrayLike,
    train_subjects: npt.ArrayLike,
    victims: npt.ArrayLike,
    victims_other: npt.ArrayLike,
    *,
    regressor: str = "ridge",
    target_fmr: float = 1e-3,
    seed: int = 0,
    victim_key: ProtectionKey | None = None,
) -> Inversion:
    """The attacker of the issue: holds the key and their own faces (identity-disjoint from the
    victims), protects their faces under the key, and learns the map back to embeddings.

    Args:
        train: the attacker's embeddings (one per image), ``train_subjects`` their subject ids
            (for the threshold: every non-mated pair of them).
        victims: embeddings whose protected templates leaked (row i); ``victims_other``: another
            image of the same person each (the attack succeeds when the reconstruction of row i
            matches it at the threshold).
        regressor: ``"ridge"`` (ridge regression, its penalty chosen by cross-validation on the
            attacker's data) or ``"mlp"`` (one hidden layer of 512 ReLU units, scikit-learn).
        victim_key: the key the victims' templates are under, when it is not the attacker's
            ``key`` (the attacker without the key: the control of the attack).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor

    if regressor not in ("ridge", "mlp"):
        raise ConfigurationError(f"unknown regressor {regressor!r}; use 'ridge' or 'mlp'")
    x_train = np.asarray(train, np.float32)
    v, other = np.asarray(victims, np.float32), np.asarray(victims_other, np.float32)
    if len(v) != len(other) or len(v) == 0:
        raise ConfigurationError("inversion_attack needs victims and victims_other of equal, non-zero length")
    thr = fmr_threshold(x_train, train_subjects, target_fmr)
    f_train = template_features(protector.protect(x_train, key))
    f_victims = template_features(protector.protect(v, victim_key or key))
    model: Any
    if regressor == "ridge":
        model = RidgeCV(alphas=np.logspace(-2, 4, 13))
    else:
        model = MLPRegressor(hidden_layer_sizes=(512,), max_iter=300, early_stopping=True, random_state=seed)
    model.fit(f_train, _unit(x_train))
    rec = _unit(model.predict(f_victims))
    success = np.sum(rec * _unit(other), axis=1) >= thr
    plain = np.sum(_unit(v) * _unit(other), axis=1) >= thr
    return Inversion(
        regressor,
        float(success.mean()),
        float(plain.mean()),
        thr,
        target_fmr,
        float(np.mean(np.sum(rec * _unit(v), axis=1))),
        len(x_train),
        len(v),
    )
