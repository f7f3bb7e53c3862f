"""From scores to results: verification and identification metrics of one evaluation.

:func:`evaluate_scores` turns 1:1 comparison scores of any system (a protocol run, or a score
file) into an :class:`~.results.EvaluationResult`; :func:`evaluate_identification` turns 1:N
score matrices into per-gallery CMC and FPIR/FNIR.

The decision threshold is, in this order: the one given; the best-accuracy threshold on a
calibration score set (LFW View 1: chosen on ``pairsDevTrain.txt``, applied to
``pairsDevTest.txt``); the embedding model's calibrated ``fmr=0.001`` operating point; the EER
threshold of the evaluated scores themselves (optimistic - the report says so).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..rates import DEFAULT_FMR_TARGETS, FNIRAtFPIR, cmc, fnir_at_fpir, fpir_fnir
from .fairness import GroupErrorRates, group_error_rates
from .metrics import (
    KFoldAccuracy,
    SystemErrorRates,
    VerificationReport,
    _best_accuracy_threshold,
    kfold_accuracy,
    system_error_rates,
)
from .protocols import IdentificationProtocol
from .provenance import file_entry, model_provenance, software_versions
from .results import (
    CANDIDATES_PER_PROBE,
    DEFAULT_FPIR_TARGETS,
    Accuracy,
    DecisionThreshold,
    EvaluationResult,
    FailureCounts,
    GalleryResult,
    IdentificationResult,
    ScoreSetResult,
)
from .scorefiles import ScoreTable

__all__ = ["evaluate_scores", "evaluate_identification"]

log = logging.getLogger(__name__)


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
    boot: dict[str, Any] = {
        "fmr_targets": fmr_targets,
        "confidence": confidence,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
    report = _verification_report(table, **boot)
    thr = _choose_threshold(threshold, calibration, calibration_name, model, report)
    kf = None
    if folds is not None:
        f = np.asarray(folds)
        if f.shape != (len(table),):
            raise ConfigurationError(f"folds needs one id per comparison ({len(table)}), got shape {f.shape}")
        if np.unique(f).size >= 2:
            kf = _kfold(table, f)
    cal = None
    if calibration is not None:
        cal_rep = _verification_report(calibration, **boot)
        failures_c = calibration_failures or _failures_from_table(calibration)
        cal = ScoreSetResult(
            calibration_name,
            calibration,
            failures_c,
            cal_rep,
            _accuracy(calibration, thr.value),
            _system(calibration, thr),
        )
    prov: dict[str, Any] = {
        "models": model_provenance(model, settings or {}),
        "dataset": {"files": [file_entry(p) for p in source_files]},
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
        system=_system(table, thr),
        kfold=kf,
        fairness=_fairness(table, thr.value),
        calibration=cal,
        provenance=prov,
        timing={"metrics_s": time.perf_counter() - t0},
    )


def _system(table: ScoreTable, thr: DecisionThreshold) -> SystemErrorRates | None:
    """System-level FMR/FNMR at the decision threshold, failures counted as non-matches."""
    if not math.isfinite(thr.value):
        return None
    return system_error_rates(table.score, table.mated, thr.value, np.isnan(table.score))


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
