"""The new-file sensor's cursor: same-second objects, changed ETags, deletions, late arrivals, size."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.sensor_cursor import Cursor, ListedObject, advance, digest

T0 = datetime(2025, 8, 29, 15, 11, 0, tzinfo=UTC)


def obj(key, etag="e1", seconds=0):
    return ListedObject(key, etag, T0 + timedelta(seconds=seconds))


def keys(objects):
    return [o.key for o in objects]


def test_first_tick_reports_everything_present():
    new, cursor = advance(Cursor(), [obj("b.csv"), obj("a.csv", seconds=3)])
    assert keys(new) == ["a.csv", "b.csv"]
    assert cursor.watermark == T0 + timedelta(seconds=3)


def test_nothing_new_when_listing_is_unchanged():
    listing = [obj("a.csv"), obj("b.csv", seconds=1)]
    _, cursor = advance(Cursor(), listing)
    new, _ = advance(cursor, listing)
    assert new == []


def test_object_landing_in_the_same_second_as_the_watermark_is_not_missed():
    _, cursor = advance(Cursor(), [obj("a.csv", seconds=5)])
    new, _ = advance(cursor, [obj("a.csv", seconds=5), obj("b.csv", seconds=5)])
    assert keys(new) == ["b.csv"]


def test_object_listed_late_with_an_older_timestamp_inside_the_lag_window_is_found():
    _, cursor = advance(Cursor(), [obj("a.csv", seconds=60)])
    new, _ = advance(cursor, [obj("a.csv", seconds=60), obj("late.csv", seconds=10)])
    assert keys(new) == ["late.csv"]


def test_replaced_object_with_a_new_etag_is_reported_even_in_the_same_second():
    _, cursor = advance(Cursor(), [obj("a.csv", "e1", seconds=5)])
    new, _ = advance(cursor, [obj("a.csv", "e2", seconds=5)])
    assert [(o.key, o.etag) for o in new] == [("a.csv", "e2")]


def test_etag_quotes_do_not_make_an_object_new():
    _, cursor = advance(Cursor(), [obj("a.csv", '"abc"')])
    new, _ = advance(cursor, [obj("a.csv", "abc")])
    assert new == []


def test_deleted_objects_drop_out_and_do_not_break_the_next_tick():
    _, cursor = advance(Cursor(), [obj("a.csv"), obj("b.csv", seconds=1)])
    new, cursor = advance(cursor, [obj("b.csv", seconds=1)])
    assert new == [] and digest(obj("a.csv")) not in cursor.recent
    new, _ = advance(cursor, [obj("b.csv", seconds=1), obj("c.csv", seconds=2)])
    assert keys(new) == ["c.csv"]


def test_cursor_only_keeps_the_lag_window():
    old = [obj(f"old{i}.csv", seconds=i) for i in range(100)]
    _, cursor = advance(Cursor(), [*old, obj("new.csv", seconds=100 + 3600)], lag=timedelta(minutes=5))
    assert cursor.recent == {digest(obj("new.csv", seconds=100 + 3600))}


def test_cursor_round_trips_through_json():
    _, cursor = advance(Cursor(), [obj("a.csv", seconds=1), obj("b.csv", seconds=1)])
    restored = Cursor.from_json(cursor.to_json())
    assert restored == cursor
    assert Cursor.from_json(None) == Cursor()


def test_a_version_1_cursor_keeps_working():
    _, cursor = advance(Cursor(), [obj("a.csv", '"e1"', seconds=1)])
    old = json.dumps({"recent": {"a.csv": "e1"}, "watermark": cursor.watermark.isoformat()})
    assert Cursor.from_json(old) == cursor
    new, _ = advance(Cursor.from_json(old), [obj("a.csv", "e1", seconds=1), obj("b.csv", seconds=1)])
    assert keys(new) == ["b.csv"]


def test_a_burst_of_100k_objects_in_one_window_keeps_a_cursor_of_about_1_mb():
    burst = [
        obj(f"member/MEMBER_{i:07d}_202508291511.csv", f"{i:032x}", seconds=i % 300) for i in range(100_000)
    ]
    _, cursor = advance(Cursor(), burst)
    text = cursor.to_json()
    assert len(cursor.recent) == 100_000
    assert len(text) < 1.1e6
    new, _ = advance(Cursor.from_json(text), [*burst, obj("member/new.csv", seconds=299)])
    assert keys(new) == ["member/new.csv"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e"]), st.sampled_from(["e1", "e2"]), st.integers(0, 30)
        ),
        max_size=12,
    ),
    st.integers(1, 4),
)
def test_every_current_version_is_reported_and_never_twice_in_a_row(events, ticks):
    """Objects written in time order, listed over several ticks: every object's final (key, ETag) is
    reported, and no key is reported twice in a row with the same ETag (that would be a second run for
    the same content)."""
    events = sorted(events, key=lambda e: e[2])
    cursor, reported = Cursor(), []
    bucket: dict[str, ListedObject] = {}
    chunk = max(1, len(events) // ticks)
    for start in range(0, len(events) or 1, chunk):
        for key, etag, second in events[start : start + chunk]:
            bucket[key] = obj(key, etag, second)
        new, cursor = advance(cursor, bucket.values())
        reported.extend((o.key, o.etag) for o in new)
    assert {(o.key, o.etag) for o in bucket.values()} <= set(reported)
    last_etag: dict[str, str] = {}
    for key, etag in reported:
        assert last_etag.get(key) != etag, f"{key} reported twice with etag {etag}"
        last_etag[key] = etag
