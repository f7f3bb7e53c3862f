"""What one identify costs on the service's protected galleries, per method, at N templates.

Measures :meth:`faceprint.service.galleries.GalleryManager.identify` (what ``POST
/v1/galleries/{g}/identify`` runs after the worker embedded the probe: protect the probe under the
gallery key, search, rank) on galleries of ``--n`` templates per method, beside a plain gallery
of the same vectors in the same run (the peer). Random unit vectors stand in for embeddings (the
search cost does not depend on the faces); the per-request inference is the same for every mode
and not included. Medians of ``--repeats`` interleaved identifies.

    nice python benchmarks/bench_service_protected.py [--n 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from faceprint.service.galleries import GalleryManager
from faceprint.service.settings import ServiceSettings
from faceprint.types import BBox, Embedding

SECRET = b"benchmark secret, not for use"
MODEL = {"model_id": "dlib-resnet-v1", "model_version": "1", "dim": 128}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="templates per gallery")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--methods", default="biohash,iom,ckks")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    embs = [Embedding(v, MODEL["model_id"], MODEL["model_version"]) for v in x]
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        m = GalleryManager(
            ServiceSettings(data_dir=Path(tmp), protect_secret=SECRET, ckks_max_templates=max(500, args.n))
        )
        m.create("plain")
        enrol_s = {}
        for meth in methods:
            m.create_protected(meth, meth, MODEL)
        for i, e in enumerate(embs):
            m.enroll("plain", f"s{i}", [e], bboxes=[BBox(0, 0, 10, 10)], image_sha256=["0" * 64])
        for meth in methods:
            t0 = time.perf_counter()
            for i, e in enumerate(embs):
                m.enroll(meth, f"s{i}", [e], bboxes=[BBox(0, 0, 10, 10)], image_sha256=["0" * 64])
            enrol_s[meth] = (time.perf_counter() - t0) / args.n
        times: dict[str, list[float]] = {g: [] for g in ["plain", *methods]}
        for r in range(args.repeats):
            probe = embs[r % args.n]
            for g in times:
                t0 = time.perf_counter()
                res = m.identify(g, probe, 5, None)
                times[g].append(time.perf_counter() - t0)
                assert res.best is not None and res.best.subject == f"s{r % args.n}", (g, res)
        m.close()
    plain = statistics.median(times["plain"])
    print(f"identify at N = {args.n} templates, median of {args.repeats} (plain gallery = the peer in this run)")
    print(f"{'gallery':8} {'identify p50':>14} {'x plain':>9} {'per template':>13} {'enrol/template':>15}")
    for g, ts in times.items():
        med = statistics.median(ts)
        per = med / args.n * 1e3
        enrol = f"{enrol_s[g] * 1e3:.1f} ms" if g in enrol_s else "-"
        print(f"{g:8} {med * 1e3:11.2f} ms {med / plain:8.1f}x {per:10.3f} ms {enrol:>15}")


if __name__ == "__main__":
    main()
