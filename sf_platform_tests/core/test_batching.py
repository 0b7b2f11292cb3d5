"""Load batches: small objects grouped up to a count and a byte budget, large ones alone, none lost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.batching import batches, chunks, group_by
from sf_platform.core.ledger import SourceObject


def _objects(*sizes: int) -> list[SourceObject]:
    return [SourceObject(f"t/{i:04d}.csv", f"e{i}", size) for i, size in enumerate(sizes)]


def _sizes(groups) -> list[list[int]]:
    return [[o.size for o in group] for group in groups]


def test_one_row_files_fill_batches_of_the_object_limit():
    groups = batches(_objects(*[40] * 2_500))
    assert [len(g) for g in groups] == [1_000, 1_000, 500]


def test_the_byte_budget_cuts_a_batch_and_a_large_object_travels_alone():
    groups = batches(_objects(3, 4, 5, 20, 1, 2, 9, 9), max_objects=100, max_bytes=10)
    assert _sizes(groups) == [[3, 4], [5], [20], [1, 2], [9], [9]]


def test_nothing_in_nothing_out_and_limits_must_be_positive():
    assert batches([]) == []
    with pytest.raises(ValueError, match="positive"):
        batches(_objects(1), max_objects=0)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50), max_size=60),
    max_objects=st.integers(min_value=1, max_value=7),
    max_bytes=st.integers(min_value=1, max_value=60),
)
def test_every_object_once_in_order_and_within_the_limits(sizes, max_objects, max_bytes):
    objects = _objects(*sizes)
    groups = batches(objects, max_objects=max_objects, max_bytes=max_bytes)
    assert [o for g in groups for o in g] == objects
    for group in groups:
        assert group
        if len(group) > 1:
            assert len(group) <= max_objects
            assert sum(o.size for o in group) <= max_bytes
            assert all(o.size < max_bytes for o in group)
    # consecutive batches could not have been merged (greedy): the next object did not fit
    for first, second in zip(groups, groups[1:], strict=False):
        nxt = second[0]
        fits = len(first) < max_objects and sum(o.size for o in first) + nxt.size <= max_bytes
        assert not fits or nxt.size >= max_bytes or first[0].size >= max_bytes


def test_group_by_keeps_first_seen_order():
    assert group_by(["b1", "a1", "b2", "c1", "a2"], key=lambda s: s[0]) == [["b1", "b2"], ["a1", "a2"], ["c1"]]


@given(st.lists(st.integers(), max_size=60), st.integers(min_value=1, max_value=17))
def test_chunks_cover_the_items_in_order_each_at_most_size(items, size):
    parts = chunks(items, size)
    assert [x for part in parts for x in part] == items
    assert all(1 <= len(part) <= size for part in parts)
    assert len(parts) == -(-len(items) // size)
