"""Reading ahead on a helper thread: pyarrow parses (and types) the next block without the GIL while the
caller works on the current one, which uses both cores. Used by the crawl's profiling and the curate hop."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 2, *, name: str = "read-ahead") -> Iterator[T]:
    """``items``, produced on a helper thread (called ``name``) up to ``depth`` ahead of the caller.

    An exception raised by ``items`` is raised to the caller where the item would have been. Closing
    the returned generator (or abandoning it part way) stops the helper and waits for it."""
    slots: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed over to the consumer, which raises it
            put(_Failure(exc))
            return
        put(end)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not end:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()
