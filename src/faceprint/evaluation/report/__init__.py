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

#: where the other names this module exported before 0.2 live now (their modules' ``__all__``)
_MOVED_TO = ("results", "provenance", "evaluate", "runner", "protocols")


def __getattr__(name: str) -> Any:
    if name == "PROTOCOL_KINDS":
        module, value = "protocols", tuple(importlib.import_module("..protocols", __name__).protocol_kinds())
    else:
        for module in _MOVED_TO:
            mod = importlib.import_module(f"..{module}", __name__)
            if name in mod.__all__:
                value = getattr(mod, name)
                break
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"faceprint.evaluation.report.{name} moved to faceprint.evaluation.{module} (import it from "
        "faceprint.evaluation); the old path goes in faceprint 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
