"""Explanations: time per pair per method, xcos reconstruction, faithfulness on LFW View 1 DevTest.

    nice -n 10 python benchmarks/bench_explain.py --data ../shared/data/lfw_view1 --cache /tmp/explain

Prints, all from one run:

1. **time per explanation** on one core (ONNX Runtime with 1 thread) for each method, over
   ``--timing-pairs`` DevTest pairs, with the peer measured in the same run: embedding the two
   chips of a pair (what ``verify`` pays for the network). The ratio to the peer is the figure
   that survives a busy machine; the per-pair times hold only on a quiet one.
2. **xcos reconstruction** over every DevTest pair: mean and largest |weighted patch cosines -
   score|, their correlation, and how often the two agree on the decision at the fmr=0.001
   threshold.
3. **faithfulness** over ``--mated`` mated and ``--nonmated`` non-mated DevTest pairs (the seeded
   sample ``faceprint explain eval`` draws): deletion / insertion AUC in the map's order against
   random and centre-first orders, win rates, and the randomised-weights rank correlation on
   ``--sanity-pairs`` pairs of each kind (:mod:`faceprint.evaluation.faithfulness`).

Aligned chips are cached in ``--cache`` (``chips_devtest.npz``; delete it to detect again).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.evaluation.faithfulness import evaluate_pairs, sample_pairs
from faceprint.evaluation.protocols import open_protocol
from faceprint.explain.occlusion import OcclusionExplainer
from faceprint.explain.xcos import XCosExplainer
from faceprint.pipeline import FacePipeline
from faceprint.registry import embedders
from faceprint.scoring import operating_point


def chips_for(data: Path, cache: Path, pipe: FacePipeline) -> tuple[Any, dict[str, np.ndarray]]:
    """The DevTest protocol and the aligned chip of the face of every image it uses (cached)."""
    proto = open_protocol("lfw", data).protocol
    path = cache / "chips_devtest.npz"
    if path.exists():
        z = np.load(path)
        chips_arr = z["chips"]  # an npz array decompresses on every access: read it once
        return proto, dict(zip(z["keys"].tolist(), chips_arr, strict=True))
    keyed: dict[str, np.ndarray] = {}
    for i in sorted(set(proto.a.tolist()) | set(proto.b.tolist())):
        ref = proto.images[i]
        faces = pipe.analyze(ref.source, select=proto.select or "largest", keep_aligned=True)
        if faces and faces[0].aligned is not None:
            keyed[ref.key] = faces[0].aligned.image
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, keys=np.array(list(keyed)), chips=np.stack(list(keyed.values())))
    print(f"aligned {len(keyed)} images → {path}")
    return proto, keyed


def pair_list(proto: Any, keyed: dict[str, np.ndarray], idx: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    keys = [im.key for im in proto.images]
    out = []
    for i in idx.tolist():
        ka, kb = keys[int(proto.a[i])], keys[int(proto.b[i])]
        if ka in keyed and kb in keyed and not np.array_equal(keyed[ka], keyed[kb]):
            out.append((keyed[ka], keyed[kb], bool(proto.mated[i])))
    return out


def timing(pairs: list[tuple[np.ndarray, np.ndarray, bool]], emb: Any, explainers: dict[str, Any]) -> dict[str, Any]:
    """Median seconds per pair: the peer (embed both chips) and each method, interleaved per pair."""
    for ex in explainers.values():  # warm up: build the xcos feature model, first ORT runs
        ex.explain(pairs[0][0], pairs[0][1], emb)
    times: dict[str, list[float]] = {"peer: embed 2 chips": [], **{n: [] for n in explainers}}
    for a, b, _ in pairs:
        t = time.perf_counter()
        emb.embed([a, b])
        times["peer: embed 2 chips"].append(time.perf_counter() - t)
        for name, ex in explainers.items():
            t = time.perf_counter()
            ex.explain(a, b, emb)
            times[name].append(time.perf_counter() - t)
    peer = float(np.median(times["peer: embed 2 chips"]))
    return {n: {"median_s": float(np.median(v)), "vs_peer": float(np.median(v)) / peer} for n, v in times.items()}


def reconstruction(pairs: list[tuple[np.ndarray, np.ndarray, bool]], emb: Any, threshold: float) -> dict[str, Any]:
    ex = XCosExplainer(threads=1)
    rec, score, mated = [], [], []
    for a, b, m in pairs:
        e = ex.explain(a, b, emb)
        rec.append(e.reconstructed_score)
        score.append(e.score)
        mated.append(m)
    r, s, mt = np.array(rec), np.array(score), np.array(mated)
    err = np.abs(r - s)
    out: dict[str, Any] = {
        "pairs": len(r),
        "mae": float(err.mean()),
        "p95": float(np.percentile(err, 95)),
        "max": float(err.max()),
        "corr": float(np.corrcoef(r, s)[0, 1]),
        "decision_agreement": float(np.mean((r >= threshold) == (s >= threshold))),
    }
    for name, sel in (("mated", mt), ("non-mated", ~mt)):
        out[f"mae_{name}"] = float(err[sel].mean())
        out[f"mean_score_{name}"] = float(s[sel].mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw_view1"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/explain"))
    ap.add_argument("--timing-pairs", type=int, default=20)
    ap.add_argument("--mated", type=int, default=200)
    ap.add_argument("--nonmated", type=int, default=200)
    ap.add_argument("--sanity-pairs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", nargs="*", default=[], choices=["timing", "reconstruction", "faithfulness"])
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    emb = embedders.create("dlib-resnet-onnx", threads=1)
    pipe = FacePipeline(embedder=emb)
    proto, keyed = chips_for(args.data, args.cache, pipe)
    explainers = {"occlusion": OcclusionExplainer(), "xcos": XCosExplainer(threads=1)}
    result: dict[str, Any] = {"model": f"{emb.model_id}@{emb.model_version}", "protocol": proto.name}

    if "timing" not in args.skip:
        idx = sample_pairs(proto.mated, args.timing_pairs // 2, args.timing_pairs - args.timing_pairs // 2, args.seed)
        result["timing"] = timing(pair_list(proto, keyed, idx), emb, explainers)
        print("\n| method | median s / pair (1 thread) | × peer |\n|---|---|---|")
        for n, t in result["timing"].items():
            print(f"| {n} | {t['median_s']:.4f} | {t['vs_peer']:.1f} |")

    if "reconstruction" not in args.skip:
        threshold = operating_point(emb.model_id, "fmr=0.001").threshold
        every = pair_list(proto, keyed, np.arange(len(proto)))
        result["reconstruction"] = rec = reconstruction(every, emb, threshold)
        print(
            f"\nxcos reconstruction over {rec['pairs']} DevTest pairs: MAE {rec['mae']:.4f} "
            f"(mated {rec['mae_mated']:.4f}, non-mated {rec['mae_non-mated']:.4f}), p95 {rec['p95']:.4f}, "
            f"max {rec['max']:.4f}, r = {rec['corr']:.4f}, same decision at fmr=0.001 on "
            f"{100 * rec['decision_agreement']:.1f} %"
        )

    if "faithfulness" not in args.skip:
        idx = sample_pairs(proto.mated, args.mated, args.nonmated, args.seed)
        pairs = pair_list(proto, keyed, idx)
        t = time.perf_counter()
        report = evaluate_pairs(
            pairs, explainers, emb, seed=args.seed, sanity_pairs=args.sanity_pairs, protocol=proto.name
        )
        result["faithfulness"] = report.to_dict()
        print(f"\nfaithfulness over {len(pairs)} pairs ({time.perf_counter() - t:.0f} s):\n")
        print(report.markdown())

    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
