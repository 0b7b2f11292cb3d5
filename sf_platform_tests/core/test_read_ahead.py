"""Tests for sf_platform.core.read_ahead: items in order, errors where they happened, and a helper thread
that stops when the caller does."""

from __future__ import annotations

import threading

import pytest

from sf_platform.core.read_ahead import read_ahead


def test_items_come_in_order_from_a_helper_thread():
    producers = set()

    def items():
        for i in range(100):
            producers.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), depth=3, name="test-reader")) == list(range(100))
    assert producers == {"test-reader"}


def test_an_error_is_raised_to_the_caller_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad block")

    got = []
    with pytest.raises(ValueError, match="bad block"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_helper():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    ahead = read_ahead(endless(), depth=2, name="endless-reader")
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert not any(t.name == "endless-reader" for t in threading.enumerate())
    assert len(produced) <= 5 + 2 + 2  # taken, queued, and at most one in the producer's hand
