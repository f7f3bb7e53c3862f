"""Calibrate the default model's operating points on LFW View 1 ``pairsDevTrain.txt``.

Mated comparisons: the 1,100 mated pairs of pairsDevTrain. Non-mated comparisons: every pair of
images of *different* people among all images that pairsDevTrain names (millions of them), so
that the FMR = 1e-3 threshold rests on thousands of false matches rather than on the one or two
that 1,100 non-mated pairs would give. The EER point is computed on the same sets.

    python benchmarks/calibrate_lfw.py [--data ../shared/data/lfw_view1] [--write]

``--write`` stores the points in ``src/faceprint/data/models.json`` (operating points of
``dlib-resnet-v1``). Results are reported on pairsDevTest by ``benchmarks/bench_lfw.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from faceprint import FacePipeline
from faceprint.evaluation import read_lfw_pairs
from faceprint.scoring import calibrate, fmr_fnmr

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw_view1")
    ap.add_argument("--write", action="store_true", help="store the operating points in models.json")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)

    pairs = read_lfw_pairs(args.data / "pairsDevTrain.txt")
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    pipe = FacePipeline()
    t0 = time.perf_counter()
    vec: dict[Path, np.ndarray] = {}
    for path, res in zip(images, pipe.embed_many(images, select="largest", workers=args.workers), strict=True):
        if res.faces:
            vec[path] = res.faces[0].embedding.vector  # type: ignore[union-attr]
    print(f"embedded {len(vec)}/{len(images)} images in {time.perf_counter() - t0:.1f} s")

    genuine = np.array([float(vec[p.a] @ vec[p.b]) for p in pairs if p.mated and p.a in vec and p.b in vec])
    paths = sorted(vec)
    ident = np.array([p.parent.name for p in paths])
    e = np.stack([vec[p] for p in paths])
    sims = e @ e.T
    iu = np.triu_indices(len(paths), k=1)
    diff = ident[iu[0]] != ident[iu[1]]
    impostor = sims[iu][diff].astype(np.float64)
    print(f"{genuine.size} mated, {impostor.size} non-mated comparisons")

    cal = calibrate(genuine, impostor, target_fmrs=(1e-3, 1e-4), source="LFW View 1 pairsDevTrain.txt")
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
        for m in data["models"]:
            if m["name"] == "dlib-resnet-v1":
                m["operating_points"] = {
                    name: {
                        "threshold": round(op.threshold, 6),
                        "fmr": round(op.fmr, 6),
                        "fnmr": round(op.fnmr, 6),
                        "calibrated_on": f"{op.calibrated_on}: {genuine.size} mated pairs, "
                        f"{impostor.size} non-mated image pairs",
                    }
                    for name, op in cal.points.items()
                }
        mfile.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote operating points to {mfile}")


if __name__ == "__main__":
    main()
