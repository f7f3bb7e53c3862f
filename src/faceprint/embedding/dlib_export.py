"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

dlib stores a network with its own serialisation (``dlib/serialize.h`` and the ``serialize``
friends in ``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h`` and ``cuda/tensor.h``).
This module reads that format in pure Python (:class:`DlibReader`, :func:`read_dlib_network`)
and rebuilds the same computation as an ONNX graph (:func:`dlib_resnet_to_onnx`), which
onnxruntime runs batched and about 20 times faster than dlib's BLAS-less CPU build.

The format, as far as this net needs it:

* integers are packed: one control byte (number of value bytes, ``| 0x80`` when negative),
  then the magnitude little-endian; ``std::string`` is a packed length and the raw bytes;
  ``bool`` is the ASCII character ``'0'`` or ``'1'``; ``float`` is a packed int64 mantissa
  and a packed int16 exponent (value = mantissa * 2**exponent, exponent 32000/32001/32002 for
  +inf/-inf/NaN);
* a tensor is version 2, four packed dimensions (num_samples, k, nr, nc) and then raw
  little-endian float32s; an ``alias_tensor`` (a view into a layer's ``params``) is version 1
  and the four dimensions only;
* ``add_loss_layer`` writes version 1, the loss details, then the network. Every
  ``add_layer`` writes its version **before** its sub-network and its own details **after**
  it, so the file holds first the versions of all layers from the outermost (the fc) to the
  innermost, then the input layer, then the layer details from the innermost (the first conv)
  outwards, each followed by three bools and its (empty) gradient/output tensors;
* ``tag1``/``tag2``/``skip1`` (``add_tag_layer``/``add_skip_layer``) write only a version 1 and
  their sub-network: neither the tag id nor the skip target is stored, and ``add_prev_``
  stores only its name. Which earlier output an ``add_prev`` adds and where a ``skip`` jumps
  must therefore be inferred; :class:`_Converter` uses the rule that holds for dlib's
  residual blocks (see there).

dlib semantics reproduced exactly: the input layer's ``(pixel - mean) / 256``; ``con_`` is a
cross-correlation with weights laid out (num_filters, k, nr, nc) = ONNX's OIHW and the
padding stored in the file (0 for the stride-2 layers); pooling windows are
``1 + (n + 2p - w) // s`` wide (floor) and ignore padding; ``add_prev_`` adds tensors of
different shapes by zero-padding the smaller one at the end of every dimension (in this net's
down-sampling blocks the shortcut has half the channels, and in the last two its average-pooled
map is one pixel larger than the stride-2 conv branch: 4x4 + 3x3, 2x2 + 1x1).
``affine_`` layers that directly follow a conv are folded into its weights and bias.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ModelFormatError, ModelNotFoundError
from ..onnx_runtime import GraphParts

__all__ = [
    "DlibReader",
    "DlibNetwork",
    "InputRGB",
    "Conv",
    "Affine",
    "Relu",
    "Pool",
    "AddPrev",
    "FullyConnected",
    "Marker",
    "read_dlib_network",
    "dlib_resnet_to_onnx",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "FEATURE_PREFIX",
    "OPSET",
]

log = logging.getLogger(__name__)

INPUT_NAME = "crops"
OUTPUT_NAME = "descriptor"
#: ``dlib_resnet_to_onnx(..., feature_outputs=True)`` adds the output of each residual block as
#: graph outputs ``block1`` … ``blockN`` (innermost first), for explanations that read them.
FEATURE_PREFIX = "block"
OPSET = 17

_MAX_STRING = 4096  # longer "layer names" mean we are not reading a dlib network
_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


# --- the byte-level reader ----------------------------------------------------------------------


class DlibReader:
    """Reads dlib's serialised primitives from a byte string, raising :class:`ModelFormatError`."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self._data = data
        self.source = source
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def error(self, what: str) -> ModelFormatError:
        return ModelFormatError(
            f"{self.source}: {what} (at byte {self.pos} of {len(self._data)}); "
            "this is not a dlib DNN model file, or it is truncated or corrupt"
        )

    def read_bytes(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining:
            raise self.error(f"unexpected end of file reading {what} ({n} bytes needed)")
        out = self._data[self.pos : self.pos + n]
        self.pos += n
        return out

    def read_int(self, what: str = "an integer") -> int:
        """A packed integer: control byte (size | 0x80 if negative), then little-endian bytes."""
        ctrl = self.read_bytes(1, what)[0]
        size = ctrl & 0x0F
        if ctrl & 0x70 or not 1 <= size <= 8:
            self.pos -= 1
            raise self.error(f"bad control byte 0x{ctrl:02x} for {what}")
        value = int.from_bytes(self.read_bytes(size, what), "little")
        return -value if ctrl & 0x80 else value

    def read_string(self, what: str = "a string") -> str:
        n = self.read_int(f"the length of {what}")
        if not 0 <= n <= _MAX_STRING:
            raise self.error(f"implausible length {n} for {what}")
        raw = self.read_bytes(n, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not ASCII text") from None

    def read_float(self, what: str = "a float") -> float:
        """dlib's ``float_details``: packed int64 mantissa, packed int16 exponent."""
        if self.remaining and self._data[self.pos] & 0x70:
            raise self.error(f"{what} uses dlib's old ASCII float format, which is not supported")
        mantissa = self.read_int(f"the mantissa of {what}")
        exponent = self.read_int(f"the exponent of {what}")
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        if not -(1 << 15) <= exponent < _FLOAT_INF:
            raise self.error(f"exponent {exponent} of {what} is out of range")
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise self.error(f"{what} overflows") from None

    def read_bool(self, what: str = "a bool") -> bool:
        ch = self.read_bytes(1, what)
        if ch not in (b"0", b"1"):
            self.pos -= 1
            raise self.error(f"{what} is neither '0' nor '1'")
        return ch == b"1"

    def read_version(self, what: str, allowed: tuple[int, ...]) -> int:
        version = self.read_int(f"the version of {what}")
        if version not in allowed:
            raise self.error(f"unsupported version {version} of {what} (expected {allowed})")
        return version

    def _read_dims(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.read_int(f"a dimension of {what}") for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"negative dimension in {what}: {dims}")
        return dims  # type: ignore[return-value]

    def read_tensor(self, what: str = "a tensor") -> np.ndarray:
        """A ``resizable_tensor``: version 2, (num_samples, k, nr, nc), raw little-endian float32."""
        self.read_version(what, (2,))
        dims = self._read_dims(what)
        count = math.prod(dims)
        raw = self.read_bytes(4 * count, f"the {count} floats of {what}")
        return np.frombuffer(raw, dtype="<f4").reshape(dims)

    def read_alias_tensor(self, what: str = "an alias tensor") -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a shaped view into ``params``): version 1 and its dimensions."""
        self.read_version(what, (1,))
        return self._read_dims(what)

    def peek_string(self, max_len: int = 64) -> str | None:
        """The string at the current position, or None if there is none; never moves or raises."""
        saved = self.pos
        try:
            n = self.read_int()
            if not 0 < n <= max_len or n > self.remaining:
                return None
            raw = self._data[self.pos : self.pos + n]
            return raw.decode("ascii") if raw.isascii() else None
        except ModelFormatError:
            return None
        finally:
            self.pos = saved


# --- the layers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputRGB:
    """``input_rgb_image_sized``: per-channel means subtracted, then divided by 256."""

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class Conv:
    filters: np.ndarray  # (num_filters, k, nr, nc) == ONNX OIHW
    bias: np.ndarray | None  # (num_filters,)
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x)
    relu: bool = False  # con_6's fused relu


@dataclass(frozen=True)
class Affine:
    gamma: np.ndarray  # CONV_MODE: (1, k, 1, 1); FC_MODE: (1, k, nr, nc)
    beta: np.ndarray
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg"
    window: tuple[int, int]  # (nr, nc); 0 = the whole input
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    pass


@dataclass(frozen=True)
class FullyConnected:
    weights: np.ndarray  # (num_inputs, num_outputs): output = input @ weights (+ bias)
    bias: np.ndarray | None


@dataclass(frozen=True)
class Marker:
    """A ``tagN`` or ``skipN`` layer: dlib writes neither the id nor which of the two it is."""


Layer = Conv | Affine | Relu | Pool | AddPrev | FullyConnected | Marker | None  # None: a disabled layer


@dataclass(frozen=True)
class DlibNetwork:
    loss: str
    input: InputRGB
    layers: tuple[Layer, ...]  # innermost (first applied) to outermost


# --- layer details -------------------------------------------------------------------------------


def _split_params(r: DlibReader, params: np.ndarray, shapes: list[tuple[int, ...]], what: str) -> list[np.ndarray]:
    """Cut ``params`` into consecutive arrays of the given shapes (dlib's alias tensors)."""
    flat = params.reshape(-1)
    need = sum(math.prod(s) for s in shapes)
    if need != flat.size:
        raise r.error(f"{what}: params hold {flat.size} values but its views need {need}")
    out, at = [], 0
    for s in shapes:
        n = math.prod(s)
        out.append(flat[at : at + n].reshape(s).astype(np.float32))
        at += n
    return out


def _read_con(r: DlibReader, version: str) -> Conv:
    params = r.read_tensor("con_ params")
    num_filters = r.read_int("con_ num_filters")
    nr, nc = r.read_int("con_ nr"), r.read_int("con_ nc")
    stride = (r.read_int("con_ stride_y"), r.read_int("con_ stride_x"))
    padding = (r.read_int("con_ padding_y"), r.read_int("con_ padding_x"))
    filters_shape = r.read_alias_tensor("con_ filters")
    bias_shape = r.read_alias_tensor("con_ biases")
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.read_float(f"con_ {name}_multiplier")
    use_bias = r.read_bool("con_ use_bias") if version in ("con_5", "con_6") else True
    use_relu = r.read_bool("con_ use_relu") if version == "con_6" else False
    if filters_shape[0] != num_filters or filters_shape[2:] != (nr, nc):
        raise r.error(f"con_ filters {filters_shape} disagree with {num_filters} filters of {nr}x{nc}")
    if min(stride) < 1 or min(padding) < 0 or min(nr, nc) < 1:
        raise r.error(f"con_ has invalid stride {stride}, padding {padding} or size {nr}x{nc}")
    # params = the filters, then (if allocated) one bias per filter
    shapes: list[tuple[int, ...]] = [filters_shape]
    if params.size > math.prod(filters_shape):
        shapes.append((num_filters,))
    parts = _split_params(r, params, shapes, "con_")
    del bias_shape  # (1, num_filters) when there is a bias
    bias = parts[1] if use_bias and len(parts) > 1 else None
    return Conv(parts[0], bias, stride, padding, use_relu)


def _read_affine(r: DlibReader, version: str) -> Affine | None:
    params = r.read_tensor("affine_ params")
    gamma_shape = r.read_alias_tensor("affine_ gamma")
    beta_shape = r.read_alias_tensor("affine_ beta")
    mode = r.read_int("affine_ mode")
    disabled = r.read_bool("affine_ disabled") if version == "affine_2" else False
    if mode not in (0, 1):
        raise r.error(f"affine_ has unknown mode {mode}")
    if gamma_shape != beta_shape:
        raise r.error(f"affine_ gamma {gamma_shape} and beta {beta_shape} differ in shape")
    gamma, beta = _split_params(r, params, [gamma_shape, beta_shape], "affine_")
    return None if disabled else Affine(gamma, beta, conv_mode=mode == 0)


def _read_relu(r: DlibReader, version: str) -> Relu | None:
    disabled = r.read_bool("relu_ disabled") if version == "relu_2" else False
    return None if disabled else Relu()


def _read_pool(r: DlibReader, version: str) -> Pool:
    kind = "max" if version.startswith("max") else "avg"
    window = (r.read_int(f"{kind}_pool_ nr"), r.read_int(f"{kind}_pool_ nc"))
    stride = (r.read_int(f"{kind}_pool_ stride_y"), r.read_int(f"{kind}_pool_ stride_x"))
    padding = (r.read_int(f"{kind}_pool_ padding_y"), r.read_int(f"{kind}_pool_ padding_x"))
    if min(stride) < 1 or min(window) < 0 or min(padding) < 0:
        raise r.error(f"{kind}_pool_ has invalid window {window}, stride {stride} or padding {padding}")
    if any(p >= w if w else p != 0 for w, p in zip(window, padding, strict=True)):
        raise r.error(f"{kind}_pool_ padding {padding} is not smaller than its window {window}")
    return Pool(kind, window, stride, padding)


def _read_add_prev(r: DlibReader, version: str) -> AddPrev:
    return AddPrev()


def _read_fc(r: DlibReader, version: str) -> FullyConnected:
    num_outputs = r.read_int("fc_ num_outputs")
    num_inputs = r.read_int("fc_ num_inputs")
    params = r.read_tensor("fc_ params")
    weights_shape = r.read_alias_tensor("fc_ weights")
    r.read_alias_tensor("fc_ biases")
    bias_mode = r.read_int("fc_ bias_mode")
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.read_float(f"fc_ {name}_multiplier")
    use_bias = r.read_bool("fc_ use_bias") if version == "fc_3" else True
    if bias_mode not in (0, 1):
        raise r.error(f"fc_ has unknown bias mode {bias_mode}")
    has_bias = bias_mode == 0 and use_bias
    if weights_shape[:2] != (num_inputs, num_outputs) or num_inputs < 1 or num_outputs < 1:
        raise r.error(f"fc_ weights {weights_shape} disagree with {num_inputs} inputs, {num_outputs} outputs")
    # params = the (num_inputs, num_outputs) weights, then (if allocated) one bias row
    shapes: list[tuple[int, ...]] = [(num_inputs, num_outputs)]
    if params.size > num_inputs * num_outputs:
        shapes.append((num_outputs,))
    parts = _split_params(r, params, shapes, "fc_")
    return FullyConnected(parts[0], parts[1] if has_bias and len(parts) > 1 else None)


_DETAIL_READERS = {
    "con_4": _read_con,
    "con_5": _read_con,
    "con_6": _read_con,
    "affine_": _read_affine,
    "affine_2": _read_affine,
    "relu_": _read_relu,
    "relu_2": _read_relu,
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "add_prev_": _read_add_prev,
    "fc_2": _read_fc,
    "fc_3": _read_fc,
}


def _read_layer_details(r: DlibReader) -> Layer:
    name = r.read_string("a layer name")
    reader = _DETAIL_READERS.get(name)
    if reader is None:
        raise ModelFormatError(
            f"{r.source}: layer type {name!r} is not supported by the converter "
            f"(it handles {', '.join(sorted(_DETAIL_READERS))})"
        )
    return reader(r, name)


def _skip_layer_state(r: DlibReader, version: int, *, input_layer: bool) -> None:
    """The bookkeeping add_layer writes after its details: bools and (usually empty) tensors."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.read_bool(name)
    r.read_tensor("x_grad")
    r.read_tensor("cached_output")
    if input_layer:
        r.read_tensor("grad_final")
        if version >= 3:
            r.read_int("sample_expansion_factor")
    elif version == 2:
        r.read_tensor("params_grad")


def _read_input_layer(r: DlibReader) -> InputRGB:
    name = r.read_string("the input layer name")
    if name != "input_rgb_image_sized":
        raise ModelFormatError(f"{r.source}: input layer {name!r} is not supported (need input_rgb_image_sized)")
    mean = (r.read_float("avg_red"), r.read_float("avg_green"), r.read_float("avg_blue"))
    rows, cols = r.read_int("input rows"), r.read_int("input columns")
    if not (0 < rows <= 4096 and 0 < cols <= 4096) or not all(math.isfinite(m) for m in mean):
        raise r.error(f"implausible input layer: {rows}x{cols}, means {mean}")
    return InputRGB((float(mean[0]), float(mean[1]), float(mean[2])), rows, cols)


def read_dlib_network(path: str | os.PathLike[str]) -> DlibNetwork:
    """Parse a dlib ``loss_metric`` network file into its input layer and layer sequence."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError as e:
        raise ModelNotFoundError(f"dlib model file {p} does not exist") from e
    except OSError as e:
        raise ModelFormatError(f"cannot read dlib model {p}: {e}") from e
    r = DlibReader(data, str(p))
    if not data:
        raise r.error("the file is empty")
    r.read_version("add_loss_layer", (1,))
    loss = r.read_string("the loss layer name")
    if loss == "loss_metric_2":
        r.read_float("loss_metric margin")
        r.read_float("loss_metric dist_thresh")
    elif loss != "loss_metric_":
        raise ModelFormatError(f"{p}: loss layer {loss!r} is not supported (need loss_metric_, a face-descriptor net)")

    # Versions, outermost first: 2 = add_layer, 1 = tag/skip, until the innermost add_layer
    # (the one holding the input layer), whose version is followed by the input layer's name.
    wrappers: list[int] = []
    while True:
        version = r.read_int("a layer version")
        nxt = r.peek_string()
        if version in (2, 3) and nxt is not None and nxt.startswith("input"):
            input_version = version
            break
        if version not in (1, 2):
            raise r.error(f"unexpected layer version {version}")
        wrappers.append(version)
        if len(wrappers) > 10_000:
            raise r.error("too many nested layers")
    inp = _read_input_layer(r)

    layers: list[Layer] = [_read_layer_details(r)]
    _skip_layer_state(r, input_version, input_layer=True)
    for version in reversed(wrappers):
        if version == 1:
            layers.append(Marker())
            continue
        layers.append(_read_layer_details(r))
        _skip_layer_state(r, version, input_layer=False)
    if r.remaining:
        raise r.error(f"{r.remaining} unexpected bytes after the network")
    return DlibNetwork(loss, inp, tuple(layers))


# --- the ONNX graph --------------------------------------------------------------------------------


Shape = tuple[int, int, int]  # (k, nr, nc) of a dlib tensor, the batch dimension left out


@dataclass(frozen=True)
class _Value:
    name: str  # the ONNX tensor holding it, (N, k, nr, nc)
    shape: Shape


@dataclass(frozen=True)
class _PendingConv:
    """A conv not yet written to the graph, so that a following affine_ can be folded into it."""

    source: _Value
    shape: Shape
    weights: np.ndarray
    bias: np.ndarray
    layer: Conv


def _out_size(n: int, window: int, stride: int, pad: int) -> int:
    """dlib's output size for convolution and pooling (floor)."""
    return 1 + (n + 2 * pad - window) // stride


class _Converter(GraphParts):
    """Translates a :class:`DlibNetwork`, innermost layer first, into ONNX nodes.

    Tags and skips: dlib writes no ids, so they are inferred. In dlib's residual blocks a tag
    marks the block input (``tag1``); on a down-sampling block a second tag marks the block
    output (``tag2``) and is immediately followed by ``skip1``, which jumps back to the tag1
    output. Hence: a marker right after a tag is a skip to the tag before that one, any other
    marker is a tag, and ``add_prev`` adds the most recent tag.
    """

    def __init__(self, *, feature_outputs: bool = False) -> None:
        super().__init__()
        self.feature_outputs = feature_outputs
        self.blocks: list[_Value] = []  # each residual block's output (the relu after its add_prev)
        self._after_add = False
        self._current = _Value("", (0, 0, 0))
        self._pending: _PendingConv | None = None
        self._tags: list[_Value] = []
        self._previous_was_tag = False

    def current(self) -> _Value:
        """The output so far, writing out a pending conv first."""
        p = self._pending
        if p is not None:
            self._pending = None
            py, px = p.layer.padding
            y = self.op(
                "Conv",
                [p.source.name, self.const(p.weights, "conv_w"), self.const(p.bias, "conv_b")],
                kernel_shape=list(p.weights.shape[2:]),
                strides=list(p.layer.stride),
                pads=[py, px, py, px],
            )
            if p.layer.relu:
                y = self.op("Relu", [y])
            self._current = _Value(y, p.shape)
        return self._current

    # the network
    def convert(self, net: DlibNetwork) -> onnx.GraphProto:
        inp = net.input
        # dlib: float((pixel - mean) / 256.0); pixel - mean is a float32 subtraction, /256 is exact
        x = self.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
        x = self.op("Sub", [x, self.const(np.array(inp.mean_rgb, dtype=np.float32), "mean_rgb")])
        x = self.op("Mul", [x, self.const(np.array(1.0 / 256.0, dtype=np.float32), "scale")])
        self._current = _Value(self.op("Transpose", [x], perm=[0, 3, 1, 2]), (3, inp.rows, inp.cols))
        for i, layer in enumerate(net.layers):
            try:
                self.add(layer)
            except ModelFormatError as e:
                raise ModelFormatError(f"layer {i} ({type(layer).__name__}): {e}") from None
        out = self.current()
        self.op("Flatten", [out.name], OUTPUT_NAME, axis=1)
        outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", math.prod(out.shape)])]
        if self.feature_outputs:
            for i, v in enumerate(self.blocks, 1):
                name = self.op("Identity", [v.name], f"{FEATURE_PREFIX}{i}")
                outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *v.shape]))
        return helper.make_graph(
            self.nodes,
            "dlib_face_recognition_resnet",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", inp.rows, inp.cols, 3])],
            outputs,
            self.initializers,
        )

    def add(self, layer: Layer) -> None:
        if isinstance(layer, Marker):
            self.marker()
            return
        self._previous_was_tag = False
        if layer is None:  # a disabled relu_/affine_: identity
            return
        if isinstance(layer, Affine) and layer.conv_mode and self._pending and not self._pending.layer.relu:
            self.fold_affine(self._pending, layer)
            return
        x = self.current()
        if isinstance(layer, Conv):
            self.conv(x, layer)
        elif isinstance(layer, Affine):
            self._current = self.affine(x, layer)
        elif isinstance(layer, Relu):
            self._current = _Value(self.op("Relu", [x.name]), x.shape)
            if self._after_add:
                self.blocks.append(self._current)
        elif isinstance(layer, Pool):
            self._current = self.pool(x, layer)
        elif isinstance(layer, AddPrev):
            self._current = self.add_prev(x)
        elif isinstance(layer, FullyConnected):
            self._current = self.fc(x, layer)
        else:  # pragma: no cover - _DETAIL_READERS and this chain list the same types
            raise ModelFormatError("no ONNX translation")
        self._after_add = isinstance(layer, AddPrev)

    def marker(self) -> None:
        x = self.current()
        if self._previous_was_tag and len(self._tags) >= 2:  # skip
            self._current = self._tags[-2]
            self._previous_was_tag = False
        else:  # tag
            self._tags.append(x)
            self._previous_was_tag = True

    def conv(self, x: _Value, layer: Conv) -> None:
        k, nr, nc = x.shape
        o, ki, fh, fw = layer.filters.shape
        (sy, sx), (py, px) = layer.stride, layer.padding
        if ki != k:
            raise ModelFormatError(f"conv expects {ki} input channels, gets {k}")
        if fh > nr + 2 * py or fw > nc + 2 * px:
            raise ModelFormatError(f"{fh}x{fw} conv does not fit a {nr}x{nc} input")
        shape = (o, _out_size(nr, fh, sy, py), _out_size(nc, fw, sx, px))
        bias = layer.bias if layer.bias is not None else np.zeros(o, np.float32)
        self._pending = _PendingConv(x, shape, layer.filters, bias, layer)

    def fold_affine(self, p: _PendingConv, layer: Affine) -> None:
        """conv then x * gamma + beta  ==  conv with weights * gamma and bias * gamma + beta."""
        gamma, beta = layer.gamma.reshape(-1).astype(np.float64), layer.beta.reshape(-1).astype(np.float64)
        if gamma.size != p.shape[0]:
            raise ModelFormatError(f"affine over {gamma.size} channels follows a conv with {p.shape[0]}")
        weights = (p.weights.astype(np.float64) * gamma[:, None, None, None]).astype(np.float32)
        bias = (p.bias.astype(np.float64) * gamma + beta).astype(np.float32)
        self._pending = _PendingConv(p.source, p.shape, weights, bias, p.layer)

    def affine(self, x: _Value, layer: Affine) -> _Value:
        k = x.shape[0]
        gamma, beta = layer.gamma, layer.beta
        if layer.conv_mode:
            if gamma.size != k:
                raise ModelFormatError(f"affine over {gamma.size} channels, input has {k}")
            gamma, beta = gamma.reshape(1, k, 1, 1), beta.reshape(1, k, 1, 1)
        elif gamma.shape[1:] != x.shape:
            raise ModelFormatError(f"affine of shape {gamma.shape} on a {x.shape} input")
        y = self.op("Mul", [x.name, self.const(gamma, "gamma")])
        return _Value(self.op("Add", [y, self.const(beta, "beta")]), x.shape)

    def pool(self, x: _Value, layer: Pool) -> _Value:
        k, nr, nc = x.shape
        wy, wx = layer.window[0] or nr, layer.window[1] or nc  # 0: the whole input
        (sy, sx), (py, px) = layer.stride, layer.padding
        if wy > nr + 2 * py or wx > nc + 2 * px:
            raise ModelFormatError(f"{wy}x{wx} pooling window does not fit a {nr}x{nc} input")
        shape = (k, _out_size(nr, wy, sy, py), _out_size(nc, wx, sx, px))
        if (wy, wx) == (nr, nc) and (py, px) == (0, 0):
            return _Value(self.op("GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool", [x.name]), shape)
        attrs: dict[str, Any] = {"kernel_shape": [wy, wx], "strides": [sy, sx], "pads": [py, px, py, px]}
        if layer.kind == "avg":
            attrs["count_include_pad"] = 0  # dlib averages over the window clipped to the image
        return _Value(self.op("MaxPool" if layer.kind == "max" else "AveragePool", [x.name], **attrs), shape)

    def add_prev(self, x: _Value) -> _Value:
        if not self._tags:
            raise ModelFormatError("add_prev without an earlier tag layer")
        other = self._tags[-1]
        target = tuple(max(a, b) for a, b in zip(x.shape, other.shape, strict=True))
        terms = []
        for v in (x, other):
            name = v.name
            if v.shape != target:  # dlib's tt::add zero-fills past the end of the smaller tensor
                pads = [0, 0, 0, 0, 0] + [t - s for t, s in zip(target, v.shape, strict=True)]
                name = self.op("Pad", [name, self.const(np.array(pads, dtype=np.int64), "pads")])
            terms.append(name)
        return _Value(self.op("Add", terms), (target[0], target[1], target[2]))

    def fc(self, x: _Value, layer: FullyConnected) -> _Value:
        n_in, n_out = layer.weights.shape
        if n_in != math.prod(x.shape):
            raise ModelFormatError(f"fc expects {n_in} inputs, gets {x.shape}")
        y = self.op("MatMul", [self.op("Flatten", [x.name], axis=1), self.const(layer.weights, "fc_w")])
        if layer.bias is not None:
            y = self.op("Add", [y, self.const(layer.bias, "fc_b")])
        shape4 = self.const(np.array([-1, n_out, 1, 1], dtype=np.int64), "shape")
        return _Value(self.op("Reshape", [y, shape4]), (n_out, 1, 1))


def dlib_resnet_to_onnx(
    path: str | os.PathLike[str], *, check: bool = True, feature_outputs: bool = False
) -> onnx.ModelProto:
    """Convert dlib's face-recognition ResNet file into an equivalent ONNX model.

    Input ``"crops"``: uint8 (N, 150, 150, 3) RGB face chips (as from ``dlib.get_face_chip``);
    output ``"descriptor"``: float32 (N, 128), dlib's unnormalised descriptor. With
    ``feature_outputs`` the graph also outputs each residual block's activations, float32
    (N, k, h, w), as ``block1`` … ``block14`` (:data:`FEATURE_PREFIX`); the descriptor is the same.
    Raises :class:`ModelFormatError` for a file that is not such a network (truncated, corrupt,
    another dlib model, or layer types this converter does not handle) and
    :class:`ModelNotFoundError` for a missing file.

    ``check`` runs ONNX's model checker on the result (about 90 ms). The embedder skips it: it
    converts only the file whose sha256 the manifest pins, and the tests check that conversion.
    """
    t0 = time.perf_counter()
    net = read_dlib_network(path)
    t1 = time.perf_counter()
    try:
        graph = _Converter(feature_outputs=feature_outputs).convert(net)
    except ModelFormatError as e:
        raise ModelFormatError(
            f"{path}: {e}; the network in the file is corrupt or not one this converter knows"
        ) from None
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceprint.embedding.dlib_export",
        doc_string=f"converted from dlib's {Path(path).name}",
    )
    model.ir_version = 8  # opset 17 needs IR >= 8; keep it as low as that for older runtimes
    if check:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as e:
            raise ModelFormatError(f"{path}: the converted graph is not valid ONNX: {e}") from e
    log.debug(
        "converted %s: %d layers, parse %.0f ms, graph %.0f ms",
        path,
        len(net.layers),
        1000 * (t1 - t0),
        1000 * (time.perf_counter() - t1),
    )
    return model
