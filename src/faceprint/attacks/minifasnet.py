"""MiniFASNet passive liveness (Silent-Face anti-spoofing, Minivision, Apache-2.0): ``"minifasnet"``.

Two small CNNs, each a 3-class softmax (class 1 = live, 0 and 2 = the two spoof classes) over an
80×80 BGR crop taken around the face box: MiniFASNetV2 at 2.7× the box, MiniFASNetV1SE (with
squeeze-and-excitation) at 4.0×. The reference (``test.py`` of minivision-ai/Silent-Face-Anti-Spoofing)
sums the two softmaxes; here the attack score is ``1 - (sum of the live probabilities) / n_models``
(the averaged live probability turned round), and ``details`` carry each model's own
``1 - p_live``. Default threshold 0.5: an attack when the averaged live probability is below
one half (the reference takes the argmax over the three summed classes; the two differ only
when the live class wins with less than half the mass).

**Weights.** The two ``.pth`` files are not on PyPI and are never downloaded: they are read from
``<model dir>/minifasnet/`` (``model_dir=`` or ``$FACEPRINT_MODEL_DIR``), checked against their
sha256 and read by :mod:`.torch_checkpoint`'s restricted unpickler into numpy (no torch). The
network is rebuilt here as an ONNX graph (batch-norm folded into the convolutions) and run
by ONNX Runtime; both models live in one graph and run in one call.

**Pre-processing, as the reference does it** (``CropImage`` of ``src/generate_patches.py``):
the box (x, y, w, h) is scaled about its centre by 2.7 or 4.0, the scale lowered to
``min((H-1)/h, (W-1)/w, scale)`` when the image is too small, and the window **shifted back
inside the image** when it crosses a border (no padding: a face at the border gets an
off-centre crop, as in the reference); corners are truncated to int, the window (inclusive
of its right/bottom pixel) is resized to 80×80 with bilinear interpolation, channels are BGR,
and the values stay **float 0-255 without normalisation** (the reference's ``to_tensor`` has
its ``/255`` commented out).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ModelShapeError
from ..onnx_runtime import open_onnx_session
from ..registry import attack_detectors
from ..types import AttackScore, Detection
from ._graph import BN_EPS_TORCH, GraphBuilder, box_of, check_inputs, check_settings, find_model_file, float_input
from .torch_checkpoint import read_state_dict

__all__ = ["MiniFASNet", "MODELS", "minifasnet_crop", "minifasnet_onnx", "CROP_SIZE"]

log = logging.getLogger(__name__)

CROP_SIZE = 80
LIVE_CLASS = 1


@dataclass(frozen=True)
class _ModelFile:
    tag: str
    filename: str
    sha256: str
    scale: float


#: The reference's two checkpoints (minivision-ai/Silent-Face-Anti-Spoofing @ b6d5f04).
MODELS: dict[str, _ModelFile] = {
    "v2": _ModelFile(
        "v2", "2.7_80x80_MiniFASNetV2.pth", "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7
    ),
    "v1se": _ModelFile(
        "v1se",
        "4_0_0_80x80_MiniFASNetV1SE.pth",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        4.0,
    ),
}


# --- pre-processing ---------------------------------------------------------------------------


def crop_window(
    src_w: int, src_h: int, box: tuple[float, float, float, float], scale: float
) -> tuple[int, int, int, int]:
    """The reference's crop window (left, top, right, bottom), inclusive, inside the image."""
    x, y, bw, bh = box
    scale = min((src_h - 1) / bh, (src_w - 1) / bw, scale)
    new_w, new_h = bw * scale, bh * scale
    cx, cy = x + bw / 2, y + bh / 2
    left, top, right, bottom = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > src_w - 1:
        left -= right - src_w + 1
        right = src_w - 1
    if bottom > src_h - 1:
        top -= bottom - src_h + 1
        bottom = src_h - 1
    li, ti = max(0, int(left)), max(0, int(top))
    return li, ti, max(li, min(src_w - 1, int(right))), max(ti, min(src_h - 1, int(bottom)))


def minifasnet_crop(image_rgb: npt.NDArray[np.uint8], detection: Detection, scale: float) -> npt.NDArray[np.float32]:
    """One model's input: the (3, 80, 80) float32 BGR crop, values 0-255 (see the module doc)."""
    h, w = image_rgb.shape[:2]
    left, top, right, bottom = crop_window(w, h, box_of(detection), scale)
    patch = image_rgb[top : bottom + 1, left : right + 1]
    resized = cv2.resize(patch, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)  # per channel: RGB or BGR alike
    return np.ascontiguousarray(resized[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)


# --- the network as an ONNX graph ---------------------------------------------------------------


class _NetBuilder:
    """Adds one MiniFASNet (V1/V2, with or without SE) from its state dict to a GraphBuilder."""

    def __init__(self, g: GraphBuilder, sd: Mapping[str, npt.NDArray[Any]], what: str) -> None:
        self.g = g
        self.sd = {k.removeprefix("module."): v for k, v in sd.items()}
        self.what = what

    def get(self, key: str) -> npt.NDArray[Any]:
        try:
            return self.sd[key]
        except KeyError:
            raise ModelShapeError(f"{self.g.source}: {self.what} lacks the tensor {key}; not a MiniFASNet") from None

    def bn(self, prefix: str, c: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        gamma = self.g.expect(self.get(f"{prefix}.weight"), (c,), f"{prefix}.weight")
        beta = self.g.expect(self.get(f"{prefix}.bias"), (c,), f"{prefix}.bias")
        mean = self.g.expect(self.get(f"{prefix}.running_mean"), (c,), f"{prefix}.running_mean")
        var = self.g.expect(self.get(f"{prefix}.running_var"), (c,), f"{prefix}.running_var")
        if np.any(var < 0):
            raise ModelShapeError(f"{self.g.source}: {prefix}.running_var has negative values; the file is damaged")
        mul = gamma / np.sqrt(var + BN_EPS_TORCH)
        return mul.astype(np.float32), (beta - mean * mul).astype(np.float32)

    def conv_bn(
        self, x: str, cin: int, prefix: str, *, stride: int, pad: int, prelu: bool, conv: str = "conv", bn: str = "bn"
    ) -> tuple[str, int]:
        w = np.asarray(self.get(f"{prefix}.{conv}.weight"))
        if w.ndim != 4 or w.shape[1] == 0 or cin % w.shape[1] or w.shape[2] != w.shape[3]:
            raise ModelShapeError(
                f"{self.g.source}: {prefix}.{conv}.weight has shape {w.shape}, which does not fit {cin} inputs"
            )
        cout, groups = int(w.shape[0]), cin // int(w.shape[1])
        if groups > 1 and cout % groups:
            raise ModelShapeError(f"{self.g.source}: {prefix}.{conv}.weight: {cout} filters in {groups} groups")
        mul, add = self.bn(f"{prefix}.{bn}", cout)
        wf = (w.astype(np.float32) * mul[:, None, None, None]).astype(np.float32)
        k = int(w.shape[2])
        y = self.g.op(
            "Conv",
            [x, self.g.const(wf, "w"), self.g.const(add, "b")],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=groups,
        )
        if prelu:
            slope = self.g.expect(self.get(f"{prefix}.prelu.weight"), (cout,), f"{prefix}.prelu.weight")
            a = self.g.const(slope.reshape(cout, 1, 1), "slope")
            # PReLU(x) = max(x, a·x) whenever a <= 1 (true of every slope in the published files):
            # ONNX Runtime runs Mul + Max several times faster than its broadcasting PRelu kernel
            y = self.g.op("Max", [y, self.g.op("Mul", [y, a])]) if np.all(slope <= 1) else self.g.op("PRelu", [y, a])
        return y, cout

    def depth_wise(self, x: str, cin: int, prefix: str, *, stride: int, residual: bool) -> tuple[str, int]:
        y, c = self.conv_bn(x, cin, f"{prefix}.conv", stride=1, pad=0, prelu=True)
        y, c = self.conv_bn(y, c, f"{prefix}.conv_dw", stride=stride, pad=1, prelu=True)
        y, c = self.conv_bn(y, c, f"{prefix}.project", stride=1, pad=0, prelu=False)
        if not residual:
            return y, c
        if c != cin:
            raise ModelShapeError(f"{self.g.source}: residual block {prefix} maps {cin} channels to {c}")
        if f"{prefix}.se_module.fc1.weight" in self.sd:
            s = self.g.op("GlobalAveragePool", [y])
            s, r = self.conv_bn(s, c, f"{prefix}.se_module", stride=1, pad=0, prelu=False, conv="fc1", bn="bn1")
            s = self.g.op("Relu", [s])
            s, c2 = self.conv_bn(s, r, f"{prefix}.se_module", stride=1, pad=0, prelu=False, conv="fc2", bn="bn2")
            if c2 != c:
                raise ModelShapeError(f"{self.g.source}: the SE module of {prefix} gives {c2} channels, not {c}")
            y = self.g.op("Mul", [y, self.g.op("Sigmoid", [s])])
        return self.g.op("Add", [x, y]), c

    def residual_stack(self, x: str, c: int, name: str) -> tuple[str, int]:
        i = 0
        while f"{name}.model.{i}.conv.conv.weight" in self.sd:
            x, c = self.depth_wise(x, c, f"{name}.model.{i}", stride=1, residual=True)
            i += 1
        if i == 0:
            raise ModelShapeError(f"{self.g.source}: {self.what} has no blocks in {name}; not a MiniFASNet")
        return x, c

    def build(self, x: str, probs_name: str) -> str:
        y, c = self.conv_bn(x, 3, "conv1", stride=2, pad=1, prelu=True)
        y, c = self.conv_bn(y, c, "conv2_dw", stride=1, pad=1, prelu=True)
        y, c = self.depth_wise(y, c, "conv_23", stride=2, residual=False)
        y, c = self.residual_stack(y, c, "conv_3")
        y, c = self.depth_wise(y, c, "conv_34", stride=2, residual=False)
        y, c = self.residual_stack(y, c, "conv_4")
        y, c = self.depth_wise(y, c, "conv_45", stride=2, residual=False)
        y, c = self.residual_stack(y, c, "conv_5")
        y, c = self.conv_bn(y, c, "conv_6_sep", stride=1, pad=0, prelu=True)
        k = np.asarray(self.get("conv_6_dw.conv.weight")).shape
        side = CROP_SIZE // 16
        if len(k) != 4 or k[2:] != (side, side):
            raise ModelShapeError(
                f"{self.g.source}: conv_6_dw.conv.weight has shape {k}; an {CROP_SIZE}x{CROP_SIZE} model needs a "
                f"{side}x{side} kernel"
            )
        y, c = self.conv_bn(y, c, "conv_6_dw", stride=1, pad=0, prelu=False)
        y = self.g.op("Flatten", [y], axis=1)
        bn_w = np.asarray(self.get("bn.weight"))
        emb = int(bn_w.shape[0]) if bn_w.ndim == 1 else -1
        if emb != c:  # the reference applies `linear` only when the embedding is not 512 wide
            lin = self.g.expect(self.get("linear.weight"), (emb, c), "linear.weight")
            y = self.g.op("MatMul", [y, self.g.const(lin.T.copy(), "lin")])
        mul, add = self.bn("bn", emb)
        y = self.g.op("Add", [self.g.op("Mul", [y, self.g.const(mul, "bnm")]), self.g.const(add, "bna")])
        prob = np.asarray(self.get("prob.weight"))
        if prob.ndim != 2 or prob.shape[1] != emb or prob.shape[0] <= LIVE_CLASS:
            raise ModelShapeError(f"{self.g.source}: prob.weight has shape {prob.shape}; expected (classes, {emb})")
        logits = self.g.op("MatMul", [y, self.g.const(prob.astype(np.float32).T.copy(), "prob")])
        return self.g.op("Softmax", [logits], probs_name, axis=1)


def minifasnet_onnx(state_dicts: Mapping[str, Mapping[str, npt.NDArray[Any]]], source: str = "<minifasnet>") -> bytes:
    """One ONNX model running every given MiniFASNet: input ``crops_<tag>`` (N, 3, 80, 80) float
    BGR 0-255, output ``probs_<tag>`` (N, classes) softmax, for each ``tag`` of ``state_dicts``."""
    g = GraphBuilder(source)
    inputs, outputs = [], []
    for tag, sd in state_dicts.items():
        inputs.append(float_input(f"crops_{tag}", ["N", 3, CROP_SIZE, CROP_SIZE]))
        out = _NetBuilder(g, sd, f"MiniFASNet {tag!r}").build(f"crops_{tag}", f"probs_{tag}")
        outputs.append(float_input(out, ["N", "C"]))
    return g.model("minifasnet", inputs, outputs)


# --- the detector -------------------------------------------------------------------------------


@attack_detectors.register("minifasnet")
class MiniFASNet:
    """Silent-Face MiniFASNet liveness (see the module doc).

    Args:
        models: which checkpoints to run: ``("v2", "v1se")`` (the reference ensemble, default),
            ``"v2"`` (2.7× crop) or ``"v1se"`` (4.0× crop).
        model_dir: the directory holding ``minifasnet/*.pth`` (default ``$FACEPRINT_MODEL_DIR``).
        threshold: attack when ``score >= threshold`` (default 0.5).
        verify: check each file's sha256 (default True; False for files you trained yourself).
        threads: ONNX Runtime intra-op threads (None = its default).
        batch_size: faces per ONNX call in :meth:`score_batch`.
    """

    kind = "presentation"

    def __init__(
        self,
        *,
        models: str | Sequence[str] = ("v2", "v1se"),
        model_dir: str | os.PathLike[str] | None = None,
        threshold: float = 0.5,
        verify: bool = True,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> None:
        tags = [models] if isinstance(models, str) else list(models)
        unknown = [t for t in tags if t not in MODELS]
        if not tags or unknown or len(set(tags)) != len(tags):
            raise ConfigurationError(f"models must be one or more of {sorted(MODELS)} (no repeats), got {models!r}")
        t = check_settings(threshold, batch_size)
        self.threshold = t
        self.batch_size = batch_size
        self.models = tuple(tags)
        self.name = "minifasnet" if len(tags) == 2 else f"minifasnet-{tags[0]}"
        files = {
            tag: find_model_file(
                "minifasnet", MODELS[tag].filename, MODELS[tag].sha256 if verify else None, model_dir, "MiniFASNet"
            )
            for tag in tags
        }
        graph = minifasnet_onnx(
            {tag: read_state_dict(p) for tag, p in files.items()}, source=str(files[tags[0]].parent)
        )
        self._session = open_onnx_session(graph, threads=threads, providers=providers)
        self.detector_id = f"{self.name}@1"

    @classmethod
    def _conformance_cases(cls, name: str) -> list[Any]:
        """How :mod:`faceprint.testing` builds this detector: on the real checkpoints in the suite's
        model folders (``minifasnet/*.pth``) or the model directory; skipped when absent."""
        from ..testing import BackendCase

        def build(ctx: Any) -> MiniFASNet:
            return cls(model_dir=ctx.model_file(f"minifasnet/{MODELS['v2'].filename}").parents[1], threads=1)

        return [BackendCase(name, build)]

    def __repr__(self) -> str:
        return f"MiniFASNet(models={self.models!r}, threshold={self.threshold})"

    def _run(self, crops: Mapping[str, npt.NDArray[np.float32]]) -> dict[str, npt.NDArray[np.float32]]:
        feeds = {f"crops_{t}": crops[t] for t in self.models}
        outs = self._session.run([f"probs_{t}" for t in self.models], feeds)
        return {t: np.asarray(o, dtype=np.float32) for t, o in zip(self.models, outs, strict=True)}

    def live_probabilities(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Each model's live-class probability per face, by model tag."""
        imgs = check_inputs(images, detections)
        out: dict[str, list[npt.NDArray[np.float32]]] = {t: [] for t in self.models}
        for start in range(0, len(imgs), self.batch_size):
            chunk = range(start, min(start + self.batch_size, len(imgs)))
            crops = {
                t: np.stack([minifasnet_crop(imgs[i], detections[i], MODELS[t].scale) for i in chunk])
                for t in self.models
            }
            for t, probs in self._run(crops).items():
                out[t].append(probs[:, LIVE_CLASS])
        return {t: np.concatenate(v) if v else np.zeros(0, np.float32) for t, v in out.items()}

    def score_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> list[AttackScore]:
        live = self.live_probabilities(images, detections)
        n = len(next(iter(live.values())))
        scores = []
        for i in range(n):
            mean_live = float(np.mean([live[t][i] for t in self.models], dtype=np.float64))
            s = min(1.0, max(0.0, 1.0 - mean_live))
            scores.append(
                AttackScore(
                    score=s,
                    is_attack=s >= self.threshold,
                    threshold=self.threshold,
                    detector=self.detector_id,
                    kind=self.kind,
                    details={t: min(1.0, max(0.0, 1.0 - float(live[t][i]))) for t in self.models},
                )
            )
        return scores

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        return self.score_batch([image], [detection])[0]
