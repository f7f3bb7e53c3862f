"""Evaluation: protocols, ISO/IEC 19795-1 metrics, fairness, plots, score files and reports.

Data flow::

    protocols.open_protocol ──▶ runner.run_protocol:
        embedding (images → embeddings, through the cache; faceprint.batch runs the pipeline)
        ──▶ comparison (scores) ──▶ scorefiles.ScoreTable
        ──▶ evaluate (metrics, fairness) ──▶ results.EvaluationResult (+ provenance)
        ──▶ report.write_report (plots inside)
    quality scores + scores ──edc.edc_report──▶ EDC curves (ISO/IEC 29794-1), EDCDisplay

Every public name of the submodules is re-exported here. They are imported on first use, so
``import faceprint.evaluation`` loads no model, no matplotlib and no dask. The rate estimators
themselves live below this package, in :mod:`faceprint.rates` (which :mod:`faceprint.scoring`
uses too, without importing anything of evaluation).
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from .protocols import Pair as Pair
from .protocols import read_lfw_pairs as read_lfw_pairs

#: the submodules whose public names (their ``__all__``) this package re-exports, cheapest first;
#: a name is looked up module by module on first use, so importing the package imports only protocols
_SUBMODULES: tuple[str, ...] = (
    "protocols",  # which comparisons to make
    "metrics",  # ISO/IEC 19795-1 rates (estimators from faceprint.rates) and statistics
    "fairness",  # per-group error rates
    "scorefiles",  # score files other tools read
    "cache",  # the embedding cache
    "results",  # what an evaluation produced
    "provenance",  # checksums, model files, software versions
    "evaluate",  # scores → results
    "comparison",  # embeddings → scores
    "embedding",  # images → embeddings
    "runner",  # protocol → result
    "report",  # report folders and named figures
    "plots",  # DET/ROC/histogram/CMC/group figures (matplotlib inside plot())
    "edc",  # error versus discard characteristic of quality scores (ISO/IEC 29794-1)
    "quality",  # quality of a protocol's images, EDC of an evaluation
)
_WHERE: dict[str, str] = {}  # name → the submodule it comes from, for the submodules read so far
_READ: set[str] = set()


def _exports(module: str) -> tuple[str, ...]:
    """A submodule's ``__all__`` (importing it), noted in :data:`_WHERE`."""
    names = tuple(importlib.import_module(f".{module}", __name__).__all__)
    if module not in _READ:
        _READ.add(module)
        for n in names:
            _WHERE.setdefault(n, module)
    return names


def _find(name: str) -> str | None:
    for m in _SUBMODULES:
        if name in _WHERE:
            break
        if m not in _READ:
            _exports(m)
    return _WHERE.get(name)


if TYPE_CHECKING:
    from .cache import CACHE_ENV as CACHE_ENV
    from .cache import CACHE_FILENAME as CACHE_FILENAME
    from .cache import CachedImage as CachedImage
    from .cache import CachedResult as CachedResult
    from .cache import EmbeddingCache as EmbeddingCache
    from .cache import default_cache_dir as default_cache_dir
    from .cache import settings_id as settings_id
    from .cache import sha256_bytes as sha256_bytes
    from .comparison import embedding_matrix as embedding_matrix
    from .comparison import score_identification as score_identification
    from .comparison import score_protocol as score_protocol
    from .edc import EDCCurve as EDCCurve
    from .edc import EDCDisplay as EDCDisplay
    from .edc import EDCReport as EDCReport
    from .edc import edc_curve as edc_curve
    from .edc import edc_report as edc_report
    from .edc import ideal_edc as ideal_edc
    from .edc import pair_quality as pair_quality
    from .embedding import EmbeddingResults as EmbeddingResults
    from .embedding import Failure as Failure
    from .embedding import ProgressHook as ProgressHook
    from .embedding import cache_settings as cache_settings
    from .embedding import embed_images as embed_images
    from .embedding import embed_protocol as embed_protocol
    from .evaluate import evaluate_identification as evaluate_identification
    from .evaluate import evaluate_scores as evaluate_scores
    from .fairness import GroupErrorRates as GroupErrorRates
    from .fairness import fairness_discrepancy_rate as fairness_discrepancy_rate
    from .fairness import garbe as garbe
    from .fairness import gini as gini
    from .fairness import group_error_rates as group_error_rates
    from .fairness import max_min_ratio as max_min_ratio
    from .metrics import DEFAULT_FMR_TARGETS as DEFAULT_FMR_TARGETS
    from .metrics import EER_METHOD as EER_METHOD
    from .metrics import BootstrapResult as BootstrapResult
    from .metrics import CMCResult as CMCResult
    from .metrics import EERResult as EERResult
    from .metrics import ErrorCurve as ErrorCurve
    from .metrics import FNIRAtFPIR as FNIRAtFPIR
    from .metrics import FNMRAtFMR as FNMRAtFMR
    from .metrics import KFoldAccuracy as KFoldAccuracy
    from .metrics import OpenSetCurve as OpenSetCurve
    from .metrics import OpenSetScores as OpenSetScores
    from .metrics import ScoreAccumulator as ScoreAccumulator
    from .metrics import ScoreBlock as ScoreBlock
    from .metrics import ScoreCounts as ScoreCounts
    from .metrics import SystemErrorRates as SystemErrorRates
    from .metrics import VerificationReport as VerificationReport
    from .metrics import accumulate_blocks as accumulate_blocks
    from .metrics import accumulate_scores as accumulate_scores
    from .metrics import auc as auc
    from .metrics import clopper_pearson as clopper_pearson
    from .metrics import cmc as cmc
    from .metrics import contiguous_folds as contiguous_folds
    from .metrics import det_curve as det_curve
    from .metrics import eer as eer
    from .metrics import error_curve as error_curve
    from .metrics import fmr_fnmr as fmr_fnmr
    from .metrics import fnir_at_fpir as fnir_at_fpir
    from .metrics import fnmr_at_fmr as fnmr_at_fmr
    from .metrics import fpir_fnir as fpir_fnir
    from .metrics import iter_score_blocks as iter_score_blocks
    from .metrics import kfold_accuracy as kfold_accuracy
    from .metrics import min_nonmated_for as min_nonmated_for
    from .metrics import open_set_scores as open_set_scores
    from .metrics import roc_curve as roc_curve
    from .metrics import subject_bootstrap as subject_bootstrap
    from .metrics import system_error_rates as system_error_rates
    from .metrics import threshold_at_fmr as threshold_at_fmr
    from .plots import DET_TICKS as DET_TICKS
    from .plots import CMCDisplay as CMCDisplay
    from .plots import DETDisplay as DETDisplay
    from .plots import GroupBarDisplay as GroupBarDisplay
    from .plots import ROCDisplay as ROCDisplay
    from .plots import ScoreHistogramDisplay as ScoreHistogramDisplay
    from .plots import pyplot as pyplot
    from .protocols import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
    from .protocols import PREALIGNED_TEMPLATES as PREALIGNED_TEMPLATES
    from .protocols import SINGLE_FACE_SELECTIONS as SINGLE_FACE_SELECTIONS
    from .protocols import IdentificationProtocol as IdentificationProtocol
    from .protocols import ImageRef as ImageRef
    from .protocols import Pair as Pair
    from .protocols import ProtocolKind as ProtocolKind
    from .protocols import ProtocolSource as ProtocolSource
    from .protocols import TemplateSet as TemplateSet
    from .protocols import VerificationProtocol as VerificationProtocol
    from .protocols import aggregate_templates as aggregate_templates
    from .protocols import apply_labels as apply_labels
    from .protocols import folder_protocol as folder_protocol
    from .protocols import kfold_ids as kfold_ids
    from .protocols import open_protocol as open_protocol
    from .protocols import protocol_kinds as protocol_kinds
    from .protocols import read_csv_protocol as read_csv_protocol
    from .protocols import read_ijb_identification as read_ijb_identification
    from .protocols import read_ijb_verification as read_ijb_verification
    from .protocols import read_insightface_bin as read_insightface_bin
    from .protocols import read_labels as read_labels
    from .protocols import read_lfw_pairs as read_lfw_pairs
    from .protocols import read_lfw_protocol as read_lfw_protocol
    from .protocols import register_protocol_kind as register_protocol_kind
    from .provenance import ImageDigestMethod as ImageDigestMethod
    from .provenance import file_entry as file_entry
    from .provenance import file_sha256 as file_sha256
    from .provenance import image_list_digest as image_list_digest
    from .provenance import model_provenance as model_provenance
    from .provenance import software_versions as software_versions
    from .quality import UNIFIED as UNIFIED
    from .quality import add_quality as add_quality
    from .quality import evaluation_edc as evaluation_edc
    from .quality import image_qualities as image_qualities
    from .report import headline as headline
    from .report import headline_figure as headline_figure
    from .report import summary as summary
    from .report import write_report as write_report
    from .results import DEFAULT_FPIR_TARGETS as DEFAULT_FPIR_TARGETS
    from .results import Accuracy as Accuracy
    from .results import DecisionThreshold as DecisionThreshold
    from .results import EvaluationResult as EvaluationResult
    from .results import FailureCounts as FailureCounts
    from .results import GalleryResult as GalleryResult
    from .results import IdentificationResult as IdentificationResult
    from .results import ScoreSetResult as ScoreSetResult
    from .runner import face_selection as face_selection
    from .runner import run_protocol as run_protocol
    from .scorefiles import CSV_COLUMNS as CSV_COLUMNS
    from .scorefiles import SCORE_FORMATS as SCORE_FORMATS
    from .scorefiles import ScoreFormat as ScoreFormat
    from .scorefiles import ScoreTable as ScoreTable
    from .scorefiles import read_scores as read_scores
    from .scorefiles import write_scores as write_scores


#: names of earlier releases, resolved with a DeprecationWarning (module, name there, note)
_DEPRECATED: dict[str, tuple[str, str, str]] = {
    "PROTOCOL_KINDS": ("protocols", "protocol_kinds", "use protocol_kinds() (registered kinds)"),
}


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return list(dict.fromkeys(n for m in _SUBMODULES for n in _exports(m)))
    if name == "_MODULES":  # submodule → the names it exports (what __all__ is made of)
        return {m: _exports(m) for m in _SUBMODULES}
    if name in _DEPRECATED:
        mod, attr, note = _DEPRECATED[name]
        warnings.warn(f"faceprint.evaluation.{name} is deprecated: {note}", DeprecationWarning, stacklevel=2)
        return tuple(getattr(importlib.import_module(f".{mod}", __name__), attr)())
    module = None if name.startswith("_") else _find(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__getattr__("__all__")))
