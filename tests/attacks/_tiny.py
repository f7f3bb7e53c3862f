"""Tiny random checkpoints written the way torch.save and Keras write them (no torch, no Keras),
and numpy reference forward passes of MiniFASNet and MesoNet written from the papers' code
independently of faceprint's ONNX builders."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# --- a torch-format pickle, opcode by opcode --------------------------------------------------


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


def state_dict_pickle(sd: dict[str, np.ndarray], *, location: str = "cpu", legacy: bool = False) -> bytes:
    """Protocol-2 pickle of an OrderedDict of tensors with persistent storage ids, as torch writes."""
    out = [b"\x80\x02", _global("collections", "OrderedDict"), b")R"]
    for i, (k, a) in enumerate(sd.items()):
        a = np.array(a, order="C", copy=True)
        stride = [s // a.itemsize for s in a.strides]
        pid = [_s("storage"), _global("torch", _STORAGE[a.dtype]), _s(str(i)), _s(location), _i(a.size)]
        if legacy:
            pid.append(b"N")
        tensor = (
            _global("torch._utils", "_rebuild_tensor_v2")
            + b"("
            + _tuple(pid)
            + b"Q"
            + _i(0)
            + _tuple([_i(d) for d in a.shape])
            + _tuple([_i(d) for d in stride])
            + b"\x89"
            + _global("collections", "OrderedDict")
            + b")R"
            + b"tR"
        )
        out += [_s(k), tensor, b"s"]
    out.append(b".")
    return b"".join(out)


def write_pth_zip(sd: dict[str, np.ndarray], path: Path, *, pickle_bytes: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes if pickle_bytes is not None else state_dict_pickle(sd))
        z.writestr("archive/version", "3\n")
        for i, a in enumerate(sd.values()):
            z.writestr(f"archive/data/{i}", np.array(a, order="C").astype(a.dtype.newbyteorder("<")).tobytes())
    return path


def write_pth_legacy(sd: dict[str, np.ndarray], path: Path) -> Path:
    f = io.BytesIO()
    f.write(pickle.dumps(LEGACY_MAGIC, protocol=2))
    f.write(pickle.dumps(1001, protocol=2))
    f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}, protocol=2))
    f.write(state_dict_pickle(sd, location="cuda:0", legacy=True))
    f.write(pickle.dumps([str(i) for i in range(len(sd))], protocol=2))
    for a in sd.values():
        f.write(struct.pack("<q", a.size))
        f.write(np.array(a, order="C").tobytes())
    path.write_bytes(f.getvalue())
    return path


# --- a tiny random MiniFASNet state dict (the reference's module names) -------------------------


def _bn(sd: dict, prefix: str, c: int, rng: np.random.Generator) -> None:
    sd[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    sd[f"{prefix}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
    sd[f"{prefix}.running_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
    sd[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    sd[f"{prefix}.num_batches_tracked"] = np.array(7, dtype=np.int64)


def _conv(sd: dict, prefix: str, cout: int, cin_per_group: int, k: int, rng: np.random.Generator, prelu: bool) -> None:
    fan_in = cin_per_group * k * k
    sd[f"{prefix}.conv.weight"] = rng.normal(0, 1 / np.sqrt(fan_in), (cout, cin_per_group, k, k)).astype(np.float32)
    _bn(sd, f"{prefix}.bn", cout, rng)
    if prelu:
        sd[f"{prefix}.prelu.weight"] = rng.uniform(0.1, 0.3, cout).astype(np.float32)


def _dw(sd: dict, prefix: str, cin: int, mid: int, cout: int, rng: np.random.Generator, se: bool = False) -> None:
    _conv(sd, f"{prefix}.conv", mid, cin, 1, rng, True)
    _conv(sd, f"{prefix}.conv_dw", mid, 1, 3, rng, True)
    _conv(sd, f"{prefix}.project", cout, mid, 1, rng, False)
    if se:
        r = max(1, cout // 4)
        sd[f"{prefix}.se_module.fc1.weight"] = rng.normal(0, 0.5, (r, cout, 1, 1)).astype(np.float32)
        _bn(sd, f"{prefix}.se_module.bn1", r, rng)
        sd[f"{prefix}.se_module.fc2.weight"] = rng.normal(0, 0.5, (cout, r, 1, 1)).astype(np.float32)
        _bn(sd, f"{prefix}.se_module.bn2", cout, rng)


def tiny_minifasnet(rng: np.random.Generator, *, se: bool, emb: int = 6, classes: int = 3) -> dict[str, np.ndarray]:
    sd: dict[str, np.ndarray] = {}
    _conv(sd, "conv1", 4, 3, 3, rng, True)
    _conv(sd, "conv2_dw", 4, 1, 3, rng, True)
    _dw(sd, "conv_23", 4, 6, 5, rng)
    for i in range(4):
        _dw(sd, f"conv_3.model.{i}", 5, 3, 5, rng, se=se and i == 3)
    _dw(sd, "conv_34", 5, 7, 6, rng)
    for i in range(6):
        _dw(sd, f"conv_4.model.{i}", 6, 4, 6, rng, se=se and i == 5)
    _dw(sd, "conv_45", 6, 8, 7, rng)
    for i in range(2):
        _dw(sd, f"conv_5.model.{i}", 7, 3, 7, rng, se=se and i == 1)
    _conv(sd, "conv_6_sep", 10, 7, 1, rng, True)
    _conv(sd, "conv_6_dw", 10, 1, 5, rng, False)
    sd["linear.weight"] = rng.normal(0, 0.3, (emb, 10)).astype(np.float32)
    _bn(sd, "bn", emb, rng)
    sd["prob.weight"] = rng.normal(0, 1.0, (classes, emb)).astype(np.float32)
    return {f"module.{k}": v for k, v in sd.items()}


# --- numpy reference forward passes ----------------------------------------------------------------


def conv2d(
    x: np.ndarray, w: np.ndarray, *, stride: int = 1, pad: int = 0, groups: int = 1, dilation: int = 1
) -> np.ndarray:
    """NCHW cross-correlation, float64, the plain definition."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    eh, ew = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    oh, ow = (h - eh) // stride + 1, (wd - ew) // stride + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = x[:, g * cg : (g + 1) * cg]
        wg = w[g * og : (g + 1) * og].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[
                    :,
                    :,
                    i * dilation : i * dilation + stride * oh : stride,
                    j * dilation : j * dilation + stride * ow : stride,
                ]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    return out


def _bn_apply(x: np.ndarray, sd: dict, p: str, eps: float) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g, b, m, v = (
        sd[f"{p}.{k}"].astype(np.float64).reshape(shape) for k in ("weight", "bias", "running_mean", "running_var")
    )
    return (x - m) / np.sqrt(v + eps) * g + b


def minifasnet_reference(sd: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The reference's MiniFASNet.forward (eval mode) + softmax, on (N, 3, 80, 80) float input."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}

    def block(x, p, stride, pad, act):
        w = sd[f"{p}.conv.weight"]
        y = conv2d(x, w, stride=stride, pad=pad, groups=x.shape[1] // w.shape[1])
        y = _bn_apply(y, sd, f"{p}.bn", 1e-5)
        if act:
            a = sd[f"{p}.prelu.weight"].astype(np.float64).reshape(1, -1, 1, 1)
            y = np.where(y > 0, y, a * y)
        return y

    def dw(x, p, stride, residual):
        y = block(x, f"{p}.conv", 1, 0, True)
        y = block(y, f"{p}.conv_dw", stride, 1, True)
        y = block(y, f"{p}.project", 1, 0, False)
        if not residual:
            return y
        if f"{p}.se_module.fc1.weight" in sd:
            s = y.mean(axis=(2, 3), keepdims=True)
            s = _bn_apply(conv2d(s, sd[f"{p}.se_module.fc1.weight"]), sd, f"{p}.se_module.bn1", 1e-5)
            s = np.maximum(s, 0)
            s = _bn_apply(conv2d(s, sd[f"{p}.se_module.fc2.weight"]), sd, f"{p}.se_module.bn2", 1e-5)
            y = y * (1 / (1 + np.exp(-s)))
        return x + y

    y = block(x, "conv1", 2, 1, True)
    y = block(y, "conv2_dw", 1, 1, True)
    y = dw(y, "conv_23", 2, False)
    for name, n in (("conv_3", 4), ("conv_34", 0), ("conv_4", 6), ("conv_45", 0), ("conv_5", 2)):
        if n == 0:
            y = dw(y, name, 2, False)
        for i in range(n):
            y = dw(y, f"{name}.model.{i}", 1, True)
    y = block(y, "conv_6_sep", 1, 0, True)
    y = block(y, "conv_6_dw", 1, 0, False)
    y = y.reshape(y.shape[0], -1)
    if sd["bn.weight"].shape[0] != 512:
        y = y @ sd["linear.weight"].astype(np.float64).T
    y = _bn_apply(y, sd, "bn", 1e-5)
    logits = y @ sd["prob.weight"].astype(np.float64).T
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- MesoNet: random Keras weights and the Keras forward pass -----------------------------------


def _keras_conv(rng, k, cin, cout):
    return [
        rng.normal(0, 1 / np.sqrt(k * k * cin), (k, k, cin, cout)).astype(np.float32),
        rng.normal(0, 0.1, cout).astype(np.float32),
    ]


def _keras_bn(rng, c):
    return [
        rng.uniform(0.5, 1.5, c).astype(np.float32),
        rng.normal(0, 0.1, c).astype(np.float32),
        rng.normal(0, 0.1, c).astype(np.float32),
        rng.uniform(0.5, 1.5, c).astype(np.float32),
    ]


def random_meso(rng: np.random.Generator, inception: bool) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, weights) in Keras creation order for Meso4 or MesoInception-4."""
    convs: list[list[np.ndarray]] = []
    if inception:
        cin = 3
        for a, b, c, d in ((1, 4, 4, 2), (2, 4, 4, 2)):
            convs += [_keras_conv(rng, 1, cin, a), _keras_conv(rng, 1, cin, b), _keras_conv(rng, 3, b, b)]
            convs += [
                _keras_conv(rng, 1, cin, c),
                _keras_conv(rng, 3, c, c),
                _keras_conv(rng, 1, cin, d),
                _keras_conv(rng, 3, d, d),
            ]
            cin = a + b + c + d
        convs += [_keras_conv(rng, 5, 12, 16), _keras_conv(rng, 5, 16, 16)]
        bns = [_keras_bn(rng, 11), _keras_bn(rng, 12), _keras_bn(rng, 16), _keras_bn(rng, 16)]
    else:
        convs = [
            _keras_conv(rng, 3, 3, 8),
            _keras_conv(rng, 5, 8, 8),
            _keras_conv(rng, 5, 8, 16),
            _keras_conv(rng, 5, 16, 16),
        ]
        bns = [_keras_bn(rng, 8), _keras_bn(rng, 8), _keras_bn(rng, 16), _keras_bn(rng, 16)]
    dense = [
        [rng.normal(0, 1 / 32, (1024, 16)).astype(np.float32), rng.normal(0, 0.1, 16).astype(np.float32)],
        [rng.normal(0, 0.5, (16, 1)).astype(np.float32), rng.normal(0, 0.1, 1).astype(np.float32)],
    ]
    # start numbering at 5 (as in Meso4_DF.h5) so that a file from a second model in a session reads too
    layers = [(f"conv2d_{i + 5}", w) for i, w in enumerate(convs)]
    layers += [(f"batch_normalization_{i + 5}", w) for i, w in enumerate(bns)]
    layers += [(f"dense_{i + 3}", w) for i, w in enumerate(dense)]
    return layers


_WEIGHT_NAMES = {
    "conv2d": ["kernel:0", "bias:0"],
    "batch_normalization": ["gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"],
    "dense": ["kernel:0", "bias:0"],
}


def write_keras_h5(layers: list[tuple[str, list[np.ndarray]]], path: Path) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers] + [b"flatten_2", b"input_2"])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name, ws in layers:
            kind = name.rsplit("_", 1)[0]
            g = f.create_group(name)
            names = [f"{name}/{w}" for w in _WEIGHT_NAMES[kind]]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, w in zip(names, ws, strict=True):
                g.create_dataset(n, data=w)
        for empty in ("flatten_2", "input_2"):
            f.create_group(empty).attrs["weight_names"] = np.array([], dtype=np.float64)
    return path


def _keras_conv_apply(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int = 1) -> np.ndarray:
    """Keras Conv2D(padding='same', activation='relu') on NHWC input."""
    k = w.shape[0]
    y = conv2d(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), pad=dilation * (k - 1) // 2, dilation=dilation)
    return np.maximum(y.transpose(0, 2, 3, 1) + b, 0)


def _keras_bn_apply(x, ws):
    g, b, m, v = (a.astype(np.float64) for a in ws)
    return (x - m) / np.sqrt(v + 1e-3) * g + b


def _pool(x, k):
    n, h, w, c = x.shape
    return x.reshape(n, h // k, k, w // k, k, c).max(axis=(2, 4))


def meso_reference(layers: list[tuple[str, list[np.ndarray]]], x: np.ndarray) -> np.ndarray:
    """Keras forward (inference) on NHWC float input in [0, 1]; returns the sigmoid (N, 1)."""
    convs = [w for n, w in layers if n.startswith("conv2d")]
    bns = [w for n, w in layers if n.startswith("batch")]
    dense = [w for n, w in layers if n.startswith("dense")]
    y = x.astype(np.float64)
    if len(convs) == 16:
        for layer in range(2):
            c = convs[7 * layer : 7 * layer + 7]
            x1 = _keras_conv_apply(y, *c[0])
            x2 = _keras_conv_apply(_keras_conv_apply(y, *c[1]), *c[2])
            x3 = _keras_conv_apply(_keras_conv_apply(y, *c[3]), *c[4], dilation=2)
            x4 = _keras_conv_apply(_keras_conv_apply(y, *c[5]), *c[6], dilation=3)
            y = _pool(_keras_bn_apply(np.concatenate([x1, x2, x3, x4], axis=-1), bns[layer]), 2)
        rest = [(convs[14], bns[2], 2), (convs[15], bns[3], 4)]
    else:
        rest = [(convs[0], bns[0], 2), (convs[1], bns[1], 2), (convs[2], bns[2], 2), (convs[3], bns[3], 4)]
    for cw, bw, k in rest:
        y = _pool(_keras_bn_apply(_keras_conv_apply(y, *cw), bw), k)
    y = y.reshape(y.shape[0], -1)
    h = y @ dense[0][0] + dense[0][1]
    h = np.where(h > 0, h, 0.1 * h)
    z = h @ dense[1][0] + dense[1][1]
    return 1 / (1 + np.exp(-z))
