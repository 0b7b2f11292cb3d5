"""Bad files among good ones, through the table step on the real local services (moto S3 + Glue, MariaDB,
fakesnow): one bad file never blocks the rest, and every hop still reconciles.

One table with three good files (one of them with a ragged row), a truncated .csv.gz and random binary
named .csv. Curation reads the files: the truncated gzip breaks off after many of its rows were typed,
and none of them may reach the hub; both bad files are named with their reason and quarantined once,
the good ones are curated. Then the truncated gzip is replaced by a good file and the next run loads it.
MySQL and Snowflake load from the hub (curated): they never read the files, and hold exactly the hub's rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import random

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import curated_key, glue_key, mysql_key, snowflake_key
from sf_platform.assets.snowflake import SnowflakeHop
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core import columnar
from sf_platform.core.quarantine import unreadable_key
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration

TABLE = "events"
REGISTRY = parse_registry({"tables": {TABLE: {"targets": ["mysql", "snowflake"]}}})
CUT_ROWS = 1_000_000  # the cut gzip (3.5 MB) yields many blocks of rows before it breaks off


def _rows(first: int, count: int) -> bytes:
    return "".join(f"{i},name{i}\n" for i in range(first, first + count)).encode()


def _land_good_and_bad(landing) -> int:
    """Three good files (150 rows, one of them ragged) and two bad ones; -> the good rows."""
    landing.put(f"{TABLE}/a.csv", b"id,name\n" + _rows(1, 50))
    landing.put(f"{TABLE}/b.csv", b"id,name\n" + _rows(51, 69) + b"120,name120,extra\n")  # one ragged row
    landing.put(f"{TABLE}/c.csv.gz", gzip.compress(b"id,name\n" + _rows(121, 30)))
    landing.put(f"{TABLE}/binary.csv", random.Random(17).randbytes(200_000))
    whole = gzip.compress(b"id,name\n" + _rows(100_000, CUT_ROWS), compresslevel=1)
    landing.put(f"{TABLE}/cut.csv.gz", whole[: len(whole) * 3 // 4])
    return 149


def _step(glue, mysql, database: str, schema: str):
    hops = [
        CrawlHop(glue.database),
        CuratedHop(glue.database, columnar.curated_database(glue.database)),  # MySQL loads from it
        MySQLHop(glue.database, mysql.database, columnar.curated_database(glue.database)),
        SnowflakeHop(glue.database, database, schema),
    ]
    return build_hop_assets("tables", hops, REGISTRY)


def _metadata(result, key) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata


def _checks(result) -> dict:
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def _mysql_ids(mysql) -> list[int]:
    return [r[0] for r in mysql.fetch_all(f"SELECT id FROM `{mysql.database}`.`{TABLE}` ORDER BY id")]


def _snowflake_ids(conn, database: str, schema: str) -> list[int]:
    cur = conn.cursor()
    cur.execute(f'SELECT "ID" FROM "{database}"."{schema}"."{TABLE.upper()}" ORDER BY "ID"')
    return [int(r[0]) for r in cur.fetchall()]


def _curated_ids(landing, glue) -> list[int]:
    from sf_platform.hub.catalog import Hub

    table = Hub(landing, glue, columnar.curated_database(glue.database)).require(TABLE)
    return sorted(table.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist())


def test_bad_files_are_named_and_skipped_while_the_good_ones_load_and_reconcile(
    landing, glue, mysql, snowflake_conn, snowflake_database
):
    conn, database, schema = snowflake_conn
    good = _land_good_and_bad(landing)
    step = _step(glue, mysql, database, schema)
    resources = {"landing": landing, "glue": glue, "mysql": mysql, "snowflake": snowflake_database}
    bad = {f"{TABLE}/binary.csv", f"{TABLE}/cut.csv.gz"}

    result = dg.materialize([step], resources=resources)

    assert result.success
    expected = list(range(1, 120)) + list(range(121, 151))  # row 120 is ragged: quarantined
    assert len(expected) == good
    assert _mysql_ids(mysql) == expected
    assert _snowflake_ids(conn, database, schema) == expected
    assert _curated_ids(landing, glue) == expected

    glue_meta = _metadata(result, glue_key(glue.database, TABLE))
    assert set(glue_meta["unreadable_files"].data) == bad
    assert glue_meta["unreadable_file_count"].value == 2
    assert glue.get_table(TABLE)["Parameters"]["recordCount"] == "150"

    targets = {  # the hops that read the files (MySQL and Snowflake load from the hub: checked below)
        "curated": curated_key(TABLE),
    }
    for target, key in targets.items():
        failed = _metadata(result, key)["files_failed"].data
        assert set(failed) == bad, target
        assert failed[f"{TABLE}/cut.csv.gz"].startswith("gzip data is truncated"), (target, failed)
        assert "Compressed file ended" in failed[f"{TABLE}/cut.csv.gz"], (target, failed)
        assert failed[f"{TABLE}/binary.csv"].startswith("not a text file"), (target, failed)
        for name in bad:  # one quarantine record per (key, ETag), with the reason
            etag = landing.head(name)["ETag"]
            record = list(csv.reader(io.StringIO(landing.open(unreadable_key(target, TABLE, name, etag)).read().decode())))
            assert record[0] == ["source_key", "etag", "reason"] and record[1][0] == name, target
            assert record[1][2] == failed[name]

    checks = _checks(result)
    readable = checks[(glue_key(glue.database, TABLE), "files_readable")]
    assert not readable.passed and readable.severity == dg.AssetCheckSeverity.WARN
    assert readable.description.startswith("2 file(s) unreadable") and f"{TABLE}/binary.csv" in readable.description
    assert checks[(glue_key(glue.database, TABLE), "files_match_catalog")].passed
    for target, key in targets.items():
        reconciled = checks[(key, "rows_reconcile")]
        # 149 rows + 1 quarantined (the ragged row) = recordCount 150: a WARN for the quarantine, no ERROR
        assert reconciled.severity == dg.AssetCheckSeverity.WARN, (target, reconciled.description)
        assert reconciled.metadata["difference"].value == 0, (target, reconciled.description)
        assert reconciled.metadata["rows_in_target"].value == good, target

    _assert_mysql_holds_the_hub(result, mysql, good)
    _assert_snowflake_holds_the_hub(result, database, schema, good)
    keys = mysql.fetch_all(f"SELECT DISTINCT _sf_source_key FROM `{mysql.database}`.`{TABLE}` ORDER BY 1")
    assert keys == [(f"{TABLE}/a.csv",), (f"{TABLE}/b.csv",), (f"{TABLE}/c.csv.gz",)]

    # files_readable on its own: from the last crawl's profile cache.
    only = dg.materialize(
        [step], resources=resources,
        selection=dg.AssetSelection.checks_for_assets(glue_key(glue.database, TABLE)),
    )
    alone = _checks(only)[(glue_key(glue.database, TABLE), "files_readable")]
    assert not alone.passed and set(alone.metadata["unreadable_files"].data) == bad

    # The truncated gzip replaced by a good version: the next run loads it, the binary still waits.
    landing.put(f"{TABLE}/cut.csv.gz", gzip.compress(b"id,name\n" + _rows(1000, 25)))
    again = dg.materialize([step], resources=resources)
    assert again.success
    expected += list(range(1000, 1025))
    assert _mysql_ids(mysql) == expected
    assert _snowflake_ids(conn, database, schema) == expected
    assert _curated_ids(landing, glue) == expected
    assert set(_metadata(again, glue_key(glue.database, TABLE))["unreadable_files"].data) == {f"{TABLE}/binary.csv"}
    for target, key in targets.items():
        assert set(_metadata(again, key)["files_failed"].data) == {f"{TABLE}/binary.csv"}, target
        reconciled = _checks(again)[(key, "rows_reconcile")]
        assert reconciled.metadata["difference"].value == 0, (target, reconciled.description)
    _assert_mysql_holds_the_hub(again, mysql, len(expected))
    assert _metadata(again, mysql_key(mysql.database, TABLE))["rows_inserted"].value == 25  # only cut's new rows
    _assert_snowflake_holds_the_hub(again, database, schema, len(expected))
    assert _metadata(again, snowflake_key(database, schema, TABLE))["rows_inserted"].value == 25


def _assert_mysql_holds_the_hub(result, mysql, rows: int) -> None:
    """MySQL's rows_reconcile: its rows = the hub's at the snapshot it loaded."""
    reconciled = _checks(result)[(mysql_key(mysql.database, TABLE), "rows_reconcile")]
    assert reconciled.passed, reconciled.description
    assert reconciled.metadata["rows_in_target"].value == reconciled.metadata["rows_in_hub"].value == rows


def _assert_snowflake_holds_the_hub(result, database: str, schema: str, rows: int) -> None:
    """Snowflake's rows_reconcile: its rows = the hub's at the snapshot it loaded."""
    reconciled = _checks(result)[(snowflake_key(database, schema, TABLE), "rows_reconcile")]
    assert reconciled.passed, reconciled.description
    assert reconciled.metadata["rows_in_target"].value == reconciled.metadata["rows_in_hub"].value == rows


def test_a_loaded_file_replaced_by_an_unreadable_version_leaves_no_stale_rows(
    landing, glue, mysql, snowflake_conn, snowflake_database
):
    conn, database, schema = snowflake_conn
    landing.put(f"{TABLE}/a.csv", b"id,name\n" + _rows(1, 10))
    landing.put(f"{TABLE}/b.csv", b"id,name\n" + _rows(11, 10))
    step = _step(glue, mysql, database, schema)
    resources = {"landing": landing, "glue": glue, "mysql": mysql, "snowflake": snowflake_database}
    assert dg.materialize([step], resources=resources).success

    landing.put(f"{TABLE}/b.csv", b"\x1f\x8b\x08 not really gzip")
    result = dg.materialize([step], resources=resources)
    assert result.success
    kept = list(range(1, 11))
    assert _mysql_ids(mysql) == kept
    assert _snowflake_ids(conn, database, schema) == kept
    assert _curated_ids(landing, glue) == kept
    for key in (mysql_key(mysql.database, TABLE), snowflake_key(database, schema, TABLE), curated_key(TABLE)):
        reconciled = _checks(result)[(key, "rows_reconcile")]
        assert reconciled.passed, (key, reconciled.description)


# ------------------------------------------------------------------------------------------ leftovers


def test_a_failed_mysql_rebuild_leaves_no_staging_table(landing, glue, mysql):
    from sf_platform.core.registry import parse_registry as parse
    from sf_platform.hops.crawl import crawl_table
    from sf_platform.hops.curate import curate_table
    from sf_platform.hops.mysql_mirror import mirror_table
    from sf_platform.hub.catalog import Hub

    config = parse({"tables": {TABLE: {}}}).table(TABLE)
    landing.put(f"{TABLE}/a.csv", b"id,name\n" + _rows(1, 10))
    crawl_table(landing, glue, TABLE, config)
    curated = columnar.curated_database(glue.database)
    curate_table(landing, glue, TABLE, config, curated_database=curated)
    hub = Hub(landing, glue, curated)
    mirror_table(hub, glue, mysql, TABLE, config)

    # The hub's data files vanish from S3 (a bad lifecycle rule, a hand-made delete): the rebuild's
    # staging load breaks off part way, for real.
    data_files = [o["Key"] for o in landing.list_objects(f"_curated/{TABLE}/data/")]
    assert data_files
    for key in data_files:
        landing.delete(key)
    with pytest.raises(Exception, match="(?i)NoSuchKey|not found|does not exist|404"):
        mirror_table(hub, glue, mysql, TABLE, config, full_refresh=True)
    tables = mysql.fetch_all(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (mysql.database,)
    )
    assert not [t for (t,) in tables if t.startswith(("_sf_stage_", "_sf_old_"))], tables
    assert _mysql_ids(mysql) == list(range(1, 11))  # the live table is untouched
