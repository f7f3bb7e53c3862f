"""Attack detection: cost per face of each detector, against the default embedder in the same run.

The faces: the first ``--faces`` LFW View 1 DevTest images, one face each (dlib's HOG detector,
found once beforehand). Each detector scores them one call per face (``score``: crop + network,
the latency a verification request pays) and in one ``score_batch`` call; the peer is the
default embedder (dlib's ResNet in ONNX) aligning and embedding the same faces one by one. ONNX
Runtime and OpenCV use one thread. The stages run in rounds (each stage once per round, ``--repeat``
rounds), so each sees the load its round's peer saw; figures: the median and the best round of
the mean time per face, and the median over rounds of the ratio to that round's peer.

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--models", type=Path, default=Path("../shared/models"))
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
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

    backends: list[tuple[str, Any]] = [
        ("minifasnet (V2 2.7x + V1SE 4.0x ensemble)", MiniFASNet(model_dir=args.models, threads=1)),
        ("minifasnet V2 only", MiniFASNet(models="v2", model_dir=args.models, threads=1)),
        ("minifasnet V1SE only", MiniFASNet(models="v1se", model_dir=args.models, threads=1)),
        ("mesonet Meso4_DF", MesoNet(model_dir=args.models, threads=1)),
        ("mesonet MesoInception_DF", MesoNet(variant="MesoInception_DF", model_dir=args.models, threads=1)),
    ]
    imgs, dets = [f[0] for f in faces], [f[1] for f in faces]
    stages: dict[str, Callable[[], object]] = {
        "peer: dlib-resnet-onnx, align + embed": lambda: [embed_one(f) for f in faces]
    }
    for name, det in backends:
        stages[name] = lambda det=det: [det.score(f[0], f[1]) for f in faces]
        stages[name + ", batched"] = lambda det=det: det.score_batch(imgs, dets)
    for fn in stages.values():  # warm-up: first-call allocations are not a per-face cost
        fn()
    # rounds: every stage once per round, so that each sees the same load as the peer of its round
    times: dict[str, list[float]] = {k: [] for k in stages}
    for _ in range(args.repeat):
        for name, fn in stages.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) / len(faces))
    peer_name = next(iter(stages))
    peer = np.array(times[peer_name])
    print(f"\n### Attack detectors: cost per face, one thread, {len(faces)} LFW DevTest faces, {args.repeat} rounds\n")
    print("| stage | ms per face (median) | ms (best round) | × peer (median of rounds) |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        t = np.array(ts)
        print(f"| {name} | {1000 * np.median(t):.2f} | {1000 * t.min():.2f} | {np.median(t / peer):.2f} |")
    ens = 1000 * float(np.median(times[backends[0][0]]))
    verdict = "met" if ens <= MINIFASNET_TARGET_MS else "NOT met"
    print(
        f"\nMiniFASNet ensemble target <= {MINIFASNET_TARGET_MS:.0f} ms per face on one core: {verdict} ({ens:.2f} ms)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
