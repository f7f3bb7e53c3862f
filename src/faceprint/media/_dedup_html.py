"""The HTML page of a deduplication report: groups with inline thumbnails, one self-contained file."""

from __future__ import annotations

import base64
import html
import io

from .dedup import DedupReport, thumbnail


def _img(path: str) -> str:
    from PIL import Image

    t = thumbnail(path)
    if t is None:
        return f'<div class="missing">{html.escape(path)}</div>'
    buf = io.BytesIO()
    Image.fromarray(t).save(buf, format="JPEG", quality=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<figure><img src="data:image/jpeg;base64,{data}" alt=""><figcaption>{html.escape(path)}</figcaption></figure>'
    )


def _section(title: str, groups: list[list[str]], limit: int) -> str:
    rows = [f"<h2>{html.escape(title)} ({len(groups)})</h2>"]
    for g in groups[:limit]:
        rows.append('<div class="group">' + "".join(_img(p) for p in g) + "</div>")
    if len(groups) > limit:
        rows.append(f"<p>… and {len(groups) - limit} more groups (see the JSON report).</p>")
    return "\n".join(rows)


def render_html(report: DedupReport, *, limit: int = 200) -> str:
    """A self-contained page (thumbnails inlined as base64): duplicate groups (the kept image first),
    same-person groups, leaks into the other set, skipped files. At most ``limit`` groups a section."""
    p = report.paths
    dup = [[p[i] for i in g] for g in report.groups]
    ident = [[p[i] for i in g] for g in report.identity_groups]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>faceprint dedup</title><style>"
        "body{font-family:sans-serif}.group{display:flex;flex-wrap:wrap;gap:6px;border-bottom:1px solid #ccc;"
        "padding:6px}figure{margin:0;width:110px;font-size:9px;word-break:break-all}"
        "figure:first-child{outline:2px solid #2a2}</style></head><body>",
        f"<h1>faceprint dedup: {len(p)} images, {len(report.groups)} duplicate groups</h1>",
        _section("Duplicate groups (first: kept)", dup, limit),
        _section("Same person, different photos", ident, limit),
    ]
    if report.against_paths:
        ap = report.against_paths
        leaks = [[p[x.a], ap[x.b]] for x in report.against_pairs]
        people = [[p[i], ap[j]] for i, j, _ in report.against_identities]
        parts += [_section("Also in the other set: same image", leaks, limit)]
        parts += [_section("Also in the other set: same person", people, limit)]
    if report.skipped:
        items = "".join(f"<li>{html.escape(s.path)}: {html.escape(s.reason)}</li>" for s in report.skipped)
        parts.append(f"<h2>Skipped ({len(report.skipped)})</h2><ul>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
