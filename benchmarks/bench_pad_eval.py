"""PAD benchmark: ISO/IEC 30107-3 figures of the texture baseline on LFW and *synthetic attacks*.

No real presentation-attack data is available offline (the only real attack photos are the two
MiniFASNet samples), so the attacks here are made by :mod:`faceprint.attacks.synthetic` (seeded
print, screen-replay and paper-mask transforms). Every figure printed is labelled "synthetic
attacks": it says how well a detector separates these transforms from bona fide photos, not how
it resists real attacks.

Protocol (LFW View 1; identities of pairsDevTrain.txt and pairsDevTest.txt are disjoint):

* train: ``--train-bona`` DevTrain images as bona fide and synthetic attacks of each species made
  from ``--train-attack`` *other* DevTrain images (seeded sample, seed 2026);
* test: every DevTest image (1,549) as bona fide, and one attack per species made from each of them.

Faces: the default pipeline's detector (dlib HOG + MMOD), largest face. Per image the detection,
the texture features and the default verifier's embedding are cached in ``--cache`` (npz, no
pickle), and the synthetic images too, so a rerun only fits and scores.

Reported: ``texture-lbp`` trained on all species, and (cross-species) trained on print only; for
each: APCER per species, APCER_AP, BPCER at the default threshold, BPCER20/10/5, APCER at
BPCER 1/5/10 %, D-EER, APNRR/BPNRR, IAPMR against dlib's ResNet at its FMR 1e-3 operating point
(attack vs another bona fide image of the same subject). ``--detector NAME`` (e.g. ``minifasnet
--model-dir ../shared/models``) measures any registered attack detector on the same test set
instead of training. Cost per face: the texture detector against one dlib ResNet embedding of the
same faces, measured in the same run (one thread).

    nice python benchmarks/bench_pad_eval.py --data ../shared/data --cache /tmp/padeval --reports /tmp/padeval/reports
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.attacks.features import TextureSettings
from faceprint.attacks.synthetic import SPECIES, build_attack_set
from faceprint.attacks.texture import TextureModel, fit_texture, largest_face, texture_features
from faceprint.evaluation.pad import Presentations, integrated_iapmr, pad_report
from faceprint.evaluation.pad_report import pad_markdown, write_pad_report
from faceprint.io import load_image
from faceprint.pipeline import FacePipeline
from faceprint.types import BBox, Detection, Landmarks

log = logging.getLogger("bench_pad_eval")
SEED = 2026


def people(pairs: Path) -> set[str]:
    out: set[str] = set()
    for line in pairs.read_text().splitlines()[1:]:
        t = line.split()
        if len(t) == 3:
            out.add(t[0])
        elif len(t) == 4:
            out.update((t[0], t[2]))
    return out


def images_of(root: Path, names: set[str]) -> list[Path]:
    return sorted(p for n in sorted(names) for p in (root / n).glob("*.jpg"))


def synth(sources: list[Path], root: Path, out: Path, species: tuple[str, ...], pipe: FacePipeline) -> None:
    """Build the synthetic attacks of the sources not built yet (generation is deterministic per image)."""
    missing = [p for p in sources if not all((out / s / p.relative_to(root)).is_file() for s in species)]
    if not missing:
        return
    t = time.perf_counter()
    build_attack_set(
        missing, out, root=root, species=species, seed=SEED, detect=lambda img: largest_face(pipe.detector, img)
    )
    log.info("built %d x %d synthetic attacks in %.0f s", len(missing), len(species), time.perf_counter() - t)


def measure(
    name: str, files: list[Path], root: Path, pipe: FacePipeline, st: TextureSettings, cache: Path, embed: bool = True
) -> dict:
    """Per image: face found, box, landmarks, texture features and (``embed``) embedding, cached in an npz."""
    path = cache / f"set-{name}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            rec = {k: z[k] for k in z.files}
        if rec["keys"].tolist() == [f.relative_to(root).as_posix() for f in files]:
            return rec
    n = len(files)
    rec = {
        "keys": np.array([f.relative_to(root).as_posix() for f in files]),
        "ok": np.zeros(n, bool),
        "box": np.full((n, 4), np.nan),
        "lm": np.full((n, 5, 2), np.nan),
        "feat": np.full((n, st.n_features), np.nan),
        "emb": np.full((n, 128), np.nan, np.float32),
    }
    t = time.perf_counter()
    for i, f in enumerate(files):
        img = load_image(f)
        det = largest_face(pipe.detector, img)
        if det is None:
            continue
        rec["ok"][i] = True
        rec["box"][i] = det.bbox.as_list()
        if det.landmarks is not None:
            rec["lm"][i] = det.landmarks.points
        rec["feat"][i] = texture_features([img], [det], st)[0]
        if embed:
            face = pipe.embed_detections(img, [det])[0]
            rec["emb"][i] = face.embedding.vector
        if (i + 1) % 500 == 0:
            log.info("%s: %d/%d (%.0f s)", name, i + 1, n, time.perf_counter() - t)
    np.savez(path, **rec)
    return rec


def measure_synthetic(
    part: str, species: str, sources: list[Path], lfw: Path, pipe: FacePipeline, st: TextureSettings, cache: Path
) -> dict:
    """:func:`measure` of the synthetic attacks of one species made from ``sources`` (``part``: train or test)."""
    root = cache / f"synth-{part}" / species
    files = [root / p.relative_to(lfw) for p in sources]
    return measure(f"{part}-{species}", files, root, pipe, st, cache, embed=part == "test")


def presentations(rec: dict, scores: np.ndarray) -> Presentations:
    keys = rec["keys"].tolist()
    s = np.where(rec["ok"], scores, np.nan)
    fails = {k: "no face found" for k, ok in zip(keys, rec["ok"], strict=True) if not ok}
    return Presentations(keys, [Path(k).parent.name for k in keys], s, rec["emb"], fails)


def detections(rec: dict, i: int, scheme: str) -> Detection:
    lm = None if np.isnan(rec["lm"][i]).any() else Landmarks(rec["lm"][i], scheme)  # type: ignore[arg-type]
    return Detection(BBox(*rec["box"][i]), 1.0, lm)


def other_detector_scores(detector: Any, rec: dict, root: Path, scheme: str) -> np.ndarray:
    out = np.full(len(rec["keys"]), np.nan)
    for i, k in enumerate(rec["keys"]):
        if rec["ok"][i]:
            out[i] = detector.score(load_image(root / k), detections(rec, i, scheme)).score
    return out


def report(name, detector_id, threshold, bona, attacks, pipe, out: Path | None, command: str) -> Any:
    point = pipe.operating_point("fmr=0.001")
    iap = integrated_iapmr(
        bona,
        attacks,
        threshold=point.threshold,
        pad_threshold=threshold,
        verifier=pipe.model_tag,
        operating_point="fmr=0.001",
    )
    r = pad_report(bona, attacks, detector=detector_id, threshold=threshold, synthetic=list(attacks), iapmr=iap)
    if out is not None:
        write_pad_report(r, bona, attacks, out / name, command=command)
    print(f"\n## {name}\n")
    print(pad_markdown(r))
    return r


def cost_per_face(model: TextureModel, rec: dict, root: Path, pipe: FacePipeline, scheme: str, n: int = 200) -> None:
    idx = np.flatnonzero(rec["ok"])[:n]
    imgs = [load_image(root / rec["keys"][i]) for i in idx]
    dets = [detections(rec, i, scheme) for i in idx]
    t = time.perf_counter()
    model.probability(texture_features(imgs, dets, model.settings))
    pad_ms = (time.perf_counter() - t) / len(idx) * 1e3
    t = time.perf_counter()
    for img, d in zip(imgs, dets, strict=True):
        pipe.embed_detections(img, [d])
    emb_ms = (time.perf_counter() - t) / len(idx) * 1e3
    print(
        f"\ncost per face ({len(idx)} faces, one thread): texture-lbp {pad_ms:.2f} ms (crop + features + "
        f"classifier); dlib ResNet embedding (align + embed) {emb_ms:.2f} ms; ratio {pad_ms / emb_ms:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/padeval"))
    ap.add_argument("--reports", type=Path, default=None, help="write a report folder per detector here")
    ap.add_argument("--train-bona", type=int, default=600)
    ap.add_argument("--train-attack", type=int, default=300, help="DevTrain images each species is made from")
    ap.add_argument("--test-attack", type=int, default=500, help="DevTest images each species is made from")
    ap.add_argument("--detector", default="texture-lbp", help="another registered attack detector: no training")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import cv2

    cv2.setNumThreads(1)
    root = args.data / "lfw_view1"
    train_people = people(root / "pairsDevTrain.txt")
    test_people = people(root / "pairsDevTest.txt") - train_people
    rng = np.random.default_rng(SEED)
    train_imgs = images_of(root, train_people)
    pick = rng.permutation(len(train_imgs))
    tb = [train_imgs[i] for i in sorted(pick[: args.train_bona])]
    ta = [train_imgs[i] for i in sorted(pick[args.train_bona : args.train_bona + args.train_attack])]
    test = images_of(root, test_people)
    tsrc = [test[i] for i in sorted(rng.permutation(len(test))[: args.test_attack])]
    log.info(
        "train: %d bona fide, %d attack sources; test: %d bona fide, %d attack sources",
        len(tb),
        len(ta),
        len(test),
        len(tsrc),
    )

    pipe = FacePipeline(embedder_options={"threads": 1})
    scheme = "dlib5"
    st = TextureSettings()
    args.cache.mkdir(parents=True, exist_ok=True)
    synth(ta, root, args.cache / "synth-train", SPECIES, pipe)
    synth(tsrc, root, args.cache / "synth-test", SPECIES, pipe)
    test_bona = measure("test-bona", test, root, pipe, st, args.cache)
    test_atk = {s: measure_synthetic("test", s, tsrc, root, pipe, st, args.cache) for s in SPECIES}
    command = "python benchmarks/bench_pad_eval.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None
    )
    print("# Liveness: ISO/IEC 30107-3 figures on synthetic attacks (LFW View 1 DevTest identities)")
    if args.detector != "texture-lbp":
        from faceprint.registry import attack_detectors

        opts = {k: v for k, v in (("model_dir", args.model_dir), ("model", args.model)) if v is not None}
        det = attack_detectors.create(args.detector, **opts)
        bona = presentations(test_bona, other_detector_scores(det, test_bona, root, scheme))
        atk = {
            s: presentations(r, other_detector_scores(det, r, args.cache / "synth-test" / s, scheme))
            for s, r in test_atk.items()
        }
        report(
            args.detector,
            getattr(det, "detector", args.detector),
            det.threshold,
            bona,
            atk,
            pipe,
            args.reports,
            command,
        )
        return
    train_bona = measure("train-bona", tb, root, pipe, st, args.cache, embed=False)
    train_atk = {s: measure_synthetic("train", s, ta, root, pipe, st, args.cache) for s in SPECIES}
    fb = train_bona["feat"][train_bona["ok"]]
    for name, species in (("texture-lbp (all species)", SPECIES), ("texture-lbp (trained on print only)", ("print",))):
        fa = np.vstack([train_atk[s]["feat"][train_atk[s]["ok"]] for s in species])
        model = fit_texture(fb, fa, st, training={"train_species": list(species), "bona_fide": "LFW DevTrain"})
        model.save(args.cache / f"texture-{'-'.join(species)}.json")
        log.info("%s: trained on %d bona fide, %d attacks", name, len(fb), len(fa))
        bona = presentations(test_bona, model.probability(np.nan_to_num(test_bona["feat"])))
        atk = {s: presentations(r, model.probability(np.nan_to_num(r["feat"]))) for s, r in test_atk.items()}
        report(
            name.replace(" ", "_").replace("(", "").replace(")", ""),
            f"{name}",
            model.threshold,
            bona,
            atk,
            pipe,
            args.reports,
            command,
        )
    cost_per_face(model, test_bona, root, pipe, scheme)


if __name__ == "__main__":
    main()
