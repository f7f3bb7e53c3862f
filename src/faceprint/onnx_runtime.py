"""ONNX Runtime helpers every ONNX backend shares: find a model file, pin its version, open a session.

onnxruntime is imported only when a session is opened, so importing faceprint stays light.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    ModelFormatError,
    ModelNotFoundError,
)
from .models import model_dir, sha256_file, verify_file

__all__ = [
    "resolve_onnx_model",
    "model_version_of",
    "open_onnx_session",
    "dims",
    "describe_nodes",
    "float_dtype",
]

log = logging.getLogger(__name__)


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a declared dependency
        raise BackendUnavailableError(
            "the ONNX backends need ONNX Runtime: pip install onnxruntime (or onnxruntime-gpu)"
        ) from exc
    return onnxruntime


def resolve_onnx_model(model: str | os.PathLike[str]) -> Path:
    """Find a model file: an existing path as given, else a name relative to :func:`model_dir`.

    A name without a suffix also matches ``name.onnx``. Raises :class:`ModelNotFoundError`
    that lists every place looked at.
    """
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise ConfigurationError(f"model must be a path or a file name, got {model!r}")
    given = Path(model).expanduser()
    candidates: list[Path] = [given]
    if not given.is_absolute():
        base = model_dir()
        candidates.append(base / given)
    if given.suffix == "":
        candidates += [c.with_name(c.name + ".onnx") for c in list(candidates)]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise ModelNotFoundError(
        f"ONNX model {os.fspath(model)!r} not found (looked at: {looked}); put the file in the model "
        f"directory {model_dir()} (set FACEPRINT_MODEL_DIR to use another) or pass its full path"
    )


def model_version_of(path: Path, sha256: str | None) -> str:
    """Verify ``path`` against ``sha256`` when given; return the first 12 hex digits of its sha256."""
    if sha256 is not None:
        expected = str(sha256).strip().lower()
        if len(expected) != 64 or any(ch not in "0123456789abcdef" for ch in expected):
            raise ConfigurationError(f"sha256 must be 64 hex digits, got {sha256!r}")
        verify_file(path, expected)
        return expected[:12]
    return sha256_file(path)[:12]


def open_onnx_session(model: Path | bytes, *, threads: int | None, providers: Sequence[str] | None) -> Any:
    """An ``onnxruntime.InferenceSession`` for a model file or serialised model bytes; a model
    ONNX Runtime cannot load gives :class:`ModelFormatError`."""
    ort = _onnxruntime()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigurationError(f"threads must be a positive integer or None, got {threads!r}")
    if providers is None:
        wanted: list[str] = ["CPUExecutionProvider"]
    elif isinstance(providers, str):
        wanted = [providers]
    else:
        wanted = [str(p) for p in providers]
    available = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in available]
    dropped = [p for p in wanted if p not in available]
    if dropped:
        log.warning("ONNX Runtime providers not available here, skipped: %s", ", ".join(dropped))
    if not chosen:
        raise ConfigurationError(
            f"none of the providers {wanted} is available; available: {', '.join(sorted(available))}"
        )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    # Idle intra-op threads sleep instead of spinning: on a machine shared with other work (or a
    # service running several sessions) spinning burns CPU that the other work needed.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    what = "the converted model" if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(
            model if isinstance(model, bytes) else str(model), sess_options=opts, providers=chosen
        )
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, …)
        raise ModelFormatError(f"{what} is not an ONNX model ONNX Runtime can load: {exc}") from exc


def dims(shape: Any) -> list[int | None]:
    """ONNX Runtime shape → list with None for symbolic/unknown dimensions."""
    return [d if isinstance(d, int) and d > 0 else None for d in (shape or [])]


def describe_nodes(nodes: Sequence[Any]) -> str:
    return (
        "; ".join(f"{n.name!r} {n.type} shape {list(n.shape) if n.shape is not None else '?'}" for n in nodes) or "none"
    )


def float_dtype(type_str: str, path: Path, what: str) -> type[np.floating[Any]]:
    if type_str == "tensor(float)":
        return np.float32
    if type_str == "tensor(float16)":
        return np.float16
    raise ModelFormatError(f"{path}: {what} has type {type_str}; expected tensor(float) or tensor(float16)")


class GraphParts:
    """The nodes and initialisers of an ONNX graph being built from numpy weights, with unique
    value names: what the converters (dlib's ResNet, the attack detectors' networks) share.
    ``const`` and ``op`` return the name of the value they add."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, array: Any, prefix: str = "c") -> str:
        from onnx import numpy_helper

        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out
