"""The curated layer (the hub: one Apache Iceberg table per registry table) and query in place, against
the real moto server: raw files -> crawl -> curate -> an Iceberg table in the curated Glue database that
pyiceberg and DuckDB read with the catalog's types; new, replaced and deleted objects; quarantine;
schema evolution; compaction; exactly once through a killed run and under two concurrent runs; the
Hive-style layer migrated; ``sf-platform query`` and the Spectrum statements."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform import cli
from sf_platform.core import columnar, demo_data
from sf_platform.core.registry import load_registry, parse_registry
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.curate import CurateError, curate_table
from sf_platform.hub.catalog import Hub
from sf_platform.hub.conventions import OPERATION, ROW, SOURCE_KEY
from sf_platform.query import QueryError, parse_name
from sf_platform.settings import REPO_ROOT

pytestmark = pytest.mark.integration

HEADER = b"EVENT_ID,MEMBER_NAME,SCHOOL_CODE,AMOUNT,HAPPENED_ON,ACTIVE,SEEN_AT\n"
FILES = {
    "events/dt=2024-01-01/region=kr/a.csv": HEADER
    + b"1,Kim,00123,91.50,2024-03-01,true,2024-03-01 09:00:00\n"
    + b"2,Lee,04567,78.25,2024-03-02,false,2024-03-02 10:30:00\n",
    "events/dt=2024-01-01/region=us/b.csv": HEADER
    + b"3,Park,00089,88.00,2024-03-03,true,\n"
    + b"4,Choi,00001,-1.10,2024-03-04,,2024-03-04 00:00:01\n",
    "events/dt=2024-01-02/region=kr/c.csv": HEADER + b"5,Jung,12345,10.00,2024-03-05,false,2024-03-05 23:59:59\n",
}
TYPES = {
    "event_id": "int",
    "member_name": "string",
    "school_code": "string",
    "amount": "decimal(4,2)",
    "happened_on": "date",
    "active": "boolean",
    "seen_at": "timestamp",
}
SCHOOLS = "학교코드,학교명,지역,학생수\r\n7010001,서울초등학교,서울,812\r\n7010002,부산중학교,부산,455\r\n7010003,대구고등학교,대구,\r\n"


def _config(**settings):
    return parse_registry({"tables": {"t": settings}}).table("t")


def _curated_db(glue) -> str:
    return columnar.curated_database(glue.database)


def _hub(landing, glue) -> Hub:
    return Hub(landing, glue, _curated_db(glue))


def _load(landing, glue, files=FILES, table="events", **settings):
    for key, body in files.items():
        landing.put(key, body)
    config = _config(**settings)
    crawl_table(landing, glue, table, config)
    return config


def _curate(landing, glue, table="events", config=None):
    return curate_table(landing, glue, table, config or _config(), curated_database=_curated_db(glue))


def _rows(landing, glue, table="events") -> list[dict]:
    return _hub(landing, glue).require(table).scan().to_arrow().to_pylist()


def _values(rows: list[dict]) -> dict[int, tuple[str, str]]:
    values = {r["id"]: (r["name"], str(r["amount"])) for r in rows}
    assert len(values) == len(rows), "a row is in the hub table twice"
    return values


def _data_files(landing, glue, table) -> list:
    return [t.file for t in _hub(landing, glue).require(table).scan().plan_files()]


def _one_row_files(landing, glue, n: int, table="ones", start=0):
    """``n`` one-row CSV objects (``id,name,amount``), crawled; -> their config."""
    files = {f"{table}/f{i:03d}.csv": f"id,name,amount\n{i},n{i},{i}.25\n".encode() for i in range(start, start + n)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: landing.put(*kv), files.items()))
    config = _config()
    crawl_table(landing, glue, table, config)
    return config


EXPECTED = {i: (f"n{i}", f"{i}.25") for i in range(300)}


# ------------------------------------------------------------------------------------------ curating


def test_a_partitioned_table_becomes_an_iceberg_table_read_with_the_catalog_types(landing, glue):
    import duckdb

    config = _load(landing, glue)
    report = _curate(landing, glue, config=config)
    assert (report.action, report.rows, report.rows_quarantined, report.sources) == ("created", 5, 0, 3)
    assert report.files == 3 and report.data_files_added == 3  # one per partition
    assert 0 < report.curated_bytes and report.raw_bytes == sum(len(b) for b in FILES.values())

    entry = glue.get_table("events", _curated_db(glue))
    assert entry["Parameters"]["table_type"] == "ICEBERG"
    table = _hub(landing, glue).require("events")
    assert table.location() == f"s3://{landing.bucket}/_curated/events"
    assert [f.name for f in table.schema().fields] == [*TYPES, "dt", "region", SOURCE_KEY, ROW]
    assert [str(f.field_type) for f in table.schema().fields] == [
        "int", "string", "string", "decimal(4, 2)", "date", "boolean", "timestamp", "string", "string",
        "string", "long",
    ]
    assert not any(f.required for f in table.schema().fields)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("dt", "identity"), ("region", "identity")]
    assert table.current_snapshot().summary[OPERATION] == "curate"
    assert report.snapshot_id == table.current_snapshot().snapshot_id

    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["event_id"])
    assert rows[0] == {
        "event_id": 1, "member_name": "Kim", "school_code": "00123", "amount": decimal.Decimal("91.50"),
        "happened_on": dt.date(2024, 3, 1), "active": True, "seen_at": dt.datetime(2024, 3, 1, 9, 0),
        "dt": "2024-01-01", "region": "kr", SOURCE_KEY: "events/dt=2024-01-01/region=kr/a.csv", ROW: 1,
    }
    assert [(r[SOURCE_KEY][-5:], r[ROW]) for r in rows] == [
        ("a.csv", 1), ("a.csv", 2), ("b.csv", 1), ("b.csv", 2), ("c.csv", 1)
    ]
    con = duckdb.connect()
    con.register("events", table.scan(row_filter="region = 'kr'").to_arrow())
    assert con.execute("SELECT count(*), sum(amount), typeof(sum(amount)) FROM events").fetchone() == (
        3, decimal.Decimal("179.75"), "DECIMAL(38,2)"
    )

    again = _curate(landing, glue, config=config)
    assert (again.action, again.files_written, again.files_skipped) == ("unchanged", [], 3)
    assert again.snapshot_id == report.snapshot_id  # nothing new: no commit


def test_new_replaced_and_deleted_objects_add_replace_and_remove_their_rows(landing, glue):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)

    new = "events/dt=2024-01-03/region=kr/d.csv"
    _load(landing, glue, {new: HEADER + b"6,Han,00777,1.00,2024-03-06,true,2024-03-06 08:00:00\n"})
    report = _curate(landing, glue, config=config)
    assert (report.files_written, report.files_skipped, report.rows) == ([new], 3, 6)
    assert (report.data_files_added, report.data_files_removed) == (1, 0)

    replaced = "events/dt=2024-01-01/region=kr/a.csv"
    _load(landing, glue, {replaced: HEADER + b"1,Kim,00123,91.50,2024-03-01,true,\n"})
    report = _curate(landing, glue, config=config)
    assert report.files_written == [replaced] and report.rows == 5
    assert (report.data_files_added, report.data_files_removed) == (1, 1)
    ids = sorted((r["event_id"], r[SOURCE_KEY]) for r in _rows(landing, glue))
    assert [i for i, _ in ids] == [1, 3, 4, 5, 6]

    landing.delete(new)
    crawl_table(landing, glue, "events", config)
    report = _curate(landing, glue, config=config)
    assert report.files_removed == [new] and report.rows == 4
    assert sorted(r["event_id"] for r in _rows(landing, glue)) == [1, 3, 4, 5]


def test_many_small_objects_become_one_data_file_in_one_snapshot(landing, glue):
    config = _one_row_files(landing, glue, 300)
    report = _curate(landing, glue, "ones", config)
    assert (report.rows, report.sources, report.files, len(report.files_written)) == (300, 300, 1, 300)
    table = _hub(landing, glue).require("ones")
    assert len(table.snapshots()) == 1 and report.row_groups_written == 1
    assert _values(_rows(landing, glue, "ones")) == EXPECTED
    assert report.curated_bytes < report.raw_bytes  # 300 one-row CSVs: one zstd file, smaller

    again = _curate(landing, glue, "ones", config)
    assert (again.files_written, again.files_skipped, again.action) == ([], 300, "unchanged")
    assert len(_hub(landing, glue).require("ones").snapshots()) == 1


def test_replacing_one_object_of_a_shared_file_keeps_its_neighbours_exactly(landing, glue):
    config = _one_row_files(landing, glue, 100)
    _curate(landing, glue, "ones", config)
    landing.put("ones/f050.csv", b"id,name,amount\n50,replaced,0.50\n1050,added,1.75\n")
    report = _curate(landing, glue, "ones", config)
    assert report.rows == 101 and not report.problems and report.rows_rewritten == 99
    expected = {**{i: EXPECTED[i] for i in range(100)}, 50: ("replaced", "0.50"), 1050: ("added", "1.75")}
    assert _values(_rows(landing, glue, "ones")) == expected
    assert len(_hub(landing, glue).require("ones").snapshots()) == 2  # one commit: one snapshot

    landing.delete("ones/f020.csv")
    report = _curate(landing, glue, "ones", config)
    assert report.files_removed == ["ones/f020.csv"] and report.rows == 100
    del expected[20]
    assert _values(_rows(landing, glue, "ones")) == expected


def test_an_unreadable_replacement_is_reported_and_curated_once_it_is_readable(landing, glue):
    config = _one_row_files(landing, glue, 30)
    _curate(landing, glue, "ones", config)
    landing.put("ones/f015.csv", b"\x1f\x8b\x08 not really gzip")
    report = _curate(landing, glue, "ones", config)
    assert list(report.problems) == ["ones/f015.csv"]
    expected = {i: v for i, v in EXPECTED.items() if i < 30 and i != 15}  # its stale rows are gone
    assert _values(_rows(landing, glue, "ones")) == expected and report.rows == 29

    landing.put("ones/f015.csv", b"id,name,amount\n15,fixed,0.25\n")
    report = _curate(landing, glue, "ones", config)
    assert report.files_written == ["ones/f015.csv"] and not report.problems
    assert _values(_rows(landing, glue, "ones")) == {**expected, 15: ("fixed", "0.25")}


def test_rows_that_do_not_fit_the_catalog_types_are_quarantined_once(landing, glue):
    config = _load(landing, glue, {"nums/a.csv": b"id,amount\n1,2\n2,3\n"}, table="nums")
    landing.put("nums/b.csv", b"id,amount\n3,4\nx,5\n")  # after the crawl: the catalog still says int
    report = _curate(landing, glue, "nums", config)
    assert report.rows == 3 and report.rows_quarantined == report.rows_quarantined_total == 1
    (qkey,) = report.quarantine_keys
    assert qkey.startswith("_quarantine/curated/nums/nums/b.csv.")
    assert b"x,5" in landing.open(qkey).read()
    assert sorted((r["id"], r[ROW]) for r in _rows(landing, glue, "nums")) == [(1, 1), (2, 2), (3, 1)]
    again = _curate(landing, glue, "nums", config)
    assert (again.rows_quarantined, again.rows_quarantined_total, again.quarantine_keys) == (0, 1, [])


def test_ragged_rows_are_quarantined_with_their_text_and_the_good_rows_are_curated(landing, glue):
    config = _load(
        landing, glue, {"nums/a.csv": b"id,amount\n1,2\n2\n3,4,5\nx,6\n7,8\n"}, table="nums", types={"id": "int"}
    )
    report = _curate(landing, glue, "nums", config)
    assert report.rows == 2 and report.rows_quarantined == 3
    assert sorted((r["id"], r["amount"], r[ROW]) for r in _rows(landing, glue, "nums")) == [(1, 2, 1), (7, 8, 5)]
    (qkey,) = report.quarantine_keys
    rows = list(csv.DictReader(io.StringIO(landing.open(qkey).read().decode())))
    assert [(r["line"], r["id"], r["amount"]) for r in rows] == [("2", "", ""), ("3", "", ""), ("4", "x", "6")]
    assert rows[0]["reason"] == (
        "ragged row: expected 2 fields, got 1 (data row 2, not counting the header or blank lines); raw text: 2"
    )
    assert rows[1]["reason"].startswith("ragged row: expected 2 fields, got 3 ")
    assert "'id'" in rows[2]["reason"]


# ------------------------------------------------------------------------------------------ schema


def test_a_new_column_and_widened_columns_evolve_in_place(landing, glue):
    config = _load(landing, glue, {"nums/a.csv": b"id,amount\n1,2.5\n"}, table="nums")
    first = _curate(landing, glue, "nums", config)
    table = _hub(landing, glue).require("nums")
    assert [(f.name, str(f.field_type)) for f in table.schema().fields][:2] == [("id", "int"), ("amount", "decimal(2, 1)")]
    _load(landing, glue, {"nums/b.csv": b"id,amount,note\n3000000000,123.5,hi\n"}, table="nums")
    entry = glue.get_table("nums")
    assert [(c["Name"], c["Type"]) for c in entry["StorageDescriptor"]["Columns"]] == [
        ("id", "bigint"), ("amount", "decimal(4,1)"), ("note", "string")
    ]
    report = _curate(landing, glue, "nums", config)
    assert report.action == "updated" and report.files_written == ["nums/b.csv"]  # a.csv is not read again
    assert report.schema_changes == ["added note string", "widened id to int64", "widened amount to decimal128(4, 1)"]
    table = _hub(landing, glue).require("nums")
    assert [(f.name, str(f.field_type)) for f in table.schema().fields] == [
        ("id", "long"), ("amount", "decimal(4, 1)"), ("note", "string"), (SOURCE_KEY, "string"), (ROW, "long")
    ]
    assert table.metadata.table_uuid == _hub(landing, glue).require("nums").metadata.table_uuid
    assert first.snapshot_id in [s.snapshot_id for s in table.snapshots()]  # the same table, evolved
    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["amount"], r["note"]) for r in rows] == [
        (1, decimal.Decimal("2.5"), None), (3000000000, decimal.Decimal("123.5"), "hi")
    ]


def test_a_change_iceberg_cannot_make_in_place_rebuilds_or_fails_naming_the_column(landing, glue):
    config = _load(landing, glue, {"nums/a.csv": b"id,code\n1,7\n"}, table="nums")
    _curate(landing, glue, "nums", config)
    _load(landing, glue, {"nums/b.csv": b"id,code\n2,A7\n"}, table="nums")  # code: int -> string
    strict = _config(schema_change={"update_behavior": "MERGE_NEW_COLUMNS"})
    with pytest.raises(CurateError, match="column code: int32 cannot become string"):
        _curate(landing, glue, "nums", strict)
    report = _curate(landing, glue, "nums", config)  # UPDATE_IN_DATABASE (the default): rebuilt
    assert report.action == "rebuilt" and sorted(report.files_written) == ["nums/a.csv", "nums/b.csv"]
    table = _hub(landing, glue).require("nums")
    assert str(table.schema().find_field("code").field_type) == "string"
    assert table.current_snapshot().summary[OPERATION] == "rebuild"
    assert sorted((r["id"], r["code"]) for r in table.scan().to_arrow().to_pylist()) == [(1, "7"), (2, "A7")]


# ------------------------------------------------------------------------------------------ files


def test_compaction_keeps_every_row_in_few_files(landing, glue, monkeypatch):
    config = _one_row_files(landing, glue, 1)
    _curate(landing, glue, "ones", config)
    compacted = 0
    for i in range(1, 8):  # one object a run: a small file a run, until compaction rewrites them
        landing.put(f"ones/f{i:03d}.csv", f"id,name,amount\n{i},n{i},{i}.25\n".encode())
        report = _curate(landing, glue, "ones", config)
        compacted += report.upkeep.compacted_files
        assert report.files <= columnar.file_budget(report.curated_bytes, 128 * 1024**2)
    assert compacted >= 4
    table = _hub(landing, glue).require("ones")
    assert _values(table.scan().to_arrow().to_pylist()) == {i: EXPECTED[i] for i in range(8)}
    operations = [s.summary[OPERATION] for s in table.snapshots()]
    assert "compaction" in operations
    compaction = next(s for s in table.snapshots() if s.summary[OPERATION] == "compaction")
    assert compaction.summary["sf.ledger"] == table.snapshot_by_id(compaction.parent_snapshot_id).summary["sf.ledger"]

    monkeypatch.setenv("SF_HUB_TARGET_FILE_MB", str(16 / 1024**2))  # 16 bytes: every object its own file
    for i in (8, 9):
        landing.put(f"ones/f{i:03d}.csv", f"id,name,amount\n{i},n{i},{i}.25\n".encode())
    report = _curate(landing, glue, "ones", config)
    assert report.data_files_added == 2 and report.upkeep.compacted_files == 0  # files at the target stay
    assert _values(_rows(landing, glue, "ones")) == {i: EXPECTED[i] for i in range(10)}


def test_expired_snapshots_and_their_orphan_files_are_removed(landing, glue, monkeypatch):
    config = _one_row_files(landing, glue, 3)
    _curate(landing, glue, "ones", config)
    landing.put("ones/f001.csv", b"id,name,amount\n1,replaced,0.50\n")
    _curate(landing, glue, "ones", config)
    before = {o["Key"] for o in landing.list_objects("_curated/ones/data/")}
    assert len(before) == 2  # the replaced file is still referenced by the first snapshot
    monkeypatch.setenv("SF_HUB_SNAPSHOT_RETENTION_HOURS", "0.0000001")
    monkeypatch.setenv("SF_HUB_ORPHAN_AGE_HOURS", "0.0000001")
    time.sleep(0.5)
    landing.put("ones/f002.csv", b"id,name,amount\n2,replaced,0.50\n")
    report = _curate(landing, glue, "ones", config)
    assert report.upkeep.snapshots_expired == 2 and report.upkeep.orphans_removed >= 2
    table = _hub(landing, glue).require("ones")
    assert len(table.snapshots()) == 1
    live = {t.file.file_path for t in table.scan().plan_files()}
    assert {landing.uri(o["Key"]) for o in landing.list_objects("_curated/ones/data/")} == live
    assert _values(table.scan().to_arrow().to_pylist()) == {0: EXPECTED[0], 1: ("replaced", "0.50"), 2: ("replaced", "0.50")}


# ------------------------------------------------------------------------------------------ exactly once

CURATE_SCRIPT = textwrap.dedent("""
    import sys
    from dagster_aws.s3 import S3Resource
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.curate import curate_table
    from sf_platform.resources.aws import GlueCatalog, LandingBucket
    region, endpoint, bucket, database, table = sys.argv[1:6]
    aws = dict(region_name=region, endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    landing = LandingBucket(s3=S3Resource(**aws), bucket=bucket)
    glue = GlueCatalog(**aws, database=database)
    config = parse_registry({"tables": {table: {}}}).table(table)
    print("started", flush=True)
    report = curate_table(landing, glue, table, config, curated_database=database + "_curated")
    print("done", report.rows, flush=True)
""")


def _curate_process(landing, glue, table: str, stack_env) -> subprocess.Popen:
    argv = [sys.executable, "-c", CURATE_SCRIPT, stack_env["SF_AWS_REGION"], stack_env["SF_AWS_ENDPOINT_URL"],
            landing.bucket, glue.database, table]
    return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_at_any_point_and_run_again_holds_every_row_once(landing, glue, stack_env):
    config = _one_row_files(landing, glue, 60)
    _curate(landing, glue, "ones", config)
    expected = {i: EXPECTED[i] for i in range(60)}
    states = [expected]  # the table after each round had its run commit
    for round_, delay in enumerate((0.0, 1.0, 2.0, 3.5)):
        # each round: a new object, a replaced one, a deleted one; the run killed after `delay` seconds
        new, replaced, deleted = 200 + round_, 10 + round_, 40 + round_
        landing.put(f"ones/f{new:03d}.csv", f"id,name,amount\n{new},n{new},0.75\n".encode())  # fits decimal(4,2)
        landing.put(f"ones/f{replaced:03d}.csv", f"id,name,amount\n{replaced},r{round_},0.50\n".encode())
        landing.delete(f"ones/f{deleted:03d}.csv")
        expected = {**expected, new: (f"n{new}", "0.75"), replaced: (f"r{round_}", "0.50")}
        expected = {k: v for k, v in expected.items() if k != deleted}
        process = _curate_process(landing, glue, "ones", stack_env)
        assert process.stdout.readline().strip() == "started"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        states.append(expected)
        # killed before its commit or after it: the table is as after some round, never in between
        held = _values(_rows(landing, glue, "ones"))
        assert held in states, [sorted(set(held.items()) ^ set(state.items())) for state in states]
    report = _curate(landing, glue, "ones", config)
    assert not report.problems
    assert _values(_rows(landing, glue, "ones")) == expected and report.rows == len(expected)
    table = _hub(landing, glue).require("ones")
    assert int(table.current_snapshot().summary["total-records"]) == len(expected)


def test_two_concurrent_curations_of_a_table_hold_every_row_once(landing, glue, stack_env):
    config = _one_row_files(landing, glue, 40)
    processes = [_curate_process(landing, glue, "ones", stack_env) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert [out.split()[-1] for out, _ in outputs] == ["40", "40"]
    assert _values(_rows(landing, glue, "ones")) == {i: EXPECTED[i] for i in range(40)}
    landing.put("ones/f007.csv", b"id,name,amount\n7,replaced,0.50\n")
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: _curate(landing, glue, "ones", config), range(2)))
    assert sum(len(r.files_written) for r in reports) == 1  # written once, by the run whose commit won
    assert _values(_rows(landing, glue, "ones")) == {**{i: EXPECTED[i] for i in range(40)}, 7: ("replaced", "0.50")}


# ------------------------------------------------------------------------------------------ migration


def test_a_hive_style_curated_table_is_replaced_by_the_iceberg_table(landing, glue):
    config = _load(landing, glue)
    database = _curated_db(glue)
    glue.ensure_database(database)
    glue.create_table({
        "Name": "events", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}, {"Name": "region", "Type": "string"}],
        "StorageDescriptor": {"Columns": [{"Name": "event_id", "Type": "int"}],
                              "Location": f"s3://{landing.bucket}/_curated/events/"},
    }, database)
    old = io.BytesIO()
    pq.write_table(pa.table({"event_id": [1, 2]}), old)
    landing.put("_curated/events/dt=2024-01-01/region=kr/part-abc.parquet", old.getvalue())
    landing.put("_sf/curated/events/ledger.json", b'{"files": {}}')

    report = _curate(landing, glue, config=config)
    assert report.action == "migrated" and report.rows == 5
    assert glue.get_table("events", database)["Parameters"]["table_type"] == "ICEBERG"
    keys = [o["Key"] for o in landing.list_objects("_curated/events/")]
    assert "_curated/events/dt=2024-01-01/region=kr/part-abc.parquet" not in keys
    assert all(k.startswith(("_curated/events/data/", "_curated/events/metadata/")) for k in keys)
    assert landing.list_objects("_sf/curated/events/") == []
    assert sorted(r["event_id"] for r in _rows(landing, glue)) == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------------ asset


def test_the_curated_asset_materializes_with_its_metadata_and_reconciles(landing, glue):
    import dagster as dg

    from sf_platform.assets.curated import CuratedHop
    from sf_platform.assets.names import curated_key
    from sf_platform.assets.tables import build_hop_assets

    _load(landing, glue)
    hop = CuratedHop(glue.database, _curated_db(glue))
    asset = build_hop_assets("curated", [hop], parse_registry({"tables": {"events": {}}}))
    assert set(asset.keys) == {curated_key("events")}
    assert set(asset.specs_by_key[curated_key("events")].kinds) == {"iceberg", "s3", "glue"}
    result = dg.materialize([asset], resources={"landing": landing, "glue": glue})
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == curated_key("events")]
    metadata = event.materialization.metadata
    assert metadata["dagster/table_name"].value == f"{_curated_db(glue)}.events"
    assert metadata["dagster/row_count"].value == 5
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == [*TYPES, "dt", "region"]
    assert metadata["files"].value == 3 and metadata["rows_quarantined"].value == 0
    assert metadata["snapshot_id"].value == str(_hub(landing, glue).current_snapshot_id("events"))
    assert 0 < metadata["compression_ratio"].value and metadata["bytes_raw"].value > 0
    assert metadata["quarantine_location"].value.endswith("/_quarantine/curated/events/")
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.metadata


# ------------------------------------------------------------------------------------------ query in place


def _use(monkeypatch, glue, **extra):
    monkeypatch.setenv("SF_GLUE_DATABASE", glue.database)
    monkeypatch.delenv("SF_GLUE_CURATED_DATABASE", raising=False)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SUMMARY = (
    "SELECT dt, region, count(*) AS n, sum(amount) AS total, min(happened_on) AS first, "
    "count(seen_at) AS seen, max(school_code) AS code FROM {} "
    "WHERE dt = '2024-01-01' AND active IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
)


def test_query_answers_the_same_on_raw_and_curated_tables(landing, glue, monkeypatch, capsys, stack_env):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)
    _use(monkeypatch, glue)

    code, raw, err = _cli(capsys, "query", SUMMARY.format("raw.events"), "--format", "json")
    assert code == 0, err
    code, curated, err = _cli(capsys, "query", SUMMARY.format("curated.events"), "--format", "json")
    assert code == 0, err
    assert raw == curated
    assert json.loads(raw) == [
        {"dt": "2024-01-01", "region": "kr", "n": 2, "total": "169.75", "first": "2024-03-01", "seen": 2, "code": "04567"},
        {"dt": "2024-01-01", "region": "us", "n": 1, "total": "88.00", "first": "2024-03-03", "seen": 0, "code": "00089"},
    ]
    code, text, _ = _cli(capsys, "query", "SELECT * FROM curated.events ORDER BY 1 LIMIT 1", "--format", "csv")
    assert text.splitlines()[0] == ",".join([*TYPES, "dt", "region"])  # no bookkeeping columns

    env = {**os.environ, **stack_env, "SF_GLUE_DATABASE": glue.database, "SF_GLUE_CURATED_DATABASE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "sf_platform.cli", "query", SUMMARY.format("curated.events"), "--format", "json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == raw


def test_query_reads_only_the_current_files_of_the_partitions_it_needs(landing, glue, monkeypatch, capsys):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)
    landing.put("events/dt=2024-01-01/region=kr/a.csv", HEADER + b"1,Kim,00123,91.50,2024-03-01,true,\n")
    _curate(landing, glue, config=config)  # a.csv replaced: its old file is still on S3, for old snapshots
    _use(monkeypatch, glue)
    code, out, err = _cli(capsys, "query", "SELECT count(*) AS n FROM curated.events", "--format", "csv")
    assert (code, out) == (0, "n\n4\n"), err
    (us,) = [f for f in _data_files(landing, glue, "events") if "region=us" in f.file_path]
    landing.put(us.file_path.split(f"{landing.bucket}/", 1)[1], b"not parquet at all")
    code, out, err = _cli(capsys, "query", "SELECT count(*) AS n FROM curated.events WHERE region = 'kr'", "--format", "csv")
    assert (code, out) == (0, "n\n2\n"), err  # the broken us file is never opened
    code, _, err = _cli(capsys, "query", "SELECT count(*) FROM curated.events")
    assert code == 1 and us.file_path.rsplit("/", 1)[1] in err


def test_cp949_tables_read_the_same_raw_and_curated(landing, glue, monkeypatch, capsys):
    config = _load(landing, glue, {"schools/s.csv": SCHOOLS.encode("cp949")}, table="schools")
    _curate(landing, glue, "schools", config)
    _use(monkeypatch, glue)
    sql = "SELECT 학교명, 학생수 FROM {}.schools ORDER BY 학교코드"
    code, raw, err = _cli(capsys, "query", sql.format("raw"), "--format", "csv")
    assert code == 0, err
    assert raw == "학교명,학생수\n서울초등학교,812\n부산중학교,455\n대구고등학교,\n"
    assert _cli(capsys, "query", sql.format("curated"), "--format", "csv")[1] == raw


def test_every_demo_table_reads_the_same_raw_and_curated(landing, glue, monkeypatch, capsys):
    """Headerless, CP949 with CRLF, pipe-delimited, quoted, two files: every row equal on both sides."""
    registry = load_registry(REPO_ROOT / "tables.yaml")
    demo = demo_data.generate()
    for f in demo:
        landing.put(f"{f.table}/{f.key}", f.body)
    for table, config in registry.tables.items():
        crawl_table(landing, glue, table, config)
        report = _curate(landing, glue, table, config)
        assert report.rows == sum(f.rows for f in demo if f.table == table) and not report.problems, table
    _use(monkeypatch, glue)
    for table in registry.tables:
        code, raw, err = _cli(capsys, "query", f"SELECT * FROM raw.{table} ORDER BY ALL", "--format", "json")
        assert code == 0, err
        curated = _cli(capsys, "query", f"SELECT * FROM curated.{table} ORDER BY ALL", "--format", "json")[1]
        assert curated == raw, table


def test_query_errors_are_clear(landing, glue, monkeypatch, capsys):
    _use(monkeypatch, glue)
    code, _, err = _cli(capsys, "query", "SELECT * FROM curated.nope")
    assert code == 1
    assert f"no table 'nope' in Glue database '{glue.database}_curated'" in err


def test_table_names_are_read_as_duckdb_prints_them():
    assert parse_name("raw.member AS m") == ("raw", "member")
    assert parse_name('"my db"."Tab""le"') == ("my db", 'Tab"le')
    assert parse_name("Member") == ("member",)
    with pytest.raises(QueryError):
        parse_name("")


# ------------------------------------------------------------------------------------------ Redshift


def test_spectrum_ddl_for_a_configured_role(landing, glue, monkeypatch, capsys, tmp_path):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)
    tables = tmp_path / "tables.yaml"
    tables.write_text("tables:\n  events: {}\n  not_curated: {}\n", encoding="utf-8")
    role = "arn:aws:iam::123456789012:role/spectrum"
    _use(monkeypatch, glue, SF_TABLES_FILE=str(tables), SF_REDSHIFT_IAM_ROLE=role)

    code, out, err = _cli(capsys, "spectrum-ddl")
    assert code == 0, err
    curated = _curated_db(glue)
    assert (
        f'CREATE EXTERNAL SCHEMA IF NOT EXISTS "{curated}"\n'
        f"FROM DATA CATALOG DATABASE '{curated}'\nIAM_ROLE '{role}';"
    ) in out
    columns = ", ".join(f'"{c}"' for c in [*TYPES, "dt", "region"])
    assert f'CREATE TABLE "public"."events" AS\nSELECT {columns}\nFROM "{curated}"."events";' in out
    assert "not_curated" not in out and SOURCE_KEY not in out

    monkeypatch.setenv("SF_REDSHIFT_IAM_ROLE", "")
    code, _, err = _cli(capsys, "spectrum-ddl")
    assert code == 1 and "SF_REDSHIFT_IAM_ROLE is not set" in err
