"""Model cards (Mitchell et al., 2019) built from the manifest and evaluation report JSONs only.

``faceprint models card MODEL [--eval REPORT_DIR ...] -o card.md|card.html``. Nothing in a card is
typed by hand: model details (architecture, version, sha256, licence, commercial use, training
data, intended and out-of-scope uses) come from ``faceprint/data/models.json`` (its ``extra.card``
entry), and every figure from a faceprint report JSON (``metrics.json`` of ``faceprint eval run``),
whose sha256 the card records. A card without a report says "not evaluated" and gives no figure.

Reports of the model (``"model": "<name>@<version>-<sha>"``) give verification figures (accuracy,
EER, FNMR@FMR, with their confidence intervals), per-group fairness (FMR/FNMR per group at one
threshold, FDR, GARBE) when the evaluation had groups, and the EDC when it had ``--quality``. Any
other faceprint report JSON (attack detection, …) is listed with its numeric headline fields.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, DataFormatError
from ..models import ModelSpec, get_spec

__all__ = ["ReportRef", "ModelCard", "load_report", "build_card", "render_markdown", "render_html", "write_card"]

NOT_EVALUATED = "not evaluated"
#: the largest report JSON a card reads (a metrics.json of a big protocol is a few MB)
MAX_REPORT_BYTES = 64 << 20


@dataclass(frozen=True)
class ReportRef:
    """One evaluation report: where it was read from, its sha256, and its parsed JSON."""

    path: str
    sha256: str
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "unknown"))


@dataclass(frozen=True)
class ModelCard:
    """The parts of a card: ``details`` (from the manifest) and ``reports`` (figures come from there only)."""

    model: str
    details: dict[str, Any]
    reports: tuple[ReportRef, ...] = ()
    #: the command that generated the card, when known (``faceprint models card`` records it)
    command: str | None = None


def load_report(path: str | os.PathLike[str]) -> ReportRef:
    """A report JSON: ``path`` itself, or ``path/metrics.json`` for a report folder."""
    p = Path(path)
    f = p / "metrics.json" if p.is_dir() else p
    if not f.is_file():
        raise ConfigurationError(f"no evaluation report at {p}: expected a report folder with metrics.json, or a JSON")
    if f.stat().st_size > MAX_REPORT_BYTES:
        raise DataFormatError(f"{f} is larger than {MAX_REPORT_BYTES >> 20} MiB; not a faceprint report")
    raw = f.read_bytes()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{f} is not JSON: {exc}") from None
    if not isinstance(data, dict) or "kind" not in data:
        raise DataFormatError(f"{f} is not a faceprint report JSON (no 'kind')")
    return ReportRef(os.fspath(f), hashlib.sha256(raw).hexdigest(), data)


def _card_fields(spec: ModelSpec) -> dict[str, Any]:
    card = dict(spec.extra.get("card", {}))
    base = spec.extra.get("base")
    if not card and base:  # <model>+<tta>: the base model's card fields
        card = dict(get_spec(str(base)).extra.get("card", {}))
    return card


def _details(spec: ModelSpec) -> dict[str, Any]:
    c = _card_fields(spec)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "version": spec.version,
        "description": spec.description,
        "architecture": c.get("architecture", "not documented"),
        "files": [{"filename": f.filename, "sha256": f.sha256, "package": f.package} for f in spec.files],
        "licence": spec.licence,
        "commercial_use": spec.commercial_use,
        "training_data": c.get("training_data", "not documented"),
        "source": c.get("source"),
        "intended_use": c.get("intended_use", "not documented"),
        "out_of_scope": c.get("out_of_scope", "not documented"),
        "embedding_dim": spec.embedding_dim,
        "measured_error": spec.extra.get("measured_error"),
    }


def _model_of(report: ReportRef) -> str | None:
    m = report.data.get("model")
    return None if not isinstance(m, str) else m.split("@", 1)[0]


def build_card(
    model: str, reports: Sequence[str | os.PathLike[str] | ReportRef] = (), *, command: str | None = None
) -> ModelCard:
    """The card of manifest model ``model`` with the figures of ``reports`` (folders or JSONs).

    A report of another model is refused (its ``model`` field names it): a card never shows
    figures measured on something else.
    """
    spec = get_spec(model)
    refs = tuple(r if isinstance(r, ReportRef) else load_report(r) for r in reports)
    for r in refs:
        other = _model_of(r)
        if other is not None and other != spec.name:
            raise ConfigurationError(
                f"the report {r.path} evaluates {other}, not {spec.name}; leave it out of this card"
            )
    return ModelCard(spec.name, _details(spec), refs, command)


# --- rendering: one list of (heading level, kind, payload) blocks, written as Markdown or HTML ---

Block = tuple[str, Any]


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.2f}%"


def _ci(c: Any) -> str:
    return "" if not c or None in c else f"[{100 * c[0]:.2f}%, {100 * c[1]:.2f}%]"


def _verification_blocks(r: ReportRef) -> list[Block]:
    d = r.data
    v = d.get("verification") or {}
    acc = d.get("accuracy") or {}
    thr = d.get("threshold") or {}
    rows = [
        ["comparisons", f"{v.get('n_mated', 0):,} mated + {v.get('n_nonmated', 0):,} non-mated", ""],
        ["EER", _pct(v.get("eer")), _ci(v.get("eer_ci"))],
        ["AUC", "n/a" if v.get("auc") is None else f"{v['auc']:.5f}", ""],
    ]
    if acc:
        rows.append([f"accuracy at threshold {thr.get('value', acc.get('threshold')):.4f}", _pct(acc.get("value")), ""])
    unreached = []
    for p in v.get("fnmr_at_fmr") or []:
        if p.get("fnmr") is None:
            unreached.append(f"{p['target_fmr']:g}")
        else:
            rows.append([f"FNMR @ FMR {p['target_fmr']:g}", _pct(p.get("fnmr")), _ci(p.get("ci"))])
    out: list[Block] = [("table", (["measure", "value", "95% CI"], rows))]
    if unreached:
        out.append(("p", f"FMR {', '.join(unreached)}: too few non-mated comparisons in this report to measure."))
    if thr.get("description"):
        out.append(("p", f"Threshold: {thr['description']}."))
    if v.get("eer_ci_method"):
        out.append(("p", f"Intervals: {v['eer_ci_method']}."))
    return out


def _fairness_blocks(r: ReportRef) -> list[Block]:
    f = r.data.get("fairness")
    if not f:
        return []
    from ..rates import clopper_pearson

    rows = []
    for g in f["groups"]:
        cis = []
        for k, total in ((g["n_false_match"], g["n_nonmated"]), (g["n_false_nonmatch"], g["n_mated"])):
            if total:
                lo, hi = clopper_pearson(k, total, 0.95)
                cis.append(_ci([float(lo), float(hi)]))
            else:
                cis.append("")
        rows.append(
            [
                str(g["group"]),
                f"{g['n_mated']:,}",
                f"{g['n_nonmated']:,}",
                _pct(g["fmr"]),
                cis[0],
                _pct(g["fnmr"]),
                cis[1],
            ]
        )
    out: list[Block] = [
        ("h3", "Per-group error rates"),
        ("table", (["group", "mated", "non-mated", "FMR", "FMR 95% CI", "FNMR", "FNMR 95% CI"], rows)),
    ]

    def n(x: Any, d: int = 4) -> str:
        return "n/a" if x is None else f"{x:.{d}f}"

    out.append(
        (
            "p",
            f"At one threshold {f['threshold']:.4f} for every group: FMR max/min {n(f.get('fmr_ratio'), 2)}, "
            f"FNMR max/min {n(f.get('fnmr_ratio'), 2)}, FDR {n(f.get('fdr'))} (1 = fair), "
            f"GARBE {n(f.get('garbe'))} (0 = fair), alpha {f.get('alpha')}. Intervals: Clopper-Pearson 95%.",
        )
    )
    out += _group_source_blocks(r.data.get("provenance", {}).get("groups") or {})
    return out


def _group_source_blocks(g: dict[str, Any]) -> list[Block]:
    from .groups import describe_groups

    return [("p", sentence) for sentence in describe_groups(g)]


def _quality_blocks(r: ReportRef) -> list[Block]:
    q = r.data.get("quality")
    if not q:
        return []
    rows = [
        [
            c.get("name", ""),
            _pct(c.get("fnmr0")),
            _pct(c.get("fnmr_at_10pct")),
            _pct(c.get("fnmr_at_20pct")),
            "n/a" if c.get("ratio_to_random") is None else f"{c['ratio_to_random']:.3f}",
        ]
        for c in q.get("curves", [])
    ]
    return [
        ("h3", "Quality (EDC, ISO/IEC 29794-1)"),
        ("table", (["quality measure", "FNMR", "FNMR, 10% discarded", "FNMR, 20% discarded", "pAUC / random"], rows)),
    ]


def _other_blocks(r: ReportRef) -> list[Block]:
    rows = [[k, str(v)] for k, v in r.data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return [("table", (["field", "value"], rows))] if rows else [("p", "No numeric headline fields.")]


def _report_blocks(r: ReportRef, i: int) -> list[Block]:
    d = r.data
    prov = d.get("provenance") or {}
    ds = (prov.get("dataset") or {}).get("images") or {}
    title = f"Report {i}: {d.get('protocol', r.kind)}"
    out: list[Block] = [
        ("h2", title),
        (
            "ul",
            [
                f"report: `{Path(r.path).parent.name}/{Path(r.path).name}`, sha256 `{r.sha256}`",
                f"kind: {r.kind}; model: `{d.get('model', 'n/a')}`; created {prov.get('created', 'n/a')}",
                f"settings: {json.dumps(d.get('settings', {}), sort_keys=True)}",
                *([f"images sha256 `{ds['sha256']}` ({ds.get('count')} images)"] if ds.get("sha256") else []),
                *([f"command: `{d['command']}`"] if d.get("command") else []),
            ],
        ),
    ]
    if r.kind in ("verification", "identification") and d.get("verification"):
        out += _verification_blocks(r) + _fairness_blocks(r) + _quality_blocks(r)
    elif r.kind not in ("verification", "identification"):
        out += _other_blocks(r)
    return out


def _blocks(card: ModelCard) -> list[Block]:
    d = card.details
    files = "; ".join(f"{f['filename']} sha256 `{f['sha256']}`" for f in d["files"])
    out: list[Block] = [
        ("h1", f"Model card: {card.model}"),
        (
            "p",
            "Generated by `faceprint models card` from faceprint's model manifest and the evaluation reports listed "
            "below (each by its sha256); no figure is typed by hand."
            + (f" Command: `{card.command}`" if card.command else ""),
        ),
        ("h2", "Model details"),
        (
            "ul",
            [
                f"name: {d['name']} (kind: {d['kind']}), version {d['version']}",
                f"description: {d['description']}",
                f"architecture: {d['architecture']}",
                *([f"embedding: {d['embedding_dim']}-d"] if d.get("embedding_dim") else []),
                f"files: {files}",
                f"licence: {d['licence']}",
                f"commercial use: {'yes' if d['commercial_use'] else 'NO (research use only)'}",
                f"training data: {d['training_data']}",
                *([f"source: {d['source']}"] if d.get("source") else []),
            ],
        ),
        ("h2", "Intended use"),
        ("p", str(d["intended_use"])),
        ("h2", "Out-of-scope uses"),
        ("p", str(d["out_of_scope"])),
        ("h2", "Metrics"),
    ]
    me = d.get("measured_error")
    if me and me.get("error"):
        per = [
            f"{k.removeprefix('error_')} {_pct(v['rate'])} {_ci(v['ci95'])} ({v['errors']:,} of {v['n']:,})"
            for k, v in me.items()
            if k.startswith("error_") and isinstance(v, dict)
        ]
        e = me["error"]
        out.append(
            (
                "p",
                f"Measured error on {me.get('data')}: {_pct(e['rate'])} {_ci(e['ci95'])} ({e['errors']:,} of "
                f"{e['n']:,})"
                + (f"; by labelled class: {', '.join(per)}" if per else "")
                + f". Written to the manifest by `{me.get('command', 'n/a')}`.",
            )
        )
    if not card.reports:
        out.append(
            ("p", f"**{NOT_EVALUATED}**: no evaluation report was given, so this card states no evaluation figure.")
        )
    for i, r in enumerate(card.reports, 1):
        out += _report_blocks(r, i)
    out += [
        ("h2", "Caveats"),
        (
            "ul",
            [
                "Figures hold for the data and settings of each report only; LFW-style benchmarks do not show that a "
                "system is fit for a deployment. Calibrate and evaluate on data like the deployment's.",
                "Per-group figures rest on the groups the report used (labels or predictions, as stated) and on "
                "binary apparent-gender labels where gender is the group; they do not cover every population.",
                "Figures are measured at the threshold each report states; other thresholds give other error rates.",
            ],
        ),
    ]
    return out


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|")


def render_markdown(card: ModelCard) -> str:
    """The card as Markdown."""
    lines: list[str] = []
    for kind, payload in _blocks(card):
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + payload, ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "ul":
            lines += [f"- {x}" for x in payload] + [""]
        elif kind == "table":
            head, rows = payload
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _inline(x: str) -> str:
    """HTML-escape, then turn `code` and **bold** spans into tags."""
    import re

    s = html.escape(x, quote=False)
    s = re.sub(r"`([^`]*)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]*)\*\*", r"<strong>\1</strong>", s)


def render_html(card: ModelCard) -> str:
    """The card as a self-contained HTML page (no scripts, no external resources)."""
    body: list[str] = []
    for kind, payload in _blocks(card):
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(payload)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(payload)}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in payload) + "</ul>")
        elif kind == "table":
            head, rows = payload
            th = "".join(f"<th>{_inline(h)}</th>" for h in head)
            trs = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            body.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px}"
    )
    title = html.escape(f"Model card: {card.model}")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_card(card: ModelCard, path: str | os.PathLike[str]) -> Path:
    """Write ``card`` as Markdown (``.md``) or HTML (``.html``/``.htm``), by the file's suffix."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".md":
        text = render_markdown(card)
    elif suffix in (".html", ".htm"):
        text = render_html(card)
    else:
        raise ConfigurationError(f"a card is written as .md or .html, not {p.name!r}")
    p.write_text(text, "utf-8")
    return p
