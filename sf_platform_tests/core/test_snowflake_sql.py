"""Snowflake load statements without a server: COPY of the hub's data files, MERGE, SWAP, type changes and
the hub's columns, COPY results, the snapshot ledger and key deletes, the per-table lock, and the
registry's Snowflake target options."""

from __future__ import annotations

import json
import re

import pytest

from sf_platform.core import ddl
from sf_platform.core import snowflake_sql as sql
from sf_platform.core.registry import RegistryError, parse_registry


def test_hostile_names_stay_quoted_and_values_stay_binds():
    statement, params = sql.copy_hub_files('"D"."S"."T"', '"D"."S"."ST"', files=["t/x'); DROP TABLE y; --.parquet"])
    outside = re.sub(r'"(?:[^"]|"")*"', '"?"', statement)
    assert "DROP" not in outside and "'" not in outside and params == ["t/x'); DROP TABLE y; --.parquet"]
    merge = sql.merge_statement('"T"', '"S"', ['we"ird', ddl.SOURCE_KEY_COLUMN], ['we"ird'], [ddl.SOURCE_KEY_COLUMN],
                                ddl.SOURCE_KEY_COLUMN)
    assert '"WE""IRD"' in merge and "'" not in merge

def test_merge_statement_dedups_by_the_last_row_and_skips_null_keys():
    statement = sql.merge_statement(
        '"D"."S"."T"', '"D"."S"."T__SF_MERGE"', ["id", "region", "v", ddl.SOURCE_KEY_COLUMN], ["id", "region"],
        [ddl.SOURCE_KEY_COLUMN, sql.SOURCE_ROW_COLUMN],
    )
    assert statement == (
        'MERGE INTO "D"."S"."T" AS "T" USING (SELECT "ID", "REGION", "V", "_SF_SOURCE_KEY" FROM "D"."S"."T__SF_MERGE" '
        'WHERE "ID" IS NOT NULL AND "REGION" IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY "ID", "REGION" '
        'ORDER BY "_SF_SOURCE_KEY" DESC, "_SF_ROW" DESC) = 1) AS "S" ON "T"."ID" = "S"."ID" AND "T"."REGION" = "S"."REGION" '
        'WHEN MATCHED THEN UPDATE SET "V" = "S"."V", "_SF_SOURCE_KEY" = "S"."_SF_SOURCE_KEY" '
        'WHEN NOT MATCHED THEN INSERT ("ID", "REGION", "V", "_SF_SOURCE_KEY") '
        'VALUES ("S"."ID", "S"."REGION", "S"."V", "S"."_SF_SOURCE_KEY")'
    )
    with pytest.raises(sql.StatementError, match="merge keys"):
        sql.merge_statement('"T"', '"S"', ["a"], ["b"], ["a"])
    assert "QUALIFY ROW_NUMBER()" in sql.superseded_rows('"S"', ["id"], ["a"]) and "> 1)" in sql.superseded_rows('"S"', ["id"], ["a"])
    assert sql.null_key_rows('"S"', ["a", "b"]) == 'SELECT COUNT(*) FROM "S" WHERE "A" IS NULL OR "B" IS NULL'


def test_swap_and_its_detected_fallback():
    assert sql.swap_statement('"D"."S"."T"', '"D"."S"."T__SF_STAGING"') == 'ALTER TABLE "D"."S"."T" SWAP WITH "D"."S"."T__SF_STAGING"'
    assert sql.is_swap_unsupported(Exception('001003 (42000): Parser Error: syntax error at or near "SWAP"'))
    assert not sql.is_swap_unsupported(Exception("002003 (42S02): Table 'T' does not exist"))


def test_unsafe_stage_paths_and_the_external_stage():
    for bad in ("t/../x/", "t/x y/", "t/'; DROP/"):
        with pytest.raises(sql.StatementError):
            sql.stage_location('"S"', bad)
    assert sql.qualified("db.raw.landing") == '"DB"."RAW"."LANDING"'
    statement, params = sql.create_external_stage('"D"."S"."L"', "s3://bucket/", "s3_int")
    assert statement == 'CREATE STAGE IF NOT EXISTS "D"."S"."L" URL = %s STORAGE_INTEGRATION = "S3_INT"' and params == ["s3://bucket/"]


@pytest.mark.parametrize(
    ("current", "wanted", "expected"),
    [
        ("NUMBER(38,0)", "NUMBER(38,0)", None),
        ("NUMBER(10,2)", "NUMBER(12,2)", "NUMBER(12,2)"),  # widened in place
        ("NUMBER(12,2)", "NUMBER(10,2)", None),  # already holds it
        ("VARCHAR", "VARCHAR", None),
    ],
)
def test_type_changes(current, wanted, expected):
    assert sql.type_change(current, wanted) == expected


@pytest.mark.parametrize(("current", "wanted"), [("BOOLEAN", "VARCHAR"), ("NUMBER(10,2)", "NUMBER(12,3)"), ("FLOAT", "NUMBER(38,0)")])
def test_type_changes_snowflake_cannot_make_in_place(current, wanted):
    with pytest.raises(ValueError):
        sql.type_change(current, wanted)


def test_information_schema_types_are_read_in_the_mapping_spelling():
    assert sql.existing_type("NUMBER", 38, 0) == "NUMBER(38,0)"
    assert sql.existing_type("TEXT", None, None) == "VARCHAR"
    assert sql.existing_type("TIMESTAMP_NTZ", None, None) == "TIMESTAMP_NTZ"


def test_copy_results_are_summed_with_errors_and_skipped_files():
    outcome = sql.copy_outcome(
        [
            ("s3://b/t/a.csv", "LOADED", 10, 10, 10, 0, None, None, None, None),
            ("s3://b/t/b.csv", "PARTIALLY_LOADED", 5, 3, 5, 2, "Numeric value 'x' is not recognized", 4, 7, '"T"["A":1]'),
            ("s3://b/t/c.csv", "LOAD_SKIPPED", 0, 0, 1, 1, "File was loaded before.", None, None, None),
        ]
    )
    assert (outcome.files, outcome.rows_parsed, outcome.rows_loaded, outcome.rows_rejected) == (3, 15, 13, 2)
    assert outcome.skipped_files == ["s3://b/t/c.csv"]
    assert outcome.errors[0]["first_error_line"] == 4 and "Numeric value" in outcome.errors[0]["first_error"]
    assert sql.copy_outcome([("Copy executed with 0 files processed.",)]).files == 0


def test_staging_tables_ddl():
    columns = [ddl.ColumnSpec("id", "bigint")]
    assert ddl.snowflake_create_table("d", "s", "t__sf_merge", columns, replace=True, transient=True,
                                      extra_columns=[(sql.SOURCE_ROW_COLUMN, "NUMBER(38,0)")]).startswith(
        'CREATE OR REPLACE TRANSIENT TABLE "D"."S"."T__SF_MERGE" (\n  "ID" NUMBER(38,0),\n  "_SF_SOURCE_KEY" VARCHAR NOT NULL,\n  "_SF_ROW" NUMBER(38,0)\n)'
    )
    assert ddl.snowflake_create_table("d", "s", "t", columns, replace=True).startswith('CREATE OR REPLACE TABLE "D"."S"."T"')
    assert ddl.snowflake_add_column("d", "s", "t", ddl.ColumnSpec("new col", "date")) == 'ALTER TABLE "D"."S"."T" ADD COLUMN "NEW COL" DATE'
    assert ddl.snowflake_alter_column_type("d", "s", "t", "AMOUNT", "NUMBER(12,2)") == (
        'ALTER TABLE "D"."S"."T" ALTER COLUMN "AMOUNT" SET DATA TYPE NUMBER(12,2)'
    )


def test_registry_snowflake_stage_options():
    registry = parse_registry(
        {"tables": {"t": {"snowflake": {"stage": "external", "external_stage": "raw.landing", "storage_integration": "s3_int"}}}}
    )
    target = registry.table("t").snowflake
    assert (target.stage, target.external_stage, target.storage_integration) == ("external", "raw.landing", "s3_int")
    assert parse_registry({"tables": {"t": {}}}).table("t").snowflake.stage == "internal"
    with pytest.raises(RegistryError, match=r"reg.yaml: table 't': key 'snowflake'.*needs external_stage"):
        parse_registry({"tables": {"t": {"snowflake": {"stage": "external"}}}}, source="reg.yaml")
    with pytest.raises(RegistryError, match=r"external_stage"):
        parse_registry({"tables": {"t": {"snowflake": {"stage": "external", "external_stage": "a;b"}}}})


def test_stage_cleanup_and_its_detected_fallback():
    assert sql.remove_statement('"D"."S"."STAGE"', "member/") == 'REMOVE @"D"."S"."STAGE"/member/'
    assert sql.is_remove_unsupported(Exception('001003 (42000): Parser Error: syntax error at or near "REMOVE"'))
    assert not sql.is_remove_unsupported(Exception("Stage does not exist"))


# ---- deletes with every key in one bound value


def test_copy_results_per_file():
    outcome = sql.copy_outcome([
        ("s3://b/t/a.parquet", "LOADED", 2, 2, 2, 0, None, None, None, None),
        ("s3://b/t/x/a.parquet", "LOADED", 3, 3, 3, 0, None, None, None, None),
    ])
    assert outcome.rows_by_file == {"s3://b/t/a.parquet": 2, "s3://b/t/x/a.parquet": 3} and outcome.rows_loaded == 5

def test_deletes_by_object_key_bind_the_keys_as_one_value():
    statement, params = sql.delete_by_keys('"D"."S"."T"', ddl.SOURCE_KEY_COLUMN, ["t/a.csv", "t/b'; DROP.csv"])
    assert statement == (
        'DELETE FROM "D"."S"."T" WHERE "_SF_SOURCE_KEY" IN '
        '(SELECT "F".VALUE::VARCHAR FROM TABLE(FLATTEN(INPUT => PARSE_JSON(%s))) AS "F")'
    )
    assert json.loads(params[0]) == ["t/a.csv", "t/b'; DROP.csv"]
    statement, params = sql.delete_by_keys('"L"', "OBJECT_KEY", ["t/a.csv"], table_name="t")
    assert statement.startswith('DELETE FROM "L" WHERE "TABLE_NAME" = %s AND "OBJECT_KEY" IN (SELECT')
    assert params == ["t", '["t/a.csv"]']


# ---- the per-table lock


def _claim(owner: str, ticket: int | None, *, choosing: bool = False, heartbeat: int = 1_000) -> sql.LockClaim:
    return sql.LockClaim(owner, owner.split("/")[0], ticket, choosing, heartbeat)


def test_the_lowest_ticket_holds_the_table_and_a_claim_still_choosing_blocks():
    claims = [_claim("r1/a", 1), _claim("r2/b", 2)]
    assert sql.lock_blockers(claims, "r1/a", now_ms=1_500, lease_ms=10_000) == []
    assert sql.lock_blockers(claims, "r2/b", now_ms=1_500, lease_ms=10_000) == [claims[0]]
    # Same ticket (both read the same maximum): the owner name breaks the tie.
    tied = [_claim("r1/a", 3), _claim("r2/b", 3)]
    assert sql.lock_blockers(tied, "r1/a", 1_500, 10_000) == [] and sql.lock_blockers(tied, "r2/b", 1_500, 10_000) == [tied[0]]
    # A run that has not taken its ticket yet may still take a lower one: wait for it.
    choosing = _claim("r3/c", None, choosing=True)
    assert sql.lock_blockers([_claim("r1/a", 1), choosing], "r1/a", 1_500, 10_000) == [choosing]


def test_a_dead_runs_claim_is_ignored_after_the_lease():
    dead = _claim("r1/a", 1, heartbeat=1_000)
    mine = _claim("r2/b", 2, heartbeat=20_000)
    assert sql.lock_blockers([dead, mine], "r2/b", now_ms=11_000, lease_ms=10_000) == [dead]
    assert sql.lock_blockers([dead, mine], "r2/b", now_ms=11_001, lease_ms=10_000) == []
    with pytest.raises(LookupError):
        sql.lock_blockers([dead], "r2/b", 11_001, 10_000)  # my claim is gone
    with pytest.raises(LookupError):
        sql.lock_blockers([_claim("r2/b", None, choosing=True)], "r2/b", 0, 10_000)


def test_lock_statements_bind_every_value_and_use_the_servers_clock():
    ref = '"D"."S"."_SF_LOCKS"'
    assert sql.locks_table(ref).startswith(f"CREATE TABLE IF NOT EXISTS {ref} (")
    for statement, params in (
        sql.lock_claim(ref, "t", "run/x", "run"),
        sql.lock_max_ticket(ref, "t"),
        sql.lock_take_ticket(ref, "run/x", 4),
        sql.lock_claims(ref, "t"),
        sql.lock_heartbeat(ref, "run/x", 60_000),
        sql.lock_release(ref, "run/x"),
        sql.lock_clear_stale(ref, "t", 900_000),
    ):
        assert statement.count("%s") == len(params)
        assert "run/x" not in statement and "'t'" not in statement
    heartbeat, params = sql.lock_heartbeat(ref, "run/x", 60_000)
    assert heartbeat == (
        f'UPDATE {ref} SET "HEARTBEAT_MS" = {sql.NOW_MS} WHERE "OWNER" = %s AND "HEARTBEAT_MS" >= {sql.NOW_MS} - %s'
    )
    assert params == ["run/x", 60_000]


# ---- the hub's loads


def test_copy_of_hub_files_matches_columns_by_name_and_binds_the_file_names():
    internal, params = sql.copy_hub_files('"D"."S"."T"', '"D"."S"."STAGE"', "t/run-1/abc/", purge=True)
    assert internal == (
        'COPY INTO "D"."S"."T" FROM @"D"."S"."STAGE"/t/run-1/abc/ FILE_FORMAT = (TYPE = PARQUET) '
        "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE PURGE = TRUE"
    ) and params == []
    files = ["_curated/t/data/region=eu/00000-0-a.parquet", "_curated/t/data/x'); DROP TABLE y; --.parquet"]
    external, params = sql.copy_hub_files('"D"."S"."T"', '"D"."S"."LANDING"', files=files)
    assert external == (
        'COPY INTO "D"."S"."T" FROM @"D"."S"."LANDING"/ FILES = (%s, %s) FILE_FORMAT = (TYPE = PARQUET) '
        "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE"
    ) and params == files
    with pytest.raises(sql.StatementError, match="1001 files in one COPY"):
        sql.copy_hub_files('"T"', '"S"', files=[f"f{i}" for i in range(1001)])


def test_hub_data_files_are_named_relative_to_the_bucket_root():
    assert sql.stage_relative("s3://land/_curated/t/data/a.parquet", "land") == "_curated/t/data/a.parquet"
    for elsewhere in ("s3://other/_curated/t/data/a.parquet", "s3://landing/x.parquet", "s3://land/"):
        with pytest.raises(sql.StatementError, match="not in the landing bucket"):
            sql.stage_relative(elsewhere, "land")


def test_the_snapshot_ledger_row_is_replaced_with_bound_values():
    assert sql.hub_ledger_read('"D"."S"."_SF_HUB_LEDGER"', "orders") == (
        'SELECT "SNAPSHOT_ID" FROM "D"."S"."_SF_HUB_LEDGER" WHERE "TABLE_NAME" = %s', ["orders"])
    (delete, delete_params), (insert, insert_params) = sql.hub_ledger_write('"L"', "orders", 123456789012345678, 7, "run-1")
    assert delete == 'DELETE FROM "L" WHERE "TABLE_NAME" = %s' and delete_params == ["orders"]
    assert insert.count("%s") == len(insert_params) and insert_params == ["orders", 123456789012345678, 7, "run-1"]
    assert '"SNAPSHOT_ID" NUMBER(38,0)' in sql.hub_ledger_table('"L"')


def test_merge_across_loads_updates_only_from_the_same_or_a_later_object():
    statement = sql.merge_statement(
        '"T"', '"S"', ["id", "v", ddl.SOURCE_KEY_COLUMN], ["id"], [ddl.SOURCE_KEY_COLUMN, sql.SOURCE_ROW_COLUMN],
        ddl.SOURCE_KEY_COLUMN,
    )
    assert 'WHEN MATCHED AND "S"."_SF_SOURCE_KEY" >= "T"."_SF_SOURCE_KEY" THEN UPDATE SET "V" = "S"."V"' in statement
    with pytest.raises(sql.StatementError, match="must be one of the merged columns"):
        sql.merge_statement('"T"', '"S"', ["id", "v"], ["id"], ["v"], ddl.SOURCE_KEY_COLUMN)


def test_hub_columns_get_the_catalogs_snowflake_types_without_the_bookkeeping():
    import pyarrow as pa

    schema = pa.schema([
        ("order_id", pa.int32()), ("big", pa.int64()), ("amount", pa.decimal128(9, 2)), ("paid", pa.bool_()),
        ("on", pa.date32()), ("at", pa.timestamp("us")), ("w", pa.float64()), ("name", pa.string()),
        ("_sf_source_key", pa.string()), ("_sf_row", pa.int64()),
    ])
    specs = sql.hub_column_specs(schema, ("_sf_source_key", "_sf_row"))
    assert [(c.name, c.snowflake_type) for c in specs] == [
        ("order_id", "NUMBER(38,0)"), ("big", "NUMBER(38,0)"), ("amount", "NUMBER(9,2)"), ("paid", "BOOLEAN"),
        ("on", "DATE"), ("at", "TIMESTAMP_NTZ"), ("w", "FLOAT"), ("name", "VARCHAR"),
    ]


def test_evolution_adds_and_widens_and_names_a_column_it_cannot_change():
    existing = {"ID": "NUMBER(38,0)", "AMOUNT": "NUMBER(4,2)", "OLD": "VARCHAR", "_SF_SOURCE_KEY": "VARCHAR"}
    columns = [ddl.ColumnSpec("id", "bigint"), ddl.ColumnSpec("amount", "decimal(9,2)"), ddl.ColumnSpec("note", "string")]
    assert [(c.name, wider) for c, wider in sql.evolution(existing, columns)] == [("amount", "NUMBER(9,2)"), ("note", None)]
    assert sql.evolution(existing, columns[:1]) == []  # OLD, gone from the hub, stays
    with pytest.raises(ValueError, match=r"column AMOUNT is NUMBER\(4,2\) but the hub now says decimal\(9,3\)"):
        sql.evolution(existing, [ddl.ColumnSpec("amount", "decimal(9,3)")])
    assert sql.column_diff(existing, columns) == [
        "added NOTE VARCHAR", "dropped OLD", "retyped AMOUNT NUMBER(4,2) -> NUMBER(9,2)"]
    assert sql.column_diff({"ID": "NUMBER(38,0)", "_SF_SOURCE_KEY": "VARCHAR"}, columns[:1]) == []
