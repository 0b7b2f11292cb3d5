"""Exports without services: Avro names and schemas, the export type mapping, the lock file, the
manifest and incremental state, and the Glue entry of an exported folder."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core import exports as ex
from sf_platform.core.avro import (
    AVRO_NAME,
    AvroSchemaError,
    avro_name,
    avro_names,
    avro_records,
    avro_schema,
    avro_type,
)
from sf_platform.core.catalog import columns_of
from sf_platform.core.export_catalog import export_table_input, glue_type
from sf_platform.core.registry import RegistryError, parse_registry

# ---- names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MEMBER_ID", "member_id"),
        ("Unit Price", "unit_price"),
        ("2nd score", "c_2nd_score"),
        ("select", "select_"),  # reserved words get the catalog's trailing underscore
        ("straße", "strasse"),
        ("회원명", "col_1"),  # no ASCII left: a positional name (the original is kept in the schema)
        ("café-au-lait", "cafe_au_lait"),
        ("", "col_1"),
        ('a"; DROP TABLE x; --', "a_drop_table_x"),
    ],
)
def test_avro_name(raw, expected):
    assert avro_name(raw, 1) == expected


def test_avro_names_are_unique_and_deterministic():
    raw = ["ID", "id", "Id", "회원", "이름", "x" * 100]
    names = avro_names(raw)
    assert names == ["id", "id_2", "id_3", "col_4", "col_5", names[5]]
    assert len(names[5]) <= 64 and names == avro_names(raw)


@given(st.lists(st.text(max_size=40), max_size=12))
def test_every_name_is_a_valid_unique_avro_name(raw):
    names = avro_names(raw)
    assert all(AVRO_NAME.match(n) for n in names)
    assert len(set(names)) == len(names)


# ---- schema and records


def test_avro_types_and_logical_types():
    assert avro_type(pa.int64()) == "long" and avro_type(pa.int32()) == "int"
    assert avro_type(pa.float64()) == "double" and avro_type(pa.bool_()) == "boolean"
    assert avro_type(pa.string()) == "string" and avro_type(pa.binary()) == "bytes"
    assert avro_type(pa.decimal128(12, 2)) == {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
    assert avro_type(pa.date32()) == {"type": "int", "logicalType": "date"}
    assert avro_type(pa.timestamp("us")) == {"type": "long", "logicalType": "local-timestamp-micros"}
    assert avro_type(pa.timestamp("us", "UTC")) == {"type": "long", "logicalType": "timestamp-micros"}
    with pytest.raises(AvroSchemaError):
        avro_type(pa.timestamp("ns"))
    with pytest.raises(AvroSchemaError):
        avro_type(pa.list_(pa.int64()))


def test_schema_rejects_names_that_are_not_avro_names():
    with pytest.raises(AvroSchemaError, match="avro_names"):
        avro_schema(pa.schema([("Unit Price", pa.int64())]), "t")
    with pytest.raises(AvroSchemaError):
        avro_schema(pa.schema([("a", pa.int64())]), "1t")


def test_a_batch_round_trips_through_fastavro_with_identical_values():
    schema = pa.schema(
        [
            ("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("on", pa.date32()),
            ("at", pa.timestamp("us")), ("at_utc", pa.timestamp("us", "UTC")), ("ok", pa.bool_()),
            ("rate", pa.float64()), ("name", pa.string()), ("raw", pa.binary()),
        ]
    )
    rows = [
        {"id": 1, "amount": Decimal("-12.34"), "on": date(2024, 2, 29), "at": datetime(2024, 2, 29, 23, 59, 59, 999999),
         "at_utc": datetime(2024, 1, 1, 12, tzinfo=UTC), "ok": True, "rate": 0.1, "name": "박지성", "raw": b"\x00\xff"},
        {k: None for k in schema.names},
    ]
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    doc = avro_schema(schema, "t", source_names={"at": "AT TIME"})
    assert doc["fields"][3]["sf_source_name"] == "AT TIME"
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(doc), avro_records(batch))
    buffer.seek(0)
    assert list(fastavro.reader(buffer)) == rows


# ---- the export type mapping


def test_snowflake_types_map_to_one_arrow_type_each():
    columns = [
        ex.SourceColumn("ID", "FIXED", 38, 0), ex.SourceColumn("N", "FIXED", 10, 0),
        ex.SourceColumn("AMOUNT", "FIXED", 12, 2), ex.SourceColumn("F", "REAL"), ex.SourceColumn("S", "TEXT"),
        ex.SourceColumn("B", "BOOLEAN"), ex.SourceColumn("D", "DATE"), ex.SourceColumn("TS", "TIMESTAMP_NTZ", 0, 9),
        ex.SourceColumn("TZ", "TIMESTAMP_TZ", 0, 9), ex.SourceColumn("T", "TIME", 0, 9),
        ex.SourceColumn("V", "VARIANT"), ex.SourceColumn("BIN", "BINARY"), ex.SourceColumn("Unit Price", "FIXED", 10, 4),
    ]
    schema = ex.export_schema(columns)
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "int64"), ("n", "int64"), ("amount", "decimal128(12, 2)"), ("f", "double"), ("s", "string"),
        ("b", "bool"), ("d", "date32[day]"), ("ts", "timestamp[us]"), ("tz", "timestamp[us, tz=UTC]"),
        ("t", "string"), ("v", "string"), ("bin", "binary"), ("unit_price", "decimal128(10, 4)"),
    ]
    assert ex.source_names(schema)["unit_price"] == "Unit Price"
    assert schema.field("amount").metadata[ex.FIELD_SOURCE_TYPE] == b"NUMBER(12,2)"


def test_conform_casts_fetched_batches_to_the_export_schema():
    schema = ex.export_schema(
        [ex.SourceColumn("N", "FIXED", 10, 0), ex.SourceColumn("TS", "TIMESTAMP_NTZ", 0, 9), ex.SourceColumn("T", "TIME")]
    )
    fetched = pa.RecordBatch.from_arrays(
        [
            pa.array([Decimal(7), None], pa.decimal128(10, 0)),
            pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns")),
            pa.array([3_723_000_000, None], pa.time64("us")),
        ],
        names=["N", "TS", "T"],
    )
    batch, notes = ex.conform(fetched, schema)
    assert batch.schema == schema
    assert batch.column(0).to_pylist() == [7, None]
    assert batch.column(1).to_pylist()[0] == datetime(2023, 11, 14, 22, 13, 20, 123456)
    assert batch.column(2).to_pylist() == ["01:02:03.000000", None]
    assert notes == ["ts: sub-microsecond digits truncated"]

    too_big = pa.RecordBatch.from_arrays([pa.array([Decimal(10) ** 20], pa.decimal128(38, 0))], names=["N"])
    with pytest.raises(ValueError, match="column n"):
        ex.conform(too_big, ex.export_schema([ex.SourceColumn("N", "FIXED", 38, 0)]))


# ---- discovery, the lock file, layout


def _config(**settings):
    return parse_registry({"tables": {"t": {}}, "exports": {"table_pattern": "psy_.*", **settings}}).exports


def test_match_tables_by_full_pattern_type_and_never_internal_tables():
    found = [
        ("PSY_ORD_CLASS", "BASE TABLE"), ("PSY_TARGET", "BASE TABLE"), ("PSY_VIEW", "VIEW"),
        ("XPSY_ORD", "BASE TABLE"), ("PSYCHO", "BASE TABLE"), ("_SF_LEDGER", "BASE TABLE"),
        ("PSY_ORD_CLASS__SF_STAGING", "BASE TABLE"), ("psy_Mixed", "BASE TABLE"),
    ]
    assert [(t.name, t.key) for t in ex.match_tables(found, _config())] == [
        ("PSY_ORD_CLASS", "psy_ord_class"), ("PSY_TARGET", "psy_target"), ("psy_Mixed", "psy_mixed"),
    ]
    with_views = ex.match_tables(found, _config(table_types=["base table", "view"]))
    assert "PSY_VIEW" in [t.name for t in with_views]


def test_lock_round_trip_and_staleness():
    config = _config()
    tables = ex.match_tables([("PSY_A", "BASE TABLE"), ("PSY_B", "BASE TABLE")], config)
    text = ex.lock_document("SF_DEMO", "RAW", config, tables, datetime(2025, 1, 1, tzinfo=UTC))
    assert text.startswith("# Snowflake tables")
    assert ex.locked_tables(text, config, "sf_demo", "raw") == tables
    assert ex.locked_tables(text, _config(table_pattern="psy_b"), "SF_DEMO", "RAW") == tables[1:]
    assert ex.locked_tables(text, config, "SF_DEMO", "OTHER") == []
    assert ex.locked_tables(None, config, "SF_DEMO", "RAW") == []


def test_layout_keeps_the_manifest_hidden_from_readers():
    config = _config(format="parquet", prefix="out/snowflake/")
    assert ex.folder(config, "psy_a") == "out/snowflake/psy_a/"
    assert ex.part_key(config, "psy_a", "20250101T000000Z-abcd", 3) == "out/snowflake/psy_a/part-20250101T000000Z-abcd-00003.parquet"
    assert ex.manifest_key(config, "psy_a") == "out/snowflake/psy_a/_manifest.json"
    assert ex.glue_table_name(config, "psy_a") == "out_snowflake_psy_a"


def test_manifest_round_trip_and_stale_parts():
    config = _config()
    parts = [ex.Part("exports/t/part-s2-00000.avro", 5, 100, "s2")]
    manifest = ex.Manifest(
        source_table="DB.S.T", format="avro", mode="incremental", snapshot_id="s2", snapshot_time="now",
        source_query="SELECT 1", query_params=["x"], schema={"type": "record"}, parts=parts,
        incremental_column="updated_at", high_water=ex.encode_value(datetime(2024, 1, 2, 3, 4, 5, 6)),
    )
    doc = json.loads(manifest.to_json())
    assert (doc["rows"], doc["bytes"]) == (5, 100)
    again = ex.Manifest.from_json(manifest.to_json())
    assert again == manifest and ex.decode_value(again.high_water) == datetime(2024, 1, 2, 3, 4, 5, 6)
    listed = ["exports/t/_manifest.json", "exports/t/part-s1-00000.avro", "exports/t/part-s2-00000.avro", "exports/tt/part-x.avro"]
    assert ex.stale_keys(listed, manifest, config, "t") == ["exports/t/part-s1-00000.avro"]


@pytest.mark.parametrize("value", [date(2024, 1, 1), Decimal("12.50"), 42, 1.5, "b", datetime(2024, 1, 1, 0, 0, 1)])
def test_high_water_marks_decode_to_the_same_value(value):
    assert ex.decode_value(json.loads(json.dumps(ex.encode_value(value)))) == value


def test_exports_section_errors_name_the_key():
    with pytest.raises(RegistryError, match=r"reg.yaml: exports: key 'format'"):
        parse_registry({"tables": {"t": {}}, "exports": {"table_pattern": "x", "format": "csv"}}, source="reg.yaml")
    with pytest.raises(RegistryError, match=r"exports: key 'table_pattern': Field required"):
        parse_registry({"tables": {"t": {}}, "exports": {}})
    with pytest.raises(RegistryError, match=r"exports: key 'prefix'"):
        parse_registry({"tables": {"t": {}}, "exports": {"table_pattern": "x", "prefix": "../up/"}})
    assert parse_registry({"tables": {"t": {}}}).exports is None


# ---- the Glue entry of an exported folder


def test_avro_and_parquet_catalog_entries():
    schema = ex.export_schema([ex.SourceColumn("ID", "FIXED", 38, 0), ex.SourceColumn("Unit Price", "FIXED", 10, 4)])
    doc = avro_schema(schema, "t")
    avro = export_table_input(
        name="exports_t", location="s3://b/exports/t/", schema=schema, file_format="avro", rows=10, objects=2,
        size_bytes=1000, avro_schema=doc, extra_parameters={"sf.source_table": "DB.S.T"},
    )
    sd = avro["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    assert (sd["InputFormat"], sd["OutputFormat"]) == (
        "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
    )
    assert json.loads(sd["SerdeInfo"]["Parameters"]["avro.schema.literal"]) == doc
    assert avro["Parameters"]["recordCount"] == "10" and avro["Parameters"]["sf.source_table"] == "DB.S.T"
    assert [(c.name, c.type, c.source_name) for c in columns_of(avro)] == [
        ("id", "bigint", "ID"), ("unit_price", "decimal(10,4)", "Unit Price")
    ]
    parquet = export_table_input(
        name="exports_t", location="s3://b/exports/t/", schema=schema, file_format="parquet", rows=0, objects=0, size_bytes=0,
    )
    sd = parquet["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert (sd["InputFormat"], sd["OutputFormat"]) == (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    )
    assert parquet["Parameters"]["classification"] == "parquet"
    with pytest.raises(ValueError):
        export_table_input(name="x", location="s3://b/x/", schema=schema, file_format="avro", rows=0, objects=0, size_bytes=0)


def test_glue_types_of_exported_columns():
    assert [glue_type(t) for t in (pa.int64(), pa.float64(), pa.decimal128(38, 4), pa.bool_(), pa.date32(),
                                   pa.timestamp("us"), pa.string(), pa.binary())] == [
        "bigint", "double", "decimal(38,4)", "boolean", "date", "timestamp", "string", "binary"
    ]


def test_sliced_batches_with_nulls_keep_their_decimal_values():
    values = [Decimal("1.25"), None, Decimal("-0.01"), Decimal("99999999.99"), Decimal("-99999999.99")]
    schema = pa.schema([("amount", pa.decimal128(10, 2))])
    batch = pa.RecordBatch.from_pylist([{"amount": v} for v in values], schema=schema).slice(1, 4)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(avro_schema(schema, "t")), avro_records(batch))
    buffer.seek(0)
    assert [r["amount"] for r in fastavro.reader(buffer)] == values[1:]


def test_not_null_columns_are_plain_avro_fields():
    schema = ex.export_schema([ex.SourceColumn("ID", "FIXED", 38, 0, nullable=False), ex.SourceColumn("V", "TEXT")])
    fields = avro_schema(schema, "t")["fields"]
    assert fields[0] == {"name": "id", "type": "long"}
    assert fields[1] == {"name": "v", "type": ["null", "string"], "default": None}
