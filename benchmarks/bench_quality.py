"""Quality benchmarks: EDC on LFW View 1 DevTest (as is and degraded), cost per face, best-shot selection.

1. EDC (ISO/IEC 29794-1): the 1,549 DevTest images, once as they are and once with a seeded
   30 % degraded (blur, noise, JPEG, downscale, occlusion, under-/over-exposure;
   :class:`faceprint.quality.degrade.Degraded`, seed 2026). Faces by dlib's HOG detector
   (central face), embeddings and qualities cached in ``--cache``. Threshold: dlib's calibrated
   FMR 1e-3 operating point. pAUC over 0-20 % discarded, divided by the starting FNMR, for the
   unified scores (``fiqa``, ``fiqa-fast``) and each component, beside random discarding (the
   analytic flat line, and the mean of 20 seeded random orders measured in the same run).
2. Cost per face on one core (ONNX Runtime and OpenCV one thread): ``fiqa-fast`` (components +
   unified score) and ``fiqa`` (+ seven embeddings for the stability features), against one
   embedding of the same face with dlib's ResNet and one HOG detection, measured in the same run.
3. Best shot: for 150 DevTest people with two images plus the ``faces_small`` people with two or
   more, the first image is the probe; the second, and four seeded heavy degradations of it, are
   the five candidates to enrol (written as PNG files). One gallery enrols them all with
   ``Gallery.enroll(files, select="best")``, which keeps the candidate of highest ``fiqa`` quality
   (the choice of ``FacePipeline.best_shot``); others a seeded random candidate (five draws) or
   the undegraded one (oracle), with ``enroll_embeddings``; FNIR at the FMR 1e-3 threshold with
   ``identify_many``.

    nice python benchmarks/bench_quality.py --data ../shared/data --cache /tmp/quality --plot docs/quality_edc.png
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from quality_common import Extractor, components_of, remeasure, run_cached

from faceprint.evaluation import EDCDisplay, edc_report
from faceprint.evaluation.protocols import read_lfw_protocol
from faceprint.quality.degrade import KINDS, Degraded, degrade
from faceprint.quality.fiqa import FiqaAssessor, Measured
from faceprint.scoring import operating_point

SEED = 2026
MODEL = "dlib-resnet-v1"


def _reports(rec: dict[str, np.ndarray], assessor: FiqaAssessor) -> list:
    ok = np.flatnonzero(rec["ok"])
    m = Measured([components_of(rec, i) for i in ok], rec["stab"][ok])
    out: list = [None] * len(rec["ok"])
    for i, r in zip(ok, assessor.reports(m), strict=True):
        out[i] = r
    return out


def _sides(reports: list, a: np.ndarray, b: np.ndarray, pick) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([np.nan if r is None else pick(r) for r in reports])
    return v[a], v[b]


def edc_on(name: str, proto, rec: dict[str, np.ndarray], fiqa: FiqaAssessor, fast: FiqaAssessor, thr: float):
    emb = rec["emb"].astype(np.float64)
    scores = np.einsum("nd,nd->n", emb[proto.a], emb[proto.b])
    scores[~(rec["ok"][proto.a] & rec["ok"][proto.b])] = np.nan
    full, quick = _reports(rec, fiqa), _reports(rec, fast)
    qualities = {
        "unified (fiqa)": _sides(full, proto.a, proto.b, lambda r: r.quality),
        "unified (fiqa-fast)": _sides(quick, proto.a, proto.b, lambda r: r.quality),
    }
    for c in next(r for r in full if r is not None).components:
        qualities[c] = _sides(full, proto.a, proto.b, lambda r, c=c: r.components[c].quality)
    rep = edc_report(scores, proto.mated, qualities, threshold=thr)
    rng = np.random.default_rng(SEED)
    ref = rep.curves["unified (fiqa)"]
    random_pauc = np.mean(
        [
            edc_report(scores, proto.mated, {"r": (q, q)}, threshold=thr).curves["r"].pauc()
            for q in (rng.random(len(scores)) for _ in range(20))
        ]
    )
    fta = int((~rec["ok"]).sum())
    print(
        f"\n### EDC, DevTest {name}: {ref.n_mated} mated comparisons (excluded {rep.excluded}: {fta} images "
        f"without a face), threshold {thr:.4f} (FMR 1e-3), starting FNMR {ref.fnmr0:.2%}\n"
    )
    print(f"random discard: pAUC {rep.limit:.3f} (analytic), {random_pauc:.3f} (mean of 20 seeded orders)\n")
    print("| quality measure | pAUC@20 % | vs random | FNMR, 10 % discarded | FNMR, 20 % discarded |")
    print("|---|---:|---:|---:|---:|")
    rows = sorted(rep.table(), key=lambda r: (r["pauc"] is None, r["pauc"] or 0))
    for r in rows:
        p = "n/a" if r["pauc"] is None else f"{r['pauc']:.3f}"
        ratio = "n/a" if r["ratio_to_random"] is None else f"{r['ratio_to_random']:.2f}×"
        print(f"| {r['name']} | {p} | {ratio} | {r['fnmr_at_10pct']:.2%} | {r['fnmr_at_20pct']:.2%} |")
    return rep


def edc_section(args: argparse.Namespace, ext: Extractor, fiqa: FiqaAssessor, fast: FiqaAssessor) -> None:
    proto = read_lfw_protocol(args.data / "lfw_view1" / "pairsDevTest.txt")
    thr = operating_point(MODEL, "fmr=0.001").threshold
    plan = Degraded(len(proto.images), fraction=0.3, seed=SEED)
    kinds = {k: sum(1 for v in plan.plan.values() if v[0] == k) for k in KINDS}
    print(f"degraded set: {len(plan.plan)} of {len(proto.images)} images, by kind {kinds}")
    reports = {}
    for name, tasks in (
        ("as is", [(r.path, "none", 0.0, 0) for r in proto.images]),
        ("degraded", [(r.path, *plan.plan.get(i, ("none", 0.0, 0))) for i, r in enumerate(proto.images)]),
    ):
        rec = run_cached(ext, tasks, args.cache / f"devtest_{name.replace(' ', '_')}.npz")
        remeasure(ext, tasks, rec)
        reports[name] = edc_on(name, proto, rec, fiqa, fast, thr)
    if args.plot:
        rep = reports["degraded"]
        others = sorted((c for n, c in rep.curves.items() if not n.startswith("unified")), key=lambda c: c.pauc())
        names = ["unified (fiqa)", "unified (fiqa-fast)"] + [c.name for c in others[:3]]
        disp = EDCDisplay.from_report(rep, measures=names, title="EDC, LFW View 1 DevTest, 30 % degraded")
        disp.figure_.set_size_inches(6.4, 4.4)
        disp.figure_.tight_layout()
        disp.figure_.savefig(args.plot, dpi=80)
        print(f"\nwrote {args.plot}")


def _per_face(fn, items, repeat: int = 3) -> float:
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        for it in items:
            fn(it)
        best.append((time.perf_counter() - t) / len(items))
    return float(np.median(best))


def cost_section(args: argparse.Namespace) -> None:
    import cv2

    from faceprint.alignment import align
    from faceprint.io import load_image
    from faceprint.registry import detectors, embedders

    cv2.setNumThreads(1)
    proto = read_lfw_protocol(args.data / "lfw_view1" / "pairsDevTest.txt")
    hog = detectors.create("dlib-hog")
    emb = embedders.create("dlib-resnet-onnx", threads=1)
    fiqa = FiqaAssessor(embedder=emb)
    fast = FiqaAssessor(stability=False)
    faces = []
    for r in proto.images[: args.cost_faces]:
        img = load_image(r.path)
        d = hog.detect(img)
        if d and d[0].landmarks is not None:
            faces.append((img, d[0], align(img, d[0], "dlib150")))
    fast.assess(*faces[0])
    fiqa.assess(*faces[0])
    t_fast = _per_face(lambda f: fast.assess(*f), faces)
    t_fast_align = _per_face(lambda f: fast.assess(f[0], f[1]), faces)
    t_full = _per_face(lambda f: fiqa.assess(*f), faces, repeat=1)
    t_emb = _per_face(lambda f: emb.embed([f[2].image]), faces)
    t_det = _per_face(lambda f: hog.detect(f[0]), faces, repeat=1)
    print(f"\n### Cost per face, one thread, {len(faces)} DevTest faces (median of repeats)\n")
    print("| step | ms per face | vs one embedding (same run) |")
    print("|---|---:|---:|")
    for name, t in (
        ("fiqa-fast: components + unified score, given the pipeline's dlib150 chip", t_fast),
        ("fiqa-fast, aligning the chip itself", t_fast_align),
        ("fiqa: components + stability (7 embeddings) + unified score", t_full),
        ("peer: one dlib ResNet embedding of the chip", t_emb),
        ("peer: dlib HOG detection of the 250×250 image", t_det),
    ):
        print(f"| {name} | {1000 * t:.1f} | {t / t_emb:.2f}× |")


def best_shot_section(args: argparse.Namespace) -> None:
    from PIL import Image

    from faceprint.gallery import open_gallery
    from faceprint.io import load_image
    from faceprint.pipeline import FacePipeline

    proto = read_lfw_protocol(args.data / "lfw_view1" / "pairsDevTest.txt")
    by_subject: dict[str, list[str]] = {}
    for r in proto.images:
        by_subject.setdefault(r.key.split("/")[0], []).append(str(r.path))
    rng = np.random.default_rng(SEED)
    lfw = sorted(s for s, p in by_subject.items() if len(p) >= 2)
    people = [(s, sorted(by_subject[s])[:2]) for s in rng.choice(lfw, size=min(args.people, len(lfw)), replace=False)]
    small = args.data / "faces_small"
    for d in sorted(small.iterdir()):
        photos = sorted(str(p) for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if len(photos) >= 2:
            people.append((f"faces_small/{d.name}", photos[:2]))
    pipe = FacePipeline("dlib-hog", quality="fiqa", embedder_options={"threads": 1})
    plain = FacePipeline("dlib-hog", embedder_options={"threads": 1})  # the same faces, without quality
    thr = operating_point(MODEL, "fmr=0.001").threshold
    enrol: dict[str, list] = {"always the undegraded image (oracle)": []}
    randoms: list[list] = [[] for _ in range(5)]
    probes, subjects, picked_clean = [], [], 0
    t0 = time.perf_counter()
    fnir = {}

    def fnir_of(g) -> float:
        res = g.identify_many(probes, k=1, threshold=thr)
        return float(np.mean([not r.best or r.best.subject != s for r, s in zip(res, subjects, strict=True)]))

    with tempfile.TemporaryDirectory() as tmp, open_gallery(Path(tmp) / "best", pipeline=pipe) as best_g:
        for n, (subject, (probe_path, source)) in enumerate(people):
            img = load_image(source)
            kinds = rng.choice(KINDS, size=4, replace=False)
            cands = [img] + [
                degrade(img, str(k), float(rng.uniform(0.5, 1.0)), seed=int(rng.integers(2**31))) for k in kinds
            ]
            files = [Path(tmp) / f"{n}_{i}.png" for i in range(len(cands))]  # the candidates as a user has them
            for f, c in zip(files, cands, strict=True):
                Image.fromarray(c).save(f)
            try:
                probe = pipe.embed_one(probe_path)
                [chosen] = best_g.enroll(subject.replace("/", "_"), files, select="best")  # the gallery picks
            except Exception as exc:  # noqa: BLE001 - a person without a usable probe or candidate is left out
                logging.info("left out %s: %s", subject, exc)
                continue
            picked = files.index(Path(chosen.metadata["image"]))
            faces = {i: plain.analyze(c, select="largest") for i, c in enumerate(cands)}
            usable = [i for i, f in faces.items() if f]
            picked_clean += picked == 0
            probes.append(probe.embedding)
            subjects.append(subject.replace("/", "_"))
            enrol["always the undegraded image (oracle)"].append(faces[0][0] if faces[0] else faces[picked][0])
            for draws in randoms:
                draws.append(faces[int(rng.choice(usable))][0])
        fnir["best shot"] = fnir_of(best_g)
        for i, draws in enumerate(randoms):
            enrol[f"random candidate (draw {i + 1})"] = draws
        for name, faces_ in enrol.items():
            with open_gallery(Path(tmp) / name.split()[0] / str(len(fnir)), pipeline=pipe) as g:
                for s, f in zip(subjects, faces_, strict=True):
                    g.enroll_embeddings(s, [f.embedding], qualities=[f.quality.quality if f.quality else None])
                fnir[name] = fnir_of(g)
    rnd = [v for k, v in fnir.items() if k.startswith("random")]
    print(
        f"\n### Best-shot selection: {len(subjects)} people, 5 candidates each (1 undegraded + 4 degraded), "
        f"threshold {thr:.4f} (FMR 1e-3); {time.perf_counter() - t0:.0f} s\n"
    )
    print(
        f"Gallery.enroll(select='best') picked the undegraded candidate for {picked_clean} of {len(subjects)} people\n"
    )
    print("| enrolled image | FNIR |")
    print("|---|---:|")
    print(f'| best shot (`Gallery.enroll(select="best")`, fiqa) | {fnir["best shot"]:.1%} |')
    print(
        f"| random candidate (mean of 5 seeded draws) | {np.mean(rnd):.1%} "
        f"(draws {', '.join(f'{v:.1%}' for v in rnd)}) |"
    )
    print(f"| always the undegraded image (oracle) | {fnir['always the undegraded image (oracle)']:.1%} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/quality"))
    ap.add_argument("--plot", type=Path, default=None, help="write the EDC of the degraded set as a PNG")
    ap.add_argument("--people", type=int, default=150)
    ap.add_argument("--cost-faces", type=int, default=60)
    ap.add_argument("--only", choices=["edc", "cost", "bestshot"], default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"# bench_quality: {time.strftime('%Y-%m-%d')}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if args.only in (None, "edc"):
        ext = Extractor()
        edc_section(args, ext, FiqaAssessor(embedder=ext.embedder), FiqaAssessor(stability=False))
    if args.only in (None, "cost"):
        cost_section(args)
    if args.only in (None, "bestshot"):
        best_shot_section(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
