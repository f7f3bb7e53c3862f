"""Template protection benchmark: accuracy per mode, unlinkability, and cost against the unprotected cosine.

1. Accuracy on LFW View 1 DevTest (500 mated + 500 non-mated pairs; dlib HOG, central face,
   dlib ResNet, 128-D): EER and FNMR at FMR 1e-2 for the unprotected cosine, and for each
   protection method with own keys (one key per subject; an impostor presents their own key)
   and with a stolen key (the impostor holds the victim's key). D<->sys of mated / non-mated
   templates under two applications' keys (Gomez-Barrero et al. 2018), its noise floor (two
   halves of the non-mated scores), the unprotected D<->sys, and the share of templates renewed
   under a new key that still match the old one at the own-key EER threshold.
2. Cost on this machine: protect per template (batch of all DevTest embeddings under one key,
   and one at a time), compare per comparison (1 against all), beside the unprotected cosine
   (1 against all) measured in the same run; medians of interleaved repeats.

Keys come from a fixed benchmark secret (not for use). The embeddings are kept only in memory
unless ``--cache DIR`` is given.

    nice python benchmarks/bench_protect.py --data ../shared/data [--cache /tmp/protect]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceprint.evaluation.cache import EmbeddingCache
from faceprint.evaluation.embedding import embed_protocol
from faceprint.evaluation.protection import evaluate_protection
from faceprint.evaluation.protocols import read_lfw_protocol
from faceprint.protection import derive_key
from faceprint.protection.biohash import fit_centre
from faceprint.registry import template_protectors

SECRET = "faceprint benchmark secret (not for use)"
HASHES = ("biohash", "iom")  # methods whose templates under two keys can be scored (unlinkability)
FMR = 1e-2  # 500 non-mated pairs: FMR 1e-3 rests on no observed false match


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def _embeddings(data: Path, cache: Path | None, split: str = "DevTest") -> tuple:
    proto = read_lfw_protocol(data / "lfw_view1" / f"pairs{split}.txt")
    store = None if cache is None else EmbeddingCache(cache)
    emb = embed_protocol(proto, None, store, workers=1)
    ka, kb = proto.side_keys()
    a, ok_a = emb.matrix(ka)
    b, ok_b = emb.matrix(kb)
    ok = ok_a & ok_b
    assert proto.subject_a is not None and proto.subject_b is not None
    return a[ok], b[ok], proto.mated[ok], proto.subject_a[ok], proto.subject_b[ok], int((~ok).sum()), emb.model


def train_images(data: Path, cache: Path | None) -> np.ndarray:
    """The embeddings of the distinct DevTrain images (identity-disjoint from DevTest)."""
    a, b, *_ = _embeddings(data, cache, "DevTrain")
    return np.unique(np.concatenate([a, b]), axis=0)


def accuracy(a, b, mated, sa, sb, centre) -> None:  # type: ignore[no-untyped-def]
    key = derive_key(SECRET, "bench")
    print(f"\n## Accuracy and unlinkability, {int(mated.sum())} mated + {int((~mated).sum())} non-mated pairs")
    print(f"| mode | EER | FNMR @ FMR {FMR:g} | D<->sys (two keys) | noise floor | renewed match | zero-effort |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    variants = [("biohash", {}), ("biohash", {"centre": centre}), ("iom", {})]
    for name, opts in variants:
        t = time.perf_counter()
        r = evaluate_protection(template_protectors.create(name, **opts), a, b, mated, sa, sb, key, target_fmr=FMR)
        took = time.perf_counter() - t
        if not opts and name == "biohash":
            u = r.accuracy["unprotected"]
            print(
                f"| unprotected (cosine) | {100 * u.eer:.2f} % | {100 * (u.fnmr or 0):.2f} % | "
                f"{r.unlinkability_unprotected.d_sys:.3f} | | | |"
            )
        for mode in ("own_key", "stolen_key"):
            m = r.accuracy[mode]
            link = (
                f"{r.unlinkability.d_sys:.3f} | {r.noise_floor:.3f} | {100 * r.renewed_match_rate:.2f} % | "
                f"{100 * r.zero_effort_rate:.2f} %"
                if mode == "own_key"
                else " | | | "
            )
            print(
                f"| {r.scheme} {mode.replace('_', ' ')} | {100 * m.eer:.2f} % | {100 * (m.fnmr or 0):.2f} % | {link} |"
            )
        logging.info("%s evaluated in %.1f s", name, took)


def cost(x: np.ndarray, repeats: int) -> None:
    key = derive_key(SECRET, "bench").child("cost")
    n = len(x)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    print(f"\n## Cost per template / comparison ({n} DevTest embeddings, median of {repeats} interleaved runs)")
    print("| operation | µs | × cosine 1:N per comparison |")
    print("|---|---:|---:|")
    protectors = {name: template_protectors.create(name) for name in HASHES}
    for p in protectors.values():
        p.protect(x[:1], key)  # the key's projection is built once, outside the timings
    rows: dict[str, list[float]] = {}
    for _ in range(repeats):
        rows.setdefault("cosine 1:N, per comparison", []).append(_median_time(lambda: xn @ xn[0], 1) / n)
        for name, p in protectors.items():
            t = p.protect(x, key)
            rows.setdefault(f"{name} protect, batch, per template", []).append(
                _median_time(lambda p=p: p.protect(x, key), 1) / n
            )
            rows.setdefault(f"{name} protect, one template", []).append(
                _median_time(lambda p=p: p.protect(x[:1], key), 1)
            )
            rows.setdefault(f"{name} compare 1:N, per comparison", []).append(
                _median_time(lambda p=p, t=t: p.compare(t[0], t), 1) / n
            )
    peer = float(np.median(rows["cosine 1:N, per comparison"]))
    for what, v in rows.items():
        med = float(np.median(v))
        print(f"| {what} | {1e6 * med:.3f} | {med / peer:.1f} |")


def ckks(a, b, mated, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """CKKS against plaintext cosine on every pair, and encrypted 1:1 latency beside the cosine."""
    try:
        p = template_protectors.create("ckks")
    except Exception as exc:  # TenSEAL absent: say so, measure the rest
        print(f"\n## CKKS: not measured ({exc})")
        return
    key = derive_key(SECRET, "bench").child("ckks")
    t0 = time.perf_counter()
    ta, tb = p.protect(a, key), p.protect(b, key)
    t_protect = (time.perf_counter() - t0) / (2 * len(a))
    t0 = time.perf_counter()
    enc = p.compare(ta, tb)
    t_compare = (time.perf_counter() - t0) / len(a)
    plain = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)
    thr = float(np.median(plain))
    agree = int(np.sum((enc >= thr) == (plain >= thr)))
    peer = _median_time(lambda: float(a[0].astype(np.float64) @ b[0].astype(np.float64)), repeats)
    print(f"\n## CKKS (TenSEAL, N = 8192), {len(a)} DevTest pairs")
    print(f"max |encrypted - plaintext score| = {np.max(np.abs(enc - plain)):.2e}; decisions equal at the median")
    print(f"threshold on {agree} of {len(a)} pairs")
    print(f"encrypt per template {1e3 * t_protect:.2f} ms; encrypted 1:1 compare + decrypt {1e3 * t_compare:.2f} ms")
    print(f"(plaintext cosine 1:1 in the same run: {1e6 * peer:.2f} µs; ratio {t_compare / peer:.0f}x)")


def search(n: int, repeats: int, ckks_n: int) -> None:
    """1:N search at ``n`` protected templates, the way a protected gallery searches (gallery/protected.py),
    beside the plain faiss float search (IndexFlatIP) of the same vectors in the same run."""
    import faiss

    from faceprint.gallery.protected_search import ProtectedIndex as _Index

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    probes = x[rng.choice(n, repeats, replace=False)] + 0.05 * rng.standard_normal((repeats, 128)).astype(np.float32)
    key = derive_key(SECRET, "bench").child("search")
    owners, names = np.arange(n, dtype=np.int64), {i: f"s{i}" for i in range(n)}
    flat = faiss.IndexFlatIP(128)
    flat.add(x)
    idx = {}
    for name in HASHES:
        p = template_protectors.create(name)
        t0 = time.perf_counter()
        idx[name] = (p, _Index(p, p.protect(x, key), owners, names))
        logging.info("%s: protected and indexed %d templates in %.1f s", name, n, time.perf_counter() - t0)
    times: dict[str, list[float]] = {}
    for q in probes:
        t = time.perf_counter()
        flat.search(q[None], 10)
        times.setdefault("plain faiss IndexFlatIP (float32), k=10", []).append(time.perf_counter() - t)
        for name, (p, index) in idx.items():
            pt = p.protect(q[None], key)
            t = time.perf_counter()
            index.rank(pt, 10)
            what = f"{name}: faiss IndexBinaryFlat + ranking by subject (gallery/protected.py)"
            times.setdefault(what, []).append(time.perf_counter() - t)
    peer = float(np.median(times["plain faiss IndexFlatIP (float32), k=10"]))
    print(f"\n## 1:N search at {n:,} templates (random 128-D unit vectors; {repeats} probes, one at a time)")
    print("| search | p50 ms | p95 ms | × plain float search |")
    print("|---|---:|---:|---:|")
    for what, v in times.items():
        med = float(np.median(v))
        print(f"| {what} | {1e3 * med:.2f} | {1e3 * float(np.percentile(v, 95)):.2f} | {med / peer:.3f} |")
    if ckks_n <= 0:
        return
    try:
        from faceprint.protection.ckks import encrypted_scores

        p = template_protectors.create("ckks")
    except Exception as exc:
        print(f"CKKS 1:N: not measured ({exc})")
        return
    ck = derive_key(SECRET, "bench").child("ckks-search")
    refs = p.protect(x[:ckks_n], ck)
    probe = p.protect(probes[:1], ck)
    public = p.public_context(ck)
    t = time.perf_counter()
    enc = encrypted_scores(public, probe.data[0], list(refs.data))
    t_server = time.perf_counter() - t
    t = time.perf_counter()
    dec = np.array([p.decrypt(probe, e) for e in enc])
    t_dec = time.perf_counter() - t
    plain = x[:ckks_n].astype(np.float64) @ probes[0].astype(np.float64)
    t = time.perf_counter()
    flat.search(probes[:1], 10)
    t_peer = time.perf_counter() - t
    print(
        f"\nCKKS 1:N, {ckks_n} encrypted templates, one encrypted probe: server scan {t_server:.2f} s "
        f"({ckks_n / t_server:.0f} templates/s), key holder's decryption {t_dec:.2f} s ({ckks_n / t_dec:.0f} /s); "
        f"max |Δscore| {np.max(np.abs(dec - plain)):.1e}; the plain float search of {n:,} took {1e3 * t_peer:.2f} ms"
    )


def thresholds(data: Path, cache: Path | None) -> None:
    """The decision thresholds of protected galleries (gallery/protected.py DEFAULT_THRESHOLDS): the EER
    threshold on DevTrain with every template under one key (a gallery's templates share its key)."""
    from faceprint.rates import eer

    a, b, mated, *_ = _embeddings(data, cache, "DevTrain")
    key = derive_key(SECRET, "bench").child("thresholds")
    centre = fit_centre(np.unique(np.concatenate([a, b]), axis=0))
    print(
        f"\n## Gallery thresholds: EER threshold on DevTrain, one key ({int(mated.sum())} + {int((~mated).sum())} "
        "pairs)"
    )
    print("| method | EER | threshold |")
    print("|---|---:|---:|")
    for label, name, opts in [
        ("biohash (centred)", "biohash", {"centre": centre}),
        ("biohash-uncentred", "biohash", {}),
        ("iom", "iom", {}),
    ]:
        p = template_protectors.create(name, **opts)
        s = p.compare(p.protect(a, key), p.protect(b, key))
        e = eer(s[mated], s[~mated])
        print(f"| {label} | {100 * e.eer:.2f} % | {e.threshold:.4f} |")
    s = np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)  # ckks decrypts the plain inner product
    e = eer(s[mated], s[~mated])
    print(f"| ckks (plain inner product) | {100 * e.eer:.2f} % | {e.threshold:.4f} |")


def inversion(data: Path, cache: Path | None, regressors: list[str]) -> None:
    """The inversion attack: the attacker holds the victim's key and the DevTrain images (identity-disjoint
    from DevTest), learns protected template -> embedding, and attacks the 500 mated DevTest pairs."""
    from faceprint.evaluation.protection import inversion_attack, protocol_images

    train, subjects = protocol_images(
        "lfw",
        str(data / "lfw_view1"),
        pairs=str(data / "lfw_view1" / "pairsDevTrain.txt"),
        cache=None if cache is None else EmbeddingCache(cache),
    )
    a, b, mated, *_ = _embeddings(data, cache)
    key = derive_key(SECRET, "bench").child("inversion")
    print(
        f"\n## Inversion attack ({len(train)} DevTrain images as the attacker's data, {int(mated.sum())} DevTest "
        "victims)"
    )
    print(
        "| method | regressor | success (protected) | success (unprotected, same threshold) | mean cosine | threshold |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for label, name, opts in [
        ("biohash (centred)", "biohash", {"centre": fit_centre(train)}),
        ("biohash-uncentred", "biohash", {}),
        ("iom", "iom", {}),
    ]:
        for reg in regressors:
            t = time.perf_counter()
            r = inversion_attack(
                template_protectors.create(name, **opts), key, train, subjects, a[mated], b[mated], regressor=reg
            )
            logging.info("%s %s in %.1f s", label, reg, time.perf_counter() - t)
            print(
                f"| {label} | {reg} | {100 * r.success_rate:.1f} % | {100 * r.success_rate_unprotected:.1f} % | "
                f"{r.mean_cosine:.3f} | {r.threshold:.4f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=None, help="embedding cache (default: none, nothing written)")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--search-n", type=int, default=100_000, help="templates of the 1:N search section")
    ap.add_argument("--ckks-n", type=int, default=1000, help="encrypted templates of the CKKS 1:N section")
    ap.add_argument("--only", choices=["search", "thresholds", "inversion"], default=None, help="run only this section")
    ap.add_argument("--regressor", action="append", default=None, help="inversion regressors (ridge, mlp)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.only == "search":
        search(args.search_n, max(args.repeats, 50), args.ckks_n)
        return
    if args.only == "thresholds":
        thresholds(args.data, args.cache)
        return
    if args.only == "inversion":
        inversion(args.data, args.cache, args.regressor or ["ridge"])
        return
    a, b, mated, sa, sb, dropped, model = _embeddings(args.data, args.cache)
    train = train_images(args.data, args.cache)
    print(f"# Template protection on LFW View 1 DevTest ({model}; {dropped} pairs without a face left out)")
    print(f"(biohash centre: mean of {len(train)} DevTrain images; centre(...) in the scheme names it)")
    accuracy(a, b, mated, sa, sb, fit_centre(train))
    thresholds(args.data, args.cache)
    inversion(args.data, args.cache, args.regressor or ["ridge"])
    cost(np.concatenate([a, b]), args.repeats)
    ckks(a, b, mated, args.repeats)
    search(args.search_n, max(args.repeats, 50), args.ckks_n)


if __name__ == "__main__":
    main()
