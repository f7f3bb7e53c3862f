"""Presentation-attack detection measured in the terms of ISO/IEC 30107-3.

Scores are attack scores (:mod:`faceprint.attacks.base`): **higher = more likely an attack**, and
a presentation is classified as an attack when ``score >= threshold``. For a threshold ``t``:

* APCER_PAIS(t) (attack presentation classification error rate, per presentation-attack
  instrument species): share of that species' attack presentations with ``score < t``, i.e.
  classified as bona fide;
* APCER_AP(t) = the maximum of APCER_PAIS over the species (ISO/IEC 30107-3 reports the worst
  species, not the average; ``apcer_max`` here);
* BPCER(t) (bona fide presentation classification error rate): share of bona fide presentations
  with ``score >= t``, i.e. classified as attacks;
* BPCER at APCER = 5 % / 10 % / 20 %, named **BPCER20 / BPCER10 / BPCER5** after the standard's
  BPCERx = BPCER at APCER = 1/x (as ``bob.pad``'s ``bpcer20`` criterion): the threshold is the
  highest one at which *every* species' APCER is ≤ the target (so APCER_AP ≤ target), and the
  BPCER there is reported. **APCERx** likewise = APCER_AP at the lowest threshold where
  BPCER ≤ 1/x;
* D-EER (detection equal error rate): where APCER (all species pooled) and BPCER meet, by
  :func:`faceprint.rates.eer` on the negated scores (bona fide = "mated"); per species too;
* APNRR / BPNRR (attack / bona fide presentation non-response rates): share of presentations
  where no face was found, so the detector gave no score. The error rates above are computed on
  the presentations that got a score, as ISO/IEC 30107-3 does; a non-response is reported
  separately, not counted as an error or a success;
* IAPMR (impostor attack presentation match rate, integrated view): share of attack
  presentations that the *verifier* accepts at its operating point when compared with an
  enrolled bona fide image of the same person (another image of them), and the share accepted
  by the verifier *and* not flagged by the detector.

Confidence intervals are exact Clopper–Pearson intervals at the fixed or calibrated threshold,
as the verification report gives for FNMR@FMR (:func:`faceprint.rates.clopper_pearson`). A rate
at a target needs at least ``3 / target`` presentations of each kind (rule of three); below that
it is not reported and the reason says so.

Score files: Bob's 4-column PAD format (``bob.pad.base``: ``claimed_id real_id test_label
score``): a bona fide line has ``claimed_id == real_id`` (the subject), an attack line has the
subject in ``claimed_id`` and the **PAI species in ``real_id``**; Bob's scores are "higher = bona
fide", so the file holds ``1 − attack score``. :func:`write_bob_pad_scores` and
:func:`read_bob_pad_scores` convert.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, DataFormatError
from ..rates import ScoreCounts, clopper_pearson, min_nonmated_for

if TYPE_CHECKING:
    from ..attacks.base import AttackDetector
    from ..pipeline import FacePipeline

__all__ = [
    "APCER_TARGETS",
    "BPCER_TARGETS",
    "Rate",
    "PadOperatingPoint",
    "PadReport",
    "Presentations",
    "apcer",
    "bpcer",
    "threshold_at_apcer",
    "threshold_at_bpcer",
    "bpcer_at_apcer",
    "apcer_at_bpcer",
    "d_eer",
    "non_response_rate",
    "iapmr",
    "pad_report",
    "score_presentations",
    "iapmr_similarities",
    "evaluate_pad",
    "write_bob_pad_scores",
    "read_bob_pad_scores",
    "pad_name",
]

FloatArray = npt.NDArray[np.float64]

#: APCER targets of the BPCER@APCER figures: BPCER20, BPCER10, BPCER5
APCER_TARGETS: tuple[float, ...] = (0.05, 0.10, 0.20)
#: BPCER targets of the APCER@BPCER figures: APCER100, APCER20, APCER10
BPCER_TARGETS: tuple[float, ...] = (0.01, 0.05, 0.10)


def pad_name(rate: str, target: float) -> str:
    """``("BPCER", 0.05)`` → ``"BPCER20"`` (the rate at the other rate = 1/x)."""
    return f"{rate}{round(1 / target):d}"


def _scores(x: npt.ArrayLike, what: str, *, allow_empty: bool = False) -> FloatArray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0 and not allow_empty:
        raise ConfigurationError(f"no {what} scores given: at least one {what} presentation with a score is needed")
    if not np.isfinite(a).all():
        raise ConfigurationError(f"{what} scores contain NaN or infinity; drop non-responses first (see Presentations)")
    return a


def _species(attacks: Mapping[str, npt.ArrayLike]) -> dict[str, FloatArray]:
    if not attacks:
        raise ConfigurationError("no attack species given: pass {species: attack scores}")
    return {str(k): _scores(v, f"attack ({k})") for k, v in attacks.items()}


def apcer(attack_scores: npt.ArrayLike, threshold: float) -> float:
    """Share of attack presentations classified as bona fide (``score < threshold``)."""
    a = _scores(attack_scores, "attack")
    return float(np.count_nonzero(a < threshold) / a.size)


def bpcer(bona_fide_scores: npt.ArrayLike, threshold: float) -> float:
    """Share of bona fide presentations classified as attacks (``score >= threshold``)."""
    b = _scores(bona_fide_scores, "bona fide")
    return float(np.count_nonzero(b >= threshold) / b.size)


def non_response_rate(n_no_response: int, n_presentations: int) -> float:
    """APNRR or BPNRR: share of presentations without a score (no face found)."""
    if n_presentations <= 0 or not 0 <= n_no_response <= n_presentations:
        raise ConfigurationError(
            f"need 0 <= non-responses <= presentations >= 1, got {n_no_response}/{n_presentations}"
        )
    return n_no_response / n_presentations


def _check_target(target: float, name: str) -> float:
    t = float(target)
    if not 0.0 < t < 1.0:
        raise ConfigurationError(f"{name} target must be in (0, 1), got {target}")
    return t


def threshold_at_apcer(attacks: Mapping[str, npt.ArrayLike], target: float) -> float:
    """Highest threshold at which every species' APCER is ≤ ``target`` (APCER_AP ≤ target).

    For a species with sorted scores a₀ ≤ … ≤ a_{n−1}, at most k = ⌊target·n⌋ may lie below the
    threshold, so its highest admissible threshold is a_k; the minimum over species is returned.
    """
    t = _check_target(target, "APCER")
    out = math.inf
    for a in _species(attacks).values():
        k = math.floor(t * a.size + 1e-9)
        out = min(out, float(np.sort(a)[k]))
    return out


def threshold_at_bpcer(bona_fide: npt.ArrayLike, target: float) -> float:
    """Lowest threshold at which BPCER ≤ ``target``: just above the (k+1)-th highest bona fide
    score, k = ⌊target·m⌋."""
    t = _check_target(target, "BPCER")
    b = np.sort(_scores(bona_fide, "bona fide"))[::-1]
    k = math.floor(t * b.size + 1e-9)
    return float(np.nextafter(b[k], np.inf))


@dataclass(frozen=True)
class Rate:
    """One error rate: ``errors`` of ``n`` presentations, with its Clopper–Pearson interval."""

    rate: float
    errors: int
    n: int
    ci: tuple[float, float] | None = None

    @classmethod
    def of(cls, errors: int, n: int, confidence: float | None) -> Rate:
        ci = None if confidence is None else tuple(clopper_pearson(errors, n, confidence))
        return cls(errors / n, int(errors), int(n), ci)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "errors": self.errors, "n": self.n, "ci": list(self.ci) if self.ci else None}


@dataclass(frozen=True)
class PadOperatingPoint:
    """The rates at one threshold: APCER per species, APCER_AP (their maximum) and BPCER.

    ``name``: ``"default threshold"``, ``"BPCER20"``…; ``target``: the fixed rate (None for a
    given threshold); ``reason`` says why the point is not reported (too few presentations).
    """

    name: str
    threshold: float | None
    apcer: dict[str, Rate]
    bpcer: Rate | None
    target: float | None = None
    reason: str | None = None

    @property
    def apcer_max(self) -> float | None:
        return max(r.rate for r in self.apcer.values()) if self.apcer else None

    @property
    def worst_species(self) -> str | None:
        return max(self.apcer, key=lambda s: self.apcer[s].rate) if self.apcer else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "threshold": self.threshold,
            "apcer": {k: v.to_dict() for k, v in self.apcer.items()},
            "apcer_max": self.apcer_max,
            "worst_species": self.worst_species,
            "bpcer": None if self.bpcer is None else self.bpcer.to_dict(),
            "reason": self.reason,
        }


def rates_at(
    bona_fide: npt.ArrayLike,
    attacks: Mapping[str, npt.ArrayLike],
    threshold: float,
    *,
    name: str = "threshold",
    target: float | None = None,
    confidence: float | None = 0.95,
) -> PadOperatingPoint:
    """APCER per species, APCER_AP and BPCER at ``threshold`` (with CIs unless ``confidence`` is None)."""
    b = _scores(bona_fide, "bona fide")
    species = _species(attacks)
    ap = {s: Rate.of(int(np.count_nonzero(a < threshold)), a.size, confidence) for s, a in species.items()}
    bp = Rate.of(int(np.count_nonzero(b >= threshold)), b.size, confidence)
    return PadOperatingPoint(name, float(threshold), ap, bp, target)


def _too_few(n: int, target: float, what: str) -> str:
    return f"only {n} {what}: at least {int(min_nonmated_for(target))} are needed at {target:.0%} (rule of three)"


def bpcer_at_apcer(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], target: float, *, confidence: float | None = 0.95
) -> PadOperatingPoint:
    """BPCER at the threshold where APCER_AP ≤ ``target`` (:func:`threshold_at_apcer`); BPCERx."""
    name = pad_name("BPCER", target)
    species = _species(attacks)
    few = [s for s, a in species.items() if a.size < min_nonmated_for(target)]
    if few:
        n = min(species[s].size for s in few)
        return PadOperatingPoint(name, None, {}, None, target, _too_few(n, target, f"{few[0]} attack presentations"))
    thr = threshold_at_apcer(species, target)
    return rates_at(bona_fide, species, thr, name=name, target=target, confidence=confidence)


def apcer_at_bpcer(
    bona_fide: npt.ArrayLike, attacks: Mapping[str, npt.ArrayLike], target: float, *, confidence: float | None = 0.95
) -> PadOperatingPoint:
    """APCER per species and APCER_AP at the lowest threshold where BPCER ≤ ``target``; APCERx."""
    name = pad_name("APCER", target)
    b = _scores(bona_fide, "bona fide")
    if b.size < min_nonmated_for(target):
        return PadOperatingPoint(name, None, {}, None, target, _too_few(b.size, target, "bona fide presentations"))
    thr = threshold_at_bpcer(b, target)
    return rates_at(b, attacks, thr, name=name, target=target, confidence=confidence)


@dataclass(frozen=True)
class DetectionEER:
    """D-EER: the rate where APCER and BPCER meet, and the attack-score threshold there."""

    eer: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"eer": self.eer, "threshold": self.threshold}


def d_eer(bona_fide: npt.ArrayLike, attack_scores: npt.ArrayLike) -> DetectionEER:
    """D-EER of bona fide and attack scores (one species, or several pooled)."""
    e = ScoreCounts.from_scores(-_scores(bona_fide, "bona fide"), -_scores(attack_scores, "attack")).eer()
    return DetectionEER(e.eer, -e.threshold)


def pad_curve(bona_fide: npt.ArrayLike, attack_scores: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(APCER, BPCER, thresholds) at every distinct score (for DET plots), from one sort."""
    c = ScoreCounts.from_scores(-_scores(bona_fide, "bona fide"), -_scores(attack_scores, "attack")).error_curve()
    return c.fmr, c.fnmr, -c.thresholds


def iapmr(similarities: npt.ArrayLike, threshold: float, confidence: float | None = 0.95) -> Rate:
    """Share of attack presentations whose comparison score with the enrolled subject is ≥ ``threshold``."""
    s = _scores(similarities, "attack comparison")
    return Rate.of(int(np.count_nonzero(s >= threshold)), s.size, confidence)


# --- presentations: what a detector and a verifier made of a set of images ---------------------


@dataclass(frozen=True, eq=False)
class Presentations:
    """Presentations of one kind (bona fide, or one attack species), one row per image.

    ``keys`` (N,) image labels (path relative to the folder given); ``subjects`` (N,) the
    subject of each (its folder name); ``scores`` (N,) attack scores, NaN where no face was
    found (a non-response) or the image could not be read; ``embeddings`` (N, D) float32 of the
    verifier, NaN rows where none, or None when not computed; ``failures`` key → why no score.
    """

    keys: list[str]
    subjects: list[str]
    scores: FloatArray
    embeddings: npt.NDArray[np.float32] | None = None
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def responded(self) -> FloatArray:
        return self.scores[np.isfinite(self.scores)]

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def n_no_response(self) -> int:
        return int(np.count_nonzero(~np.isfinite(self.scores)))


def _image_files(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, str]]:
    """(file, key) pairs: folders walked recursively for images (sorted), keys relative to the folder."""
    from .protocols.folder import IMAGE_EXTENSIONS

    out: list[tuple[Path, str]] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            out += [(q, q.relative_to(p).as_posix()) for q in files]
        elif p.is_file():
            out.append((p, p.name))
        else:
            raise ConfigurationError(f"{p} is neither an image file nor a folder")
    if not out:
        raise ConfigurationError(f"no images found in {', '.join(str(x) for x in inputs)}")
    return out


def score_presentations(
    inputs: Sequence[str | os.PathLike[str]],
    detector: AttackDetector,
    pipeline: FacePipeline,
    *,
    embed: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
) -> Presentations:
    """Detect the largest face of each image (``pipeline``'s detector), score it with ``detector``
    and, with ``embed``, embed it with the pipeline's embedder (for IAPMR).

    An image without a face, or one that cannot be read, gets a NaN score (a non-response) and
    its reason in ``failures``; the run goes on.
    """
    from ..attacks.texture import largest_face
    from ..errors import ImageError

    files = _image_files(inputs)
    scores = np.full(len(files), np.nan)
    emb: npt.NDArray[np.float32] | None = None
    failures: dict[str, str] = {}
    for i, (path, key) in enumerate(files):
        try:
            img = pipeline.load(path)
        except ImageError as exc:
            failures[key] = f"{type(exc).__name__}: {exc}"
        else:
            det = largest_face(pipeline.detector, img)
            if det is None:
                failures[key] = "no face found"
            else:
                scores[i] = detector.score(img, det).score
                if embed:
                    faces = pipeline.embed_detections(img, [det])
                    if faces and faces[0].embedding is not None:
                        v = np.asarray(faces[0].embedding.vector, np.float32)
                        if emb is None:
                            emb = np.full((len(files), v.size), np.nan, np.float32)
                        emb[i] = v
        if progress is not None:
            progress(i + 1, len(files))
    subjects = [Path(k).parent.name or Path(k).stem for _, k in files]
    return Presentations([k for _, k in files], subjects, scores, emb, failures)


def iapmr_similarities(bona_fide: Presentations, attack: Presentations) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """(cosine score of each attack with an enrolled bona fide image of its subject, the attack's row).

    The reference is the first bona fide image (in key order) of the attack's subject other
    than the image the attack was made from (same file stem); attacks without a face or without
    such a reference are left out. Embeddings are L2-normalised, so the score is a dot product.
    """
    if bona_fide.embeddings is None or attack.embeddings is None:
        raise ConfigurationError("IAPMR needs embeddings of both sets: score them with embed=True")
    refs: dict[str, list[tuple[str, int]]] = {}
    for i, (k, s) in enumerate(zip(bona_fide.keys, bona_fide.subjects, strict=True)):
        if np.isfinite(bona_fide.embeddings[i]).all():
            refs.setdefault(s, []).append((Path(k).stem, i))
    out, rows = [], []
    for j, (k, s) in enumerate(zip(attack.keys, attack.subjects, strict=True)):
        v = attack.embeddings[j]
        ref = next((i for stem, i in refs.get(s, []) if stem != Path(k).stem), None)
        if ref is None or not np.isfinite(v).all():
            continue
        out.append(float(np.dot(v.astype(np.float64), bona_fide.embeddings[ref].astype(np.float64))))
        rows.append(j)
    return np.asarray(out, dtype=np.float64), np.asarray(rows, dtype=np.intp)


# --- the report -------------------------------------------------------------------------------

#: how every figure measured on synthetic attacks is labelled
SYNTHETIC_LABEL = "synthetic attacks"


@dataclass(frozen=True, eq=False)
class PadReport:
    """Every ISO/IEC 30107-3 figure of one detector on one set of presentations (:meth:`to_dict`)."""

    detector: str
    kind: str
    threshold: float
    n_bona_fide: int
    bona_fide_no_response: int
    attacks: dict[str, dict[str, Any]]
    at_threshold: PadOperatingPoint
    bpcer_at_apcer: tuple[PadOperatingPoint, ...]
    apcer_at_bpcer: tuple[PadOperatingPoint, ...]
    d_eer: DetectionEER
    d_eer_per_species: dict[str, DetectionEER]
    confidence: float | None
    synthetic_species: tuple[str, ...] = ()
    iapmr: dict[str, Any] | None = None
    curves: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """``"synthetic attacks"`` when any species is synthetic, else ``"attacks"``."""
        return SYNTHETIC_LABEL if self.synthetic_species else "attacks"

    @property
    def bpnrr(self) -> float:
        return non_response_rate(self.bona_fide_no_response, self.n_bona_fide)

    def apnrr(self, species: str) -> float:
        a = self.attacks[species]
        return non_response_rate(a["no_response"], a["n"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "synthetic_species": list(self.synthetic_species),
            "detector": self.detector,
            "kind": self.kind,
            "score_direction": "higher = attack; attack when score >= threshold",
            "threshold": self.threshold,
            "confidence": self.confidence,
            "bona_fide": {"n": self.n_bona_fide, "no_response": self.bona_fide_no_response, "bpnrr": self.bpnrr},
            "attacks": {s: {**a, "apnrr": self.apnrr(s)} for s, a in self.attacks.items()},
            "at_threshold": self.at_threshold.to_dict(),
            "bpcer_at_apcer": [p.to_dict() for p in self.bpcer_at_apcer],
            "apcer_at_bpcer": [p.to_dict() for p in self.apcer_at_bpcer],
            "d_eer": {"pooled": self.d_eer.to_dict(), **{s: e.to_dict() for s, e in self.d_eer_per_species.items()}},
            "iapmr": self.iapmr,
        }


def pad_report(
    bona_fide: Presentations,
    attacks: Mapping[str, Presentations],
    *,
    detector: str,
    threshold: float,
    kind: str = "presentation",
    confidence: float | None = 0.95,
    synthetic: Sequence[str] = (),
    iapmr: dict[str, Any] | None = None,
    apcer_targets: Sequence[float] = APCER_TARGETS,
    bpcer_targets: Sequence[float] = BPCER_TARGETS,
) -> PadReport:
    """The figures of :class:`PadReport` from scored presentations (non-responses are NaN scores)."""
    b = bona_fide.responded
    a = {s: p.responded for s, p in attacks.items()}
    empty = [s for s, x in a.items() if x.size == 0]
    if b.size == 0 or empty:
        what = "bona fide" if b.size == 0 else f"{empty[0]} attack"
        raise ConfigurationError(f"no {what} presentation got a score (no face found in any): nothing to measure")
    pooled = np.concatenate(list(a.values()))
    return PadReport(
        detector=detector,
        kind=kind,
        threshold=float(threshold),
        n_bona_fide=bona_fide.n,
        bona_fide_no_response=bona_fide.n_no_response,
        attacks={
            s: {"n": p.n, "no_response": p.n_no_response, "synthetic": s in synthetic} for s, p in attacks.items()
        },
        at_threshold=rates_at(b, a, threshold, name="default threshold", confidence=confidence),
        bpcer_at_apcer=tuple(bpcer_at_apcer(b, a, t, confidence=confidence) for t in apcer_targets),
        apcer_at_bpcer=tuple(apcer_at_bpcer(b, a, t, confidence=confidence) for t in bpcer_targets),
        d_eer=d_eer(b, pooled),
        d_eer_per_species={s: d_eer(b, x) for s, x in a.items()},
        confidence=confidence,
        synthetic_species=tuple(s for s in attacks if s in synthetic),
        iapmr=iapmr,
        curves={s: pad_curve(b, x)[:2] for s, x in a.items()},
    )


def integrated_iapmr(
    bona_fide: Presentations,
    attacks: Mapping[str, Presentations],
    *,
    threshold: float,
    pad_threshold: float,
    verifier: str,
    operating_point: str,
    confidence: float | None = 0.95,
) -> dict[str, Any]:
    """IAPMR per species at the verifier's ``threshold``: accepted by the verifier alone, and
    accepted by the verifier *and* not flagged by the detector (score < ``pad_threshold``)."""
    per: dict[str, Any] = {}
    for s, p in attacks.items():
        sims, rows = iapmr_similarities(bona_fide, p)
        if sims.size == 0:
            per[s] = {"n": 0, "reason": "no attack with a face and another bona fide image of its subject"}
            continue
        accepted = sims >= threshold
        passed = accepted & (p.scores[rows] < pad_threshold)
        per[s] = {
            "n": int(sims.size),
            "iapmr": Rate.of(int(accepted.sum()), sims.size, confidence).to_dict(),
            "iapmr_with_pad": Rate.of(int(passed.sum()), sims.size, confidence).to_dict(),
        }
    return {"verifier": verifier, "operating_point": operating_point, "threshold": threshold, "species": per}


def evaluate_pad(
    detector: AttackDetector,
    bona_fide: Sequence[str | os.PathLike[str]],
    attacks: Mapping[str, Sequence[str | os.PathLike[str]]],
    *,
    pipeline: FacePipeline | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    iapmr: bool = False,
    operating_point: str = "fmr=0.001",
    confidence: float | None = 0.95,
    command: str = "",
    progress: Callable[[int, int | None], None] | None = None,
) -> PadReport:
    """Score bona fide and attack images (files or folders; species → inputs) and report.

    ``pipeline`` (default: ``FacePipeline()``) finds the largest face of each image; with
    ``iapmr`` it also embeds them and compares each attack with another bona fide image of its
    subject (folder name) at the verifier's ``operating_point``. Species read from a folder with
    a ``SYNTHETIC.json`` manifest (:func:`faceprint.attacks.synthetic.build_attack_set`) are
    labelled "synthetic attacks". With ``out_dir`` the report folder is written
    (:func:`faceprint.evaluation.pad_report.write_pad_report`).
    """
    from ..attacks.synthetic import read_manifest

    if pipeline is None:
        from ..pipeline import FacePipeline

        pipeline = FacePipeline()
    if not attacks:
        raise ConfigurationError("no attack presentations given: pass at least one species")
    synthetic = [s for s, ins in attacks.items() if any(read_manifest(p) is not None for p in ins if Path(p).is_dir())]
    bona = score_presentations(bona_fide, detector, pipeline, embed=iapmr, progress=progress)
    atk = {
        s: score_presentations(ins, detector, pipeline, embed=iapmr, progress=progress) for s, ins in attacks.items()
    }
    name = getattr(detector, "detector", None) or detector.name
    integrated = None
    if iapmr:
        point = pipeline.operating_point(operating_point)
        integrated = integrated_iapmr(
            bona,
            atk,
            threshold=point.threshold,
            pad_threshold=detector.threshold,
            verifier=pipeline.model_tag,
            operating_point=operating_point,
            confidence=confidence,
        )
    report = pad_report(
        bona,
        atk,
        detector=str(name),
        threshold=detector.threshold,
        kind=detector.kind,
        confidence=confidence,
        synthetic=synthetic,
        iapmr=integrated,
    )
    if out_dir is not None:
        from .pad_report import write_pad_report

        write_pad_report(report, bona, atk, out_dir, command=command)
    return report


# --- Bob's 4-column PAD score files ----------------------------------------------------------


def write_bob_pad_scores(
    path: str | os.PathLike[str], bona_fide: Presentations, attacks: Mapping[str, Presentations]
) -> Path:
    """Write Bob's PAD score file (see the module doc); non-responses are left out."""
    from .report.document import write_text

    def token(x: str, what: str) -> str:
        if not x or any(c.isspace() for c in x):
            raise DataFormatError(f"{what} {x!r} is empty or contains whitespace, which Bob's format cannot hold")
        return x

    lines = []
    for p, species in [(bona_fide, None), *[(v, k) for k, v in attacks.items()]]:
        for key, subj, s in zip(p.keys, p.subjects, p.scores, strict=True):
            if np.isfinite(s):
                real = token(subj, "subject") if species is None else token(species, "species")
                lines.append(f"{token(subj, 'subject')} {real} {token(key, 'image key')} {1.0 - float(s)!r}\n")
    out = Path(path)
    write_text(out, "".join(lines))
    return out


def read_bob_pad_scores(path: str | os.PathLike[str]) -> tuple[Presentations, dict[str, Presentations]]:
    """Read Bob's PAD score file back: (bona fide, species → attacks), attack scores = 1 − Bob's score."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read PAD score file {p}: {exc}") from None
    rows: dict[str | None, tuple[list[str], list[str], list[float]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if len(f) != 4:
            raise DataFormatError(f"{p}:{n}: expected 4 columns (claimed_id real_id test_label score), got {len(f)}")
        try:
            score = 1.0 - float(f[3])
        except ValueError:
            raise DataFormatError(f"{p}:{n}: score {f[3]!r} is not a number") from None
        if not math.isfinite(score):
            raise DataFormatError(f"{p}:{n}: score {f[3]!r} is not finite")
        keys, subjects, scores = rows.setdefault(None if f[0] == f[1] else f[1], ([], [], []))
        keys.append(f[2])
        subjects.append(f[0])
        scores.append(score)

    def pres(k: str | None) -> Presentations:
        keys, subjects, scores = rows.get(k, ([], [], []))
        return Presentations(keys, subjects, np.asarray(scores, np.float64))

    return pres(None), {k: pres(k) for k in rows if k is not None}
