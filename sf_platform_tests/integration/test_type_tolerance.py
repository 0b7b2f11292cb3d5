"""Tolerant typing end to end, through the table step on the real local services (moto S3 + Glue,
MariaDB, fakesnow): a column of integers with a few malformed values is typed as an integer in the
catalog, the explanation counts the misfits, every target holds the good rows as integers, the rows
holding the misfits are in the quarantine with column, value and reason, and the counts reconcile.
"""

from __future__ import annotations

import csv
import io

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import curated_key, glue_key, mysql_key, snowflake_key
from sf_platform.assets.snowflake import SnowflakeHop
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core import columnar
from sf_platform.core.catalog import columns_of
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration

TABLE = "scores"
REGISTRY = parse_registry({"tables": {TABLE: {"targets": ["mysql", "snowflake"]}}})  # type_tolerance 1 %
MISFITS = {250: "N/A", 600: "12a", 999: "-"}  # data row -> a value that is no integer (3 of 1,000: 0.3 %)


def _land(landing) -> dict[int, int]:
    """1,000 rows of (id, score, name), 3 of them with a score that is no integer; -> id -> good score."""
    good, lines = {}, ["id,score,name"]
    for row in range(1, 1001):
        score = MISFITS.get(row, str(row * 7 - 3000))
        lines.append(f"{row},{score},name{row}")
        if row not in MISFITS:
            good[row] = int(score)
    landing.put(f"{TABLE}/{TABLE}.csv", ("\n".join(lines) + "\n").encode())
    return good


def _step(glue, mysql, database: str, schema: str):
    hops = [
        CrawlHop(glue.database),
        CuratedHop(glue.database, columnar.curated_database(glue.database)),  # MySQL loads from it
        MySQLHop(glue.database, mysql.database, columnar.curated_database(glue.database)),
        SnowflakeHop(glue.database, database, schema),
    ]
    return build_hop_assets("tables", hops, REGISTRY)


def _quarantined(landing) -> dict[str, list[dict]]:
    """Quarantine folder (``_quarantine/<target>/<table>/``) -> the rejected rows in its files."""
    found: dict[str, list[dict]] = {}
    for obj in landing.list_objects(f"{QUARANTINE_ROOT}/"):
        key = obj["Key"]
        target, table = key.split("/")[1:3]
        if table != TABLE or not key.endswith(".rejected.csv"):
            continue
        rows = list(csv.DictReader(io.StringIO(landing.open(key).read().decode())))
        found.setdefault(f"{QUARANTINE_ROOT}/{target}/{table}/", []).extend(rows)
    return found


def test_a_few_malformed_integers_are_quarantined_and_the_column_stays_an_integer(
    landing, glue, mysql, snowflake_conn, snowflake_database
):
    conn, database, schema = snowflake_conn
    good = _land(landing)
    resources = {"landing": landing, "glue": glue, "mysql": mysql, "snowflake": snowflake_database}

    result = dg.materialize([_step(glue, mysql, database, schema)], resources=resources)
    assert result.success

    # The catalog: an integer column whose explanation counts the misfits and shows them.
    columns = {c.name: c for c in columns_of(glue.get_table(TABLE))}
    assert columns["score"].type in ("int", "bigint")
    assert columns["id"].type in ("int", "bigint") and columns["name"].type == "string"
    assert columns["score"].reason.startswith(
        f"{columns['score'].type}: 3 of 1,000 values (0.3 %) did not fit and are quarantined: 'N/A', '12a', '-'"
    )

    # Every target holds the 997 good rows, with integer scores.
    expected = sorted(good.items())
    mysql_rows = mysql.fetch_all(f"SELECT id, score FROM `{mysql.database}`.`{TABLE}` ORDER BY id")
    assert [(int(i), s) for i, s in mysql_rows] == expected
    assert all(isinstance(s, int) for _, s in mysql_rows)
    cur = conn.cursor()
    cur.execute(f'SELECT "ID", "SCORE" FROM "{database}"."{schema}"."{TABLE.upper()}" ORDER BY "ID"')
    assert [(int(i), int(s)) for i, s in cur.fetchall()] == expected
    materialized = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    for key in (curated_key(TABLE), mysql_key(mysql.database, TABLE),
                snowflake_key(database, schema, TABLE)):
        assert materialized[key]["dagster/row_count"].value == 997, key

    # The 3 rows are quarantined once, with column, value and reason: by curation, which types the rows
    # for every target (whichever single quarantine folder holds them).
    quarantined = _quarantined(landing)
    assert len(quarantined) == 1, quarantined.keys()
    for folder, rows in quarantined.items():
        assert sorted((int(r["line"]), r["score"]) for r in rows) == sorted(MISFITS.items()), folder
        for r in rows:
            assert f"column 'score': value {r['score']!r} is not a valid" in r["reason"], r
            assert (r["id"], r["name"]) == (r["line"], f"name{r['line']}")

    # Curation reconciles: 997 rows + 3 quarantined = the catalog's 1,000 records (a WARN, no error), and
    # MySQL and Snowflake with the hub they load from.
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "rows_reconcile"]
    assert {e.asset_key for e in checks} == {
        curated_key(TABLE), mysql_key(mysql.database, TABLE), snowflake_key(database, schema, TABLE),
    }
    for e in checks:
        if e.asset_key == mysql_key(mysql.database, TABLE):  # MySQL reconciles with the hub it loads from
            assert e.passed and e.metadata["rows_in_target"].value == e.metadata["rows_in_hub"].value == 997
            continue
        if e.asset_key == snowflake_key(database, schema, TABLE):  # so does Snowflake
            assert e.passed and e.metadata["rows_in_target"].value == e.metadata["rows_in_hub"].value == 997
            continue
        meta = {k: v.value for k, v in e.metadata.items() if k in ("difference", "rows_quarantined", "rows_in_target")}
        assert meta == {"difference": 0, "rows_quarantined": 3, "rows_in_target": 997}, e.asset_key
        assert e.severity == dg.AssetCheckSeverity.WARN and "3 of 1,000 rows quarantined" in e.description

    # The crawl's notes (logged by the run) say it too.
    notes = materialized[glue_key(glue.database, TABLE)]["notes"].data
    assert [n for n in notes if "did not fit" in n] == [columns["score"].reason.join(("score: ", ""))]
