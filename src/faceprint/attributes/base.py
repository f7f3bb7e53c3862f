"""The AttributeEstimator protocol and the AttributeEstimate it returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError
from ..types import AlignedFace, Detection

__all__ = ["AGE_BANDS", "AttributeEstimate", "AttributeEstimator", "age_band"]

#: default age bands (lower bounds in years) for ``--groups predicted-age-band``
AGE_BANDS: tuple[int, ...] = (0, 30, 45, 60)


@dataclass(frozen=True, slots=True)
class AttributeEstimate:
    """Estimated attributes of one face: model outputs with a known error, not facts.

    ``age``: expected age in years (the mean of the model's age distribution), ≥ 0.
    ``gender``: the more probable of the model's apparent-gender classes (``"female"``,
    ``"male"``); ``gender_confidence``: that class's probability, in [0.5, 1].
    ``p_female``: the probability of ``"female"``, in [0, 1]. ``model``: the backend's name.
    """

    age: float
    gender: str
    gender_confidence: float
    p_female: float
    model: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.age) and self.age >= 0):
            raise ConfigurationError(f"age must be a finite number of years >= 0, got {self.age}")
        for name in ("gender_confidence", "p_female"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ConfigurationError(f"{name} must be a probability in [0, 1], got {v}")

    def age_band(self, bands: Sequence[int] = AGE_BANDS) -> str:
        """The age band of :attr:`age` (``"30-44"``, ``"60+"``)."""
        return age_band(self.age, bands)

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": round(self.age, 2),
            "gender": self.gender,
            "gender_confidence": round(self.gender_confidence, 4),
            "p_female": round(self.p_female, 4),
            "model": self.model,
        }


def age_band(age: float, bands: Sequence[int] = AGE_BANDS) -> str:
    """The band of ``age`` among ascending lower bounds ``bands``: ``"<30"``, ``"30-44"``, ``"60+"``."""
    b = [int(x) for x in bands]
    if not b or any(y <= x for x, y in zip(b, b[1:], strict=False)):
        raise ConfigurationError(f"age bands must be ascending lower bounds, got {list(bands)}")
    k = int(np.searchsorted(np.asarray(b), age, side="right")) - 1
    if k < 0:
        return f"<{b[0]}"
    if k == len(b) - 1:
        return f"{b[k]}+"
    if k == 0 and b[0] == 0:
        return f"<{b[1]}"
    return f"{b[k]}-{b[k + 1] - 1}"


@runtime_checkable
class AttributeEstimator(Protocol):
    """Estimates demographic attributes (age, apparent gender) of detected faces.

    ``estimate(image, detection, aligned=None)`` takes the decoded RGB ``uint8`` image (H, W, 3),
    one :class:`~faceprint.types.Detection` in its pixel coordinates (with five landmarks) and,
    optionally, the face's :class:`~faceprint.types.AlignedFace` as the pipeline made it (an
    estimator that needs another crop makes it itself). It returns one
    :class:`AttributeEstimate`.

    ``estimate_batch(images, detections, aligned=None)`` does the same for parallel sequences
    (a face per entry; one image may appear for several faces) and returns one estimate per
    face, equal to ``estimate`` one by one; ``[]`` for no faces.

    Contract: deterministic, stateless between calls, input arrays not written to. Input that
    is not an RGB uint8 image, or a detection without landmarks, raises a specific
    :class:`~faceprint.errors.FaceprintError`. ``measured_error`` is the model's error as
    measured on labelled data (a JSON-ready dict, or None when never measured).
    """

    name: str

    def estimate(
        self, image: npt.NDArray[np.uint8], detection: Detection, aligned: AlignedFace | None = None
    ) -> AttributeEstimate: ...

    def estimate_batch(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        detections: Sequence[Detection],
        aligned: Sequence[AlignedFace | None] | None = None,
    ) -> list[AttributeEstimate]: ...
