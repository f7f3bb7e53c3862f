"""Rendering an evaluation: the report folder (Markdown, self-contained HTML, metrics.json, figures).

:func:`write_report` turns an :class:`~faceprint.evaluation.results.EvaluationResult` into a
folder; :func:`headline` gives the rows of its headline table; :func:`summary` every figure by
name, the protocol's headline figure first (``eval run --json``). Modules: :mod:`.writer` (the
folder), :mod:`.sections` (what report.md says), :mod:`.headline_rows`, :mod:`.figures` (PNG, through
the Display classes of :mod:`faceprint.evaluation.plots`), :mod:`.document` (Markdown/HTML
blocks), :mod:`.format` (how numbers read).

Before 0.2 ``faceprint.evaluation.report`` also held the result types, provenance, the runner
and the protocol opener. Those names still import from here for one release, with a
DeprecationWarning; import them from :mod:`faceprint.evaluation`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .headline_rows import headline
from .named_figures import headline_figure, summary
from .writer import write_report

__all__ = ["write_report", "headline", "summary", "headline_figure"]

#: names this module exported before 0.2 → (module that holds them now, name there)
_MOVED: dict[str, tuple[str, str]] = {
    **{
        n: ("results", n)
        for n in (
            "DEFAULT_FPIR_TARGETS",
            "FailureCounts",
            "DecisionThreshold",
            "Accuracy",
            "ScoreSetResult",
            "GalleryResult",
            "IdentificationResult",
            "EvaluationResult",
        )
    },
    **{n: ("provenance", n) for n in ("software_versions", "file_sha256", "image_list_digest")},
    **{n: ("evaluate", n) for n in ("evaluate_scores", "evaluate_identification")},
    "run_protocol": ("runner", "run_protocol"),
    "ProtocolSource": ("protocols", "ProtocolSource"),
    "open_protocol": ("protocols", "open_protocol"),
    "PROTOCOL_KINDS": ("protocols", "protocol_kinds"),
}


def __getattr__(name: str) -> Any:
    where = _MOVED.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = where
    warnings.warn(
        f"faceprint.evaluation.report.{name} moved to faceprint.evaluation.{module} (import it from "
        "faceprint.evaluation); the old path goes in faceprint 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    value = getattr(importlib.import_module(f"..{module}", __name__), attr)
    return tuple(value()) if name == "PROTOCOL_KINDS" else value
