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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform import cli
from sf_platform.core import columnar, demo_data
from sf_platform.hops import curate
from sf_platform.core.registry import load_registry, parse_registry
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
