"""The Snowflake load hop on the fakesnow server, through the real connector: create + append, replace
(swap), merge (upsert), rejected rows, schema evolution, the asset's metadata, many small files in
batches, and two runs of one table at the same moment."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal

import dagster as dg
import pytest

from sf_platform.assets.snowflake import SnowflakeHop
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.core.registry import parse_registry
from sf_platform.hops import snowflake_load
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.snowflake_load import SWAP_FALLBACK, SnowflakeLoadError, load_table

pytestmark = pytest.mark.integration

ORDERS_1 = (
    b"ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT,WEIGHT\n"
    b"1,Kim,10.50,true,2024-03-01,2024-03-01 09:00:00,1.5\n"
    b"2,Lee,20.25,false,2024-03-02,,2.25\n"
    b"3,Park,30.00,true,2024-03-03,2024-03-03 10:30:00.123456,3\n"
)
ORDERS_2 = (
    b"ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT,WEIGHT\n"
    b"4,Choi,40.75,false,2024-03-04,2024-03-04 11:00:00,4.5\n"
    b"5,Jung,50.00,true,2024-03-05,2024-03-05 12:00:00,5\n"
)


def _registry(table: str, **settings):
    # WEIGHT's values are plain decimals, which the crawl would type decimal(3,2); pin the double.
    settings["types"] = {"weight": "double", **settings.get("types", {})}
    return parse_registry({"tables": {table: settings}})


def _load(landing, glue, conn_info, table: str, config):
    conn, database, schema = conn_info
    crawl_table(landing, glue, table, config)
    return load_table(landing, glue, conn, database, schema, table, config)


def _rows(conn_info, table: str, columns: str = "*", order: str = '"ORDER_ID"') -> list[tuple]:
    conn, database, schema = conn_info
    cur = conn.cursor()
    cur.execute(f"SELECT {columns} FROM {snowflake_table_ref(database, schema, table)} ORDER BY {order}")
    return cur.fetchall()


def _scalar(conn_info, statement: str, params=()):
    cur = conn_info[0].cursor()
    cur.execute(statement, params)
    return cur.fetchone()[0]


def _tables(conn_info) -> set[str]:
    conn, database, schema = conn_info
    cur = conn.cursor()
    cur.execute(f'SELECT TABLE_NAME FROM "{database}".INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = %s', (schema,))
    return {r[0] for r in cur.fetchall()}


def test_create_then_append_loads_each_file_once(landing, glue, snowflake_conn):
    config = _registry("orders").table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    first = _load(landing, glue, snowflake_conn, "orders", config)
    assert (first.rows_loaded, first.rows_in_table, first.files_loaded) == (3, 3, ["orders/ORDERS_202403010000.csv"])
    assert first.parts_staged == 1 and first.bytes_loaded == len(ORDERS_1)

    conn, database, schema = snowflake_conn
    cur = conn.cursor()
    cur.execute(
        f'SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE FROM "{database}".INFORMATION_SCHEMA.COLUMNS '
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (schema, "ORDERS"),
    )
    assert cur.fetchall() == [
        ("ORDER_ID", "NUMBER", 38, 0),  # int -> NUMBER(38,0)
        ("CUSTOMER", "TEXT", None, None),  # string -> VARCHAR
        ("AMOUNT", "NUMBER", 4, 2),  # decimal(4,2)
        ("PAID", "BOOLEAN", None, None),
        ("ORDERED_ON", "DATE", None, None),
        ("SHIPPED_AT", "TIMESTAMP_NTZ", None, None),
        ("WEIGHT", "FLOAT", None, None),  # double
        ("_SF_SOURCE_KEY", "TEXT", None, None),
    ]
    assert _rows(snowflake_conn, "orders", '"ORDER_ID", "CUSTOMER", "AMOUNT", "PAID", "ORDERED_ON", "WEIGHT"') == [
        (1, "Kim", Decimal("10.50"), True, date(2024, 3, 1), 1.5),
        (2, "Lee", Decimal("20.25"), False, date(2024, 3, 2), 2.25),
        (3, "Park", Decimal("30.00"), True, date(2024, 3, 3), 3.0),
    ]
    # fakesnow reads a NULL TIMESTAMP_NTZ back as 1970-01-01: assert the NULL in SQL instead.
    ref = snowflake_table_ref(database, schema, "orders")
    assert _scalar(snowflake_conn, f'SELECT "ORDER_ID" FROM {ref} WHERE "SHIPPED_AT" IS NULL') == 2
    assert _scalar(snowflake_conn, f'SELECT "SHIPPED_AT" FROM {ref} WHERE "ORDER_ID" = 3') == datetime(
        2024, 3, 3, 10, 30, 0, 123456
    )

    landing.put("orders/ORDERS_202403020000.csv", ORDERS_2)
    second = _load(landing, glue, snowflake_conn, "orders", config)
    assert second.files_loaded == ["orders/ORDERS_202403020000.csv"]
    assert (second.files_skipped, second.rows_loaded, second.rows_in_table) == (1, 2, 5)
    assert [r[0] for r in _rows(snowflake_conn, "orders", '"ORDER_ID"')] == [1, 2, 3, 4, 5]

    third = load_table(landing, glue, conn, database, schema, "orders", config)
    assert (third.files_loaded, third.files_skipped, third.rows_in_table) == ([], 2, 5)
    ledger = snowflake_table_ref(database, schema, "_SF_LEDGER")
    assert _scalar(snowflake_conn, f'SELECT COUNT(*) FROM {ledger} WHERE "TABLE_NAME" = %s', ("orders",)) == 2


def test_replace_rebuilds_in_a_staging_table_and_swaps_it_in(landing, glue, snowflake_conn):
    config = _registry("orders", snowflake={"write_mode": "replace"}).table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    first = _load(landing, glue, snowflake_conn, "orders", config)
    assert first.rebuilt and first.rows_in_table == 3 and first.schema_changes == ["created"]
    # fakesnow cannot parse SWAP WITH: the detected fallback is recorded, never hidden.
    assert first.swap_method in ("SWAP WITH", SWAP_FALLBACK)

    # A changed object and a new one: the whole table is rebuilt from the current objects.
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1.replace(b"Kim", b"Kang"))
    landing.put("orders/ORDERS_202403020000.csv", ORDERS_2)
    second = _load(landing, glue, snowflake_conn, "orders", config)
    assert second.rebuilt and (second.rows_loaded, second.rows_in_table) == (5, 5)
    assert _rows(snowflake_conn, "orders", '"ORDER_ID", "CUSTOMER"')[:2] == [(1, "Kang"), (2, "Lee")]
    assert _tables(snowflake_conn) == {"ORDERS", "_SF_LEDGER", "_SF_LOCKS"}  # no staging table left behind

    unchanged = load_table(landing, glue, *snowflake_conn, "orders", config)
    assert not unchanged.rebuilt and unchanged.files_skipped == 2 and unchanged.rows_in_table == 5

    landing.delete("orders/ORDERS_202403010000.csv")
    shrunk = load_table(landing, glue, *snowflake_conn, "orders", config)
    assert shrunk.rebuilt and shrunk.rows_in_table == 2
    assert shrunk.files_removed == ["orders/ORDERS_202403010000.csv"]


def test_merge_updates_and_inserts_by_key(landing, glue, snowflake_conn):
    config = _registry("orders", snowflake={"write_mode": "merge", "merge_keys": ["order_id"]}).table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    first = _load(landing, glue, snowflake_conn, "orders", config)
    assert (first.rows_inserted, first.rows_updated, first.rows_in_table) == (3, 0, 3)

    # Order 2 is updated, 4 is new and appears twice (the later row wins), one row has no key.
    update = (
        b"ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT,WEIGHT\n"
        b"2,Lee,99.99,true,2024-03-02,2024-03-09 09:00:00,2.25\n"
        b"4,Choi,40.75,false,2024-03-04,,4.5\n"
        b",Nobody,1.00,true,2024-03-04,,1\n"
        b"4,Choi,41.00,true,2024-03-04,2024-03-10 10:00:00,4.5\n"
    )
    landing.put("orders/ORDERS_202403020000.csv", update)
    second = _load(landing, glue, snowflake_conn, "orders", config)
    assert second.files_loaded == ["orders/ORDERS_202403020000.csv"] and second.files_skipped == 1
    assert (second.rows_inserted, second.rows_updated, second.duplicate_key_rows) == (1, 1, 1)
    assert second.rows_quarantined == 1 and second.rows_in_table == 4
    assert _rows(snowflake_conn, "orders", '"ORDER_ID", "CUSTOMER", "AMOUNT", "PAID"') == [
        (1, "Kim", Decimal("10.50"), True),
        (2, "Lee", Decimal("99.99"), True),
        (3, "Park", Decimal("30.00"), True),
        (4, "Choi", Decimal("41.00"), True),
    ]
    quarantined = list(csv.DictReader(io.StringIO(landing.open(second.quarantine_keys[0]).read().decode())))
    assert [(r["line"], r["customer"]) for r in quarantined] == [("3", "Nobody")]
    assert "merge key" in quarantined[0]["reason"]
    assert _tables(snowflake_conn) == {"ORDERS", "_SF_LEDGER", "_SF_LOCKS"}

    again = load_table(landing, glue, *snowflake_conn, "orders", config)
    assert again.files_loaded == [] and again.rows_in_table == 4


def test_rejected_rows_are_quarantined_with_line_and_reason(landing, glue, snowflake_conn):
    config = _registry("orders", types={"order_id": "bigint", "amount": "decimal(6,2)"}).table("orders")
    bad = ORDERS_1 + b"x7,Han,12.00,true,2024-03-07,,1\n8,Yoon,12.345,true,2024-03-08,,1\n"
    landing.put("orders/ORDERS_202403010000.csv", bad)
    report = _load(landing, glue, snowflake_conn, "orders", config)
    assert (report.rows_loaded, report.rows_quarantined, report.rows_rejected, report.rows_in_table) == (3, 2, 2, 3)
    rows = list(csv.DictReader(io.StringIO(landing.open(report.quarantine_keys[0]).read().decode())))
    assert [(r["line"], r["order_id"]) for r in rows] == [("4", "x7"), ("5", "8")]
    assert "order_id" in rows[0]["reason"] and "bigint" in rows[0]["reason"]
    assert "amount" in rows[1]["reason"]
    ledger = snowflake_table_ref(snowflake_conn[1], snowflake_conn[2], "_SF_LEDGER")
    assert _scalar(snowflake_conn, f'SELECT "ROWS_QUARANTINED" FROM {ledger} WHERE "TABLE_NAME" = %s', ("orders",)) == 2


def test_ragged_rows_are_quarantined_with_their_text_next_to_the_other_rejected_rows(
    landing, glue, snowflake_conn
):
    config = _registry(
        "orders",
        types={"order_id": "bigint", "amount": "decimal(6,2)"},
        snowflake={"write_mode": "merge", "merge_keys": ["order_id"]},
    ).table("orders")
    landing.put(
        "orders/ORDERS_202403010000.csv",
        b"ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT,WEIGHT\n"
        b"1,Kim,10.50,true,2024-03-01,2024-03-01 09:00:00,1.5\n"
        b"2,Lee,20.25\n"  # ragged: 3 fields
        b"x3,Park,30.00,true,2024-03-03,,3\n"  # cannot be typed
        b",Nobody,1.00,true,2024-03-04,,1\n"  # no merge key
        b"5,Jung,50.00,true,2024-03-05,,5,extra\n"  # ragged: 8 fields
        b"6,Han,60.00,false,2024-03-06,,6\n",
    )
    report = _load(landing, glue, snowflake_conn, "orders", config)
    assert (report.rows_quarantined, report.rows_in_table) == (4, 2)
    assert _rows(snowflake_conn, "orders", '"ORDER_ID", "CUSTOMER", "AMOUNT"') == [
        (1, "Kim", Decimal("10.50")),
        (6, "Han", Decimal("60.00")),
    ]
    rows = list(csv.DictReader(io.StringIO(landing.open(report.quarantine_keys[0]).read().decode())))
    assert [(r["line"], r["order_id"], r["customer"]) for r in rows] == [
        ("2", "", ""),
        ("3", "x3", "Park"),
        ("4", "", "Nobody"),
        ("5", "", ""),
    ]
    assert rows[0]["reason"] == (
        "ragged row: expected 7 fields, got 3 (data row 2, not counting the header or blank lines); "
        "raw text: 2,Lee,20.25"
    )
    assert "order_id" in rows[1]["reason"] and "merge key" in rows[2]["reason"]
    assert rows[3]["reason"].startswith("ragged row: expected 7 fields, got 8 ")
    assert rows[3]["reason"].endswith("raw text: 5,Jung,50.00,true,2024-03-05,,5,extra")
    ledger = snowflake_table_ref(snowflake_conn[1], snowflake_conn[2], "_SF_LEDGER")
    assert _scalar(snowflake_conn, f'SELECT "ROWS_QUARANTINED" FROM {ledger} WHERE "TABLE_NAME" = %s', ("orders",)) == 4


def test_a_new_catalog_column_is_added_to_the_table(landing, glue, snowflake_conn):
    config = _registry("orders").table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    _load(landing, glue, snowflake_conn, "orders", config)
    wider = b"ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT,WEIGHT,COUPON\n6,Lim,60.00,true,2024-03-06,,6,SPRING\n"
    landing.put("orders/ORDERS_202403030000.csv", wider)
    report = _load(landing, glue, snowflake_conn, "orders", config)
    assert report.schema_changes == ["added COUPON VARCHAR"]
    assert report.rows_in_table == 4
    ref = snowflake_table_ref(snowflake_conn[1], snowflake_conn[2], "orders")
    assert _scalar(snowflake_conn, f'SELECT COUNT(*) FROM {ref} WHERE "COUPON" IS NULL') == 3
    assert _scalar(snowflake_conn, f'SELECT "COUPON" FROM {ref} WHERE "ORDER_ID" = 6') == "SPRING"


def test_an_incompatible_type_change_fails_naming_the_column(landing, glue, snowflake_conn):
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    _load(landing, glue, snowflake_conn, "orders", _registry("orders").table("orders"))
    retyped = _registry("orders", types={"paid": "string"}).table("orders")
    with pytest.raises(SnowflakeLoadError, match="PAID.*BOOLEAN.*write_mode: replace"):
        _load(landing, glue, snowflake_conn, "orders", retyped)


def test_the_asset_reports_rows_files_bytes_and_schema(landing, glue, snowflake_conn, snowflake_database):
    conn, database, schema = snowflake_conn
    registry = _registry("orders", types={"order_id": "bigint"})
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1 + b"x,Bad,1.00,true,2024-03-09,,1\n")
    crawl_table(landing, glue, "orders", registry.table("orders"))
    asset = build_hop_assets("snowflake", [SnowflakeHop(glue.database, database, schema)], registry)
    result = dg.materialize([asset], resources={"landing": landing, "glue": glue, "snowflake": snowflake_database})
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 3
    assert metadata["dagster/table_name"].value == f"{database}.{schema}.ORDERS"
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns][:2] == ["ORDER_ID", "CUSTOMER"]
    assert metadata["rows_loaded"].value == 3
    assert metadata["rows_rejected"].value == 1
    assert metadata["files_loaded"].value == 1
    assert metadata["bytes_loaded"].value > 0
    assert metadata["write_mode"].value == "append" and metadata["stage"].value == "internal"
    assert metadata["seconds"].value > 0


class _ExternalCopyAnswered:
    """The real fakesnow connection, except the statements fakesnow cannot run against moto (creating a
    stage with a storage integration, COPY from an S3 stage): those are recorded and answered with
    Snowflake's COPY result rows. Everything else (DDL, ledger, transactions) runs for real."""

    def __init__(self, conn, copy_results: list[list[tuple]]):
        self.conn, self.copy_results, self.recorded = conn, list(copy_results), []

    def cursor(self):
        return _AnsweringCursor(self.conn.cursor(), self)


class _AnsweringCursor:
    def __init__(self, cur, owner):
        self.cur, self.owner, self.rows = cur, owner, None

    def execute(self, statement, params=None):
        self.rows = None
        if "STORAGE_INTEGRATION" in statement or "METADATA$FILENAME" in statement:
            self.owner.recorded.append((statement, params))
            self.rows = self.owner.copy_results.pop(0) if statement.startswith("COPY") else []
            return self
        self.cur.execute(statement, params)
        return self

    def fetchall(self):
        return self.rows if self.rows is not None else self.cur.fetchall()

    def fetchone(self):
        return self.rows[0] if self.rows is not None else self.cur.fetchone()


def test_the_external_stage_copies_each_file_by_its_own_header_with_the_catalog_format(landing, glue, snowflake_conn):
    conn, database, schema = snowflake_conn
    settings = {"stage": "external", "external_stage": "landing_stage", "storage_integration": "s3_int"}
    config = _registry("orders", snowflake=settings).table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    reordered = b"WEIGHT,ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT\n6,6,Lim,60.00,true,2024-03-06,\nx,7,Oh,1.00,true,2024-03-07,\n"
    landing.put("orders/ORDERS_202403020000.csv", reordered)
    crawl_table(landing, glue, "orders", config)
    answered = _ExternalCopyAnswered(conn, [
        [("s3://b/orders/ORDERS_202403010000.csv", "LOADED", 3, 3, 3, 0, None, None, None, None)],
        [("s3://b/orders/ORDERS_202403020000.csv", "PARTIALLY_LOADED", 2, 1, 2, 1,
          "Numeric value 'x' is not recognized", 3, 1, '"ORDERS"["WEIGHT":7]')],
    ])
    report = load_table(landing, glue, answered, database, schema, "orders", config)

    stage = f'"{database}"."{schema}"."LANDING_STAGE"'
    (create, create_params), (first, first_params), (second, second_params) = answered.recorded
    assert create == f'CREATE STAGE IF NOT EXISTS {stage} URL = %s STORAGE_INTEGRATION = "S3_INT"'
    assert create_params == [landing.uri()]
    columns = '("ORDER_ID", "CUSTOMER", "AMOUNT", "PAID", "ORDERED_ON", "SHIPPED_AT", "WEIGHT", "_SF_SOURCE_KEY")'
    assert first.startswith(f'COPY INTO "{database}"."{schema}"."ORDERS" {columns} FROM (SELECT $1, $2, $3, $4, $5, $6, $7, METADATA$FILENAME FROM @{stage})')
    assert "SELECT $2, $3, $4, $5, $6, $7, $1, METADATA$FILENAME" in second  # this file's header order
    assert first.endswith("ON_ERROR = CONTINUE")
    assert first_params == ["orders/ORDERS_202403010000.csv", ",", 1, "UTF8"]
    assert second_params[0] == "orders/ORDERS_202403020000.csv"

    assert (report.stage_mode, report.rows_loaded, report.rows_rejected_by_copy, report.rows_rejected) == ("external", 4, 1, 1)
    assert report.parts_staged == 0  # no data passed through the worker
    [errors_key] = report.quarantine_keys
    assert errors_key.endswith(".copy_errors.csv")
    assert "Numeric value 'x'" in landing.open(errors_key).read().decode()
    ledger = snowflake_table_ref(database, schema, "_SF_LEDGER")
    assert _scalar(snowflake_conn, f'SELECT COUNT(*) FROM {ledger} WHERE "TABLE_NAME" = %s', ("orders",)) == 2


# ---- many small files: batches, re-runs, replaced objects, overlapping runs


def _small_file(number: int, rows: int = 1, tag: str = "") -> bytes:
    lines = [f"{number * 10 + r},name{number}{tag}-{r},{number}.25" for r in range(rows)]
    return ("ID,NAME,AMOUNT\n" + "\n".join(lines) + "\n").encode()


def _put_small_files(landing, table: str, numbers, **kwargs) -> list[str]:
    keys = [f"{table}/{table.upper()}_{n:06d}.csv" for n in numbers]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kn: landing.put(kn[0], _small_file(kn[1], **kwargs)), zip(keys, numbers, strict=True)))
    return keys


def _ledger_rows(conn_info, table: str) -> dict[str, tuple]:
    """Object key -> (ETag, rows loaded) of every ledger row of ``table``; fails on a key listed twice."""
    conn, database, schema = conn_info
    cur = conn.cursor()
    ledger = snowflake_table_ref(database, schema, "_SF_LEDGER")
    cur.execute(f'SELECT "OBJECT_KEY", "ETAG", "ROWS_LOADED" FROM {ledger} WHERE "TABLE_NAME" = %s', (table,))
    rows = cur.fetchall()
    keys = [r[0] for r in rows]
    assert len(keys) == len(set(keys)), "an object is in the ledger twice"
    return {k: (e, int(n)) for k, e, n in rows}


def _copies_per_row(conn_info, table: str) -> dict[tuple, int]:
    conn, database, schema = conn_info
    cur = conn.cursor()
    cur.execute(
        f'SELECT "ID", "NAME", "_SF_SOURCE_KEY", COUNT(*) FROM {snowflake_table_ref(database, schema, table)} '
        'GROUP BY "ID", "NAME", "_SF_SOURCE_KEY"'
    )
    return {(int(i), n, k): int(c) for i, n, k, c in cur.fetchall()}


def test_hundreds_of_one_row_files_load_in_a_few_batches(landing, glue, snowflake_conn, monkeypatch):
    monkeypatch.setattr(snowflake_load, "BATCH_OBJECTS", 128)  # 300 files: batches of 128, 128 and 44
    config = _registry("small").table("small")
    keys = _put_small_files(landing, "small", range(300))
    report = _load(landing, glue, snowflake_conn, "small", config)

    assert (report.batches, report.parts_staged) == (3, 3)
    assert report.files_loaded == keys and report.files_skipped == 0
    assert (report.rows_loaded, report.rows_in_table, report.rows_rejected) == (300, 300, 0)
    assert _rows(snowflake_conn, "small", '"ID", "NAME", "AMOUNT", "_SF_SOURCE_KEY"', order='"ID"') == [
        (n * 10, f"name{n}-0", Decimal(f"{n}.25"), keys[n]) for n in range(300)
    ]
    ledger = _ledger_rows(snowflake_conn, "small")
    assert sorted(ledger) == keys
    assert all(rows == 1 for _, rows in ledger.values())
    assert {k: e for k, (e, _) in ledger.items()} == {o.key: o.etag for o in landing.source_objects("small/")}

    again = load_table(landing, glue, *snowflake_conn, "small", config)
    assert (again.files_loaded, again.files_skipped, again.batches, again.rows_loaded) == ([], 300, 0, 0)
    assert again.rows_in_table == 300 and len(_ledger_rows(snowflake_conn, "small")) == 300


def test_replaced_objects_replace_exactly_their_rows_across_batches(landing, glue, snowflake_conn, monkeypatch):
    monkeypatch.setattr(snowflake_load, "BATCH_OBJECTS", 16)
    config = _registry("small").table("small")
    keys = _put_small_files(landing, "small", range(40))
    _load(landing, glue, snowflake_conn, "small", config)
    before = _copies_per_row(snowflake_conn, "small")

    # Three objects replaced (now two rows each), in different batches; one deleted; one new.
    replaced = _put_small_files(landing, "small", [3, 20, 39], rows=2, tag="v2")
    landing.delete(keys[7])
    [added] = _put_small_files(landing, "small", [40])
    report = _load(landing, glue, snowflake_conn, "small", config)

    assert sorted(report.files_loaded) == sorted(replaced + [added])
    assert report.files_removed == [keys[7]] and report.files_skipped == 36
    assert report.rows_in_table == 40 - 3 + 6 - 1 + 1
    after = _copies_per_row(snowflake_conn, "small")
    assert set(after.values()) == {1}
    untouched = {row for row in before if row[2] not in set(replaced) | {keys[7]}}
    assert untouched <= set(after)  # the other objects' rows are the same rows
    for number, key in zip([3, 20, 39], replaced, strict=True):
        assert sorted(row for row in after if row[2] == key) == [
            (number * 10, f"name{number}v2-0", key), (number * 10 + 1, f"name{number}v2-1", key)
        ]
    assert not [row for row in after if row[2] == keys[7]]
    ledger = _ledger_rows(snowflake_conn, "small")
    assert sorted(ledger) == sorted(set(keys) - {keys[7]} | {added})
    etags = {o.key: o.etag for o in landing.source_objects("small/")}
    assert all(ledger[k] == (etags[k], 2) for k in replaced)


def test_merge_and_replace_load_many_files_in_batches(landing, glue, snowflake_conn, monkeypatch):
    monkeypatch.setattr(snowflake_load, "BATCH_OBJECTS", 25)
    merge = _registry("small", snowflake={"write_mode": "merge", "merge_keys": ["id"]}).table("small")
    _put_small_files(landing, "small", range(60))
    first = _load(landing, glue, snowflake_conn, "small", merge)
    assert (first.batches, first.rows_inserted, first.rows_in_table) == (3, 60, 60)
    _put_small_files(landing, "small", [5], tag="v2")  # same id, new name: an update
    second = _load(landing, glue, snowflake_conn, "small", merge)
    assert (second.batches, second.rows_inserted, second.rows_updated, second.rows_in_table) == (1, 0, 1, 60)
    assert _scalar(snowflake_conn, f'SELECT "NAME" FROM {snowflake_table_ref(*snowflake_conn[1:], "small")} WHERE "ID" = 50') == "name5v2-0"

    replace = _registry("other", snowflake={"write_mode": "replace"}).table("other")
    _put_small_files(landing, "other", range(60))
    rebuilt = _load(landing, glue, snowflake_conn, "other", replace)
    assert rebuilt.rebuilt and (rebuilt.batches, rebuilt.rows_in_table) == (3, 60)
    assert len(_ledger_rows(snowflake_conn, "other")) == 60
    assert _tables(snowflake_conn) == {"SMALL", "OTHER", "_SF_LEDGER", "_SF_LOCKS"}


def _second_connection(stack_env, database: str):
    import snowflake.connector

    return snowflake.connector.connect(
        user=stack_env["SF_SNOWFLAKE_USER"], password=stack_env["SF_SNOWFLAKE_PASSWORD"],
        account=stack_env["SF_SNOWFLAKE_ACCOUNT"], host=stack_env["SF_SNOWFLAKE_HOST"],
        port=int(stack_env["SF_SNOWFLAKE_PORT"]), protocol=stack_env["SF_SNOWFLAKE_PROTOCOL"],
        database=database, schema="RAW", network_timeout=60,
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )


def test_two_runs_started_together_load_every_file_once(landing, glue, snowflake_conn, stack_env):
    conn, database, schema = snowflake_conn
    # Another table was loaded before, so the schema's ledger and lock tables exist: on fakesnow (DuckDB)
    # two sessions creating the same table at the same instant collide (a write-write conflict); on
    # Snowflake CREATE TABLE IF NOT EXISTS does not.
    _put_small_files(landing, "before", [1])
    _load(landing, glue, snowflake_conn, "before", _registry("before").table("before"))
    config = _registry("small").table("small")
    other = _second_connection(stack_env, database)
    expected: dict[str, int] = {}  # object key -> rows it holds now
    try:
        for round_number in range(4):
            new = _put_small_files(landing, "small", range(round_number * 12, round_number * 12 + 12))
            changed = []
            if round_number:  # a file of the previous round replaced, with two rows now
                changed = _put_small_files(landing, "small", [round_number * 12 - 1], rows=2, tag=f"r{round_number}")
            expected.update(dict.fromkeys(new, 1) | dict.fromkeys(changed, 2))
            crawl_table(landing, glue, "small", config)

            start = threading.Barrier(2)

            def run(connection, start=start):
                start.wait()
                return load_table(landing, glue, connection, database, schema, "small", config)

            with ThreadPoolExecutor(2) as pool:
                reports = [f.result() for f in [pool.submit(run, conn), pool.submit(run, other)]]

            loaded = [set(r.files_loaded) for r in reports]
            assert not loaded[0] & loaded[1], f"round {round_number}: a file loaded by both runs"
            assert loaded[0] | loaded[1] == set(new) | set(changed)
            copies = _copies_per_row(snowflake_conn, "small")
            assert set(copies.values()) == {1}, f"round {round_number}: a row is in the table twice"
            assert len(copies) == sum(expected.values())
            assert {k: rows for k, (_, rows) in _ledger_rows(snowflake_conn, "small").items()} == expected
            locks = snowflake_table_ref(database, schema, "_SF_LOCKS")
            assert _scalar(snowflake_conn, f"SELECT COUNT(*) FROM {locks}") == 0  # both released the table
    finally:
        other.close()


def test_the_external_stage_copies_the_files_of_one_layout_in_one_statement(landing, glue, snowflake_conn):
    conn, database, schema = snowflake_conn
    settings = {"stage": "external", "external_stage": "landing_stage", "storage_integration": "s3_int"}
    config = _registry("orders", snowflake=settings).table("orders")
    landing.put("orders/ORDERS_202403010000.csv", ORDERS_1)
    reordered = b"WEIGHT,ORDER_ID,CUSTOMER,AMOUNT,PAID,ORDERED_ON,SHIPPED_AT\n6,6,Lim,60.00,true,2024-03-06,\n"
    landing.put("orders/ORDERS_202403020000.csv", reordered)
    landing.put("orders/ORDERS_202403030000.csv", ORDERS_2)
    crawl_table(landing, glue, "orders", config)
    answered = _ExternalCopyAnswered(conn, [
        [("s3://b/orders/ORDERS_202403010000.csv", "LOADED", 3, 3, 3, 0, None, None, None, None),
         ("s3://b/orders/ORDERS_202403030000.csv", "PARTIALLY_LOADED", 2, 1, 2, 1,
          "Numeric value 'x' is not recognized", 2, 1, '"ORDERS"["WEIGHT":7]')],
        [("s3://b/orders/ORDERS_202403020000.csv", "LOADED", 1, 1, 1, 0, None, None, None, None)],
    ])
    report = load_table(landing, glue, answered, database, schema, "orders", config)

    (_, _), (same, same_params), (other, other_params) = answered.recorded  # the stage, then two COPYs
    assert "FILES = (%s, %s)" in same and same_params[:2] == ["orders/ORDERS_202403010000.csv", "orders/ORDERS_202403030000.csv"]
    assert "FILES = (%s)" in other and other_params[0] == "orders/ORDERS_202403020000.csv"
    assert "SELECT $2, $3, $4, $5, $6, $7, $1, METADATA$FILENAME" in other
    assert (report.batches, report.rows_loaded, report.rows_rejected_by_copy) == (1, 5, 1)
    [errors_key] = report.quarantine_keys  # only the file with errors has a copy_errors file
    assert "ORDERS_202403030000" in errors_key and "Numeric value 'x'" in landing.open(errors_key).read().decode()
    assert {k: rows for k, (_, rows) in _ledger_rows(snowflake_conn, "orders").items()} == {
        "orders/ORDERS_202403010000.csv": 3, "orders/ORDERS_202403020000.csv": 1, "orders/ORDERS_202403030000.csv": 1,
    }
