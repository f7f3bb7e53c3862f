"""dlib's ResNet face embedder (128-d), two backends with the same weights and the same output.

``dlib-resnet-onnx`` (default)
    The network read from dlib's ``.dat`` file, converted in memory to ONNX
    (:mod:`faceprint.embedding.dlib_export`) and run by onnxruntime: batched, multi-threaded,
    several times faster than dlib's own build, which has no BLAS.
``dlib-resnet``
    dlib's own ``face_recognition_model_v1``, the reference the ONNX backend is tested against.

Both tag embeddings with the same model id and version, so templates made by either compare.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, InvalidEmbeddingError
from ..models import manifest_identity, model_path
from ..onnx_runtime import open_onnx_session
from ..registry import embedders
from .base import check_crops, l2_normalise

__all__ = ["DlibResNetEmbedder", "DlibResNetOnnxEmbedder", "MODEL_NAME"]

log = logging.getLogger(__name__)

MODEL_NAME = "dlib-resnet-v1"
_CHIP = 150


class _DlibResNetBase:
    template = "dlib150"
    dim = 128

    def __init__(self, *, batch_size: int) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_id, self.model_version = manifest_identity(MODEL_NAME)
        self.batch_size = int(batch_size)
        self._path = model_path(MODEL_NAME)

    def _run(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        raise NotImplementedError

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Aligned ``dlib150`` crops (N, 150, 150, 3) uint8 RGB → (N, 128) float32, unit rows."""
        x = check_crops(crops, _CHIP)
        if len(x) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._run(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        out = np.concatenate(parts, axis=0)
        if not np.all(np.isfinite(out)):
            raise InvalidEmbeddingError("the network produced NaN or infinite values")
        return l2_normalise(out)


@embedders.register("dlib-resnet-onnx")
class DlibResNetOnnxEmbedder(_DlibResNetBase):
    """dlib's ResNet weights run by onnxruntime.

    Args:
        threads: intra-op threads (None: onnxruntime's default, all cores).
        batch_size: crops per inference call.
        providers: onnxruntime execution providers (default CPU).
    """

    def __init__(
        self, *, threads: int | None = None, batch_size: int = 32, providers: Sequence[str] | None = None
    ) -> None:
        super().__init__(batch_size=batch_size)
        from .dlib_export import dlib_resnet_to_onnx

        # No ONNX disk cache: converting takes ~0.15 s, and a cached copy would be a file the user
        # did not ask for that must be re-hashed on every read anyway (README, "Start-up").
        proto = dlib_resnet_to_onnx(self._path, check=False)  # the file's sha256 was checked
        self._session = open_onnx_session(proto.SerializeToString(), threads=threads, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def _run(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        out = self._session.run([self._output], {self._input: crops})[0]
        return np.asarray(out, dtype=np.float32)


@embedders.register("dlib-resnet")
class DlibResNetEmbedder(_DlibResNetBase):
    """dlib's own implementation of the ResNet (slow without BLAS; the reference)."""

    def __init__(self, *, batch_size: int = 16) -> None:
        super().__init__(batch_size=batch_size)
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - hard dependency
            raise BackendUnavailableError("dlib-resnet needs dlib: pip install dlib-bin") from exc
        self._net: Any = dlib.face_recognition_model_v1(str(self._path))

    def _run(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return np.array(
            [np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(c))) for c in crops], dtype=np.float32
        )


def default_threads() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
