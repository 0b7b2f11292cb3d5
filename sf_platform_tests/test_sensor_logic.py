"""The landing sensor's mapping of objects to tables, the folders it watches, its run keys and tags."""

from datetime import UTC, datetime

import pytest

from sf_platform.core.naming import DEFAULT_LOOSE_FILE_PATTERN
from sf_platform.core.sensor_cursor import ListedObject
from sf_platform.sensors.landing import file_tags, run_key, table_for_key, watched

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


def test_only_the_root_and_table_folders_are_watched():
    assert watched("MEMBER_202508291511.csv", {"exports"})
    assert watched("member/x.csv", {"exports"})
    assert not watched("_curated/member/x.parquet", {"exports"})
    assert not watched("_quarantine/mysql/member/x.csv", {"exports"})
    assert not watched("exports/sales/part-0.avro", {"exports"})


def test_file_tags_name_the_files_and_cut_a_long_list():
    objects = [ListedObject(f"member/MEMBER_2025090{i}1200.csv", "e", T) for i in range(1, 4)]
    assert file_tags(objects) == {
        "sf/new_files": "3",
        "sf/new_file_keys": ", ".join(o.key for o in objects),
    }
    many = [ListedObject(f"member/part-{i:05d}.csv", "e", T) for i in range(500)]
    tags = file_tags(many, limit=200)
    assert tags["sf/new_files"] == "500"
    assert len(tags["sf/new_file_keys"]) <= 200 and tags["sf/new_file_keys"].endswith("more)")
    shown = tags["sf/new_file_keys"].split(", ... (")[0].split(", ")
    assert shown == [o.key for o in many[: len(shown)]]
    assert tags["sf/new_file_keys"].endswith(f"({500 - len(shown)} more)")


def test_a_single_key_longer_than_the_limit_is_only_counted():
    tags = file_tags([ListedObject("member/" + "x" * 300 + ".csv", "e", T)], limit=100)
    assert tags == {"sf/new_files": "1", "sf/new_file_keys": "... (1 more)"}


def test_the_run_key_does_not_depend_on_etag_quotes():
    listed = [ListedObject("member/a.csv", '"e1"', T)]  # listings quote ETags, notifications do not
    assert run_key("member", listed) == run_key("member", [ListedObject("member/a.csv", "e1", T)])


def test_a_list_budget_below_one_is_refused(monkeypatch):
    from sf_platform.core.registry import parse_registry
    from sf_platform.sensors.landing import build_landing_sensor

    monkeypatch.setenv("SF_SENSOR_LIST_BUDGET", "0")
    with pytest.raises(ValueError, match="SF_SENSOR_LIST_BUDGET must be at least 1"):
        build_landing_sensor(parse_registry({"tables": {"member": {}}}), "load_tables")
