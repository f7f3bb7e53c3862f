"""Synthetic presentation attacks: seeded, documented image transforms that *imitate* recapture.

**These are not real attacks.** They imitate what a camera sees when shown a printed photo, a
screen or a paper mask, well enough to exercise an evaluation and to train a baseline, but a
detector that separates them from bona fide photos has only learned these transforms. Every
figure measured on them must be labelled "synthetic attacks" (:func:`build_attack_set` writes a
``SYNTHETIC.json`` manifest beside the images, and :mod:`faceprint.evaluation.pad` labels any
species read from such a folder).

Species (``PAI species`` in ISO/IEC 30107-3 terms) and their transforms, each parameter drawn
from ``numpy.random.default_rng(seed)`` within the range given:

``print`` — a photo printed on paper and photographed:
    1. ink and paper: the image is mapped into a reduced dynamic range (black level 20-45,
       paper white drawn near (240, 234, 215), i.e. a warm off-white) and desaturated by 10-25 %;
    2. halftone: each channel is screened with a clustered-dot cosine screen (period 2.5-4 px,
       screen angles 15°, 75°, 0° plus a common random rotation) into ink dots;
    3. recapture: Gaussian blur (σ 0.6-1.2 px), a small affine tilt (±2°, scale 0.97-1.03),
       sensor noise (σ 1-3 grey levels).

``replay`` — a photo shown on a screen and photographed:
    1. gamut and tone: saturation × 0.75-0.95, a cool white-point shift (blue +3-10 %, red
       −2-6 %), gamma 0.8-1.25, black level raised to 8-25 (screen backlight);
    2. moiré: the image is upsampled 3×, multiplied by an RGB sub-pixel stripe mask (stripes
       at 60 % between sub-pixels), rotated by 0.5-4° and resampled back to its size without
       pre-filtering, so the pixel grid aliases into fringes; mixed 30-60 % into the image;
    3. glare: a soft elliptical highlight (strength 0.15-0.45) at a random place;
    4. recapture: Gaussian blur (σ 0.4-0.9 px) and sensor noise (σ 1-3).

``mask`` — a printed paper mask held over the face, with eye holes cut out:
    1. the face region (an ellipse around the face box, from the detection or, without one,
       the centre of the image) is replaced by a ``print`` rendering of itself, shifted by up to
       3 % and scaled by 0.97-1.05 (the mask never sits exactly where the face is), with a flat
       brightness offset of ±15 (the paper is lit differently from the skin);
    2. eye holes: ellipses around the eye centres (from the landmarks, or where the eyes of a
       centred face would be) show the real face through the mask;
    3. the cut edge: a 1-2 px dark outline with a soft shadow along the ellipse.

Determinism: the same ``(image, species, seed)`` gives the same bytes (within one OpenCV
build). :func:`build_attack_set` derives each image's seed from the set seed, the species and
the image's path relative to the source folder, so the output does not depend on file order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigurationError, ImageDimensionError
from ..types import Detection

__all__ = ["SPECIES", "MANIFEST", "make_attack", "build_attack_set", "image_seed", "read_manifest"]

log = logging.getLogger(__name__)

#: the synthetic presentation-attack instrument species
SPECIES = ("print", "replay", "mask")
#: the manifest file :func:`build_attack_set` writes in each folder it fills
MANIFEST = "SYNTHETIC.json"
GENERATOR_VERSION = 1

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def _check(image: object) -> U8:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageDimensionError(
            "make_attack needs an RGB uint8 (H, W, 3) image; decode it with faceprint.io.load_image"
        )
    if min(image.shape[:2]) < 16:
        raise ImageDimensionError(f"an image of {image.shape[1]}x{image.shape[0]} is too small to imitate recapture")
    return image


def _to_u8(x: npt.NDArray[np.floating[Any]]) -> U8:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _noise(x: F32, rng: np.random.Generator) -> F32:
    return x + rng.normal(0.0, rng.uniform(1.0, 3.0), x.shape).astype(np.float32)


def _blur(x: F32, sigma: float) -> F32:
    import cv2

    return np.asarray(cv2.GaussianBlur(x, (0, 0), sigma), dtype=np.float32)


def _desaturate(x: F32, keep: float) -> F32:
    grey = x.mean(axis=2, keepdims=True)
    return grey + keep * (x - grey)  # type: ignore[no-any-return]


def _halftone(x: F32, rng: np.random.Generator) -> F32:
    """Clustered-dot screening of each channel (values 0-255) into ink dots, as a printer does."""
    h, w = x.shape[:2]
    period = rng.uniform(2.5, 4.0)
    base = rng.uniform(0, 90)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(x)
    for ch, angle in enumerate((15.0, 75.0, 0.0)):
        a = np.deg2rad(base + angle)
        u = xx * np.cos(a) + yy * np.sin(a)
        v = -xx * np.sin(a) + yy * np.cos(a)
        screen = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))  # in [0, 1]
        out[:, :, ch] = np.where(x[:, :, ch] / 255.0 > screen, 255.0, 0.0)
    # the dots are smaller than a pixel of the recapture: mix the screened and the continuous tone
    return 0.55 * out + 0.45 * x  # type: ignore[no-any-return]


def _tilt(x: F32, rng: np.random.Generator) -> F32:
    import cv2

    h, w = x.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), rng.uniform(0.97, 1.03))
    return np.asarray(cv2.warpAffine(x, m, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.float32)


def _print_render(x: F32, rng: np.random.Generator) -> F32:
    """Ink on paper: reduced range toward the paper white, desaturated, halftoned (no recapture yet)."""
    black = rng.uniform(20, 45)
    paper = np.array([240, 234, 215], np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    y = _desaturate(x, 1.0 - rng.uniform(0.10, 0.25))
    y = (black + (y / 255.0) * (paper - black)).astype(np.float32)
    return _halftone(y, rng)


def _print(img: U8, rng: np.random.Generator) -> U8:
    x = _print_render(img.astype(np.float32), rng)
    x = _tilt(_blur(x, rng.uniform(0.6, 1.2)), rng)
    return _to_u8(_noise(x, rng))


def _moire(x: F32, rng: np.random.Generator) -> F32:
    import cv2

    h, w = x.shape[:2]
    k = 3
    up = cv2.resize(x, (w * k, h * k), interpolation=cv2.INTER_NEAREST)
    floor = 0.6
    mask = np.full((h * k, w * k, 3), floor, np.float32)
    for ch in range(3):  # vertical R, G, B sub-pixel stripes
        mask[:, ch::k, ch] = 1.0
    up = up * mask * (3.0 / (1.0 + 2 * floor))
    m = cv2.getRotationMatrix2D((w * k / 2, h * k / 2), rng.choice([-1, 1]) * rng.uniform(0.5, 4.0), 1.0)
    up = cv2.warpAffine(up, m, (w * k, h * k), borderMode=cv2.BORDER_REFLECT)
    # sample the rotated grid without pre-filtering: the camera's sensor aliases it into fringes
    fringes = np.asarray(cv2.resize(up, (w, h), interpolation=cv2.INTER_NEAREST), dtype=np.float32)
    a = rng.uniform(0.3, 0.6)
    return (1 - a) * x + a * fringes  # type: ignore[no-any-return]


def _glare(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    sy, sx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2)) * rng.uniform(0.15, 0.45)
    return x + g[:, :, None] * (255.0 - x)  # type: ignore[no-any-return]


def _replay(img: U8, rng: np.random.Generator) -> U8:
    x = _desaturate(img.astype(np.float32), rng.uniform(0.75, 0.95))
    x = x * np.array([1 - rng.uniform(0.02, 0.06), 1.0, 1 + rng.uniform(0.03, 0.10)], np.float32)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** rng.uniform(0.8, 1.25)
    black = rng.uniform(8, 25)
    x = black + x * (255.0 - black) / 255.0
    x = _glare(_moire(x, rng), rng)
    return _to_u8(_noise(_blur(x, rng.uniform(0.4, 0.9)), rng))


def _face_geometry(shape: tuple[int, ...], detection: Detection | None) -> tuple[float, float, float, float, F32]:
    """(cx, cy, half-width, half-height of the face ellipse, eye centres (2, 2))."""
    h, w = shape[:2]
    if detection is None:  # a centred face, as in LFW's 250x250 crops
        cx, cy, bw, bh = w / 2, h * 0.52, w * 0.42, h * 0.5
        eyes = np.array([[cx - 0.18 * bw, cy - 0.12 * bh], [cx + 0.18 * bw, cy - 0.12 * bh]], np.float32)
        return cx, cy, bw / 2 * 1.15, bh / 2 * 1.2, eyes
    b = detection.bbox
    cx, cy = b.center
    if detection.landmarks is not None:
        eyes = np.stack(detection.landmarks.eye_centers()).astype(np.float32)
    else:
        eyes = np.array([[cx - 0.2 * b.width, cy - 0.1 * b.height], [cx + 0.2 * b.width, cy - 0.1 * b.height]])
        eyes = eyes.astype(np.float32)
    return cx, cy + 0.05 * b.height, b.width / 2 * 1.15, b.height / 2 * 1.3, eyes


def _mask(img: U8, rng: np.random.Generator, detection: Detection | None) -> U8:
    import cv2

    h, w = img.shape[:2]
    x = img.astype(np.float32)
    cx, cy, ax, ay, eyes = _face_geometry(img.shape, detection)
    shift = rng.uniform(-0.03, 0.03, 2) * np.array([w, h])
    m = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-3, 3), rng.uniform(0.97, 1.05))
    m[:, 2] += shift
    moved = np.asarray(cv2.warpAffine(x, m, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.float32)
    paper = _print_render(moved, rng) + rng.uniform(-15, 15)
    region = np.zeros((h, w), np.uint8)
    cv2.ellipse(region, (round(cx), round(cy)), (round(ax), round(ay)), 0, 0, 360, 1, -1)
    eye_r = max(2.0, 0.09 * 2 * ax)
    for ex, ey in eyes:
        cv2.ellipse(
            region, (round(float(ex)), round(float(ey))), (round(eye_r * 1.3), round(eye_r * 0.7)), 0, 0, 360, 0, -1
        )
    inside = region.astype(bool)[:, :, None]
    out = np.where(inside, paper, x)
    edge = np.zeros((h, w), np.float32)
    cv2.ellipse(edge, (round(cx), round(cy)), (round(ax), round(ay)), 0, 0, 360, 1.0, int(rng.integers(1, 3)))
    shadow = _blur(edge[:, :, None].repeat(3, axis=2), 2.0)[:, :, 0]
    out = out * (1.0 - 0.6 * np.clip(edge + shadow, 0, 1))[:, :, None]
    return _to_u8(_noise(_blur(out, rng.uniform(0.5, 0.9)), rng))


def make_attack(image: U8, species: str, seed: int, *, detection: Detection | None = None) -> U8:
    """A synthetic presentation attack of ``species`` made from the bona fide ``image``.

    ``image``: RGB uint8 (H, W, 3); returns a new array of the same shape (the input is not
    changed). ``detection`` places the ``mask`` species on the face (and its eye holes on the
    landmarks); without one the face is taken to be centred. Deterministic for a seed.
    """
    img = _check(image)
    if species not in SPECIES:
        raise ConfigurationError(f"unknown attack species {species!r}; choose one of {', '.join(SPECIES)}")
    rng = np.random.default_rng(int(seed))
    if species == "print":
        return _print(img, rng)
    if species == "replay":
        return _replay(img, rng)
    return _mask(img, rng, detection)


def image_seed(seed: int, species: str, key: str) -> int:
    """The seed of one image of a set: a hash of the set seed, the species and the image's key."""
    digest = hashlib.sha256(f"{int(seed)}/{species}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``SYNTHETIC.json`` manifest of ``folder`` (or of its parent), or None for real data."""
    for d in (Path(folder), Path(folder).parent):
        p = d / MANIFEST
        if p.is_file():
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                doc = {"synthetic": True, "note": f"unreadable {MANIFEST}"}
            return doc if isinstance(doc, dict) else {"synthetic": True}
    return None


def build_attack_set(
    sources: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str],
    species: Sequence[str] = SPECIES,
    seed: int = 0,
    detect: Callable[[U8], Detection | None] | None = None,
    jpeg_quality: int = 90,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, list[Path]]:
    """Write a synthetic attack of every image in ``sources`` for each species; species → files.

    Files go to ``out_dir/<species>/<path relative to root>`` (suffix ``.jpg``, JPEG quality
    ``jpeg_quality``, as a camera would store a recapture), keeping the subject folders, so
    an attack's subject is its folder name as for the bona fide images. ``detect`` (e.g. the
    largest face of a detector) places the mask species; without it faces are taken to be centred.
    ``out_dir/<species>/SYNTHETIC.json`` and ``out_dir/SYNTHETIC.json`` record the recipe.
    Existing files of those names are replaced.
    """
    from PIL import Image

    from ..io import load_image

    bad = [s for s in species if s not in SPECIES]
    if bad or not species:
        raise ConfigurationError(f"unknown attack species {bad}; choose from {', '.join(SPECIES)}")
    out, base = Path(out_dir), Path(root)
    written: dict[str, list[Path]] = {s: [] for s in species}
    total = len(sources) * len(species)
    done = 0
    for src in sources:
        rel = Path(src).resolve().relative_to(base.resolve()).with_suffix(".jpg")
        img = load_image(src)
        det = detect(img) if detect is not None and "mask" in species else None
        for s in species:
            target = out / s / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            attack = make_attack(img, s, image_seed(seed, s, rel.as_posix()), detection=det)
            Image.fromarray(attack).save(target, quality=int(jpeg_quality))
            written[s].append(target)
            done += 1
            if progress is not None:
                progress(done, total)
    recipe = {
        "synthetic": True,
        "label": "synthetic attacks",
        "generator": "faceprint.attacks.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "jpeg_quality": int(jpeg_quality),
        "source_root": os.fspath(base),
        "n_sources": len(sources),
        "mask_placement": "detector" if detect is not None else "centred face",
    }
    for s in species:
        (out / s).mkdir(parents=True, exist_ok=True)
        (out / s / MANIFEST).write_text(json.dumps({**recipe, "species": s}, indent=1) + "\n", encoding="utf-8")
    (out / MANIFEST).write_text(json.dumps({**recipe, "species": list(species)}, indent=1) + "\n", encoding="utf-8")
    return written
