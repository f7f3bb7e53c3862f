"""Feature maps of an embedder's network, for explainers that read an intermediate layer.

:class:`OnnxFeatureModel` is an embedder made from an ONNX graph that takes uint8 (N, S, S, 3)
crops and outputs the descriptor plus named feature maps, as
``dlib_resnet_to_onnx(..., feature_outputs=True)`` builds it (layers ``block1`` …
``block14``). It implements both :class:`~faceprint.embedding.base.Embedder` and
:class:`~faceprint.explain.base.FeatureMapEmbedder`, and :meth:`OnnxFeatureModel.randomised`
gives a copy with random weights (the sanity check of Adebayo et al.).

:func:`feature_source` finds the feature maps of an embedder: the embedder itself when it shows
them, else a feature model built for its model id (the dlib ResNet, whichever of its two
backends computed the embeddings), kept for as long as that embedder object lives. Any other
embedder gives :class:`~faceprint.errors.LayerNotFoundError`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embedding.base import Embedder, check_crops, l2_normalise, model_tag
from ..errors import ConfigurationError, InvalidEmbeddingError, LayerNotFoundError
from ..onnx_runtime import open_onnx_session
from .base import FeatureMapEmbedder

__all__ = ["OnnxFeatureModel", "feature_source", "dlib_feature_model", "linear_head"]

log = logging.getLogger(__name__)

#: ONNX ops whose weight inputs :meth:`OnnxFeatureModel.randomised` replaces.
_PARAMETRIC = {"Conv": (1, 2), "MatMul": (1,), "Gemm": (1, 2)}


def linear_head(graph: Any, output: str) -> npt.NDArray[np.float32] | None:
    """The (C, D) weights of the MatMul that makes ``output`` (through reshapes), or None."""
    from onnx import numpy_helper

    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    name = output
    for _ in range(8):
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "MatMul" and node.input[1] in inits:
            return np.asarray(numpy_helper.to_array(inits[node.input[1]]), dtype=np.float32)
        if node.op_type not in ("Flatten", "Reshape", "Add", "Identity"):
            return None
        name = node.input[0]
    return None


class OnnxFeatureModel:
    """An embedder whose ONNX graph also outputs feature maps (see the module doc).

    Args:
        proto: the ``onnx.ModelProto``: input uint8 (N, S, S, 3), output ``descriptor`` (N, D)
            and one output per feature layer (N, C, h, w).
        model_id, model_version: the tag of its embeddings.
        template: the alignment template of its crops (``"dlib150"``).
        descriptor: name of the embedding output.
        threads: ONNX Runtime intra-op threads (None: its default).
        batch_size: crops per inference call.
    """

    def __init__(
        self,
        proto: Any,
        *,
        model_id: str,
        model_version: str,
        template: str,
        descriptor: str = "descriptor",
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_id, self.model_version, self.template = model_id, model_version, template
        self.batch_size = int(batch_size)
        self._proto = proto
        self._threads = threads
        self._descriptor = descriptor
        self._session = open_onnx_session(proto.SerializeToString(), threads=threads, providers=None)
        self._input = self._session.get_inputs()[0].name
        shape = self._session.get_inputs()[0].shape
        self._size = int(shape[1])
        outs = {o.name: o.shape for o in self._session.get_outputs()}
        if descriptor not in outs:
            raise ConfigurationError(f"the graph has no output {descriptor!r} (outputs: {', '.join(outs)})")
        self.dim = int(outs[descriptor][1])
        self.feature_layers = tuple(n for n in outs if n != descriptor)
        self._channels = {n: int(outs[n][1]) for n in self.feature_layers}
        self._head = linear_head(proto.graph, descriptor)

    def _run(self, names: list[str], crops: Sequence[npt.NDArray[np.uint8]]) -> list[npt.NDArray[np.float32]]:
        x = check_crops(crops, self._size)
        parts = [
            self._session.run(names, {self._input: x[i : i + self.batch_size]})
            for i in range(0, len(x), self.batch_size)
        ]
        out = [np.concatenate([p[k] for p in parts]).astype(np.float32, copy=False) for k in range(len(names))]
        if not np.all(np.isfinite(out[0])):
            raise InvalidEmbeddingError("the network produced NaN or infinite values")
        out[0] = l2_normalise(out[0])
        return out

    def embed(self, crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Aligned crops (N, S, S, 3) uint8 → (N, D) float32, unit rows."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._run([self._descriptor], crops)[0]

    def _layer(self, layer: str) -> str:
        if layer not in self._channels:
            raise LayerNotFoundError(
                f"model {self.model_id}@{self.model_version} has no layer {layer!r}; "
                f"its feature layers are {', '.join(self.feature_layers) or 'none'}"
            )
        return layer

    def feature_maps(
        self, crops: Sequence[npt.NDArray[np.uint8]], layer: str
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(L2-normalised descriptors (N, D), activations of ``layer`` (N, C, h, w)), one pass."""
        desc, maps = self._run([self._descriptor, self._layer(layer)], crops)
        return desc, maps

    def feature_head(self, layer: str) -> npt.NDArray[np.float32] | None:
        """The final linear layer (C, D) when ``layer`` has as many channels as it takes, else None."""
        c = self._channels[self._layer(layer)]
        return self._head if self._head is not None and self._head.shape[0] == c else None

    def randomised(self, *, seed: int = 0, layers: int | None = None) -> OnnxFeatureModel:
        """A copy whose weights are random (the model-randomisation test of Adebayo et al., 2018).

        Each weight and bias tensor of the last ``layers`` parametric nodes (Conv, MatMul, Gemm;
        None: all of them) is redrawn from a normal distribution with that tensor's own mean and
        standard deviation, so activations keep their scale while everything learnt is gone.
        Embeddings of the copy are tagged ``<model_id>+random<seed>``.
        """
        import onnx
        from onnx import numpy_helper

        proto = onnx.ModelProto()
        proto.CopyFrom(self._proto)
        nodes = [n for n in proto.graph.node if n.op_type in _PARAMETRIC]
        chosen = nodes if layers is None else nodes[-int(layers) :] if layers > 0 else []
        names = {n.input[i] for n in chosen for i in _PARAMETRIC[n.op_type] if i < len(n.input)}
        rng = np.random.default_rng(seed)
        for init in proto.graph.initializer:
            if init.name in names:
                w = numpy_helper.to_array(init).astype(np.float64)
                new = rng.normal(w.mean(), w.std() or 1e-3, size=w.shape).astype(np.float32)
                init.CopyFrom(numpy_helper.from_array(new, init.name))
        log.debug("randomised %d weight tensors of %s (seed %d)", len(names), self.model_id, seed)
        return OnnxFeatureModel(
            proto,
            model_id=f"{self.model_id}+random{seed}",
            model_version=self.model_version,
            template=self.template,
            descriptor=self._descriptor,
            threads=self._threads,
            batch_size=self.batch_size,
        )


def dlib_feature_model(*, threads: int | None = None) -> OnnxFeatureModel:
    """dlib's ResNet (``dlib-resnet-v1``) with its 14 residual blocks as feature layers."""
    from ..embedding.dlib_export import dlib_resnet_to_onnx
    from ..embedding.dlib_resnet import MODEL_NAME
    from ..models import get_spec, model_path

    spec = get_spec(MODEL_NAME)
    proto = dlib_resnet_to_onnx(model_path(MODEL_NAME), feature_outputs=True)
    return OnnxFeatureModel(
        proto,
        model_id=spec.name,
        model_version=f"{spec.version}-{spec.files[0].sha256[:12]}",
        template="dlib150",
        threads=threads,
    )


#: model id → builder of its feature model (for embedders that do not show feature maps themselves)
_BUILDERS: dict[str, Callable[..., OnnxFeatureModel]] = {"dlib-resnet-v1": dlib_feature_model}
#: feature models built for embedder objects, dropped with them
_BUILT: weakref.WeakKeyDictionary[Any, dict[int | None, OnnxFeatureModel]] = weakref.WeakKeyDictionary()


def feature_source(embedder: Embedder, *, threads: int | None = None) -> FeatureMapEmbedder:
    """The feature maps of ``embedder``'s model (see the module doc); built once per embedder."""
    if isinstance(embedder, FeatureMapEmbedder):
        return embedder
    tag = model_tag(embedder)
    builder = _BUILDERS.get(embedder.model_id)
    if builder is None:
        raise LayerNotFoundError(
            f"embedder model {tag} exposes no intermediate layers; layer-reading explanations work with "
            f"{', '.join(_BUILDERS)} or an embedder implementing faceprint.explain.FeatureMapEmbedder "
            "(use --method occlusion, which works with any embedder)"
        )
    try:
        per_threads = _BUILT.setdefault(embedder, {})
    except TypeError:  # an embedder that cannot be weakly referenced: build each time
        per_threads = {}
    model = per_threads.get(threads)
    if model is None:
        model = per_threads[threads] = builder(threads=threads)
    if model.model_version != embedder.model_version:
        raise LayerNotFoundError(
            f"embedder model {tag} is another version than the {model.model_id}@{model.model_version} "
            "whose layers faceprint knows"
        )
    return model
