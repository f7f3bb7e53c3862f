"""Dense landmarks and the piecewise-affine (Delaunay) warp of landmark-based morphing.

**Licence.** The only dense landmark model installed is dlib's 68-point shape predictor
(``shape_predictor_68_face_landmarks.dat`` in the ``face_recognition_models`` package). Its
weights were trained on the iBUG 300-W data set, whose licence **bars commercial use**. faceprint
therefore loads it only when the caller says so explicitly (``allow_noncommercial=True``, the
CLI's ``--noncommercial``), and logs the restriction each time. MediaPipe's 468-point
mesh (Apache-2.0) is not used: it ships only inside old ``mediapipe`` wheels whose protobuf pin
clashes with pymilvus (see ``../shared/models/README.md``); the landmark-free ``flow`` method
needs no restricted model at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import BackendUnavailableError, ConfigurationError, LandmarkModelError
from ..types import BBox

__all__ = ["DLIB68_LICENCE", "Dlib68", "default_dlib68_path", "boundary_points", "piecewise_affine_maps", "triangles"]

log = logging.getLogger(__name__)

DLIB68_FILE = "shape_predictor_68_face_landmarks.dat"

#: What every use of the 68-point model prints.
DLIB68_LICENCE = (
    "dlib's 68-point landmark model (shape_predictor_68_face_landmarks.dat) was trained on iBUG 300-W, "
    "whose licence bars commercial use: use landmark-based morphs for non-commercial research only, "
    "or use --method flow, which needs no restricted model"
)


def default_dlib68_path() -> Path | None:
    """Where ``face_recognition_models`` keeps the 68-point model, or None when it is not installed."""
    try:
        import face_recognition_models  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(face_recognition_models.__file__).parent / "models" / DLIB68_FILE


class Dlib68:
    """dlib's 68-point shape predictor, loaded only with ``allow_noncommercial=True`` (see the module doc).

    Args:
        path: the ``.dat`` file; default: the one in ``face_recognition_models``.
        allow_noncommercial: must be True: the caller acknowledges the non-commercial restriction.
    """

    def __init__(self, path: str | Path | None = None, *, allow_noncommercial: bool = False) -> None:
        if not allow_noncommercial:
            raise ConfigurationError(
                f"landmark-based morphing needs dense landmarks; {DLIB68_LICENCE}. Pass allow_noncommercial=True "
                "(CLI: --noncommercial) to accept that restriction"
            )
        p = Path(path) if path is not None else default_dlib68_path()
        if p is None or not p.is_file():
            where = str(p) if p is not None else f"{DLIB68_FILE} (package face_recognition_models is not installed)"
            raise LandmarkModelError(
                f"the 68-point landmark model is missing: {where}. "
                "Install it with `pip install face_recognition_models` "
                f"or pass its path. Licence note: {DLIB68_LICENCE}"
            )
        try:
            import dlib
        except ImportError:  # pragma: no cover - dlib-bin is a core dependency
            raise BackendUnavailableError("dlib is needed for 68-point landmarks: pip install dlib-bin") from None
        log.warning("%s", DLIB68_LICENCE)
        self.path = p
        self._predictor = dlib.shape_predictor(str(p))

    def __call__(self, image: npt.NDArray[np.uint8], box: BBox) -> npt.NDArray[np.float64]:
        """The 68 landmarks (68, 2) float64 of the face in ``box`` of ``image`` (H, W, 3) uint8 RGB."""
        import dlib

        rect = dlib.rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))
        shape = self._predictor(np.ascontiguousarray(image), rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def boundary_points(width: int, height: int) -> npt.NDArray[np.float64]:
    """Eight points on the canvas border (corners and edge midpoints), so the whole canvas is triangulated."""
    w, h = width - 1.0, height - 1.0
    return np.array(
        [[0, 0], [w / 2, 0], [w, 0], [w, h / 2], [w, h], [w / 2, h], [0, h], [0, h / 2]],
        dtype=np.float64,
    )


def triangles(points: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Delaunay triangulation (T, 3) vertex indices of ``points`` (K, 2); deterministic (Qhull, fixed options)."""
    from scipy.spatial import Delaunay

    return np.asarray(Delaunay(points, qhull_options="Qbb Qc Qz Q12").simplices, dtype=np.intp)


def piecewise_affine_maps(
    src: npt.NDArray[np.float64],
    dst: npt.NDArray[np.float64],
    tris: npt.NDArray[np.intp],
    width: int,
    height: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Backward maps (for ``cv2.remap``) that move the shape ``src`` onto ``dst``, one affine per triangle.

    Each output pixel inside triangle t of ``dst`` is sampled from the same barycentric place in
    triangle t of ``src``. Pixels that no triangle covers (none when ``dst`` includes the canvas
    border points) keep their own position.
    """
    label = np.full((height, width), -1, dtype=np.int32)
    for t, tri in enumerate(tris):
        cv2.fillConvexPoly(label, np.rint(dst[tri]).astype(np.int32), int(t), lineType=cv2.LINE_8)
    aff = np.empty((len(tris), 2, 3), dtype=np.float64)
    for t, tri in enumerate(tris):
        aff[t] = cv2.getAffineTransform(dst[tri].astype(np.float32), src[tri].astype(np.float32))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    lab = label.ravel()
    covered = lab >= 0
    a = aff[np.where(covered, lab, 0)]
    x, y = xx.ravel(), yy.ravel()
    mx = a[:, 0, 0] * x + a[:, 0, 1] * y + a[:, 0, 2]
    my = a[:, 1, 0] * x + a[:, 1, 1] * y + a[:, 1, 2]
    mx = np.where(covered, mx, x).reshape(height, width).astype(np.float32)
    my = np.where(covered, my, y).reshape(height, width).astype(np.float32)
    return mx, my
