"""Vulnerability of a face recogniser to morphs, and ISO/IEC 30107-3 rates for morph detectors.

**Vulnerability** (Scherhag et al., "Biometric systems under morphing attacks: assessment of
morphing techniques and vulnerability reporting", BIOSIG 2017). A morph ``m`` of contributors
``n = 1..N_m`` (two here) is compared with probe images of each contributor. With ``τ`` the
verifier's threshold and matches at ``score >= τ`` (faceprint's convention):

* **MMPMR(τ)** = 1/M · Σ_m [ min_n S_m^n >= τ ]: the share of morphs that verify against *every*
  contributor. With several probes per contributor, ``S_m^n`` is the lowest of that
  contributor's scores (the morph must pass every attempt). With one probe per contributor
  MMPMR equals ProdAvg-MMPMR.
* **ProdAvg-MMPMR(τ)** = 1/M · Σ_m Π_n ( 1/P_m^n · Σ_p [S_m^{n,p} >= τ] ): each contributor's
  share of accepted probes, multiplied (the probability that one random probe of each
  contributor is accepted), averaged over morphs.
* **RMMR(τ)** (relative morph match rate) = 1 + MMPMR(τ) − (1 − FNMR(τ)): MMPMR relative to
  how often the contributors verify against their *own* photos (FNMR from the contributors'
  mated comparisons), so that a verifier that rejects its genuine users is not credited for
  rejecting morphs too.
* The **zero-effort impostor FMR** of the same pairs (each contributor's image against the other
  contributor's probes) says what the pair would achieve without morphing.

**Detection** (ISO/IEC 30107-3, attack scores higher = attack, ``score >= τ`` → attack): APCER
(attacks classified bona fide), BPCER (bona fide classified attacks), BPCER10/BPCER20 (BPCER at
the largest threshold where APCER <= 10 % / 5 %) and D-EER (where APCER = BPCER), computed by
:mod:`faceprint.evaluation.pad`'s functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import rates
from ..errors import ConfigurationError, DataFormatError
from . import pad

__all__ = [
    "mmpmr",
    "prodavg_mmpmr",
    "rmmr",
    "apcer_bpcer",
    "bpcer_at_apcer",
    "detection_report",
    "MorphEntry",
    "read_morph_list",
    "probes_from_folder",
    "vulnerability",
    "operating_thresholds",
    "markdown",
    "pipeline_embedder",
]

log = logging.getLogger(__name__)

#: per morph, per contributor, that contributor's probe scores against the morph
MorphScores = Sequence[Sequence[npt.ArrayLike]]


def _per_subject(scores: MorphScores) -> list[list[npt.NDArray[np.float64]]]:
    if len(scores) == 0:
        raise ConfigurationError("no morph scores given: at least one morph is needed")
    out = []
    for i, morph in enumerate(scores):
        subj = [np.asarray(s, dtype=np.float64).ravel() for s in morph]
        if len(subj) < 2 or any(s.size == 0 for s in subj):
            raise ConfigurationError(f"morph {i} needs at least one probe score for each of at least two contributors")
        if not all(np.isfinite(s).all() for s in subj):
            raise ConfigurationError(f"morph {i} has NaN or infinite scores")
        out.append(subj)
    return out


def mmpmr(scores: MorphScores, threshold: float) -> float:
    """Mated morph presentation match rate at ``threshold`` (see the module doc)."""
    subj = _per_subject(scores)
    return float(np.mean([min(float(s.min()) for s in m) >= threshold for m in subj]))


def prodavg_mmpmr(scores: MorphScores, threshold: float) -> float:
    """ProdAvg-MMPMR at ``threshold``: mean over morphs of the product of contributors' acceptance shares."""
    subj = _per_subject(scores)
    return float(np.mean([np.prod([np.mean(s >= threshold) for s in m]) for m in subj]))


def rmmr(mmpmr_value: float, fnmr: float) -> float:
    """Relative morph match rate: ``1 + MMPMR − (1 − FNMR)``."""
    return 1.0 + float(mmpmr_value) - (1.0 - float(fnmr))


# --- ISO/IEC 30107-3: the rates are evaluation/pad.py's -----------------------------------------


def _attack_scores(attacks: npt.ArrayLike, bona_fide: npt.ArrayLike) -> tuple[Any, Any]:
    a = np.sort(rates._scores(attacks, "attack"))
    b = np.sort(rates._scores(bona_fide, "bona fide"))
    return a, b


def apcer_bpcer(attacks: npt.ArrayLike, bona_fide: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(APCER, BPCER) at ``threshold``: :func:`faceprint.evaluation.pad.apcer` and ``bpcer``."""
    a, b = _attack_scores(attacks, bona_fide)
    return pad.apcer(a, threshold), pad.bpcer(b, threshold)


def bpcer_at_apcer(attacks: npt.ArrayLike, bona_fide: npt.ArrayLike, target_apcer: float) -> tuple[float, float]:
    """(BPCER, threshold) at the largest observed attack score whose APCER is <= ``target_apcer``.

    The threshold is :func:`faceprint.evaluation.pad.threshold_at_apcer`'s (the
    ``floor(target · n)``-th of the n sorted attack scores, 0-based), with no minimum number of
    attacks (pad's :func:`~faceprint.evaluation.pad.bpcer_at_apcer` withholds a point below the
    rule of three); ``target_apcer=0`` gives the lowest attack score. BPCER10 is
    ``target_apcer=0.10``, BPCER20 is ``0.05``.
    """
    if not (0.0 <= target_apcer < 1.0):
        raise ConfigurationError(f"target APCER must lie in [0, 1), got {target_apcer}")
    a, b = _attack_scores(attacks, bona_fide)
    t = pad.threshold_at_apcer({"morph": a}, target_apcer) if target_apcer > 0 else float(a[0])
    return pad.bpcer(b, t), t


def detection_report(
    attacks: npt.ArrayLike, bona_fide: npt.ArrayLike, threshold: float | None = None
) -> dict[str, Any]:
    """D-EER, BPCER10, BPCER20 (and APCER/BPCER at ``threshold``) of one detector on one test set."""
    a, b = _attack_scores(attacks, bona_fide)
    # attacks play "mated" (high), bona fide "non-mated": FNMR=APCER, FMR=BPCER. Not pad.d_eer: its
    # threshold convention differs (and, rarely, its EER), which would move the thresholds stored
    # in the built-in MAD models when they are retrained
    d = rates.eer(a, b)
    out: dict[str, Any] = {
        "n_attacks": int(a.size),
        "n_bona_fide": int(b.size),
        "d_eer": d.eer,
        "d_eer_threshold": d.threshold,
        "bpcer10": bpcer_at_apcer(a, b, 0.10)[0],
        "bpcer20": bpcer_at_apcer(a, b, 0.05)[0],
    }
    if threshold is not None:
        out["threshold"] = float(threshold)
        out["apcer"], out["bpcer"] = apcer_bpcer(a, b, threshold)
    return out


# --- vulnerability runner ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MorphEntry:
    """One morph, its contributors' own images, and each contributor's probe images."""

    morph: str
    contributors: tuple[str, ...]
    probes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)


_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def probes_from_folder(contributor: str | Path) -> tuple[str, ...]:
    """A contributor's probes in folder-per-person data: the other images in the contributor image's folder."""
    p = Path(contributor)
    if not p.parent.is_dir():
        return ()
    return tuple(
        str(q) for q in sorted(p.parent.iterdir()) if q.is_file() and q.suffix.lower() in _IMAGE_SUFFIXES and q != p
    )


def read_morph_list(path: str | Path) -> list[MorphEntry]:
    """Entries of a morph list: TSV ``morph<TAB>contributor_a<TAB>contributor_b`` (+ any columns after).

    This is the ``morphs.tsv`` that ``faceprint morph --pairs FILE -o DIR`` writes; a header line starting
    with ``morph`` is skipped, relative paths are relative to the file's folder. Each
    contributor's probes are the other images in its folder (:func:`probes_from_folder`).
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataFormatError(f"cannot read the morph list {p}: {exc.strerror or exc}") from None
    out = []
    for no, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.startswith("#") or (no == 1 and raw.split("\t")[0] == "morph"):
            continue
        cols = raw.split("\t")
        if len(cols) < 3:
            raise DataFormatError(f"{p}:{no}: expected 'morph<TAB>contributor_a<TAB>contributor_b', got {raw!r}")
        m, a, b = (str(c if Path(c).is_absolute() else p.parent / c) for c in cols[:3])
        out.append(MorphEntry(m, (a, b), (probes_from_folder(a), probes_from_folder(b))))
    if not out:
        raise DataFormatError(f"{p} lists no morphs")
    return out


def operating_thresholds(
    pipeline: Any, names: Sequence[str] = ("fmr=0.01", "fmr=0.001", "fmr=0.0001")
) -> dict[str, float]:
    """The pipeline's calibrated thresholds by operating-point name. Where ``fmr=0.01`` is not
    calibrated, the EER point (FMR ≈ 1 % for faceprint's models on LFW) stands in, named ``eer``."""
    out: dict[str, float] = {}
    for name in names:
        try:
            out[name] = pipeline.operating_point(name).threshold
        except ConfigurationError:
            if name == "fmr=0.01":
                try:
                    out["eer"] = pipeline.operating_point("eer").threshold
                except ConfigurationError:
                    continue
    if not out:
        raise ConfigurationError("the pipeline's model has no calibrated operating point; pass thresholds explicitly")
    return out


Embed = Callable[[Sequence[str]], Mapping[str, npt.NDArray[np.float32] | None]]


def vulnerability(
    entries: Sequence[MorphEntry],
    embed: Embed,
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """MMPMR, ProdAvg-MMPMR, RMMR and the zero-effort FMR of the same pairs, per threshold.

    Args:
        entries: morphs with their contributors and probes.
        embed: maps image paths to L2-normalised embeddings (None where no face was found).
        thresholds: ``{operating point name: threshold}``.

    Morphs without a face, or with a contributor that has no probe with a face, are skipped and
    counted in ``skipped``.
    """
    paths = sorted({x for e in entries for x in (e.morph, *e.contributors, *(q for ps in e.probes for q in ps))})
    emb = embed(paths)
    morph_scores: list[list[npt.NDArray[np.float64]]] = []
    mated: list[float] = []
    zero_effort: list[float] = []
    skipped = {"morph_no_face": 0, "contributor_no_probe": 0}
    for e in entries:
        m = emb.get(e.morph)
        if m is None:
            skipped["morph_no_face"] += 1
            continue
        per: list[npt.NDArray[np.float64]] = []
        for probes in e.probes:
            vs = [emb[q] for q in probes if emb.get(q) is not None]
            per.append(np.array([float(np.dot(m, v)) for v in vs]))  # type: ignore[arg-type]
        if any(s.size == 0 for s in per) or len(per) < 2:
            skipped["contributor_no_probe"] += 1
            continue
        morph_scores.append(per)
        for k, c in enumerate(e.contributors):
            ref = emb.get(c)
            if ref is None:
                continue
            for j, probes in enumerate(e.probes):
                for q in probes:
                    v = emb.get(q)
                    if v is not None:
                        (mated if j == k else zero_effort).append(float(np.dot(ref, v)))
    if not morph_scores:
        raise ConfigurationError(
            f"no morph could be scored (skipped: {skipped}); each contributor needs a probe image with a face"
        )
    points = []
    for name, t in thresholds.items():
        row: dict[str, Any] = {"operating_point": name, "threshold": float(t)}
        row["mmpmr"] = mmpmr(morph_scores, t)
        row["prodavg_mmpmr"] = prodavg_mmpmr(morph_scores, t)
        if mated:
            fnmr = float(np.mean(np.asarray(mated) < t))
            row["contributor_fnmr"] = fnmr
            row["rmmr"] = rmmr(row["mmpmr"], fnmr)
        if zero_effort:
            row["zero_effort_fmr"] = float(np.mean(np.asarray(zero_effort) >= t))
        points.append(row)
    lowest = [min(float(s.min()) for s in m) for m in morph_scores]
    return {
        "n_morphs": len(morph_scores),
        "n_probe_comparisons": int(sum(s.size for m in morph_scores for s in m)),
        "n_mated": len(mated),
        "n_zero_effort": len(zero_effort),
        "skipped": skipped,
        "median_lowest_morph_score": float(np.median(lowest)),
        "points": points,
    }


def markdown(report: Mapping[str, Any], title: str = "Morph vulnerability") -> str:
    """The vulnerability report as a Markdown table."""
    lines = [
        f"# {title}",
        "",
        f"{report['n_morphs']} morphs, {report['n_probe_comparisons']} morph-probe comparisons, "
        f"{report['n_mated']} contributor mated and {report['n_zero_effort']} zero-effort comparisons; "
        f"skipped: {report['skipped']}.",
        "",
        "| operating point | threshold | MMPMR | ProdAvg-MMPMR | RMMR | contributor FNMR | zero-effort FMR |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    for r in report["points"]:
        lines.append(
            f"| {r['operating_point']} | {r['threshold']:.5f} | {f(r['mmpmr'])} | {f(r['prodavg_mmpmr'])} | "
            f"{f(r.get('rmmr'))} | {f(r.get('contributor_fnmr'))} | {f(r.get('zero_effort_fmr'))} |"
        )
    return "\n".join(lines) + "\n"


def pipeline_embedder(pipeline: Any, *, select: str = "largest", workers: int | None = 1) -> Embed:
    """An ``embed`` callable for :func:`vulnerability` from a :class:`~faceprint.FacePipeline`."""

    def embed(paths: Sequence[str]) -> dict[str, npt.NDArray[np.float32] | None]:
        out: dict[str, npt.NDArray[np.float32] | None] = {}
        paths = list(paths)
        for path, r in zip(
            paths, pipeline.embed_many(paths, select=select, workers=workers, total=len(paths)), strict=True
        ):
            face = r.faces[0] if r.ok and r.faces else None
            out[path] = None if face is None or face.embedding is None else face.embedding.vector
        return out

    return embed
