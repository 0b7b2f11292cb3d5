"""Grouping objects into load batches: many small files travel together through one stage part, one
COPY and one transaction; a large file travels alone.

Pure: sizes and order in, groups out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from .ledger import SourceObject

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_OBJECTS", "batches", "group_by"]

MAX_BATCH_OBJECTS = 1_000
MAX_BATCH_BYTES = 128 * 1024 * 1024  # source bytes (as listed in S3) per batch

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def batches(
    objects: Iterable[SourceObject],
    *,
    max_objects: int = MAX_BATCH_OBJECTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[tuple[SourceObject, ...]]:
    """``objects`` in their order, cut into consecutive batches of at most ``max_objects`` objects and
    ``max_bytes`` source bytes. An object of ``max_bytes`` or more is a batch of its own; every object
    is in exactly one batch, and no batch is empty."""
    if max_objects < 1 or max_bytes < 1:
        raise ValueError(f"batch limits must be positive (max_objects={max_objects}, max_bytes={max_bytes})")
    result: list[tuple[SourceObject, ...]] = []
    current: list[SourceObject] = []
    size = 0
    for obj in objects:
        if obj.size >= max_bytes:
            if current:
                result.append(tuple(current))
                current, size = [], 0
            result.append((obj,))
            continue
        if current and (len(current) >= max_objects or size + obj.size > max_bytes):
            result.append(tuple(current))
            current, size = [], 0
        current.append(obj)
        size += obj.size
    if current:
        result.append(tuple(current))
    return result


def group_by(items: Sequence[T], key: Callable[[T], K]) -> list[list[T]]:
    """``items`` grouped by ``key``: groups in the order of their first item, items in their order."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``: one statement or request each (a statement's
    parameters and an API call's entries are bounded)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
