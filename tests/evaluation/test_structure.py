"""Size limits of issue 9: no module of the evaluation package over 700 lines, no function over 80.

Counted with :mod:`ast` (a function's lines run from its ``def`` to its last line, docstring
included), so a test names the function that grew too long. The modules at the bottom of the
evaluation stack (``faceprint.rates``, ``faceprint.batch``) follow the same function limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "faceprint"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80

EVALUATION = sorted((SRC / "evaluation").rglob("*.py"))
BELOW = [SRC / "rates.py", SRC / "batch.py", SRC / "scoring.py", SRC / "cluster.py"]


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > limit:
                out.append(f"{path.name}:{node.lineno} {node.name}() has {n} lines")
    return out


@pytest.mark.parametrize("path", EVALUATION, ids=lambda p: str(p.relative_to(SRC)))
def test_evaluation_modules_stay_small(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(SRC)} has {n} lines (limit {MAX_MODULE_LINES}): split it"
    assert long_functions(path) == []


@pytest.mark.parametrize("path", [p for p in BELOW if p.exists()], ids=lambda p: p.name)
def test_functions_below_evaluation_stay_short(path: Path) -> None:
    assert long_functions(path) == []


def test_the_checker_sees_a_long_function(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n" + "    x = 1\n" * 85 + "\n\ndef g():\n    return 1\n")
    assert long_functions(f) == ["m.py:1 f() has 86 lines"]
