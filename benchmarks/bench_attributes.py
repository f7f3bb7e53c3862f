"""Attributes: the gender model's error on labelled LFW View 1 images, and attribute cost per face.

1. Gender error: every image of ``lfw_view1/lfw_gender.csv`` (4,990 apparent-gender labels,
   Afifi & Abdelhamed 2017; see the data README), central face by dlib's HOG detector (faces it
   misses are counted, not scored). Error overall and per labelled class with Clopper-Pearson 95 %
   intervals. Age has no labels here: its error is not measured.
2. Cost per face on one core (ONNX Runtime one thread): ``dlib-age-gender`` (both chips + both
   networks) against one embedding of the same face with dlib's ResNet, in the same run.

``--update-manifest`` writes the measured gender error into ``faceprint/data/models.json``
(``dlib-gender-v1`` → ``extra.measured_error``), where reports and model cards read it.

    nice python benchmarks/bench_attributes.py --data ../shared/data --cache /tmp/attrcards --update-manifest
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from faceprint.io import load_image
from faceprint.pipeline import select_faces
from faceprint.rates import clopper_pearson
from faceprint.registry import attribute_estimators, detectors, embedders


def _estimates(data: Path, cache: Path, limit: int | None) -> tuple[list[str], list[str], np.ndarray]:
    """(image keys, labels, p_female per image (NaN: no face)), cached in ``cache``."""
    rows = list(csv.DictReader(open(data / "lfw_view1" / "lfw_gender.csv", encoding="utf-8")))[:limit]
    keys = [r["image"] for r in rows]
    labels = [r["gender"] for r in rows]
    f = cache / f"gender_{len(keys)}.npz"
    if f.is_file():
        z = np.load(f)
        if list(z["keys"]) == keys:
            return keys, labels, z["p_female"]
    det = detectors.create("dlib-hog")
    est = attribute_estimators.create("dlib-age-gender")
    p = np.full(len(keys), np.nan)
    age = np.full(len(keys), np.nan)
    for i, k in enumerate(keys):
        img = load_image(data / "lfw_view1" / k)
        faces = select_faces([d for d in det.detect(img) if d.landmarks is not None], img.shape, "central")
        if faces:
            e = est.estimate(img, faces[0])
            p[i], age[i] = e.p_female, e.age
        if i % 500 == 0:
            print(f"  {i}/{len(keys)}", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, keys=np.array(keys), p_female=p, age=age)
    return keys, labels, p


def gender_error(data: Path, cache: Path, limit: int | None) -> dict:
    keys, labels, p = _estimates(data, cache, limit)
    y = np.array(labels)
    ok = ~np.isnan(p)
    pred = np.where(p > 0.5, "female", "male")
    out: dict = {
        "data": "LFW View 1 images with lfw_gender.csv apparent-gender labels (Afifi & Abdelhamed 2017)",
        "detector": "dlib-hog, central face",
        "images": len(keys),
        "no_face": int((~ok).sum()),
    }
    groups = {"all": ok, **{g: ok & (y == g) for g in ("female", "male")}}
    for name, m in groups.items():
        n, k = int(m.sum()), int((pred[m] != y[m]).sum())
        lo, hi = clopper_pearson(np.array([k]), np.array([n]), 0.95)
        out["error" if name == "all" else f"error_{name}"] = {
            "rate": k / n,
            "errors": k,
            "n": n,
            "ci95": [float(lo[0]), float(hi[0])],
        }
    return out


def cost(data: Path, repeat: int) -> dict:
    det = detectors.create("dlib-hog")
    est = attribute_estimators.create("dlib-age-gender", threads=1)
    emb = embedders.create("dlib-resnet-onnx", threads=1) if "dlib-resnet-onnx" in embedders.names() else None
    emb = emb or embedders.create("dlib-resnet")
    imgs = sorted((data / "lfw_view1").glob("A*/*.jpg"))[:64]
    faces = []
    for f in imgs:
        img = load_image(f)
        d = select_faces(det.detect(img), img.shape, "central")
        if d:
            faces.append((img, d[0]))
    from faceprint.alignment import align

    aligned = [align(i, d, "dlib150") for i, d in faces]

    def t_attr() -> None:
        est.estimate_batch([i for i, _ in faces], [d for _, d in faces], aligned)

    def t_emb() -> None:
        emb.embed([a.image for a in aligned])

    chips = [est.chips(i, d, a) for (i, d), a in zip(faces, aligned, strict=True)]
    g, ag = np.stack([c[0] for c in chips]), np.stack([c[1] for c in chips])

    def t_chips() -> None:
        [est.chips(i, d, a) for (i, d), a in zip(faces, aligned, strict=True)]

    res = {}
    parts = (
        ("attributes", t_attr),
        ("embedding", t_emb),
        ("chips", t_chips),
        ("gender_network", lambda: est._run(est._gender, g)),
        ("age_network", lambda: est._run(est._age, ag)),
    )
    for name, fn in parts:
        fn()
        best = min(_timed(fn) for _ in range(repeat))
        res[name] = 1000 * best / len(faces)
    res["faces"] = len(faces)
    res["ratio_attributes_to_embedding"] = res["attributes"] / res["embedding"]
    return res


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def update_manifest(err: dict, command: str) -> None:
    import faceprint

    p = Path(faceprint.__file__).parent / "data" / "models.json"
    text = p.read_text("utf-8")
    doc = json.loads(text)
    for m in doc["models"]:
        if m["name"] == "dlib-gender-v1":
            m.setdefault("extra", {})["measured_error"] = {**err, "command": command}
    p.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/attrcards"))
    ap.add_argument("--limit", type=int, default=None, help="first N labelled images only")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--update-manifest", action="store_true")
    a = ap.parse_args()
    err = gender_error(a.data, a.cache, a.limit)
    print(json.dumps({"gender_error": err}, indent=1))
    c = cost(a.data, a.repeat)
    print(
        f"cost per face (one core, {c['faces']} LFW faces): attributes {c['attributes']:.2f} ms "
        f"(chips {c['chips']:.2f}, gender network {c['gender_network']:.2f}, age network {c['age_network']:.2f}); "
        f"dlib ResNet embedding {c['embedding']:.2f} ms (peer, same run); "
        f"ratio {c['ratio_attributes_to_embedding']:.3f}"
    )
    if a.update_manifest:
        update_manifest(err, "python benchmarks/bench_attributes.py --data ../shared/data --update-manifest")


if __name__ == "__main__":
    main()
