"""Morphing-attack detection (MAD): differential (``dmad``) and single-image (``smad``) backends.

``dmad`` (differential, Scherhag et al., "Deep face representations for differential morphing
attack detection", IEEE TIFS 2020)
    Given the suspected image (a passport photo presented at enrolment) and a trusted live
    capture of the claimed person: the element-wise square of the difference of their embeddings
    ``d = e_suspect − e_trusted`` (a learned diagonal metric), their cosine score, and the
    suspected image's S-MAD texture features, by one logistic regression. Scherhag's plain
    difference features ``[d, d², cos]`` (:func:`embedding_difference_features`) do not beat the
    cosine alone with dlib's 128-D embeddings and a few hundred training morphs (RESULTS.md);
    adding the texture of the suspected image does. Without a trusted image
    (:meth:`DMad.score`) it falls back to ``smad``.
``dmad-score`` (baseline)
    The comparison score alone: ``(1 − cos) / 2``. The learned detector must beat it.
``smad`` (single image)
    Texture and frequency residual features of the 150 × 150 aligned chip: uniform LBP
    histograms (whole chip and a 3 × 3 grid), the radial log-power spectrum, and statistics of the
    noise residual (chip − median filter) and of the Laplacian, by a logistic regression. **It is
    weak across generators**: it learns the traces of the morphing tool and post-processing it
    was trained on (resampling blur, ghosting), and those traces change with every tool.

Models are JSON files (no pickle): standardisation mean and scale, weights, intercept, default
threshold (the D-EER threshold on the development data), and the training recipe. The built-in
ones (``faceprint/data/mad_dmad.json``, ``mad_smad.json``) are made by ``scripts/train_mad.py``.
Higher score = more likely a morph, in [0, 1], as for every attack detector.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import align
from ..errors import ConfigurationError, ImageDimensionError, ModelFormatError, ModelNotFoundError
from ..registry import attack_detectors
from ..types import AttackScore, Detection

__all__ = [
    "LinearModel",
    "dmad_features",
    "embedding_difference_features",
    "smad_features",
    "smad_chip",
    "DMad",
    "DMadScore",
    "SMad",
    "MODEL_FORMAT",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = "faceprint-mad-model"
#: the pipeline's default embedder (``faceprint.pipeline.DEFAULT_EMBEDDER``; a backend may not import the pipeline)
DEFAULT_EMBEDDER = "dlib-resnet-onnx"
SMAD_FEATURES_VERSION = "1"
DMAD_FEATURES_VERSION = "2"


# --- the model file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    """A standardised logistic regression, stored as JSON.

    ``predict(X)`` = sigmoid(((X − mean) / scale) · coef + intercept), in [0, 1].
    """

    kind: str
    features_version: str
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]
    intercept: float
    threshold: float = 0.5
    version: str = "1"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        a = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if a.shape[1] != self.coef.size:
            raise ConfigurationError(f"{self.kind} model expects {self.coef.size} features, got {a.shape[1]}")
        z = ((a - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "kind": self.kind,
            "version": self.version,
            "features_version": self.features_version,
            "threshold": self.threshold,
            "intercept": self.intercept,
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "meta": dict(self.meta),
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> LinearModel:
        try:
            if d.get("format") != MODEL_FORMAT:
                raise KeyError("format")
            mean, scale, coef = (np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
            if not (mean.shape == scale.shape == coef.shape and mean.ndim == 1) or not np.all(scale > 0):
                raise ValueError("mean, scale and coef must be equal-length lists, scale > 0")
            return cls(
                kind=str(d["kind"]),
                features_version=str(d["features_version"]),
                mean=mean,
                scale=scale,
                coef=coef,
                intercept=float(d["intercept"]),
                threshold=float(d.get("threshold", 0.5)),
                version=str(d.get("version", "1")),
                meta=dict(d.get("meta", {})),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelFormatError(f"{source or 'MAD model'} is not a faceprint MAD model file: {exc}") from None

    @classmethod
    def load(cls, path: str | Path | None, kind: str) -> LinearModel:
        """A model file, or the built-in ``faceprint/data/mad_<kind>.json`` when ``path`` is None."""
        if path is None:
            ref = resources.files("faceprint").joinpath("data", f"mad_{kind}.json")
            label = f"faceprint/data/mad_{kind}.json"
            try:
                text = ref.read_text(encoding="utf-8")
            except (FileNotFoundError, OSError):
                raise ModelNotFoundError(
                    f"the built-in {kind} model {label} is missing; train one with scripts/train_mad.py"
                ) from None
        else:
            label = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ModelNotFoundError(f"cannot read the {kind} model {path}: {exc.strerror or exc}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFormatError(f"{label} is not valid JSON: {exc}") from None
        model = cls.from_dict(d, label)
        if model.kind != kind:
            raise ModelFormatError(f"{label} holds a {model.kind} model, not {kind}")
        return model


# --- features -----------------------------------------------------------------------------------


def embedding_difference_features(suspect: npt.ArrayLike, trusted: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Scherhag et al.'s difference features of embedding pairs: ``[d, d², cos]``, ``d = suspect − trusted``;
    (N, 2D + 1). With dlib's 128-D embeddings they do not beat the cosine alone (RESULTS.md)."""
    s = np.atleast_2d(np.asarray(suspect, dtype=np.float64))
    t = np.atleast_2d(np.asarray(trusted, dtype=np.float64))
    if s.shape != t.shape:
        raise ConfigurationError(f"suspect and trusted embeddings differ in shape: {s.shape} vs {t.shape}")
    d = s - t
    return np.hstack([d, d * d, np.sum(s * t, axis=1, keepdims=True)])


def dmad_features(suspect: npt.ArrayLike, trusted: npt.ArrayLike, texture: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``dmad`` features: the squared embedding difference ``d²``, the cosine, and the suspected
    image's S-MAD texture features (:func:`smad_features`); (N, D + 1 + F)."""
    diff = embedding_difference_features(suspect, trusted)
    dim = (diff.shape[1] - 1) // 2
    tex = np.atleast_2d(np.asarray(texture, dtype=np.float64))
    if tex.shape[0] != diff.shape[0]:
        raise ConfigurationError(f"one texture row per embedding pair needed, got {tex.shape[0]} for {diff.shape[0]}")
    return np.hstack([diff[:, dim:], tex])


def _lbp(gray: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """8-neighbour, radius-1 LBP codes of the interior pixels."""
    c = gray[1:-1, 1:-1]
    h, w = gray.shape
    offs = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    code = np.zeros(c.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(offs):
        code |= (gray[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] >= c).astype(np.uint8) << bit
    return code


def _uniform_table() -> npt.NDArray[np.intp]:
    """Map the 256 LBP codes to 59 uniform-pattern bins (58 uniform codes + one for the rest)."""
    table = np.full(256, 58, dtype=np.intp)
    k = 0
    for v in range(256):
        bits = [(v >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[v] = k
            k += 1
    return table


_UNIFORM = _uniform_table()


def _hist(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    h = np.bincount(_UNIFORM[codes.ravel()], minlength=59).astype(np.float64)
    return h / max(1.0, h.sum())


def _radial_spectrum(gray: npt.NDArray[np.float32], bins: int = 16) -> npt.NDArray[np.float64]:
    g = gray - gray.mean()
    win = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    p = np.abs(np.fft.fftshift(np.fft.fft2(g * win))) ** 2
    h, w = p.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2.0, xx - w / 2.0) / (min(h, w) / 2.0)
    idx = np.minimum((r * bins).astype(np.intp), bins)
    tot = np.bincount(idx.ravel(), weights=p.ravel(), minlength=bins + 1)[:bins]
    cnt = np.bincount(idx.ravel(), minlength=bins + 1)[:bins]
    prof = np.log(tot / np.maximum(cnt, 1) + 1e-6)
    return np.asarray(prof - prof[0], dtype=np.float64)  # relative to the lowest band: exposure-invariant


def smad_features(chip: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """S-MAD features of one aligned RGB chip (S, S, 3) uint8: LBP, spectrum and residual statistics."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32)
    codes = _lbp(gray)
    feats = [_hist(codes)]
    n = codes.shape[0] // 3
    for i in range(3):
        for j in range(3):
            feats.append(_hist(codes[i * n : (i + 1) * n, j * n : (j + 1) * n])[:58])
    feats.append(_radial_spectrum(gray))
    stats = []
    f = chip.astype(np.float32)
    res = f - cv2.medianBlur(chip, 3).astype(np.float32)
    for ch in range(3):
        r = res[..., ch].ravel()
        sd = float(r.std()) + 1e-6
        stats += [np.log(sd), float(np.mean(np.abs(r))) / sd, float(np.mean(((r - r.mean()) / sd) ** 4))]
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    stats += [float(np.log(lap.var() + 1e-6)), float(np.log(gray.std() + 1e-6))]
    feats.append(np.asarray(stats, dtype=np.float64))
    return np.concatenate(feats)


def smad_chip(image: npt.NDArray[np.uint8], detection: Detection) -> npt.NDArray[np.uint8]:
    """The 150 × 150 dlib chip S-MAD reads."""
    return align(image, detection, "dlib150").image


def _check_image(image: Any) -> npt.NDArray[np.uint8]:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ImageDimensionError(f"an attack detector needs an RGB uint8 (H, W, 3) image, got {a.dtype} {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageDimensionError(f"the image has no pixels (shape {a.shape})")
    return a


# --- backends -----------------------------------------------------------------------------------


class _OneByOne:
    """``score_batch`` as ``score`` one face at a time (each face needs its own crop and features)."""

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        raise NotImplementedError

    def score_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> list[AttackScore]:
        if len(images) != len(detections):
            raise ConfigurationError("score_batch needs one detection per image")
        return [self.score(i, d) for i, d in zip(images, detections, strict=True)]


@attack_detectors.register("smad")
class SMad(_OneByOne):
    """Single-image morphing-attack detection (texture/frequency features, logistic regression).

    Weak across generators: see the module doc.
    """

    name = "smad"
    kind = "morph"

    def __init__(self, model_path: str | Path | None = None, *, threshold: float | None = None) -> None:
        self.model_ = LinearModel.load(model_path, "smad")
        if self.model_.features_version != SMAD_FEATURES_VERSION:
            raise ModelFormatError(
                f"smad model has features version {self.model_.features_version}, "
                f"this code computes {SMAD_FEATURES_VERSION}"
            )
        self.threshold = float(self.model_.threshold if threshold is None else threshold)
        self.detector_id = f"smad@{self.model_.version}"

    def _verdict(self, s: float, details: Mapping[str, float] | None = None) -> AttackScore:
        return AttackScore(s, s >= self.threshold, self.threshold, self.detector_id, "morph", dict(details or {}))

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        chip = smad_chip(_check_image(image), detection)
        return self._verdict(float(self.model_.predict(smad_features(chip)[None, :])[0]))


class _EmbeddingMad(_OneByOne):
    """Shared by the differential backends: an embedder and the S-MAD fallback for single images."""

    kind = "morph"
    threshold: float
    detector_id: str

    def __init__(self, embedder: Any = None, smad_model: str | Path | None = None) -> None:
        if embedder is None or isinstance(embedder, str):
            from ..registry import embedders

            embedder = embedders.create(embedder or DEFAULT_EMBEDDER)
        self.embedder = embedder
        self._smad_model = smad_model
        self._smad: SMad | None = None

    def _embed(self, image: npt.NDArray[np.uint8], detection: Detection) -> npt.NDArray[np.float64]:
        crop = align(_check_image(image), detection, self.embedder.template).image
        return np.asarray(self.embedder.embed([crop])[0], dtype=np.float64)

    def _pair_score(
        self, s: npt.NDArray[np.float64], t: npt.NDArray[np.float64], image: npt.NDArray[np.uint8], det: Detection
    ) -> float:
        raise NotImplementedError

    def score_pair(
        self,
        image: npt.NDArray[np.uint8],
        detection: Detection,
        trusted: npt.NDArray[np.uint8],
        trusted_detection: Detection,
    ) -> AttackScore:
        s = self._pair_score(self._embed(image, detection), self._embed(trusted, trusted_detection), image, detection)
        return AttackScore(s, s >= self.threshold, self.threshold, self.detector_id, "morph")

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        """No trusted image: the S-MAD verdict (its score, threshold and detector name)."""
        if self._smad is None:
            self._smad = SMad(self._smad_model)
        return self._smad.score(image, detection)


@attack_detectors.register("dmad")
class DMad(_EmbeddingMad):
    """Differential MAD: embedding-difference features and a logistic regression (see the module doc).

    Args:
        model_path: a model JSON (default: the built-in one).
        embedder: the embedder the model was trained with (default: the pipeline's); another
            model id is refused.
        threshold: decision threshold (default: the model's D-EER threshold on development data).
    """

    name = "dmad"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        embedder: Any = None,
        threshold: float | None = None,
        smad_model: str | Path | None = None,
    ) -> None:
        super().__init__(embedder, smad_model)
        self.model_ = LinearModel.load(model_path, "dmad")
        want = self.model_.meta.get("embedder")
        if want and want != self.embedder.model_id:
            raise ConfigurationError(
                f"this dmad model was trained on {want} embeddings; it cannot score {self.embedder.model_id} ones"
            )
        self.threshold = float(self.model_.threshold if threshold is None else threshold)
        self.detector_id = f"dmad@{self.model_.version}"

    def _pair_score(
        self, s: npt.NDArray[np.float64], t: npt.NDArray[np.float64], image: npt.NDArray[np.uint8], det: Detection
    ) -> float:
        texture = smad_features(smad_chip(image, det))
        return float(self.model_.predict(dmad_features(s, t, texture))[0])


@attack_detectors.register("dmad-score")
class DMadScore(_EmbeddingMad):
    """The comparison-score baseline of D-MAD: ``(1 − cos(suspect, trusted)) / 2``; no training.

    ``threshold`` default: the pipeline's FMR = 1e-3 threshold, mapped to this scale, i.e. a photo
    that would not verify against the trusted capture is flagged.
    """

    name = "dmad-score"

    def __init__(
        self, *, embedder: Any = None, threshold: float | None = None, smad_model: str | Path | None = None
    ) -> None:
        super().__init__(embedder, smad_model)
        if threshold is None:
            from ..models import operating_points_for

            point = operating_points_for(self.embedder.model_id, None).get("fmr=0.001")
            threshold = (1.0 - point.threshold) / 2.0 if point is not None else 0.05
        self.threshold = float(threshold)
        self.detector_id = f"dmad-score@{self.embedder.model_id}"

    def _pair_score(
        self, s: npt.NDArray[np.float64], t: npt.NDArray[np.float64], image: npt.NDArray[np.uint8], det: Detection
    ) -> float:
        return float(np.clip((1.0 - float(np.dot(s, t))) / 2.0, 0.0, 1.0))
