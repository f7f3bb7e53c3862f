from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from faceprint._pool import bounded_ordered_map


def test_results_come_in_input_order_with_bounded_submissions() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02 * (5 - x % 5))  # later items finish first
        with lock:
            running -= 1
        return x * x

    pulled: list[int] = []

    def source():  # type: ignore[no-untyped-def]
        for i in range(20):
            pulled.append(i)
            yield i

    with ThreadPoolExecutor(max_workers=8) as pool:
        out = []
        for item, r in bounded_ordered_map(pool, work, source(), max_inflight=3):
            assert len(pulled) - len(out) <= 3  # never more than 3 taken ahead of the consumer
            out.append((item, r))
    assert out == [(i, i * i) for i in range(20)]
    assert peak <= 3


def test_an_error_propagates_and_queued_tasks_are_cancelled() -> None:
    started: list[int] = []

    def work(x: int) -> int:
        started.append(x)
        if x == 1:
            raise ValueError("boom")
        time.sleep(0.05)
        return x

    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(ValueError, match="boom"):
            list(bounded_ordered_map(pool, work, range(100), max_inflight=4))
    assert len(started) <= 5
