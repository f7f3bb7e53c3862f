"""ArcFace-style ONNX embedders (InsightFace model packs: ``buffalo_l/w600k_r50.onnx`` …).

The user puts the ``.onnx`` file in the local model directory (``$FACEPRINT_MODEL_DIR``,
default ``~/.faceprint/models``) or passes its path; nothing is downloaded. The graph is
checked when the embedder is built: one NCHW image input with 3 channels and a square
spatial size, one (N, D) output.

Pre-processing follows InsightFace's ``ArcFaceONNX``: ``(pixel - input_mean) / input_std``
with the network fed RGB (InsightFace swaps its BGR images to RGB before the network).
AdaFace and other packs use other constants and channel orders; pass ``input_mean``,
``input_std`` and ``bgr`` accordingly.

"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import (
    ConfigurationError,
    InvalidEmbeddingError,
    ModelFormatError,
)
from ..onnx_runtime import (
    describe_nodes,
    dims,
    float_dtype,
    model_version_of,
    open_onnx_session,
    resolve_onnx_model,
)
from ..registry import embedders
from .base import check_crops, l2_normalise

if TYPE_CHECKING:
    from ..testing import BackendCase

__all__ = ["OnnxArcFaceEmbedder"]

log = logging.getLogger(__name__)

#: Side of the crops faceprint's ``"arcface112"`` alignment template makes.
_TEMPLATE_SIZE = 112
#: Crops per ``session.run`` for models with a dynamic batch dimension.
_CHUNK = 32


def _per_channel(value: float | Sequence[float], name: str) -> npt.NDArray[np.float32]:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size not in (1, 3) or not np.all(np.isfinite(arr)):
        raise ConfigurationError(f"{name} must be a finite number or 3 numbers, got {value!r}")
    return np.broadcast_to(arr, (3,)).astype(np.float32)


# --- the embedder ----------------------------------------------------------------------------


@embedders.register("onnx-arcface")
class OnnxArcFaceEmbedder:
    """An ArcFace-style ONNX face embedder (InsightFace ``w600k_r50.onnx``, AdaFace exports …).

    Settings (keyword-only):
        model: path to the ``.onnx`` file, or a name relative to the model directory
            (``"buffalo_l/w600k_r50.onnx"``).
        sha256: expected sha256 of the file; checked when given.
        threads: ONNX Runtime intra-op threads (None: its default).
        providers: ONNX Runtime execution providers in order of preference; unavailable ones
            are skipped (default ``["CPUExecutionProvider"]``).
        model_id: name stored with every embedding (default: the file's stem).
        input_mean, input_std: pixel normalisation ``(x - mean) / std``, a number or three
            numbers in the network's channel order (ArcFace: 127.5 / 127.5).
        bgr: True when the network expects BGR channel order (InsightFace ArcFace takes RGB).

    Attributes: ``model_id``, ``model_version`` (first 12 hex digits of the file's sha256),
    ``dim`` (D), ``template`` (``"arcface112"``), ``input_size`` (S, the network's square side),
    ``path``.

    ``embed`` takes aligned ``"arcface112"`` crops, uint8 (112, 112, 3) RGB; when the network's
    side S differs from 112 the crops are resized to S×S.
    """

    name = "onnx-arcface"
    template = "arcface112"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str],
        sha256: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        model_id: str | None = None,
        input_mean: float | Sequence[float] = 127.5,
        input_std: float | Sequence[float] = 127.5,
        bgr: bool = False,
    ) -> None:
        self._mean = _per_channel(input_mean, "input_mean")
        self._std = _per_channel(input_std, "input_std")
        if np.any(self._std == 0):
            raise ConfigurationError(f"input_std must not be zero, got {input_std!r}")
        self.bgr = bool(bgr)
        self.path = resolve_onnx_model(model)
        self.model_version = model_version_of(self.path, sha256)
        self.model_id = str(model_id) if model_id else self.path.stem
        self._session = open_onnx_session(self.path, threads=threads, providers=providers)
        self._inspect_graph()
        log.info(
            "loaded ONNX embedder %s@%s from %s: input %d×%d, dim %d, batch %s",
            self.model_id,
            self.model_version,
            self.path,
            self.input_size,
            self.input_size,
            self.dim,
            self._fixed_batch or "dynamic",
        )

    def _inspect_graph(self) -> None:
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1:
            raise ModelFormatError(
                f"{self.path}: an ArcFace-style embedder needs exactly one input, found {len(inputs)}: "
                f"{describe_nodes(inputs)}"
            )
        if len(outputs) != 1:
            raise ModelFormatError(
                f"{self.path}: an ArcFace-style embedder needs exactly one output, found {len(outputs)}: "
                f"{describe_nodes(outputs)}"
            )
        inp, out = inputs[0], outputs[0]
        ishape = dims(inp.shape)
        if len(ishape) != 4 or ishape[1] != 3:
            raise ModelFormatError(
                f"{self.path}: expected an NCHW image input (N, 3, S, S), found {describe_nodes(inputs)}"
            )
        h, w = ishape[2], ishape[3]
        if h is not None and w is not None and h != w:
            raise ModelFormatError(f"{self.path}: expected a square input, found {describe_nodes(inputs)}")
        self.input_size: int = h or w or _TEMPLATE_SIZE
        self._in_dtype = float_dtype(inp.type, self.path, "the input")
        self._fixed_batch: int | None = ishape[0]
        oshape = dims(out.shape)
        if out.shape is None or len(out.shape) != 2:
            raise ModelFormatError(f"{self.path}: expected one output of shape (N, D), found {describe_nodes(outputs)}")
        float_dtype(out.type, self.path, "the output")
        self._input_name: str = inp.name
        self._output_name: str = out.name
        if oshape[1] is not None:
            self.dim: int = int(oshape[1])
        else:  # symbolic D: learn it from one run on a blank crop
            probe = self._run(np.zeros((1, self.input_size, self.input_size, 3), dtype=np.uint8))
            self.dim = int(probe.shape[1])

    # -- inference --------------------------------------------------------------------------

    def _blob(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        """(N, S, S, 3) uint8 RGB → normalised (N, 3, S, S) in the network's dtype and channel order."""
        x = crops.astype(np.float32)
        if self.bgr:
            x = x[..., ::-1]
        x = (x - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=self._in_dtype)

    def _run(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Raw network output (N, D) for (N, S, S, 3) uint8 crops at the network's size."""
        n = crops.shape[0]
        step = self._fixed_batch or _CHUNK
        parts: list[npt.NDArray[np.float32]] = []
        for start in range(0, n, step):
            chunk = crops[start : start + step]
            m = chunk.shape[0]
            if self._fixed_batch is not None and m < step:  # pad a fixed batch > 1
                pad = np.zeros((step - m, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self._session.run([self._output_name], {self._input_name: self._blob(chunk)})[0]
            out = np.asarray(out)
            if out.ndim != 2 or out.shape[0] != chunk.shape[0]:
                raise ModelFormatError(
                    f"{self.path}: output has shape {out.shape} for a batch of {chunk.shape[0]}; expected (N, D)"
                )
            parts.append(out[:m].astype(np.float32, copy=False))
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Embed aligned crops.

        Args:
            crops: N uint8 RGB arrays of shape (112, 112, 3) from the ``"arcface112"`` template.

        Returns:
            float32 (N, D), each row L2-normalised; (0, D) for no crops.
        """
        batch = check_crops(crops, _TEMPLATE_SIZE)
        if batch.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.input_size != _TEMPLATE_SIZE:
            import cv2

            s = self.input_size
            batch = np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_LINEAR) for c in batch])
        raw = self._run(batch)
        if raw.shape[1] != self.dim:
            raise ModelFormatError(f"{self.path}: output has {raw.shape[1]} values per face, expected {self.dim}")
        if not np.all(np.isfinite(raw)):
            bad = np.where(~np.all(np.isfinite(raw), axis=1))[0].tolist()
            raise InvalidEmbeddingError(
                f"{self.model_id}@{self.model_version} produced NaN/infinite embeddings for crops {bad}; "
                "the model file may be corrupt or need other input_mean/input_std settings"
            )
        norms = np.linalg.norm(raw.astype(np.float64), axis=1)
        if np.any(norms == 0):
            raise InvalidEmbeddingError(
                f"{self.model_id}@{self.model_version} produced zero-norm embeddings for crops "
                f"{np.where(norms == 0)[0].tolist()}"
            )
        return l2_normalise(raw)

    @classmethod
    def _conformance_cases(cls, name: str) -> list[BackendCase]:
        """How :mod:`faceprint.testing` builds this embedder: on a tiny untrained graph."""
        from ..testing.onnx_graphs import build_arcface, tiny_graph_case

        untrained = "the synthetic graph (mean colour, then a fixed linear map) does not tell people apart"
        return [tiny_graph_case(name, cls, build_arcface, check_embed_same_person_closest=untrained)]

    def __repr__(self) -> str:
        return f"OnnxArcFaceEmbedder(model_id={self.model_id!r}, model_version={self.model_version!r}, dim={self.dim})"
