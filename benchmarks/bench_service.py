"""REST service overhead: ``POST /v1/verify`` through a loopback uvicorn vs ``FacePipeline.verify``.

Same run, same image pairs (LFW View 1 ``pairsDevTest.txt``, 250×250 JPEGs, sent as bytes), same
concurrency budget:

* **service**: ``faceprint serve --workers W`` in its own process on 127.0.0.1 (rate limit raised
  for the run); 8 concurrent clients (asyncio + httpx, one connection each) send ``--requests``
  verify requests with an API key (multipart bodies encoded before timing, so the load
  generator, which shares the machine, spends its CPU on HTTP only); latency is per request,
  from send to parsed JSON.
* **library**: ``FacePipeline.verify(bytes_a, bytes_b)`` in this process on W threads, each with
  its own pipeline built exactly as the service builds its workers
  (:func:`faceprint.service.inference.build_pipelines`: one detector per thread, one shared
  onnxruntime embedder).

Both sides are warmed up before timing. The figure of merit is the overhead factor
``library throughput / service throughput`` (target ≤ 1.15). Zero errors are required. Each
client has its own API key (the service keeps one key from taking every worker).

With ``--faceless K``, the service side runs a second time while K more clients, with another
key, keep sending a blank 1000×1000 PNG to ``/v1/detect`` (the detector's worst case): the
verify latency with and without that traffic, same run, shows what the face-less images cost
the others.

Usage::

    nice -n 10 python benchmarks/bench_service.py [--requests 500] [--clients 8] [--workers 0] [--faceless 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACEPRINT_TEST_DATA", ROOT.parent / "shared" / "data"))


def lfw_pairs(n: int) -> list[tuple[bytes, bytes]]:
    lfw = DATA / "lfw_view1"
    lines = (lfw / "pairsDevTest.txt").read_text().splitlines()[1:]
    out = []
    for line in lines:
        f = line.split("\t")
        if len(f) == 3:
            a = lfw / f[0] / f"{f[0]}_{int(f[1]):04d}.jpg"
            b = lfw / f[0] / f"{f[0]}_{int(f[2]):04d}.jpg"
        else:
            a = lfw / f[0] / f"{f[0]}_{int(f[1]):04d}.jpg"
            b = lfw / f[2] / f"{f[2]}_{int(f[3]):04d}.jpg"
        out.append((a.read_bytes(), b.read_bytes()))
    # alternate mated / non-mated so every slice of the run has both
    mated, non = out[: len(out) // 2], out[len(out) // 2 :]
    mixed = [p for pair in zip(mated, non, strict=False) for p in pair]
    return mixed[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def start_server(data_dir: Path, workers: int, n_keys: int) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    from faceprint.service.auth import KeyStore

    store = KeyStore(data_dir / "keys.sqlite")
    tokens = [store.create("recognize", label=f"bench {i}")[1] for i in range(n_keys)]
    port = free_port()
    env = {**os.environ, "FACEPRINT_RATE_LIMIT_PER_S": "100000", "FACEPRINT_RATE_LIMIT_BURST": "100000"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faceprint",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url, tokens
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("server not ready after 120 s")


BOUNDARY = "faceprint-bench-7d1f"


def multipart(a: bytes, b: bytes) -> bytes:
    """The verify form, encoded once up front so the load generator spends its CPU on HTTP only."""
    parts = []
    for name, data in (("image_a", a), ("image_b", b)):
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def blank_png(size: int = 1000) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), "white").save(buf, "PNG")
    return buf.getvalue()


async def run_clients(
    url: str,
    tokens: list[str],
    jobs: list[tuple[bytes, bytes]],
    clients: int,
    timeout: float,
    faceless: tuple[str, int] | None = None,
):
    """``clients`` verify clients (client i uses ``tokens[i]``); with ``faceless=(token, k)``, k more
    clients send blank PNGs to /v1/detect until the verify clients are done (their status codes
    are returned as the fifth value)."""
    bodies = [multipart(a, b) for a, b in jobs]
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    latencies: list[float] = []
    errors: list[str] = []
    matches = 0
    it = iter(range(len(jobs)))
    lock = asyncio.Lock()

    async def client(token: str) -> None:
        nonlocal matches
        headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
        async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as c:
            while True:
                async with lock:
                    i = next(it, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    r = await c.post("/v1/verify", content=bodies[i])
                    body = r.json()
                except Exception as exc:  # counted, never hidden
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {body.get('code')}")
                elif body["match"]:
                    matches += 1

    done = asyncio.Event()
    heavy: list[int] = []

    async def blank_client(token: str) -> None:
        body = blank_png()
        async with httpx.AsyncClient(base_url=url, timeout=timeout, headers={"X-API-Key": token}) as c:
            while not done.is_set():
                try:
                    r = await c.post("/v1/detect", files={"image": ("blank.png", body, "image/png")})
                    heavy.append(r.status_code)
                except httpx.TimeoutException:
                    heavy.append(0)

    extra = [asyncio.ensure_future(blank_client(faceless[0])) for _ in range(faceless[1])] if faceless else []
    if extra:
        await asyncio.sleep(1.0)  # the face-less images are being worked on before the clock starts
    t0 = time.perf_counter()
    await asyncio.gather(*(client(tokens[i % len(tokens)]) for i in range(clients)))
    wall = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*extra)
    return wall, latencies, errors, matches, heavy


def run_library(pipes: list, jobs: list[tuple[bytes, bytes]]) -> tuple[float, list[float], int]:
    free: queue.SimpleQueue = queue.SimpleQueue()
    for p in pipes:
        free.put(p)
    lat: list[float] = []
    lat_lock = threading.Lock()

    def one(job: tuple[bytes, bytes]) -> bool:
        pipe = free.get()
        t = time.perf_counter()
        try:
            return bool(pipe.verify(job[0], job[1]).decision.match)
        finally:
            dt = time.perf_counter() - t
            free.put(pipe)
            with lat_lock:
                lat.append(dt)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(pipes)) as ex:
        matches = sum(ex.map(one, jobs))
    return time.perf_counter() - t0, lat, matches


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500, help="verify requests per side (bounded: ≤ 5000)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0, help="inference threads on both sides (0: one per core)")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, seconds")
    ap.add_argument("--faceless", type=int, default=0, help="clients sending blank PNGs in a second service run")
    args = ap.parse_args()
    n = min(max(args.requests, 1), 5000)

    from faceprint.service.inference import build_pipelines
    from faceprint.service.settings import ServiceSettings

    pairs = lfw_pairs(500)
    jobs = [pairs[i % len(pairs)] for i in range(n)]
    warm = pairs[:16]
    settings = ServiceSettings(data_dir=Path(tempfile.mkdtemp()), workers=args.workers or None)
    workers = settings.worker_count
    sys.stderr.write(f"{n} verify requests, {args.clients} clients, {workers} inference threads\n")

    # library side
    pipes = build_pipelines(settings)
    run_library(pipes, warm)
    lib_wall, lib_lat, lib_matches = run_library(pipes, jobs)
    del pipes

    # service side
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, tokens = start_server(Path(tmp), workers, args.clients + 1)
        try:
            asyncio.run(run_clients(url, tokens[:-1], warm, args.clients, args.timeout))
            wall, lat, errors, matches, _ = asyncio.run(run_clients(url, tokens[:-1], jobs, args.clients, args.timeout))
            if args.faceless:
                mixed = asyncio.run(
                    run_clients(url, tokens[:-1], jobs, args.clients, args.timeout, (tokens[-1], args.faceless))
                )
        finally:
            proc.terminate()
            proc.wait(30)

    svc_rps = len(lat) / wall
    lib_rps = n / lib_wall
    overhead = lib_rps / svc_rps if svc_rps else float("inf")
    same = "same" if matches == lib_matches else f"DIFFERENT ({matches} vs {lib_matches})"
    load = os.getloadavg()[0]
    svc_row = (
        f"| service (uvicorn, {args.clients} clients) | {len(lat)} | {len(errors)} | {wall:.1f} | {svc_rps:.2f} "
        f"| {1000 * statistics.median(lat):.0f} | {1000 * percentile(lat, 99):.0f} |"
    )
    lib_row = (
        f"| library (`FacePipeline.verify`, {workers} threads) | {n} | 0 | {lib_wall:.1f} | {lib_rps:.2f} "
        f"| {1000 * statistics.median(lib_lat):.0f} | {1000 * percentile(lib_lat, 99):.0f} |"
    )
    report = [
        "## REST service",
        "",
        f"Run {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores (shared; load average "
        f"{load:.1f} at the end), Python {platform.python_version()}:",
        f"`nice -n 10 python benchmarks/bench_service.py --requests {n} --clients {args.clients}"
        + (f" --faceless {args.faceless}`" if args.faceless else "`"),
        "",
        f"`POST /v1/verify` through `faceprint serve --workers {workers}` (worker processes) on loopback uvicorn, "
        f"{args.clients} concurrent clients (one API key each; asyncio + httpx, multipart upload of two LFW View 1 "
        "pairsDevTest JPEGs, pre-encoded; "
        f"API key auth), against `FacePipeline.verify(bytes_a, bytes_b)` on {workers} threads with the service's "
        f"own pipeline set-up, same pairs, same run. Decisions: {same} ({matches} matches of {n}).",
        "",
        "| side | requests | errors | wall (s) | requests/s | p50 latency (ms) | p99 latency (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        svc_row,
        lib_row,
        "",
        f"Overhead factor (library throughput / service throughput): **{overhead:.3f}×** (target ≤ 1.15×).",
    ]
    if args.faceless:
        m_wall, m_lat, m_errors, _, heavy = mixed
        codes = {c: heavy.count(c) for c in sorted(set(heavy))}
        report += [
            "",
            f"With {args.faceless} more clients (one other key) sending a blank 1000×1000 PNG to `/v1/detect` "
            f"throughout, same run: {len(m_lat)} verify requests, {len(m_errors)} errors, "
            f"{len(m_lat) / m_wall:.2f} requests/s, p50 {1000 * statistics.median(m_lat):.0f} ms, "
            f"p99 {1000 * percentile(m_lat, 99):.0f} ms; face-less answers by status: {codes}.",
            f"Verify p50 latency with face-less traffic / without: "
            f"**{statistics.median(m_lat) / statistics.median(lat):.2f}×**.",
        ]
        errors = errors + m_errors
    sys.stdout.write("\n".join(report) + "\n")
    if errors:
        sys.stderr.write(f"errors: {errors[:10]}\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
