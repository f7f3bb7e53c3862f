"""Which detector order, face selection, landmark source, chip padding and TTA feed dlib's ResNet best?

Settings are chosen on LFW View 1 ``pairsDevTrain.txt`` only; ``pairsDevTest.txt`` is read
only with ``--report-test`` for the configurations named there, after the choice is made.

Every stage is cached under ``--cache`` (default ``/tmp/core/tune``), so a new variant costs
only what it changes:

1. detections per detector and image (``det_<detector>.pkl``): ``hog1`` (HOG, upsample 1, the
   old default), ``hog01`` (HOG coarse to fine from ``min_face=40``, the new default), ``mmod``
   (only for images a HOG stage misses), ``yunet`` (every box above score 0.3; the threshold is
   applied later);
2. dlib 5-point landmarks placed on YuNet boxes (``lm_dlib5_on_yunet.pkl``), after mapping the
   YuNet box to the box HOG would give (a per-coordinate linear fit on DevTrain faces found by both);
3. embeddings per (detector order, selection, landmark source, padding, TTA)
   (``emb_<key>.npz``).

A configuration is ``order/select/landmarks/padding/tta``, e.g. ``hog01,mmod/central/dlib5/0.25/flip``:

* order: detectors tried in turn until one finds a face (``hog1``, ``hog01``, ``mmod``,
  ``yunet``, ``yunet@0.8`` for a score threshold);
* select: ``largest`` or ``central`` (box centre nearest the image centre);
* landmarks: ``dlib5`` (dlib's predictor; on YuNet boxes through the box map), ``yunet-eyes``
  (YuNet's eye centres only, faceprint's built-in arcface5 → dlib150 mapping), ``yunet5`` (all
  five YuNet points onto a dlib150 template fitted on DevTrain);
* padding: dlib chip padding (dlib's network was trained with 0.25);
* tta: ``none``, ``flip``, ``jitterN``.

Figures per configuration and split: the LFW protocol (10-fold accuracy: threshold chosen on
9 folds, applied to the 10th; folds interleave mated and non-mated pairs), and over *all image
pairs* of the split (every same-person pair mated, every other pair non-mated: ~6k mated and
~6M non-mated on DevTrain): EER and FNMR at FMR = 1e-3. Images without a face count as
failures: their pairs score −2 (below every cosine).

Usage::

    python benchmarks/tune_lfw.py --grid default           # DevTrain table (markdown)
    python benchmarks/tune_lfw.py --configs CFG [CFG …]    # DevTrain, chosen configurations
    python benchmarks/tune_lfw.py --configs CFG … --report-test   # DevTest, after choosing
    python benchmarks/tune_lfw.py --cost 128                # CPU ms per image / face of each choice
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.alignment import TEMPLATES, Template, _dlib_points, align, crop_transform, similarity_transform, warp
from faceprint.evaluation import read_lfw_pairs
from faceprint.evaluation.metrics import kfold_accuracy
from faceprint.io import load_image
from faceprint.scoring import eer, fmr_fnmr, threshold_at_fmr
from faceprint.types import BBox, Detection, Landmarks

ROOT = Path(__file__).resolve().parents[1]
FAIL = -2.0  # score of a pair with a missing face: below every cosine
log = logging.getLogger("tune_lfw")


# --- data -------------------------------------------------------------------------------------------


@dataclass
class Split:
    name: str
    pairs: list[Any]
    images: list[str]
    ident: np.ndarray


def load_split(data: Path, name: str) -> Split:
    pairs = read_lfw_pairs(data / f"pairs{name}.txt")
    images = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    return Split(name, pairs, images, np.array([Path(p).parent.name for p in images]))


# --- stage 1: detections ---------------------------------------------------------------------------------

Rec = dict[str, Any]  # {"bbox": [4], "score": float, "det": str, "lm": (5, 2), "scheme": str}


def _rec(d: Detection) -> Rec:
    lm = d.landmarks
    return {
        "bbox": d.bbox.as_list(),
        "score": float(d.score),
        "det": d.detector,
        "lm": None if lm is None else np.asarray(lm.points, np.float32),
        "scheme": None if lm is None else lm.scheme,
    }


def _make_detector(name: str) -> Any:
    from faceprint.registry import detectors

    if name == "hog1":
        return detectors.create("dlib-hog", upsample=1)
    if name == "hog01":
        return detectors.create("dlib-hog", min_face=40)
    if name == "mmod":
        return detectors.create("dlib-mmod", min_face=40)
    if name == "yunet":
        return detectors.create("yunet", score_threshold=0.3)
    raise SystemExit(f"unknown detector {name!r}")


def detections(cache: Path, name: str, images: Sequence[str], only: set[str] | None = None) -> dict[str, list[Rec]]:
    """Cached detections of one detector for ``images`` (``only``: compute just these)."""
    f = cache / f"det_{name}.pkl"
    have: dict[str, list[Rec]] = pickle.loads(f.read_bytes()) if f.exists() else {}
    todo = [p for p in images if p not in have and (only is None or p in only)]
    if todo:
        det = _make_detector(name)
        t0 = time.perf_counter()
        for k, p in enumerate(todo, 1):
            have[p] = [_rec(d) for d in det.detect(load_image(p))]
            if k % 500 == 0:
                log.info("%s: %d/%d images (%.1f s)", name, k, len(todo), time.perf_counter() - t0)
                f.write_bytes(pickle.dumps(have))
        f.write_bytes(pickle.dumps(have))
        log.info("%s: %d images in %.1f s", name, len(todo), time.perf_counter() - t0)
    return have


def _detector_key(name: str) -> tuple[str, float]:
    base, _, thr = name.partition("@")
    return base, float(thr) if thr else (0.6 if base == "yunet" else -1e9)


def run_order(cache: Path, order: Sequence[str], images: Sequence[str]) -> dict[str, list[Rec]]:
    """Faces per image from the first detector of ``order`` that finds one."""
    out: dict[str, list[Rec]] = {p: [] for p in images}
    todo = set(images)
    for name in order:
        base, thr = _detector_key(name)
        found = detections(cache, base, images, only=todo if base == "mmod" else None)
        for p in list(todo):
            recs = [r for r in found.get(p, []) if r["score"] >= thr]
            if recs:
                out[p] = recs
                todo.discard(p)
    return out


def select(recs: list[Rec], shape: tuple[int, int], how: str) -> Rec | None:
    if not recs:
        return None
    if how == "largest":
        return max(recs, key=lambda r: (r["bbox"][2] - r["bbox"][0]) * (r["bbox"][3] - r["bbox"][1]))
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(
        recs,
        key=lambda r: ((r["bbox"][0] + r["bbox"][2]) / 2 - cx) ** 2 + ((r["bbox"][1] + r["bbox"][3]) / 2 - cy) ** 2,
    )


# --- stage 2: landmark sources for YuNet boxes -------------------------------------------------------------


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / u if u > 0 else 0.0


def _matched(cache: Path, train: Split) -> list[tuple[Rec, Rec]]:
    """(HOG face, YuNet face) pairs of DevTrain images where both found the same central face."""
    hog = detections(cache, "hog1", train.images)
    yun = detections(cache, "yunet", train.images)
    pairs = []
    for p in train.images:
        h = select(hog[p], (250, 250), "central")
        y = select([r for r in yun[p] if r["score"] >= 0.6], (250, 250), "central")
        if h is not None and y is not None and _iou(h["bbox"], y["bbox"]) > 0.4:
            pairs.append((h, y))
    return pairs


def box_map(cache: Path, train: Split) -> np.ndarray:
    """(4, 2) per-coordinate fit ``hog = a · yunet_centre_size + b`` on DevTrain, as
    (cx, cy, w, h) of the HOG box from (cx, cy, w, h) of the YuNet box."""
    f = cache / "box_map.npy"
    if f.exists():
        return np.load(f)
    pairs = _matched(cache, train)

    def cs(b: Sequence[float]) -> np.ndarray:
        return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]])

    hy = np.array([cs(h["bbox"]) for h, _ in pairs])
    yy = np.array([cs(y["bbox"]) for _, y in pairs])
    # centre offsets and sizes scale with the YuNet box size (use its width as the unit)
    m = np.zeros((4, 2))
    s = yy[:, 2]
    m[0] = [np.median((hy[:, 0] - yy[:, 0]) / s), 0.0]
    m[1] = [np.median((hy[:, 1] - yy[:, 1]) / s), 0.0]
    m[2] = [np.median(hy[:, 2] / s), 0.0]
    m[3] = [np.median(hy[:, 3] / s), 0.0]
    np.save(f, m)
    log.info("box map from %d DevTrain faces: %s", len(pairs), m[:, 0].round(4).tolist())
    return m


def map_box(b: Sequence[float], m: np.ndarray) -> BBox:
    w = b[2] - b[0]
    cx = (b[0] + b[2]) / 2 + m[0, 0] * w
    cy = (b[1] + b[3]) / 2 + m[1, 0] * w
    hw, hh = m[2, 0] * w / 2, m[3, 0] * w / 2
    return BBox(cx - hw, cy - hh, cx + hw, cy + hh)


def dlib5_on_yunet(cache: Path, train: Split, images: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """dlib 5-point landmarks on every YuNet box (after the box map), per image, in box order."""
    f = cache / "lm_dlib5_on_yunet.pkl"
    have: dict[str, list[np.ndarray]] = pickle.loads(f.read_bytes()) if f.exists() else {}
    todo = [p for p in images if p not in have]
    if todo:
        from faceprint.detection.dlib_detectors import DlibLandmarker

        lmk = DlibLandmarker()
        m = box_map(cache, train)
        yun = detections(cache, "yunet", images)
        for p in todo:
            img = load_image(p) if yun[p] else None
            have[p] = [lmk(img, map_box(r["bbox"], m)).points for r in yun[p]] if img is not None else []
        f.write_bytes(pickle.dumps(have))
    return have


def yunet5_template(cache: Path, train: Split) -> np.ndarray:
    """Where YuNet's five points land in dlib's 150 px chip (padding 0.25), median over DevTrain
    faces aligned by dlib's own landmarks."""
    f = cache / "yunet5_template.npy"
    if f.exists():
        return np.load(f)
    pts = []
    for h, y in _matched(cache, train):
        m = crop_transform(Landmarks(h["lm"], "dlib5"), "dlib150")
        pts.append(y["lm"] @ m[:, :2].T + m[:, 2])
    t = np.median(np.array(pts), axis=0)
    np.save(f, t)
    log.info("YuNet 5-point template in dlib150 from %d DevTrain faces: %s", len(pts), t.round(2).tolist())
    return t


# --- stage 3: embeddings ---------------------------------------------------------------------------------


def _template(padding: float, lm_source: str, cache: Path, train: Split) -> str:
    name = f"dlib150_p{padding:g}_{lm_source}"
    if name not in TEMPLATES:
        arc = None
        if lm_source == "yunet5":
            base = yunet5_template(cache, train)  # chip coordinates at padding 0.25
            unit = base / 150.0 * 1.5 - 0.25  # back to dlib's unit square
            arc = (padding + unit) / (2 * padding + 1) * 150
        TEMPLATES[name] = Template(name, 150, "dlib", _dlib_points(150, padding), arc)
    return name


def joint_chip(image: np.ndarray, points: np.ndarray, template: np.ndarray, n: int = 150) -> np.ndarray:
    """A dlib-convention chip from any number of points fitted to their template positions
    (faceprint.alignment.crop_transform's dlib branch, for 10 points: dlib5 + YuNet's five)."""
    import cv2

    a = similarity_transform(template, points)
    s = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    lin = a[:, :2] / s * (n * s - 1.0) / (n - 1.0)
    centre = a @ np.array([n / 2.0, n / 2.0, 1.0])
    c2i = np.empty((2, 3))
    c2i[:, :2] = lin
    c2i[:, 2] = centre - lin @ np.array([(n - 1) / 2.0, (n - 1) / 2.0])
    return warp(image, np.asarray(cv2.invertAffineTransform(c2i), dtype=np.float64), n, truncate=True)


class Embedder:
    def __init__(self, tta: str) -> None:
        from faceprint.embedding.tta import with_tta
        from faceprint.registry import embedders

        self.e = with_tta(embedders.create("dlib-resnet-onnx", threads=2), tta)  # type: ignore[arg-type]


_EMBEDDERS: dict[str, Embedder] = {}


def embeddings(cache: Path, cfg: str, split: Split, train: Split) -> dict[str, np.ndarray | None]:
    order_s, how, lm_source, pad_s, tta = cfg.split("/")
    key = hashlib.sha256(f"{cfg}|{split.name}".encode()).hexdigest()[:16]
    f = cache / f"emb_{key}.npz"
    if f.exists():
        z = np.load(f, allow_pickle=False)
        names = list(z["names"])
        vecs = z["vecs"]
        return {n: (vecs[i] if np.isfinite(vecs[i, 0]) else None) for i, n in enumerate(names)}
    order = order_s.split(",")
    faces = run_order(cache, order, split.images)
    on_yunet = (
        dlib5_on_yunet(cache, train, split.images)
        if lm_source in ("dlib5", "joint") and any(o.startswith("yunet") for o in order)
        else {}
    )
    yun_all = detections(cache, "yunet", split.images) if on_yunet else {}
    tmpl = _template(float(pad_s), lm_source, cache, train)
    crops, slots = [], []
    for p in split.images:
        r = select(faces[p], (250, 250), how)
        if r is None:
            continue
        if r["det"] == "yunet":
            if lm_source == "joint":
                k = next(i for i, y in enumerate(yun_all[p]) if y["bbox"] == r["bbox"])
                pts = np.concatenate([on_yunet[p][k], r["lm"]]).astype(np.float64)
                tm = np.concatenate([TEMPLATES["dlib150"].dlib5, yunet5_template(cache, train)])
                crops.append(joint_chip(load_image(p), pts, tm))
                slots.append(p)
                continue
            if lm_source == "dlib5":
                k = next(i for i, y in enumerate(yun_all[p]) if y["bbox"] == r["bbox"])
                lm = Landmarks(on_yunet[p][k], "dlib5")
            elif lm_source == "yunet-eyes":
                lm = Landmarks(r["lm"], "arcface5")
                tmpl_eyes = f"dlib150_p{float(pad_s):g}_eyes"
                if tmpl_eyes not in TEMPLATES:
                    TEMPLATES[tmpl_eyes] = Template(tmpl_eyes, 150, "dlib", _dlib_points(150, float(pad_s)), None)
                crops.append(align(load_image(p), lm, tmpl_eyes).image)
                slots.append(p)
                continue
            else:
                lm = Landmarks(r["lm"], "arcface5")
        else:
            lm = Landmarks(r["lm"], "dlib5")
        crops.append(align(load_image(p), lm, tmpl).image)
        slots.append(p)
    if tta not in _EMBEDDERS:
        _EMBEDDERS[tta] = Embedder(tta)
    emb = _EMBEDDERS[tta].e
    t0 = time.perf_counter()
    vecs = (
        np.concatenate([emb.embed(crops[i : i + 64]) for i in range(0, len(crops), 64)])
        if crops
        else np.zeros((0, 128))
    )
    log.info("%s on %s: %d faces embedded in %.1f s", cfg, split.name, len(crops), time.perf_counter() - t0)
    out: dict[str, np.ndarray | None] = {p: None for p in split.images}
    for p, v in zip(slots, vecs, strict=True):
        out[p] = v
    arr = np.full((len(split.images), vecs.shape[1] if len(vecs) else 128), np.nan, np.float32)
    for i, p in enumerate(split.images):
        if out[p] is not None:
            arr[i] = out[p]
    np.savez(f, names=np.array(split.images), vecs=arr)
    return out


# --- figures --------------------------------------------------------------------------------------------------


def calibrated_point(cfg: str) -> Any:
    """The manifest's fmr=0.001 operating point for the pipeline a configuration stands for."""
    from faceprint.models import operating_points_for

    order, _, _, _, tta = cfg.split("/")
    model = "dlib-resnet-v1" + ("" if tta == "none" else f"+{tta}")
    detector = "yunet" if order.startswith("yunet") else "dlib-hog-mmod"
    return operating_points_for(model, detector).get("fmr=0.001")


def figures(split: Split, emb: dict[str, np.ndarray | None], point: Any = None) -> dict[str, float]:
    def score(a: str, b: str) -> float:
        ea, eb = emb.get(a), emb.get(b)
        return FAIL if ea is None or eb is None else float(ea @ eb)

    s = np.array([score(str(p.a), str(p.b)) for p in split.pairs])
    y = np.array([p.mated for p in split.pairs])
    folds = np.empty(len(s), np.int64)
    for lab in (True, False):
        idx = np.flatnonzero(y == lab)
        folds[idx] = np.arange(idx.size) % 10
    kf = kfold_accuracy(s, y, folds)
    # all image pairs
    ok = np.array([emb[p] is not None for p in split.images])
    x = np.stack([emb[p] if emb[p] is not None else np.zeros(128, np.float32) for p in split.images])
    sims = x @ x.T
    sims[~ok, :] = FAIL
    sims[:, ~ok] = FAIL
    iu = np.triu_indices(len(split.images), k=1)
    same = split.ident[iu[0]] == split.ident[iu[1]]
    allv = sims[iu]
    mated, nonmated = allv[same].astype(np.float64), allv[~same].astype(np.float64)
    e, _ = eer(mated, nonmated)
    t3 = threshold_at_fmr(nonmated, 1e-3)
    _, fn3 = fmr_fnmr(mated, nonmated, t3)
    out = {
        "kfold": kf.mean,
        "eer_all": e,
        "fnmr_1e-3_all": fn3,
        "no_face": int((~ok).sum()),
        "mated_all": int(mated.size),
        "nonmated_all": int(nonmated.size),
    }
    if point is not None:  # the DevTrain-calibrated FMR = 1e-3 threshold, applied to this split
        out["calibrated_threshold"] = point.threshold
        out["accuracy_at_calibrated"] = float(np.mean((s >= point.threshold) == y))
        out["fmr_all_at_calibrated"], out["fnmr_all_at_calibrated"] = fmr_fnmr(mated, nonmated, point.threshold)
    return out


GRIDS: dict[str, list[str]] = {
    "default": [
        # detector order and selection (dlib landmarks, padding 0.25, no TTA)
        "hog1,mmod/largest/dlib5/0.25/none",
        "hog1,mmod/central/dlib5/0.25/none",
        "hog01,mmod/largest/dlib5/0.25/none",
        "hog01,mmod/central/dlib5/0.25/none",
        "yunet,hog01,mmod/central/dlib5/0.25/none",
        "hog01,yunet,mmod/central/dlib5/0.25/none",
        # landmark source on YuNet boxes
        "yunet/central/dlib5/0.25/none",
        "yunet/central/yunet-eyes/0.25/none",
        "yunet/central/yunet5/0.25/none",
        # padding
        "hog01,mmod/central/dlib5/0.2/none",
        "hog01,mmod/central/dlib5/0.3/none",
        # TTA
        "hog01,mmod/central/dlib5/0.25/flip",
        "hog01,mmod/central/dlib5/0.25/jitter4",
        "hog01,mmod/central/dlib5/0.25/jitter10",
        "yunet/central/yunet5/0.25/flip",
    ],
}


def costs(cache: Path, train: Split, n: int, ttas: Sequence[str]) -> None:
    """CPU time per image of each detector and per face of each TTA setting (1 thread), same run."""
    from faceprint.embedding.tta import with_tta
    from faceprint.registry import embedders

    paths = train.images[:: max(1, len(train.images) // n)][:n]
    images = [load_image(p) for p in paths]
    print(f"cost on {len(images)} DevTrain images, one thread, CPU time of this process")
    base_ms = None
    for name in ("hog1", "hog01", "yunet"):
        det = _make_detector(name)
        det.detect(images[0])
        c0 = time.process_time()
        for im in images:
            det.detect(im)
        ms = (time.process_time() - c0) / len(images) * 1e3
        print(f"  detector {name:6s} {ms:7.2f} ms/image")
    faces = run_order(cache, ["hog01", "mmod"], paths)
    crops = [
        align(im, Landmarks(select(faces[p], (250, 250), "central")["lm"], "dlib5"), "dlib150").image
        for p, im in zip(paths, images, strict=True)
    ]
    net = embedders.create("dlib-resnet-onnx", threads=1, batch_size=32)
    for tta in ttas:
        emb = with_tta(net, tta)  # type: ignore[arg-type]
        emb.embed(crops[:8])
        c0 = time.process_time()
        for i in range(0, len(crops), 32):
            emb.embed(crops[i : i + 32])
        ms = (time.process_time() - c0) / len(crops) * 1e3
        base_ms = base_ms or ms
        print(f"  embed tta={tta:14s} {ms:7.2f} ms/face ({ms / base_ms:4.1f}x none)")


def table(rows: Iterable[tuple[str, dict[str, float]]], split: str) -> str:
    out = [
        f"| configuration ({split}) | 10-fold acc. | EER, all pairs | FNMR @ FMR 1e-3, all pairs | no face "
        "| at the calibrated FMR 1e-3 threshold: pair acc. / FMR / FNMR, all pairs |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for cfg, f in rows:
        cal = (
            f"{100 * f['accuracy_at_calibrated']:.2f} % / {100 * f['fmr_all_at_calibrated']:.3f} % / "
            f"{100 * f['fnmr_all_at_calibrated']:.2f} % (thr {f['calibrated_threshold']:.4f})"
            if "calibrated_threshold" in f
            else "–"
        )
        out.append(
            f"| `{cfg}` | {100 * f['kfold']:.2f} % | {100 * f['eer_all']:.3f} % | "
            f"{100 * f['fnmr_1e-3_all']:.2f} % | {f['no_face']} | {cal} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    default_data = Path(os.environ.get("FACEPRINT_TEST_DATA", ROOT.parent / "shared" / "data")) / "lfw_view1"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/core/tune"))
    ap.add_argument("--grid", choices=sorted(GRIDS), default=None)
    ap.add_argument("--configs", nargs="*", default=[])
    ap.add_argument("--report-test", action="store_true", help="figures on pairsDevTest (after choosing!)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--calibrated", action="store_true", help="also figures at the manifest's thresholds")
    ap.add_argument("--cost", type=int, default=0, help="time detectors and TTA settings on N DevTrain images")
    ap.add_argument("--cost-tta", nargs="*", default=["none", "flip", "flip-jitter1", "jitter4", "jitter10"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if "FACEPRINT_MODEL_DIR" not in os.environ:
        os.environ["FACEPRINT_MODEL_DIR"] = str(ROOT.parent / "shared" / "models")
    args.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    train = load_split(args.data, "DevTrain")
    if args.cost:
        costs(args.cache, train, args.cost, args.cost_tta)
        return 0
    split = load_split(args.data, "DevTest") if args.report_test else train
    cfgs = (GRIDS[args.grid] if args.grid else []) + list(args.configs)
    if not cfgs:
        ap.error("give --grid or --configs")
    rows = []
    for cfg in cfgs:
        point = calibrated_point(cfg) if args.calibrated else None
        f = figures(split, embeddings(args.cache, cfg, split, train), point)
        rows.append((cfg, f))
        print(table([(cfg, f)], split.name).splitlines()[-1], flush=True)
    print()
    print(table(rows, split.name))
    if args.json:
        args.json.write_text(json.dumps({c: f for c, f in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
