"""Anonymisation: throughput per method, and the re-identification table on LFW View 1 DevTest.

1. **Throughput** on ``--images`` LFW DevTest images and on the first ``--frames`` frames of
   ``video/short_hamilton_clip.mp4`` (640×360): images/s and frames/s of
   :meth:`Anonymizer.anonymize` (detect + cover) per method, against the **peer** measured in
   the same run: the detector alone on the same images. The ratio is what covering costs on top
   of finding the faces.
2. **Re-identification** (:func:`faceprint.evaluation.anonymization.evaluate_anonymization`) on the
   first ``--pairs`` DevTest mated pairs, for every method and a sweep of blur strengths and
   pixelation sizes (the default method was chosen from this table); the detection rate after
   anonymisation is measured for the four shipped settings (each miss costs a slow fallback
   scan). k-Same's reference set is the first image of each DevTrain person (no one in DevTest).

Usage::

    nice python benchmarks/bench_anonymize.py                       # 100 images, 100 frames, 100 pairs
    nice python benchmarks/bench_anonymize.py --pairs 500           # all DevTest mated pairs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from faceprint.evaluation.anonymization import evaluate_anonymization, lfw_reference_images, protocol_mated_pairs
from faceprint.io import load_image
from faceprint.media.anonymize import DEFAULT_METHOD, Anonymizer, KSameReference
from faceprint.pipeline import FacePipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rate(fn, items) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--skip-reid", action="store_true")
    args = ap.parse_args(argv)
    root = DATA / "lfw_view1"
    pipe = FacePipeline()
    name, pairs, subjects = protocol_mated_pairs("lfw", str(root), n=max(args.pairs, args.images))
    ref = KSameReference.from_images(lfw_reference_images(str(root), subjects, 300), pipe.detector)
    d = pipe.detector
    methods = {
        "blur": Anonymizer(d, "blur"),
        "pixelate": Anonymizer(d, "pixelate"),
        "mask": Anonymizer(d, "mask"),
        "ksame": Anonymizer(d, "ksame", reference=ref),
    }
    images = [load_image(a) for a, _ in pairs[: args.images]]
    cap = cv2.VideoCapture(str(DATA / "video" / "short_hamilton_clip.mp4"))
    frames = []
    while len(frames) < args.frames:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    print(f"throughput (default detector {type(d).__name__}); peer: the detector alone, same images, same run")
    print("| method | LFW images/s | time ÷ detect-only time | 640x360 frames/s | time ÷ detect-only time |")
    print("|---|---|---|---|---|")
    peer_i = _rate(d.detect, images)
    peer_f = _rate(d.detect, frames)
    print(f"| (detect only) | {peer_i:.1f} | 1.00 | {peer_f:.1f} | 1.00 |", flush=True)
    for m, an in methods.items():
        ri, rf = _rate(an.anonymize, images), _rate(an.anonymize, frames)
        print(f"| {m} | {ri:.1f} | {peer_i / ri:.2f} | {rf:.1f} | {peer_f / rf:.2f} |", flush=True)
    if args.skip_reid:
        return 0
    sweep = dict(methods)
    for s in (0.03, 0.05, 0.075, 0.1):
        sweep[f"blur σ={s}"] = Anonymizer(d, "blur", strength=s)
    for b in (10, 14):
        sweep[f"pixelate {b}"] = Anonymizer(d, "pixelate", blocks=b)
    sweep["ksame k=3"] = Anonymizer(d, "ksame", reference=ref, k=3)
    t0 = time.perf_counter()
    report = evaluate_anonymization(pairs[: args.pairs], pipe, sweep, protocol=name, detect_after={"none", *methods})
    print(f"\nre-identification on {name}, default method {DEFAULT_METHOD} ({time.perf_counter() - t0:.0f} s)")
    print(report.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
