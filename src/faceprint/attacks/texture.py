"""``"texture-lbp"``: a colour-texture presentation-attack detector the user trains on their own data.

Features: uniform LBP histograms of the face crop in HSV and YCbCr at radii 1-3
(:mod:`.features`, after Boulkenafet et al. 2016). Classifier: a logistic regression on
standardised features with balanced class weights, so its output is an attack probability in
[0, 1] and the default threshold 0.5 weighs both kinds of error alike. ``faceprint pad train``
and :func:`train_texture` fit one; :meth:`TextureModel.save` writes it.

The model file is JSON holding numbers only (no pickle, no code)::

    {"format": "faceprint-pad-texture", "version": 1, "sha256": "<hex>", "model": {...}}

``sha256`` is the digest of the canonical JSON of ``"model"`` (sorted keys, no spaces), so a
file edited or damaged after it was written is refused (:class:`~faceprint.errors.ModelChecksumError`),
as is a file of another format version (:class:`~faceprint.errors.ModelVersionError`) or one
whose arrays do not fit together (:class:`~faceprint.errors.ModelFormatError`). A missing file
raises :class:`~faceprint.errors.ModelNotFoundError`.

No model ships with faceprint: a texture detector is only as good as the attacks it was trained
on, and the only attack data available to the project is synthetic (see the README).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..detection.base import Detector
from ..errors import (
    ConfigurationError,
    ModelChecksumError,
    ModelFormatError,
    ModelNotFoundError,
    ModelVersionError,
)
from ..io import DEFAULT_MAX_PIXELS, ImageSource, load_image
from ..registry import attack_detectors
from ..types import AttackScore, Detection
from .features import TextureSettings, colour_texture_features, face_crop

__all__ = [
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "TextureModel",
    "TextureLBPDetector",
    "fit_texture",
    "train_texture",
    "largest_face",
    "load_texture_model",
    "texture_features",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = "faceprint-pad-texture"
MODEL_VERSION = 1

FloatArray = npt.NDArray[np.float64]


def _digest(model: Mapping[str, Any]) -> str:
    canonical = json.dumps(model, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _vector(d: Mapping[str, Any], key: str, n: int, where: str) -> FloatArray:
    try:
        a = np.asarray(d[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: {key!r} is missing or not numeric ({exc})") from None
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ModelFormatError(f"{where}: {key!r} must be {n} finite numbers, got shape {a.shape}")
    return a


@dataclass(frozen=True, eq=False)
class TextureModel:
    """Feature settings, a standardiser and a logistic regression: attack probability of features.

    ``mean``, ``scale``, ``coef`` (F,) float64; ``intercept`` float; ``threshold`` the default
    decision threshold on the probability; ``training`` what it was trained on (counts, recipe).
    """

    settings: TextureSettings
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float
    threshold: float = 0.5
    training: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: npt.ArrayLike) -> FloatArray:
        """Attack probability (N,) of (N, F) features."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        logit = z @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -500, 500)))  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The ``"model"`` part of the file (plain JSON types)."""
        return {
            "settings": self.settings.to_dict(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": float(self.intercept),
            "threshold": float(self.threshold),
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "texture model") -> TextureModel:
        try:
            settings = TextureSettings.from_dict(d["settings"])
        except (KeyError, TypeError, ConfigurationError) as exc:
            raise ModelFormatError(f"{where}: bad feature settings ({exc})") from None
        n = settings.n_features
        mean, scale, coef = (_vector(d, k, n, where) for k in ("mean", "scale", "coef"))
        if np.any(scale <= 0):
            raise ModelFormatError(f"{where}: 'scale' must be positive")
        try:
            intercept, threshold = float(d["intercept"]), float(d.get("threshold", 0.5))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: 'intercept'/'threshold' missing or not numeric ({exc})") from None
        if not (np.isfinite(intercept) and 0.0 <= threshold <= 1.0):
            raise ModelFormatError(f"{where}: intercept must be finite and threshold in [0, 1]")
        training = d.get("training", {})
        return cls(
            settings, mean, scale, coef, intercept, threshold, dict(training) if isinstance(training, dict) else {}
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model file (JSON with its sha256), atomically; returns the path."""
        p = Path(path)
        model = self.to_dict()
        doc = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "sha256": _digest(model), "model": model}
        if not p.parent.is_dir():
            raise ConfigurationError(f"folder {p.parent} does not exist; create it before writing {p.name}")
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        return p


def load_texture_model(path: str | os.PathLike[str]) -> TextureModel:
    """Read and verify a model file written by :meth:`TextureModel.save` (errors: see the module doc)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelNotFoundError(
            f"texture PAD model {p} not found (folder {p.parent}); train one with `faceprint pad train`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"cannot read the texture PAD model {p}: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ModelFormatError(f"{p} is not a faceprint texture PAD model: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ModelFormatError(f"{p} is not a faceprint texture PAD model (format {MODEL_FORMAT!r})")
    if doc.get("version") != MODEL_VERSION:
        raise ModelVersionError(
            f"{p} is a texture PAD model of format version {doc.get('version')!r}; this faceprint reads version "
            f"{MODEL_VERSION}: retrain it with `faceprint pad train`"
        )
    model = doc.get("model")
    if not isinstance(model, dict):
        raise ModelFormatError(f"{p}: the 'model' object is missing")
    try:
        digest = _digest(model)
    except ValueError as exc:
        raise ModelFormatError(f"{p}: the model holds values JSON cannot (NaN or infinity): {exc}") from None
    if doc.get("sha256") != digest:
        raise ModelChecksumError(f"{p}: the model's sha256 does not match its content; the file is damaged or edited")
    return TextureModel.from_dict(model, str(p))


def texture_features(
    images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection], settings: TextureSettings
) -> FloatArray:
    """Features (N, F) of N faces (parallel sequences, as ``AttackDetector.score_batch`` takes them)."""
    if len(images) != len(detections):
        raise ConfigurationError(f"got {len(images)} images but {len(detections)} detections; pass one per face")
    out = np.empty((len(images), settings.n_features))
    for i, (img, det) in enumerate(zip(images, detections, strict=True)):
        out[i] = colour_texture_features(face_crop(img, det, settings.size, settings.box_scale), settings)
    return out


def fit_texture(
    bona_fide: npt.ArrayLike,
    attacks: npt.ArrayLike,
    settings: TextureSettings,
    *,
    c: float = 1.0,
    training: Mapping[str, Any] | None = None,
) -> TextureModel:
    """Fit the classifier on features of bona fide (n, F) and attack (m, F) faces.

    A logistic regression (scikit-learn, L2, ``C=c``, balanced class weights) on features
    standardised by the training set's mean and standard deviation. Deterministic.
    """
    from sklearn.linear_model import LogisticRegression

    b = np.asarray(bona_fide, dtype=np.float64)
    a = np.asarray(attacks, dtype=np.float64)
    n = settings.n_features
    for name, x in (("bona fide", b), ("attack", a)):
        if x.ndim != 2 or x.shape[1] != n:
            raise ConfigurationError(f"{name} features must be (N, {n}) for these settings, got shape {x.shape}")
        if len(x) < 2:
            raise ConfigurationError(f"training needs at least 2 {name} faces, got {len(x)}")
    x = np.vstack([b, a])
    y = np.r_[np.zeros(len(b)), np.ones(len(a))]
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit((x - mean) / scale, y)
    info = {"n_bona_fide": int(len(b)), "n_attack": int(len(a)), "C": float(c), "classifier": "logistic regression"}
    info.update(training or {})
    return TextureModel(settings, mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), 0.5, info)


@attack_detectors.register("texture-lbp")
class TextureLBPDetector:
    """Colour-texture (LBP) presentation-attack detector: see the module doc.

    Settings (keyword-only):
        model: the model file (``faceprint pad train -o model.json``); required.
        threshold: override the model's decision threshold (``score >= threshold`` → attack).
    """

    kind = "presentation"

    def __init__(self, *, model: str | os.PathLike[str] | None = None, threshold: float | None = None) -> None:
        if model is None:
            raise ModelNotFoundError(
                "the texture-lbp detector needs a model file: train one with "
                "`faceprint pad train --bona-fide DIR --attack DIR -o model.json` and pass model=PATH (--model)"
            )
        self.model = load_texture_model(model)
        self.model_path = Path(model)
        t = self.model.threshold if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ConfigurationError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = t
        self.name = "texture-lbp"
        self.detector = f"texture-lbp@{MODEL_VERSION}:{_digest(self.model.to_dict())[:12]}"

    def score(self, image: npt.NDArray[np.uint8], detection: Detection) -> AttackScore:
        """The attack score of one face (see :class:`~faceprint.attacks.base.AttackDetector`)."""
        return self.score_batch([image], [detection])[0]

    def score_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], detections: Sequence[Detection]
    ) -> list[AttackScore]:
        """One score per face; equal to :meth:`score` one by one."""
        if len(images) == 0 and len(detections) == 0:
            return []
        p = self.model.probability(texture_features(images, detections, self.model.settings))
        return [AttackScore(float(s), bool(s >= self.threshold), self.threshold, self.detector, self.kind) for s in p]

    def __repr__(self) -> str:
        return f"TextureLBPDetector(model={os.fspath(self.model_path)!r}, threshold={self.threshold})"

    @classmethod
    def _conformance_cases(cls, name: str) -> list[Any]:
        """The checks run on a model fitted to seeded random features (the loader and the feature
        path are what they test; no trained weights ship)."""
        from ..testing import BackendCase

        def build(ctx: Any) -> TextureLBPDetector:
            rng = np.random.default_rng(0)
            st = TextureSettings()
            n = st.n_features
            model = fit_texture(rng.random((8, n)), rng.random((8, n)) + 0.1, st)
            return cls(model=model.save(Path(ctx.workdir) / "texture-lbp-conformance.json"))

        return [BackendCase(name, build, "attack detector")]


# --- training from images ---------------------------------------------------------------------

#: ``progress(done, total)``, as the batch engine calls it
ProgressHook = Callable[[int, int | None], None]


def largest_face(detector: Detector, image: npt.NDArray[np.uint8]) -> Detection | None:
    """The largest face ``detector`` finds in ``image``, or None (one face per presentation)."""
    found = detector.detect(image)
    return max(found, key=lambda d: d.bbox.area) if found else None


def _image_features(
    sources: Sequence[ImageSource],
    detector: Detector,
    settings: TextureSettings,
    max_pixels: int | None,
    progress: Callable[[], None],
) -> tuple[FloatArray, int]:
    """(features of the images where a face was found, number without one); unreadable images raise."""
    rows = []
    missed = 0
    for src in sources:
        img = load_image(src, max_pixels=max_pixels)
        det = largest_face(detector, img)
        if det is None:
            missed += 1
        else:
            rows.append(texture_features([img], [det], settings)[0])
        progress()
    return (np.vstack(rows) if rows else np.empty((0, settings.n_features))), missed


def train_texture(
    bona_fide: Sequence[ImageSource],
    attacks: Sequence[ImageSource],
    *,
    detector: str | Detector = "dlib-hog-mmod",
    settings: TextureSettings | None = None,
    c: float = 1.0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: ProgressHook | None = None,
) -> TextureModel:
    """Train a texture model on bona fide and attack images (paths, bytes or RGB arrays).

    The largest face of each image is used; images without a face are left out and counted in
    ``model.training`` (``bona_fide_no_face``, ``attack_no_face``). An image that cannot be read
    raises its :class:`~faceprint.errors.ImageError`. Save the result with :meth:`TextureModel.save`.
    """
    from ..registry import detectors

    det = detectors.create(detector) if isinstance(detector, str) else detector
    st = settings or TextureSettings()
    total = len(bona_fide) + len(attacks)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    b, b_missed = _image_features(bona_fide, det, st, max_pixels, tick)
    a, a_missed = _image_features(attacks, det, st, max_pixels, tick)
    info = {
        "detector": detector if isinstance(detector, str) else type(detector).__name__,
        "bona_fide_no_face": b_missed,
        "attack_no_face": a_missed,
    }
    return fit_texture(b, a, st, c=c, training=info)
