"""The landing_files sensor evaluated against the moto server: which tables get runs, past 1,000 keys,
platform-owned folders never listed, unchanged listings skipped, replaced objects picked up, a bucket
swept over several ticks, a loose file's organized copy not triggering a second run, and S3 event
notifications read from SQS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sf_platform.core.registry import parse_registry
from sf_platform.core.sensor_cursor import Cursor
from sf_platform.definitions import LOAD_JOB, build_definitions
from sf_platform.hops.organize import organize
from sf_platform.resources.aws import LandingEvents
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


def tick(landing, cursor, events=None):
    sensor = build_landing_sensor(REGISTRY, LOAD_JOB)
    defs = build_definitions(Settings.from_env())
    events = events or LandingEvents(region_name="us-east-1")  # no queue: listing only
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=defs,
            resources={"landing": landing, "landing_events": events},
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
    monkeypatch.setenv("SF_SENSOR_LIST_BUDGET", "100")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: landing.put(f"member/part-{i:05d}.csv", b"MEMBER_ID\n1\n"), range(150)))
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n3\n")

    first, runs = tick(landing, None)  # member's first 100 keys
    assert set(runs) == {"member"} and "member" in Cursor.from_json(first.cursor).sweep.folders
    # lands behind the sweep's position: only the next sweep lists it
    landing.put("member/part-00000-b.csv", b"MEMBER_ID\n2\n")
    second, runs = tick(landing, first.cursor)  # member's last 50, then school_info: sweep complete
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


@pytest.fixture
def landing_events(landing, stack_env):
    """An SQS queue on the moto server that receives the landing bucket's ObjectCreated notifications."""
    connection = dict(
        region_name=stack_env["SF_AWS_REGION"],
        endpoint_url=stack_env["SF_AWS_ENDPOINT_URL"],
        aws_access_key_id=stack_env["SF_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["SF_AWS_SECRET_ACCESS_KEY"],
    )
    sqs = LandingEvents(**connection).client()
    url = sqs.create_queue(QueueName=f"{landing.bucket}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    landing.client().put_bucket_notification_configuration(
        Bucket=landing.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return LandingEvents(**connection, queue_url=url)


def waiting(events) -> int:
    attributes = events.client().get_queue_attributes(
        QueueUrl=events.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_s3_notifications_report_a_file_the_sweep_has_not_reached_and_it_is_not_reported_again(
    landing, landing_events, monkeypatch
):
    monkeypatch.setenv("SF_SENSOR_LIST_BUDGET", "100")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: landing.put(f"member/part-{i:05d}.csv", b"MEMBER_ID\n1\n"), range(150)))
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n3\n")
    cursor = None
    while True:  # the first sweep, with every notification of the objects above read on the way
        result, _ = tick(landing, cursor, landing_events)
        cursor = result.cursor
        if Cursor.from_json(cursor).sweep is None:
            break
    assert waiting(landing_events) == 0, "read notifications are deleted"

    first, _ = tick(landing, cursor, landing_events)  # a new sweep: member's first 100 keys
    landing.put("member/part-00000-b.csv", b"MEMBER_ID\n2\n")  # behind the sweep's position
    landing.put("_curated/member/x.parquet", b"x")  # the platform's own folder: never a run
    second, runs = tick(landing, first.cursor, landing_events)
    assert set(runs) == {"member"} and runs["member"].tags["sf/new_file_keys"] == "member/part-00000-b.csv"
    third, runs = tick(landing, second.cursor, landing_events)
    assert runs == {}
    _, runs = tick(landing, third.cursor, landing_events)  # the next sweep lists it: already reported
    assert runs == {}


def test_a_message_that_is_no_s3_event_is_left_in_the_queue_and_the_rest_are_read(landing, landing_events):
    landing_events.client().send_message(QueueUrl=landing_events.queue_url, MessageBody="hello")
    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n1\n")
    _, runs = tick(landing, None, landing_events)
    assert set(runs) == {"member"}
    assert waiting(landing_events) == 1


def test_first_tick_over_a_loaded_bucket_requests_runs_only_for_work_still_to_do(landing, glue):
    from sf_platform.hops.crawl import crawl_table

    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n1\n2\n")
    landing.put("member/MEMBER_202508021200.csv", b"MEMBER_ID\n3\n")
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n7\n")
    for table in ("member", "school_info"):
        crawl_table(landing, glue, table, REGISTRY.tables[table])
    landing.put("school_info/SCHOOL_INFO_202508021200.csv", b"SCHOOL_ID\n8\n")  # landed after the crawl
    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n1\n2\n4\n")  # replaced after the crawl

    first, runs = tick(landing, None)  # no cursor: a new instance or a first `make ui` after `make demo`

    assert set(runs) == {"member", "school_info"}
    assert runs["member"].tags["sf/new_file_keys"] == "member/MEMBER_202508011200.csv"
    assert runs["school_info"].tags["sf/new_file_keys"] == "school_info/SCHOOL_INFO_202508021200.csv"

    crawl_table(landing, glue, "member", REGISTRY.tables["member"])
    crawl_table(landing, glue, "school_info", REGISTRY.tables["school_info"])
    nothing, runs = tick(landing, None)
    assert runs == {} and nothing.skip_message.startswith("no new or changed files")


def test_first_tick_reads_crawl_profiles_only_of_crawled_tables(landing, glue):
    from sf_platform.hops.crawl import crawl_table

    landing.put("member/MEMBER_202508011200.csv", b"MEMBER_ID\n1\n")
    crawl_table(landing, glue, "member", REGISTRY.tables["member"])
    landing.put("member/MEMBER_202508021200.csv", b"MEMBER_ID\n2\n")  # landed after the crawl
    landing.put("school_info/SCHOOL_INFO_202508011200.csv", b"SCHOOL_ID\n7\n")  # never crawled
    landing.put("school_info/SCHOOL_INFO_202508021200.csv", b"SCHOOL_ID\n8\n")

    _, runs = tick(landing, None)

    assert set(runs) == {"member", "school_info"}
    assert runs["member"].tags["sf/new_file_keys"] == "member/MEMBER_202508021200.csv"
    assert runs["school_info"].tags["sf/new_file_keys"] == (
        "school_info/SCHOOL_INFO_202508011200.csv, school_info/SCHOOL_INFO_202508021200.csv"
    )
