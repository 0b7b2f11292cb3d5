"""The Snowflake export hop on the fakesnow server (real connector) and moto: pattern discovery, Avro
with logical types read back by fastavro, Parquet, parts, incremental exports, the Glue entry, the asset."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import fastavro
import pyarrow.parquet as pq
import pytest

from sf_platform.assets.exports import build_export_assets
from sf_platform.core import exports as ex
from sf_platform.core.catalog import columns_of
from sf_platform.core.registry import parse_registry
from sf_platform.hops import snowflake_export
from sf_platform.hops.snowflake_export import (
    READ_PAGED,
    READ_STREAM,
    discover_tables,
    export_table,
    write_table_lock,
)
from sf_platform.settings import Settings

pytestmark = pytest.mark.integration

COLUMNS = (
    '"ID" NUMBER(38,0), "NAME" VARCHAR, "AMOUNT" NUMBER(12,2), "RATE" FLOAT, "ACTIVE" BOOLEAN, '
    '"SOLD_ON" DATE, "SOLD_AT" TIMESTAMP_NTZ, "Unit Price" NUMBER(10,4)'
)
# Every column has a NULL somewhere except SOLD_AT: fakesnow reads a NULL TIMESTAMP_NTZ back as
# 1970-01-01 (its storage is right), so an exported NULL there would be fakesnow's artifact, not ours.
ROWS = [
    (1, "Kim", Decimal("10.50"), 0.5, True, date(2024, 3, 1), datetime(2024, 3, 1, 9, 0, 0, 123456), Decimal("1.2345")),
    (2, None, Decimal("-20.25"), None, False, date(2024, 3, 2), datetime(2024, 3, 2, 10, 30), None),
    (3, "박", None, 2.25, None, None, datetime(1999, 12, 31, 23, 59, 59), Decimal("0.0001")),
]
EXPECTED = [
    {"id": r[0], "name": r[1], "amount": r[2], "rate": r[3], "active": r[4], "sold_on": r[5], "sold_at": r[6], "unit_price": r[7]}
    for r in ROWS
]


@pytest.fixture()
def snowflake_conn(snowflake_conn):
    """conftest's connection, with its database and schema created: these tests make tables directly."""
    conn, database, schema = snowflake_conn
    conn.cursor().execute(f'CREATE DATABASE IF NOT EXISTS "{database}"')
    conn.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"."{schema}"')
    return snowflake_conn


def _create(conn_info, table: str, rows=ROWS, columns: str = COLUMNS) -> None:
    conn, database, schema = conn_info
    cur = conn.cursor()
    cur.execute(f'CREATE TABLE "{database}"."{schema}"."{table}" ({columns})')
    if rows:
        # Test data only (the platform itself never INSERTs rows): one multi-row INSERT, all binds.
        marks = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
        values = [v for row in rows for v in row]
        cur.execute(f'INSERT INTO "{database}"."{schema}"."{table}" VALUES {", ".join([marks] * len(rows))}', values)


def _config(**settings):
    return parse_registry({"tables": {"t": {}}, "exports": {"table_pattern": "sales_.*", **settings}}).exports


def _avro_rows(landing, keys):
    rows, schemas = [], []
    for key in keys:
        reader = fastavro.reader(io.BytesIO(landing.open(key).read()))
        schemas.append(reader.writer_schema)
        rows.extend(reader)
    return rows, schemas


def test_discovery_selects_every_matching_table_and_none_else(snowflake_conn, tmp_path):
    for table in ("SALES_2024", "SALES_2025", "SALESMAN", "OTHER", "SALES_2024__SF_STAGING"):
        _create(snowflake_conn, table, rows=[])
    conn, database, schema = snowflake_conn
    conn.cursor().execute(f'CREATE VIEW "{database}"."{schema}"."SALES_VIEW" AS SELECT * FROM "{database}"."{schema}"."OTHER"')
    config = _config()
    found = discover_tables(conn, config, database, schema)
    assert [(t.name, t.key, t.type) for t in found] == [
        ("SALES_2024", "sales_2024", "BASE TABLE"),
        ("SALES_2025", "sales_2025", "BASE TABLE"),
    ]

    registry = parse_registry({"tables": {"t": {}}, "exports": {"table_pattern": "sales_.*"}})
    path = tmp_path / ex.LOCK_FILE_NAME
    assert write_table_lock(conn, registry, database, schema, path) == found
    assert ex.locked_tables(path.read_text(), config, database, schema) == found
    assert ex.locked_tables(path.read_text(), _config(table_pattern="sales_2025"), database, schema) == found[1:]
    assert ex.locked_tables(path.read_text(), config, "OTHER_DB", schema) == []


def test_avro_export_reads_back_with_logical_types_and_identical_values(landing, glue, snowflake_conn):
    _create(snowflake_conn, "SALES_2024")
    conn, database, schema = snowflake_conn
    table = ex.ExportTable("SALES_2024", "sales_2024")
    report = export_table(landing, conn, database, schema, table, _config(), glue=glue)

    assert report.read_method in (READ_STREAM, READ_PAGED)
    assert (report.mode, report.rows_exported, report.rows_total, len(report.parts_written)) == ("full", 3, 3, 1)
    assert report.parts_written[0].startswith("exports/sales_2024/part-") and report.parts_written[0].endswith(".avro")
    rows, [schema_doc] = _avro_rows(landing, report.parts_written)
    assert rows == EXPECTED
    types = {f["name"]: f["type"][1] for f in schema_doc["fields"]}
    assert types["id"] == "long"
    assert types["amount"] == {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
    assert types["unit_price"] == {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 4}
    assert types["sold_on"] == {"type": "int", "logicalType": "date"}
    assert types["sold_at"] == {"type": "long", "logicalType": "local-timestamp-micros"}
    assert (types["rate"], types["active"], types["name"]) == ("double", "boolean", "string")
    assert next(f for f in schema_doc["fields"] if f["name"] == "unit_price")["sf_source_name"] == "Unit Price"

    manifest = json.loads(landing.open(report.manifest_key).read())
    assert manifest["rows"] == 3 and manifest["source_table"] == f"{database}.{schema}.SALES_2024"
    assert manifest["source_query"] == f'SELECT * FROM "{database}"."{schema}"."SALES_2024"'
    assert [p["key"] for p in manifest["parts"]] == report.parts_written
    assert manifest["snapshot_time"] and manifest["schema"]["name"] == "sales_2024"

    # The exported folder is a catalog table like any other.
    entry = glue.get_table("exports_sales_2024")
    sd = entry["StorageDescriptor"]
    assert sd["Location"] == landing.uri("exports/sales_2024/")
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat"
    assert json.loads(sd["SerdeInfo"]["Parameters"]["avro.schema.literal"]) == manifest["schema"]
    assert entry["Parameters"]["classification"] == "avro" and entry["Parameters"]["recordCount"] == "3"
    assert [(c.name, c.type, c.source_name) for c in columns_of(entry)] == [
        ("id", "bigint", "ID"), ("name", "string", "NAME"), ("amount", "decimal(12,2)", "AMOUNT"),
        ("rate", "double", "RATE"), ("active", "boolean", "ACTIVE"), ("sold_on", "date", "SOLD_ON"),
        ("sold_at", "timestamp", "SOLD_AT"), ("unit_price", "decimal(10,4)", "Unit Price"),
    ]

    # A second full export replaces the parts; the manifest is the commit point.
    again = export_table(landing, conn, database, schema, table, _config(), glue=glue)
    assert again.parts_deleted == 1 and again.glue_action == "updated"
    data_keys = [o["Key"] for o in landing.list_objects("exports/sales_2024/") if "/part-" in o["Key"]]
    assert data_keys == again.parts_written


def test_parquet_export_in_parts_reads_back_identically(landing, glue, snowflake_conn, monkeypatch):
    conn, database, schema = snowflake_conn
    _create(snowflake_conn, "SALES_2025", rows=[])
    conn.cursor().execute(
        f'INSERT INTO "{database}"."{schema}"."SALES_2025" SELECT "I", \'n\' || "I", "I" / 4, "I" / 8, MOD("I", 2) = 0, '
        "DATEADD(day, MOD(\"I\", 28), '2024-01-01'::DATE), DATEADD(hour, MOD(\"I\", 24), '2024-01-01'::TIMESTAMP_NTZ), NULL "
        'FROM (SELECT SEQ4() AS "I" FROM TABLE(GENERATOR(ROWCOUNT => 3000)))'
    )
    monkeypatch.setattr(snowflake_export, "PAGE_ROWS", 1000)  # several pages where the fakesnow fallback runs
    config = _config(format="parquet", part_size_mb=0.02)
    report = export_table(landing, conn, database, schema, ex.ExportTable("SALES_2025", "sales_2025"), config, glue=glue)
    assert report.rows_exported == 3000 and len(report.parts_written) > 1
    assert all(k.endswith(".parquet") for k in report.parts_written)
    tables = [pq.read_table(io.BytesIO(landing.open(k).read())) for k in report.parts_written]
    read = sorted((row for t in tables for row in t.to_pylist()), key=lambda r: r["id"])
    assert read == [
        {"id": i, "name": f"n{i}", "amount": Decimal(i) / 4, "rate": i / 8, "active": i % 2 == 0,
         "sold_on": date(2024, 1, 1 + i % 28), "sold_at": datetime(2024, 1, 1, i % 24), "unit_price": None}
        for i in range(3000)
    ]
    assert str(tables[0].schema.field("amount").type) == "decimal128(12, 2)"
    entry = glue.get_table("exports_sales_2025")
    assert entry["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert entry["StorageDescriptor"]["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert entry["Parameters"]["recordCount"] == "3000"
    assert entry["Parameters"]["objectCount"] == str(len(report.parts_written))


def test_incremental_export_takes_only_new_rows(landing, glue, snowflake_conn):
    columns = '"ID" NUMBER(38,0), "UPDATED_AT" TIMESTAMP_NTZ, "V" VARCHAR'
    first_rows = [(1, datetime(2024, 1, 1), "a"), (2, datetime(2024, 1, 2), "b"), (3, datetime(2024, 1, 2), "c")]
    _create(snowflake_conn, "SALES_LOG", rows=first_rows, columns=columns)
    conn, database, schema = snowflake_conn
    config = _config(incremental_column="updated_at")
    table = ex.ExportTable("SALES_LOG", "sales_log")

    first = export_table(landing, conn, database, schema, table, config, glue=glue)
    assert (first.mode, first.rows_exported, first.high_water) == ("incremental", 3, datetime(2024, 1, 2))

    conn.cursor().executemany(
        f'INSERT INTO "{database}"."{schema}"."SALES_LOG" VALUES (%s, %s, %s)',
        [(4, datetime(2024, 1, 3), "d"), (5, datetime(2024, 1, 4, 12), "e")],
    )
    second = export_table(landing, conn, database, schema, table, config, glue=glue)
    assert (second.rows_exported, second.rows_total, second.parts_total) == (2, 5, 2)
    assert second.source_query.endswith('WHERE "UPDATED_AT" > %s AND "UPDATED_AT" <= %s')
    assert second.high_water == datetime(2024, 1, 4, 12)

    third = export_table(landing, conn, database, schema, table, config, glue=glue)
    assert (third.rows_exported, third.rows_total, third.parts_written) == (0, 5, [])

    manifest = ex.Manifest.from_json(landing.open(third.manifest_key).read())
    assert ex.decode_value(manifest.high_water) == datetime(2024, 1, 4, 12)
    assert [r["rows"] for r in manifest.runs] == [3, 2, 0]
    rows, _ = _avro_rows(landing, [p.key for p in manifest.parts])
    assert sorted(r["id"] for r in rows) == [1, 2, 3, 4, 5]
    assert glue.get_table("exports_sales_log")["Parameters"]["recordCount"] == "5"


def test_each_matching_table_is_an_asset_that_exports_and_registers(
    landing, glue, snowflake_conn, snowflake_database, tmp_path: Path
):
    conn, database, schema = snowflake_conn
    _create(snowflake_conn, "SALES_2024")
    registry_file = tmp_path / "tables.yaml"
    registry_file.write_text(
        f"tables:\n  member: {{}}\nexports:\n  database: {database}\n  schema: {schema}\n  table_pattern: 'sales_.*'\n"
    )
    registry = parse_registry({"tables": {"member": {}}, "exports": {"database": database, "schema": schema, "table_pattern": "sales_.*"}})
    write_table_lock(conn, registry, database, schema, ex.lock_path(registry_file))
    cfg = Settings(
        env="local", tables_file=registry_file, state_dir=tmp_path, landing_bucket=landing.bucket,
        glue_database=glue.database, mysql_database="m", snowflake_database="SF_DEMO", snowflake_schema="RAW",
    )
    built = build_export_assets(registry, cfg)
    specs = [a for a in built if isinstance(a, dg.AssetSpec)]
    [asset] = [a for a in built if isinstance(a, dg.AssetsDefinition)]
    assert [s.key.path for s in specs] == [["snowflake", database, schema, "sales_2024"]]
    assert {k.to_user_string() for k in asset.keys} == {"exports/sales_2024", f"glue/{glue.database}/exports_sales_2024"}
    assert asset.specs_by_key[dg.AssetKey(["exports", "sales_2024"])].kinds == {"snowflake", "avro", "s3"}

    resources = {"landing": landing, "glue": glue, "snowflake": snowflake_database}
    dg.Definitions.validate_loadable(dg.Definitions(assets=built, resources=resources))
    result = dg.materialize([asset], resources=resources)
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    exported = events["exports/sales_2024"]
    assert exported["dagster/row_count"].value == 3
    assert exported["rows_exported"].value == 3 and exported["parts_written"].value == 1
    assert exported["dagster/table_name"].value == landing.uri("exports/sales_2024/")
    assert [c.name for c in exported["dagster/column_schema"].schema.columns][-1] == "unit_price"
    assert exported["read_method"].value in (READ_STREAM, READ_PAGED)
    assert events[f"glue/{glue.database}/exports_sales_2024"]["action"].value == "created"


def test_one_materialize_loads_a_table_and_exports_it_without_a_lock_file(stack_env, tmp_path: Path, monkeypatch):
    """The registry's own Snowflake tables need no `snowflake-tables`: the first `sf-platform materialize`
    loads them, then exports those the pattern selects (the demo's order of commands)."""
    import os
    import subprocess
    import sys
    import uuid

    from sf_platform.runtime import open_resources

    run = uuid.uuid4().hex[:8]
    registry = tmp_path / "tables.yaml"
    registry.write_text("tables:\n  region:\n    targets: [snowflake]\n  nation:\n    targets: [snowflake]\n"
                        "exports:\n  table_pattern: 'reg.*'\n", encoding="utf-8")
    names = {"SF_TABLES_FILE": str(registry), "SF_LANDING_BUCKET": f"sf-exp-{run}", "SF_GLUE_DATABASE": f"sf_exp_{run}",
             "SF_MYSQL_DATABASE": f"sf_exp_{run}", "SF_SNOWFLAKE_DATABASE": f"SF_EXP_{run.upper()}"}
    for key, value in names.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    cfg = Settings.from_env()
    with open_resources(cfg) as r:
        r.landing.ensure_bucket()
        r.landing.put("REGION_202509011200.csv", b"R_REGIONKEY|R_NAME\n0|AFRICA\n1|AMERICA\n")
        r.landing.put("NATION_202509011200.csv", b"N_NATIONKEY|N_NAME\n0|ALGERIA\n")

    done = subprocess.run([sys.executable, "-m", "sf_platform.cli", "materialize"],
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "home")},
                          capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not ex.lock_path(registry).exists()
    head = next(line for line in done.stdout.splitlines() if line.startswith("export_tables: run "))
    assert " succeeded in " in head and "2 of 2 hops done" in head, done.stdout
    summary = done.stdout.splitlines()[done.stdout.splitlines().index(head):]
    assert summary[2].split() == ["table", "export", "catalog"]
    assert summary[3].split() == ["region", "2", "+2", "2"]  # nation is not selected by 'reg.*'
    with open_resources(cfg) as r:
        manifest = ex.Manifest.from_json(r.landing.open("exports/region/_manifest.json").read())
        rows, _ = _avro_rows(r.landing, [p.key for p in manifest.parts])
        assert sorted((row["r_regionkey"], row["r_name"]) for row in rows) == [(0, "AFRICA"), (1, "AMERICA")]
        assert r.glue.get_table("exports_region")["Parameters"]["recordCount"] == "2"
        assert r.landing.head("exports/nation/_manifest.json") is None
