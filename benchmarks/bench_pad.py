"""Attack detection: cost per face of each detector, against the default embedder in the same run.

The faces: the first ``--faces`` LFW View 1 DevTest images, one face each (dlib's HOG detector,
found once beforehand). Each detector scores them one call per face (``score``: crop + network,
the latency a verification request pays) and in one ``score_batch`` call; the peer is the
default embedder (dlib's ResNet in ONNX) aligning and embedding the same faces one by one. ONNX
Runtime and OpenCV use one thread. Figures: the median over ``--repeat`` passes of the mean time
per face, and the ratio to the peer's.

    nice python benchmarks/bench_pad.py --data ../shared/data --models ../shared/models
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MINIFASNET_TARGET_MS = 5.0


def per_face(fn: Callable[[Any], object], items: list[Any], repeat: int) -> float:
    """Median over ``repeat`` passes of the mean seconds per item of ``fn``."""
    fn(items[0])  # warm-up: first-call allocations are not a per-face cost
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for it in items:
            fn(it)
        runs.append((time.perf_counter() - t) / len(items))
    return float(np.median(runs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--models", type=Path, default=Path("../shared/models"))
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import cv2

    from faceprint.alignment import align
    from faceprint.attacks.mesonet import MesoNet
    from faceprint.attacks.minifasnet import MiniFASNet
    from faceprint.evaluation.protocols import read_lfw_protocol
    from faceprint.io import load_image
    from faceprint.registry import detectors, embedders

    cv2.setNumThreads(1)
    proto = read_lfw_protocol(args.data / "lfw_view1" / "pairsDevTest.txt")
    hog = detectors.create("dlib-hog")
    faces = []
    for r in proto.images[: args.faces]:
        img = load_image(r.path)
        d = hog.detect(img)
        if d and d[0].landmarks is not None:
            faces.append((img, d[0]))
    emb = embedders.create("dlib-resnet-onnx", threads=1)

    def embed_one(face: tuple[Any, Any]) -> object:
        return emb.embed([align(face[0], face[1], emb.template).image])

    rows: list[tuple[str, float, float | None]] = []
    peer = per_face(embed_one, faces, args.repeat)
    rows.append(("peer: dlib-resnet-onnx, align + embed", peer, None))
    backends: list[tuple[str, Any]] = [
        ("minifasnet (V2 2.7x + V1SE 4.0x ensemble)", MiniFASNet(model_dir=args.models, threads=1)),
        ("minifasnet V2 only", MiniFASNet(models="v2", model_dir=args.models, threads=1)),
        ("minifasnet V1SE only", MiniFASNet(models="v1se", model_dir=args.models, threads=1)),
        ("mesonet Meso4_DF", MesoNet(model_dir=args.models, threads=1)),
        ("mesonet MesoInception_DF", MesoNet(variant="MesoInception_DF", model_dir=args.models, threads=1)),
    ]
    for name, det in backends:
        single = per_face(lambda f, det=det: det.score(f[0], f[1]), faces, args.repeat)
        batch_runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            det.score_batch([f[0] for f in faces], [f[1] for f in faces])
            batch_runs.append((time.perf_counter() - t) / len(faces))
        rows.append((name, single, float(np.median(batch_runs))))

    print(f"\n### Attack detectors: cost per face, one thread, {len(faces)} LFW DevTest faces (median of {args.repeat})\n")
    print("| stage | one call per face (ms) | × peer | batched (ms per face) |")
    print("|---|---:|---:|---:|")
    for name, single, batched in rows:
        b = "" if batched is None else f"{1000 * batched:.2f}"
        print(f"| {name} | {1000 * single:.2f} | {single / peer:.2f} | {b} |")
    ens = rows[1][1] * 1000
    verdict = "met" if ens <= MINIFASNET_TARGET_MS else "NOT met"
    print(f"\nMiniFASNet ensemble target ≤ {MINIFASNET_TARGET_MS:.0f} ms per face on one core: {verdict} ({ens:.2f} ms).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
