"""The rules of docs/ARCHITECTURE.md that a program can check: import direction and size budgets.

Read from the source with ``ast`` (nothing is imported), so a rule broken anywhere in
``src/faceprint`` fails here with the offending line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "faceprint"

#: Kinds of pipeline stage: a package with a protocol in ``base.py`` and one module per backend.
STAGES = {"detection", "landmarks", "quality", "attacks", "attributes", "embedding", "explain", "protection"}

#: Layer of each top-level module or package (stages: ``base.py`` is layer 1, backends layer 3).
#: A module may import from its own layer and the layers below, never above.
LAYERS = {
    "types": 0,
    "errors": 0,
    "rates": 1,
    "io": 1,
    "models": 1,
    "onnx_runtime": 1,
    "_pool": 1,
    "alignment": 1,
    "registry": 2,
    "scoring": 3,
    "pipeline": 4,
    "batch": 4,
    "cluster": 4,
    "export": 4,
    "media": 4,
    "gallery": 5,
    "evaluation": 5,
    "mapping": 5,
    "testing": 5,
    "cli": 6,
    "service": 6,
    "__main__": 6,
    "__init__": 6,
}

#: Known breaches, each with the change that removes it (none left: keep it that way).
KNOWN: dict[str, str] = {}


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] in STAGES:
        return 1 if parts[1:] in ([], ["base"]) else 3
    if parts[0] not in LAYERS:
        raise AssertionError(
            f"faceprint.{parts[0]} has no layer: add it to LAYERS in tests/test_architecture.py "
            "and to the layer list of docs/ARCHITECTURE.md"
        )
    return LAYERS[parts[0]]


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _exempt_nodes(tree: ast.Module) -> set[int]:
    """Imports that are not run-time dependencies: under ``if TYPE_CHECKING:``, and the test
    plumbing inside a backend's ``_conformance_cases`` hook."""
    out: set[int] = set()
    for node in ast.walk(tree):
        typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        hook = isinstance(node, ast.FunctionDef) and node.name == "_conformance_cases"
        if typing_only or hook:
            out |= {id(n) for n in ast.walk(node)}
    return out


def imports(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """(line, module below faceprint) for every faceprint import of a file, lazy ones included."""
    me = module_name(path, root).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    exempt = _exempt_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            names = [node.module] if node.module else [a.name for a in node.names]
            out += [(node.lineno, ".".join([*base, n])) for n in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faceprint."):
            out.append((node.lineno, node.module[len("faceprint.") :]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name[len("faceprint.") :]) for a in node.names if a.name.startswith("faceprint.")]
    return [(line, m) for line, m in out if m and m != "__version__"]


def layer_breaches(root: Path = SRC) -> dict[str, list[str]]:
    """``"a -> b"`` (top-level names) → the import lines that go up the layers."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        me = module_name(path, root)
        for line, target in imports(path, root):
            if layer(target) > layer(me):
                key = f"{me.split('.')[0]} -> {target.split('.')[0]}"
                found.setdefault(key, []).append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


def test_imports_go_down_the_layers() -> None:
    new = {k: v for k, v in layer_breaches().items() if k not in KNOWN}
    assert not new, "imports against the layer order of docs/ARCHITECTURE.md:\n" + "\n".join(
        line for lines in new.values() for line in lines
    )


def test_stage_protocols_import_only_types_and_errors() -> None:
    for stage in sorted(STAGES):
        base = SRC / stage / "base.py"
        if base.exists():
            bad = [m for _, m in imports(base) if m.split(".")[0] not in ("types", "errors")]
            assert not bad, f"{stage}/base.py imports {bad}; a protocol module needs only types and errors"


def test_no_known_layer_breaches_left() -> None:
    assert not layer_breaches()


# --- size budget (issue 9): functions ≤ 80 lines, evaluation/ and gallery/ modules ≤ 700 ---------

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 700


def size_offenders(root: Path = SRC) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        n_lines = len(text.splitlines())
        if rel.split("/")[0] in ("evaluation", "gallery") and n_lines > MAX_MODULE_LINES:
            out.append(f"{rel}: {n_lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{rel}:{node.lineno} {node.name}(): {n} lines")
    return out


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_rules_catch_what_they_should(tmp_path: Path) -> None:
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    root = write_tree(
        tmp_path,
        {
            "types.py": "from .pipeline import FacePipeline\n",  # up the layers
            "detection/base.py": "from ..types import BBox\n",
            "detection/fast.py": "from ..registry import detectors\n\n\ndef _conformance_cases(cls, name):\n"
            "    from ..testing import BackendCase\n",  # test plumbing in the hook: allowed
            "pipeline.py": f"def long():\n{long_body}\n\n\ndef short():\n    return 1\n",
            "evaluation/big.py": "x = 1\n" * (MAX_MODULE_LINES + 1),
            "gallery/small.py": "x = 1\n" * MAX_MODULE_LINES,
        },
    )
    assert layer_breaches(root) == {"types -> pipeline": ["types.py:1 imports pipeline"]}
    assert size_offenders(root) == [
        f"evaluation/big.py: {MAX_MODULE_LINES + 1} lines",
        "pipeline.py:1 long(): 81 lines",
    ]
    with pytest.raises(AssertionError, match="faceprint.newthing has no layer"):
        layer_breaches(write_tree(tmp_path, {"newthing.py": "from . import types\n"}))


def test_size_budget() -> None:
    offenders = size_offenders()
    assert not offenders, f"{len(offenders)} over budget:\n" + "\n".join(offenders)
