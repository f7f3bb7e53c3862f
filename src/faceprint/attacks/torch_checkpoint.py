"""Read a PyTorch ``state_dict`` checkpoint (``.pth``) into numpy arrays, without torch.

``torch.save`` writes one of two layouts, and both are read here:

* the **zip** layout (torch ≥ 1.6): a zip archive holding ``<root>/data.pkl``, a pickle of the
  state dict, and one raw little-endian storage per tensor in ``<root>/data/<key>``;
* the **legacy** layout (what Silent-Face's MiniFASNet files use): five pickles in a row (a
  magic number, the protocol version 1001, the system info, the state dict, the list of
  storage keys), then every storage as an int64 element count and its raw bytes, in the order
  of that list.

In both, the state-dict pickle names each storage by a *persistent id*
``("storage", <StorageType>, key, location, numel[, view_metadata])`` and rebuilds each tensor
with ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``.

**Safety.** A pickle can call any importable function. :class:`_RestrictedUnpickler` resolves
only the names in :data:`ALLOWED_GLOBALS` (an ``OrderedDict``, the tensor-rebuild helpers and
the storage types), each to a local stand-in that builds numpy arrays, and refuses every other
global (``os.system``, ``builtins.eval``…) with :class:`~faceprint.errors.UnsafeCheckpointError`
before anything is called. Damaged files (not a checkpoint, truncated storages, tensors that
reach past their storage) give :class:`~faceprint.errors.ModelFormatError`.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ModelFormatError, UnsafeCheckpointError

__all__ = ["ALLOWED_GLOBALS", "read_state_dict", "LEGACY_MAGIC"]

#: the first pickle of a legacy ``torch.save`` file
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_TENSORS = 100_000

_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_rest: object) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise ModelFormatError("a tensor in the checkpoint does not refer to a storage")
    try:
        return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))  # type: ignore[call-overload, attr-defined]
    except (TypeError, ValueError):
        raise ModelFormatError(f"a tensor in the checkpoint has a malformed size/stride: {size!r} {stride!r}") from None


def _rebuild_parameter(data: object, *_rest: object) -> object:
    return data


#: ``(module, name)`` pairs a checkpoint may reference, and what each resolves to here.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any] | _StorageType] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: io.BytesIO, source: str) -> None:
        super().__init__(data)
        self.source = source
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise UnsafeCheckpointError(
                f"{self.source}: the checkpoint's pickle references {module}.{name}, which is not a tensor "
                "type; refusing to load it (only state dicts of tensors are read)"
            )
        return target

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ModelFormatError(f"{self.source}: unexpected persistent id {pid!r:.80} in the checkpoint")
        stype, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise ModelFormatError(f"{self.source}: malformed storage reference {pid!r:.80}")
        if numel < 0:
            raise ModelFormatError(f"{self.source}: storage {key} has a negative size")
        ref = self.storages.setdefault(key, _StorageRef(key, stype.dtype, numel))
        return ref


def _unpickle(data: io.BytesIO, source: str) -> tuple[Any, dict[str, _StorageRef]]:
    u = _RestrictedUnpickler(data, source)
    try:
        obj = u.load()
    except (UnsafeCheckpointError, ModelFormatError):
        raise
    except Exception as exc:  # pickle raises many types on damaged bytes
        raise ModelFormatError(f"{source}: the checkpoint's pickle is damaged ({type(exc).__name__}: {exc})") from None
    return obj, u.storages


def _plain_load(data: io.BytesIO, source: str, what: str) -> Any:
    """A pickle of plain values only (numbers, strings, dicts, lists): no globals at all."""
    u = _RestrictedUnpickler(data, source)
    try:
        return u.load()
    except (UnsafeCheckpointError, ModelFormatError):
        raise
    except Exception as exc:
        raise ModelFormatError(f"{source}: cannot read {what} ({type(exc).__name__}: {exc})") from None


def _check_state_dict(obj: Any, source: str) -> dict[str, _TensorRef]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or len(obj) > _MAX_TENSORS:
        raise ModelFormatError(f"{source}: the checkpoint does not hold a state dict (got {type(obj).__name__})")
    out: dict[str, _TensorRef] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, _TensorRef):
            raise ModelFormatError(f"{source}: entry {k!r:.60} of the state dict is not a tensor")
        out[k] = v
    return out


def _materialise(refs: dict[str, _TensorRef], raw: dict[str, bytes], source: str) -> dict[str, npt.NDArray[Any]]:
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, t in refs.items():
        s = t.storage
        buf = raw.get(s.key)
        if buf is None:
            raise ModelFormatError(f"{source}: the storage of {name} is missing")
        if len(buf) != s.numel * s.dtype.itemsize:
            raise ModelFormatError(
                f"{source}: the storage of {name} holds {len(buf)} bytes, expected {s.numel * s.dtype.itemsize}; "
                "the file is truncated or corrupt"
            )
        if any(d < 0 for d in t.size) or len(t.size) != len(t.stride) or t.offset < 0:
            raise ModelFormatError(f"{source}: tensor {name} has an invalid shape {t.size} / stride {t.stride}")
        n = math.prod(t.size)
        last = t.offset + sum((d - 1) * st for d, st in zip(t.size, t.stride, strict=True)) if n else t.offset
        if n and (last >= s.numel or any(st < 0 for st in t.stride)):
            raise ModelFormatError(f"{source}: tensor {name} reaches past the end of its storage")
        flat = np.frombuffer(buf, dtype=s.dtype)
        item = s.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset :] if n else flat[:0], shape=t.size, strides=tuple(st * item for st in t.stride)
        )
        arrays[name] = np.array(view, dtype=s.dtype.newbyteorder("="), copy=True)
    return arrays


def _read_zip(data: bytes, source: str) -> dict[str, npt.NDArray[Any]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ModelFormatError(f"{source}: a zip checkpoint must hold one data.pkl, found {len(pkl)}")
        root = pkl[0][: -len("data.pkl")]
        obj, storages = _unpickle(io.BytesIO(zf.read(pkl[0])), source)
        refs = _check_state_dict(obj, source)
        raw = {}
        for key in storages:
            member = f"{root}data/{key}"
            if member not in names:
                raise ModelFormatError(f"{source}: storage {member} is missing from the archive")
            raw[key] = zf.read(member)
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"{source}: the checkpoint archive is damaged ({exc})") from None
    return _materialise(refs, raw, source)


def _read_legacy(data: bytes, source: str) -> dict[str, npt.NDArray[Any]]:
    f = io.BytesIO(data)
    magic = _plain_load(f, source, "the magic number")
    if magic != LEGACY_MAGIC:
        raise ModelFormatError(f"{source}: not a PyTorch checkpoint (wrong magic number)")
    version = _plain_load(f, source, "the protocol version")
    if version != _LEGACY_PROTOCOL:
        raise ModelFormatError(f"{source}: unsupported legacy checkpoint protocol {version!r}")
    _plain_load(f, source, "the system info")
    obj, storages = _unpickle(f, source)
    refs = _check_state_dict(obj, source)
    keys = _plain_load(f, source, "the list of storages")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelFormatError(f"{source}: the list of storages is malformed")
    raw: dict[str, bytes] = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise ModelFormatError(f"{source}: storage {key} is listed but never used")
        head = f.read(8)
        if len(head) != 8:
            raise ModelFormatError(f"{source}: the file ends before storage {key}; it is truncated")
        (numel,) = struct.unpack("<q", head)
        if numel != ref.numel:
            raise ModelFormatError(f"{source}: storage {key} has {numel} elements, expected {ref.numel}")
        nbytes = numel * ref.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ModelFormatError(f"{source}: storage {key} is truncated ({len(buf)} of {nbytes} bytes)")
        raw[key] = buf
    return _materialise(refs, raw, source)


def read_state_dict(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a ``torch.save``'d state dict as numpy arrays, by key (the key order kept).

    Raises :class:`~faceprint.errors.UnsafeCheckpointError` when the pickle references anything
    but tensor types, :class:`~faceprint.errors.ModelFormatError` when the file is damaged.
    """
    p = Path(path)
    data = p.read_bytes()
    source = str(p)
    if data[:4] == b"PK\x03\x04":
        return _read_zip(data, source)
    if data[:2] == b"\x80\x02":
        return _read_legacy(data, source)
    raise ModelFormatError(f"{source}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle)")
