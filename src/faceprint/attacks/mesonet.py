"""MesoNet deepfake screening (Afchar et al., WIFS 2018; DariusAf/MesoNet, Apache-2.0): ``"mesonet"``.

Meso4 and MesoInception-4, each trained on Deepfake (``DF``) or Face2Face (``F2F``) videos: a
small CNN over a 256×256 RGB face crop in [0, 1], ending in a sigmoid with **1 = real**. The
attack score is ``1 - sigmoid`` (kind ``"deepfake"``), default threshold 0.5.

This is **screening, not proof**: MesoNet reads mesoscopic texture, which heavy compression
washes out, and it was trained on two 2018 manipulation methods; it has no reason to work on
generators it never saw.

**Weights.** ``<model dir>/mesonet/<variant>.h5`` (Keras 2.1 HDF5 weights, no architecture
inside), read with ``h5py`` and rebuilt as an ONNX graph. Keras semantics kept: ``same`` padding,
batch-norm epsilon 1e-3, channels-last ``Flatten`` (the graph transposes to NHWC before it),
``LeakyReLU(0.1)``. Layers are matched to the architecture by their creation order (the number
in ``conv2d_<n>``), which Keras assigns in the order ``classifiers.py`` builds them.

**The face crop.** The reference's video pipeline (``pipeline.py``, ``FaceFinder``) crops a square
centred on the nose, of side ``1.3 × 2.2 × max(eye distance, eye-to-mouth distance)``, rotated
upright (eyes-to-mouth axis vertical), reflect-padded where it leaves the frame, and zooms it to
256×256. :func:`mesonet_crop` does the same from five landmarks in one affine warp (bilinear,
reflect border); the nose point is ``(eyes + 3 nose tip) / 4``, the middle of the reference's
nose-bridge + nose-tip points. With dlib's 5 points (no mouth) the eye-to-mouth distance is taken
as 1.3 × the eye distance (the reference's own sample crops span 3.2-4.1 eye distances, this
gives 3.7); without landmarks, a square of 1.3 × the box's larger side about its centre. The reference's
own test images (``mesonet/samples``) are such crops already: :meth:`MesoNet.score_crop` scores
a crop as it is (resized to 256×256).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, ModelFormatError, ModelShapeError
from ..onnx_runtime import open_onnx_session
from ..quality.fiqa import check_image
from ..registry import attack_detectors
from ..types import AttackScore, Detection
from ._graph import GraphBuilder, box_of, check_inputs, check_settings, find_model_file, float_input

__all__ = ["MesoNet", "VARIANTS", "mesonet_crop", "mesonet_onnx", "read_keras_weights", "INPUT_SIZE"]

INPUT_SIZE = 256
BN_EPS_KERAS = 1e-3
LEAKY_ALPHA = 0.1
#: crop side in units of max(eye distance, eye-to-mouth distance): the reference's K=2.2 × 1.3
CROP_FACTOR = 2.2 * 1.3
#: eye-to-mouth distance assumed, in eye distances, when the landmarks have no mouth (dlib's 5)
NO_MOUTH_RATIO = 1.3

#: variant → sha256 of the reference's weights (DariusAf/MesoNet @ 2144d56)
VARIANTS: dict[str, str] = {
    "Meso4_DF": "036ed30d04ffd9c7506f825b97c86aa64915f5818931da96817b169aad790af5",
    "Meso4_F2F": "bcfda015d217b9f8d6557693edbdf9f4e79cfd22672541968dd0e2954462b5d7",
    "MesoInception_DF": "234586d40058e76ef8b6f27ca4b63c06e31c2a5a69c0d8ba6f30b1468ab7bafa",
    "MesoInception_F2F": "d4533ac8a3197dc35c47405d23d99e888c1d0135e267e03540c7451feaccff3f",
}

#: (filters a, b, c, d) of the two inception layers of MesoInception-4
_INCEPTION = ((1, 4, 4, 2), (2, 4, 4, 2))
_LAYER = re.compile(r"^(conv2d|batch_normalization|dense)_(\d+)$")


def read_keras_weights(path: str | Path) -> dict[str, list[list[npt.NDArray[np.float32]]]]:
    """A Keras HDF5 weights file's weighted layers, by kind (``conv2d``, ``batch_normalization``,
    ``dense``), each in creation order, each a list of its arrays in the file's weight order."""
    try:
        import h5py
    except ImportError as exc:
        raise BackendUnavailableError(
            "MesoNet reads Keras .h5 weights with h5py: pip install 'faceprint[pad]'"
        ) from exc
    p = Path(path)
    found: dict[str, list[tuple[int, list[npt.NDArray[np.float32]]]]] = {
        "conv2d": [],
        "batch_normalization": [],
        "dense": [],
    }
    try:
        with h5py.File(p, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            for lname in root:
                m = _LAYER.match(lname)
                if m is None:
                    continue
                group = root[lname]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
                arrays = [np.asarray(group[n], dtype=np.float32) for n in names]
                found[m.group(1)].append((int(m.group(2)), arrays))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"{p}: not a readable Keras HDF5 weights file ({exc})") from None
    return {k: [a for _, a in sorted(v, key=lambda t: t[0])] for k, v in found.items()}


class _MesoBuilder:
    def __init__(self, g: GraphBuilder, layers: dict[str, list[list[npt.NDArray[np.float32]]]]) -> None:
        self.g = g
        self.convs = list(layers["conv2d"])
        self.bns = list(layers["batch_normalization"])
        self.dense = list(layers["dense"])

    def conv(self, x: str, cin: int, cout: int, k: int, *, dilation: int = 1) -> str:
        if not self.convs:
            raise ModelShapeError(f"{self.g.source}: fewer conv layers than the architecture needs")
        arrays = self.convs.pop(0)
        if len(arrays) != 2:
            raise ModelShapeError(f"{self.g.source}: a conv layer has {len(arrays)} weights, expected kernel and bias")
        w = self.g.expect(arrays[0], (k, k, cin, cout), "a conv kernel")
        b = self.g.expect(arrays[1], (cout,), "a conv bias")
        pad = dilation * (k - 1) // 2
        y = self.g.op(
            "Conv",
            [x, self.g.const(w.transpose(3, 2, 0, 1).copy(), "w"), self.g.const(b, "b")],
            kernel_shape=[k, k],
            pads=[pad] * 4,
            dilations=[dilation, dilation],
        )
        return self.g.op("Relu", [y])

    def bn(self, x: str, c: int) -> str:
        if not self.bns:
            raise ModelShapeError(f"{self.g.source}: fewer batch-norm layers than the architecture needs")
        arrays = self.bns.pop(0)
        if len(arrays) != 4:
            raise ModelShapeError(f"{self.g.source}: a batch-norm layer has {len(arrays)} weights, expected 4")
        gamma, beta, mean, var = (self.g.expect(a, (c,), "a batch-norm weight") for a in arrays)
        mul = (gamma / np.sqrt(var + BN_EPS_KERAS)).astype(np.float32)
        add = (beta - mean * mul).astype(np.float32)
        return self.g.op(
            "Add", [self.g.op("Mul", [x, self.g.const(mul.reshape(c, 1, 1))]), self.g.const(add.reshape(c, 1, 1))]
        )

    def pool(self, x: str, k: int) -> str:
        return self.g.op("MaxPool", [x], kernel_shape=[k, k], strides=[k, k])

    def inception(self, x: str, cin: int, a: int, b: int, c: int, d: int) -> tuple[str, int]:
        x1 = self.conv(x, cin, a, 1)
        x2 = self.conv(self.conv(x, cin, b, 1), b, b, 3)
        x3 = self.conv(self.conv(x, cin, c, 1), c, c, 3, dilation=2)
        x4 = self.conv(self.conv(x, cin, d, 1), d, d, 3, dilation=3)
        return self.g.op("Concat", [x1, x2, x3, x4], axis=1), a + b + c + d

    def build(self, x: str, out_name: str) -> str:
        if len(self.convs) == 4:  # Meso4
            y = self.pool(self.bn(self.conv(x, 3, 8, 3), 8), 2)
            y = self.pool(self.bn(self.conv(y, 8, 8, 5), 8), 2)
            c = 8
        elif len(self.convs) == 16:  # MesoInception-4
            y, c = self.inception(x, 3, *_INCEPTION[0])
            y = self.pool(self.bn(y, c), 2)
            y, c = self.inception(y, c, *_INCEPTION[1])
            y = self.pool(self.bn(y, c), 2)
        else:
            raise ModelShapeError(
                f"{self.g.source}: {len(self.convs)} conv layers; Meso4 has 4 and MesoInception-4 has 16"
            )
        y = self.pool(self.bn(self.conv(y, c, 16, 5), 16), 2)
        y = self.pool(self.bn(self.conv(y, 16, 16, 5), 16), 4)
        return self.head(y, out_name)

    def head(self, y: str, out_name: str) -> str:
        if len(self.dense) != 2 or self.convs or self.bns:
            raise ModelShapeError(
                f"{self.g.source}: the layers do not match Meso4/MesoInception-4 (left over or missing)"
            )
        side = INPUT_SIZE // 32
        flat = self.g.op("Flatten", [self.g.op("Transpose", [y], perm=[0, 2, 3, 1])], axis=1)
        (w1, b1), (w2, b2) = (tuple(d) if len(d) == 2 else ((), ()) for d in self.dense)
        w1 = self.g.expect(np.asarray(w1), (side * side * 16, 16), "the first dense kernel")
        b1 = self.g.expect(np.asarray(b1), (16,), "the first dense bias")
        w2 = self.g.expect(np.asarray(w2), (16, 1), "the last dense kernel")
        b2 = self.g.expect(np.asarray(b2), (1,), "the last dense bias")
        h = self.g.op("Add", [self.g.op("MatMul", [flat, self.g.const(w1)]), self.g.const(b1)])
        h = self.g.op("LeakyRelu", [h], alpha=LEAKY_ALPHA)
        logit = self.g.op("Add", [self.g.op("MatMul", [h, self.g.const(w2)]), self.g.const(b2)])
        return self.g.op("Sigmoid", [logit], out_name)


def mesonet_onnx(layers: dict[str, list[list[npt.NDArray[np.float32]]]], source: str = "<mesonet>") -> bytes:
    """The ONNX model of a Meso4 or MesoInception-4: input ``faces`` (N, 3, 256, 256) float RGB in
    [0, 1], output ``real`` (N, 1), the sigmoid (1 = real)."""
    g = GraphBuilder(source)
    out = _MesoBuilder(g, layers).build("faces", "real")
    return g.model("mesonet", [float_input("faces", ["N", 3, INPUT_SIZE, INPUT_SIZE])], [float_input(out, ["N", 1])])


def _geometry(detection: Detection) -> tuple[tuple[float, float], float, float]:
    """(centre, side, roll in radians) of the reference's face square."""
    lm = detection.landmarks
    if lm is None:
        x, y, w, h = box_of(detection)
        return (x + w / 2, y + h / 2), 1.3 * max(w, h), 0.0
    e1, e2 = (np.asarray(p, np.float64) for p in lm.eye_centers())
    eyes = (e1 + e2) / 2
    nose = np.asarray(lm.nose(), np.float64)
    centre = (eyes + 3 * nose) / 4
    ipd = float(np.linalg.norm(e2 - e1))
    if lm.scheme == "arcface5":
        mouth = (lm.points[3].astype(np.float64) + lm.points[4]) / 2
        axis = mouth - eyes
        length = max(ipd, float(np.linalg.norm(axis)))
        roll = math.atan2(float(axis[0]), float(axis[1])) if np.linalg.norm(axis) > 0 else 0.0
    else:
        length = NO_MOUTH_RATIO * ipd
        d = e2 - e1
        roll = -math.atan2(float(d[1]), float(d[0]))
    side = CROP_FACTOR * length
    if not (math.isfinite(side) and side > 1):
        x, y, w, h = box_of(detection)
        return (x + w / 2, y + h / 2), 1.3 * max(w, h), 0.0
    return (float(centre[0]), float(centre[1])), side, roll


def mesonet_crop(image_rgb: npt.NDArray[np.uint8], detection: Detection) -> npt.NDArray[np.uint8]:
    """The 256×256 RGB uint8 face crop MesoNet reads (see the module doc)."""
    (cx, cy), side, roll = _geometry(detection)
    s = INPUT_SIZE / side
    cos, sin = math.cos(roll) * s, math.sin(roll) * s
    # crop = R(roll) · (p - centre) · s + 128: turns the face so the eyes-to-mouth axis points down
    m = np.array(
        [[cos, -sin, INPUT_SIZE / 2 - cos * cx + sin * cy], [sin, cos, INPUT_SIZE / 2 - sin * cx - cos * cy]],
        dtype=np.float64,
    )
    return np.asarray(
        cv2.warpAffine(
            image_rgb, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        ),
        dtype=np.uint8,
    )


@attack_detectors.register("mesonet")
class MesoNet:
    """MesoNet deepfake screening (see the module doc).

    Args:
        variant: ``"Meso4_DF"`` (default), ``"Meso4_F2F"``, ``"MesoInception_DF"`` or ``"MesoInception_F2F"``.
        model_dir: the directory holding ``mesonet/<variant>.h5`` (default ``$FACEPRINT_MODEL_DIR``).
        threshold: deepfake when ``score >= threshold`` (default 0.5).
        verify: check the file's sha256 (default True).
        threads: ONNX Runtime intra-op threads (None = its default).
        batch_size: faces per ONNX call.
    """

    kind = "deepfake"

    def __init__(
        self,
        *,
        variant: str = "Meso4_DF",
        model_dir: str | os.PathLike[str] | None = None,
        threshold: float = 0.5,
        verify: bool = True,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        batch_size: int = 16,
    ) -> None:
        if variant not in VARIANTS:
            raise ConfigurationError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        t = check_settings(threshold, batch_size)
        self.variant = variant
        self.threshold = t
        self.batch_size = batch_size
        self.name = "mesonet"
        path = find_model_file("mesonet", f"{variant}.h5", VARIANTS[variant] if verify else None, model_dir, "MesoNet")
        self._session = open_onnx_session(
            mesonet_onnx(read_keras_weights(path), source=str(path)), threads=threads, providers=providers
        )
        self.detector_id = f"mesonet-{variant}@1"

    @classmethod
    def _conformance_cases(cls, name: str) -> list[Any]:
        """How :mod:`faceprint.testing` builds this detector: Meso4_DF from the suite's model folders
        (``mesonet/Meso4_DF.h5``) or the model directory; skipped when absent."""
        from ..testing import BackendCase

        def build(ctx: Any) -> MesoNet:
            return cls(model_dir=ctx.model_file("mesonet/Meso4_DF.h5").parents[1], threads=1)

        return [BackendCase(name, build)]

    def __repr__(self) -> str:
        return f"MesoNet(variant={self.variant!r}, threshold={self.threshold})"

    def real_probabilities(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """The sigmoid (1 = real) of 256×256 RGB uint8 crops."""
        out = []
        for start in range(0, len(crops), self.batch_size):
            batch = np.stack(crops[start : start + self.batch_size]).astype(np.float32) / np.float32(255.0)
            (real,) = self._session.run(["real"], {"faces": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})
            out.append(np.asarray(real, np.float32)[:, 0])
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _scores(self, real: npt.NDArray[np.float32]) -> list[AttackScore]:
        res = []
        for r in real:
            s = min(1.0, max(0.0, 1.0 - float(r)))
            res.append(
                AttackScore(s, s >= self.threshold, self.threshold, self.detector_id, self.kind, {self.variant: s})
            )
        return res

    def score_crop(self, face_rgb: npt.NDArray[np.uint8]) -> AttackScore:
        """Score an image that is already a face crop (as the reference's test images are)."""
        img = check_image(face_rgb)
        crop = np.asarray(cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        return self._scores(self.real_probabilities([crop]))[0]

    def score_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> list[AttackScore]:
        imgs = check_inputs(images, detections)
        crops = [mesonet_crop(im, d) for im, d in zip(imgs, detections, strict=True)]
        return self._scores(self.real_probabilities(crops))

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        return self.score_batch([image], [detection])[0]
