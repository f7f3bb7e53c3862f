"""The PAD report folder: report.md, report.html (figures embedded), report.json, Bob's score file,
a DET plot (APCER vs BPCER per species) and the score distributions.

The verification report's machinery is reused: :class:`~faceprint.evaluation.report.document.Document`
for Markdown/HTML, its atomic writes, and :class:`~faceprint.evaluation.plots.DETDisplay`.
Every title, table and figure says "synthetic attacks" when the attacks were synthetic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .pad import PadOperatingPoint, PadReport, Presentations, write_bob_pad_scores
from .report.document import Document, json_default, write_text
from .report.format import ci, num, pct

__all__ = ["write_pad_report", "pad_markdown", "pad_document"]


def _rate_cell(point: PadOperatingPoint, species: str | None = None) -> str:
    r = point.bpcer if species is None else point.apcer.get(species)
    if r is None:
        return "n/a"
    return f"{pct(r.rate, 2)} {ci(r.ci, 2)}".strip()


def _summary(doc: Document, r: PadReport) -> None:
    doc.p(
        f"Detector `{r.detector}` ({r.kind}), threshold {num(r.threshold)} (attack when score >= threshold). "
        f"{r.n_bona_fide} bona fide presentations; "
        + ", ".join(f"{a['n']} {s}" for s, a in r.attacks.items())
        + f" attack presentations ({r.label})."
    )
    if r.synthetic_species:
        doc.p(
            "SYNTHETIC ATTACKS: the attack presentations of "
            + ", ".join(r.synthetic_species)
            + " were made by faceprint.attacks.synthetic from bona fide photos (seeded image transforms imitating "
            "print, screen replay and paper masks). They are not real attacks; the figures show how the detector "
            "separates these transforms from bona fide photos, not how it resists real presentation attacks."
        )
    doc.p(
        "Rates are computed on presentations that got a score; presentations where no face was found are "
        "non-responses (APNRR, BPNRR). Intervals: exact Clopper-Pearson"
        + (f", {r.confidence:.0%}." if r.confidence else " (not computed).")
    )


def _tables(doc: Document, r: PadReport) -> None:
    species = list(r.attacks)
    doc.h(2, f"Error rates at the detector's threshold ({r.label})")
    rows = [[f"APCER {s}", _rate_cell(r.at_threshold, s)] for s in species]
    rows.append([f"APCER_AP (max, {r.at_threshold.worst_species})", pct(r.at_threshold.apcer_max, 2)])
    rows.append(["BPCER", _rate_cell(r.at_threshold)])
    rows.append(["BPNRR (bona fide, no face)", pct(r.bpnrr, 2)])
    rows += [[f"APNRR {s} (no face)", pct(r.apnrr(s), 2)] for s in species]
    doc.table(["figure", "value [CI]"], rows)

    doc.h(2, f"Operating points at fixed rates ({r.label})")
    head = ["figure", "threshold", "BPCER [CI]", *[f"APCER {s}" for s in species], "APCER_AP", "note"]
    prow = []
    for p in (*r.bpcer_at_apcer, *r.apcer_at_bpcer):
        fixed = f"APCER_AP <= {p.target:.0%}" if p.name.startswith("BPCER") else f"BPCER <= {p.target:.0%}"
        prow.append(
            [
                f"{p.name} ({fixed})",
                num(p.threshold),
                _rate_cell(p),
                *[_rate_cell(p, s) for s in species],
                pct(p.apcer_max, 2),
                p.reason or "",
            ]
        )
    doc.table(head, prow)

    doc.h(2, f"Detection equal error rate ({r.label})")
    erows = [["all species pooled", pct(r.d_eer.eer, 2), num(r.d_eer.threshold)]]
    erows += [[s, pct(e.eer, 2), num(e.threshold)] for s, e in r.d_eer_per_species.items()]
    doc.table(["attacks", "D-EER", "threshold"], erows)


def _iapmr(doc: Document, r: PadReport) -> None:
    if not r.iapmr:
        return
    i = r.iapmr
    doc.h(2, f"Integrated view: IAPMR ({r.label})")
    doc.p(
        f"Each attack is compared by the verifier {i['verifier']} with another bona fide image of the same subject "
        f"at its operating point {i['operating_point']} (threshold {num(i['threshold'])}). IAPMR = share of attacks "
        "the verifier accepts; 'with PAD' = accepted by the verifier and not flagged by the detector."
    )
    rows = []
    for s, v in i["species"].items():
        if not v.get("n"):
            rows.append([s, "0", "n/a", "n/a"])
            continue
        a, b = v["iapmr"], v["iapmr_with_pad"]
        rows.append([s, str(v["n"]), f"{pct(a['rate'], 2)} {ci(a['ci'], 2)}", f"{pct(b['rate'], 2)} {ci(b['ci'], 2)}"])
    doc.table(["species", "attacks compared", "IAPMR (verifier alone)", "IAPMR with PAD"], rows)


def pad_document(r: PadReport, figures: list[tuple[Path, str]] | None = None, command: str = "") -> Document:
    """The report as a :class:`Document` (Markdown and HTML)."""
    doc = Document()
    doc.h(1, f"Presentation attack detection (ISO/IEC 30107-3): {r.detector} on {r.label}")
    _summary(doc, r)
    _tables(doc, r)
    _iapmr(doc, r)
    if figures:
        doc.h(2, "Figures")
        for path, caption in figures:
            doc.img(path, caption)
    if command:
        doc.h(2, "Reproduce")
        doc.code(command)
    return doc


def pad_markdown(r: PadReport) -> str:
    """The report as Markdown (no figures), e.g. for the terminal."""
    return pad_document(r).markdown()


def _figures(
    r: PadReport, bona: Presentations, attacks: Mapping[str, Presentations], out: Path
) -> list[tuple[Path, str]]:
    from .plots import DETDisplay, pyplot

    plt = pyplot()
    figs: list[tuple[Path, str]] = []
    fig, ax = plt.subplots(figsize=(6, 5))
    shown = []
    for s, (ap, bp) in r.curves.items():
        shown.append(DETDisplay(fmr=ap, fnmr=bp, name=s).plot(ax=ax))
    DETDisplay.fit_axes(shown)
    ax.set_xlabel("APCER (attacks accepted as bona fide)")
    ax.set_ylabel("BPCER (bona fide rejected as attacks)")
    ax.set_title(f"DET, {r.detector} ({r.label})", fontsize=9)
    if shown:
        for s, d in zip(r.curves, shown, strict=True):
            rate = r.at_threshold.apcer[s].rate
            assert r.at_threshold.bpcer is not None
            d.mark(rate, r.at_threshold.bpcer.rate, color=d.line_.get_color())
    det = out / "det.png"
    fig.savefig(det, dpi=110, bbox_inches="tight")
    plt.close(fig)
    figs.append((det, f"DET curve per species, dots at the default threshold ({r.label})"))

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = [i / 50 for i in range(51)]
    ax.hist(bona.responded, bins=bins, alpha=0.6, density=True, label="bona fide")
    for s, p in attacks.items():
        ax.hist(p.responded, bins=bins, alpha=0.45, density=True, label=s, histtype="stepfilled")
    ax.axvline(r.threshold, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("attack score (higher = attack)")
    ax.set_ylabel("density")
    ax.set_title(f"Score distributions, {r.detector} ({r.label})", fontsize=9)
    ax.legend(fontsize=8)
    hist = out / "scores.png"
    fig.savefig(hist, dpi=110, bbox_inches="tight")
    plt.close(fig)
    figs.append((hist, f"Attack-score distributions and the threshold ({r.label})"))
    return figs


def write_pad_report(
    r: PadReport,
    bona: Presentations,
    attacks: Mapping[str, Presentations],
    out_dir: str | os.PathLike[str],
    *,
    command: str = "",
) -> dict[str, Path]:
    """Write report.md, report.html, report.json, scores.txt (Bob 4-column), det.png and scores.png."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the report folder {out}: {exc.strerror or exc}") from exc
    files: dict[str, Path] = {"scores.txt": write_bob_pad_scores(out / "scores.txt", bona, attacks)}
    figs = _figures(r, bona, attacks, out)
    files.update({p.name: p for p, _ in figs})
    doc = pad_document(r, figs, command)
    failures: dict[str, Any] = {"bona_fide": bona.failures, **{s: p.failures for s, p in attacks.items()}}
    body = {
        "command": command,
        **r.to_dict(),
        "failures": failures,
        "files": sorted([*files, "report.md", "report.html", "report.json"]),
    }
    for name, text in (
        ("report.json", json.dumps(body, indent=2, allow_nan=False, default=json_default) + "\n"),
        ("report.md", doc.markdown()),
        ("report.html", doc.html(f"PAD report: {r.detector} on {r.label}")),
    ):
        write_text(out / name, text)
        files[name] = out / name
    return files
