"""What an evaluation produced: result types, ready for JSON (``to_dict``) and for a report.

:class:`EvaluationResult` holds everything a report shows: the scores (NaN where a side failed to
acquire a face), failure-to-acquire/enrol counts, the :class:`~.metrics.VerificationReport`
(EER and FNMR at each FMR target with confidence intervals, AUC, DET curve), the decision
threshold and the accuracy and system-level FMR/FNMR (failures counted as non-matches, ISO/IEC
19795-1) at it, k-fold accuracy when the protocol has folds, per-group error rates when pairs
carry groups, and CMC / FPIR / FNIR for identification protocols. Its ``provenance`` records the
pipeline settings, model ids and versions, dataset checksums and software versions
(:mod:`.provenance`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..rates import CMCResult, FNIRAtFPIR, OpenSetCurve
from .edc import EDCReport
from .fairness import GroupErrorRates
from .metrics import KFoldAccuracy, SystemErrorRates, VerificationReport
from .scorefiles import ScoreTable

__all__ = [
    "DEFAULT_FPIR_TARGETS",
    "FailureCounts",
    "DecisionThreshold",
    "Accuracy",
    "ScoreSetResult",
    "GalleryResult",
    "IdentificationResult",
    "EvaluationResult",
]

#: FPIR targets of open-set identification reports.
DEFAULT_FPIR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
#: Candidates kept per probe in an identification report's scores file.
CANDIDATES_PER_PROBE = 20


@dataclass(frozen=True)
class FailureCounts:
    """Failures to acquire (FTA) and enrol (FTE), ISO/IEC 19795-1, counted so that they add up.

    Per comparison: ``comparisons`` = scored + ``failed_mated`` + ``failed_nonmated`` (a
    comparison whose side gave no template has no score, NaN). Per image (protocol runs; None
    for score files, which do not say why a comparison failed): ``images`` = acquired +
    ``images_no_face`` + ``images_error``. Template protocols (IJB, ``unit="template"``) also
    count the templates used in comparisons (a template fails when none of its images did).

    ``references``/``probes`` are the distinct units on side ``a`` (reference, FTE) and side
    ``b`` (probe, FTA) of the pairs, as in the score files - given only when the two sides are
    disjoint sets. In an all-pairs protocol every image is reference and probe at once, so
    per-side counts would not add up to the images; the per-image counts are what counts.
    """

    comparisons: int
    failed_mated: int
    failed_nonmated: int
    unit: str = "image"
    images: int | None = None
    images_no_face: int | None = None
    images_error: int | None = None
    references: int | None = None
    references_failed: int | None = None
    probes: int | None = None
    probes_failed: int | None = None
    templates: int | None = None
    templates_failed: int | None = None

    @property
    def failed(self) -> int:
        """Comparisons with a side that failed to acquire (no score)."""
        return self.failed_mated + self.failed_nonmated

    @property
    def scored(self) -> int:
        """Comparisons with a score: ``comparisons - failed``."""
        return self.comparisons - self.failed

    @property
    def images_failed(self) -> int | None:
        """Images without a template: no face found, or unreadable."""
        if self.images is None:
            return None
        return int(self.images_no_face or 0) + int(self.images_error or 0)

    @property
    def images_acquired(self) -> int | None:
        """Images with a template: ``images - images_failed``."""
        return None if self.images is None else self.images - int(self.images_failed or 0)

    @property
    def image_fta_rate(self) -> float | None:
        """Share of the protocol's images that failed to acquire."""
        if not self.images:
            return None
        return int(self.images_failed or 0) / self.images

    @property
    def fte_rate(self) -> float | None:
        """Share of distinct references that failed (failure-to-enrol rate)."""
        if not self.references or self.references_failed is None:
            return None
        return self.references_failed / self.references

    @property
    def fta_rate(self) -> float | None:
        """Share of distinct probes that failed (failure-to-acquire rate)."""
        if not self.probes or self.probes_failed is None:
            return None
        return self.probes_failed / self.probes

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(
            failed=self.failed,
            scored=self.scored,
            images_failed=self.images_failed,
            images_acquired=self.images_acquired,
            image_fta_rate=self.image_fta_rate,
            fte_rate=self.fte_rate,
            fta_rate=self.fta_rate,
        )
        return d


@dataclass(frozen=True)
class DecisionThreshold:
    """The threshold decisions are made at: ``source`` is ``"given"``, ``"calibration"``,
    ``"operating-point"`` or ``"eer"``; ``description`` says where it comes from."""

    value: float
    source: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": _finite(self.value), "source": self.source, "description": self.description}


@dataclass(frozen=True)
class Accuracy:
    """Share of correct decisions at ``threshold``.

    ``value``: over every attempted comparison, a failed one counting as a non-match (correct for
    non-mated pairs, wrong for mated ones); ``comparison_value``: over the scored comparisons only.
    """

    value: float
    comparison_value: float
    threshold: float
    n_correct: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "comparison_value": _finite(self.comparison_value),
            "threshold": _finite(self.threshold),
            "n_correct": self.n_correct,
            "n": self.n,
        }


@dataclass(frozen=True, eq=False)
class ScoreSetResult:
    """A second score set of a protocol, e.g. LFW View 1 DevTrain, where the threshold was chosen."""

    name: str
    scores: ScoreTable
    failures: FailureCounts
    verification: VerificationReport
    accuracy: Accuracy | None
    system: SystemErrorRates | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "failures": self.failures.to_dict(),
            "verification": self.verification.to_dict(),
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "system": None if self.system is None else _clean(self.system.to_dict()),
        }


@dataclass(frozen=True, eq=False)
class GalleryResult:
    """1:N results against one gallery. Probe and gallery templates without a face are left out
    of the rates and counted in ``probes_failed`` / ``gallery_failed``."""

    gallery: str
    n_probes: int
    n_mated_probes: int
    n_nonmated_probes: int
    probes_failed: int
    gallery_size: int
    gallery_failed: int
    cmc: CMCResult | None
    open_set: OpenSetCurve | None
    fnir_at_fpir: tuple[FNIRAtFPIR, ...]

    def to_dict(self) -> dict[str, Any]:
        os_curve = None
        if self.open_set is not None:
            c = self.open_set
            k = _thin_index(c.thresholds.size, 1000)
            os_curve = {
                "rank": c.rank,
                "thresholds": c.thresholds[k].tolist(),
                "fpir": c.fpir[k].tolist(),
                "fnir": c.fnir[k].tolist(),
                "n_mated": c.n_mated,
                "n_nonmated": c.n_nonmated,
            }
        return {
            "gallery": self.gallery,
            "n_probes": self.n_probes,
            "n_mated_probes": self.n_mated_probes,
            "n_nonmated_probes": self.n_nonmated_probes,
            "probes_failed": self.probes_failed,
            "gallery_size": self.gallery_size,
            "gallery_failed": self.gallery_failed,
            "cmc": None if self.cmc is None else self.cmc.to_dict(),
            "rank1": None if self.cmc is None else self.cmc.rate_at(1),
            "rank5": None if self.cmc is None else self.cmc.rate_at(5),
            "open_set": os_curve,
            "fnir_at_fpir": [dataclasses.asdict(p) for p in self.fnir_at_fpir],
        }


@dataclass(frozen=True, eq=False)
class IdentificationResult:
    """1:N results per gallery (IJB-B/C: two disjoint galleries)."""

    galleries: dict[str, GalleryResult]

    def to_dict(self) -> dict[str, Any]:
        return {"galleries": {k: v.to_dict() for k, v in self.galleries.items()}}


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything one evaluation produced; :func:`write_report` turns it into a folder.

    Attributes:
        protocol: the protocol (or score file) name.
        model: the embedding model tag ``model_id@version``, or None for a score file.
        settings: pipeline settings that change the embeddings (detector, selection, embedder…).
        scores: every attempted comparison (NaN where a side failed to acquire); for an
            identification protocol, the top candidates of each probe plus its mate.
        failures: FTA / FTE counts.
        verification: EER, FNMR@FMR, AUC, DET (None for identification-only results).
        threshold: the decision threshold and where it came from.
        accuracy, system: accuracy and system-level FMR/FNMR at ``threshold``.
        kfold: k-fold accuracy ± std when the protocol has folds (LFW View 2, InsightFace .bin).
        fairness: per-group FMR/FNMR at ``threshold`` when pairs carry groups.
        identification: CMC and FPIR/FNIR for identification protocols.
        calibration: the score set the threshold was chosen on (LFW View 1 DevTrain), if any.
        provenance: models, dataset checksums, software versions, execution details.
        timing: seconds spent embedding, scoring, computing metrics, and in all.
        quality: the EDC of image quality scores over these comparisons (``eval run --quality``).
    """

    protocol: str
    model: str | None
    settings: dict[str, Any]
    scores: ScoreTable
    failures: FailureCounts
    verification: VerificationReport | None
    threshold: DecisionThreshold | None = None
    accuracy: Accuracy | None = None
    system: SystemErrorRates | None = None
    kfold: KFoldAccuracy | None = None
    fairness: GroupErrorRates | None = None
    identification: IdentificationResult | None = None
    calibration: ScoreSetResult | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    quality: EDCReport | None = None

    @property
    def kind(self) -> str:
        return "identification" if self.identification is not None else "verification"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the body of ``metrics.json``)."""
        return {
            "protocol": self.protocol,
            "kind": self.kind,
            "model": self.model,
            "settings": self.settings,
            "n_comparisons": len(self.scores),
            "failures": self.failures.to_dict(),
            "threshold": None if self.threshold is None else self.threshold.to_dict(),
            "verification": None if self.verification is None else self.verification.to_dict(),
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "system": None if self.system is None else _clean(self.system.to_dict()),
            "kfold": None if self.kfold is None else self.kfold.to_dict(),
            "fairness": None if self.fairness is None else self.fairness.to_dict(),
            "identification": None if self.identification is None else self.identification.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "provenance": self.provenance,
            "timing": self.timing,
            **({} if self.quality is None else {"quality": self.quality.to_dict()}),
        }


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf floats → None, so the JSON is strict."""
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in d.items()}


def _thin_index(n: int, max_points: int) -> npt.NDArray[np.intp]:
    if n <= max_points:
        return np.arange(n, dtype=np.intp)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.intp))
