"""Deduplication time on LFW View 1 (4,992 images) with seeded near duplicates, against the time to embed them.

What is measured, in one run and one process each (``workers=1``, so the two are comparable on a
shared machine):

- **peer**: ``FacePipeline().embed_many(files, workers=1)``: decode, detect, align and embed every
  face of every file (default detector and embedder): the least any face-aware dedup must do;
- **dedup**: :func:`faceprint.media.dedup.scan_images` (decode once, pixel hash, pHash of the
  image and its mirror, detect, embed, aligned-crop descriptor) + :func:`find_duplicates`
  (all-pairs pHash and face comparison, same-person clustering).

Neither uses the evaluation embedding cache: both embed from scratch, so the ratio is fair.
Seeded near duplicates: every ``--every``-th image gets one edited copy (resize, JPEG q30, 8-px
crop, mild blur, mirror, 5° rotation in turn), written as PNG under /tmp/anondedup/bench_dedup/.
The script also prints recall and precision on those seeded pairs.

Usage::

    nice python benchmarks/bench_dedup.py                 # all 4,992 images (+ 1 in 10 seeded)
    nice python benchmarks/bench_dedup.py --limit 500     # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from faceprint.io import load_image
from faceprint.media._seed import NEAR_DUPLICATE_KINDS, near_duplicate
from faceprint.media.dedup import find_duplicates, scan_images
from faceprint.pipeline import FacePipeline

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw_view1"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT)
    ap.add_argument("--limit", type=int, default=None, help="use the first N images only")
    ap.add_argument("--every", type=int, default=10, help="seed a near duplicate of every N-th image")
    ap.add_argument("--work", type=Path, default=Path("/tmp/anondedup/bench_dedup"))
    args = ap.parse_args(argv)
    originals = sorted(args.data.glob("*/*.jpg"))[: args.limit]
    args.work.mkdir(parents=True, exist_ok=True)
    seeded: dict[str, str] = {}
    for i, p in enumerate(originals[:: args.every]):
        kind = NEAR_DUPLICATE_KINDS[i % len(NEAR_DUPLICATE_KINDS)]
        q = args.work / f"{p.stem}_{kind}.png"
        if not q.exists():
            Image.fromarray(near_duplicate(load_image(p), kind)).save(q)
        seeded[str(q)] = str(p)
    files = [str(p) for p in originals] + sorted(seeded)
    print(f"{len(originals)} images + {len(seeded)} seeded near duplicates = {len(files)} files", flush=True)
    pipe = FacePipeline()

    t0 = time.perf_counter()
    faces = sum(len(r.faces) for r in pipe.embed_many(files, workers=1))
    t_embed = time.perf_counter() - t0
    print(
        f"peer  embed_many(workers=1): {t_embed:.1f} s ({len(files) / t_embed:.1f} images/s, {faces} faces)", flush=True
    )

    t0 = time.perf_counter()
    records, skipped = scan_images(files, pipe)
    t_scan = time.perf_counter() - t0
    report = find_duplicates(records, skipped=skipped, identity_threshold=pipe.operating_point("fmr=0.0001").threshold)
    t_dedup = time.perf_counter() - t0
    print(f"dedup scan: {t_scan:.1f} s, compare+group: {t_dedup - t_scan:.1f} s, total {t_dedup:.1f} s")
    print(f"ratio dedup / embed: {t_dedup / t_embed:.2f}x (target <= 2x)")

    flagged = {frozenset((report.paths[x.a], report.paths[x.b])) for x in report.pairs}
    truth = {frozenset(kv) for kv in seeded.items()}
    tp = len(flagged & truth)
    print(
        f"seeded pairs: recall {tp / max(len(truth), 1):.4f}, pairs flagged {len(flagged)} "
        f"({len(flagged - truth)} not seeded: LFW's own duplicates or errors), "
        f"{len(report.groups)} groups, {len(report.identity_groups)} same-person groups"
    )
    for x in sorted(flagged - truth, key=sorted)[:15]:
        print("  not seeded:", *sorted(x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
