"""The curated layer and query in place against the real moto server: raw files -> crawl -> typed Parquet
with its Parquet Glue entry and partitions, many small source objects per curated file, incremental per
source object, ``sf-platform query`` giving the same answers on raw and curated tables, and the Redshift
statements."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform import cli
from sf_platform.core import columnar, demo_data
from sf_platform.core.registry import load_registry, parse_registry
from sf_platform.hops import curate
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.curate import curate_table
from sf_platform.query import QueryError, parse_name
from sf_platform.settings import REPO_ROOT

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


def _load(landing, glue, files=FILES, table="events", **settings):
    for key, body in files.items():
        landing.put(key, body)
    config = _config(**settings)
    crawl_table(landing, glue, table, config)
    return config


def _curate(landing, glue, table="events", config=None):
    return curate_table(landing, glue, table, config or _config(), curated_database=_curated_db(glue))


def _curated_objects(landing, table="events") -> dict[str, dict]:
    return {o["Key"]: o for o in landing.list_objects(columnar.curated_prefix(table))}


def _parquet(landing, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(landing.open(key).read()))


def _etag(landing, key: str) -> str:
    return landing.head(key)["ETag"].strip('"')


def _curated_in(landing, folder: str, table="events") -> list[str]:
    """The curated files in one partition folder (``dt=2024-01-01/region=kr/``)."""
    prefix = columnar.curated_prefix(table) + folder
    return [k for k in _curated_objects(landing, table) if k.startswith(prefix) and "/" not in k[len(prefix) :]]


def _curated_rows(landing, table: str) -> list[dict]:
    """Every row of the curated table, read from every file under its folder as a query would."""
    rows = []
    for key in sorted(_curated_objects(landing, table)):
        rows += _parquet(landing, key).to_pylist()
    return rows


# ------------------------------------------------------------------------------------------ curating


@pytest.mark.integration
def test_a_partitioned_table_becomes_a_typed_parquet_table_with_its_partitions(landing, glue):
    config = _load(landing, glue)
    report = _curate(landing, glue, config=config)
    assert (report.action, report.rows, report.files, report.rows_quarantined) == ("created", 5, 3, 0)
    assert 0 < report.curated_bytes and report.raw_bytes == sum(len(b) for b in FILES.values())

    entry = glue.get_table("events", _curated_db(glue))
    sd = entry["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert entry["Parameters"]["classification"] == "parquet"
    assert entry["Parameters"]["recordCount"] == "5"
    assert {c["Name"]: c["Type"] for c in sd["Columns"]} == TYPES
    assert [k["Name"] for k in entry["PartitionKeys"]] == ["dt", "region"]
    assert sd["Location"] == f"s3://{landing.bucket}/_curated/events/"

    partitions = {tuple(p["Values"]): p for p in glue.partitions("events", _curated_db(glue))}
    assert set(partitions) == {("2024-01-01", "kr"), ("2024-01-01", "us"), ("2024-01-02", "kr")}
    us = partitions[("2024-01-01", "us")]
    assert us["StorageDescriptor"]["Location"] == f"s3://{landing.bucket}/_curated/events/dt=2024-01-01/region=us/"
    assert us["Parameters"]["recordCount"] == "2"

    # one source object per partition folder here: one curated file in each
    folders = ["dt=2024-01-01/region=kr/", "dt=2024-01-01/region=us/", "dt=2024-01-02/region=kr/"]
    assert all(len(_curated_in(landing, f)) == 1 for f in folders) and len(_curated_objects(landing)) == 3
    (key,) = _curated_in(landing, "dt=2024-01-01/region=us/")
    assert key == columnar.batch_key("events", [("events/dt=2024-01-01/region=us/b.csv", _etag(landing, "events/dt=2024-01-01/region=us/b.csv"))])
    head = landing.head(key)
    assert head["Metadata"]["sf-sources"] == "1"
    assert head["Metadata"]["sf-source-key"] == "events/dt=2024-01-01/region=us/b.csv"
    assert head["Metadata"]["sf-source-etag"] == _etag(landing, "events/dt=2024-01-01/region=us/b.csv")
    data = _parquet(landing, key)
    assert data.schema == columnar.arrow_schema(columnar.columns_of(entry))  # typed, no partition columns
    assert str(data.column("amount").to_pylist()[1]) == "-1.10"
    assert data.column("active").to_pylist() == [True, None]
    assert pq.ParquetFile(io.BytesIO(landing.open(key).read())).metadata.row_group(0).column(0).compression == "ZSTD"

    again = _curate(landing, glue, config=config)
    assert (again.action, again.files_written, again.files_skipped) == ("unchanged", [], 3)
    assert again.partitions_added == again.partitions_updated == 0
    assert len(glue.table_versions("events", _curated_db(glue))) == 1


@pytest.mark.integration
def test_new_replaced_and_deleted_raw_files_add_replace_and_remove_their_curated_rows(landing, glue):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)
    before = _curated_objects(landing)

    new = "events/dt=2024-01-03/region=kr/d.csv"
    _load(landing, glue, {new: HEADER + b"6,Han,00777,1.00,2024-03-06,true,2024-03-06 08:00:00\n"})
    report = _curate(landing, glue, config=config)
    after = _curated_objects(landing)
    assert report.files_written == [new] and report.files_skipped == 3 and report.batches == 1
    assert set(after) - set(before) == set(_curated_in(landing, "dt=2024-01-03/region=kr/"))
    assert all(after[k]["ETag"] == before[k]["ETag"] for k in before)  # the others were not rewritten
    assert report.partitions_added == 1 and report.rows == 6

    replaced = "events/dt=2024-01-01/region=kr/a.csv"
    (old_file,) = _curated_in(landing, "dt=2024-01-01/region=kr/")
    _load(landing, glue, {replaced: HEADER + b"1,Kim,00123,91.50,2024-03-01,true,\n"})
    report = _curate(landing, glue, config=config)
    assert report.files_written == [replaced] and report.files_retired == 1
    (new_file,) = _curated_in(landing, "dt=2024-01-01/region=kr/")
    assert new_file != old_file and len(_curated_objects(landing)) == 4
    assert _parquet(landing, new_file).column("event_id").to_pylist() == [1]
    assert report.rows == 5

    landing.delete(new)
    crawl_table(landing, glue, "events", config)
    report = _curate(landing, glue, config=config)
    assert report.files_removed == [new] and report.partitions_removed == 1
    assert _curated_in(landing, "dt=2024-01-03/region=kr/") == [] and len(_curated_objects(landing)) == 3


def _one_row_files(landing, glue, n: int, table="ones"):
    """``n`` one-row CSV objects (``id,name,amount``), crawled; -> their config."""
    files = {f"{table}/f{i:03d}.csv": f"id,name,amount\n{i},n{i},{i}.25\n".encode() for i in range(n)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: landing.put(*kv), files.items()))
    config = _config()
    crawl_table(landing, glue, table, config)
    return config


def _values(rows: list[dict]) -> dict[int, tuple[str, str]]:
    values = {r["id"]: (r["name"], str(r["amount"])) for r in rows}
    assert len(values) == len(rows), "a row is in the curated table twice"
    return values


EXPECTED = {i: (f"n{i}", f"{i}.25") for i in range(300)}


@pytest.mark.integration
def test_many_small_files_become_one_curated_file_and_a_rerun_writes_nothing(landing, glue):
    config = _one_row_files(landing, glue, 300)
    report = _curate(landing, glue, "ones", config)
    assert (report.rows, report.sources, report.files, report.batches, len(report.files_written)) == (300, 300, 1, 1, 300)
    (only,) = objects = _curated_objects(landing, "ones")
    assert only.startswith("_curated/ones/part-") and landing.head(only)["Metadata"]["sf-sources"] == "300"
    assert _values(_curated_rows(landing, "ones")) == EXPECTED
    assert pq.ParquetFile(io.BytesIO(landing.open(only).read())).metadata.num_row_groups == 1
    entry = glue.get_table("ones", _curated_db(glue))
    assert (entry["Parameters"]["recordCount"], entry["Parameters"]["objectCount"]) == ("300", "1")
    assert report.curated_bytes == objects[only]["Size"] and report.raw_bytes == sum(
        o["Size"] for o in landing.list_objects("ones/")
    )

    ledger = landing.open(columnar.ledger_key("ones")).read()
    again = _curate(landing, glue, "ones", config)
    assert (again.files_written, again.batches, again.files_skipped, again.action) == ([], 0, 300, "unchanged")
    assert _curated_objects(landing, "ones") == objects  # same key, same ETag, same LastModified
    assert landing.open(columnar.ledger_key("ones")).read() == ledger


@pytest.mark.integration
def test_replacing_or_deleting_one_object_of_a_batch_changes_exactly_its_rows(landing, glue, monkeypatch):
    monkeypatch.setattr(columnar, "BATCH_OBJECTS", 100)  # 300 objects: three curated files
    config = _one_row_files(landing, glue, 300)
    _curate(landing, glue, "ones", config)
    first = _curated_objects(landing, "ones")
    assert len(first) == 3 and _values(_curated_rows(landing, "ones")) == EXPECTED

    landing.put("ones/f150.csv", b"id,name,amount\n150,replaced,0.50\n1150,added,1.75\n")
    report = _curate(landing, glue, "ones", config)
    assert report.rows == 301 and not report.problems
    assert _values(_curated_rows(landing, "ones")) == {
        **EXPECTED, 150: ("replaced", "0.50"), 1150: ("added", "1.75")
    }
    second = _curated_objects(landing, "ones")
    assert len(second) == 3 and len(set(second) & set(first)) == 2  # only f150's file was rewritten
    assert all(second[k]["ETag"] == first[k]["ETag"] for k in set(second) & set(first))

    landing.delete("ones/f020.csv")
    report = _curate(landing, glue, "ones", config)
    assert report.files_removed == ["ones/f020.csv"] and report.rows == 300
    expected = {**EXPECTED, 150: ("replaced", "0.50"), 1150: ("added", "1.75")}
    del expected[20]
    assert _values(_curated_rows(landing, "ones")) == expected
    third = _curated_objects(landing, "ones")
    assert len(third) == 3 and len(set(third) & set(second)) == 2
    assert glue.get_table("ones", _curated_db(glue))["Parameters"]["recordCount"] == "300"

    # every object deleted: no curated file left
    for key in [o["Key"] for o in landing.list_objects("ones/")]:
        landing.delete(key)
    report = _curate(landing, glue, "ones", config)
    assert report.rows == 0 and len(report.files_removed) == 299 and _curated_objects(landing, "ones") == {}


class _Killed(BaseException):
    """The process stopping part way (not an error the hop reports and goes on from)."""


@pytest.mark.integration
def test_a_run_killed_part_way_leaves_no_row_counted_twice_after_the_next_run(landing, glue, monkeypatch):
    monkeypatch.setattr(columnar, "BATCH_OBJECTS", 100)
    config = _one_row_files(landing, glue, 300)
    _curate(landing, glue, "ones", config)
    (some_file, *_) = _curated_objects(landing, "ones")
    landing.put("_curated/ones/part-0000.parquet", landing.open(some_file).read())  # a stray copy of 100 rows

    landing.put("ones/f150.csv", b"id,name,amount\n150,replaced,0.50\n")
    landing.put("ones/f250.csv", b"id,name,amount\n250,replaced,0.50\n")
    saves = []
    save = curate._save_ledger

    def killed_after_two_saves(ctx):
        saves.append(1)
        if len(saves) > 2:  # the ledger saved before the batches and after one of them, then the end
            raise _Killed
        save(ctx)

    monkeypatch.setattr(curate, "_save_ledger", killed_after_two_saves)
    with pytest.raises(_Killed):
        _curate(landing, glue, "ones", config)
    monkeypatch.setattr(curate, "_save_ledger", save)

    report = _curate(landing, glue, "ones", config)
    assert report.orphans_removed >= 1 and not report.problems
    expected = {**EXPECTED, 150: ("replaced", "0.50"), 250: ("replaced", "0.50")}
    assert _values(_curated_rows(landing, "ones")) == expected
    assert len(_curated_objects(landing, "ones")) == 3 and report.rows == 300
    assert _curate(landing, glue, "ones", config).files_written == []


@pytest.mark.integration
def test_an_unreadable_replacement_is_reported_and_curated_once_it_is_readable(landing, glue, monkeypatch):
    monkeypatch.setattr(columnar, "BATCH_OBJECTS", 10)
    config = _one_row_files(landing, glue, 30)
    _curate(landing, glue, "ones", config)
    landing.put("ones/f015.csv", b"\x1f\x8b\x08 not really gzip")
    report = _curate(landing, glue, "ones", config)
    assert list(report.problems) == ["ones/f015.csv"]
    # its old rows went with the file that held them; the other nine objects of that file are kept
    expected = {i: v for i, v in EXPECTED.items() if i < 30 and i != 15}
    assert _values(_curated_rows(landing, "ones")) == expected and report.rows == 29
    assert len(_curated_objects(landing, "ones")) == 3

    landing.put("ones/f015.csv", b"id,name,amount\n15,fixed,0.25\n")
    report = _curate(landing, glue, "ones", config)
    assert "ones/f015.csv" in report.files_written and not report.problems
    assert _values(_curated_rows(landing, "ones")) == {**expected, 15: ("fixed", "0.25")}
    assert len(_curated_objects(landing, "ones")) == 3  # it joined the file of nine


@pytest.mark.integration
def test_objects_arriving_one_per_run_gather_in_few_files(landing, glue, monkeypatch):
    monkeypatch.setattr(curate, "TOP_UP_OBJECTS", 4)
    config = _one_row_files(landing, glue, 1)
    _curate(landing, glue, "ones", config)
    for i in range(1, 10):
        landing.put(f"ones/f{i:03d}.csv", f"id,name,amount\n{i},n{i},{i}.25\n".encode())
        report = _curate(landing, glue, "ones", config)
        assert f"ones/f{i:03d}.csv" in report.files_written and len(report.files_written) <= 4
    assert _values(_curated_rows(landing, "ones")) == {i: EXPECTED[i] for i in range(10)}
    assert len(_curated_objects(landing, "ones")) == 3  # 4 + 4 + 2 objects, not 10 files


@pytest.mark.integration
def test_rows_that_do_not_fit_the_catalog_types_are_quarantined(landing, glue):
    config = _load(landing, glue, {"nums/a.csv": b"id,amount\n1,2\n2,3\n"}, table="nums")
    landing.put("nums/b.csv", b"id,amount\n3,4\nx,5\n")  # after the crawl: the catalog still says int
    report = _curate(landing, glue, "nums", config)
    assert report.rows == 3 and report.rows_quarantined == 1
    (qkey,) = report.quarantine_keys
    assert qkey.startswith("_quarantine/curated/nums/nums/b.csv.")
    assert b"x,5" in landing.open(qkey).read()


@pytest.mark.integration
def test_ragged_rows_are_quarantined_with_their_text_and_the_good_rows_are_curated(landing, glue):
    config = _load(
        landing, glue, {"nums/a.csv": b"id,amount\n1,2\n2\n3,4,5\nx,6\n7,8\n"}, table="nums", types={"id": "int"}
    )
    report = _curate(landing, glue, "nums", config)
    assert report.rows == 2 and report.rows_quarantined == 3
    (only,) = _curated_objects(landing, "nums")
    assert _parquet(landing, only).to_pydict() == {"id": [1, 7], "amount": [2, 8]}
    (qkey,) = report.quarantine_keys
    rows = list(csv.DictReader(io.StringIO(landing.open(qkey).read().decode())))
    assert [(r["line"], r["id"], r["amount"]) for r in rows] == [("2", "", ""), ("3", "", ""), ("4", "x", "6")]
    assert rows[0]["reason"] == (
        "ragged row: expected 2 fields, got 1 (data row 2, not counting the header or blank lines); raw text: 2"
    )
    assert rows[1]["reason"].startswith("ragged row: expected 2 fields, got 3 ")
    assert rows[1]["reason"].endswith("raw text: 3,4,5")
    assert "'id'" in rows[2]["reason"]


@pytest.mark.integration
def test_a_schema_change_rewrites_the_curated_files(landing, glue):
    config = _load(landing, glue, {"nums/a.csv": b"id,amount\n1,2\n"}, table="nums")
    _curate(landing, glue, "nums", config)
    _load(landing, glue, {"nums/b.csv": b"id,amount\n2,2.5\n"}, table="nums")  # amount widens to decimal
    report = _curate(landing, glue, "nums", config)
    assert sorted(report.files_written) == ["nums/a.csv", "nums/b.csv"]
    assert report.action == "updated"
    (only,) = _curated_objects(landing, "nums")  # both objects, one file; the old one is gone
    data = _parquet(landing, only)
    assert pa.types.is_decimal(data.schema.field("amount").type)
    assert [str(v) for v in data.column("amount").to_pylist()] == ["2.0", "2.5"]


@pytest.mark.integration
def test_the_curated_asset_materializes_with_its_metadata(landing, glue):
    import dagster as dg

    from sf_platform.assets.curated import CuratedHop
    from sf_platform.assets.names import curated_key
    from sf_platform.assets.tables import build_hop_assets

    _load(landing, glue)
    hop = CuratedHop(glue.database, _curated_db(glue))
    asset = build_hop_assets("curated", [hop], parse_registry({"tables": {"events": {}}}))
    assert set(asset.keys) == {curated_key("events")}
    assert set(asset.specs_by_key[curated_key("events")].kinds) == {"parquet", "s3", "glue"}
    result = dg.materialize([asset], resources={"landing": landing, "glue": glue})
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == curated_key("events")]
    metadata = event.materialization.metadata
    assert metadata["dagster/table_name"].value == f"{_curated_db(glue)}.events"
    assert metadata["dagster/row_count"].value == 5
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == list(TYPES)
    assert metadata["files"].value == 3
    assert 0 < metadata["compression_ratio"].value and metadata["bytes_raw"].value > 0


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


@pytest.mark.integration
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
    by_name = SUMMARY.format(f'"{glue.database}".events')
    assert _cli(capsys, "query", by_name, "--format", "json")[1] == raw

    code, text, _ = _cli(capsys, "query", "SELECT event_id, member_name FROM curated.events ORDER BY 1 LIMIT 2")
    assert text.splitlines() == ["event_id | member_name", "---------+------------", "       1 | Kim", "       2 | Lee", "(2 rows)"]

    env = {**os.environ, **stack_env, "SF_GLUE_DATABASE": glue.database, "SF_GLUE_CURATED_DATABASE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "sf_platform.cli", "query", SUMMARY.format("curated.events"), "--format", "json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == raw
    assert "leaked" not in done.stderr


@pytest.mark.integration
def test_query_reads_only_the_partitions_it_needs(landing, glue, monkeypatch, capsys):
    config = _load(landing, glue)
    _curate(landing, glue, config=config)
    _use(monkeypatch, glue)
    landing.put("_curated/events/dt=2024-01-01/region=us/b.csv.parquet", b"not parquet at all")
    code, out, err = _cli(capsys, "query", "SELECT count(*) AS n FROM curated.events WHERE dt = '2024-01-02'", "--format", "csv")
    assert (code, out) == (0, "n\n1\n"), err
    code, _, err = _cli(capsys, "query", "SELECT count(*) FROM curated.events")
    assert code == 1 and "b.csv.parquet" in err
    code, out, err = _cli(capsys, "query", "SELECT count(*) AS n FROM events", "--format", "csv")  # bare: raw
    assert (code, out) == (0, "n\n5\n"), err


@pytest.mark.integration
def test_cp949_raw_tables_are_read_in_place(landing, glue, monkeypatch, capsys):
    config = _load(landing, glue, {"schools/s.csv": SCHOOLS.encode("cp949")}, table="schools")
    _curate(landing, glue, "schools", config)
    _use(monkeypatch, glue)
    sql = "SELECT 학교명, 학생수 FROM {}.schools ORDER BY 학교코드"
    code, raw, err = _cli(capsys, "query", sql.format("raw"), "--format", "csv")
    assert code == 0, err
    assert raw == "학교명,학생수\n서울초등학교,812\n부산중학교,455\n대구고등학교,\n"
    assert _cli(capsys, "query", sql.format("curated"), "--format", "csv")[1] == raw


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.integration
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
    assert (
        f"COPY \"public\".\"events\"\nFROM 's3://{landing.bucket}/_curated/events/'\n"
        f"IAM_ROLE '{role}'\nFORMAT AS PARQUET;"
    ) in out
    assert "not_curated" not in out

    monkeypatch.setenv("SF_REDSHIFT_IAM_ROLE", "")
    code, _, err = _cli(capsys, "spectrum-ddl")
    assert code == 1 and "SF_REDSHIFT_IAM_ROLE is not set" in err
