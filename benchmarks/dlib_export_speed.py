"""Per-face speed: dlib's ResNet vs the same weights converted to ONNX (onnxruntime, CPU).

The chips are real faces: ``faces_small/*/*`` and a spread of ``lfw_view1`` images from
``$FACEPRINT_TEST_DATA`` (default ``../shared/data`` from the project root), detected with
dlib's HOG detector, aligned with the 5-point shape predictor and cut with
``dlib.get_face_chip(img, shape, size=150, padding=0.25)``.

Measured on those same chips:

* dlib ``face_recognition_model_v1.compute_face_descriptor(chip)``, one chip per call;
* onnxruntime on :func:`faceprint.embedding.dlib_export.dlib_resnet_to_onnx`'s graph at batch 1
  and batch 32, ``intra_op_num_threads`` 1 and 2, full graph optimisation.

Usage::

    python benchmarks/dlib_export_speed.py [--faces 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import dlib
import numpy as np
import onnxruntime as ort
from PIL import Image

from faceprint.embedding.dlib_export import INPUT_NAME, dlib_resnet_to_onnx
from faceprint.models import model_path

DATA = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def load_chips(n: int) -> np.ndarray:
    net_path = model_path("dlib-resnet-v1")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(net_path.parent / "shape_predictor_5_face_landmarks.dat"))
    files = sorted(DATA.glob("faces_small/*/*.jpg"))
    lfw = sorted(DATA.glob("lfw_view1/*/*.jpg"))
    files += lfw[:: max(1, len(lfw) // (2 * n))]
    chips: list[np.ndarray] = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        dets = detector(img, 1)
        if dets:
            chips.append(np.asarray(dlib.get_face_chip(img, predictor(img, dets[0]), size=150, padding=0.25)))
        if len(chips) == n:
            break
    if not chips:
        sys.exit(f"no faces found under {DATA} (set FACEPRINT_TEST_DATA)")
    return np.stack(chips)


def best_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=64, help="number of chips (default 64)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, best kept (default 3)")
    args = ap.parse_args()

    chips = load_chips(args.faces)
    n = len(chips)
    print(f"{n} face chips, {os.cpu_count()} CPUs, onnxruntime {ort.__version__}, dlib {dlib.__version__}")

    path = model_path("dlib-resnet-v1")
    t = time.perf_counter()
    model = dlib_resnet_to_onnx(path)
    print(f"conversion: {1000 * (time.perf_counter() - t):.0f} ms")
    blob = model.SerializeToString()

    rec = dlib.face_recognition_model_v1(str(path))
    rec.compute_face_descriptor(chips[0])  # warm-up
    dlib_ms = 1000 * best_of(args.repeats, lambda: [rec.compute_face_descriptor(c) for c in chips]) / n
    ref = np.array([np.array(rec.compute_face_descriptor(c)) for c in chips], dtype=np.float64)
    print(f"dlib compute_face_descriptor (1 chip/call): {dlib_ms:7.2f} ms/face")

    for threads in (1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        for batch in (1, 32):
            batches = [chips[i : i + batch] for i in range(0, n, batch)]
            sess.run(None, {INPUT_NAME: batches[0]})  # warm-up

            def run_all(sess: ort.InferenceSession = sess, batches: list[np.ndarray] = batches) -> None:
                for b in batches:
                    sess.run(None, {INPUT_NAME: b})

            ms = 1000 * best_of(args.repeats, run_all) / n
            print(
                f"onnxruntime threads={threads} batch={batch:2d}: {ms:7.2f} ms/face  "
                f"({ms / dlib_ms:.3f}x dlib, {dlib_ms / ms:.1f}x faster)"
            )
        out = sess.run(None, {INPUT_NAME: chips})[0].astype(np.float64)
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        print(f"  check: min cosine to dlib {cos.min():.12f}, max |diff| {np.abs(out - ref).max():.2e}")


if __name__ == "__main__":
    main()
