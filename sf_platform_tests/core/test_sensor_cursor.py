"""The new-file sensor's cursor: same-second objects, changed ETags, deletions, late arrivals, size,
sweeps spread over ticks, and organized copies that are expected."""

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.sensor_cursor import Cursor, ListedObject, advance, digest
from sf_platform.sensors.landing import scan

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


# -- sweeps over several ticks ---------------------------------------------------------------------


def test_an_object_landing_behind_a_long_sweep_is_found_by_the_next_sweep():
    """The sweep takes longer than the lag: objects it lists late are much newer than one that landed
    behind its position. That one must still be inside the next sweep's window."""
    lag = timedelta(minutes=5)
    cursor = Cursor()
    cursor.begin_sweep(["a", "b"], now=T0)
    cursor.observe([obj("a/1.csv", seconds=-86_400)], lag)
    cursor.folder_done()
    behind = obj("a/2.csv", seconds=60)  # lands in a/ after the sweep has passed it
    cursor.observe([obj("b/1.csv", seconds=3_600)], lag)  # an hour later the sweep reaches b/
    cursor.folder_done()
    cursor.end_sweep(T0 + timedelta(seconds=3_600), lag)
    assert cursor.watermark == T0  # capped at the sweep's start, not b/1.csv's hour
    cursor.begin_sweep(["a", "b"], now=T0 + timedelta(seconds=3_601))
    assert keys(cursor.observe([obj("a/1.csv", seconds=-86_400), behind], lag)) == ["a/2.csv"]


def test_an_expected_copy_is_not_new_but_a_later_replacement_is():
    cursor = Cursor()
    cursor.expect("member/M.csv", '"e1"', now=T0)
    cursor.begin_sweep(["member"], now=T0)
    assert cursor.observe([obj("member/M.csv", "e1")]) == []
    assert cursor.expected == {}
    cursor.end_sweep(T0)
    new, _ = advance(cursor, [obj("member/M.csv", "e2", seconds=9)], now=T0)
    assert keys(new) == ["member/M.csv"]


def test_an_expected_copy_that_never_shows_up_is_forgotten():
    cursor = Cursor()
    cursor.expect("member/M.csv", "e1", now=T0)
    _, cursor = advance(cursor, [], now=T0 + timedelta(minutes=59))
    assert len(cursor.expected) == 1
    _, cursor = advance(cursor, [], now=T0 + timedelta(minutes=61))
    assert cursor.expected == {}


def test_a_cursor_in_the_middle_of_a_sweep_round_trips_through_json():
    cursor = Cursor()
    cursor.expect("member/M.csv", "e1", now=T0)
    cursor.begin_sweep(["member", "school"], now=T0)
    cursor.observe([obj("member/a.csv", seconds=1), obj("member/b.csv", seconds=2)])
    cursor.listed_up_to("member/b.csv")
    assert Cursor.from_json(cursor.to_json()) == cursor


class Bucket:
    """S3's listing semantics in memory (key order, StartAfter, MaxKeys, delimiter at the root)."""

    def __init__(self):
        self.objects: dict[str, ListedObject] = {}

    def _dict(self, o):
        return {"Key": o.key, "ETag": o.etag, "LastModified": o.last_modified}

    def list_top_level(self):
        loose = [self._dict(o) for k, o in sorted(self.objects.items()) if "/" not in k]
        return loose, sorted({k.split("/")[0] for k in self.objects if "/" in k})

    def list_page(self, prefix, *, after="", max_keys=1000):
        matching = [k for k in sorted(self.objects) if k.startswith(prefix) and k > after]
        return [self._dict(self.objects[k]) for k in matching[:max_keys]], len(matching) > max_keys


@given(
    st.lists(
        st.tuples(
            # "a-b/" lists before "a/" in key order, "ab/" after it: the flat sweep walks folders that way
            st.sampled_from(["a/1", "a/2", "a/3", "a-b/1", "ab/1", "b/1", "b/2", "c/1", "c/2", "root.csv"]),
            st.sampled_from(["e1", "e2"]),
            st.integers(0, 3),  # seconds until the next write
            # S3 notifications of the write: lost, delivered, delivered twice, delivered 12 ticks late
            st.sampled_from(["lost", "next", "twice", "late"]),
        ),
        max_size=20,
    ),
    st.integers(1, 4),
    st.integers(0, 600),
)
@settings(deadline=None)
def test_swept_over_ticks_every_current_version_is_reported_and_no_write_twice(writes, budget, tick):
    """Writes land between ticks of a sensor that lists at most ``budget`` keys per tick, with the
    clock moving ``tick`` seconds per tick (so a sweep can last far longer than the lag), and their S3
    notifications arrive at the next tick, twice, 12 ticks late or never. After the writes stop and two
    more sweeps pass, every object's final (key, ETag) has been reported, and no write was reported
    twice (save a late notification of a version already overwritten). A re-upload of identical bytes
    is a write: once the window has moved past the first upload it may be reported again, and its run
    key or the ledgers make that run a no-op."""
    lag = timedelta(seconds=60)
    bucket, cursor, reported, written, clock = Bucket(), Cursor(), [], Counter(), T0
    queue: dict[int, list[ListedObject]] = defaultdict(list)  # tick -> notifications delivered then
    delays = {"lost": [], "next": [0], "twice": [0, 0], "late": [12]}
    for now, (key, etag, pause, delivery) in enumerate([*writes, *[(None, None, 0, "lost")] * 40]):
        if key is not None:
            bucket.objects[key] = written_now = ListedObject(key, etag, clock)
            written[written_now] += 1
            for delay in delays[delivery]:
                queue[now + delay].append(written_now)
            clock += timedelta(seconds=pause)
        clock += timedelta(seconds=tick)
        fresh, _ = scan(bucket, cursor, set(), budget, lag, clock)
        reported.extend(
            fresh + cursor.announce(queue.pop(now, []), lag)
        )  # as the sensor: listing, then queue
    assert {(o.key, o.etag) for o in bucket.objects.values()} <= {(o.key, o.etag) for o in reported}
    # A notification arriving after its version was overwritten (inside the lag window) may ask for
    # one more run of the table; that run loads nothing new (the ledgers). A current version never is.
    twice = Counter(reported) - written
    assert not set(twice) & set(bucket.objects.values()), f"reported twice: {twice}"
    if not any(delivery == "late" for *_, delivery in writes):
        assert not twice, f"reported twice: {twice}"
