"""faceprint vs the ``face_recognition`` package on LFW View 1: speed and accuracy, same run.

What is measured, on the images named by ``pairsDevTrain.txt`` and ``pairsDevTest.txt``:

1. End-to-end throughput (file path → embedding of the main face), wall clock, models built
   and warmed up before timing:

   * face_recognition 1.3.0 with its defaults, in one process as users run it:
     ``load_image_file`` + ``face_encodings(img)`` (HOG, upsample 1, 5-point landmarks,
     dlib ResNet, 1 jitter), first encoding kept;
   * faceprint ``FacePipeline().embed_many(paths, select="largest", workers=<cores>)`` with its
     defaults (HOG→MMOD fallback detector, ``dlib-resnet-onnx`` embedder);
   * the same with ``workers=1``, so the single-process gain is visible.

   ``embed_many`` with several workers starts its worker processes (which load their models)
   inside the call; that start-up is reported separately and also excluded, by timing from the
   first result to the last (the rate then covers all images but the first chunk).

2. Per-face embedding time on the same aligned 150×150 chips (from faceprint's
   ``align(img, detection, "dlib150")``): dlib's ``face_recognition_model_v1
   .compute_face_descriptor`` one chip at a time vs faceprint's ``dlib-resnet-onnx`` embedder
   at batch 32, with 1 thread and with all cores.

3. Verification on ``pairsDevTest.txt`` with thresholds chosen on ``pairsDevTrain.txt``:
   face_recognition's score is the negative euclidean distance of its encodings (its fixed
   default tolerance 0.6 is reported too), faceprint's is cosine similarity. Accuracy at the
   threshold maximising DevTrain accuracy; EER on DevTest; FMR/FNMR on DevTest at the DevTrain
   FMR=1e-3 threshold (DevTrain has 1,100 non-mated pairs, so that threshold rests on ~1 false
   match: treat it as indicative). An image where a system finds no face counts as a failure to
   acquire, and every pair that uses it is decided as a non-match (score −inf; a finite
   sentinel below every real score in the EER/threshold code).

4. ``--cli``: the command line as a user runs it, start-up included (imports, model load,
   worker start): ``faceprint embed DIR -o x.npz`` on 120 images (the first image of each of the
   first 120 people of the View 1 folder) and on 1,000 (first 1,000 people), against
   face_recognition's loop (``import face_recognition``; ``face_encodings(load_image_file(p))``
   per image) run as a script in the same way, for the default pipeline and for
   ``--detector yunet`` (needs ``yunet/yunet_s_dynamic.onnx`` in ``$FACEPRINT_MODEL_DIR``,
   default ``../shared/models``). Each command runs in a fresh process; wall time and the CPU
   time of the process and its children are reported, with the cores other programs used
   meanwhile. faceprint runs twice per set: with its default worker choice, and ``--workers 1``
   (one process). Per-image CPU without start-up is the difference between the 1,000- and the
   120-image runs divided by 880.

Setup (benchmark only, not a faceprint dependency; see ``benchmarks/requirements.txt``)::

    pip install --no-deps face_recognition==1.3.0
    # face_recognition_models imports pkg_resources: if ``import face_recognition`` fails
    # for that reason, also: pip install "setuptools<81"

Usage::

    python benchmarks/bench_lfw.py --out benchmarks/results/lfw.json          # full run, ~15-20 min on 2 idle cores
    python benchmarks/bench_lfw.py --limit 100 --out /tmp/lfw_quick.json      # quick check
    python benchmarks/bench_lfw.py --cli --out benchmarks/results/lfw_cli.json  # only the CLI rows, ~10 min
    python benchmarks/bench_lfw.py --blank                                      # worst case: a face-less image
    python benchmarks/bench_lfw.py --startup 5 --baseline-src ../main/src       # command to first result

``--limit N`` keeps the first N/2 mated and N/2 non-mated pairs of each pair file.
The data folder defaults to ``$FACEPRINT_TEST_DATA/lfw_view1`` (``../shared/data`` from the
project root).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SENTINEL = -1e6  # stands for −inf (no face) where the scoring code needs finite numbers


# --- LFW pair files --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    mated: bool


def lfw_path(root: Path, name: str, n: int | str) -> str:
    return str(root / name / f"{name}_{int(n):04d}.jpg")


def read_pairs(path: Path, root: Path, limit: int | None = None) -> list[Pair]:
    """Parse an LFW View 1 pair file: a count line, then ``name n1 n2`` or ``name1 n1 name2 n2``."""
    lines = path.read_text().splitlines()
    declared = int(lines[0].split()[0])
    pairs: list[Pair] = []
    for ln in lines[1:]:
        f = ln.split()
        if not f:
            continue
        if len(f) == 3:
            pairs.append(Pair(lfw_path(root, f[0], f[1]), lfw_path(root, f[0], f[2]), True))
        elif len(f) == 4:
            pairs.append(Pair(lfw_path(root, f[0], f[1]), lfw_path(root, f[2], f[3]), False))
        else:
            raise ValueError(f"{path}: unexpected line {ln!r}")
    n_m = sum(p.mated for p in pairs)
    if n_m != declared or len(pairs) - n_m != declared:
        raise ValueError(f"{path}: header says {declared} of each, found {n_m} mated, {len(pairs) - n_m} non-mated")
    if limit is not None:
        half = max(1, limit // 2)
        pairs = [p for p in pairs if p.mated][:half] + [p for p in pairs if not p.mated][:half]
    return pairs


def unique_images(*pair_lists: Sequence[Pair]) -> list[str]:
    seen: dict[str, None] = {}
    for pairs in pair_lists:
        for p in pairs:
            seen.setdefault(p.a)
            seen.setdefault(p.b)
    return list(seen)


# --- verification figures ----------------------------------------------------------------------


def pair_scores(pairs: Sequence[Pair], emb: dict[str, np.ndarray | None], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) scores; a pair with a missing face gets SENTINEL (= non-match)."""
    g: list[float] = []
    i: list[float] = []
    for p in pairs:
        ea, eb = emb.get(p.a), emb.get(p.b)
        if ea is None or eb is None:
            s = SENTINEL
        elif kind == "neg_euclidean":
            s = -float(np.linalg.norm(ea - eb))
        else:  # cosine
            s = float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb)))
        (g if p.mated else i).append(s)
    return np.array(g), np.array(i)


def accuracy_at(g: np.ndarray, i: np.ndarray, t: float) -> float:
    return float((np.sum(g >= t) + np.sum(i < t)) / (g.size + i.size))


def best_accuracy_threshold(g: np.ndarray, i: np.ndarray) -> tuple[float, float]:
    """Threshold maximising accuracy (midpoint between neighbouring scores) and that accuracy."""
    s = np.unique(np.concatenate([g, i]))
    cands = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2.0, [s[-1] + 1e-6]])
    gs, is_ = np.sort(g), np.sort(i)
    tp = g.size - np.searchsorted(gs, cands, side="left")  # genuine >= t
    tn = np.searchsorted(is_, cands, side="left")  # impostor < t
    acc = (tp + tn) / (g.size + i.size)
    k = int(np.argmax(acc))
    return float(cands[k]), float(acc[k])


def verification(
    train: Sequence[Pair],
    test: Sequence[Pair],
    emb: dict[str, np.ndarray | None],
    kind: str,
    fixed: dict[str, float] | None = None,
) -> dict[str, Any]:
    from faceprint.scoring import eer, fmr_fnmr, threshold_at_fmr

    gtr, itr = pair_scores(train, emb, kind)
    gte, ite = pair_scores(test, emb, kind)
    t_acc, acc_train = best_accuracy_threshold(gtr, itr)
    rate, t_eer = eer(gte, ite)
    t_fmr = threshold_at_fmr(itr, 1e-3)
    fm, fn = fmr_fnmr(gte, ite, t_fmr)
    out: dict[str, Any] = {
        "score": kind,
        "pairs_train": len(train),
        "pairs_test": len(test),
        "pairs_test_without_face": int(np.sum(gte == SENTINEL) + np.sum(ite == SENTINEL)),
        "threshold_acc_from_train": t_acc,
        "accuracy_train": acc_train,
        "accuracy_test": accuracy_at(gte, ite, t_acc),
        "eer_test": rate,
        "eer_threshold_test": t_eer,
        "threshold_fmr1e-3_from_train": t_fmr,
        "fmr_test_at_train_fmr1e-3": fm,
        "fnmr_test_at_train_fmr1e-3": fn,
    }
    for name, t in (fixed or {}).items():
        out[f"accuracy_test_{name}"] = accuracy_at(gte, ite, t)
        out[f"accuracy_train_{name}"] = accuracy_at(gtr, itr, t)
    return out


# --- measuring a phase ------------------------------------------------------------------------------


class Meter:
    """Wall time, CPU time of this process and its descendants, and CPU used by everything else.

    Other programs running on the machine during a timed phase slow it down; ``other_cores`` (the
    machine's busy CPU-seconds minus ours, per wall second) says how much. CPU time per image is
    much less sensitive to such contention than wall time. Needs psutil for the descendants and
    the machine-wide figures (present in faceprint's dev environment); without it only wall and
    own CPU time are reported.
    """

    def __init__(self) -> None:
        try:
            import psutil
        except ImportError:  # pragma: no cover
            psutil = None
        self._ps = psutil
        self._kids: dict[int, float] = {}

    def _busy(self) -> float:
        if self._ps is None:
            return math.nan
        t = self._ps.cpu_times()
        return float(
            sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        )

    def sample(self) -> None:
        """Record the CPU time of descendant processes (call while they are alive)."""
        if self._ps is None:
            return
        for k in self._ps.Process().children(recursive=True):
            try:
                c = k.cpu_times()
            except self._ps.Error:
                continue
            self._kids[k.pid] = max(self._kids.get(k.pid, 0.0), c.user + c.system)

    def __enter__(self) -> Meter:
        self.sample()
        self._kids0 = dict(self._kids)
        self._load0 = os.getloadavg()[0]
        self._busy0 = self._busy()
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        own = time.process_time() - self._cpu0
        self.sample()
        kids = sum(v - self._kids0.get(pid, 0.0) for pid, v in self._kids.items())
        self.cpu = own + kids
        self.other_cores = (self._busy() - self._busy0 - self.cpu) / self.wall
        self.load = (self._load0, os.getloadavg()[0])

    def figures(self, images: int) -> dict[str, Any]:
        return {
            "cpu_s": self.cpu,
            "cpu_ms_per_image": self.cpu / images * 1e3,
            "other_processes_cores": self.other_cores,
            "loadavg1_start_end": list(self.load),
        }


def contention_note(m: dict[str, Any]) -> str:
    oc = m.get("other_processes_cores", math.nan)
    flag = "  <-- other programs were busy: wall times are inflated" if oc > 0.15 else ""
    return f"cpu {m['cpu_ms_per_image']:.1f} ms/img; other processes used {oc:.2f} cores{flag}"


# --- the systems ----------------------------------------------------------------------------------


def run_face_recognition(paths: Sequence[str], warmup: Sequence[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    import face_recognition as fr  # loads its models at import

    load_s = time.perf_counter() - t0
    for p in warmup:
        fr.face_encodings(fr.load_image_file(p))
    emb: dict[str, np.ndarray | None] = {}
    with Meter() as m:
        for p in paths:
            encs = fr.face_encodings(fr.load_image_file(p))
            emb[p] = np.asarray(encs[0], dtype=np.float64) if encs else None
    wall = m.wall
    no_face = [p for p, e in emb.items() if e is None]
    return {
        "images": len(paths),
        "wall_s": wall,
        "images_per_s": len(paths) / wall,
        **m.figures(len(paths)),
        "model_load_s": load_s,
        "no_face": len(no_face),
        "no_face_images": no_face,
        "_emb": emb,
    }


def run_faceprint(pipe: Any, paths: Sequence[str], workers: int, chunk_size: int) -> dict[str, Any]:
    stamps: list[tuple[float, int]] = []
    emb: dict[str, np.ndarray | None] = {}
    errors: dict[str, str] = {}
    by_detector: dict[str, int] = {}
    meter = Meter()

    def progress(done: int, total: int | None) -> None:
        stamps.append((time.perf_counter(), done))
        if workers > 1:
            meter.sample()  # worker CPU time, read while the workers are alive

    with meter:
        t0 = time.perf_counter()
        stream = pipe.embed_many(paths, select="largest", workers=workers, chunk_size=chunk_size, progress=progress)
        for p, r in zip(paths, stream, strict=True):  # results come in input order
            if r.error is not None:
                errors[p] = f"{type(r.error).__name__}: {r.error}"
            if r.faces:
                f = r.faces[0]
                emb[p] = np.asarray(f.embedding.vector, dtype=np.float64)
                by_detector[f.detection.detector] = by_detector.get(f.detection.detector, 0) + 1
            else:
                emb[p] = None
    wall = meter.wall
    out: dict[str, Any] = {
        "images": len(paths),
        "workers": workers,
        "chunk_size": chunk_size,
        "wall_s": wall,
        "images_per_s": len(paths) / wall,
        **meter.figures(len(paths)),
        "no_face": sum(e is None for e in emb.values()),
        "no_face_images": [p for p, e in emb.items() if e is None],
        "errors": errors,
        "faces_by_detector": by_detector,
        "_emb": emb,
    }
    if stamps and len(stamps) > 1:
        (t1, d1), (t2, d2) = stamps[0], stamps[-1]
        out["first_result_s"] = t1 - t0
        out["images_per_s_after_first_chunk"] = (d2 - d1) / (t2 - t1)
    return out


def per_face_timing(paths: Sequence[str], n_chips: int, batch: int, threads_all: int) -> dict[str, Any]:
    import dlib

    from faceprint.alignment import align
    from faceprint.io import load_image
    from faceprint.models import model_path
    from faceprint.registry import detectors, embedders

    det: Any = detectors.create("dlib-hog-mmod")
    chips: list[np.ndarray] = []
    for p in paths:
        img = load_image(p)
        d = det.detect(img)
        if d:
            chips.append(align(img, max(d, key=lambda x: x.bbox.area), "dlib150").image)
        if len(chips) >= n_chips:
            break
    n = len(chips)
    out: dict[str, Any] = {"chips": n, "batch_size": batch}

    net = dlib.face_recognition_model_v1(str(model_path("dlib-resnet-v1")))
    for c in chips[:3]:
        net.compute_face_descriptor(c)
    with Meter() as m:
        ref = np.array([np.asarray(net.compute_face_descriptor(c)) for c in chips], dtype=np.float32)
    out["dlib_ms_per_face"] = m.wall / n * 1e3
    out["dlib_other_processes_cores"] = m.other_cores
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)

    for label, threads in (("onnx_1thread", 1), (f"onnx_{threads_all}threads", threads_all)):
        try:
            emb: Any = embedders.create("dlib-resnet-onnx", threads=threads, batch_size=batch)
        except Exception as exc:  # noqa: BLE001 - report and go on; the backend may be unfinished
            out[label] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        emb.embed(chips[:batch])  # warm-up
        with Meter() as m:
            v = emb.embed(chips)
        ms = m.wall / n * 1e3
        cos = np.sum(v * ref, axis=1)
        out[label] = {
            "threads": threads,
            "ms_per_face": ms,
            "ratio_vs_dlib": ms / out["dlib_ms_per_face"],
            "min_cosine_vs_dlib": float(cos.min()),
            "max_abs_diff_vs_dlib": float(np.abs(v - ref).max()),
            "other_processes_cores": m.other_cores,
        }
    return out


# --- the command line, start-up included ---------------------------------------------------------

FR_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
import face_recognition as fr
paths = sorted(str(p) for p in Path(sys.argv[1]).iterdir())
vecs = []
for p in paths:
    encs = fr.face_encodings(fr.load_image_file(p))
    vecs.extend(encs)
np.save(sys.argv[2], np.array(vecs))
print(len(paths), "images", len(vecs), "faces")
"""


def image_set(root: Path, n: int, dest: Path) -> Path:
    """A folder of links to the first image of each of the first ``n`` people (sorted)."""
    dest.mkdir(parents=True, exist_ok=True)
    people = sorted(p for p in root.iterdir() if p.is_dir())[:n]
    if len(people) < n:
        raise SystemExit(f"{root} has only {len(people)} people; {n} needed")
    for person in people:
        first = sorted(person.glob("*.jpg"))[0]
        link = dest / first.name
        if not link.exists():
            link.symlink_to(first)
    return dest


def run_command(cmd: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall and CPU time of one command and every process it starts.

    CPU: the larger of the rusage of the waited-for children and the sum over every descendant
    sampled every 50 ms with psutil (worker processes started by a forkserver are not children
    of the command and may never be waited for by it, so rusage alone can miss them).
    """
    import resource
    import subprocess

    import psutil

    m = Meter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = m._busy()
    seen: dict[int, float] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                c = p.cpu_times()
            except psutil.Error:
                continue
            seen[p.pid] = max(seen.get(p.pid, 0.0), c.user + c.system)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(waited, sum(seen.values()))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr[-2000:]}")
    return {
        "command": " ".join(cmd),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_waited_s": waited,
        "cpu_sampled_s": sum(seen.values()),
        "processes": len(seen),
        "other_processes_cores": (m._busy() - busy0 - cpu) / wall,
        "output": (stdout + stderr).strip().splitlines()[-1:],
    }


def cli_rows(data: Path, tmp: Path, sizes: Sequence[int], model_dir: Path) -> dict[str, Any]:
    py = sys.executable
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("FACEPRINT_MODEL_DIR", str(model_dir))
    systems: dict[str, list[str]] = {
        "faceprint": [],
        "faceprint_1proc": ["--workers", "1"],
        "faceprint_yunet": ["--detector", "yunet"],
        "faceprint_yunet_1proc": ["--detector", "yunet", "--workers", "1"],
    }
    out: dict[str, Any] = {}
    for n in sizes:
        folder = image_set(data, n, tmp / f"lfw{n}")
        row: dict[str, Any] = {"images": n}
        row["face_recognition"] = run_command([py, "-c", FR_SCRIPT, str(folder), str(tmp / f"fr{n}.npy")], env)
        for name, extra in systems.items():
            cmd = [py, "-m", "faceprint", "embed", str(folder), "-o", str(tmp / f"{name}{n}.npz"), *extra]
            row[name] = run_command(cmd, env)
        fr = row["face_recognition"]
        for name in systems:
            r = row[name]
            r["wall_ratio_vs_fr"] = fr["wall_s"] / r["wall_s"]
            r["cpu_ratio_vs_fr"] = fr["cpu_s"] / r["cpu_s"]
            print(
                f"  {n:5d} images  {name:22s} wall {r['wall_s']:6.2f} s vs {fr['wall_s']:6.2f} s "
                f"= {r['wall_ratio_vs_fr']:5.2f}x   cpu {r['cpu_s']:6.2f} s vs {fr['cpu_s']:6.2f} s "
                f"= {r['cpu_ratio_vs_fr']:5.2f}x   (others used {r['other_processes_cores']:.2f} cores; "
                f"face_recognition's run {fr['other_processes_cores']:.2f})"
            )
        out[str(n)] = row
    if len(sizes) == 2:  # marginal CPU per image, start-up removed
        a, b = (out[str(n)] for n in sorted(sizes))
        dn = max(sizes) - min(sizes)
        marginal = {k: (b[k]["cpu_s"] - a[k]["cpu_s"]) / dn * 1e3 for k in ("face_recognition", *systems)}
        out["cpu_ms_per_image_without_startup"] = marginal
        out["startup_cpu_s"] = {
            k: a[k]["cpu_s"] - marginal[k] * min(sizes) / 1e3 for k in ("face_recognition", *systems)
        }
        fr_ms = marginal["face_recognition"]
        for k in systems:
            print(
                f"  per image, start-up removed: {k:22s} {marginal[k]:6.1f} ms CPU vs face_recognition "
                f"{fr_ms:6.1f} ms = {fr_ms / marginal[k]:5.2f}x; start-up {out['startup_cpu_s'][k]:.2f} s CPU "
                f"(face_recognition {out['startup_cpu_s']['face_recognition']:.2f} s)"
            )
    return out


# --- start-up: command to first result ----------------------------------------------------------

FR_VERIFY = """
import sys
import face_recognition as fr
a, b = (fr.face_encodings(fr.load_image_file(p))[0] for p in sys.argv[1:3])
print(bool(fr.compare_faces([a], b)[0]))
"""


def startup_rows(a: Path, b: Path, repeat: int, baseline_src: Path | None) -> dict[str, Any]:
    """``faceprint verify a b`` in a fresh process (this tree, and ``baseline_src`` if given)
    against face_recognition's two encodings and compare, alternated, median of ``repeat``."""
    py = sys.executable
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1] / "src")
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {
        "faceprint verify": ([py, "-m", "faceprint", "verify", str(a), str(b)], {**env, "PYTHONPATH": here}),
        "face_recognition": ([py, "-c", FR_VERIFY, str(a), str(b)], env),
    }
    if baseline_src is not None:
        cmds["faceprint verify (baseline)"] = (
            [py, "-m", "faceprint", "verify", str(a), str(b)],
            {**env, "PYTHONPATH": str(baseline_src)},
        )
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for name, (cmd, e) in cmds.items():
            runs[name].append(run_command(cmd, e))
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        out[name] = {
            "wall_s_median": float(np.median([r["wall_s"] for r in rs])),
            "cpu_s_median": float(np.median([r["cpu_s"] for r in rs])),
            "other_processes_cores": float(np.median([r["other_processes_cores"] for r in rs])),
        }
        print(
            f"  {name:28s} wall {out[name]['wall_s_median']:5.2f} s, CPU {out[name]['cpu_s_median']:5.2f} s "
            f"(median of {repeat}; others used {out[name]['other_processes_cores']:.2f} cores)"
        )
    return out


# --- worst case: a face-less image ---------------------------------------------------------------


def blank_image_cost(side: int = 1000, repeat: int = 1) -> dict[str, Any]:
    """The default detector on a blank ``side`` × ``side`` image (the worst case: every stage runs),
    against the settings it replaced (HOG upsample 1; MMOD on the image up to 1000 px), same run."""
    from faceprint.registry import detectors

    blank = np.zeros((side, side, 3), np.uint8)
    out: dict[str, Any] = {"side": side}
    systems = {
        "default (min_face=40, coarse to fine, MMOD <= 256x256 px)": detectors.create("dlib-hog-mmod"),
        "old settings (HOG upsample 1, MMOD up to 1000x1000 px)": detectors.create(
            "dlib-hog-mmod", upsample=1, mmod_upsample=0, mmod_max_pixels=1000 * 1000
        ),
    }
    for name, det in systems.items():
        det.detect(np.zeros((64, 64, 3), np.uint8))  # build the lazy MMOD stage outside the timing
        with Meter() as m:
            for _ in range(repeat):
                assert det.detect(blank) == []
        out[name] = {"wall_s": m.wall / repeat, "cpu_s": m.cpu / repeat, "other_processes_cores": m.other_cores}
        print(f"  {name}: {m.wall / repeat:.2f} s wall, {m.cpu / repeat:.2f} s CPU per image")
    return out


# --- main ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    versions: dict[str, str] = {}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in (
        "faceprint",
        "face_recognition",
        "dlib-bin",
        "onnxruntime",
        "numpy",
        "opencv-python-headless",
        "pillow",
    ):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {
        "cores": cores,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def main(argv: Sequence[str] | None = None) -> int:
    default_data = Path(os.environ.get("FACEPRINT_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data / "lfw_view1", help="LFW View 1 folder")
    ap.add_argument(
        "--limit", type=int, default=None, help="use at most N pairs of each pair file (N/2 mated, N/2 non-mated)"
    )
    ap.add_argument("--workers", type=int, default=None, help="faceprint worker processes (default: cores)")
    ap.add_argument("--chunk-size", type=int, default=16, help="faceprint embed_many chunk size")
    ap.add_argument("--embedder", default="dlib-resnet-onnx", help="faceprint embedder for the pipeline runs")
    ap.add_argument("--chips", type=int, default=256, help="aligned chips for the per-face timing")
    ap.add_argument("--batch", type=int, default=32, help="batch size of the ONNX embedder timing")
    ap.add_argument("--warmup", type=int, default=4, help="images each system sees before timing")
    ap.add_argument("--skip-single", action="store_true", help="skip faceprint with workers=1")
    ap.add_argument("--out", type=Path, default=None, help="write all figures as JSON here")
    ap.add_argument("--cli", action="store_true", help="only the command-line rows (start-up included)")
    ap.add_argument("--blank", action="store_true", help="only the worst case: a blank 1000x1000 image")
    ap.add_argument("--startup", type=int, default=0, help="only start-up: verify two photos N times each")
    ap.add_argument("--baseline-src", type=Path, default=None, help="with --startup: another faceprint src/")
    ap.add_argument("--cli-sizes", type=int, nargs="+", default=[120, 1000], help="image counts of the CLI rows")
    ap.add_argument(
        "--model-dir", type=Path, default=default_data.parent / "models", help="FACEPRINT_MODEL_DIR for yunet"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.startup:
        photos = default_data / "faces_small" / "obama"
        print("[6] start-up: command to first result (two photos verified, fresh process each)")
        res = startup_rows(photos / "obama.jpg", photos / "obama2.jpg", args.startup, args.baseline_src)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"machine": machine(), "startup": res}, indent=2))
        return 0
    if args.blank:
        print("[5] default detector on a blank 1000x1000 image (every stage runs)")
        res = blank_image_cost()
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"machine": machine(), "blank": res}, indent=2))
        return 0
    if args.cli:
        import tempfile

        info = machine()
        print(f"[4] faceprint embed vs face_recognition's loop, start-up included; {info['cores']} cores")
        with tempfile.TemporaryDirectory(prefix="bench_lfw_cli_") as tmp:
            rows = cli_rows(args.data, Path(tmp), args.cli_sizes, args.model_dir)
        results_cli = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "cli": rows,
        }
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results_cli, indent=2))
            print(f"wrote {args.out}")
        return 0

    from faceprint.pipeline import FacePipeline, _cpu_count

    cores = _cpu_count()
    workers = args.workers or cores
    train = read_pairs(args.data / "pairsDevTrain.txt", args.data, args.limit)
    test = read_pairs(args.data / "pairsDevTest.txt", args.data, args.limit)
    paths = unique_images(train, test)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"error: {len(missing)} images missing, e.g. {missing[0]}", file=sys.stderr)
        return 2
    warm = paths[: args.warmup]
    info = machine()
    print(
        f"faceprint vs face_recognition on LFW View 1: {len(paths)} images, "
        f"{len(train)} DevTrain + {len(test)} DevTest pairs"
    )
    print(f"machine: {info['cores']} cores, {info['cpu']}; python {info['python']}")
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": info,
        "images": len(paths),
        "pairs": {"train": len(train), "test": len(test), "limit": args.limit},
        "faceprint_embedder": args.embedder,
    }

    # 1. throughput ------------------------------------------------------------------------
    print("\n[1] end-to-end throughput (path → embedding of the main face)")
    frr = run_face_recognition(paths, warm)
    print(
        f"  face_recognition (1 process):  {frr['images_per_s']:7.2f} img/s  "
        f"({frr['wall_s']:.1f} s; no face in {frr['no_face']} images)"
    )
    print(f"      {contention_note(frr)}")

    t0 = time.perf_counter()
    pipe = FacePipeline(embedder=args.embedder)
    build_s = time.perf_counter() - t0
    list(pipe.embed_many(warm, select="largest", workers=1))
    fpn = run_faceprint(pipe, paths, workers, args.chunk_size)
    excl = fpn.get("images_per_s_after_first_chunk", fpn["images_per_s"])
    print(
        f"  faceprint workers={workers}:          {fpn['images_per_s']:7.2f} img/s  "
        f"({fpn['wall_s']:.1f} s incl. worker start-up; first result after {fpn.get('first_result_s', 0):.1f} s; "
        f"{excl:.2f} img/s after it; no face in {fpn['no_face']}; by detector {fpn['faces_by_detector']})"
    )
    print(f"      {contention_note(fpn)} (worker CPU sampled per chunk: last chunk partly missed)")
    fp1 = None
    if not args.skip_single and workers != 1:
        fp1 = run_faceprint(pipe, paths, 1, args.chunk_size)
        print(f"  faceprint workers=1:          {fp1['images_per_s']:7.2f} img/s  ({fp1['wall_s']:.1f} s)")
        print(f"      {contention_note(fp1)}")
    ratio_incl = fpn["images_per_s"] / frr["images_per_s"]
    ratio_excl = excl / frr["images_per_s"]
    print(
        f"  ratio faceprint(workers={workers}) / face_recognition: {ratio_excl:.2f}x "
        f"(incl. worker start-up: {ratio_incl:.2f}x)"
    )
    if fp1:
        print(
            f"  ratio faceprint(workers=1) / face_recognition: {fp1['images_per_s'] / frr['images_per_s']:.2f}x; "
            f"CPU time per image, face_recognition / faceprint(workers=1): "
            f"{frr['cpu_ms_per_image'] / fp1['cpu_ms_per_image']:.2f}x"
        )
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_")}  # noqa: E731
    results["throughput"] = {
        "face_recognition": strip(frr),
        "faceprint_pipeline_build_s": build_s,
        "faceprint_workers": strip(fpn),
        "faceprint_workers1": strip(fp1) if fp1 else None,
        "ratio_workers_vs_fr": ratio_excl,
        "ratio_workers_vs_fr_incl_startup": ratio_incl,
        "ratio_workers1_vs_fr": fp1["images_per_s"] / frr["images_per_s"] if fp1 else None,
        "cpu_per_image_ratio_fr_vs_workers1": frr["cpu_ms_per_image"] / fp1["cpu_ms_per_image"] if fp1 else None,
    }
    if fp1:
        a, b = fpn["_emb"], fp1["_emb"]
        diffs = [float(np.abs(a[p] - b[p]).max()) for p in paths if a.get(p) is not None and b.get(p) is not None]
        results["throughput"]["max_abs_diff_workers_vs_workers1"] = max(diffs) if diffs else None

    # agreement of the two systems' embeddings (same network; different detector/alignment code)
    cos = []
    for p in paths:
        e1, e2 = frr["_emb"].get(p), fpn["_emb"].get(p)
        if e1 is not None and e2 is not None:
            cos.append(float(np.dot(e1, e2) / (np.linalg.norm(e1) * np.linalg.norm(e2))))
    if cos:
        c = np.array(cos)
        results["embedding_agreement_cosine"] = {
            "images": int(c.size),
            "median": float(np.median(c)),
            "p1": float(np.percentile(c, 1)),
            "min": float(c.min()),
        }
        print(
            f"  cosine(face_recognition encoding, faceprint embedding) per image: median {np.median(c):.4f}, "
            f"1st pct {np.percentile(c, 1):.4f}, min {c.min():.4f}"
        )

    # 2. per-face embedding time ---------------------------------------------------------------
    print(f"\n[2] per-face embedding time on aligned 150x150 chips (ONNX batch {args.batch})")
    pf = per_face_timing(paths, args.chips, args.batch, cores)
    print(
        f"  dlib compute_face_descriptor, one by one: {pf['dlib_ms_per_face']:.2f} ms/face ({pf['chips']} chips; "
        f"other processes used {pf['dlib_other_processes_cores']:.2f} cores)"
    )
    for k, v in pf.items():
        if k.startswith("onnx_"):
            if "error" in v:
                print(f"  {k}: unavailable ({v['error']})")
            else:
                print(
                    f"  dlib-resnet-onnx threads={v['threads']}: {v['ms_per_face']:.2f} ms/face = "
                    f"{v['ratio_vs_dlib']:.3f}x dlib (min cosine vs dlib {v['min_cosine_vs_dlib']:.6f}; "
                    f"other processes used {v['other_processes_cores']:.2f} cores)"
                )
    results["per_face"] = pf

    # 3. verification -------------------------------------------------------------------------
    print("\n[3] verification, threshold from DevTrain, figures on DevTest")
    print("    (an image with no face found = failure to acquire; its pairs are decided as non-matches)")
    acc_fr = verification(train, test, frr["_emb"], "neg_euclidean", fixed={"tolerance0.6": -0.6})
    acc_fp = verification(train, test, fpn["_emb"], "cosine")
    acc_fr["failure_to_acquire_images"] = frr["no_face"]
    acc_fp["failure_to_acquire_images"] = fpn["no_face"]
    for name, a in (("face_recognition", acc_fr), ("faceprint", acc_fp)):
        print(
            f"  {name:17s} acc {a['accuracy_test'] * 100:6.2f}% (thr {a['threshold_acc_from_train']:.4f}, "
            f"train {a['accuracy_train'] * 100:.2f}%)  EER {a['eer_test'] * 100:5.2f}%  "
            f"@DevTrain FMR=1e-3 thr {a['threshold_fmr1e-3_from_train']:.4f}: "
            f"FNMR {a['fnmr_test_at_train_fmr1e-3'] * 100:.2f}% "
            f"FMR {a['fmr_test_at_train_fmr1e-3'] * 100:.2f}%  FTA {a['failure_to_acquire_images']} img, "
            f"{a['pairs_test_without_face']} test pairs"
        )
    print(f"  face_recognition at its default tolerance 0.6: acc {acc_fr['accuracy_test_tolerance0.6'] * 100:.2f}%")
    results["verification"] = {"face_recognition": acc_fr, "faceprint": acc_fp}

    # targets -----------------------------------------------------------------------------------
    onnx1 = pf.get("onnx_1thread", {})
    onnx_all = pf.get(f"onnx_{cores}threads", {})
    best_ratio = min([v["ratio_vs_dlib"] for v in (onnx1, onnx_all) if "ratio_vs_dlib" in v], default=math.nan)
    targets = {
        "throughput_>=3x": ratio_excl >= 3.0,
        "embedding_<=0.25x_dlib_1thread": onnx1.get("ratio_vs_dlib", math.inf) <= 0.25,
        "embedding_<=0.25x_dlib_best": best_ratio <= 0.25,
        "accuracy_not_below_fr": acc_fp["accuracy_test"] >= acc_fr["accuracy_test"],
    }
    results["targets"] = targets
    print("\ntargets:", ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
