"""The curated layer without services: keys, the ledger, the Parquet Glue entry, reading specs of catalog
tables, and the Redshift statements."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sf_platform.core import catalog as cat
from sf_platform.core import columnar as col
from sf_platform.core.catalog import CatalogColumn
from sf_platform.core.identifiers import IdentifierError
from sf_platform.core.inference import CsvFormat
from sf_platform.core.ledger import SourceObject, plan_loads

COLUMNS = [
    CatalogColumn("id", "bigint", "ID", 5, "bigint", "bigint: all values are integers"),
    CatalogColumn("name", "string", "NAME", 12),
    CatalogColumn("amount", "decimal(10,2)", "AMOUNT", 6),
    CatalogColumn("seen", "timestamp", "SEEN", 19),
]
ROLE = "arn:aws:iam::123456789012:role/spectrum-reader"


def _file(
    key: str, etag: str = "e1", partition: tuple[str, ...] = (), rows: int = 10, schema: str = "", curated: str = ""
) -> col.CuratedFile:
    return col.CuratedFile(
        source_key=key, etag=etag, curated_key=curated or col.batch_key("t", [(key, etag)]), rows=rows, rejected=0,
        raw_bytes=1000, curated_bytes=250, partition=partition, schema=schema,
    )


# ------------------------------------------------------------------------------------------ keys and ledger


def test_a_batch_s_curated_key_is_in_its_partition_folder_and_named_after_its_objects():
    key = col.batch_key("t", [("t/dt=2024-01-01/b.csv", '"e2"'), ("t/dt=2024-01-01/a.csv", "e1")])
    assert key.startswith("_curated/t/dt=2024-01-01/part-") and key.endswith(".parquet")
    # the same batch (in any order, ETags quoted or not) always gets the same key: a retry overwrites
    assert key == col.batch_key("t", [("t/dt=2024-01-01/a.csv", '"e1"'), ("t/dt=2024-01-01/b.csv", "e2")])
    # another version of one object, or another set of objects, another key
    assert key != col.batch_key("t", [("t/dt=2024-01-01/a.csv", "e1"), ("t/dt=2024-01-01/b.csv", "e3")])
    assert key != col.batch_key("t", [("t/dt=2024-01-01/a.csv", "e1")])
    assert col.batch_key("t", [("t/a.csv", "e1")]).startswith("_curated/t/part-")
    assert col.batch_key("t", [("t/x/a.csv", "e1")]).startswith("_curated/t/part-")  # no partition folder
    assert col.curated_partition_location("t", key) == "_curated/t/dt=2024-01-01/"
    assert col.ledger_key("t") == "_sf/curated/t/ledger.json"
    with pytest.raises(ValueError):
        col.batch_key("t", [("other/a.csv", "e1")])
    with pytest.raises(ValueError):
        col.batch_key("t", [("t/dt=1/a.csv", "e1"), ("t/dt=2/b.csv", "e1")])
    with pytest.raises(ValueError):
        col.batch_key("t", [])


def test_objects_are_batched_per_partition_folder_with_large_ones_alone():
    small = [SourceObject(f"t/dt=1/{i:03d}.csv", "e", 10) for i in range(25)]
    other = [SourceObject("t/dt=2/a.csv", "e", 10)]
    large = [SourceObject("t/dt=1/big.csv", "e", 500)]
    batches = col.plan_batches("t", list(reversed(small)) + other + large, max_objects=10, max_bytes=1000, alone_bytes=100)
    assert [[o.key for o in b] for b in batches] == [
        ["t/dt=1/big.csv"],
        [o.key for o in small[:10]],
        [o.key for o in small[10:20]],
        [o.key for o in small[20:]],
        ["t/dt=2/a.csv"],
    ]
    assert batches == col.plan_batches("t", small + large + other, max_objects=10, max_bytes=1000, alone_bytes=100)
    by_bytes = col.plan_batches("t", small, max_objects=1000, max_bytes=55, alone_bytes=100)
    assert [len(b) for b in by_bytes] == [5, 5, 5, 5, 5]
    assert [len(b) for b in col.plan_batches("t", small + other)] == [25, 1]  # the defaults: 1,000 / 128 MB
    assert col.plan_batches("t", []) == []


def test_curated_database_defaults_to_the_raw_one_plus_curated():
    assert col.curated_database("sf_raw") == "sf_raw_curated"
    assert col.curated_database("sf_raw", "lake") == "lake"


def test_the_ledger_round_trips_and_plans_new_replaced_and_deleted_files():
    fp = col.schema_fingerprint(COLUMNS, ["dt"])
    ledger = col.CuratedLedger({k: _file(k, schema=fp) for k in ("t/a.csv", "t/b.csv", "t/c.csv")})
    back = col.CuratedLedger.from_json(__import__("json").loads(ledger.to_json()))
    assert back == ledger
    objects = [SourceObject("t/a.csv", "e1", 1), SourceObject("t/b.csv", "e2", 1), SourceObject("t/d.csv", "e1", 1)]
    plan = plan_loads(objects, back.entries(fp))
    assert [o.key for o in plan.unchanged] == ["t/a.csv"]
    assert [o.key for o in plan.replaced] == ["t/b.csv"]
    assert [o.key for o in plan.new] == ["t/d.csv"]
    assert [e.key for e in plan.deleted] == ["t/c.csv"]


def test_a_schema_change_rewrites_every_curated_file():
    old = col.schema_fingerprint(COLUMNS, [])
    new = col.schema_fingerprint([*COLUMNS[:3], CatalogColumn("seen", "date")], [])
    assert old != new
    ledger = col.CuratedLedger({"t/a.csv": _file("t/a.csv", schema=old), "t/b.csv": _file("t/b.csv", schema=new)})
    plan = plan_loads([SourceObject("t/a.csv", "e1", 1), SourceObject("t/b.csv", "e1", 1)], ledger.entries(new))
    assert [o.key for o in plan.replaced] == ["t/a.csv"]  # per file: one that failed to rewrite is retried
    assert [o.key for o in plan.unchanged] == ["t/b.csv"]


@pytest.mark.parametrize("data", [None, [], {"files": []}, {"files": {"k": {"nope": 1}}}])
def test_an_unreadable_ledger_is_an_empty_one(data):
    assert col.CuratedLedger.from_json(data).files == {}


# ------------------------------------------------------------------------------------------ catalog entry


def test_the_curated_entry_is_a_parquet_table_athena_and_spectrum_read():
    shared = col.batch_key("t", [("t/dt=2/b.csv", "e1"), ("t/dt=2/c.csv", "e1")])
    files = [
        _file("t/dt=1/a.csv", partition=("1",)),
        _file("t/dt=2/b.csv", partition=("2",), rows=5, curated=shared),
        _file("t/dt=2/c.csv", partition=("2",), rows=0, curated=shared),  # two objects, one curated file
    ]
    entry = col.curated_table_input(
        name="t", location="s3://b/_curated/t/", columns=COLUMNS, partition_keys=["dt"], files=files,
        source_table="raw.t",
    )
    sd = entry["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert entry["Parameters"]["classification"] == "parquet"
    assert entry["Parameters"]["compressionType"] == "zstd"
    assert entry["Parameters"]["recordCount"] == "15"
    assert entry["Parameters"]["objectCount"] == "2"
    assert entry["Parameters"]["sizeKey"] == "750"
    assert entry["Parameters"]["sf.raw_bytes"] == "3000"
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [(c.name, c.type) for c in COLUMNS]
    assert cat.columns_of(entry)[0].reason == COLUMNS[0].reason  # the raw table's explanations carry over
    assert entry["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert sd["Location"] == "s3://b/_curated/t/"

    partitions = col.curated_partitions("s3://b/", "t", entry, files)
    assert [p["Values"] for p in partitions] == [["1"], ["2"]]
    assert partitions[1]["StorageDescriptor"]["Location"] == "s3://b/_curated/t/dt=2/"
    assert partitions[1]["Parameters"]["recordCount"] == "5"
    assert partitions[1]["Parameters"]["objectCount"] == "1"
    assert partitions[1]["StorageDescriptor"]["InputFormat"] == sd["InputFormat"]


def test_the_curated_schema_comes_from_the_one_type_mapping():
    assert col.arrow_schema(COLUMNS) == pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(10, 2)), ("seen", pa.timestamp("us"))]
    )


# ------------------------------------------------------------------------------------------ reading in place


def _csv_entry(**fmt) -> dict:
    settings = {"delimiter": "|", "quoted": False, "line_terminator": "\n", "compression": "none",
                "encoding": "utf-8", "header": True} | fmt
    return {"Name": "t", **cat.table_input(
        name="t", location="s3://b/t/", columns=COLUMNS, partition_keys=["dt"], fmt=CsvFormat(**settings),
        stats=cat.CrawlStats(1, 10, 1),
    )}


def test_read_spec_of_a_crawled_csv_table():
    spec = col.read_spec(_csv_entry())
    assert (spec.format, spec.delimiter, spec.skip_rows, spec.encoding, spec.quoted) == ("csv", "|", 1, "utf-8", False)
    assert spec.schema.names == ["id", "name", "amount", "seen"]
    assert spec.partition_schema == pa.schema([("dt", pa.string())])
    quoted = col.read_spec(_csv_entry(delimiter=",", quoted=True, header=False, encoding="cp949"))
    assert (quoted.delimiter, quoted.skip_rows, quoted.encoding, quoted.quoted) == (",", 0, "cp949", True)


def test_read_spec_of_a_curated_table_and_of_unreadable_ones():
    entry = col.curated_table_input(
        name="t", location="s3://b/_curated/t/", columns=COLUMNS, partition_keys=[], files=[], source_table="raw.t"
    )
    assert col.read_spec(entry).format == "parquet"
    avro = {**entry, "Parameters": {"classification": "avro"}, "StorageDescriptor": {**entry["StorageDescriptor"],
            "SerdeInfo": {}, "InputFormat": "x"}}
    with pytest.raises(col.UnreadableTableError, match="avro"):
        col.read_spec(avro)
    latin = _csv_entry()
    latin["Parameters"]["sf.encoding"] = "latin-9"
    with pytest.raises(col.UnreadableTableError, match="latin-9"):
        col.read_spec(latin)


# ------------------------------------------------------------------------------------------ Redshift


def test_redshift_identifiers_and_literals_are_quoted():
    assert col.quote_redshift('we"ird') == '"we""ird"'
    assert col.redshift_literal("it's a \\ path") == "'it''s a \\\\ path'"
    with pytest.raises(IdentifierError):
        col.quote_redshift("x" * 128)
    with pytest.raises(IdentifierError):
        col.redshift_literal("a\nb")


@pytest.mark.parametrize("role", ["", "  ", "role/x", "arn:aws:iam::1234:role/x", f"{ROLE}' --"])
def test_a_missing_or_malformed_role_is_refused_clearly(role):
    with pytest.raises(ValueError, match="SF_REDSHIFT_IAM_ROLE"):
        col.validate_iam_role(role)


def test_chained_roles_are_accepted():
    chain = f"{ROLE},arn:aws:iam::210987654321:role/other"
    assert col.validate_iam_role(chain) == chain


def test_the_spectrum_script_has_the_external_schema_and_a_copy_per_table():
    plain = col.curated_table_input(
        name="member", location="s3://bkt/_curated/member/", columns=COLUMNS, partition_keys=[], files=[],
        source_table="raw.member",
    )
    parted = col.curated_table_input(
        name="events", location="s3://bkt/_curated/events/", columns=COLUMNS, partition_keys=["dt"], files=[],
        source_table="raw.events",
    )
    script = col.spectrum_script(
        [plain, parted], glue_database="sf_raw_curated", external_schema="lake", copy_schema="analytics", iam_role=ROLE
    )
    assert (
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS \"lake\"\nFROM DATA CATALOG DATABASE 'sf_raw_curated'\n"
        f"IAM_ROLE '{ROLE}';"
    ) in script
    assert (
        "COPY \"analytics\".\"member\"\nFROM 's3://bkt/_curated/member/'\n"
        f"IAM_ROLE '{ROLE}'\nFORMAT AS PARQUET;"
    ) in script
    assert 'CREATE TABLE IF NOT EXISTS "analytics"."member" (\n  "id" BIGINT,' in script
    assert '"amount" DECIMAL(10,2)' in script
    assert "events is partitioned by (dt)" in script
    assert script.count("\nCOPY ") == 2
