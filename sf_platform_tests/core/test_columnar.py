"""The curated layer without services: the one type mapping, reading specs of catalog tables, the Redshift
statements, and the hub's pure rules (schema evolution, file budget, compaction groups)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core import catalog as cat
from sf_platform.core import columnar as col
from sf_platform.core.catalog import CatalogColumn
from sf_platform.core.export_catalog import folder_table_input
from sf_platform.core.identifiers import IdentifierError
from sf_platform.core.inference import CsvFormat

COLUMNS = [
    CatalogColumn("id", "bigint", "ID", 5, "bigint", "bigint: all values are integers"),
    CatalogColumn("name", "string", "NAME", 12),
    CatalogColumn("amount", "decimal(10,2)", "AMOUNT", 6),
    CatalogColumn("seen", "timestamp", "SEEN", 19),
]
ROLE = "arn:aws:iam::123456789012:role/spectrum-reader"


def test_the_curated_database_defaults_to_the_raw_one_plus_curated():
    assert col.curated_database("sf_raw") == "sf_raw_curated"
    assert col.curated_database("sf_raw", "lake") == "lake"
    assert col.curated_prefix("member") == "_curated/member/"


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


def test_read_spec_of_a_parquet_table_and_of_unreadable_ones():
    entry = {"Name": "t", **folder_table_input(
        name="t", location="s3://b/x/t/", columns=COLUMNS, file_format="parquet", rows=1, objects=1, size_bytes=1,
    )}
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


def _iceberg_entry(name: str) -> dict:
    """A hub table's Glue entry as pyiceberg writes it: the catalog columns, then the bookkeeping ones."""
    columns = [{"Name": c.name, "Type": c.type} for c in COLUMNS]
    columns += [{"Name": "_sf_source_key", "Type": "string"}, {"Name": "_sf_row", "Type": "bigint"}]
    return {"Name": name, "Parameters": {"table_type": "ICEBERG"},
            "StorageDescriptor": {"Columns": columns, "Location": f"s3://bkt/_curated/{name}"}}


def test_the_spectrum_script_has_the_external_schema_and_a_load_per_table():
    script = col.spectrum_script(
        [_iceberg_entry("member"), _iceberg_entry("events")], glue_database="sf_raw_curated",
        external_schema="lake", copy_schema="analytics", iam_role=ROLE,
    )
    assert (
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS \"lake\"\nFROM DATA CATALOG DATABASE 'sf_raw_curated'\n"
        f"IAM_ROLE '{ROLE}';"
    ) in script
    assert (
        'CREATE TABLE "analytics"."member" AS\nSELECT "id", "name", "amount", "seen"\nFROM "lake"."member";'
    ) in script
    assert script.count("CREATE TABLE ") == 2 and "_sf_" not in script and "COPY" not in script


# ------------------------------------------------------------------------------------------ hub schema


def _schema(*fields) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields])


def test_new_columns_are_added_where_the_catalog_has_them_and_numbers_widen_in_place():
    current = _schema(("id", pa.int32()), ("amount", pa.decimal128(4, 1)), ("x", pa.float32()),
                      ("_sf_source_key", pa.string()))
    wanted = _schema(("first", pa.string()), ("id", pa.int64()), ("amount", pa.decimal128(6, 1)),
                     ("note", pa.string()), ("x", pa.float64()))
    plan = col.plan_evolution(current, wanted, keep=col.BOOKKEEPING)
    assert plan.add == (("first", pa.string(), None), ("note", pa.string(), "amount"))
    assert plan.widen == (("id", pa.int64()), ("amount", pa.decimal128(6, 1)), ("x", pa.float64()))
    assert plan.incompatible == () and plan.changes


def test_tinyint_and_smallint_are_iceberg_ints_and_narrower_catalog_types_keep_the_column():
    current = _schema(("a", pa.int32()), ("b", pa.int64()), ("c", pa.decimal128(9, 2)))
    wanted = _schema(("a", pa.int8()), ("b", pa.int32()), ("c", pa.decimal128(5, 2)))
    plan = col.plan_evolution(current, wanted)
    assert (plan.add, plan.widen, plan.incompatible, plan.changes) == ((), (), (), False)


@pytest.mark.parametrize(("before", "after"), [
    (pa.int32(), pa.string()), (pa.string(), pa.int64()), (pa.date32(), pa.timestamp("us")),
    (pa.decimal128(12, 2), pa.decimal128(12, 3)),  # pyiceberg 0.12 would accept it and break the table
    (pa.decimal128(12, 2), pa.decimal128(14, 1)), (pa.int64(), pa.float64()),
])
def test_other_type_changes_are_incompatible_naming_the_column(before, after):
    plan = col.plan_evolution(_schema(("v", before)), _schema(("v", after)))
    assert plan.incompatible == (f"column v: {before} cannot become {after}",) and not plan.changes


def test_dropped_or_reordered_columns_are_incompatible():
    current = _schema(("a", pa.int32()), ("b", pa.int32()))
    assert col.plan_evolution(current, _schema(("a", pa.int32()))).incompatible == ("column b: no longer in the catalog",)
    swapped = col.plan_evolution(current, _schema(("b", pa.int32()), ("a", pa.int32())))
    assert swapped.incompatible == ("columns reordered: ['a', 'b'] -> ['b', 'a']",)


# ------------------------------------------------------------------------------------------ hub files

MB = 1024**2


def test_the_file_budget_is_ceil_of_bytes_over_target_plus_two():
    assert [col.file_budget(b, 128 * MB) for b in (0, 1, 128 * MB, 128 * MB + 1, 1000 * MB)] == [2, 3, 3, 4, 10]


def test_small_files_are_compacted_per_partition_only_past_the_budget():
    small = [(f"p{i}", ("kr",), 10) for i in range(3)]
    assert col.compaction_groups(small, 128 * MB) == []  # 3 files for 30 bytes: within ceil(..) + 2
    files = small + [(f"q{i}", ("us",), 10) for i in range(2)] + [("big", ("us",), 100 * MB), ("lone", ("jp",), 5)]
    assert col.compaction_groups(files, 128 * MB) == [["p0", "p1", "p2"], ["q0", "q1"]]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 300)), max_size=40))
def test_compaction_groups_are_disjoint_small_files_of_one_partition(spec):
    files = [(f"f{i}", (part,), size) for i, (part, size) in enumerate(spec)]
    groups = col.compaction_groups(files, 200)
    by_path = {path: (part, size) for path, part, size in files}
    chosen = [p for g in groups for p in g]
    assert len(chosen) == len(set(chosen))
    for group in groups:
        assert len(group) >= 2 and len({by_path[p][0] for p in group}) == 1
        assert all(by_path[p][1] < 100 for p in group)
    if len(files) <= col.file_budget(sum(s for _, _, s in files), 200):
        assert groups == []
