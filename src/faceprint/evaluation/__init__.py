"""Evaluation: protocols, ISO/IEC 19795-1 metrics, fairness, plots, score files and reports.

Data flow::

    protocols ──▶ runner (embed through the cache, score) ──▶ scorefiles.ScoreTable
        ──▶ metrics / fairness ──▶ report.EvaluationResult ──▶ report.write_report (plots inside)

Every public name of the submodules is re-exported here. They are imported on first use, so
``import faceprint.evaluation`` loads no model, no matplotlib and no dask. The rate estimators
themselves live below this package, in :mod:`faceprint.rates` (which :mod:`faceprint.scoring`
uses too, without importing anything of evaluation).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .protocols import Pair as Pair
from .protocols import read_lfw_pairs as read_lfw_pairs

#: submodule → the public names it defines
_MODULES: dict[str, tuple[str, ...]] = {
    "protocols": (  # which comparisons to make
        "Pair",
        "read_lfw_pairs",
        "ImageRef",
        "TemplateSet",
        "VerificationProtocol",
        "IdentificationProtocol",
        "PREALIGNED_TEMPLATES",
        "IMAGE_EXTENSIONS",
        "read_lfw_protocol",
        "read_insightface_bin",
        "read_ijb_verification",
        "read_ijb_identification",
        "aggregate_templates",
        "folder_protocol",
        "read_csv_protocol",
        "load_protocol",
        "kfold_ids",
    ),
    "metrics": (  # ISO/IEC 19795-1 error rates
        "DEFAULT_FMR_TARGETS",
        "EER_METHOD",
        "ScoreCounts",
        "ErrorCurve",
        "EERResult",
        "FNMRAtFMR",
        "VerificationReport",
        "BootstrapResult",
        "KFoldAccuracy",
        "SystemErrorRates",
        "CMCResult",
        "OpenSetScores",
        "OpenSetCurve",
        "FNIRAtFPIR",
        "ScoreBlock",
        "ScoreAccumulator",
        "det_curve",
        "roc_curve",
        "error_curve",
        "fmr_fnmr",
        "threshold_at_fmr",
        "eer",
        "auc",
        "fnmr_at_fmr",
        "min_nonmated_for",
        "clopper_pearson",
        "subject_bootstrap",
        "contiguous_folds",
        "kfold_accuracy",
        "system_error_rates",
        "cmc",
        "open_set_scores",
        "fpir_fnir",
        "fnir_at_fpir",
        "iter_score_blocks",
        "accumulate_blocks",
        "accumulate_scores",
    ),
    "fairness": (  # per-group error rates
        "GroupErrorRates",
        "group_error_rates",
        "max_min_ratio",
        "fairness_discrepancy_rate",
        "gini",
        "garbe",
    ),
    "scorefiles": (  # score files other tools read
        "ScoreTable",
        "ScoreFormat",
        "SCORE_FORMATS",
        "write_scores",
        "read_scores",
        "CSV_COLUMNS",
    ),
    "cache": (  # the embedding cache
        "CACHE_ENV",
        "CACHE_FILENAME",
        "CachedResult",
        "EmbeddingCache",
        "default_cache_dir",
        "settings_id",
        "sha256_bytes",
    ),
    "runner": (  # embedding and scoring a protocol
        "Failure",
        "EmbeddingResults",
        "ProgressHook",
        "embed_images",
        "embed_protocol",
        "score_protocol",
        "score_identification",
        "cache_settings",
    ),
    "report": (  # results and report folders
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
    ),
    "plots": (  # DET/ROC/histogram/CMC/group figures (matplotlib inside plot())
        "DETDisplay",
        "ROCDisplay",
        "ScoreHistogramDisplay",
        "CMCDisplay",
        "GroupBarDisplay",
        "DET_TICKS",
    ),
}

_LAZY: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [name for names in _MODULES.values() for name in names]

if TYPE_CHECKING:
    from .cache import (
        CACHE_ENV as CACHE_ENV,
    )
    from .cache import (
        CACHE_FILENAME as CACHE_FILENAME,
    )
    from .cache import (
        CachedResult as CachedResult,
    )
    from .cache import (
        EmbeddingCache as EmbeddingCache,
    )
    from .cache import (
        default_cache_dir as default_cache_dir,
    )
    from .cache import (
        settings_id as settings_id,
    )
    from .cache import (
        sha256_bytes as sha256_bytes,
    )
    from .fairness import (
        GroupErrorRates as GroupErrorRates,
    )
    from .fairness import (
        fairness_discrepancy_rate as fairness_discrepancy_rate,
    )
    from .fairness import (
        garbe as garbe,
    )
    from .fairness import (
        gini as gini,
    )
    from .fairness import (
        group_error_rates as group_error_rates,
    )
    from .fairness import (
        max_min_ratio as max_min_ratio,
    )
    from .metrics import (
        DEFAULT_FMR_TARGETS as DEFAULT_FMR_TARGETS,
    )
    from .metrics import (
        EER_METHOD as EER_METHOD,
    )
    from .metrics import (
        BootstrapResult as BootstrapResult,
    )
    from .metrics import (
        CMCResult as CMCResult,
    )
    from .metrics import (
        EERResult as EERResult,
    )
    from .metrics import (
        ErrorCurve as ErrorCurve,
    )
    from .metrics import (
        FNIRAtFPIR as FNIRAtFPIR,
    )
    from .metrics import (
        FNMRAtFMR as FNMRAtFMR,
    )
    from .metrics import (
        KFoldAccuracy as KFoldAccuracy,
    )
    from .metrics import (
        OpenSetCurve as OpenSetCurve,
    )
    from .metrics import (
        OpenSetScores as OpenSetScores,
    )
    from .metrics import (
        ScoreAccumulator as ScoreAccumulator,
    )
    from .metrics import (
        ScoreBlock as ScoreBlock,
    )
    from .metrics import (
        ScoreCounts as ScoreCounts,
    )
    from .metrics import (
        SystemErrorRates as SystemErrorRates,
    )
    from .metrics import (
        VerificationReport as VerificationReport,
    )
    from .metrics import (
        accumulate_blocks as accumulate_blocks,
    )
    from .metrics import (
        accumulate_scores as accumulate_scores,
    )
    from .metrics import (
        auc as auc,
    )
    from .metrics import (
        clopper_pearson as clopper_pearson,
    )
    from .metrics import (
        cmc as cmc,
    )
    from .metrics import (
        contiguous_folds as contiguous_folds,
    )
    from .metrics import (
        det_curve as det_curve,
    )
    from .metrics import (
        eer as eer,
    )
    from .metrics import (
        error_curve as error_curve,
    )
    from .metrics import (
        fmr_fnmr as fmr_fnmr,
    )
    from .metrics import (
        fnir_at_fpir as fnir_at_fpir,
    )
    from .metrics import (
        fnmr_at_fmr as fnmr_at_fmr,
    )
    from .metrics import (
        fpir_fnir as fpir_fnir,
    )
    from .metrics import (
        iter_score_blocks as iter_score_blocks,
    )
    from .metrics import (
        kfold_accuracy as kfold_accuracy,
    )
    from .metrics import (
        min_nonmated_for as min_nonmated_for,
    )
    from .metrics import (
        open_set_scores as open_set_scores,
    )
    from .metrics import (
        roc_curve as roc_curve,
    )
    from .metrics import (
        subject_bootstrap as subject_bootstrap,
    )
    from .metrics import (
        system_error_rates as system_error_rates,
    )
    from .metrics import (
        threshold_at_fmr as threshold_at_fmr,
    )
    from .plots import (
        DET_TICKS as DET_TICKS,
    )
    from .plots import (
        CMCDisplay as CMCDisplay,
    )
    from .plots import (
        DETDisplay as DETDisplay,
    )
    from .plots import (
        GroupBarDisplay as GroupBarDisplay,
    )
    from .plots import (
        ROCDisplay as ROCDisplay,
    )
    from .plots import (
        ScoreHistogramDisplay as ScoreHistogramDisplay,
    )
    from .protocols import (
        IMAGE_EXTENSIONS as IMAGE_EXTENSIONS,
    )
    from .protocols import (
        PREALIGNED_TEMPLATES as PREALIGNED_TEMPLATES,
    )
    from .protocols import (
        IdentificationProtocol as IdentificationProtocol,
    )
    from .protocols import (
        ImageRef as ImageRef,
    )
    from .protocols import (
        TemplateSet as TemplateSet,
    )
    from .protocols import (
        VerificationProtocol as VerificationProtocol,
    )
    from .protocols import (
        aggregate_templates as aggregate_templates,
    )
    from .protocols import (
        folder_protocol as folder_protocol,
    )
    from .protocols import (
        kfold_ids as kfold_ids,
    )
    from .protocols import (
        load_protocol as load_protocol,
    )
    from .protocols import (
        read_csv_protocol as read_csv_protocol,
    )
    from .protocols import (
        read_ijb_identification as read_ijb_identification,
    )
    from .protocols import (
        read_ijb_verification as read_ijb_verification,
    )
    from .protocols import (
        read_insightface_bin as read_insightface_bin,
    )
    from .protocols import (
        read_lfw_protocol as read_lfw_protocol,
    )
    from .report import (
        DEFAULT_FPIR_TARGETS as DEFAULT_FPIR_TARGETS,
    )
    from .report import (
        PROTOCOL_KINDS as PROTOCOL_KINDS,
    )
    from .report import (
        Accuracy as Accuracy,
    )
    from .report import (
        DecisionThreshold as DecisionThreshold,
    )
    from .report import (
        EvaluationResult as EvaluationResult,
    )
    from .report import (
        FailureCounts as FailureCounts,
    )
    from .report import (
        GalleryResult as GalleryResult,
    )
    from .report import (
        IdentificationResult as IdentificationResult,
    )
    from .report import (
        ProtocolSource as ProtocolSource,
    )
    from .report import (
        ScoreSetResult as ScoreSetResult,
    )
    from .report import (
        evaluate_identification as evaluate_identification,
    )
    from .report import (
        evaluate_scores as evaluate_scores,
    )
    from .report import (
        file_sha256 as file_sha256,
    )
    from .report import (
        headline as headline,
    )
    from .report import (
        image_list_digest as image_list_digest,
    )
    from .report import (
        open_protocol as open_protocol,
    )
    from .report import (
        run_protocol as run_protocol,
    )
    from .report import (
        software_versions as software_versions,
    )
    from .report import (
        write_report as write_report,
    )
    from .runner import (
        EmbeddingResults as EmbeddingResults,
    )
    from .runner import (
        Failure as Failure,
    )
    from .runner import (
        ProgressHook as ProgressHook,
    )
    from .runner import (
        cache_settings as cache_settings,
    )
    from .runner import (
        embed_images as embed_images,
    )
    from .runner import (
        embed_protocol as embed_protocol,
    )
    from .runner import (
        score_identification as score_identification,
    )
    from .runner import (
        score_protocol as score_protocol,
    )
    from .scorefiles import (
        CSV_COLUMNS as CSV_COLUMNS,
    )
    from .scorefiles import (
        SCORE_FORMATS as SCORE_FORMATS,
    )
    from .scorefiles import (
        ScoreFormat as ScoreFormat,
    )
    from .scorefiles import (
        ScoreTable as ScoreTable,
    )
    from .scorefiles import (
        read_scores as read_scores,
    )
    from .scorefiles import (
        write_scores as write_scores,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
