"""A report as a list of blocks (headings, paragraphs, tables, code, figures), rendered to
Markdown and to one self-contained HTML page (figures embedded as data URIs); atomic file writes."""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Document", "write_text", "file_mode", "json_default"]


class Document:
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


def file_mode() -> int:
    """The mode a plainly created file gets (0o666 less the umask); mkstemp would give 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text(path: Path, text: str) -> None:
    """Write under a temporary name and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".faceprint-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_default(x: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return os.fspath(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")
