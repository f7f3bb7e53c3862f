"""Train and test the morphing-attack detectors (D-MAD, S-MAD) on identity-disjoint LFW morphs.

    nice python scripts/train_mad.py --data ../shared/data/lfw_view1 --cache /tmp/morph

Protocol:

* **Identities.** Training morphs come from people named in ``pairsDevTrain.txt``, test morphs
  from people in ``pairsDevTest.txt`` (the two sets are disjoint in LFW View 1), each with at
  least two photos: the first (by name) is the contributor photo, the second the trusted
  "live" capture for D-MAD.
* **Pairs.** Half look-alike (most similar contributor photos first, each person once), half
  random, per split (:mod:`faceprint.attacks.morph_pairs`).
* **Attacks.** One morph per pair and method (``flow``, ``landmarks``), alpha 0.5, each with each
  post-processing of the split. Each morph is scored twice (against each contributor's trusted
  photo) for D-MAD, once for S-MAD.
* **Bona fide.** Each contributor photo put through the *same* alignment and post-processing
  (:meth:`Morpher.aligned`), so that bona fide and attack differ only by the morphing; D-MAD
  pairs it with the same person's trusted photo.
* **Models.** Standardised logistic regressions (scikit-learn for the fit; the weights are
  stored as JSON, no pickle), trained on every training method and post-processing, their L2
  strength chosen by 5-fold cross-validation on the training split (folds by pair); the stored
  threshold is the D-EER threshold on the training data. Figures (ISO/IEC 30107-3: D-EER,
  BPCER10, BPCER20; APCER/BPCER at the stored threshold) on the test split, per method and
  post-processing, plus cross-method (trained on one method, tested on the other), Scherhag's
  embedding-difference features alone (``dmad-diff``, reported, not stored) and the
  comparison-score-only baseline (``dmad-score``).

Writes ``src/faceprint/data/mad_dmad.json`` and ``mad_smad.json`` (``--no-save`` to skip) and
prints the report (also ``CACHE/mad_report.json``). Per-morph features are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import FacePipeline
from faceprint.attacks.mad import (
    DMAD_FEATURES_VERSION,
    SMAD_FEATURES_VERSION,
    LinearModel,
    dmad_features,
    embedding_difference_features,
    smad_chip,
    smad_features,
)
from faceprint.attacks.morph import Morpher
from faceprint.attacks.morph_pairs import identity_images, protocol_identities, select_pairs
from faceprint.attacks.morph_post import PostProcess
from faceprint.errors import FaceprintError
from faceprint.evaluation.morph import detection_report

log = logging.getLogger("train_mad")
ROOT = Path(__file__).resolve().parents[1]
METHODS = ("flow", "landmarks")
POSTS = {
    "none": PostProcess(),
    "sharpen1+jpeg75": PostProcess(sharpen=1.0, jpeg_quality=75),
    "printscan+jpeg90": PostProcess(print_scan=True, jpeg_quality=90),
}
TRAIN_POSTS = ("none", "printscan+jpeg90")
TEST_POSTS = tuple(POSTS)


def split_people(data: Path, split_file: str, exclude: set[str]) -> dict[str, list[Path]]:
    names = protocol_identities(data / split_file) - exclude
    return {k: v for k, v in identity_images(data, min_images=2).items() if k in names}


def embed_paths(pipe: FacePipeline, paths: list[Path], cache: Path) -> dict[str, np.ndarray]:
    """Embedding of the central face of each photo, cached in an npz keyed by path."""
    have: dict[str, np.ndarray] = {}
    if cache.exists():
        z = np.load(cache)
        have = dict(zip(z["paths"].tolist(), z["emb"], strict=True))
    todo = [str(p) for p in paths if str(p) not in have]
    for p, r in zip(todo, pipe.embed_many(todo, select="central", workers=1), strict=True):
        if r.ok and r.faces and r.faces[0].embedding is not None:
            have[p] = r.faces[0].embedding.vector
    if todo:
        keys = sorted(have)
        np.savez(cache, paths=np.array(keys), emb=np.stack([have[k] for k in keys]))
    return have


def choose_pairs(
    people: dict[str, list[Path]], emb: dict[str, np.ndarray], n: int, seed: int
) -> list[tuple[str, str, str]]:
    ids = [k for k in people if str(people[k][0]) in emb and str(people[k][1]) in emb]
    e = np.stack([emb[str(people[k][0])] for k in ids])
    out = []
    for strategy in ("lookalike", "random"):
        for i, j, _ in select_pairs(ids, e, strategy=strategy, n=n // 2, seed=seed):
            out.append((ids[i], ids[j], strategy))
    return out


def face_features(pipe: FacePipeline, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(embedding, S-MAD features) of the central face of an image, or None without a face."""
    from faceprint.pipeline import select_faces

    dets = select_faces([d for d in pipe.detector.detect(image) if d.landmarks is not None], image.shape, "central")
    if not dets:
        return None
    face = pipe.embed_detections(image, dets)[0]
    assert face.embedding is not None
    return face.embedding.vector.astype(np.float64), smad_features(smad_chip(image, dets[0]))


def build_set(
    pipe: FacePipeline,
    people: dict[str, list[Path]],
    emb: dict[str, np.ndarray],
    pairs: list[tuple[str, str, str]],
    method: str,
    post: str,
    cache: Path,
    morphers: dict[tuple[str, str], Morpher],
) -> dict[str, np.ndarray]:
    """Rows of one (split, method, post): label (1 morph), suspect and trusted embeddings, S-MAD features."""
    if cache.exists():
        return dict(np.load(cache))
    key = (method, post)
    if key not in morphers:
        morphers[key] = Morpher(method, select="central", post=POSTS[post], allow_noncommercial=method == "landmarks")
    m = morphers[key]
    rows: dict[str, list[Any]] = {
        k: [] for k in ("label", "suspect", "trusted", "smad", "pair", "strategy", "smad_row")
    }
    t0 = time.perf_counter()
    for k, (a, b, strategy) in enumerate(pairs):
        refs = [people[a][0], people[b][0]]
        trusted = [emb[str(people[a][1])], emb[str(people[b][1])]]
        try:
            r = m.morph(refs[0], refs[1], alpha=0.5, seed=k)
        except FaceprintError as exc:
            log.warning("pair %s + %s: %s", a, b, exc)
            continue
        got = face_features(pipe, r.image)
        bona = []
        for ref in refs:
            img = m.aligned(ref, seed=k)
            bona.append(face_features(pipe, img))
        if got is None or any(x is None for x in bona):
            log.warning("pair %s + %s: no face in the morph or a bona fide canvas", a, b)
            continue
        for c in range(2):  # attack: morph vs each contributor's trusted photo
            rows["label"].append(1)
            rows["suspect"].append(got[0])
            rows["trusted"].append(trusted[c])
            rows["smad"].append(got[1])
            rows["smad_row"].append(c == 0)  # S-MAD counts each morph once
            rows["pair"].append(k)
            rows["strategy"].append(strategy)
        for c in range(2):  # bona fide: contributor's own canvas vs their trusted photo
            bf = bona[c]
            assert bf is not None
            rows["label"].append(0)
            rows["suspect"].append(bf[0])
            rows["trusted"].append(trusted[c])
            rows["smad"].append(bf[1])
            rows["smad_row"].append(True)
            rows["pair"].append(k)
            rows["strategy"].append(strategy)
    log.info("%s/%s: %d pairs in %.0f s", method, post, len(pairs), time.perf_counter() - t0)
    out = {k: np.asarray(v) for k, v in rows.items()}
    np.savez(cache, **out)  # type: ignore[arg-type]
    return out


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    clf.fit((x - mean) / scale, y)
    return mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def dmad_xy(sets: list[dict[str, np.ndarray]], kind: str = "dmad") -> tuple[np.ndarray, np.ndarray]:
    if kind == "dmad-diff":
        x = np.vstack([embedding_difference_features(s["suspect"], s["trusted"]) for s in sets])
    else:
        x = np.vstack([dmad_features(s["suspect"], s["trusted"], s["smad"]) for s in sets])
    return x, np.concatenate([s["label"] for s in sets])


def smad_xy(sets: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.vstack([s["smad"][s["smad_row"]] for s in sets])
    return x, np.concatenate([s["label"][s["smad_row"]] for s in sets])


def xy(kind: str, sets: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and pair ids (the cross-validation groups) of one detector kind."""
    if kind == "smad":
        x, y = smad_xy(sets)
        groups = np.concatenate([s["pair"][s["smad_row"]] for s in sets])
    else:
        x, y = dmad_xy(sets, kind)
        groups = np.concatenate([s["pair"] for s in sets])
    return x, y, groups


C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def choose_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """The L2 strength with the best 5-fold ROC AUC on the training data, folds split by pair
    (a pair's morphs and bona fide photos stay in one fold); the test split is never seen."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def auc(c: float) -> float:
        est = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, class_weight="balanced"))
        return float(np.mean(cross_val_score(est, x, y, groups=groups, cv=GroupKFold(5), scoring="roc_auc")))

    return max(C_GRID, key=auc)


def train(kind: str, sets: list[dict[str, np.ndarray]], meta: dict[str, Any]) -> LinearModel:
    x, y, groups = xy(kind, sets)
    c = choose_c(x, y, groups)
    mean, scale, coef, b = fit(x, y, c)
    version = {"dmad": DMAD_FEATURES_VERSION, "smad": SMAD_FEATURES_VERSION}.get(kind, "diff")
    model = LinearModel(kind, version, mean, scale, coef, b)
    s = model.predict(x)
    thr = detection_report(s[y == 1], s[y == 0])["d_eer_threshold"]
    return LinearModel(
        model.kind,
        model.features_version,
        mean,
        scale,
        coef,
        b,
        float(thr),
        "1",
        {**meta, "C": c, "n_train": int(y.size)},
    )


def evaluate(model: LinearModel | None, kind: str, test: dict[str, np.ndarray]) -> dict[str, Any]:
    if kind == "dmad-score":
        y = test["label"]
        s = (1.0 - np.sum(test["suspect"] * test["trusted"], axis=1)) / 2.0
    else:
        assert model is not None
        x, y, _ = xy(kind, [test])
        s = model.predict(x)
    rep = detection_report(s[y == 1], s[y == 0], None if model is None else model.threshold)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rep.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lfw_view1")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/morph"))
    ap.add_argument("--n-train", type=int, default=200, help="training pairs (half look-alike, half random)")
    ap.add_argument("--n-test", type=int, default=150, help="test pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-save", action="store_true", help="do not write the models into src/faceprint/data")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import cv2

    cv2.setNumThreads(1)  # one core each: the figures are per core, and the machine is shared
    args.cache.mkdir(parents=True, exist_ok=True)
    pipe = FacePipeline()
    test_people = split_people(args.data, "pairsDevTest.txt", set())
    train_people = split_people(args.data, "pairsDevTrain.txt", set(test_people))
    sets: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
    morphers: dict[tuple[str, str], Morpher] = {}
    for split, people, n, posts in (
        ("train", train_people, args.n_train, TRAIN_POSTS),
        ("test", test_people, args.n_test, TEST_POSTS),
    ):
        emb = embed_paths(pipe, [p for v in people.values() for p in v[:2]], args.cache / f"emb_{split}.npz")
        pairs = choose_pairs(people, emb, n, args.seed)
        log.info("%s: %d people, %d pairs", split, len(people), len(pairs))
        for method in METHODS:
            for post in posts:
                tag = f"{split}_{method}_{post}_n{n}_s{args.seed}"
                sets[(split, method, post)] = build_set(
                    pipe, people, emb, pairs, method, post, args.cache / f"set_{tag}.npz", morphers
                )
    meta = {
        "embedder": pipe.embedder.model_id,
        "command": "python scripts/train_mad.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "trained_on": "LFW View 1 pairsDevTrain identities (>= 2 photos): morphs by faceprint.attacks.morph, "
        f"methods {', '.join(METHODS)}, post-processing {', '.join(TRAIN_POSTS)}; bona fide: the contributors' "
        "photos through the same alignment and post-processing",
    }
    models: dict[str, dict[str, LinearModel]] = {"dmad": {}, "dmad-diff": {}, "smad": {}}
    for kind in models:
        models[kind]["all"] = train(kind, [sets[("train", m, p)] for m in METHODS for p in TRAIN_POSTS], meta)
        for m in METHODS:
            models[kind][m] = train(kind, [sets[("train", m, p)] for p in TRAIN_POSTS], meta)
    report: dict[str, Any] = {"n_train_pairs": args.n_train, "n_test_pairs": args.n_test, "rows": []}
    for kind in ("dmad", "dmad-diff", "dmad-score", "smad"):
        for trained in ("all", *METHODS):
            if kind == "dmad-score" and trained != "all":
                continue
            model = None if kind == "dmad-score" else models[kind][trained]
            for m in METHODS:
                for p in TEST_POSTS:
                    rep = evaluate(model, kind, sets[("test", m, p)])
                    report["rows"].append({"detector": kind, "trained_on": trained, "test_method": m, "post": p, **rep})
    print(
        "| detector | trained on | test method | post-processing | attacks / bona fide | D-EER | BPCER10 | BPCER20 "
        "| APCER / BPCER at stored thr. |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---|")
    for r in report["rows"]:
        at = f"{r['apcer']:.3f} / {r['bpcer']:.3f}" if "apcer" in r else "-"
        trained = r["trained_on"] if r["detector"] != "dmad-score" else "(no training)"
        rates = f"{100 * r['d_eer']:.1f} % | {100 * r['bpcer10']:.1f} % | {100 * r['bpcer20']:.1f} %"
        print(
            f"| {r['detector']} | {trained} | {r['test_method']} | {r['post']} | "
            f"{r['n_attacks']} / {r['n_bona_fide']} | {rates} | {at} |"
        )
    (args.cache / "mad_report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if not args.no_save:
        for kind in ("dmad", "smad"):
            models[kind]["all"].save(ROOT / "src" / "faceprint" / "data" / f"mad_{kind}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
