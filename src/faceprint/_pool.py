"""Run tasks on an executor with a bounded number in flight, yielding results in input order.

Used by :mod:`faceprint.batch` for both worker processes and Dask (through its
``concurrent.futures`` executor), so that streaming a directory of 100k images never queues more
than a few chunks at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

__all__ = ["bounded_ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def bounded_ordered_map(
    pool: Executor, fn: Callable[[T], R], items: Iterable[T], max_inflight: int
) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in input order with at most ``max_inflight`` tasks submitted.

    ``fn`` must be picklable for a process pool. If the consumer stops early or a task raises,
    tasks not yet started are cancelled.
    """
    inflight: deque[tuple[T, Future[R]]] = deque()
    it = iter(items)
    exhausted = False
    try:
        while True:
            while not exhausted and len(inflight) < max_inflight:
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    break
                inflight.append((item, pool.submit(fn, item)))
            if not inflight:
                return
            item, fut = inflight.popleft()
            yield item, fut.result()
    finally:
        for _, fut in inflight:
            fut.cancel()
