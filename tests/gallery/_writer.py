"""A child process of the gallery tests: enrols synthetic batches, printing a line after each commit.

python _writer.py LOCATION BATCHES SIZE DIM PAUSE_SECONDS
"""

from __future__ import annotations

import sys
import time

import numpy as np

MODEL = "test-model@1"


def vectors(batches: int, size: int, dim: int) -> np.ndarray:
    """The vectors the writer enrols, row i being subject ``s<i>`` (deterministic)."""
    rng = np.random.default_rng(123)
    x = rng.standard_normal((batches * size, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(loc: str, batches: int, size: int, dim: int, pause: float) -> None:
    from faceprint.gallery import open_gallery

    x = vectors(batches, size, dim)
    g = open_gallery(loc)
    for b in range(batches):
        rows = range(b * size, (b + 1) * size)
        g.enroll_many([f"s{i}" for i in rows], x[b * size : (b + 1) * size], model=MODEL, batch_size=size)
        print(f"committed {b}", flush=True)
        if pause:
            time.sleep(pause)
    g.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
