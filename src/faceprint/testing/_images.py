"""The real photographs the conformance checks run on, and the work they share between checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..detection.base import Detector

__all__ = ["FaceImages", "ImageLike"]

ImageLike = npt.NDArray[np.uint8] | str | os.PathLike[str]
V = TypeVar("V")

#: The roles of the photographs, in the order the checks use them.
ROLES = ("face", "same_person", "group", "no_face")


class FaceImages:
    """Real photographs for the conformance checks; a third party passes its own.

    Args:
        face: one person, one clearly visible, roughly frontal face.
        same_person: another photograph of that person, one face.
        group: two or more faces, none of them that person.
        no_face: no human face at all (an object, a landscape, a text page…).
        reference_detector: finds the faces (with five landmarks) that the embedder checks
            align; default faceprint's built-in ``"dlib-hog"``, built on first need.

    Each photograph is an RGB uint8 (H, W, 3) array or a path that
    :func:`faceprint.io.load_image` reads. The arrays are kept read-only; checks hand backends
    copies or views. Small photographs keep the checks fast (slow detectors run each one a few
    times): a 250×250 face and photographs of well under a megapixel are plenty.
    """

    def __init__(
        self,
        *,
        face: ImageLike,
        same_person: ImageLike,
        group: ImageLike,
        no_face: ImageLike,
        reference_detector: Detector | None = None,
    ) -> None:
        self._sources: dict[str, ImageLike] = {
            "face": face,
            "same_person": same_person,
            "group": group,
            "no_face": no_face,
        }
        self._arrays: dict[str, npt.NDArray[np.uint8]] = {}
        self._reference = reference_detector
        self._memo: dict[tuple[int, str], tuple[object, Any]] = {}

    def __getitem__(self, role: str) -> npt.NDArray[np.uint8]:
        """The photograph in ``role`` (one of ``face``, ``same_person``, ``group``, ``no_face``), read-only."""
        if role not in self._arrays:
            src = self._sources[role]
            if isinstance(src, np.ndarray):
                arr = np.array(src, dtype=np.uint8, copy=True)
                if arr.ndim != 3 or arr.shape[2] != 3 or src.dtype != np.uint8:
                    raise ValueError(f"FaceImages({role}=...) must be RGB uint8 (H, W, 3), got {src.shape} {src.dtype}")
            else:
                from ..io import load_image

                arr = load_image(src)
            arr.setflags(write=False)
            self._arrays[role] = arr
        return self._arrays[role]

    def photos(self) -> dict[str, npt.NDArray[np.uint8]]:
        """Every photograph by role."""
        return {r: self[r] for r in ROLES}

    def memo(self, owner: object, key: str, compute: Callable[[], V]) -> V:
        """``compute()`` once per (``owner``, ``key``) for the life of these images.

        Checks share expensive runs through this (e.g. one ``detect`` per photograph per
        detector), so a slow backend is not run again for every property checked.
        """
        k = (id(owner), key)
        if k not in self._memo:
            self._memo[k] = (owner, compute())  # owner kept alive so its id is not reused
        return self._memo[k][1]

    def reference_detector(self) -> Detector:
        if self._reference is None:
            from ..registry import detectors

            self._reference = detectors.create("dlib-hog")
        return self._reference

    def aligned(self, template: str) -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
        """Aligned crops for ``template`` and the role each came from.

        The best face of ``face`` and of ``same_person``, then every face of ``group``, found by
        the reference detector. Raises ``ValueError`` when it does not find them, since the
        photographs then do not fit their roles.
        """

        def compute() -> tuple[list[npt.NDArray[np.uint8]], list[str]]:
            from ..alignment import align

            det = self.reference_detector()
            crops: list[npt.NDArray[np.uint8]] = []
            roles: list[str] = []
            for role in ("face", "same_person", "group"):
                found = [d for d in det.detect(self[role]) if d.landmarks is not None]
                need = 2 if role == "group" else 1
                if len(found) < need:
                    raise ValueError(
                        f"the reference detector found {len(found)} face(s) with landmarks in the {role!r} "
                        f"photograph; the embedder checks need at least {need}: pass other photographs"
                    )
                for d in found if role == "group" else found[:1]:
                    crop = align(self[role], d, template).image
                    crop.setflags(write=False)
                    crops.append(crop)
                    roles.append(role)
            return crops, roles

        return self.memo(self, f"aligned:{template}", compute)


def strided_readonly_view(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A read-only, non-contiguous view holding ``img``'s pixels (every other column of a wider
    array): what the ``accepts_views`` checks feed a backend."""
    wide = np.zeros((img.shape[0], img.shape[1] * 2, 3), np.uint8)
    wide[:, ::2] = img
    view = wide[:, ::2]
    view.setflags(write=False)
    return view
