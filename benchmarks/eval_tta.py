"""``faceprint eval run`` with test-time augmentation, until ``eval run`` has a ``--tta`` option.

Same library calls as the command (``open_protocol``, ``run_protocol``, ``write_report``), with a
``FacePipeline(detector, tta=...)`` as the pipeline::

    python benchmarks/eval_tta.py --protocol folder --data ../shared/data/lfw_view1 --tta flip -o OUT
    python benchmarks/eval_tta.py --protocol folder --data ../shared/data/lfw_view1 --tta flip --detector yunet -o OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from faceprint import FacePipeline
    from faceprint.evaluation.cache import EmbeddingCache
    from faceprint.evaluation.report import open_protocol, run_protocol, write_report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="folder")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--detector", default="dlib-hog-mmod")
    ap.add_argument("--tta", default="flip")
    ap.add_argument("--select", default="central", choices=["central", "largest"])
    ap.add_argument("--cache", type=Path, default=None, help="embedding cache folder (default: faceprint's)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()

    src = open_protocol(args.protocol, args.data, seed=0)
    store = EmbeddingCache(args.cache)
    try:
        result = run_protocol(
            src.protocol,
            FacePipeline(args.detector, tta=args.tta),
            store,
            calibration=src.calibration,
            protocol_files=src.files,
            select=args.select,
        )
    finally:
        store.close()
    write_report(result, args.output, command="python benchmarks/eval_tta.py " + " ".join(_argv()))
    headline = json.loads((args.output / "metrics.json").read_text())["headline"]
    for row in headline:
        print(f"{row['metric']}: {row['value']} {row['ci']}")


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
