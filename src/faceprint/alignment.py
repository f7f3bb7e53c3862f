"""Alignment: five landmarks → a canonical face crop. Pure functions, no state, no models.

Two templates are built in:

``"dlib150"``
    The 150×150 chip dlib's ResNet was trained on: dlib's 5-point mean-face template
    (``get_face_chip_details`` in ``dlib/image_transforms/interpolation.h``) with padding 0.25.
    Faces with ``arcface5`` landmarks (eye centres, nose tip, mouth corners: YuNet, SCRFD) use
    where those five points fall in dlib's chips, measured on LFW View 1 DevTrain (below).
``"arcface112"``
    The 112×112 five-point template of InsightFace's ArcFace/AdaFace models.

A similarity transform (rotation, uniform scale, translation) is fitted by least squares
(Umeyama) between the landmarks and the template, and the crop is sampled bilinearly, each
template following the conventions of the software its embedder was trained with (dlib's
chips match ``dlib.get_face_chip`` to within interpolation rounding). When the face must
shrink by more than 2×, the image is first halved with a Gaussian pyramid, as dlib does, so
that the crop is not aliased.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .errors import ConfigurationError
from .types import AlignedFace, Detection, Landmarks

__all__ = ["Template", "TEMPLATES", "similarity_transform", "template_points", "crop_transform", "align", "warp"]


@dataclass(frozen=True, slots=True)
class Template:
    """A crop geometry.

    ``convention`` says how the crop is sampled, following the software the embedder was
    trained with: ``"dlib"`` fits the similarity from the template to the landmarks and samples
    like dlib's ``extract_image_chip`` (pixel values truncated, not rounded); ``"insightface"``
    fits from the landmarks to the template and samples like ``cv2.warpAffine``.
    """

    name: str
    size: int
    convention: str
    #: where dlib5 landmarks land, (5, 2) crop pixels
    dlib5: npt.NDArray[np.float64]
    #: where arcface5 landmarks land, (5, 2) crop pixels; None: derived from ``dlib5``
    arcface5: npt.NDArray[np.float64] | None


# dlib's 5-point template on the unit square, in dlib5 landmark order.
_DLIB_UNIT = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

# InsightFace's ArcFace template for 112×112 crops, in arcface5 order.
_ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def _dlib_points(size: int, padding: float) -> npt.NDArray[np.float64]:
    return (padding + _DLIB_UNIT) / (2.0 * padding + 1.0) * size


def _arcface_as_dlib5(arc: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Equivalent dlib5 points for the ArcFace template, for detectors that give dlib5 landmarks.

    dlib5 has eye *corners* and the nose *base*; the ArcFace template has eye *centres* and the
    nose *tip*. We map the template's eye centres onto the dlib eye-corner midpoints and leave
    the nose out of the fit (weight 0), which keeps scale and rotation right.
    """
    out = np.zeros((5, 2))
    out[0] = out[1] = arc[1]  # eye on the image's right
    out[2] = out[3] = arc[0]  # eye on the image's left
    out[4] = arc[2]
    return out


# Where arcface5 points land in dlib150 chips: the median over the 3,415 LFW View 1 DevTrain faces
# found by both YuNet and dlib's HOG detector, each chip aligned by dlib's 5-point landmarks
# (benchmarks/tune_lfw.py, yunet5_template). Fitting all five points to it aligns better than the
# eyes alone (DevTrain EER 1.31 % against 2.26 %); dlib's own five points still do better (1.04 %).
_DLIB150_ARCFACE5 = np.array(
    [
        [46.70, 44.49],
        [102.93, 45.46],
        [74.98, 77.12],
        [50.67, 101.25],
        [99.14, 101.85],
    ]
)


#: padding of the ``"facenet160"`` template (dlib's chip: 0.25)
FACENET_PADDING = 0.4

TEMPLATES: dict[str, Template] = {
    "dlib150": Template("dlib150", 150, "dlib", _dlib_points(150, 0.25), _DLIB150_ARCFACE5),
    "arcface112": Template("arcface112", 112, "insightface", _arcface_as_dlib5(_ARCFACE_112), _ARCFACE_112),
    # FaceNet (faceprint.embedding.facenet): dlib's 5-point template at 160×160 with a wider margin,
    # like FaceNet's MTCNN box + margin; the padding was chosen on LFW View 1 DevTrain (benchmarks/bench_models.py)
    "facenet160": Template("facenet160", 160, "dlib", _dlib_points(160, FACENET_PADDING), None),
}


def template_points(template: str, scheme: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(template points, per-point weights) for landmarks in ``scheme`` and a named template."""
    t = _get_template(template)
    if scheme == "dlib5":
        # dlib's own templates fit all five dlib points; others leave out the nose base, which
        # does not correspond to the arcface nose tip
        w = np.ones(5) if t.convention == "dlib" else np.array([1.0, 1.0, 1.0, 1.0, 0.0])
        return t.dlib5, w
    if scheme == "arcface5":
        if t.arcface5 is not None:
            return t.arcface5, np.ones(5)
        # a template without measured arcface5 points: eyes only (+ nose tip ~ nose base, weight 0)
        pts = np.zeros((5, 2))
        pts[0] = (t.dlib5[2] + t.dlib5[3]) / 2  # image-left eye centre
        pts[1] = (t.dlib5[0] + t.dlib5[1]) / 2  # image-right eye centre
        pts[2] = t.dlib5[4]
        return pts, np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    raise ConfigurationError(f"unknown landmark scheme {scheme!r}; expected 'dlib5' or 'arcface5'")


def _get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown alignment template {name!r}; choose one of: {', '.join(TEMPLATES)}"
        ) from None


def similarity_transform(
    src: npt.ArrayLike, dst: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Least-squares similarity transform (Umeyama 1991) mapping ``src`` (K, 2) onto ``dst`` (K, 2).

    Returns the (2, 3) matrix ``M`` with ``dst ≈ M[:, :2] @ src + M[:, 2]``. Points with weight 0
    do not take part in the fit.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 2 or s.shape[1] != 2 or w.shape != (len(s),):
        raise ConfigurationError(f"point sets must both be (K, 2); got {s.shape} and {d.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(d))):
        raise ConfigurationError("landmarks contain NaN or infinite values")
    w = w / w.sum()
    mu_s = w @ s
    mu_d = w @ d
    sc = s - mu_s
    dc = d - mu_d
    cov = (dc * w[:, None]).T @ sc
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0
    r = u @ e @ vt
    var_s = float(w @ (sc**2).sum(axis=1))
    if var_s <= 0:
        raise ConfigurationError("landmarks are degenerate (all at one point)")
    scale = float(np.trace(np.diag(sig) @ e)) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def warp(
    image: npt.NDArray[np.uint8],
    transform: npt.NDArray[np.float64],
    size: int,
    *,
    truncate: bool = False,
) -> npt.NDArray[np.uint8]:
    """Sample a (size, size, 3) crop from ``image`` through ``transform`` (image → crop coordinates).

    Bilinear; pixels outside the image are black. Reductions of more than 2× first halve the
    covered region with a Gaussian pyramid so the crop is not aliased. ``truncate`` floors the
    interpolated values (dlib's behaviour) instead of rounding them.
    """
    m = np.array(transform, dtype=np.float64)
    h, w = image.shape[:2]
    # Work only on the part of the image the crop covers.
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    pts = corners @ inv.T
    x0 = int(min(max(0, np.floor(pts[:, 0].min()) - 4), w))
    y0 = int(min(max(0, np.floor(pts[:, 1].min()) - 4), h))
    x1 = int(max(min(w, np.ceil(pts[:, 0].max()) + 4), x0))
    y1 = int(max(min(h, np.ceil(pts[:, 1].max()) + 4), y0))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size, 3), dtype=np.uint8)  # the crop lies outside the image
    src = image[y0:y1, x0:x1]
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    # cv2.pyrDown centres output pixel i on input pixel 2i, so x_orig = 2 * x_half per level.
    while scale < 0.5 and min(src.shape[:2]) >= 8:
        src = np.asarray(cv2.pyrDown(src), dtype=np.uint8)
        m[:, :2] *= 2.0
        scale *= 2.0
    if truncate:
        out = cv2.warpAffine(
            src.astype(np.float32),
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        return np.clip(np.floor(out), 0, 255).astype(np.uint8)
    out8 = cv2.warpAffine(
        src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
    return np.asarray(out8, dtype=np.uint8)


def crop_transform(landmarks: Landmarks, template: str) -> npt.NDArray[np.float64]:
    """The (2, 3) image → crop matrix that aligns ``landmarks`` to a named template."""
    t = _get_template(template)
    dst, wts = template_points(template, landmarks.scheme)
    if t.convention == "insightface":
        return similarity_transform(landmarks.points, dst, wts)
    # dlib: fit crop → image, then map crop pixel u to rect centre + R·(u − (S−1)/2)·(S·s − 1)/(S − 1)
    a = similarity_transform(dst, landmarks.points, wts)
    s = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    rot = a[:, :2] / s
    n = t.size
    centre = a @ np.array([n / 2.0, n / 2.0, 1.0])
    step = (n * s - 1.0) / (n - 1.0)
    lin = rot * step
    c2i = np.empty((2, 3))
    c2i[:, :2] = lin
    c2i[:, 2] = centre - lin @ np.array([(n - 1) / 2.0, (n - 1) / 2.0])
    return np.asarray(cv2.invertAffineTransform(c2i), dtype=np.float64)


def align(
    image: npt.NDArray[np.uint8],
    landmarks: Landmarks | Detection,
    template: str = "dlib150",
) -> AlignedFace:
    """Crop and align one face of ``image`` (H, W, 3) uint8 RGB to the named template."""
    det = landmarks if isinstance(landmarks, Detection) else None
    lm = det.landmarks if det is not None else landmarks
    if not isinstance(lm, Landmarks):
        raise ConfigurationError(
            "this detection has no landmarks; use a detector that gives 5 landmarks to align faces"
        )
    t = _get_template(template)
    m = crop_transform(lm, template)
    crop = warp(image, m, t.size, truncate=t.convention == "dlib")
    return AlignedFace(image=crop, template=t.name, transform=m, detection=det)
