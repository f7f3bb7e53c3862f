"""The report folder: report.md, report.html (figures embedded), metrics.json, scores CSVs and PNGs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import ConfigurationError
from ..results import EvaluationResult
from ..scorefiles import write_scores
from .document import Document, file_mode, json_default, write_text
from .figures import figures
from .sections import reproduce_sections, results_sections

__all__ = ["write_report"]


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
    matplotlib is imported here (for the figures), not before.
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
        os.chmod(p, file_mode())  # a report is for reading: not the 0600 of a temporary file
    figs = figures(result, out)
    for path, _ in figs:
        files[path.name] = path

    doc = Document()
    rows = results_sections(doc, result)
    doc.h(2, "Figures")
    for path, caption in figs:
        doc.img(path, caption)
    reproduce_sections(doc, result, command, list(files) + ["metrics.json"])

    metrics = {
        "command": command,
        "headline": rows,
        **result.to_dict(),
        "files": sorted([*files, "report.md", "report.html", "metrics.json"]),
    }
    metrics_path = out / "metrics.json"
    write_text(metrics_path, json.dumps(metrics, indent=2, allow_nan=False, default=json_default) + "\n")
    files["metrics.json"] = metrics_path
    md_path, html_path = out / "report.md", out / "report.html"
    write_text(md_path, doc.markdown())
    write_text(html_path, doc.html(f"Evaluation report: {result.protocol}"))
    files["report.md"] = md_path
    files["report.html"] = html_path
    return files
