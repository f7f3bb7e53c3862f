"""Calibrate operating points on LFW View 1 ``pairsDevTrain.txt``, per model + TTA setting (+ detector).

Mated comparisons: the 1,100 mated pairs of pairsDevTrain. Non-mated comparisons: every pair of
images of *different* people among all images that pairsDevTrain names (millions of them), so
that the FMR = 1e-3 threshold rests on thousands of false matches rather than on the one or two
that 1,100 non-mated pairs would give. The EER point is computed on the same sets. LFW labels the
face at the centre of each image, so the central face is used (``--select``).

    python benchmarks/calibrate_lfw.py [--detector dlib-hog-mmod|yunet] [--tta none|flip|jitterN] [--write]

``--write`` stores the points in ``src/faceprint/data/models.json``:

* the default detector, ``--tta none``: the ``operating_points`` of ``dlib-resnet-v1``;
* the default detector, another TTA: ``dlib-resnet-v1``'s ``tta.<setting>.operating_points``
  (read back as the model ``dlib-resnet-v1+<setting>``);
* another detector (``yunet``): that detector's ``operating_points_by_model.<model id>``.

Results are reported on pairsDevTest by ``benchmarks/bench_lfw.py`` and ``benchmarks/tune_lfw.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import FacePipeline
from faceprint.evaluation import read_lfw_pairs
from faceprint.pipeline import DEFAULT_DETECTOR
from faceprint.scoring import calibrate, fmr_fnmr

ROOT = Path(__file__).resolve().parents[1]
BASE_MODEL = "dlib-resnet-v1"


def _store(data: dict[str, Any], detector: str, tta: str, model_id: str, points: dict[str, Any]) -> None:
    models = {m["name"]: m for m in data["models"]}
    if detector == DEFAULT_DETECTOR and tta == "none":
        models[BASE_MODEL]["operating_points"] = points
    elif detector == DEFAULT_DETECTOR:
        models[BASE_MODEL].setdefault("tta", {})[tta] = {"operating_points": points}
    else:
        models[detector].setdefault("operating_points_by_model", {})[model_id] = points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw_view1")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector backend (its landmarks align the faces)")
    ap.add_argument("--tta", default="none", help="test-time augmentation setting")
    ap.add_argument("--select", default="central", choices=["central", "largest"])
    ap.add_argument("--write", action="store_true", help="store the operating points in models.json")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.detector == "yunet" and "FACEPRINT_MODEL_DIR" not in os.environ:
        os.environ["FACEPRINT_MODEL_DIR"] = str(ROOT.parent / "shared" / "models")

    pairs = read_lfw_pairs(args.data / "pairsDevTrain.txt")
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    pipe = FacePipeline(args.detector, tta=args.tta)
    model_id = pipe.embedder.model_id
    t0 = time.perf_counter()
    vec: dict[Path, np.ndarray] = {}
    for path, res in zip(images, pipe.embed_many(images, select=args.select, workers=args.workers), strict=True):
        if res.faces:
            vec[path] = res.faces[0].embedding.vector  # type: ignore[union-attr]
    print(f"{model_id} ({args.detector}): embedded {len(vec)}/{len(images)} images in {time.perf_counter() - t0:.1f} s")

    genuine = np.array([float(vec[p.a] @ vec[p.b]) for p in pairs if p.mated and p.a in vec and p.b in vec])
    paths = sorted(vec)
    ident = np.array([p.parent.name for p in paths])
    e = np.stack([vec[p] for p in paths])
    sims = e @ e.T
    iu = np.triu_indices(len(paths), k=1)
    diff = ident[iu[0]] != ident[iu[1]]
    impostor = sims[iu][diff].astype(np.float64)
    print(f"{genuine.size} mated, {impostor.size} non-mated comparisons")

    source = "LFW View 1 pairsDevTrain.txt"
    if args.detector != DEFAULT_DETECTOR:
        source += f", detector {args.detector}"
    cal = calibrate(genuine, impostor, target_fmrs=(1e-3, 1e-4), source=source)
    pair_imp = np.array([float(vec[p.a] @ vec[p.b]) for p in pairs if not p.mated and p.a in vec and p.b in vec])
    for name, op in cal.points.items():
        fm, fn = fmr_fnmr(genuine, pair_imp, op.threshold)
        print(
            f"{name:>10}: threshold {op.threshold:.4f}  FMR {op.fmr:.5f}  FNMR {op.fnmr:.4f}  "
            f"(on the 1,100 listed non-mated pairs: FMR {fm:.4f})"
        )
    if args.write:
        mfile = ROOT / "src" / "faceprint" / "data" / "models.json"
        data = json.loads(mfile.read_text())
        points = {
            name: {
                "threshold": round(op.threshold, 6),
                "fmr": round(op.fmr, 6),
                "fnmr": round(op.fnmr, 6),
                "calibrated_on": f"{op.calibrated_on}: {genuine.size} mated pairs, "
                f"{impostor.size} non-mated image pairs, {args.select} face",
            }
            for name, op in cal.points.items()
        }
        _store(data, args.detector, pipe.tta, model_id, points)
        mfile.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {model_id} operating points (detector {args.detector}) to {mfile}")


if __name__ == "__main__":
    main()
