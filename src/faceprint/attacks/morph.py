"""Face morph generation: two contributors' photos in, one face that resembles both out.

A morph is the attack that breaks document-based enrolment: one passport photo that verifies
as both contributors. faceprint makes morphs so that a user can measure how vulnerable a model
is (:mod:`faceprint.evaluation.morph`) and train and test detectors (:mod:`faceprint.attacks.mad`).
Generation is a tool beside the attack-detection stage, not a pipeline stage.

Both faces are first aligned by their five landmarks to one canvas (``size`` × ``size``, the
face centred with ample background), so that only the residual shape differences remain. Then:

``method="flow"`` (landmark-free, default)
    Dense optical flow from A to B (OpenCV DIS, or Farneback), each face warped part of the way
    along it (A by ``alpha``, B by ``1 − alpha``) and the two alpha-blended. No restricted model.
``method="landmarks"``
    68 dense landmarks per face, the averaged shape triangulated (Delaunay), each face warped
    piecewise-affinely onto it and the two alpha-blended. Needs dlib's 68-point model, whose
    training data bars commercial use: see :mod:`faceprint.attacks.morph_landmarks`.

``splice=True`` pastes the blended face region into contributor A's (warped) photo, with a
colour correction at the seam, so hair and background are A's alone and free of ghosting.
Post-processing (:class:`~faceprint.attacks.morph_post.PostProcess`) follows.

``alpha`` is B's share: 0 gives A's aligned face, 1 gives B's. :func:`morph_balanced` picks it as
an attacker with a face recogniser would (the alpha whose morph is closest to both). Everything is deterministic: the
same inputs, settings and ``seed`` give byte-identical output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from ..alignment import similarity_transform, template_points, warp
from ..errors import ConfigurationError, NoFaceError, SameContributorError
from ..io import describe_source, load_image
from ..types import BBox, Detection
from .morph_post import PostProcess, postprocess

__all__ = [
    "METHODS",
    "FLOWS",
    "BALANCE_ALPHAS",
    "MorphResult",
    "Morpher",
    "morph",
    "morph_balanced",
    "side_by_side",
    "canvas_points",
    "check_alpha",
]

log = logging.getLogger(__name__)

MorphMethod = Literal["flow", "landmarks"]
METHODS: tuple[str, ...] = ("flow", "landmarks")
FLOWS: tuple[str, ...] = ("dis", "farneback")

#: background around the face on the canvas, in units of dlib's unit face square (dlib150 uses 0.25)
CANVAS_PADDING = 0.75
#: the pipeline's default detector (``faceprint.pipeline.DEFAULT_DETECTOR``; a backend may not import the pipeline)
DEFAULT_DETECTOR = "dlib-hog-mmod"
#: the alphas :func:`morph_balanced` tries
BALANCE_ALPHAS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
_DLIB150 = 150.0
_DLIB150_PADDING = 0.25


def canvas_points(size: int, scheme: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Where the five landmarks of ``scheme`` go on a ``size`` × ``size`` morph canvas, and their fit weights.

    The dlib150 template's points rescaled to a wider crop (padding 0.75): the face fills about
    the same share of the canvas as of a 250 × 250 LFW photo, so hair, ears and chin are kept.
    """
    pts, wts = template_points("dlib150", scheme)
    unit = pts / _DLIB150 * (1.0 + 2 * _DLIB150_PADDING) - _DLIB150_PADDING
    return (CANVAS_PADDING + unit) / (1.0 + 2 * CANVAS_PADDING) * size, wts


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in [0, 1], or a ConfigurationError."""
    a = float(alpha)
    if not (np.isfinite(a) and 0.0 <= a <= 1.0):
        raise ConfigurationError(f"alpha (contributor B's share of the morph) must lie in [0, 1], got {alpha}")
    return a


@dataclass(frozen=True, slots=True)
class MorphResult:
    """One morph and what it was made from.

    Attributes:
        image: the morph, (H, W, 3) uint8 RGB (``size`` × ``size``, or 531 × 413 with passport resizing).
        aligned_a, aligned_b: each contributor aligned to the canvas, before warping (size × size × 3).
        detection_a, detection_b: the contributors' faces in their own images.
        settings: method, alpha, seed, flow, splice, post-processing: everything that made ``image``.
    """

    image: npt.NDArray[np.uint8]
    aligned_a: npt.NDArray[np.uint8]
    aligned_b: npt.NDArray[np.uint8]
    detection_a: Detection
    detection_b: Detection
    settings: dict[str, Any] = field(default_factory=dict)


class Morpher:
    """Makes morphs with one set of settings (see the module doc).

    Args:
        method: ``"flow"`` (landmark-free) or ``"landmarks"`` (68 dlib landmarks, non-commercial).
        size: side of the square canvas in pixels (64-2048).
        detector: a registered detector name or a Detector giving 5 landmarks; default: the pipeline's.
        select: which face of each image: ``"largest"`` or ``"central"`` (centred crops such as LFW).
        flow: ``"dis"`` or ``"farneback"`` (flow method only).
        splice: paste the morphed face into contributor A's photo (seam colour-corrected).
        post: post-processing applied after blending.
        landmark_model: path of dlib's 68-point model (landmarks method); default: face_recognition_models'.
        allow_noncommercial: required for the landmarks method: accepts the 68-point model's licence.
    """

    def __init__(
        self,
        method: str = "flow",
        *,
        size: int = 256,
        detector: Any = None,
        select: str = "largest",
        flow: str = "dis",
        splice: bool = False,
        post: PostProcess | None = None,
        landmark_model: str | Path | None = None,
        allow_noncommercial: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ConfigurationError(f"unknown morphing method {method!r}; choose one of: {', '.join(METHODS)}")
        if flow not in FLOWS:
            raise ConfigurationError(f"unknown optical flow {flow!r}; choose one of: {', '.join(FLOWS)}")
        if select not in ("largest", "central"):
            raise ConfigurationError(f"select must be 'largest' or 'central', got {select!r}")
        if not (64 <= int(size) <= 2048):
            raise ConfigurationError(f"the morph size must lie in [64, 2048] pixels, got {size}")
        self.method = method
        self.size = int(size)
        self.select = select
        self.flow = flow
        self.splice = bool(splice)
        self.post = post or PostProcess()
        if detector is None or isinstance(detector, str):
            from ..registry import detectors

            detector = detectors.create(detector or DEFAULT_DETECTOR)
        self.detector = detector
        self._dense: Any = None
        if method == "landmarks":
            from .morph_landmarks import Dlib68

            self._dense = Dlib68(landmark_model, allow_noncommercial=allow_noncommercial)

    # --- public ------------------------------------------------------------------------------

    def settings(self, alpha: float, seed: int) -> dict[str, Any]:
        s: dict[str, Any] = {"method": self.method, "alpha": alpha, "seed": int(seed), "size": self.size}
        if self.method == "flow":
            s["flow"] = self.flow
        s["splice"] = self.splice
        s["post"] = self.post.tag()
        return s

    def morph(self, a: Any, b: Any, *, alpha: float = 0.5, seed: int = 0) -> MorphResult:
        """Morph contributor ``a`` with ``b`` (paths, bytes or RGB arrays); ``alpha`` is B's share."""
        alpha = check_alpha(alpha)
        name_a, name_b = describe_source(a), describe_source(b)
        if isinstance(a, (str, Path)) and isinstance(b, (str, Path)) and Path(a).resolve() == Path(b).resolve():
            raise SameContributorError(f"both contributors are the same file ({name_a}); give two different people")
        img_a, img_b = load_image(a), load_image(b)
        if img_a.shape == img_b.shape and np.array_equal(img_a, img_b):
            raise SameContributorError(
                f"both contributors are the same image ({name_a} and {name_b}); give two different people"
            )
        det_a = self._face(img_a, f"contributor A ({name_a})")
        det_b = self._face(img_b, f"contributor B ({name_b})")
        ca, ma = self._align(img_a, det_a)
        cb, mb = self._align(img_b, det_b)
        if self.method == "flow":
            wa, wb, mask = self._flow_warp(ca, cb, alpha)
        else:
            wa, wb, mask = self._landmark_warp(ca, cb, _map_box(det_a.bbox, ma), _map_box(det_b.bbox, mb), alpha)
        blend = (1.0 - alpha) * wa + alpha * wb
        if self.splice:
            blend = _splice(blend, wa, mask)
        out = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
        if not self.post.is_identity:
            out = postprocess(out, self.post, seed)
        return MorphResult(out, ca, cb, det_a, det_b, self.settings(alpha, seed))

    def aligned(self, image: Any, *, seed: int = 0) -> npt.NDArray[np.uint8]:
        """One photo through the same alignment and post-processing as a morph, without morphing:
        the bona fide counterpart of a morph when training or testing a detector, so that the two
        differ only by the morphing itself."""
        img = load_image(image)
        canvas, _ = self._align(img, self._face(img, describe_source(image)))
        return postprocess(canvas, self.post, seed) if not self.post.is_identity else canvas

    # --- steps -------------------------------------------------------------------------------

    def _face(self, image: npt.NDArray[np.uint8], what: str) -> Detection:
        dets = [d for d in self.detector.detect(image) if d.landmarks is not None]
        if not dets:
            raise NoFaceError(f"no face with landmarks found in {what}: a morph needs one face in each image")
        if self.select == "largest":
            return max(dets, key=lambda d: d.bbox.area)
        cx, cy = image.shape[1] / 2.0, image.shape[0] / 2.0  # central: the box centre nearest the image centre
        return min(dets, key=lambda d: (d.bbox.center[0] - cx) ** 2 + (d.bbox.center[1] - cy) ** 2)

    def _align(
        self, image: npt.NDArray[np.uint8], det: Detection
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        assert det.landmarks is not None
        dst, wts = canvas_points(self.size, det.landmarks.scheme)
        m = similarity_transform(det.landmarks.points, dst, wts)
        return warp(image, m, self.size), m

    def _flow_warp(
        self, ca: npt.NDArray[np.uint8], cb: npt.NDArray[np.uint8], alpha: float
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        ga = cv2.cvtColor(ca, cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(cb, cv2.COLOR_RGB2GRAY)
        no_initial_flow: Any = None
        if self.flow == "dis":
            dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            flow = dis.calc(ga, gb, no_initial_flow)
        else:
            flow = cv2.calcOpticalFlowFarneback(
                ga, gb, no_initial_flow, 0.5, 4, 21, 5, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN
            )
        flow = np.asarray(flow, dtype=np.float32)
        n = self.size
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
        # The intermediate point of A's pixel x is x + alpha·F(x); sampled backwards at p ≈ x:
        # A at p − alpha·F(p), B at p + (1 − alpha)·F(p).
        wa = _remap(ca, xx - alpha * flow[..., 0], yy - alpha * flow[..., 1])
        wb = _remap(cb, xx + (1.0 - alpha) * flow[..., 0], yy + (1.0 - alpha) * flow[..., 1])
        pts, _ = canvas_points(n, "dlib5")
        return wa, wb, _ellipse_mask(pts, n)

    def _landmark_warp(
        self,
        ca: npt.NDArray[np.uint8],
        cb: npt.NDArray[np.uint8],
        box_a: BBox,
        box_b: BBox,
        alpha: float,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        from .morph_landmarks import boundary_points, piecewise_affine_maps, triangles

        n = self.size
        border = boundary_points(n, n)
        pa = np.vstack([self._dense(ca, box_a), border])
        pb = np.vstack([self._dense(cb, box_b), border])
        avg = (1.0 - alpha) * pa + alpha * pb
        tris = triangles(avg)
        wa = _remap(ca, *piecewise_affine_maps(pa, avg, tris, n, n))
        wb = _remap(cb, *piecewise_affine_maps(pb, avg, tris, n, n))
        return wa, wb, _hull_mask(avg[:68], n)


def morph_balanced(
    morpher: Morpher,
    a: Any,
    b: Any,
    embed: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32] | None],
    *,
    alphas: Sequence[float] = BALANCE_ALPHAS,
    seed: int = 0,
) -> MorphResult:
    """The morph an attacker with a face recogniser would pick: of one morph per ``alphas``, the one
    whose *lower* score against the two contributors' own photos is highest (an identity-balanced
    morph, as in SYN-MAD-style generation). ``embed`` maps an RGB image to the L2-normalised
    embedding of its main face, or None without one. Only the contributors' given photos are
    used, never their probes, so a vulnerability evaluation on other photos stays fair."""
    img_a, img_b = load_image(a), load_image(b)
    ea, eb = embed(img_a), embed(img_b)
    if ea is None or eb is None:
        which = describe_source(a if ea is None else b)
        raise NoFaceError(f"no face found in {which}: a balanced morph needs each contributor's embedding")
    best: tuple[float, MorphResult] | None = None
    for alpha in alphas:
        r = morpher.morph(img_a, img_b, alpha=alpha, seed=seed)
        v = embed(r.image)
        if v is None:
            continue
        s = min(float(np.dot(v, ea)), float(np.dot(v, eb)))
        if best is None or s > best[0]:
            best = (s, r)
    if best is None:
        raise NoFaceError("no face found in any of the morphs; try another pair or method")
    r = best[1]
    return MorphResult(
        r.image, r.aligned_a, r.aligned_b, r.detection_a, r.detection_b, {**r.settings, "balanced": True}
    )


def side_by_side(result: MorphResult, captions: Sequence[str] = ("A", "morph", "B")) -> npt.NDArray[np.uint8]:
    """Contributor A's aligned face, the morph and B's aligned face in one RGB image, each captioned
    below (e.g. the morph's comparison score against each contributor)."""
    n = result.aligned_a.shape[0]
    m = result.image
    if m.shape[:2] != (n, n):
        m = np.asarray(cv2.resize(m, (round(m.shape[1] * n / m.shape[0]), n), interpolation=cv2.INTER_AREA))
    row = np.hstack([result.aligned_a, m, result.aligned_b])
    band = np.full((max(24, n // 8), row.shape[1], 3), 255, dtype=np.uint8)
    x = 0
    scale = max(0.4, n / 400.0)
    for img, text in zip((result.aligned_a, m, result.aligned_b), captions, strict=False):
        cv2.putText(band, text, (x + 6, band.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        x += img.shape[1]
    return np.vstack([row, band])


def morph(a: Any, b: Any, *, alpha: float = 0.5, seed: int = 0, **settings: Any) -> MorphResult:
    """One morph with a throw-away :class:`Morpher` (``settings``: its keywords)."""
    return Morpher(**settings).morph(a, b, alpha=alpha, seed=seed)


# --- helpers -----------------------------------------------------------------------------------


def _remap(image: npt.NDArray[np.uint8], mx: npt.NDArray[np.float32], my: npt.NDArray[np.float32]) -> Any:
    return cv2.remap(
        image.astype(np.float32),
        mx.astype(np.float32),
        my.astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _map_box(box: BBox, m: npt.NDArray[np.float64]) -> BBox:
    corners = np.array([[box.x1, box.y1, 1], [box.x2, box.y1, 1], [box.x1, box.y2, 1], [box.x2, box.y2, 1]])
    p = corners @ m.T
    return BBox(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def _feather(mask: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float32]:
    sigma = max(1.0, size / 40.0)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    return np.asarray(soft, dtype=np.float32)


def _ellipse_mask(pts5: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.float32]:
    """The inner face (brows to chin) as an ellipse derived from the canvas's five landmark places."""
    eyes = pts5[:4].mean(axis=0)
    nose = pts5[4]
    eye_span = float(np.linalg.norm(pts5[0] - pts5[2]))
    centre = (eyes + nose) / 2.0 + np.array([0.0, 0.25 * eye_span])
    axes = (int(round(0.62 * eye_span)), int(round(0.95 * eye_span)))
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), axes, 0.0, 0.0, 360.0, 255, -1)
    return _feather(np.asarray(cv2.erode(mask, np.ones((3, 3), np.uint8)), dtype=np.uint8), size)


def _hull_mask(pts68: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.float32]:
    """The convex hull of the 68 landmarks (jaw and brows), eroded a little so the seam lies on skin."""
    hull = cv2.convexHull(np.rint(pts68).astype(np.int32))
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    k = max(3, size // 50) | 1
    return _feather(np.asarray(cv2.erode(mask, np.ones((k, k), np.uint8)), dtype=np.uint8), size)


def _splice(blend: npt.NDArray[np.float32], background: npt.NDArray[np.float32], mask: npt.NDArray[np.float32]) -> Any:
    """Paste the blended face (where ``mask`` ≈ 1) into ``background``, shifting the face's colour so
    that it matches the background along the seam (the band where the feathered mask is 0.2-0.8)."""
    seam = (mask > 0.2) & (mask < 0.8)
    shift = (background[seam] - blend[seam]).mean(axis=0) if seam.any() else np.zeros(3, np.float32)
    m = mask[..., None]
    return (1.0 - m) * background + m * (blend + shift[None, None, :])
