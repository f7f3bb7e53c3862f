"""InsightFace verification files (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``…), read without plain pickle."""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataFormatError
from .base import ImageRef, VerificationProtocol, kfold_ids
from .registry import ProtocolKind, ProtocolSource, Task, need_file, register_protocol_kind

__all__ = ["read_insightface_bin"]

_SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("builtins", "bool"),
        ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # numpy arrays under pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only lists, tuples, bytes, bools and numpy arrays.

    Any other global (``os.system``, ``builtins.eval``, a class) is refused, so a crafted file
    cannot run code while it is being read.
    """

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise DataFormatError(
                f"{self._source}: refusing to load {module}.{name} - an InsightFace verification .bin "
                "holds only image bytes and booleans; this file is something else (or was crafted "
                "to run code). Do not unpickle it with plain pickle."
            )
        if module.startswith("numpy"):
            # numpy 2 moved numpy.core to numpy._core (the old name warns); try the new one first
            for mod in dict.fromkeys(
                (module.replace("numpy.core", "numpy._core"), module, module.replace("numpy._core", "numpy.core"))
            ):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    continue
            raise DataFormatError(f"{self._source}: this numpy cannot read {module}.{name}")
        return super().find_class(module, name)


def _as_bytes(x: Any) -> bytes | None:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 1:
        return x.tobytes()
    return None


def read_insightface_bin(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    prealigned: str | None = "arcface112",
    n_folds: int = 10,
) -> VerificationProtocol:
    """An InsightFace verification file (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``,
    ``cplfw.bin``…).

    The file is a pickle of ``(bins, issame_list)``: ``bins`` holds two encoded JPEG/PNG images per
    pair (consecutive: pair ``i`` is ``bins[2i]``, ``bins[2i+1]``) and ``issame_list`` one boolean
    per pair. Folds are ``n_folds`` contiguous blocks of pairs, as InsightFace's
    ``verification.py`` splits them.

    **Security:** pickle can run arbitrary code while loading. This reader never uses plain
    :func:`pickle.load`: a restricted :class:`pickle.Unpickler` builds only lists, tuples, bytes,
    bools and numpy arrays and refuses every other global with :class:`DataFormatError`. Still,
    only evaluate files from sources you trust.

    The images are 112×112 crops already aligned to the ArcFace template, so the protocol is
    marked ``prealigned="arcface112"`` by default: the runner skips detection and aligns the
    crop from the template's landmark positions (an identity warp for ArcFace-template
    embedders). Pass ``prealigned=None`` to run the face detector on them instead.

    Image keys are ``"<name>#<index in bins>"``; the bytes stay in memory (a few tens of MB).
    """
    p = Path(path)
    label = str(p)
    try:
        with open(p, "rb") as f:
            obj = _RestrictedUnpickler(f, label).load()
    except FileNotFoundError:
        raise DataFormatError(f"{p} does not exist; check the path to the .bin file") from None
    except DataFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataFormatError(f"{p} is not an InsightFace verification .bin file (cannot unpickle: {exc})") from None
    except OSError as exc:
        raise DataFormatError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise DataFormatError(f"{p}: expected a pickled (bins, issame_list) pair, got {type(obj).__name__}")
    bins, issame = obj
    try:
        mated = np.asarray([bool(x) for x in issame], dtype=bool)
    except TypeError:
        raise DataFormatError(f"{p}: issame_list is not a list of booleans") from None
    if len(bins) != 2 * len(mated):
        raise DataFormatError(
            f"{p}: {len(bins)} images for {len(mated)} pairs; an InsightFace .bin holds exactly two images per pair"
        )
    stem = name or p.stem
    images: list[ImageRef] = []
    for i, x in enumerate(bins):
        data = _as_bytes(x)
        if not data:
            raise DataFormatError(f"{p}: image {i} is {type(x).__name__}, not encoded image bytes")
        images.append(ImageRef(key=f"{stem}#{i}", data=data))
    n = len(mated)
    return VerificationProtocol(
        name=stem,
        images=images,
        a=np.arange(0, 2 * n, 2, dtype=np.intp),
        b=np.arange(1, 2 * n, 2, dtype=np.intp),
        mated=mated,
        folds=kfold_ids(n, n_folds) if n_folds > 1 else None,
        prealigned=prealigned,
    )


def open_bin(data: Path, *, pairs: Path | None, labels: Path | None, task: Task, seed: int) -> ProtocolSource:
    """``--protocol bin``: an InsightFace ``.bin`` file (10 folds of prealigned crops)."""
    need_file(data, "InsightFace .bin file")
    p = read_insightface_bin(data)
    return ProtocolSource("bin", p, (data,), None, f"InsightFace {data.name}: 10-fold accuracy")


register_protocol_kind(ProtocolKind("bin", open_bin, "bin: the InsightFace .bin file."))
