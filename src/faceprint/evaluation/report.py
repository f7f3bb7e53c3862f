"""Evaluation results and report folders: a protocol run (or a score file) → numbers a reader can check.

Data flow::

    protocol ──run_protocol──▶ embed (cached) ──▶ score ──▶ ScoreTable ─┐
    score file ──read_scores──────────────────────────────▶ ScoreTable ─┴─evaluate_scores──▶ EvaluationResult
    EvaluationResult ──write_report──▶ folder: report.md, report.html, metrics.json, scores.csv, *.png

:class:`EvaluationResult` holds everything a report shows: the scores (NaN where a side failed to
acquire a face), failure-to-acquire/enrol counts, the :class:`~.metrics.VerificationReport`
(EER and FNMR at each FMR target with confidence intervals, AUC, DET curve), the decision
threshold and the accuracy and system-level FMR/FNMR (failures counted as non-matches, ISO/IEC
19795-1) at it, k-fold accuracy when the protocol has folds, per-group error rates when pairs
carry groups, and CMC / FPIR / FNIR for identification protocols. Its ``provenance`` records the
pipeline settings, model ids and versions, dataset checksums and software versions.

The decision threshold is, in this order: the one given; the best-accuracy threshold on a
calibration score set (LFW View 1: chosen on ``pairsDevTrain.txt``, applied to
``pairsDevTest.txt``); the embedding model's calibrated ``fmr=0.001`` operating point; the EER
threshold of the evaluated scores themselves (optimistic - the report says so).

:func:`write_report` imports matplotlib (through :mod:`.plots`); nothing else here does.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import importlib.metadata
import json
import logging
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..types import Embedding
from .cache import EmbeddingCache
from .fairness import GroupErrorRates, group_error_rates
from .metrics import (
    DEFAULT_FMR_TARGETS,
    CMCResult,
    FNIRAtFPIR,
    KFoldAccuracy,
    OpenSetCurve,
    SystemErrorRates,
    VerificationReport,
    _best_accuracy_threshold,
    cmc,
    fnir_at_fpir,
    fpir_fnir,
    kfold_accuracy,
    system_error_rates,
)
from .protocols import (
    IdentificationProtocol,
    ImageRef,
    VerificationProtocol,
    _read_labels,
    folder_protocol,
    read_csv_protocol,
    read_ijb_identification,
    read_ijb_verification,
    read_insightface_bin,
    read_lfw_protocol,
)
from .runner import EmbeddingResults, PipelineSpec, ProgressHook, embed_images, score_identification, score_protocol
from .scorefiles import ScoreTable, write_scores

__all__ = [
    "PROTOCOL_KINDS",
    "DEFAULT_FPIR_TARGETS",
    "FailureCounts",
    "DecisionThreshold",
    "Accuracy",
    "ScoreSetResult",
    "GalleryResult",
    "IdentificationResult",
    "EvaluationResult",
    "ProtocolSource",
    "open_protocol",
    "evaluate_scores",
    "evaluate_identification",
    "run_protocol",
    "write_report",
    "headline",
    "software_versions",
    "file_sha256",
    "image_list_digest",
]

log = logging.getLogger(__name__)

#: ``--protocol`` values of ``faceprint eval run`` and :func:`open_protocol`.
PROTOCOL_KINDS: tuple[str, ...] = ("lfw", "bin", "ijb", "folder", "csv")
#: FPIR targets of open-set identification reports.
DEFAULT_FPIR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3)
#: Candidates kept per probe in an identification report's scores file.
CANDIDATES_PER_PROBE = 20

ImageDigestMethod = Literal["content", "stat"]

_DIGEST_METHODS = {
    "content": "sha256 over the sorted lines '<image key>\\t<sha256 of the image bytes>\\n' of every protocol "
    "image (a content hash: moving or copying the dataset does not change it, editing an image does)",
    "stat": "sha256 over the sorted lines '<image key>\\t<size in bytes>\\t<mtime in ns>\\n' of every protocol "
    "image (file metadata only: fast, but a copy with new mtimes changes it)",
}


# --- result types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureCounts:
    """Failures to acquire (FTA, probe side) and enrol (FTE, reference side), ISO/IEC 19795-1.

    A comparison whose probe or reference gave no template has no score (NaN). Side ``a`` of a
    protocol pair is the reference, side ``b`` the probe (as in the score files). ``unit`` is
    ``"image"`` or ``"template"`` (IJB). Image-level fields are None for score files, which do
    not say why a comparison failed.
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

    @property
    def failed(self) -> int:
        return self.failed_mated + self.failed_nonmated

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
        d.update(failed=self.failed, fte_rate=self.fte_rate, fta_rate=self.fta_rate)
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
        }


# --- small helpers ----------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf floats → None, so the JSON is strict."""
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in d.items()}


def _thin_index(n: int, max_points: int) -> npt.NDArray[np.intp]:
    if n <= max_points:
        return np.arange(n, dtype=np.intp)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.intp))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def image_list_digest(images: Sequence[ImageRef], method: ImageDigestMethod = "content") -> dict[str, Any]:
    """A digest over a protocol's image list: ``{"count", "missing", "method", "description", "sha256"}``.

    ``method="content"`` hashes every image's bytes (in-memory images too); ``"stat"`` only the
    file size and mtime (in-memory images: their bytes). Missing files are listed as such.
    """
    if method not in _DIGEST_METHODS:
        raise ConfigurationError(f"image digest method must be 'content' or 'stat', got {method!r}")
    lines: list[str] = []
    missing = 0
    for ref in images:
        try:
            if ref.path is not None and method == "stat":
                st = os.stat(ref.path)
                lines.append(f"{ref.key}\t{st.st_size}\t{st.st_mtime_ns}\n")
            else:
                lines.append(f"{ref.key}\t{hashlib.sha256(ref.read_bytes()).hexdigest()}\n")
        except OSError:
            missing += 1
            lines.append(f"{ref.key}\tmissing\n")
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode("utf-8"))
    return {
        "count": len(lines),
        "missing": missing,
        "method": method,
        "description": _DIGEST_METHODS[method],
        "sha256": h.hexdigest(),
    }


def _dist_version(*names: str) -> str | None:
    for n in names:
        try:
            v = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            continue
        return v if n == names[0] else f"{v} ({n})"
    return None


def software_versions() -> dict[str, str | None]:
    """Versions of faceprint, its numeric and model runtimes, Python and the platform (no imports)."""
    from .. import __version__

    return {
        "faceprint": __version__,
        "numpy": _dist_version("numpy"),
        "scipy": _dist_version("scipy"),
        "onnxruntime": _dist_version("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
        "dlib": _dist_version("dlib", "dlib-bin"),
        "matplotlib": _dist_version("matplotlib"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _model_entries(names: Sequence[str]) -> list[dict[str, Any]]:
    """Manifest entries (version, file sha256, licence) of the models these backend names use."""
    from ..models import manifest

    specs = manifest()
    wanted: list[str] = []
    for name in names:
        if not name:
            continue
        parts = name.split("-")
        cands = [name] + [f"{parts[0]}-{p}" for p in parts[1:]]
        if name.startswith("dlib-") and any(specs.get(c) and specs[c].kind == "detector" for c in cands):
            cands.append("dlib-5pt")  # dlib detectors place 5 landmarks with it
        wanted += [c for c in cands if c in specs and c not in wanted]
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "version": s.version,
            "licence": s.licence,
            "files": [{"filename": f.filename, "sha256": f.sha256} for f in s.files],
        }
        for s in (specs[n] for n in wanted)
    ]


def _model_info(model: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    model_id = model.split("@", 1)[0] if model else ""
    det = str(settings.get("detector") or "")
    return {
        "embedding_model": model,
        "embedder_backend": settings.get("embedder"),
        "detector_backend": det or None,
        "prealigned": settings.get("prealigned"),
        "manifest": _model_entries([model_id, str(settings.get("embedder") or ""), det]),
    }


def _operating_point_threshold(model: str | None, name: str = "fmr=0.001") -> DecisionThreshold | None:
    """The model's calibrated threshold, if the manifest has this exact model version."""
    if not model or "@" not in model:
        return None
    from ..models import manifest

    model_id, version = model.split("@", 1)
    spec = manifest().get(model_id)
    if spec is None or spec.kind != "embedder" or name not in spec.operating_points:
        return None
    expected = f"{spec.version}-{spec.files[0].sha256[:12]}" if spec.files else spec.version
    if version != expected:
        return None
    op = spec.operating_points[name]
    return DecisionThreshold(
        op.threshold,
        "operating-point",
        f"{model_id}'s calibrated operating point {name} (FMR {op.fmr:g}, FNMR {op.fnmr:.4f} on {op.calibrated_on})",
    )


# --- evaluation from scores ---------------------------------------------------------------------------


def _failures_from_table(table: ScoreTable) -> FailureCounts:
    nan = np.isnan(table.score)
    return FailureCounts(
        comparisons=len(table),
        failed_mated=int(np.count_nonzero(nan & table.mated)),
        failed_nonmated=int(np.count_nonzero(nan & ~table.mated)),
    )


def _accuracy(table: ScoreTable, threshold: float) -> Accuracy:
    s, y = table.score, table.mated
    ok = ~np.isnan(s)
    match = np.zeros(len(s), dtype=bool)
    match[ok] = s[ok] >= threshold
    correct = match == y
    n_ok = int(ok.sum())
    return Accuracy(
        value=float(correct.mean()) if len(s) else math.nan,
        comparison_value=float(correct[ok].mean()) if n_ok else math.nan,
        threshold=float(threshold),
        n_correct=int(correct.sum()),
        n=len(s),
    )


def _verification_report(
    table: ScoreTable,
    *,
    fmr_targets: Sequence[float],
    confidence: float | None,
    n_bootstrap: int,
    seed: int | None,
) -> VerificationReport:
    ok = ~np.isnan(table.score)
    y = table.mated[ok]
    s = table.score[ok]
    if not y.any() or y.all():
        raise ConfigurationError(
            f"need scored mated and non-mated comparisons; have {int(y.sum())} mated and {int((~y).sum())} non-mated "
            f"({int((~ok).sum())} comparisons failed to acquire)"
        )
    if confidence is None or n_bootstrap < 2:
        return VerificationReport.from_scores(s[y], s[~y], fmr_targets=fmr_targets, confidence=confidence)
    if table.probe_subject is not None:
        units = table.probe_subject[ok]
        unit_note = None
    else:
        units = np.arange(len(s)).astype(str)
        unit_note = (
            "comparison-level percentile bootstrap (the scores carry no subject ids; comparisons of one person "
            f"are correlated, so this interval is too narrow), {n_bootstrap} replicates, {confidence:.0%}, seed={seed}"
        )
    rep = VerificationReport.from_scores(
        s[y],
        s[~y],
        fmr_targets=fmr_targets,
        confidence=confidence,
        mated_subjects=units[y],
        nonmated_subjects=units[~y],
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    if unit_note is None:
        return rep
    pts = tuple(p if p.fnmr is None else dataclasses.replace(p, ci_method=unit_note) for p in rep.fnmr_at_fmr)
    return dataclasses.replace(rep, eer=dataclasses.replace(rep.eer, ci_method=unit_note), fnmr_at_fmr=pts)


def _kfold(table: ScoreTable, folds: npt.ArrayLike) -> KFoldAccuracy:
    """k-fold accuracy; a failed comparison gets a score below every real one (a non-match)."""
    s = table.score.copy()
    bad = np.isnan(s)
    if bad.any():
        floor = float(np.nanmin(s)) if (~bad).any() else 0.0
        s[bad] = floor - 1.0
    return kfold_accuracy(s, table.mated, folds)


def _fairness(table: ScoreTable, threshold: float) -> GroupErrorRates | None:
    if table.group is None or not math.isfinite(threshold):
        return None
    ok = ~np.isnan(table.score)
    g = table.group[ok]
    parts = np.char.partition(g.astype(str), "|")
    ga = parts[:, 0]
    gb = np.where(parts[:, 1] == "|", parts[:, 2], parts[:, 0])
    try:
        return group_error_rates(table.score[ok], table.mated[ok], threshold, ga, gb)
    except ConfigurationError as exc:
        log.warning("no per-group error rates: %s", exc)
        return None


def _choose_threshold(
    threshold: float | None,
    calibration: ScoreTable | None,
    calibration_name: str,
    model: str | None,
    report: VerificationReport,
) -> DecisionThreshold:
    if threshold is not None:
        if not math.isfinite(threshold):
            raise ConfigurationError(f"threshold must be a finite number, got {threshold}")
        return DecisionThreshold(float(threshold), "given", "given by the user")
    if calibration is not None:
        ok = ~np.isnan(calibration.score)
        s, y = calibration.score[ok], calibration.mated[ok]
        if y.any() and (~y).any():
            t = _best_accuracy_threshold(s, y)
            return DecisionThreshold(
                t,
                "calibration",
                f"the threshold of best accuracy on {calibration_name} ({int(ok.sum())} scored comparisons; "
                "midpoint between adjacent scores)",
            )
    op = _operating_point_threshold(model)
    if op is not None:
        return op
    return DecisionThreshold(
        report.eer.threshold,
        "eer",
        "the EER threshold of these same scores (chosen on the evaluated data, so accuracy and system rates at it "
        "are optimistic)",
    )


def evaluate_scores(
    table: ScoreTable,
    *,
    name: str = "scores",
    model: str | None = None,
    settings: Mapping[str, Any] | None = None,
    folds: npt.ArrayLike | None = None,
    calibration: ScoreTable | None = None,
    calibration_name: str = "the calibration set",
    threshold: float | None = None,
    failures: FailureCounts | None = None,
    calibration_failures: FailureCounts | None = None,
    fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
    confidence: float | None = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    source_files: Sequence[str | os.PathLike[str]] = (),
) -> EvaluationResult:
    """Evaluate 1:1 comparison scores from any system (``table``: e.g. :func:`~.scorefiles.read_scores`).

    NaN scores are comparisons where a side failed to acquire: left out of the error curves,
    counted as non-matches in the accuracy and system-level FMR/FNMR. ``folds`` (one id per row)
    adds k-fold accuracy; ``calibration`` is a second score table the decision threshold is
    chosen on (best accuracy), reported beside the main one. ``table.group`` adds per-group
    error rates at the decision threshold. ``source_files`` are hashed into the provenance.
    """
    t0 = time.perf_counter()
    report = _verification_report(
        table, fmr_targets=fmr_targets, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
    )
    thr = _choose_threshold(threshold, calibration, calibration_name, model, report)
    failed = np.isnan(table.score)
    system = system_error_rates(table.score, table.mated, thr.value, failed) if math.isfinite(thr.value) else None
    kf = None
    if folds is not None:
        f = np.asarray(folds)
        if f.shape != (len(table),):
            raise ConfigurationError(f"folds needs one id per comparison ({len(table)}), got shape {f.shape}")
        if np.unique(f).size >= 2:
            kf = _kfold(table, f)
    cal = None
    if calibration is not None:
        cal_rep = _verification_report(
            calibration, fmr_targets=fmr_targets, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
        )
        cal_failed = np.isnan(calibration.score)
        cal = ScoreSetResult(
            name=calibration_name,
            scores=calibration,
            failures=calibration_failures or _failures_from_table(calibration),
            verification=cal_rep,
            accuracy=_accuracy(calibration, thr.value),
            system=system_error_rates(calibration.score, calibration.mated, thr.value, cal_failed)
            if math.isfinite(thr.value)
            else None,
        )
    prov: dict[str, Any] = {
        "models": _model_info(model, settings or {}),
        "dataset": {
            "files": [
                {"path": os.fspath(p), "sha256": file_sha256(p), "bytes": os.path.getsize(p)} for p in source_files
            ]
        },
        "software": software_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return EvaluationResult(
        protocol=name,
        model=model,
        settings=dict(settings or {}),
        scores=table,
        failures=failures or _failures_from_table(table),
        verification=report,
        threshold=thr,
        accuracy=_accuracy(table, thr.value),
        system=system,
        kfold=kf,
        fairness=_fairness(table, thr.value),
        calibration=cal,
        provenance=prov,
        timing={"metrics_s": time.perf_counter() - t0},
    )


def _gallery_result(
    name: str,
    matrix: npt.NDArray[np.float64],
    probe_subjects: npt.NDArray[np.str_],
    gallery_subjects: npt.NDArray[np.str_],
    fpir_targets: Sequence[float],
    max_rank: int,
) -> GalleryResult:
    pok = ~np.isnan(matrix).all(axis=1)
    gok = ~np.isnan(matrix).all(axis=0)
    m = matrix[np.ix_(pok, gok)]
    ps, gs = probe_subjects[pok], gallery_subjects[gok]
    has_mate = np.isin(ps, gs)
    res_cmc = None
    curve = None
    points: tuple[FNIRAtFPIR, ...] = ()
    if m.size and has_mate.any():
        n_ident = np.unique(gs).size
        res_cmc = cmc(m[has_mate], ps[has_mate], gs, max_rank=min(max_rank, n_ident))
    if m.size and has_mate.any() and (~has_mate).any():
        curve = fpir_fnir(m, ps, gs)
        points = tuple(fnir_at_fpir(m, ps, gs, t) for t in fpir_targets)
    return GalleryResult(
        gallery=name,
        n_probes=int(len(probe_subjects)),
        n_mated_probes=int(has_mate.sum()),
        n_nonmated_probes=int((~has_mate).sum()),
        probes_failed=int((~pok).sum()),
        gallery_size=int(len(gallery_subjects)),
        gallery_failed=int((~gok).sum()),
        cmc=res_cmc,
        open_set=curve,
        fnir_at_fpir=points,
    )


def _candidate_table(
    matrices: Mapping[str, npt.NDArray[np.float64]],
    probe_labels: Sequence[str],
    probe_subjects: npt.NDArray[np.str_],
    gallery_labels: Mapping[str, Sequence[str]],
    gallery_subjects: Mapping[str, npt.NDArray[np.str_]],
    k: int,
) -> ScoreTable:
    """Top-``k`` candidates of every probe in every gallery, plus its mates (NaN rows for failed probes)."""
    probe: list[str] = []
    ref: list[str] = []
    score: list[float] = []
    ps: list[str] = []
    rs: list[str] = []
    group: list[str] = []
    for g, m in matrices.items():
        labels, subj = gallery_labels[g], gallery_subjects[g]
        for i in range(m.shape[0]):
            row = m[i]
            if np.isnan(row).all():  # a probe without a face: its mate rows, with nan scores
                cols = np.flatnonzero(subj == probe_subjects[i])
            else:
                filled = np.where(np.isnan(row), -np.inf, row)
                top = np.argsort(-filled, kind="stable")[:k]
                cols = np.unique(np.concatenate([top, np.flatnonzero(subj == probe_subjects[i])]))
                cols = cols[np.argsort(-filled[cols], kind="stable")]
            for j in cols.tolist():
                probe.append(probe_labels[i])
                ref.append(labels[j])
                score.append(float(row[j]))
                ps.append(str(probe_subjects[i]))
                rs.append(str(subj[j]))
                group.append(g)
    p_arr = np.array(ps, dtype=np.str_)
    r_arr = np.array(rs, dtype=np.str_)
    return ScoreTable(
        probe=np.array(probe, dtype=np.str_),
        reference=np.array(ref, dtype=np.str_),
        score=np.array(score, dtype=np.float64),
        mated=p_arr == r_arr,
        probe_subject=p_arr,
        reference_subject=r_arr,
        group=np.array(group, dtype=np.str_),
    )


def evaluate_identification(
    protocol: IdentificationProtocol,
    matrices: Mapping[str, npt.NDArray[np.float64]],
    *,
    fpir_targets: Sequence[float] = DEFAULT_FPIR_TARGETS,
    max_rank: int = 20,
) -> tuple[IdentificationResult, ScoreTable, FailureCounts]:
    """1:N metrics from :func:`~.runner.score_identification` matrices (gallery → (probes, gallery)).

    Returns the per-gallery results, a candidate-list score table (top ``CANDIDATES_PER_PROBE`` and
    the mates of each probe, ``group`` = gallery name) and failure counts (unit: template).
    """
    subjects = np.asarray(protocol.templates.subjects, dtype=np.str_)
    ids = protocol.templates.ids
    ps = subjects[protocol.probes]
    probe_labels = [f"template:{ids[i]}" for i in protocol.probes]
    galleries: dict[str, GalleryResult] = {}
    glabels: dict[str, list[str]] = {}
    gsubj: dict[str, npt.NDArray[np.str_]] = {}
    failed_m = failed_n = comparisons = 0
    ref_total = ref_failed = 0
    for g, idx in protocol.galleries.items():
        m = np.asarray(matrices[g], dtype=np.float64)
        if m.shape != (len(protocol.probes), len(idx)):
            raise ConfigurationError(
                f"gallery {g}: expected a {(len(protocol.probes), len(idx))} matrix, got {m.shape}"
            )
        gsubj[g] = subjects[idx]
        glabels[g] = [f"template:{ids[i]}" for i in idx]
        galleries[g] = _gallery_result(g, m, ps, gsubj[g], fpir_targets, max_rank)
        mated = ps[:, None] == gsubj[g][None, :]
        nan = np.isnan(m)
        failed_m += int((nan & mated).sum())
        failed_n += int((nan & ~mated).sum())
        comparisons += m.size
        ref_total += len(idx)
        ref_failed += galleries[g].gallery_failed
    first = next(iter(galleries.values()), None)
    failures = FailureCounts(
        comparisons=comparisons,
        failed_mated=failed_m,
        failed_nonmated=failed_n,
        unit="template",
        references=ref_total,
        references_failed=ref_failed,
        probes=len(protocol.probes),
        probes_failed=first.probes_failed if first is not None else 0,
    )
    table = _candidate_table(matrices, probe_labels, ps, glabels, gsubj, CANDIDATES_PER_PROBE)
    return IdentificationResult(galleries), table, failures


# --- running a protocol --------------------------------------------------------------------------------


def _unit_ok(protocol: VerificationProtocol | IdentificationProtocol, emb: EmbeddingResults) -> npt.NDArray[np.bool_]:
    img_ok = np.array([isinstance(emb.get(im.key), Embedding) for im in protocol.images], dtype=bool)
    t = protocol.templates
    if t is None:
        return img_ok
    ok = np.zeros(len(t), dtype=bool)
    np.logical_or.at(ok, t.template, img_ok[t.image])
    return ok


def _protocol_failures(
    protocol: VerificationProtocol, emb: EmbeddingResults, scores: npt.NDArray[np.float64]
) -> FailureCounts:
    ok = _unit_ok(protocol, emb)
    refs = np.unique(protocol.a)
    probes = np.unique(protocol.b)
    kinds = [getattr(emb.get(im.key), "kind", None) for im in protocol.images]
    nan = np.isnan(scores)
    return FailureCounts(
        comparisons=len(protocol),
        failed_mated=int(np.count_nonzero(nan & protocol.mated)),
        failed_nonmated=int(np.count_nonzero(nan & ~protocol.mated)),
        unit="template" if protocol.templates is not None else "image",
        images=len(protocol.images),
        images_no_face=kinds.count("no_face"),
        images_error=kinds.count("error"),
        references=int(refs.size),
        references_failed=int((~ok[refs]).sum()),
        probes=int(probes.size),
        probes_failed=int((~ok[probes]).sum()),
    )


def _union_images(protocols: Sequence[VerificationProtocol | IdentificationProtocol]) -> list[ImageRef]:
    seen: dict[str, ImageRef] = {}
    for p in protocols:
        for im in p.images:
            prev = seen.setdefault(im.key, im)
            if prev is not im and (prev.path != im.path or prev.data != im.data):
                raise ConfigurationError(f"two protocols name different images {im.key!r}")
    return list(seen.values())


def run_protocol(
    protocol: VerificationProtocol | IdentificationProtocol,
    pipeline_settings: PipelineSpec = None,
    cache: EmbeddingCache | None = None,
    workers: int | None = None,
    dask: Any = None,
    progress: ProgressHook | None = None,
    *,
    calibration: VerificationProtocol | None = None,
    protocol_files: Sequence[str | os.PathLike[str]] = (),
    threshold: float | None = None,
    select: Literal["largest", "central"] = "largest",
    fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS,
    confidence: float | None = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
    image_digest: ImageDigestMethod = "content",
    chunk_size: int = 16,
) -> EvaluationResult:
    """Embed a protocol's images (through ``cache``), score its comparisons and evaluate them.

    Args:
        protocol: a verification or identification protocol (see :mod:`.protocols`).
        pipeline_settings, cache, workers, dask, progress: as :func:`~.runner.embed_images`.
        calibration: a second protocol over (possibly) the same images on which the decision
            threshold is chosen (LFW View 1: ``pairsDevTrain.txt``); its images are embedded in
            the same pass and its scores reported beside the main ones.
        protocol_files: the files the protocol was read from, hashed into the provenance.
        threshold: the decision threshold (default: see the module docs).
        image_digest: how the image list is fingerprinted (:func:`image_list_digest`).
    """
    t_start = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    protocols: list[VerificationProtocol | IdentificationProtocol] = [protocol]
    if calibration is not None:
        if isinstance(protocol, IdentificationProtocol):
            raise ConfigurationError("a calibration protocol applies to verification protocols only")
        if calibration.prealigned != protocol.prealigned:
            raise ConfigurationError("the calibration protocol and the protocol must agree on prealigned")
        protocols.append(calibration)
    images = _union_images(protocols)
    emb = embed_images(
        images,
        pipeline_settings,
        cache,
        select=select,
        prealigned=protocol.prealigned,
        workers=workers,
        chunk_size=chunk_size,
        dask=dask,
        progress=progress,
    )
    t_embed = time.perf_counter()
    settings = dict(emb.settings)
    if isinstance(protocol, IdentificationProtocol):
        matrices = score_identification(protocol, emb)
        t_score = time.perf_counter()
        ident, table, failures = evaluate_identification(protocol, matrices)
        kinds = [getattr(emb.get(im.key), "kind", None) for im in protocol.images]
        failures = dataclasses.replace(
            failures,
            images=len(protocol.images),
            images_no_face=kinds.count("no_face"),
            images_error=kinds.count("error"),
        )
        result = EvaluationResult(
            protocol=protocol.name,
            model=emb.model,
            settings=settings,
            scores=table,
            failures=failures,
            verification=None,
            identification=ident,
            provenance={
                "models": _model_info(emb.model, settings),
                "dataset": {"files": [_file_entry(p) for p in protocol_files]},
                "software": software_versions(),
                "created": started,
            },
        )
    else:
        scores = score_protocol(protocol, emb)
        table = ScoreTable.from_protocol(protocol, scores)
        cal_table = cal_failures = None
        if calibration is not None:
            cal_scores = score_protocol(calibration, emb)
            cal_table = ScoreTable.from_protocol(calibration, cal_scores)
            cal_failures = _protocol_failures(calibration, emb, cal_scores)
        t_score = time.perf_counter()
        result = evaluate_scores(
            table,
            name=protocol.name,
            model=emb.model,
            settings=settings,
            folds=protocol.folds,
            calibration=cal_table,
            calibration_name=calibration.name if calibration is not None else "the calibration set",
            threshold=threshold,
            failures=_protocol_failures(protocol, emb, scores),
            calibration_failures=cal_failures,
            fmr_targets=fmr_targets,
            confidence=confidence,
            n_bootstrap=n_bootstrap,
            seed=seed,
            source_files=protocol_files,
        )
        result.provenance["created"] = started
    t_metrics = time.perf_counter()
    result.provenance["dataset"]["images"] = image_list_digest(images, image_digest)
    result.provenance["dataset"]["protocols"] = [
        {
            "name": p.name,
            "comparisons": len(p) if isinstance(p, VerificationProtocol) else None,
            "images": len(p.images),
        }
        for p in protocols
    ]
    result.provenance["execution"] = {
        "workers": workers,
        "dask": dask if dask is None or isinstance(dask, str) else type(dask).__name__,
        "embedding": dict(emb.stats),
        "cache": None
        if cache is None
        else {"path": str(cache.path), "hits": cache.hits, "misses": cache.misses, "writes": cache.writes},
    }
    result.timing.update(
        embedding_s=t_embed - t_start,
        scoring_s=t_score - t_embed,
        metrics_s=t_metrics - t_score,
        total_s=time.perf_counter() - t_start,
    )
    log.info(
        "%s: %d comparisons evaluated in %.1f s (%d images: %d from the cache, %d computed)",
        protocol.name,
        len(result.scores),
        result.timing["total_s"],
        emb.stats.get("images", 0),
        emb.stats.get("cached", 0),
        emb.stats.get("computed", 0),
    )
    return result


def _file_entry(p: str | os.PathLike[str]) -> dict[str, Any]:
    return {"path": os.fspath(p), "sha256": file_sha256(p), "bytes": os.path.getsize(p)}


# --- which protocol (the CLI's --protocol / --data / --pairs / --labels) ------------------------------------


@dataclass(frozen=True, eq=False)
class ProtocolSource:
    """A protocol read from user data, with what the report needs to know about where it came from."""

    kind: str
    protocol: VerificationProtocol | IdentificationProtocol
    files: tuple[Path, ...]
    calibration: VerificationProtocol | None = None
    description: str = ""

    @property
    def n_images(self) -> int:
        """Distinct images to embed (protocol and calibration together)."""
        keys = {im.key for im in self.protocol.images}
        if self.calibration is not None:
            keys.update(im.key for im in self.calibration.images)
        return len(keys)


def _apply_labels(protocol: VerificationProtocol, labels: Path) -> VerificationProtocol:
    """Per-pair groups from an ``identity,group`` or ``path,group`` CSV (as :func:`folder_protocol`)."""
    if protocol.templates is not None:
        raise ConfigurationError("--labels applies to image protocols, not to template protocols (IJB)")
    kind, mapping = _read_labels(labels)
    img_subject: dict[int, str] = {}
    for side, s in ((protocol.a, protocol.subject_a), (protocol.b, protocol.subject_b)):
        if s is not None:
            for i, v in zip(side.tolist(), s.tolist(), strict=True):
                img_subject.setdefault(i, str(v))
    groups = []
    for i, im in enumerate(protocol.images):
        g = None
        subject = im.subject or img_subject.get(i)
        if kind != "path" and subject is not None:
            g = mapping.get(subject)
        if g is None and kind != "identity":
            g = mapping.get(im.key)
        groups.append(g or "")
    if not any(groups):
        log.warning("no image or identity of protocol %s is listed in %s", protocol.name, labels)
    g_arr = np.array(groups, dtype=np.str_)
    ga, gb = g_arr[protocol.a], g_arr[protocol.b]
    pair_groups = np.where(ga == gb, ga, np.char.add(np.char.add(ga, "|"), gb))
    return dataclasses.replace(protocol, groups=np.asarray(pair_groups, dtype=np.str_))


def _need_dir(p: Path, what: str) -> Path:
    if not p.exists():
        raise ConfigurationError(f"{what} {p} does not exist; check --data")
    if not p.is_dir():
        raise ConfigurationError(f"{what} {p} is not a folder")
    return p


def _need_file(p: Path, what: str) -> Path:
    if not p.exists():
        raise ConfigurationError(f"{what} {p} does not exist")
    if not p.is_file():
        raise ConfigurationError(f"{what} {p} is not a file")
    return p


def _lfw_source(data: Path, pairs: Path | None) -> ProtocolSource:
    root = _need_dir(data, "LFW image folder")
    where = pairs if pairs is not None else root
    if where.is_file():
        if where.name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
            where = where.parent
        else:
            p = read_lfw_protocol(where, root, name=f"lfw:{where.stem}")
            how = "10-fold (View 2)" if p.folds is not None else "one score set, no folds"
            return ProtocolSource("lfw", p, (where,), None, f"LFW pairs file {where.name}: {how}")
    elif not where.exists():
        raise ConfigurationError(f"LFW pairs file or folder {where} does not exist")
    view2 = where / "pairs.txt"
    train, test = where / "pairsDevTrain.txt", where / "pairsDevTest.txt"
    if view2.is_file() and not (pairs is not None and pairs.is_file()):
        p = read_lfw_protocol(view2, root, name="lfw-view2")
        return ProtocolSource("lfw", p, (view2,), None, "LFW View 2 pairs.txt: 10-fold cross-validation")
    if train.is_file() and test.is_file():
        cal = read_lfw_protocol(train, root, name="lfw-view1-devtrain")
        p = read_lfw_protocol(test, root, name="lfw-view1-devtest")
        return ProtocolSource(
            "lfw",
            p,
            (train, test),
            cal,
            "LFW View 1: threshold chosen on pairsDevTrain.txt, results reported on pairsDevTest.txt",
        )
    raise ConfigurationError(
        f"no LFW pairs files in {where}: expected pairs.txt (View 2) or pairsDevTrain.txt + pairsDevTest.txt "
        "(View 1); pass --pairs"
    )


def _ijb_files(root: Path) -> tuple[Path, ...]:
    meta = root / "meta" if (root / "meta").is_dir() else root
    pats = ("ijb?_face_tid_mid.txt", "ijb?_template_pair_label.txt", "ijb?_1N_*.csv")
    return tuple(sorted({p for pat in pats for p in meta.glob(pat) if p.is_file()}))


def open_protocol(
    kind: str,
    data: str | os.PathLike[str],
    *,
    pairs: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    task: Literal["verification", "identification"] = "verification",
    seed: int = 0,
) -> ProtocolSource:
    """Read a protocol the way ``faceprint eval run --protocol KIND --data DATA`` does.

    ``kind``:

    * ``lfw`` - ``data`` is the folder of ``Name/Name_NNNN.jpg`` images; the pairs files are in
      ``pairs`` (a file or folder; default ``data``). ``pairs.txt`` → View 2 (10 folds);
      ``pairsDevTrain.txt`` + ``pairsDevTest.txt`` → View 1 (threshold chosen on DevTrain,
      reported on DevTest).
    * ``bin`` - ``data`` is an InsightFace ``.bin`` file (10 folds, prealigned crops).
    * ``ijb`` - ``data`` is the IJBB/IJBC folder; ``task`` picks 1:1 or 1:N.
    * ``folder`` - ``data`` has one sub-folder per identity (all mated pairs, sampled non-mated).
    * ``csv`` - ``pairs`` (or ``data`` when it is a file) is an ``image_a,image_b,mated[,fold][,group]``
      CSV; image paths are relative to ``data`` when it is a folder.

    ``labels``: an ``identity,group`` or ``path,group`` CSV giving per-pair groups (fairness).
    """
    if kind not in PROTOCOL_KINDS:
        raise ConfigurationError(f"unknown protocol kind {kind!r}; use one of {', '.join(PROTOCOL_KINDS)}")
    d = Path(data)
    pp = Path(pairs) if pairs is not None else None
    lab = _need_file(Path(labels), "labels file") if labels is not None else None
    if task != "verification" and kind != "ijb":
        raise ConfigurationError("identification is available for --protocol ijb only")
    src: ProtocolSource
    if kind == "lfw":
        src = _lfw_source(d, pp)
    elif kind == "bin":
        _need_file(d, "InsightFace .bin file")
        src = ProtocolSource("bin", read_insightface_bin(d), (d,), None, f"InsightFace {d.name}: 10-fold accuracy")
    elif kind == "ijb":
        _need_dir(d, "IJB folder")
        files = _ijb_files(d)
        if task == "identification":
            ip = read_ijb_identification(d)
            return ProtocolSource("ijb", ip, files, None, f"{ip.name}: open-set 1:N identification")
        src = ProtocolSource("ijb", read_ijb_verification(d), files, None, "IJB 1:1 template verification")
    elif kind == "folder":
        _need_dir(d, "identity folder")
        p = folder_protocol(d, labels=lab, seed=seed)
        files = (lab,) if lab is not None else ()
        src = ProtocolSource(
            "folder", p, files, None, f"folder {d.name}: every mated pair, non-mated pairs sampled with seed {seed}"
        )
        lab = None  # applied by folder_protocol
    else:  # csv
        if pp is None:
            csv_file = _need_file(d, "protocol CSV")
            root = None
        else:
            csv_file = _need_file(pp, "protocol CSV")
            root = _need_dir(d, "image folder") if d.is_dir() or not d.exists() else d.parent
        p = read_csv_protocol(csv_file, root)
        src = ProtocolSource("csv", p, (csv_file,), None, f"CSV protocol {csv_file.name}")
    if lab is not None:
        if not isinstance(src.protocol, VerificationProtocol):
            raise ConfigurationError("--labels applies to verification protocols")
        cal = _apply_labels(src.calibration, lab) if src.calibration is not None else None
        src = ProtocolSource(src.kind, _apply_labels(src.protocol, lab), (*src.files, lab), cal, src.description)
    return src


# --- the report folder --------------------------------------------------------------------------------------


def _pct(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def _ci(ci: Sequence[float] | None, digits: int = 3) -> str:
    if ci is None:
        return ""
    return f"[{_pct(ci[0], digits)}, {_pct(ci[1], digits)}]"


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _fmr_label(t: float) -> str:
    return f"{t:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def headline(result: EvaluationResult) -> list[dict[str, str]]:
    """The headline table rows ``{"metric", "value", "ci", "note"}``, as report.md shows them."""
    rows: list[dict[str, str]] = []

    def add(metric: str, value: str, ci: str = "", note: str = "") -> None:
        rows.append({"metric": metric, "value": value, "ci": ci, "note": note})

    f = result.failures
    rep = result.verification
    if rep is not None:
        add(
            "Comparisons",
            f"{rep.n_mated:,} mated + {rep.n_nonmated:,} non-mated",
            "",
            f"scored, of {f.comparisons:,} attempted ({f.failed:,} with a side that failed to acquire)",
        )
        e = rep.eer
        add(
            "EER",
            _pct(e.eer),
            _ci(e.ci),
            f"at threshold {_num(e.threshold)}"
            + (f"; CI: {e.ci_method}" if e.ci is not None else "; no CI: " + (e.ci_method or "not computed")),
        )
        for p in rep.fnmr_at_fmr:
            if p.fnmr is None:
                add(f"FNMR @ FMR={_fmr_label(p.target_fmr)}", "not reported", "", p.reason or "")
            else:
                add(
                    f"FNMR @ FMR={_fmr_label(p.target_fmr)}",
                    _pct(p.fnmr),
                    _ci(p.ci),
                    f"threshold {_num(p.threshold)}, achieved FMR {_pct(p.fmr, 4)}",
                )
        add("AUC", f"{rep.auc:.6f}", "", "area under the ROC curve")
    if result.kfold is not None:
        k = result.kfold
        add(
            f"Accuracy ({len(k.accuracies)}-fold)",
            f"{_pct(k.mean, 2)} ± {_pct(k.std, 2)}",
            "",
            "mean ± std (ddof=0) over folds, threshold of best accuracy on the other folds; "
            "failed comparisons count as non-matches",
        )
    if result.accuracy is not None and result.threshold is not None:
        a = result.accuracy
        add(
            "Accuracy at the decision threshold",
            _pct(a.value, 2),
            "",
            f"{a.n_correct:,} of {a.n:,} correct at {_num(a.threshold)}, the decision threshold "
            f"({result.threshold.source}; see below); {_pct(a.comparison_value, 2)} over scored comparisons only",
        )
    unit = f.unit + "s"
    if f.probes is not None:
        add(
            "FTA (probes)",
            f"{f.probes_failed:,} of {f.probes:,} {unit}",
            "",
            f"{_pct(f.fta_rate, 2)}; failure to acquire: no face found or unreadable",
        )
        add("FTE (references)", f"{f.references_failed:,} of {f.references:,} {unit}", "", f"{_pct(f.fte_rate, 2)}")
    else:
        add("Failed comparisons", f"{f.failed:,} of {f.comparisons:,}", "", "NaN scores in the score file")
    if result.system is not None:
        s = result.system
        add(
            "System FMR / FNMR",
            f"{_pct(s.fmr)} / {_pct(s.fnmr)}",
            "",
            f"at {_num(s.threshold)}, failures counted as non-matches (ISO/IEC 19795-1); comparison-level "
            f"{_pct(s.comparison_fmr)} / {_pct(s.comparison_fnmr)}",
        )
    if result.fairness is not None:
        d = result.fairness.to_dict()
        add(
            "Fairness (FDR / GARBE)",
            f"{_num(d['fdr'])} / {_num(d['garbe'])}" if d["fdr"] is not None else "n/a",
            "",
            f"over {len(result.fairness.groups)} groups at {_num(result.fairness.threshold)}; "
            "FDR 1 and GARBE 0 are fair",
        )
    if result.identification is not None:
        for g in result.identification.galleries.values():
            if g.cmc is not None:
                add(
                    f"Rank-1 / rank-5 ({g.gallery})",
                    f"{_pct(g.cmc.rate_at(1), 2)} / {_pct(g.cmc.rate_at(5), 2)}",
                    "",
                    f"closed set over {g.cmc.n_probes:,} mated probes",
                )
            for q in g.fnir_at_fpir:
                add(
                    f"FNIR @ FPIR={_fmr_label(q.target_fpir)} ({g.gallery})",
                    _pct(q.fnir) if q.fnir is not None else "not reported",
                    "",
                    q.reason or f"threshold {_num(q.threshold)}",
                )
    if result.timing.get("total_s") is not None:
        t = result.timing
        add(
            "Time",
            f"{t['total_s']:.1f} s",
            "",
            f"embedding {t.get('embedding_s', 0):.1f} s, scoring {t.get('scoring_s', 0):.1f} s, "
            f"metrics {t.get('metrics_s', 0):.1f} s",
        )
    return rows


class _Doc:
    """Report content as blocks, rendered to Markdown and to self-contained HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(("table", (list(header), [list(r) for r in rows])))

    def code(self, text: str) -> None:
        self.blocks.append(("code", text))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def markdown(self) -> str:
        out: list[str] = []
        for kind, b in self.blocks:
            if kind == "h":
                out.append("#" * b[0] + " " + b[1])
            elif kind == "p":
                out.append(b)
            elif kind == "table":
                header, rows = b

                def cell(x: str) -> str:
                    return x.replace("|", "\\|").replace("\n", " ")

                out.append("| " + " | ".join(cell(h) for h in header) + " |")
                out.append("|" + "|".join("---" for _ in header) + "|")
                out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
            elif kind == "code":
                out.append("```\n" + b + "\n```")
            elif kind == "img":
                out.append(f"![{b[1]}]({b[0].name})")
            out.append("")
        return "\n".join(out)

    def html(self, title: str) -> str:
        e = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
            "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
            "text-align:left;vertical-align:top}th{background:#f3f3f3}pre{background:#f6f6f6;padding:8px;"
            "overflow-x:auto;white-space:pre-wrap}img{max-width:100%;border:1px solid #ddd}"
            "figure{display:inline-block;margin:0.5em}</style>",
            "</head><body>",
        ]
        for kind, b in self.blocks:
            if kind == "h":
                out.append(f"<h{b[0]}>{e(b[1])}</h{b[0]}>")
            elif kind == "p":
                out.append(f"<p>{e(b)}</p>")
            elif kind == "table":
                header, rows = b
                out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
                out.append("</tbody></table>")
            elif kind == "code":
                out.append(f"<pre><code>{e(b)}</code></pre>")
            elif kind == "img":
                data = base64.b64encode(b[0].read_bytes()).decode("ascii")
                out.append(
                    f'<figure><img alt="{e(b[1])}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{e(b[1])}</figcaption></figure>"
                )
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp would give 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_text(path: Path, text: str) -> None:
    """Write under a temporary name and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _det_axes_limits(
    ax: Any, fmrs: Sequence[npt.NDArray[np.float64]], fnmrs: Sequence[npt.NDArray[np.float64]]
) -> None:
    """One set of DET limits and ticks covering every curve drawn on ``ax``."""
    from . import plots

    ppf = plots._norm_ppf()
    for vals, set_lim, set_ticks, set_labels in (
        (np.concatenate(fmrs), ax.set_xlim, ax.set_xticks, ax.set_xticklabels),
        (np.concatenate(fnmrs), ax.set_ylim, ax.set_yticks, ax.set_yticklabels),
    ):
        lo, hi = plots._det_limits(vals)
        if lo >= hi:  # every rate on one tick (tiny sets): widen to the neighbouring ticks
            k = plots.DET_TICKS.index(lo) if lo in plots.DET_TICKS else 0
            lo = plots.DET_TICKS[max(k - 1, 0)]
            hi = plots.DET_TICKS[min(k + 1, len(plots.DET_TICKS) - 1)]
        ticks = [t for t in plots.DET_TICKS if lo <= t <= hi]
        set_lim(float(ppf(lo)), float(ppf(hi)))
        set_ticks(ppf(np.array(ticks)))
        set_labels([plots._pct(t) for t in ticks])


def _figures(result: EvaluationResult, out: Path) -> list[tuple[Path, str]]:
    with warnings.catch_warnings():
        # a display's own DET limits collapse on tiny sets; _det_axes_limits sets them again
        warnings.filterwarnings("ignore", message="Attempting to set identical", category=UserWarning)
        return _draw_figures(result, out)


def _draw_figures(result: EvaluationResult, out: Path) -> list[tuple[Path, str]]:
    from . import plots

    plt = plots._pyplot()
    made: list[tuple[Path, str]] = []

    def save(fig: Any, name: str, caption: str) -> None:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append((path, caption))

    rep = result.verification
    cal = result.calibration
    if rep is not None:
        main_name = result.protocol
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        curves = []
        if cal is not None:
            d = plots.DETDisplay.from_report(cal.verification, name=f"{cal.name} (calibration)", ax=ax, linestyle="--")
            curves.append(d)
        d = plots.DETDisplay.from_report(rep, name=main_name, ax=ax)
        curves.append(d)
        if result.system is not None:
            s = result.system
            if 0 < s.comparison_fmr < 1 and 0 < s.comparison_fnmr < 1:
                ppf = plots._norm_ppf()
                ax.plot(
                    ppf(s.comparison_fmr),
                    ppf(s.comparison_fnmr),
                    "o",
                    color="k",
                    label=f"decision threshold {s.threshold:.4f}",
                )
        _det_axes_limits(ax, [c.fmr for c in curves], [c.fnmr for c in curves])
        ax.legend(loc="upper right")
        ax.set_title(f"DET: {main_name}")
        save(fig, "det.png", "DET curve (FNMR vs FMR on normal-deviate axes)")

        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        if cal is not None:
            plots.ROCDisplay.from_report(cal.verification, name=f"{cal.name} (calibration)", ax=ax, linestyle="--")
        plots.ROCDisplay.from_report(rep, name=main_name, ax=ax)
        ax.set_title(f"ROC: {main_name}")
        save(fig, "roc.png", "ROC curve (TMR vs FMR, log FMR axis)")

        thr = result.threshold.value if result.threshold is not None and math.isfinite(result.threshold.value) else None
        sets = ([(cal.name, cal.scores)] if cal is not None else []) + [(main_name, result.scores)]
        fig, axes = plt.subplots(1, len(sets), figsize=(6.4 * len(sets), 4.6), squeeze=False)
        for ax, (nm, tab) in zip(axes[0], sets, strict=True):
            plots.ScoreHistogramDisplay.from_scores(tab.genuine, tab.impostor, threshold=thr, name=nm, ax=ax, bins=60)
        save(fig, "scores.png", "Score distributions (mated vs non-mated) with the decision threshold")

    if result.fairness is not None:
        fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(result.fairness.groups) + 2), 4.6))
        plots.GroupBarDisplay.from_report(result.fairness, name="per-group error rates", ax=ax)
        save(fig, "groups.png", "FMR and FNMR per group at the decision threshold")

    if result.identification is not None:
        gal = [g for g in result.identification.galleries.values() if g.cmc is not None]
        if gal:
            fig, ax = plt.subplots(figsize=(6.4, 4.6))
            for g in gal:
                assert g.cmc is not None
                plots.CMCDisplay.from_report(g.cmc, name=g.gallery, ax=ax)
            ax.set_title(f"CMC: {result.protocol}")
            save(fig, "cmc.png", "Cumulative match characteristic (closed set)")
        opn = [g for g in result.identification.galleries.values() if g.open_set is not None]
        if opn:
            fig, ax = plt.subplots(figsize=(6.4, 5.2))
            curves = []
            for g in opn:
                assert g.open_set is not None
                c = g.open_set
                curves.append(plots.DETDisplay(fmr=c.fpir, fnmr=c.fnir, name=g.gallery).plot(ax=ax))
            _det_axes_limits(ax, [c.fmr for c in curves], [c.fnmr for c in curves])
            ax.set_xlabel("False positive identification rate (FPIR)")
            ax.set_ylabel("False negative identification rate (FNIR)")
            ax.set_title(f"FPIR / FNIR (rank 1): {result.protocol}")
            save(fig, "fpir_fnir.png", "Open-set FNIR vs FPIR at rank 1 (normal-deviate axes)")
    return made


def _fnmr_rows(rep: VerificationReport) -> list[list[str]]:
    rows = []
    for p in rep.fnmr_at_fmr:
        if p.fnmr is None:
            rows.append([_fmr_label(p.target_fmr), "not reported", "", "", "", p.reason or ""])
        else:
            rows.append(
                [
                    _fmr_label(p.target_fmr),
                    _pct(p.fnmr),
                    _ci(p.ci),
                    _num(p.threshold),
                    _pct(p.fmr, 4),
                    p.ci_method or "",
                ]
            )
    return rows


def _set_row(name: str, rep: VerificationReport, f: FailureCounts, acc: Accuracy | None) -> list[str]:
    return [
        name,
        f"{rep.n_mated:,}",
        f"{rep.n_nonmated:,}",
        f"{f.failed:,}",
        f"{_pct(rep.eer.eer)} {_ci(rep.eer.ci)}".strip(),
        f"{rep.auc:.6f}",
        _pct(acc.value, 2) if acc is not None else "n/a",
    ]


def write_report(
    result: EvaluationResult,
    out_dir: str | os.PathLike[str],
    *,
    command: str,
) -> dict[str, Path]:
    """Write the report folder: ``report.md``, ``report.html`` (figures embedded), ``metrics.json``,
    ``scores.csv`` (every attempted comparison; ``nan`` where a side failed to acquire),
    ``scores_calibration.csv`` when there is a calibration set, and one PNG per figure.

    ``command`` is the exact command line that produced ``result`` (recorded in the report).
    Returns name → path of every file written. Existing files of those names are replaced.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the report folder {out}: {exc.strerror or exc}") from exc
    files: dict[str, Path] = {}
    files["scores.csv"] = write_scores(out / "scores.csv", result.scores, format="csv", allow_nan=True)
    if result.calibration is not None:
        files["scores_calibration.csv"] = write_scores(
            out / "scores_calibration.csv", result.calibration.scores, format="csv", allow_nan=True
        )
    for p in files.values():
        os.chmod(p, _file_mode())  # a report is for reading: not the 0600 of a temporary file
    figures = _figures(result, out)
    for path, _ in figures:
        files[path.name] = path
    rows = headline(result)

    metrics = {
        "command": command,
        "headline": rows,
        **result.to_dict(),
        "files": sorted([*files, "report.md", "report.html", "metrics.json"]),
    }
    metrics_path = out / "metrics.json"
    _write_text(metrics_path, json.dumps(metrics, indent=2, allow_nan=False, default=_json_default) + "\n")
    files["metrics.json"] = metrics_path

    doc = _Doc()
    title = f"Evaluation report: {result.protocol}"
    doc.h(1, title)
    doc.p(
        f"{result.kind.capitalize()} evaluation of {result.model or 'an external system (score file)'} on "
        f"{result.protocol}, {result.provenance.get('created', '')}. Numbers below are also in metrics.json."
    )
    doc.h(2, "Headline")
    doc.table(["metric", "value", "95% CI", "note"], [[r["metric"], r["value"], r["ci"], r["note"]] for r in rows])
    if result.threshold is not None:
        doc.p(f"Decision threshold {_num(result.threshold.value)}: {result.threshold.description}.")
    rep = result.verification
    if rep is not None:
        if result.calibration is not None:
            c = result.calibration
            doc.h(2, "Score sets")
            doc.p(
                f"The decision threshold is chosen on {c.name} and applied to {result.protocol}; the headline "
                f"metrics are those of {result.protocol}."
            )
            doc.table(
                ["score set", "mated", "non-mated", "failed", "EER [CI]", "AUC", "accuracy at threshold"],
                [
                    _set_row(f"{c.name} (calibration)", c.verification, c.failures, c.accuracy),
                    _set_row(f"{result.protocol} (reported)", rep, result.failures, result.accuracy),
                ],
            )
        doc.h(2, "FNMR at each FMR target")
        doc.p(
            "The threshold for each target is the lowest one whose FMR on these non-mated scores is at most the "
            "target; a target needs at least 3/FMR non-mated comparisons (rule of three), otherwise it is not "
            f"reported. EER method: {rep.eer.method}."
        )
        doc.table(["target FMR", "FNMR", "95% CI", "threshold", "achieved FMR", "CI method / reason"], _fnmr_rows(rep))
        if result.calibration is not None:
            doc.p(f"Same table on {result.calibration.name}:")
            doc.table(
                ["target FMR", "FNMR", "95% CI", "threshold", "achieved FMR", "CI method / reason"],
                _fnmr_rows(result.calibration.verification),
            )
    if result.kfold is not None:
        k = result.kfold
        doc.h(2, "k-fold accuracy")
        doc.table(
            ["fold", "accuracy", "threshold"],
            [
                [str(fid), _pct(a, 2), _num(t)]
                for fid, a, t in zip(k.folds.tolist(), k.accuracies, k.thresholds, strict=True)
            ],
        )
    f = result.failures
    doc.h(2, "Failures to acquire and enrol")
    frows = [
        ["attempted comparisons", f"{f.comparisons:,}"],
        ["failed mated comparisons", f"{f.failed_mated:,}"],
        ["failed non-mated comparisons", f"{f.failed_nonmated:,}"],
    ]
    if f.images is not None:
        frows += [
            ["images", f"{f.images:,}"],
            ["images without a face", f"{f.images_no_face:,}"],
            ["images that could not be read", f"{f.images_error:,}"],
        ]
    if f.probes is not None:
        frows += [
            [f"FTA: failed probe {f.unit}s", f"{f.probes_failed:,} of {f.probes:,} ({_pct(f.fta_rate, 2)})"],
            [
                f"FTE: failed reference {f.unit}s",
                f"{f.references_failed:,} of {f.references:,} ({_pct(f.fte_rate, 2)})",
            ],
        ]
    doc.table(["", "count"], frows)
    doc.p(
        "A comparison with a failed side has no score (nan in scores.csv). It is left out of the error curves, "
        "EER and FNMR@FMR (algorithm-level), and counted as a non-match in the accuracy and the system-level "
        "FMR/FNMR (ISO/IEC 19795-1)."
    )
    if result.fairness is not None:
        fr = result.fairness
        doc.h(2, "Per-group error rates")
        fm_ci, fn_ci = fr.confidence_intervals()
        doc.table(
            ["group", "mated", "non-mated", "FMR", "FMR 95% CI", "FNMR", "FNMR 95% CI"],
            [
                [
                    str(g),
                    f"{int(fr.n_mated[j]):,}",
                    f"{int(fr.n_nonmated[j]):,}",
                    _pct(float(fr.fmr[j])),
                    _ci(fm_ci[j].tolist()) if np.isfinite(fm_ci[j]).all() else "",
                    _pct(float(fr.fnmr[j])),
                    _ci(fn_ci[j].tolist()) if np.isfinite(fn_ci[j]).all() else "",
                ]
                for j, g in enumerate(fr.groups)
            ],
        )
        fd = fr.to_dict()
        doc.p(
            f"At threshold {_num(fr.threshold)}; {fr.n_excluded:,} scored pairs across two groups are left out. "
            f"FMR max/min {_num(fd['fmr_ratio'], 2)}, FNMR max/min {_num(fd['fnmr_ratio'], 2)}, "
            f"FDR {_num(fd['fdr'])}, GARBE {_num(fd['garbe'])} (alpha {fd['alpha']})."
        )
    if result.identification is not None:
        doc.h(2, "Identification")
        doc.table(
            ["gallery", "probes (mated / non-mated)", "failed probes", "gallery", "failed gallery", "rank-1", "rank-5"],
            [
                [
                    g.gallery,
                    f"{g.n_mated_probes:,} / {g.n_nonmated_probes:,}",
                    f"{g.probes_failed:,}",
                    f"{g.gallery_size:,}",
                    f"{g.gallery_failed:,}",
                    _pct(g.cmc.rate_at(1), 2) if g.cmc else "n/a",
                    _pct(g.cmc.rate_at(5), 2) if g.cmc else "n/a",
                ]
                for g in result.identification.galleries.values()
            ],
        )
        doc.p(
            f"scores.csv holds, for every probe and gallery, the top {CANDIDATES_PER_PROBE} candidates and the mates "
            "(column group = gallery)."
        )
    doc.h(2, "Figures")
    for path, caption in figures:
        doc.img(path, caption)
    doc.h(2, "Reproduce")
    doc.p("Command:")
    doc.code(command)
    doc.p("Pipeline settings (everything that changes an embedding):")
    doc.code(json.dumps(result.settings, indent=2, sort_keys=True, default=str))
    ex = result.provenance.get("execution")
    if ex:
        doc.p("Execution:")
        doc.code(json.dumps(ex, indent=2, default=str))
    doc.h(2, "Models")
    mi = result.provenance.get("models", {})
    det_text = mi.get("detector_backend") or (
        f"none: images prealigned to {mi['prealigned']}" if mi.get("prealigned") else "n/a"
    )
    mrows = [
        ["embedding model", str(mi.get("embedding_model") or "n/a (score file)")],
        ["embedder backend", str(mi.get("embedder_backend") or "n/a")],
        ["detector backend", str(det_text)],
    ]
    for m in mi.get("manifest", []):
        label = f"{m['name']} v{m['version']} ({m['kind']})"
        if not m["files"]:
            mrows.append([label, "built into the library (no model file)"])
        for fl in m["files"]:
            mrows.append([label, f"{fl['filename']}, sha256 {fl['sha256']}"])
    doc.table(["", ""], mrows)
    doc.h(2, "Dataset")
    ds = result.provenance.get("dataset", {})
    src = result.provenance.get("protocol_source")
    if src:
        doc.p(f"Protocol: {src['description']} (--protocol {src['kind']} --data {src['data']}).")
    drows = [[str(x["path"]), x["sha256"], f"{x['bytes']:,}"] for x in ds.get("files", [])]
    if drows:
        doc.table(["protocol file", "sha256", "bytes"], drows)
    else:
        doc.p("No protocol file: the comparisons were generated from the image folder.")
    im = ds.get("images")
    if im:
        doc.p(
            f"Image list: {im['count']:,} images ({im['missing']} missing), digest {im['sha256']}. "
            f"Method: {im['description']}."
        )
    doc.h(2, "Software")
    doc.table(["", "version"], [[k, str(v)] for k, v in result.provenance.get("software", {}).items()])
    doc.h(2, "Files")
    doc.p(", ".join(sorted([*files, "report.md", "report.html"])))

    md_path, html_path = out / "report.md", out / "report.html"
    _write_text(md_path, doc.markdown())
    _write_text(html_path, doc.html(title))
    files["report.md"] = md_path
    files["report.html"] = html_path
    return files


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return os.fspath(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")
