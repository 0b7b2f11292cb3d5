"""S3 event notifications as SQS delivers them: direct, wrapped by SNS, test events, other buckets,
removals, URL-encoded keys, and bodies that are no S3 event at all."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.s3_events import objects_of_message
from sf_platform.core.sensor_cursor import Cursor, ListedObject, advance


def record(key, name="ObjectCreated:Put", bucket="landing", etag="abc", time="2025-08-29T15:11:00.000Z"):
    return {
        "eventName": name,
        "eventTime": time,
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "eTag": etag, "size": 3}},
    }


def body(*records):
    return json.dumps({"Records": list(records)})


def test_a_created_object_is_announced_with_its_key_etag_and_time():
    announced = objects_of_message(body(record("member/MEMBER_202508291511.csv")), "landing")
    assert announced.created == [
        ListedObject("member/MEMBER_202508291511.csv", "abc", datetime(2025, 8, 29, 15, 11, tzinfo=UTC))
    ]


def test_removals_and_other_buckets_are_ignored_and_counted():
    announced = objects_of_message(
        body(record("a.csv", name="ObjectRemoved:Delete"), record("b.csv", bucket="other"), record("c.csv")),
        "landing",
    )
    assert [o.key for o in announced.created] == ["c.csv"] and announced.ignored == 2


def test_an_sns_wrapped_event_is_unwrapped():
    wrapped = json.dumps({"Type": "Notification", "Message": body(record("member/x.csv"))})
    assert [o.key for o in objects_of_message(wrapped, "landing").created] == ["member/x.csv"]


def test_s3s_test_event_announces_nothing():
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"})
    assert objects_of_message(test_event, "landing").created == []


def test_odd_records_are_ignored_and_an_unusable_event_time_is_now():
    odd = [{**record("a.csv"), "s3": None}, "text", {**record("b.csv"), "eventTime": 1}]
    announced = objects_of_message(body(*odd), "landing")
    assert [o.key for o in announced.created] == ["b.csv"] and announced.ignored == 2
    assert datetime.now(UTC) - announced.created[0].last_modified < timedelta(minutes=1)


def test_a_naive_event_time_is_utc():
    announced = objects_of_message(body(record("a.csv", time="2025-08-29T15:11:00.123456")), "landing")
    assert announced.created[0].last_modified.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        None,
        "hello",
        "[1, 2]",
        json.dumps({"Records": "no"}),
        json.dumps({"x": 1}),
        json.dumps({"Type": "Notification", "Message": 123}),
        body({**record("a.csv"), "s3": {"bucket": {"name": "landing"}, "object": None}}),
        body({**record("a.csv"), "s3": {"bucket": {"name": "landing"}, "object": {"key": 1, "eTag": "e"}}}),
    ],
)
def test_a_body_that_is_no_s3_event_is_an_error(text):
    with pytest.raises(ValueError, match="not|no text body|without a key"):
        objects_of_message(text, "landing")


@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40))
def test_any_key_survives_url_encoding(key):
    assert objects_of_message(body(record(key)), "landing").created[0].key == key


def test_announced_objects_are_reported_once_and_not_again_by_the_sweep():
    when = datetime(2025, 8, 29, 15, 11, tzinfo=UTC)
    new = ListedObject("member/x.csv", "abc", when)
    cursor = Cursor()
    cursor.begin_sweep(["member"], now=when)
    assert cursor.announce([new, new]) == [new]
    assert cursor.announce([new]) == []
    assert cursor.observe([new]) == []  # the sweep reaching it
    cursor.folder_done()
    cursor.end_sweep(when)
    cursor.begin_sweep(["member"], now=when)
    assert cursor.observe([new]) == []


def test_a_late_notification_of_a_file_the_sweeps_reported_long_ago_is_not_reported_again():
    """A backlog in the queue (the daemon was down) delivers events after the window has moved on."""
    t0 = datetime(2025, 8, 29, 15, 11, tzinfo=UTC)
    old = ListedObject("member/x.csv", "abc", t0)
    fresh, cursor = advance(Cursor(), [old], now=t0 + timedelta(seconds=1))
    assert fresh == [old]
    later = ListedObject("member/y.csv", "def", t0 + timedelta(hours=1))
    _, cursor = advance(cursor, [old, later], now=t0 + timedelta(hours=1, seconds=1))
    assert cursor.announce([old]) == []
    assert cursor.announce([ListedObject("member/z.csv", "e", t0 + timedelta(hours=1))]) != []
