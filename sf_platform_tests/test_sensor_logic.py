"""The landing sensor's mapping of objects to tables and its run keys."""

from datetime import UTC, datetime

from sf_platform.core.naming import DEFAULT_LOOSE_FILE_PATTERN
from sf_platform.core.sensor_cursor import ListedObject
from sf_platform.sensors.landing import run_key, table_for_key

T = datetime(2025, 9, 1, tzinfo=UTC)


def test_objects_map_to_their_table():
    assert table_for_key("PSY_ORD_CLASS_202508291511.csv", DEFAULT_LOOSE_FILE_PATTERN) == "psy_ord_class"
    assert table_for_key("member/MEMBER_202508291511.csv", DEFAULT_LOOSE_FILE_PATTERN) == "member"
    assert table_for_key("member/dt=2025-09-01/x.csv", DEFAULT_LOOSE_FILE_PATTERN) == "member"
    assert table_for_key("notes.txt", DEFAULT_LOOSE_FILE_PATTERN) is None
    assert table_for_key("member/_SUCCESS", DEFAULT_LOOSE_FILE_PATTERN) is None


def test_run_key_changes_with_the_etag_and_not_with_the_timestamp():
    a = [ListedObject("member/a.csv", "e1", T)]
    assert run_key("member", a) == run_key("member", [ListedObject("member/a.csv", "e1", T.replace(hour=3))])
    assert run_key("member", a) != run_key("member", [ListedObject("member/a.csv", "e2", T)])
    assert run_key("member", a).startswith("member:")
