"""The MySQL mirror loading from the hub, against the real local MariaDB and Iceberg tables built with
plain pyiceberg on the test moto server (the raw Glue entry written directly, as the crawl would): a
first load, appends, a replaced and a deleted object, a new and a widened column, strings longer than
the catalog says, a rebuild, a killed load, and concurrent loads. After every load MySQL must hold
exactly the hub table's rows at the snapshot its ledger records."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal

import pyarrow as pa
import pymysql
import pytest

from sf_platform.core import ddl, drift, mysql_sql
from sf_platform.core import types as glue_types
from sf_platform.core.catalog import CatalogColumn
from sf_platform.core.registry import parse_registry
from sf_platform.hops.mysql_columns import IncompatibleChange, mirror_columns
from sf_platform.hops.mysql_mirror import mirror_table
from sf_platform.hub.changes import Hub
from sf_platform.hub.conventions import CURATE, OPERATION, ROW, SOURCE_KEY, arrow_schema, hub_columns

pytestmark = pytest.mark.integration

PROPS = {OPERATION: CURATE}
COLUMNS = [  # (name, Glue type, longest value the crawl saw)
    ("id", "int", 0), ("name", "string", 8), ("amount", "decimal(10,2)", 0),
    ("day", "date", 0), ("at", "timestamp", 0), ("flag", "boolean", 0),
]


@pytest.fixture()
def hub(landing, glue):
    hub = Hub(landing, glue, database=f"{glue.database}_curated")
    glue.ensure_database(hub.database)
    return hub


def _config(table: str, **settings):
    return parse_registry({"tables": {table: settings}}).table(table)


def _catalog(glue, table: str, columns) -> dict:
    """Write the raw Glue entry (create or update) and return it."""
    table_input = {
        "Name": table,
        "StorageDescriptor": {"Columns": [CatalogColumn(n, t, n, length).to_glue() for n, t, length in columns]},
        "PartitionKeys": [],
    }
    if glue.get_table(table) is None:
        glue.create_table(table_input)
    else:
        glue.update_table(table_input)
    return glue.get_table(table)


def _create_hub_table(hub, glue, table: str, columns=COLUMNS):
    entry = _catalog(glue, table, columns)
    schema = arrow_schema(hub_columns(entry))
    return hub.catalog().create_table(hub.identifier(table), schema=schema, location=hub.location(table))


def _rows(table, key: str, ids, name=lambda i: f"n{i}", **extra) -> pa.Table:
    """Rows of object ``key`` in the hub table's current schema, one per id."""
    ids = list(ids)
    values = {
        "id": ids, "name": [name(i) for i in ids],
        "amount": [Decimal(i % 1_000_000) / 4 for i in ids], "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 300) for i in ids],
        "at": [dt.datetime(2024, 1, 1, 12, 0, 0, 250000) + dt.timedelta(seconds=i % 86400) for i in ids],
        "flag": [i % 2 == 0 for i in ids],
        SOURCE_KEY: [key] * len(ids), ROW: list(range(1, len(ids) + 1)), **extra,
    }
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    schema = pa.schema([
        pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type, nullable=True)
        for f in schema_to_pyarrow(table.schema(), include_field_ids=False)
    ])
    return pa.table({f.name: pa.array(values.get(f.name, [None] * len(ids)), f.type) for f in schema}, schema=schema)


def _replace(table, key: str, rows: pa.Table) -> None:
    """A replaced object, as the curate hop commits it: delete + append in one transaction."""
    from pyiceberg.expressions import EqualTo

    with table.transaction() as tx:
        tx.delete(EqualTo(SOURCE_KEY, key), snapshot_properties=PROPS)
        tx.append(rows, snapshot_properties=PROPS)


def _hub_rows(hub, table: str) -> set[tuple]:
    """The hub table's rows now, as MySQL returns them (booleans as 0/1)."""
    arrow = hub.require(table).scan().to_arrow()
    names = [n for n in arrow.column_names if n not in (SOURCE_KEY, ROW)]
    return {
        tuple(int(v) if isinstance(v, bool) else v for v in (*(r[n] for n in names), r[SOURCE_KEY], r[ROW]))
        for r in arrow.to_pylist()
    }


def _mysql_rows(mysql, table: str, hub) -> set[tuple]:
    """MySQL's rows in the hub's column order (catalog names mapped to MySQL's: ``day`` is ``day_``)."""
    mapped = {c.catalog: c.mysql for c in mirror_columns(hub.glue.get_table(table))}
    names = [mapped[n] for n in hub.require(table).schema().column_names if n not in (SOURCE_KEY, ROW)]
    columns = ", ".join(f"`{n}`" for n in [*names, SOURCE_KEY, ROW])
    return set(mysql.fetch_all(f"SELECT {columns} FROM {mysql_sql.ref(mysql.database, table)}"))


def _ledger(mysql, table: str, column: str = "snapshot_id"):
    rows = mysql.fetch_all(
        f"SELECT {column} FROM {mysql_sql.ref(mysql.database, mysql_sql.SNAPSHOT_LEDGER_TABLE)} WHERE table_name = %s",
        (table,),
    )
    return rows[0][0] if rows else None


def _assert_exact(hub, mysql, table: str) -> None:
    """MySQL holds exactly the hub's rows at the snapshot its ledger records (= the current one), and the
    ledger's row count is the table's."""
    assert _ledger(mysql, table) == hub.current_snapshot_id(table)
    rows = _mysql_rows(mysql, table, hub)
    assert rows == _hub_rows(hub, table)
    assert _ledger(mysql, table, "table_rows") == len(rows) == mysql.fetch_all(
        f"SELECT COUNT(*) FROM {mysql_sql.ref(mysql.database, table)}")[0][0]


def _tables(mysql) -> list[str]:
    return [r[0] for r in mysql.fetch_all(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (mysql.database,))]


# --------------------------------------------------------------------------------------------- loads


def test_first_load_types_values_and_the_catalog_columns(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(pa.concat_tables([_rows(table, "t/a.csv", range(3)), _rows(table, "t/b.csv", range(3, 5))]),
                 snapshot_properties=PROPS)

    report = mirror_table(hub, glue, mysql, "t", _config("t"))

    applied = report.applied
    assert (applied.full, applied.rows_inserted, applied.rows_deleted, applied.rows) == (True, 5, 0, 5)
    assert applied.snapshot_id == hub.current_snapshot_id("t") and applied.previous_snapshot_id is None
    _assert_exact(hub, mysql, "t")
    row = mysql.fetch_all(f"SELECT id, name, amount, day_, at, flag FROM {mysql_sql.ref(mysql.database, 't')} "
                          "WHERE _sf_source_key = 't/b.csv' AND _sf_row = 2")[0]
    assert row == (4, "n4", Decimal("1.00"), dt.date(2024, 1, 5), dt.datetime(2024, 1, 1, 12, 0, 4, 250000), 1)
    expected = {c.mysql: c.spec.mysql_type for c in mirror_columns(glue.get_table("t"))}
    actual = {n: t for n, t in report.mysql_types.items() if n not in ddl.MYSQL_BOOKKEEPING_COLUMNS}
    assert expected == {"id": "INT", "name": "VARCHAR(16)", "amount": "DECIMAL(10,2)",
                        "day_": "DATE", "at": "DATETIME(6)", "flag": "TINYINT(1)"}
    assert drift.compare(expected, actual, drift.mysql_holds).empty  # what mysql_matches_catalog checks
    assert [t for t in _tables(mysql) if t.startswith("_sf_stage") or t.startswith("_sf_old")] == []


def test_only_the_changes_since_the_loaded_snapshot_are_loaded(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(pa.concat_tables([_rows(table, "t/a.csv", range(3)), _rows(table, "t/b.csv", range(3, 5))]),
                 snapshot_properties=PROPS)
    config = _config("t")
    mirror_table(hub, glue, mysql, "t", config)

    table = hub.require("t")
    table.append(_rows(table, "t/c.csv", range(5, 7)), snapshot_properties=PROPS)  # an append
    appended = mirror_table(hub, glue, mysql, "t", config).applied
    assert (appended.full, appended.rows_inserted, appended.rows_deleted, appended.rows) == (False, 2, 0, 7)
    _assert_exact(hub, mysql, "t")

    table = hub.require("t")  # a replaced object sharing its file with b: b's rows move too
    _replace(table, "t/a.csv", _rows(table, "t/a.csv", range(100, 104)))
    replaced = mirror_table(hub, glue, mysql, "t", config).applied
    assert (replaced.rows_deleted, replaced.rows_inserted, replaced.rows) == (3 + 2, 4 + 2, 8)
    _assert_exact(hub, mysql, "t")

    from pyiceberg.expressions import EqualTo

    hub.require("t").delete(EqualTo(SOURCE_KEY, "t/c.csv"), snapshot_properties=PROPS)  # a deleted object
    deleted = mirror_table(hub, glue, mysql, "t", config).applied
    assert (deleted.rows_deleted, deleted.rows_inserted, deleted.rows) == (2, 0, 6)
    _assert_exact(hub, mysql, "t")

    quiet = mirror_table(hub, glue, mysql, "t", config).applied
    assert (quiet.changed, quiet.rows_deleted, quiet.rows_inserted, quiet.rows) == (False, 0, 0, 6)
    assert quiet.snapshot_id == deleted.snapshot_id


def test_a_new_column_and_a_widened_column(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(3)), snapshot_properties=PROPS)
    config = _config("t")
    mirror_table(hub, glue, mysql, "t", config)

    from pyiceberg.types import LongType, StringType

    with hub.require("t").update_schema() as update:  # what the curate hop does on the crawl's change
        update.update_column("id", field_type=LongType())
        update.add_column("note", StringType())
    _catalog(glue, "t", [("id", "bigint", 0), *COLUMNS[1:], ("note", "string", 5)])
    table = hub.require("t")
    table.append(_rows(table, "t/b.csv", [2**40], note=["hello"]), snapshot_properties=PROPS)

    report = mirror_table(hub, glue, mysql, "t", config)

    widened, added = report.applied.schema_changes  # MariaDB says INT(11), MySQL 8 INT
    assert re.fullmatch(r"widened id INT(\(11\))? -> BIGINT", widened) and added == "added note VARCHAR(16)"
    assert (report.applied.rows_inserted, report.applied.rows_deleted, report.applied.full) == (1, 0, False)
    assert report.mysql_types["id"].startswith("BIGINT") and report.mysql_types["note"] == "VARCHAR(16)"
    _assert_exact(hub, mysql, "t")
    notes = mysql.fetch_all(f"SELECT _sf_source_key, note FROM {mysql_sql.ref(mysql.database, 't')} ORDER BY id")
    assert notes == [("t/a.csv", None)] * 3 + [("t/b.csv", "hello")]


def test_strings_longer_than_the_catalog_says_widen_the_column_and_are_never_truncated(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(3)), snapshot_properties=PROPS)
    config = _config("t")
    mirror_table(hub, glue, mysql, "t", config)
    long_name = "가" * 40 + "x" * 30  # 70 characters; the catalog saw 8 (VARCHAR(16))
    table = hub.require("t")
    _replace(table, "t/a.csv", _rows(table, "t/a.csv", range(3), name=lambda i: long_name))

    report = mirror_table(hub, glue, mysql, "t", config)

    wider = glue_types.mysql_string_type(70)  # the mirror's sizing rule for 70 characters
    assert report.mysql_types["name"] == wider and int(wider[len("VARCHAR("):-1]) >= 70
    assert report.applied.schema_changes == [
        f"widened name VARCHAR(16) -> {wider} (the hub's values are longer than the catalog says)"
    ]
    assert (report.applied.rows_deleted, report.applied.rows_inserted) == (3, 3)
    _assert_exact(hub, mysql, "t")
    assert {r[0] for r in mysql.fetch_all(f"SELECT name FROM {mysql_sql.ref(mysql.database, 't')}")} == {long_name}


def test_a_first_load_with_strings_longer_than_the_catalog_says_widens_its_new_table(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    long_name = "x" * 300  # the catalog saw 8 characters: VARCHAR(16)
    table.append(_rows(table, "t/a.csv", range(3), name=lambda i: long_name), snapshot_properties=PROPS)

    report = mirror_table(hub, glue, mysql, "t", _config("t"))

    assert report.applied.full and report.applied.rows_inserted == 3
    assert report.mysql_types["name"] == glue_types.mysql_string_type(300)
    _assert_exact(hub, mysql, "t")
    assert [t for t in _tables(mysql) if t.startswith(("_sf_stage", "_sf_old"))] == []


def test_full_refresh_rebuilds_aside_and_leaves_no_work_table(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(4)), snapshot_properties=PROPS)
    config = _config("t")
    mirror_table(hub, glue, mysql, "t", config)
    with mysql.connect() as conn, conn.cursor() as cur:  # a row lost behind the mirror's back: the rebuild restores it
        cur.execute(f"DELETE FROM {mysql_sql.ref(mysql.database, 't')} WHERE _sf_row = 1")
        conn.commit()

    report = mirror_table(hub, glue, mysql, "t", config, full_refresh=True)

    # rows_deleted: the rows the mirror had loaded (its ledger's count), replaced by the hub's
    assert (report.applied.full, report.applied.rows_deleted, report.applied.rows_inserted) == (True, 4, 4)
    _assert_exact(hub, mysql, "t")
    assert sorted(_tables(mysql)) == sorted(["t", mysql_sql.SNAPSHOT_LEDGER_TABLE])


def test_an_incompatible_change_fails_naming_the_column_or_rebuilds_when_configured(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", [0, 4, 8]), snapshot_properties=PROPS)  # amounts 0, 1, 2
    mirror_table(hub, glue, mysql, "t", _config("t"))
    _catalog(glue, "t", [*COLUMNS[:2], ("amount", "int", 0), *COLUMNS[3:]])  # decimal(10,2) -> int

    with pytest.raises(IncompatibleChange, match="'amount'.*on_incompatible_change"):
        mirror_table(hub, glue, mysql, "t", _config("t"))
    _assert_exact(hub, mysql, "t")  # untouched

    report = mirror_table(hub, glue, mysql, "t", _config("t", mysql={"on_incompatible_change": "rebuild"}))
    assert report.applied.full and report.mysql_types["amount"].startswith("INT")
    assert report.applied.schema_changes[0].startswith("rebuilt: ")
    assert sorted(mysql.fetch_all(f"SELECT amount FROM {mysql_sql.ref(mysql.database, 't')}")) == [(0,), (1,), (2,)]
    assert _ledger(mysql, "t") == hub.current_snapshot_id("t")


def test_a_rebuilt_hub_with_an_incompatible_change_follows_the_policy_too(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(3)), snapshot_properties=PROPS)
    mirror_table(hub, glue, mysql, "t", _config("t"))
    hub.catalog().drop_table(hub.identifier("t"))  # the hub rebuilt with the catalog's new type: a full load
    table = _create_hub_table(hub, glue, "t", [*COLUMNS[:2], ("amount", "int", 0), *COLUMNS[3:]])
    table.append(_rows(table, "t/a.csv", [7, 8]), snapshot_properties=PROPS)

    with pytest.raises(IncompatibleChange, match="'amount'"):
        mirror_table(hub, glue, mysql, "t", _config("t"))
    assert mysql.fetch_all(f"SELECT COUNT(*) FROM {mysql_sql.ref(mysql.database, 't')}") == [(3,)]  # untouched

    report = mirror_table(hub, glue, mysql, "t", _config("t"), full_refresh=True)
    assert report.applied.full and report.mysql_types["amount"].startswith("INT")
    _assert_exact(hub, mysql, "t")


# --------------------------------------------------------------------------------------------- failures


_CHILD = textwrap.dedent(
    """
    import json, sys
    from dagster_aws.s3 import S3Resource
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.mysql_mirror import mirror_table
    from sf_platform.hub.changes import Hub
    from sf_platform.resources.aws import GlueCatalog, LandingBucket
    from sf_platform.resources.mysql import MySQLResource

    a = json.loads(sys.argv[1])
    landing, glue = LandingBucket(s3=S3Resource(**a["s3"]), bucket=a["bucket"]), GlueCatalog(**a["glue"])
    hub = Hub(landing, glue, database=a["hub"])
    mirror_table(hub, glue, MySQLResource(**a["mysql"]), "t", parse_registry({"tables": {"t": {}}}).table("t"))
    """
)


def test_a_load_killed_mid_way_leaves_the_previous_snapshot_and_a_rerun_ends_exact(hub, landing, glue, mysql):
    rows = 150_000
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(1000)), snapshot_properties=PROPS)
    mirror_table(hub, glue, mysql, "t", _config("t"))
    loaded = _ledger(mysql, "t")
    table = hub.require("t")
    table.append(_rows(table, "t/b.csv", range(1000, 1000 + rows)), snapshot_properties=PROPS)
    _replace(hub.require("t"), "t/a.csv", _rows(hub.require("t"), "t/a.csv", range(5)))

    args = {"s3": landing.s3.model_dump(exclude_none=True), "bucket": landing.bucket, "glue": glue.model_dump(),
            "mysql": mysql.model_dump(), "hub": hub.database}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stderr=subprocess.PIPE)
    try:
        in_flight = _wait_for_uncommitted_rows(mysql, child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert 0 < in_flight < rows, "killed in the middle of the load"

    assert _ledger(mysql, "t") == loaded  # rows and ledger: the previous snapshot, all of it
    assert mysql.fetch_all(f"SELECT COUNT(*), MAX(_sf_row) FROM {mysql_sql.ref(mysql.database, 't')}")[0] == (1000, 1000)

    report = mirror_table(hub, glue, mysql, "t", _config("t"))
    assert (report.applied.rows_deleted, report.applied.rows_inserted) == (1000, rows + 5)
    _assert_exact(hub, mysql, "t")


def _wait_for_uncommitted_rows(mysql, child, timeout: float = 120) -> int:
    """Wait until the child's open transaction holds some of t/b.csv's rows; how many it holds."""
    deadline = time.monotonic() + timeout
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        while time.monotonic() < deadline:
            try:
                cur.execute(f"SELECT COUNT(*) FROM {mysql_sql.ref(mysql.database, 't')} "
                            "WHERE _sf_source_key = 't/b.csv'")
                if (seen := cur.fetchone()[0]) > 0:
                    return seen
            except pymysql.err.ProgrammingError:
                pass
            if child.poll() is not None:
                pytest.fail(f"the load ended before it was killed: {child.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
    pytest.fail("the load never started")


def test_concurrent_loads_of_one_table_end_exact(hub, glue, mysql):
    table = _create_hub_table(hub, glue, "t")
    table.append(_rows(table, "t/a.csv", range(20_000)), snapshot_properties=PROPS)
    config = _config("t")
    for round_ in range(3):
        if round_:
            table = hub.require("t")
            _replace(table, "t/a.csv", _rows(table, "t/a.csv", range(round_, 20_000 + round_)))
            table = hub.require("t")
            table.append(_rows(table, f"t/n{round_}.csv", range(7)), snapshot_properties=PROPS)
        reports, errors = [], []
        threads = [threading.Thread(target=_load, args=(hub, glue, mysql, config, reports, errors)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(r.changed for r in reports) == [False, True]  # one loaded, the other found it done
        _assert_exact(hub, mysql, "t")


def _load(hub, glue, mysql, config, reports: list, errors: list) -> None:
    try:
        reports.append(mirror_table(hub, glue, mysql, "t", config).applied)
    except Exception as exc:  # surfaced by the test
        errors.append(exc)
