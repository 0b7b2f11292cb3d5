"""The Snowflake load from the Iceberg hub, on the fakesnow server through the real connector, the hub
tables written with plain pyiceberg on the test moto server: a first load, appends, a replaced and a
deleted object, a new and a widened column, a full rebuild, only the changes since the loaded snapshot,
each write mode, and two loads of one table at the same moment."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sf_platform.core import snowflake_sql as sql
from sf_platform.core.catalog import CatalogColumn
from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.core.registry import parse_registry
from sf_platform.hops.snowflake_load import (
    SWAP_FALLBACK,
    LoadedState,
    SnowflakeLoadError,
    hub_rows_at,
    load_table,
    loaded_state,
)
from sf_platform.hub.changes import Hub
from sf_platform.hub.conventions import CURATE, OPERATION, ROW, SOURCE_KEY, arrow_schema

pytestmark = pytest.mark.integration

COLUMNS = [
    CatalogColumn("order_id", "int"), CatalogColumn("customer", "string"), CatalogColumn("amount", "decimal(4,2)"),
    CatalogColumn("paid", "boolean"), CatalogColumn("ordered_on", "date"), CatalogColumn("shipped_at", "timestamp"),
    CatalogColumn("weight", "double"),
]
SCHEMA = arrow_schema(COLUMNS)
PROPS = {OPERATION: CURATE}


@pytest.fixture()
def hub(landing, glue):
    hub = Hub(landing, glue, database=f"{glue.database}_curated")
    glue.ensure_database(hub.database)
    return hub


def _create(hub: Hub, name: str = "orders", schema: pa.Schema = SCHEMA):
    return hub.catalog().create_table(hub.identifier(name), schema=schema, location=hub.location(name))


def _rows(key: str, ids, schema: pa.Schema = SCHEMA, **extra) -> pa.Table:
    ids = list(ids)
    values = {
        "order_id": ids,
        "customer": [f"{key}-{i}" for i in ids],
        "amount": [Decimal(i % 100) + Decimal("0.25") for i in ids],
        "paid": [i % 2 == 0 for i in ids],
        "ordered_on": [date(2024, 3, 1 + i % 28) for i in ids],
        "shipped_at": [datetime(2024, 3, 1, 9, 0, 0, 123456) if i % 3 else None for i in ids],
        "weight": [i * 1.5 for i in ids],
        SOURCE_KEY: [key] * len(ids),
        ROW: list(range(1, len(ids) + 1)),
    } | extra
    return pa.table({f.name: pa.array(values[f.name], f.type) for f in schema}, schema=schema)


def _config(**snowflake):
    return parse_registry({"tables": {"orders": {"targets": ["snowflake"], "snowflake": snowflake}}}).table("orders")


def _load(hub, conn_info, config=None, table: str = "orders", **kwargs):
    conn, database, schema = conn_info
    return load_table(hub, hub.landing, conn, database, schema, table, config or _config(), **kwargs)


def _query(conn_info, statement: str, params=()) -> list[tuple]:
    cur = conn_info[0].cursor()
    cur.execute(statement, params)
    return cur.fetchall()


def _ref(conn_info, table: str = "orders") -> str:
    return snowflake_table_ref(conn_info[1], conn_info[2], table)


def _ids(conn_info, table: str = "orders") -> list[int]:
    return [r[0] for r in _query(conn_info, f'SELECT "ORDER_ID" FROM {_ref(conn_info, table)} ORDER BY 1')]


def _ledger(conn_info, table: str = "orders") -> list[tuple]:
    return _query(conn_info, f'SELECT "SNAPSHOT_ID" FROM {_ref(conn_info, sql.HUB_LEDGER_TABLE)} WHERE "TABLE_NAME" = %s',
                  (table,))


def _tables(conn_info) -> set[str]:
    conn, database, schema = conn_info
    rows = _query(conn_info, f'SELECT TABLE_NAME FROM "{database}".INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = %s',
                  (schema,))
    return {r[0] for r in rows}


def _hub_rows(hub: Hub, table: str = "orders") -> int:
    return hub.require(table).scan().to_arrow().num_rows


def test_first_load_then_only_the_changes_since(hub, snowflake_conn):
    table = _create(hub)
    table.append(pa.concat_tables([_rows("orders/a.csv", range(1, 4)), _rows("orders/b.csv", range(4, 6))]),
                 snapshot_properties=PROPS)
    first = _load(hub, snowflake_conn)
    assert first.full and first.previous_snapshot_id is None
    assert first.snapshot_id == hub.current_snapshot_id("orders")
    assert (first.rows_inserted, first.rows_in_table, first.files_copied) == (5, 5, 1)
    assert _ledger(snowflake_conn) == [(first.snapshot_id,)]
    assert _tables(snowflake_conn) == {"ORDERS", sql.HUB_LEDGER_TABLE, sql.LOCKS_TABLE}  # no staging left
    conn, database, schema = snowflake_conn
    assert loaded_state(conn, database, schema, "orders") == LoadedState(True, first.snapshot_id, 5)
    assert loaded_state(conn, database, schema, "other") == LoadedState(False, None, 0)

    columns = _query(
        snowflake_conn,
        f'SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE FROM "{database}".INFORMATION_SCHEMA.COLUMNS '
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (schema, "ORDERS"),
    )
    assert columns == [
        ("ORDER_ID", "NUMBER", 38, 0), ("CUSTOMER", "TEXT", None, None), ("AMOUNT", "NUMBER", 4, 2),
        ("PAID", "BOOLEAN", None, None), ("ORDERED_ON", "DATE", None, None),
        ("SHIPPED_AT", "TIMESTAMP_NTZ", None, None), ("WEIGHT", "FLOAT", None, None),
        ("_SF_SOURCE_KEY", "TEXT", None, None),
    ]
    ref = _ref(snowflake_conn)
    assert _query(snowflake_conn, f'SELECT "ORDER_ID", "CUSTOMER", "AMOUNT", "PAID", "ORDERED_ON", "WEIGHT", '
                                  f'"_SF_SOURCE_KEY" FROM {ref} WHERE "ORDER_ID" = 2') == [
        (2, "orders/a.csv-2", Decimal("2.25"), True, date(2024, 3, 3), 3.0, "orders/a.csv")]
    # fakesnow reads a NULL TIMESTAMP_NTZ back as 1970-01-01: assert the NULL in SQL instead.
    assert _query(snowflake_conn, f'SELECT "ORDER_ID" FROM {ref} WHERE "SHIPPED_AT" IS NULL ORDER BY 1') == [(3,)]
    assert _query(snowflake_conn, f'SELECT "SHIPPED_AT" FROM {ref} WHERE "ORDER_ID" = 1') == [
        (datetime(2024, 3, 1, 9, 0, 0, 123456),)]

    hub.require("orders").append(_rows("orders/c.csv", range(6, 8)), snapshot_properties=PROPS)
    second = _load(hub, snowflake_conn)
    assert not second.full and second.previous_snapshot_id == first.snapshot_id
    assert (second.rows_inserted, second.rows_deleted, second.files_copied, second.rows_in_table) == (2, 0, 1, 7)
    assert _ids(snowflake_conn) == list(range(1, 8))
    assert _ledger(snowflake_conn) == [(hub.current_snapshot_id("orders"),)]
    assert (hub_rows_at(hub, "orders", first.snapshot_id), hub_rows_at(hub, "orders", second.snapshot_id)) == (5, 7)

    third = _load(hub, snowflake_conn)  # nothing new: answered without the lock
    assert third.up_to_date and (third.rows_inserted, third.files_copied, third.rows_in_table) == (0, 0, 7)


def test_a_replaced_and_a_deleted_object(hub, snowflake_conn):
    from pyiceberg.expressions import EqualTo

    table = _create(hub)
    table.append(pa.concat_tables([_rows("orders/a.csv", range(1, 4)), _rows("orders/b.csv", range(4, 6))]),
                 snapshot_properties=PROPS)
    table.append(_rows("orders/c.csv", range(6, 8)), snapshot_properties=PROPS)
    _load(hub, snowflake_conn)

    with hub.require("orders").transaction() as tx:  # a replaced object: b's rows move to a new file
        tx.delete(EqualTo(SOURCE_KEY, "orders/a.csv"), snapshot_properties=PROPS)
        tx.append(_rows("orders/a.csv", range(100, 102)), snapshot_properties=PROPS)
    replaced = _load(hub, snowflake_conn)
    assert (replaced.rows_deleted, replaced.rows_inserted) == (3 + 2, 2 + 2)  # a's and its neighbour b's rows
    assert _ids(snowflake_conn) == [4, 5, 6, 7, 100, 101]

    hub.require("orders").delete(EqualTo(SOURCE_KEY, "orders/c.csv"), snapshot_properties=PROPS)
    deleted = _load(hub, snowflake_conn)
    assert (deleted.rows_deleted, deleted.rows_inserted, deleted.files_copied) == (2, 0, 0)
    assert _ids(snowflake_conn) == [4, 5, 100, 101]
    assert deleted.rows_in_table == _hub_rows(hub) == 4
    assert _ledger(snowflake_conn) == [(hub.current_snapshot_id("orders"),)]


def test_a_load_that_fails_inside_its_transaction_leaves_rows_and_ledger_as_they_were(hub, snowflake_conn):
    from pyiceberg.expressions import EqualTo

    _create(hub).append(pa.concat_tables([_rows("orders/a.csv", range(1, 4)), _rows("orders/b.csv", range(4, 6))]),
                        snapshot_properties=PROPS)
    first = _load(hub, snowflake_conn)
    with hub.require("orders").transaction() as tx:
        tx.delete(EqualTo(SOURCE_KEY, "orders/a.csv"), snapshot_properties=PROPS)
        tx.append(_rows("orders/a.csv", [7, 8]), snapshot_properties=PROPS)
    new_files = hub.changes_since("orders", first.snapshot_id).data_files
    key = new_files[0].removeprefix(f"s3://{hub.landing.bucket}/")
    body = hub.landing.open(key).read()
    # The file turns bad where only COPY looks (the hub reads its keys fine): COPY fails after the
    # transaction deleted the old rows.
    bad = pq.read_table(io.BytesIO(body))
    bad = bad.set_column(bad.schema.get_field_index("amount"), "amount", pa.array(["not a number"] * bad.num_rows))
    out = io.BytesIO()
    pq.write_table(bad, out)
    hub.landing.put(key, out.getvalue())
    with pytest.raises(Exception, match="not a number"):
        _load(hub, snowflake_conn)
    assert _ids(snowflake_conn) == [1, 2, 3, 4, 5] and _ledger(snowflake_conn) == [(first.snapshot_id,)]
    assert _query(snowflake_conn, f"SELECT COUNT(*) FROM {_ref(snowflake_conn, sql.LOCKS_TABLE)}") == [(0,)]
    assert _tables(snowflake_conn) == {"ORDERS", sql.HUB_LEDGER_TABLE, sql.LOCKS_TABLE}

    hub.landing.put(key, body)
    again = _load(hub, snowflake_conn)
    assert (again.rows_deleted, again.rows_inserted) == (5, 4)  # a's and its neighbour b's rows
    assert _ids(snowflake_conn) == [4, 5, 7, 8] and _ledger(snowflake_conn) == [(hub.current_snapshot_id("orders"),)]


def test_a_new_column_and_a_widened_column(hub, snowflake_conn):
    from pyiceberg.types import DecimalType, LongType, StringType

    _create(hub).append(_rows("orders/a.csv", range(1, 3)), snapshot_properties=PROPS)
    _load(hub, snowflake_conn)
    table = hub.require("orders")
    with table.update_schema() as update:
        update.update_column("amount", field_type=DecimalType(9, 2))
        update.update_column("order_id", field_type=LongType())
        update.add_column("note", StringType())
    columns = [*COLUMNS[:2], CatalogColumn("amount", "decimal(9,2)"), *COLUMNS[3:], CatalogColumn("note", "string")]
    columns[0] = CatalogColumn("order_id", "bigint")
    wide = arrow_schema(columns)
    hub.require("orders").append(
        _rows("orders/b.csv", [5_000_000_000], wide, amount=[Decimal("1234567.89")], note=["late"]), snapshot_properties=PROPS)

    evolved = _load(hub, snowflake_conn)
    assert evolved.schema_changes == ["widened AMOUNT NUMBER(4,2) -> NUMBER(9,2)", "added NOTE VARCHAR"]
    ref = _ref(snowflake_conn)
    assert _query(snowflake_conn, f'SELECT "ORDER_ID", "AMOUNT", "NOTE" FROM {ref} ORDER BY 1') == [
        (1, Decimal("1.25"), None), (2, Decimal("2.25"), None), (5_000_000_000, Decimal("1234567.89"), "late")]
    conn, database, schema = snowflake_conn
    assert _query(snowflake_conn, f'SELECT NUMERIC_PRECISION, NUMERIC_SCALE FROM "{database}".INFORMATION_SCHEMA.COLUMNS '
                                  "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'ORDERS' AND COLUMN_NAME = 'AMOUNT'",
                  (schema,)) == [(9, 2)]


def test_an_incompatible_type_change_fails_naming_the_column(hub, snowflake_conn):
    _create(hub).append(_rows("orders/a.csv", range(1, 3)), snapshot_properties=PROPS)
    _load(hub, snowflake_conn)
    conn = snowflake_conn[0]
    conn.cursor().execute(f'ALTER TABLE {_ref(snowflake_conn)} ALTER COLUMN "AMOUNT" SET DATA TYPE NUMBER(12,4)')
    hub.require("orders").append(_rows("orders/b.csv", [3]), snapshot_properties=PROPS)
    with pytest.raises(SnowflakeLoadError, match=r"AMOUNT is NUMBER\(12,4\) but the hub now says decimal\(4,2\)"):
        _load(hub, snowflake_conn)
    assert _ids(snowflake_conn) == [1, 2]  # nothing of the failed load committed
    rebuilt = _load(hub, snowflake_conn, _config(write_mode="replace"))
    assert rebuilt.full and _ids(snowflake_conn) == [1, 2, 3]


def test_full_refresh_rebuilds_and_swaps_in(hub, snowflake_conn):
    _create(hub).append(_rows("orders/a.csv", range(1, 4)), snapshot_properties=PROPS)
    _load(hub, snowflake_conn)
    snowflake_conn[0].cursor().execute(f'DELETE FROM {_ref(snowflake_conn)} WHERE "ORDER_ID" = 2')  # drift
    full = _load(hub, snowflake_conn, full_refresh=True)
    assert full.full and full.rows_deleted == 2 and full.rows_inserted == 3
    assert full.swap_method in ("SWAP WITH", SWAP_FALLBACK)
    assert _ids(snowflake_conn) == [1, 2, 3]
    assert _tables(snowflake_conn) == {"ORDERS", sql.HUB_LEDGER_TABLE, sql.LOCKS_TABLE}


def test_replace_mode_rebuilds_whenever_the_hub_moved_on(hub, snowflake_conn):
    config = _config(write_mode="replace")
    _create(hub).append(_rows("orders/a.csv", range(1, 3)), snapshot_properties=PROPS)
    first = _load(hub, snowflake_conn, config)
    hub.require("orders").append(_rows("orders/b.csv", range(3, 5)), snapshot_properties=PROPS)
    second = _load(hub, snowflake_conn, config)
    assert first.full and second.full and second.rows_inserted == 4  # every row, into a new table
    assert _ids(snowflake_conn) == [1, 2, 3, 4]
    assert _load(hub, snowflake_conn, config).up_to_date
    assert _tables(snowflake_conn) == {"ORDERS", sql.HUB_LEDGER_TABLE, sql.LOCKS_TABLE}


def test_merge_mode_upserts_and_a_later_object_wins(hub, snowflake_conn):
    from pyiceberg.expressions import EqualTo

    config = _config(write_mode="merge", merge_keys=["order_id"])
    table = _create(hub)
    # one file holds a and b; b (the later key) has order 2 too, and order 3 twice: its last row wins
    b = _rows("orders/b.csv", [2, 3, 3], customer=["b-2", "b-3-first", "b-3-last"])
    table.append(pa.concat_tables([_rows("orders/a.csv", [1, 2]), b]), snapshot_properties=PROPS)
    first = _load(hub, snowflake_conn, config)
    assert first.full and first.duplicate_key_rows == 2  # a's 2 and b's first 3 lose
    ref = _ref(snowflake_conn)
    merged = f'SELECT "ORDER_ID", "CUSTOMER" FROM {ref} ORDER BY 1'
    assert _query(snowflake_conn, merged) == [(1, "orders/a.csv-1"), (2, "b-2"), (3, "b-3-last")]

    with hub.require("orders").transaction() as tx:  # a replaced: b's rows are rewritten into a new file
        tx.delete(EqualTo(SOURCE_KEY, "orders/a.csv"), snapshot_properties=PROPS)
        tx.append(_rows("orders/a.csv", [1, 2, 4], customer=["a2-1", "a2-2", "a2-4"]), snapshot_properties=PROPS)
    hub.require("orders").append(_rows("orders/c.csv", [3], customer=["c-3"]), snapshot_properties=PROPS)
    second = _load(hub, snowflake_conn, config)
    assert not second.full and (second.rows_inserted, second.rows_deleted) == (1, 0)  # only order 4 is new
    # a's new 2 does not beat b's (a later object), b's rewritten rows do not beat c's 3
    assert _query(snowflake_conn, merged) == [(1, "a2-1"), (2, "b-2"), (3, "c-3"), (4, "a2-4")]

    hub.require("orders").delete(EqualTo(SOURCE_KEY, "orders/c.csv"), snapshot_properties=PROPS)
    third = _load(hub, snowflake_conn, config)
    assert third.rows_deleted == 0 and _query(snowflake_conn, merged)[2] == (3, "c-3")  # merged rows are state
    assert _tables(snowflake_conn) == {"ORDERS", sql.HUB_LEDGER_TABLE, sql.LOCKS_TABLE}


def test_two_loads_of_one_table_at_the_same_moment_end_exact(hub, snowflake_conn, snowflake_database):
    table = _create(hub)
    table.append(_rows("orders/a.csv", range(1, 4)), snapshot_properties=PROPS)
    _, database, schema = snowflake_conn

    def load(_):
        with snowflake_database.get_connection() as conn:
            return load_table(hub, hub.landing, conn, database, schema, "orders", _config())

    for round_ in range(3):
        start = 10 * (round_ + 1)
        hub.require("orders").append(_rows(f"orders/n{round_}.csv", range(start, start + 2)), snapshot_properties=PROPS)
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(load, range(2)))
        assert sorted(r.rows_inserted for r in reports) == ([0, 5] if round_ == 0 else [0, 2])
        assert _query(snowflake_conn, f"SELECT COUNT(*) FROM {_ref(snowflake_conn)}") == [(_hub_rows(hub),)]
        assert _ledger(snowflake_conn) == [(hub.current_snapshot_id("orders"),)]
        assert _query(snowflake_conn, f"SELECT COUNT(*) FROM {_ref(snowflake_conn, sql.LOCKS_TABLE)}") == [(0,)]


def test_external_stage_copies_the_hub_files_in_place_by_their_bucket_keys(hub, snowflake_conn, tmp_path):
    """fakesnow cannot read S3 (no httpfs in its DuckDB), so the stage's URL is a local copy of the
    bucket: what is tested is that COPY names each new data file by its key under the bucket root, in
    FILES lists, and that the rows arrive; the worker itself reads no data file."""
    from pyiceberg.expressions import EqualTo

    _create(hub).append(_rows("orders/a.csv", range(1, 4)), snapshot_properties=PROPS)
    conn, database, schema = snowflake_conn
    conn.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"."{schema}"')
    conn.cursor().execute(f"CREATE STAGE \"{database}\".\"{schema}\".\"LANDING\" URL = 'file://{tmp_path}/'")

    def mirror_bucket():
        for obj in hub.landing.list_objects("_curated/"):
            path = tmp_path / obj["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(hub.landing.open(obj["Key"]).read())

    config = _config(stage="external", external_stage="LANDING")
    mirror_bucket()
    first = _load(hub, snowflake_conn, config)
    assert (first.rows_inserted, first.files_copied, _ids(snowflake_conn)) == (3, 1, [1, 2, 3])
    with hub.require("orders").transaction() as tx:
        tx.delete(EqualTo(SOURCE_KEY, "orders/a.csv"), snapshot_properties=PROPS)
        tx.append(_rows("orders/a.csv", [7, 8]), snapshot_properties=PROPS)
    hub.require("orders").append(_rows("orders/b.csv", [9]), snapshot_properties=PROPS)
    mirror_bucket()
    second = _load(hub, snowflake_conn, config)
    assert (second.rows_deleted, second.rows_inserted, second.files_copied) == (3, 3, 2)
    assert _ids(snowflake_conn) == [7, 8, 9]


ORDERS_CSV_1 = (
    b"ORDER_ID,CUSTOMER,AMOUNT\n"
    b"1,Kim,10.50\n"
    b"2,Lee,20.25\n"
    b"3,Park,30.00\n"
)
ORDERS_CSV_2 = b"ORDER_ID,CUSTOMER,AMOUNT\n4,Choi,40.75\n5,Jung,50.00\n"


def test_the_asset_loads_the_curated_hub_with_its_metadata_and_checks(
    landing, glue, snowflake_conn, snowflake_database
):
    import dagster as dg

    from sf_platform.assets.curated import CuratedHop
    from sf_platform.assets.names import snowflake_key
    from sf_platform.assets.snowflake import SnowflakeHop
    from sf_platform.assets.tables import build_hop_assets
    from sf_platform.hops.crawl import crawl_table
    from sf_platform.hub.conventions import curated_database

    conn, database, schema = snowflake_conn
    registry = parse_registry({"tables": {"orders": {"targets": ["snowflake"]}}})
    hops = [CuratedHop(glue.database, curated_database(glue.database)), SnowflakeHop(glue.database, database, schema)]
    step = build_hop_assets("tables", hops, registry)
    resources = {"landing": landing, "glue": glue, "snowflake": snowflake_database}
    key = snowflake_key(database, schema, "orders")
    hub = Hub(landing, glue, database=curated_database(glue.database))

    def run(body: bytes, name: str):
        landing.put(f"orders/{name}", body)
        crawl_table(landing, glue, "orders", registry.table("orders"))
        result = dg.materialize([step], resources=resources)
        assert result.success
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == key}
        return event.materialization.metadata, checks

    metadata, checks = run(ORDERS_CSV_1, "ORDERS_1.csv")
    assert metadata["dagster/row_count"].value == 3
    assert metadata["dagster/table_name"].value == f"{database}.{schema}.ORDERS"
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == ["ORDER_ID", "CUSTOMER", "AMOUNT"]
    assert (metadata["rows_inserted"].value, metadata["rows_deleted"].value, metadata["files_copied"].value) == (3, 0, 1)
    assert metadata["snapshot_id"].value == str(hub.current_snapshot_id("orders"))
    assert metadata["full"].value is True and metadata["seconds"].value > 0
    assert {name: c.passed for name, c in checks.items()} == {
        "snowflake_matches_catalog": True, "rows_reconcile": True, "schema_vs_previous": True}
    assert checks["rows_reconcile"].metadata["rows_in_hub"].value == 3

    metadata, checks = run(ORDERS_CSV_2, "ORDERS_2.csv")
    assert (metadata["rows_inserted"].value, metadata["dagster/row_count"].value, metadata["full"].value) == (2, 5, False)
    assert checks["rows_reconcile"].passed and checks["rows_reconcile"].metadata["rows_in_hub"].value == 5
    assert checks["schema_vs_previous"].passed
    assert _ids(snowflake_conn) == [1, 2, 3, 4, 5]
