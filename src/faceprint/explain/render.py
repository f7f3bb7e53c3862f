"""Pictures of an explanation: heat maps over both chips, side by side.

* :func:`composite`: an RGB uint8 image, the two chips with their maps overlaid and (xcos) the
  strongest correspondences as lines between them. Numpy and Pillow only, so the service can
  return it as PNG (:func:`png_bytes`) without matplotlib.
* :func:`save_figure`: the figure ``faceprint explain -o out.png`` writes: that image with the
  score, the decision, a colour key and the caption stating what a map means (matplotlib,
  imported when called; it is in the ``eval`` extra).

Colours: red where hiding the region would lower the similarity (the similarity comes from
there), blue where it would raise it; strength is the map value over the largest absolute value
of the two maps, so both chips share one scale.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError
from .base import LIMITS, Explanation
from .pair import PairExplanation

__all__ = ["overlay", "composite", "png_bytes", "save_figure", "caption"]

_RED = np.array([230.0, 25.0, 25.0])
_BLUE = np.array([30.0, 80.0, 230.0])
_GAP = 12  # pixels between the two chips (before scaling)


def _scale(e: Explanation) -> float:
    s = max(float(np.max(np.abs(e.map_a))), float(np.max(np.abs(e.map_b))))
    return s if s > 0 else 1.0


def overlay(
    chip: npt.NDArray[np.uint8], m: npt.NDArray[np.float32], scale: float, *, alpha: float = 0.6
) -> npt.NDArray[np.uint8]:
    """``chip`` tinted red where ``m > 0`` and blue where ``m < 0``, by ``|m| / scale``."""
    v = np.clip(np.asarray(m, np.float64) / scale, -1.0, 1.0)[..., None]
    grey = chip.astype(np.float64).mean(axis=2, keepdims=True) * 0.35 + chip.astype(np.float64) * 0.65
    colour = np.where(v >= 0, _RED, _BLUE)
    a = alpha * np.abs(v)
    return np.asarray(np.clip(grey * (1 - a) + colour * a, 0, 255).round(), dtype=np.uint8)


def composite(pe: PairExplanation, *, zoom: int = 2, lines: bool = True) -> npt.NDArray[np.uint8]:
    """Both chips with their maps, side by side (``zoom`` x their size), correspondences as lines."""
    from PIL import Image

    e = pe.explanation
    s = _scale(e)
    size = e.size
    left, right = overlay(pe.chip_a, e.map_a, s), overlay(pe.chip_b, e.map_b, s)
    canvas = np.full((size, 2 * size + _GAP, 3), 255, np.uint8)
    canvas[:, :size], canvas[:, size + _GAP :] = left, right
    img = Image.fromarray(canvas).resize((canvas.shape[1] * zoom, size * zoom), Image.Resampling.BICUBIC)
    if lines and e.correspondences:
        _draw_correspondences(img, e, size, zoom)
    return np.asarray(img, dtype=np.uint8)


def _draw_correspondences(img: Any, e: Explanation, size: int, zoom: int) -> None:
    """Each correspondence as an arc from its patch in A to its patch in B (arcs bulge alternately
    up and down, so matches on one row stay apart); thicker for stronger ones."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    top = max(c.weight for c in e.correspondences) or 1.0
    t = np.linspace(0.0, 1.0, 24)[:, None]
    for i, c in enumerate(e.correspondences):
        p0 = np.array([c.a[0], c.a[1]]) * zoom
        p2 = np.array([c.b[0] + size + _GAP, c.b[1]]) * zoom
        bulge = (1 if i % 2 else -1) * (0.08 + 0.03 * (i // 2)) * size * zoom
        p1 = (p0 + p2) / 2 + np.array([0.0, bulge])
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        width = max(1, int(round(3 * zoom * max(c.weight, 0.0) / top)))
        draw.line([tuple(p) for p in pts.tolist()], fill=(255, 215, 0), width=width, joint="curve")
        for x, y in (p0, p2):
            r = 2 * zoom
            draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 215, 0), width=zoom)


def png_bytes(image: npt.NDArray[np.uint8]) -> bytes:
    """An RGB uint8 image encoded as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def caption(pe: PairExplanation) -> str:
    """The decision in words, the method, and what the map does not say."""
    d, e = pe.decision, pe.explanation
    verdict = "MATCH" if d.match else "NO MATCH"
    rec = "" if e.reconstructed_score is None else f", patch cosines reconstruct {e.reconstructed_score:.3f}"
    return (
        f"{verdict}: similarity {d.score:.3f}, threshold {d.threshold:.3f} ({d.operating_point}); "
        f"method {e.method}{rec}; model {e.model}. Red: the similarity comes from there; blue: that "
        f"region pulls the faces apart. {LIMITS}"
    )


def _matplotlib() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BackendUnavailableError(
            "the explanation figure needs matplotlib: pip install 'faceprint[eval]' (or use --json)"
        ) from None
    return Figure, FigureCanvasAgg


def save_figure(pe: PairExplanation, path: str | os.PathLike[str], *, dpi: int = 120) -> None:
    """Write the side-by-side figure with its caption to ``path`` (PNG, or any format matplotlib
    infers from the suffix)."""
    import textwrap

    figure_cls, canvas_cls = _matplotlib()
    img = composite(pe, zoom=2)
    fig = figure_cls(figsize=(7.2, 4.7), dpi=dpi)
    canvas_cls(fig)
    ax = fig.add_axes((0.02, 0.25, 0.96, 0.67))
    ax.imshow(img)
    ax.set_axis_off()
    d = pe.decision
    colour = "#1b7f3b" if d.match else "#b3261e"
    ax.set_title(
        f"{'MATCH' if d.match else 'NO MATCH'}   similarity {d.score:.3f}   threshold {d.threshold:.3f}",
        color=colour,
        fontsize=13,
        fontweight="bold",
    )
    ax.text(0.25, -0.04, "A", transform=ax.transAxes, ha="center", va="top", fontsize=11)
    ax.text(0.75, -0.04, "B", transform=ax.transAxes, ha="center", va="top", fontsize=11)
    fig.text(0.02, 0.19, "\n".join(textwrap.wrap(caption(pe), 118)), fontsize=7.2, va="top", ha="left", wrap=False)
    fig.savefig(os.fspath(path), dpi=dpi)
