"""FaceNet vs dlib, score fusion and cross-model mapping on LFW View 1 (issue 16).

    python benchmarks/bench_models.py embed          # detect once, embed with dlib and FaceNet (cached)
    python benchmarks/bench_models.py padding        # facenet160 margin search on DevTrain
    python benchmarks/bench_models.py calibrate [--write]   # FaceNet operating points on DevTrain
    python benchmarks/bench_models.py report         # DevTest: models, fusion, mapping, migration, screening

Faces are found once by the default detector (central face, as LFW labels it) and the same
detections feed both embedders, so the models differ only in alignment and network. Embeddings
are cached in ``$FACEPRINT_BENCH_CACHE`` (default ``/tmp/facenet/fixedstd``). Non-mated comparisons for
calibration are every pair of images of different people among the split's images, as in
``benchmarks/calibrate_lfw.py``; DevTest is reported on its 500 + 500 listed pairs and on all
its image pairs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import alignment
from faceprint.evaluation import read_lfw_pairs
from faceprint.scoring import calibrate, eer, fmr_fnmr, threshold_at_fmr

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "lfw_view1"
CACHE = Path(os.environ.get("FACEPRINT_BENCH_CACHE", "/tmp/facenet/fixedstd"))
SPLITS = ("pairsDevTrain.txt", "pairsDevTest.txt")


def view1_images(data: Path) -> list[Path]:
    imgs: set[Path] = set()
    for s in SPLITS:
        for p in read_lfw_pairs(data / s):
            imgs |= {p.a, p.b}
    return sorted(imgs)


def detections(data: Path) -> dict[str, Any]:
    """path → (Detection of the central face, dlib embedding), from the default pipeline (cached)."""
    f = CACHE / "view1_dlib.pkl"
    if f.is_file():
        return pickle.loads(f.read_bytes())
    from faceprint import FacePipeline

    pipe = FacePipeline()
    images = view1_images(data)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for path, res in zip(images, pipe.embed_many(images, select="central"), strict=True):
        if res.faces:
            face = res.faces[0]
            out[str(path)] = (face.detection, face.embedding.vector)  # type: ignore[union-attr]
    print(f"dlib: {len(out)}/{len(images)} images with a face in {time.perf_counter() - t0:.1f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    f.write_bytes(pickle.dumps(out))
    return out


def facenet_vectors(
    dets: dict[str, Any], padding: float | None = None, threads: int = 1, only: set[str] | None = None
) -> dict[str, np.ndarray]:
    """path → FaceNet embedding on the same detections (cached per padding; ``only``: a subset of paths)."""
    from faceprint.io import load_image

    pad = alignment.FACENET_PADDING if padding is None else padding
    f = CACHE / f"view1_facenet_pad{pad:.2f}.npz"
    have: dict[str, np.ndarray] = {}
    if f.is_file():
        z = np.load(f)
        have = dict(zip(z["paths"].tolist(), z["vectors"], strict=True))
    todo = sorted(p for p in dets if p not in have and (only is None or p in only))
    if todo:
        from faceprint.embedding.facenet import FaceNetEmbedder

        emb = FaceNetEmbedder(threads=threads)
        name = f"facenet160-pad{pad:.2f}"
        alignment.TEMPLATES[name] = alignment.Template(name, 160, "dlib", alignment._dlib_points(160, pad), None)
        t0 = time.perf_counter()
        for i in range(0, len(todo), 32):
            part = todo[i : i + 32]
            crops = [alignment.align(load_image(p), dets[p][0], name).image for p in part]
            have.update(zip(part, emb.embed(crops), strict=True))
            if (i // 32) % 20 == 19:  # keep what is done
                np.savez(f, paths=np.array(sorted(have)), vectors=np.stack([have[p] for p in sorted(have)]))
        print(f"facenet pad {pad:.2f}: {len(todo)} faces in {time.perf_counter() - t0:.1f} s", flush=True)
        np.savez(f, paths=np.array(sorted(have)), vectors=np.stack([have[p] for p in sorted(have)]))
    return {p: v for p, v in have.items() if only is None or p in only}


def split_scores(vec: dict[str, np.ndarray], split: str, data: Path) -> dict[str, np.ndarray]:
    """Scores of a split: listed mated/non-mated pairs, and every non-mated image pair."""
    pairs = [p for p in read_lfw_pairs(data / split) if str(p.a) in vec and str(p.b) in vec]
    mated = np.array([float(vec[str(p.a)] @ vec[str(p.b)]) for p in pairs if p.mated])
    listed = np.array([float(vec[str(p.a)] @ vec[str(p.b)]) for p in pairs if not p.mated])
    paths = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    ident = np.array([Path(p).parent.name for p in paths])
    e = np.stack([vec[p] for p in paths])
    iu = np.triu_indices(len(paths), k=1)
    diff = ident[iu[0]] != ident[iu[1]]
    sims = (e @ e.T)[iu]
    allnm = sims[diff].astype(np.float64)
    return {"mated": mated, "listed": listed, "all_nonmated": allnm, "all_mated": sims[~diff].astype(np.float64)}


def summary(s: dict[str, np.ndarray]) -> str:
    e = eer(s["mated"], s["all_nonmated"])
    t = threshold_at_fmr(s["all_nonmated"], 1e-3)
    _, fnmr = fmr_fnmr(s["mated"], s["all_nonmated"], t)
    return f"EER {100 * e.eer:.2f} %  FNMR@FMR1e-3 {100 * fnmr:.2f} %"


def cmd_padding(args: argparse.Namespace) -> None:
    """EER on the DevTrain pairs among its first ``--pairs`` mated and non-mated pairs, per padding."""
    dets = detections(args.data)
    pairs = read_lfw_pairs(args.data / SPLITS[0])
    sub = [p for p in pairs if p.mated][: args.pairs] + [p for p in pairs if not p.mated][: args.pairs]
    only = {str(p.a) for p in sub} | {str(p.b) for p in sub}
    for pad in args.pads:
        vec = facenet_vectors(dets, pad, threads=args.threads, only=only)
        m = np.array(
            [float(vec[str(p.a)] @ vec[str(p.b)]) for p in sub if p.mated and str(p.a) in vec and str(p.b) in vec]
        )
        paths = sorted(vec)
        ident = np.array([Path(p).parent.name for p in paths])
        e = np.stack([vec[p] for p in paths])
        iu = np.triu_indices(len(paths), k=1)
        nm = (e @ e.T)[iu][ident[iu[0]] != ident[iu[1]]]
        print(
            f"pad {pad:.2f}  DevTrain subset ({m.size} mated, {nm.size} non-mated): "
            f"{summary({'mated': m, 'all_nonmated': nm})}",
            flush=True,
        )


def dlib_cut_vectors(dets: dict[str, Any], fused: Any) -> dict[str, np.ndarray]:
    """path → dlib embedding of the chip cut out of the facenet160 crop, as the fused embedder makes it."""
    f = CACHE / f"view1_dlibcut_pad{alignment.FACENET_PADDING:.2f}.npz"
    if f.is_file():
        z = np.load(f)
        return dict(zip(z["paths"].tolist(), z["vectors"], strict=True))
    from faceprint.io import load_image

    paths = sorted(dets)
    i_dlib = [m.model_id for m in fused.members].index("dlib-resnet-v1")
    vecs = []
    for i in range(0, len(paths), 32):
        crops = np.stack([alignment.align(load_image(p), dets[p][0], fused.template).image for p in paths[i : i + 32]])
        vecs.append(fused.members[i_dlib].embed(fused.member_crops(crops, i_dlib)))
    v = np.concatenate(vecs)
    np.savez(f, paths=np.array(paths), vectors=v)
    return dict(zip(paths, v, strict=True))


def model_vectors(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    dets = detections(args.data)
    dlib = {p: v[1] for p, v in dets.items()}
    return dets, dlib, facenet_vectors(dets, threads=args.threads)


def cmd_calibrate(args: argparse.Namespace) -> None:
    """FaceNet's operating points on DevTrain (all non-mated image pairs), as calibrate_lfw.py does for dlib."""
    _, _, fn = model_vectors(args)
    s = split_scores(fn, SPLITS[0], args.data)
    cal = calibrate(s["mated"], s["all_nonmated"], target_fmrs=(1e-3, 1e-4), source="LFW View 1 pairsDevTrain.txt")
    points = _points(cal, s, "central face, default detector, facenet160 crops")
    for k, v in points.items():
        print(f"facenet {k:>11}: threshold {v['threshold']:.4f} FMR {v['fmr']:.5f} FNMR {v['fnmr']:.4f}")
    if args.write:
        _write_manifest({"facenet-20180408": {"operating_points": points}})


def _points(cal: Any, s: dict[str, np.ndarray], note: str) -> dict[str, Any]:
    return {
        name: {
            "threshold": round(op.threshold, 6),
            "fmr": round(op.fmr, 6),
            "fnmr": round(op.fnmr, 6),
            "calibrated_on": f"{op.calibrated_on}: {s['mated'].size} mated pairs, "
            f"{s['all_nonmated'].size} non-mated image pairs, {note}",
        }
        for name, op in cal.points.items()
    }


def _write_manifest(updates: dict[str, dict[str, Any]]) -> None:
    mfile = ROOT / "src" / "faceprint" / "data" / "models.json"
    data = json.loads(mfile.read_text())
    models = {m["name"]: m for m in data["models"]}
    for name, fields in updates.items():
        if name not in models:
            data["models"].append({"name": name})
            models[name] = data["models"][-1]
        models[name].update(fields)
    mfile.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {', '.join(updates)} to {mfile}")


def pair_matrix(vecs: list[dict[str, np.ndarray]], split: str, data: Path, n_nonmated: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """(scores (N, M), mated (N,)): the split's mated image pairs and a sample of its non-mated ones."""
    pairs = [p for p in read_lfw_pairs(data / split) if all(str(p.a) in v and str(p.b) in v for v in vecs)]
    paths = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    ident = np.array([Path(p).parent.name for p in paths])
    iu = np.triu_indices(len(paths), k=1)
    diff = np.flatnonzero(ident[iu[0]] != ident[iu[1]])
    mated = [(paths[iu[0][k]], paths[iu[1][k]]) for k in np.flatnonzero(ident[iu[0]] == ident[iu[1]])]
    rng = np.random.default_rng(seed)
    pick = diff if n_nonmated <= 0 or n_nonmated >= diff.size else rng.choice(diff, n_nonmated, replace=False)
    nm = [(paths[iu[0][k]], paths[iu[1][k]]) for k in pick]
    allp = mated + nm
    cols = []
    for v in vecs:
        a = np.stack([v[x] for x, _ in allp])
        b = np.stack([v[y] for _, y in allp])
        cols.append(np.sum(a * b, axis=1))
    return np.stack(cols, axis=1).astype(np.float64), np.array([True] * len(mated) + [False] * len(nm))


def _rates(mated: np.ndarray, nonmated: np.ndarray, thr_train: float | None = None) -> dict[str, float]:
    e = eer(mated, nonmated)
    t = threshold_at_fmr(nonmated, 1e-3)
    _, fnmr = fmr_fnmr(mated, nonmated, t)
    out = {"eer_%": round(100 * e.eer, 2), "fnmr@fmr1e-3_%": round(100 * fnmr, 2)}
    if thr_train is not None:
        fm, fn = fmr_fnmr(mated, nonmated, thr_train)
        out["at_devtrain_thr_fmr_%"] = round(100 * fm, 3)
        out["at_devtrain_thr_fnmr_%"] = round(100 * fn, 2)
    return out


def cmd_report(args: argparse.Namespace) -> None:  # noqa: C901 - one section after another
    from faceprint.embedding.fused import FusedEmbedder, fit_fusion
    from faceprint.mapping import fit_ridge

    dets, dlib, fn = model_vectors(args)
    out: dict[str, Any] = {}
    print("== models on DevTest (same detections; all non-mated image pairs) ==")
    tr = {k: split_scores(v, SPLITS[0], args.data) for k, v in (("dlib", dlib), ("facenet", fn))}
    te = {k: split_scores(v, SPLITS[1], args.data) for k, v in (("dlib", dlib), ("facenet", fn))}
    for k in tr:
        thr = threshold_at_fmr(tr[k]["all_nonmated"], 1e-3)
        out[k] = _rates(*_ms(te[k]), thr)
        print(f"{k:>8}: {out[k]}  ({te[k]['all_mated'].size} mated, {te[k]['all_nonmated'].size} non-mated)")

    print("== cost per face (aligned crops → embedding, 1 thread, batch 16, same run) ==")
    from faceprint.embedding.dlib_resnet import DlibResNetOnnxEmbedder
    from faceprint.embedding.facenet import FaceNetEmbedder

    rng = np.random.default_rng(0)
    cost = {}
    for name, emb, size in (
        ("dlib", DlibResNetOnnxEmbedder(threads=1, batch_size=16), 150),
        ("facenet", FaceNetEmbedder(threads=1, batch_size=16), 160),
    ):
        crops = list(rng.integers(0, 255, (64, size, size, 3), dtype=np.uint8))
        emb.embed(crops[:16])
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            emb.embed(crops)
            times.append((time.perf_counter() - t0) / len(crops) * 1000)
        cost[name] = round(min(times), 2)
    cost["facenet/dlib"] = round(cost["facenet"] / cost["dlib"], 2)
    out["cost_ms_per_face"] = cost
    print(cost)

    print("== fusion: weights from DevTrain only, applied to DevTest ==")
    x_tr, y_tr = pair_matrix([dlib, fn], SPLITS[0], args.data, 200_000)
    x_te, y_te = pair_matrix([dlib, fn], SPLITS[1], args.data, 0)
    fus: dict[str, Any] = {}
    for method in ("logistic", "znorm"):
        fit = fit_fusion(x_tr, y_tr, method=method)
        w = np.asarray(fit["weights"])
        s_tr = x_tr @ w
        s_te = x_te @ w
        thr = threshold_at_fmr(s_tr[~y_tr], 1e-3)
        fus[method] = {"weights": [round(float(v), 4) for v in w], **_rates(s_te[y_te], s_te[~y_te], thr)}
        print(f"{method:>8}: {fus[method]}")
        if method == "logistic":
            w_logistic = w
    out["fusion"] = fus
    # the fused embedder as shipped: its dlib part comes from the chip cut out of the facenet160 crop
    fused = FusedEmbedder(members=["dlib-resnet-onnx", "facenet"], weights=list(w_logistic), threads=1)
    cut = dlib_cut_vectors(dets, fused)
    out["dlib_cut_from_facenet160"] = _rates(*_ms(split_scores(cut, SPLITS[1], args.data)))
    xc_tr, yc_tr = pair_matrix([cut, fn], SPLITS[0], args.data, 200_000)
    xc_te, yc_te = pair_matrix([cut, fn], SPLITS[1], args.data, 0)
    fit_cut = fit_fusion(xc_tr, yc_tr, method="logistic")
    wc = np.asarray(fit_cut["weights"])
    fused_vec = {p: np.concatenate([np.sqrt(wc[0]) * cut[p], np.sqrt(wc[1]) * fn[p]]) for p in cut if p in fn}
    s_tr = split_scores(fused_vec, SPLITS[0], args.data)
    cal = calibrate(
        s_tr["mated"], s_tr["all_nonmated"], target_fmrs=(1e-3, 1e-4), source="LFW View 1 pairsDevTrain.txt"
    )
    thr = cal.points["fmr=0.001"].threshold
    out["fused_embedder"] = {
        "weights": [round(float(v), 4) for v in wc],
        **_rates(*_ms(split_scores(fused_vec, SPLITS[1], args.data)), thr),
    }
    print(f"dlib chip cut from facenet160: {out['dlib_cut_from_facenet160']}")
    print(f"fused embedder (dlib cut + facenet): {out['fused_embedder']}")
    if args.write:
        points = _points(cal, s_tr, "central face, default detector, facenet160 crops (dlib chip cut from them)")
        _write_manifest({"fused-dlib-facenet": _fusion_entry(fit_cut, points)})

    print("== cross-model mapping (ridge fitted on DevTrain images, evaluated on DevTest pairs) ==")
    train_imgs = sorted(
        {str(p.a) for p in read_lfw_pairs(args.data / SPLITS[0])}
        | {str(p.b) for p in read_lfw_pairs(args.data / SPLITS[0])}
    )
    train_imgs = [p for p in train_imgs if p in dlib and p in fn]
    test_pairs = [
        p
        for p in read_lfw_pairs(args.data / SPLITS[1])
        if str(p.a) in dlib and str(p.a) in fn and str(p.b) in dlib and str(p.b) in fn
    ]
    maps: dict[str, Any] = {}
    full_maps: dict[tuple[str, str], Any] = {}
    vec = {"dlib": dlib, "facenet": fn}
    for src, dst in (("facenet", "dlib"), ("dlib", "facenet")):
        for n_train in (500, len(train_imgs)):
            sub = (
                train_imgs
                if n_train >= len(train_imgs)
                else list(np.random.default_rng(0).choice(train_imgs, n_train, replace=False))
            )
            t0 = time.perf_counter()
            emap = fit_ridge(
                np.stack([vec[src][p] for p in sub]), np.stack([vec[dst][p] for p in sub]), source=src, target=dst
            )
            fit_s = time.perf_counter() - t0
            mapped = dict(
                zip(sorted(vec[src]), emap.apply(np.stack([vec[src][p] for p in sorted(vec[src])])), strict=True)
            )
            # cross-model comparisons: image a by src, mapped, against image b by dst, natively (both ways round)
            r = _rates(*_cross(mapped, vec[dst], test_pairs))
            r["tar@fmr1e-3_%"] = round(100 - r["fnmr@fmr1e-3_%"], 2)
            r["alpha"] = emap.alpha
            r["fit_s"] = round(fit_s, 2)
            maps[f"{src}->{dst} n={len(sub)}"] = r
            print(f"{src}->{dst} fitted on {len(sub)}: {r}")
            if n_train >= len(train_imgs):
                full_maps[(src, dst)] = emap
    out["mapping"] = maps

    print("== migration: DevTest people with >= 2 images, first image enrolled, the others probe ==")
    out["migration"] = _migration(test_pairs, vec, full_maps)
    print(out["migration"])

    print("== disagreement screening: map fitted on DevTrain, clean DevTest faces ==")
    out["screening"] = _screening(test_pairs, vec, full_maps)
    print(out["screening"])
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "report.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {CACHE / 'report.json'}")


def _ms(s: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """DevTest's every mated and every non-mated image pair (as benchmarks/tune_lfw.py reports)."""
    return s["all_mated"], s["all_nonmated"]


def _cross(
    mapped: dict[str, np.ndarray], native: dict[str, np.ndarray], pairs: list[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(mated, non-mated) cross-model scores of every ordered image pair of the split (mapped a vs native b)."""
    paths = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    ident = np.array([Path(p).parent.name for p in paths])
    s = np.stack([mapped[p] for p in paths]) @ np.stack([native[p] for p in paths]).T
    same = ident[:, None] == ident[None, :]
    np.fill_diagonal(same, False)
    diff = ident[:, None] != ident[None, :]
    return s[same].astype(np.float64), s[diff].astype(np.float64)


def _identities(pairs: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """(enrolled images (first of each person with >= 2), mated probes, non-mated probes (people with one image))."""
    paths = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    by: dict[str, list[str]] = {}
    for p in paths:
        by.setdefault(Path(p).parent.name, []).append(p)
    enrol = [v[0] for v in by.values() if len(v) >= 2]
    probes = [x for v in by.values() if len(v) >= 2 for x in v[1:]]
    strangers = [v[0] for v in by.values() if len(v) == 1]
    return enrol, probes, strangers


def _ident_rates(
    gal: np.ndarray, gal_ids: list[str], probes: np.ndarray, probe_ids: list[str], strangers: np.ndarray
) -> dict[str, float]:
    s = probes @ gal.T
    best = np.argmax(s, axis=1)
    rank1 = float(np.mean([gal_ids[b] == t for b, t in zip(best, probe_ids, strict=True)]))
    mated_top = np.array([s[i, gal_ids.index(t)] for i, t in enumerate(probe_ids)])
    nm_top = np.max(strangers @ gal.T, axis=1)
    thr = float(np.quantile(nm_top, 0.99))  # FPIR = 1 %
    fnir = float(np.mean([(mated_top[i] < thr) or gal_ids[best[i]] != probe_ids[i] for i in range(len(probe_ids))]))
    return {"rank1_%": round(100 * rank1, 2), "fnir@fpir1e-2_%": round(100 * fnir, 2)}


def _migration(pairs: list[Any], vec: dict[str, dict[str, np.ndarray]], maps: dict[Any, Any]) -> dict[str, Any]:
    enrol, probes, strangers = _identities(pairs)
    gid = [Path(p).parent.name for p in enrol]
    pid = [Path(p).parent.name for p in probes]
    out: dict[str, Any] = {"enrolled": len(enrol), "mated_probes": len(probes), "nonmated_probes": len(strangers)}
    for src, dst in (("facenet", "dlib"), ("dlib", "facenet")):
        native = _ident_rates(
            np.stack([vec[dst][p] for p in enrol]),
            gid,
            np.stack([vec[dst][p] for p in probes]),
            pid,
            np.stack([vec[dst][p] for p in strangers]),
        )
        migrated = maps[(src, dst)].apply(np.stack([vec[src][p] for p in enrol]))
        mig = _ident_rates(
            migrated, gid, np.stack([vec[dst][p] for p in probes]), pid, np.stack([vec[dst][p] for p in strangers])
        )
        out[f"{src}->{dst}"] = {"native_" + dst: native, "migrated": mig}
    return out


def _screening(pairs: list[Any], vec: dict[str, dict[str, np.ndarray]], maps: dict[Any, Any]) -> dict[str, Any]:
    paths = sorted({str(p.a) for p in pairs} | {str(p.b) for p in pairs})
    out: dict[str, Any] = {"faces": len(paths)}
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(paths))
    for (src, dst), emap in maps.items():
        a = np.stack([vec[src][p] for p in paths])
        b = np.stack([vec[dst][p] for p in paths])
        r: dict[str, Any] = {}
        for q in (0.99, 0.999):
            for factor in (1.0, 1.5):
                flags, _ = emap.screen(a, b, quantile=q, factor=factor)
                # proxy for an input that one model sees differently: B sees another (random) face
                swapped, _ = emap.screen(a, b[perm], quantile=q, factor=factor)
                same = np.array([Path(paths[i]).parent.name == Path(paths[j]).parent.name for i, j in enumerate(perm)])
                r[f"q{q:g}x{factor:g}"] = {
                    "false_flag_%": round(100 * float(flags.mean()), 2),
                    "flags_other_face_%": round(100 * float(swapped[~same].mean()), 2),
                }
        out[f"{src}->{dst}"] = r
    return out


def _fusion_entry(fit: dict[str, Any], points: dict[str, Any]) -> dict[str, Any]:
    w = fit["weights"]
    return {
        "kind": "fusion",
        "version": "1",
        "files": [],
        "licence": "RESEARCH USE ONLY (its FaceNet member was trained on CASIA-WebFace)",
        "commercial_use": False,
        "default": False,
        "embedding_dim": 640,
        "description": "Score fusion of dlib-resnet-v1 and facenet-20180408 (logistic regression on LFW View 1 "
        "DevTrain): one 640-D embedding = both unit embeddings scaled by sqrt(weight); backend 'fused'.",
        "operating_points": points,
        "extra": {
            "backend": "fused",
            "method": fit["method"],
            "members": [
                {"backend": "dlib-resnet-onnx", "model": "dlib-resnet-v1", "weight": round(w[0], 6)},
                {"backend": "facenet", "model": "facenet-20180408", "weight": round(w[1], 6)},
            ],
            "llr": {"scale": round(fit["scale"], 6), "offset": round(fit["offset"], 6)},
            "trained_on": f"LFW View 1 pairsDevTrain.txt: {fit['n_mated']} mated pairs, "
            f"{fit['n_nonmated']} non-mated image pairs (sample)",
        },
    }


def cmd_migrate_time(args: argparse.Namespace) -> None:
    """Migration of an N-template SQLite gallery of synthetic 512-D vectors through a 512 → 128 map,
    against exporting the same gallery (a full read of every vector, written to one file) in the same run."""
    import tempfile

    from faceprint.gallery import open_gallery
    from faceprint.gallery.mapped import migrate_with_map
    from faceprint.mapping import fit_ridge
    from faceprint.pipeline import FacePipeline

    rng = np.random.default_rng(0)
    target = FacePipeline()  # dlib: the map's target model
    src_tag = "facenet-20180408@synthetic"
    x = rng.normal(size=(2000, 512)).astype(np.float32)
    emap = fit_ridge(
        x, x[:, :128] + 0.1 * rng.normal(size=(2000, 128)), source=src_tag, target=target.model_tag, alpha=1e-3
    )
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        g = open_gallery(str(Path(d) / "g"), create=True)
        vecs = rng.normal(size=(args.n, 512)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        t0 = time.perf_counter()
        for s in range(0, args.n, 10_000):
            g.enroll_many(
                [f"s{i:07d}" for i in range(s, min(s + 10_000, args.n))],
                vecs[s : s + 10_000],
                model=src_tag,
                batch_size=10_000,
            )
        getattr(g, "flush", lambda: None)()
        enrol_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        g.export(Path(d) / "export.npz")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = migrate_with_map(g, emap, target)
        getattr(g, "flush", lambda: None)()
        migrate_s = time.perf_counter() - t0
        assert rep.migrated == args.n
    print(
        f"{args.n} templates: enrol {enrol_s:.1f} s; export (peer) {export_s:.2f} s; "
        f"migrate --map {migrate_s:.2f} s = {migrate_s / export_s:.2f}x the export"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--threads", type=int, default=1)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("padding")
    p.add_argument("--pads", type=float, nargs="+", default=[0.25, 0.4, 0.55])
    p.add_argument("--pairs", type=int, default=300, help="mated and non-mated DevTrain pairs used")
    p.set_defaults(fn=cmd_padding)
    p = sub.add_parser("calibrate")
    p.add_argument("--write", action="store_true", help="store FaceNet's operating points in models.json")
    p.set_defaults(fn=cmd_calibrate)
    p = sub.add_parser("migrate-time")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--tmp", default=None, help="folder for the temporary gallery")
    p.set_defaults(fn=cmd_migrate_time)
    p = sub.add_parser("report")
    p.add_argument("--write", action="store_true", help="store the fused-dlib-facenet entry in models.json")
    p.set_defaults(fn=cmd_report)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.fn(args)


if __name__ == "__main__":
    main()
