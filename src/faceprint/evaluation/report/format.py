"""How numbers read in a report: percentages, intervals, thresholds, FMR targets."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["pct", "ci", "num", "fmr_label"]


def pct(x: float | None, digits: int = 3) -> str:
    """``0.01234`` → ``"1.234%"``; None or non-finite → ``"n/a"``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def ci(interval: Sequence[float] | None, digits: int = 3) -> str:
    """``(0.01, 0.02)`` → ``"[1.000%, 2.000%]"``; None → ``""``."""
    if interval is None:
        return ""
    return f"[{pct(interval[0], digits)}, {pct(interval[1], digits)}]"


def num(x: float | None, digits: int = 4) -> str:
    """A threshold or ratio with ``digits`` decimals; None or non-finite → ``"n/a"``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def fmr_label(t: float) -> str:
    """``0.001`` → ``"1e-3"`` (as FMR targets are named in tables and JSON keys)."""
    return f"{t:.0e}".replace("e-0", "e-").replace("e+0", "e+")
