"""The landing_files sensor evaluated against the moto server: which tables get runs, past 1,000 keys,
platform-owned folders never listed, unchanged listings skipped, replaced objects picked up, a bucket
swept over several ticks, and a loose file's organized copy not triggering a second run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sf_platform.core.registry import parse_registry
from sf_platform.definitions import build_definitions
from sf_platform.core.sensor_cursor import Cursor
from sf_platform.hops.organize import organize
from sf_platform.sensors.landing import build_landing_sensor, scan
from sf_platform.settings import Settings

pytestmark = pytest.mark.integration

REGISTRY = parse_registry(
    {
        "tables": {"member": {}, "school_info": {}},
        "exports": {"prefix": "exports/", "table_pattern": "SALES_%"},
    }
)


def listed_keys(landing, skip_folders=frozenset()):
    """Every key one whole sweep from a fresh cursor lists (all of them are new to it)."""
    fresh, _ = scan(landing, Cursor(), set(skip_folders), 10**9, timedelta(minutes=5), datetime.now(UTC))
    return {o.key for o in fresh}


def tick(landing, cursor):
    sensor = build_landing_sensor(REGISTRY)
    defs = build_definitions(Settings.from_env())
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"landing": landing}
        ) as context,
    ):
        result = sensor.evaluate_tick(context)
    return result, {r.tags["sf/table"]: r for r in result.run_requests or []}


def test_sensor_requests_one_run_per_table_with_new_files_and_ignores_platform_folders(landing):
    landing.put("MEMBER_202508291511.csv", b"MEMBER_ID\n1\n")
    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n2\n")
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n3\n")
    for owned in ("_quarantine/mysql/member/x.csv", "_curated/member/x.parquet", "exports/sales/part-0.avro"):
        landing.put(owned, b"x")
    assert listed_keys(landing, {"exports"}) == {
        "MEMBER_202508291511.csv",
        "member/MEMBER_202508011200.csv",
        "school_info/SCHOOL_INFO_202508011200.csv",
    }

    first, runs = tick(landing, None)
    assert set(runs) == {"member", "school_info"}
    assert dg.AssetKey(["s3", "member"]) in runs["member"].asset_selection
    assert any(k.path[0] == "mysql" for k in runs["member"].asset_selection)

    again, runs = tick(landing, first.cursor)
    assert runs == {} and "no new or changed files" in again.skip_message

    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n2\n22\n")  # same key, new ETag
    _, runs = tick(landing, again.cursor)
    assert set(runs) == {"member"}


def test_sensor_pages_past_1000_keys_and_reports_only_the_new_one(landing):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: landing.put(f"member/part-{i:05d}.csv", b"MEMBER_ID\n1\n"), range(1_050)))
    first, runs = tick(landing, None)
    assert len(listed_keys(landing)) == 1_050
    assert set(runs) == {"member"}

    landing.put("member/part-99999.csv", b"MEMBER_ID\n9\n")
    second, runs = tick(landing, first.cursor)
    assert set(runs) == {"member"}
    assert (
        runs["member"].run_key != tick(landing, None)[1]["member"].run_key
    )  # the run covers only the new key
    _, runs = tick(landing, second.cursor)
    assert runs == {}


def test_a_bucket_bigger_than_the_budget_is_swept_over_ticks_and_misses_nothing(landing, monkeypatch):
    monkeypatch.setenv("SF_SENSOR_LIST_BUDGET", "1000")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: landing.put(f"member/part-{i:05d}.csv", b"MEMBER_ID\n1\n"), range(1_500)))
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n3\n")

    first, runs = tick(landing, None)  # member's first 1,000 keys
    assert set(runs) == {"member"} and "member" in Cursor.from_json(first.cursor).sweep.folders
    # lands behind the sweep's position: only the next sweep lists it
    landing.put("member/part-00000-b.csv", b"MEMBER_ID\n2\n")
    second, runs = tick(landing, first.cursor)  # member's last 500, then school_info: sweep complete
    assert set(runs) == {"member", "school_info"} and Cursor.from_json(second.cursor).sweep is None
    third, runs = tick(landing, second.cursor)
    assert set(runs) == {"member"}  # part-00000-b.csv, found by the new sweep
    _, runs = tick(landing, third.cursor)
    assert runs == {}


def test_a_loose_file_moved_by_organize_does_not_trigger_a_second_run(landing):
    landing.put("MEMBER_202508291511.csv", b"MEMBER_ID\n1\n")
    first, runs = tick(landing, None)
    assert set(runs) == {"member"}
    report = organize(landing, REGISTRY.landing.loose_file_pattern)
    assert report.moved["member"] == ["member/MEMBER_202508291511.csv"]
    second, runs = tick(landing, first.cursor)
    assert runs == {}, "the organized copy is the same file"
    landing.put("member/MEMBER_202508291511.csv", b"MEMBER_ID\n1\n2\n")  # then really replaced
    _, runs = tick(landing, second.cursor)
    assert set(runs) == {"member"}
