"""The MySQL mirror through the real chain (crawl, curate into the hub, load from the hub) against the real
local MariaDB: DDL and values of every type, Korean text, partition columns, hostile names, a table from
before the row key, the asset's metadata. Incremental loads, rebuilds, schema evolution, a killed load
and concurrent loads: test_mysql_hub.py."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.mysql import MySQLHop, mirror_metadata
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core import ddl
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.registry import parse_registry
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.curate import curate_table
from sf_platform.hops.mysql_mirror import mirror_table
from sf_platform.hub.catalog import Hub

pytestmark = pytest.mark.integration


def _config(table: str, **settings):
    return parse_registry({"tables": {table: settings}}).table(table)


def _put(landing, key: str, text: str, encoding: str = "utf-8") -> None:
    landing.put(key, text.encode(encoding))


def _hub(landing, glue) -> Hub:
    return Hub(landing, glue, _curated(glue))


def _curated(glue) -> str:
    return f"{glue.database}_curated"


def _mirror(landing, glue, mysql, table: str, config=None, **kwargs):
    """Curate, then load MySQL from the hub: what materializing both assets does."""
    config = config or _config(table)
    curate_table(landing, glue, table, config, curated_database=_curated(glue))
    return mirror_table(_hub(landing, glue), glue, mysql, table, config, **kwargs)


def _sync(landing, glue, mysql, table: str, config=None, **kwargs):
    """Crawl, curate, then mirror: what materializing the three assets does."""
    config = config or _config(table)
    crawl_table(landing, glue, table, config)
    return _mirror(landing, glue, mysql, table, config, **kwargs)


def _query(mysql, sql: str, args: tuple = ()) -> list[tuple]:
    return mysql.fetch_all(sql, args)


def _ref(mysql, table: str) -> str:
    return f"{quote_mysql(mysql.database)}.{quote_mysql(table)}"


def _count(mysql, table: str) -> int:
    return _query(mysql, f"SELECT COUNT(*) FROM {_ref(mysql, table)}")[0][0]


def _types(mysql, table: str) -> dict[str, str]:
    rows = _query(
        mysql,
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (mysql.database, table),
    )
    return {name: ctype.upper() for name, ctype in rows}


def _csv(header: str, rows) -> str:
    return header + "\n" + "".join(f"{row}\n" for row in rows)


# ------------------------------------------------------------------------------------------ DDL, values


def test_every_type_becomes_its_mysql_type_and_values_round_trip(landing, glue, mysql):
    long_text = "가" * 20_000  # 80,000 UTF-8 bytes: beyond TEXT
    _put(
        landing,
        "typed/typed_1.csv",
        _csv(
            "big,small,ratio,price,flag,born,at,code,note,memo",
            [
                "9000000000,1,1.5,12.50,true,2024-02-29,2024-02-29 13:45:01.123456,007,short,x",
                f"-9000000000,-2,-2.25e10,-0.05,false,1999-12-31,1999-12-31T23:59:59,010,{'n' * 600},{long_text}",
                ",,,,,,,,,",
            ],
        ),
    )
    report = _sync(landing, glue, mysql, "typed")

    assert report.applied.rows_inserted == report.applied.rows == _count(mysql, "typed") == 3
    types = _types(mysql, "typed")
    assert {k: v for k, v in types.items() if not k.startswith("_sf_")} == {
        "big": "BIGINT(20)",
        "small": "INT(11)",
        "ratio": "DOUBLE",
        "price": "DECIMAL(4,2)",
        "flag": "TINYINT(1)",
        "born": "DATE",
        "at": "DATETIME(6)",
        "code": "VARCHAR(16)",
        "note": "TEXT",
        "memo": "MEDIUMTEXT",
    }
    rows = _query(
        mysql,
        f"SELECT big, small, ratio, CAST(price AS CHAR), flag, CAST(born AS CHAR), CAST(at AS CHAR), code, "
        f"LENGTH(note), memo = %s FROM {_ref(mysql, 'typed')} ORDER BY _sf_row",
        (long_text,),
    )
    assert rows[0] == (
        9000000000,
        1,
        1.5,
        "12.50",
        1,
        "2024-02-29",
        "2024-02-29 13:45:01.123456",
        "007",
        5,
        0,
    )
    assert rows[1] == (
        -9000000000,
        -2,
        -2.25e10,
        "-0.05",
        0,
        "1999-12-31",
        "1999-12-31 23:59:59.000000",
        "010",
        600,
        1,
    )
    assert rows[2] == (None,) * 9 + (None,)
    # The metadata's column schema holds the types MySQL reports, TEXT and all.
    schema = mirror_metadata(report)["dagster/column_schema"]
    assert {c.name: c.type for c in schema.columns}["note"] == "TEXT"


def test_korean_utf8_and_cp949_text_round_trips_byte_for_byte(landing, glue, mysql):
    names = ["김민준", "이서연", "박지호 😀", "최수아"]
    _put(landing, "people/people_utf8.csv", _csv("id,name", [f"{i},{n}" for i, n in enumerate(names)]))
    cp949 = [n for n in names if "😀" not in n]
    _put(landing, "people_cp/people.csv", _csv("id,이름", [f"{i},{n}" for i, n in enumerate(cp949)]), "cp949")
    _sync(landing, glue, mysql, "people")
    _sync(landing, glue, mysql, "people_cp")

    stored = _query(mysql, f"SELECT CAST(name AS BINARY) FROM {_ref(mysql, 'people')} ORDER BY id")
    assert [bytes(r[0]) for r in stored] == [n.encode("utf-8") for n in names]
    stored = _query(mysql, f"SELECT CAST(`이름` AS BINARY) FROM {_ref(mysql, 'people_cp')} ORDER BY id")
    assert [bytes(r[0]) for r in stored] == [n.encode("utf-8") for n in cp949]


def test_hive_partition_values_become_columns(landing, glue, mysql):
    _put(landing, "events/dt=2024-01-01/e.csv", _csv("id,kind", ["1,a", "2,b"]))
    _put(landing, "events/dt=2024-01-02/e.csv", _csv("id,kind", ["3,c"]))
    report = _sync(landing, glue, mysql, "events")
    assert report.applied.rows == 3
    rows = _query(mysql, f"SELECT id, dt FROM {_ref(mysql, 'events')} ORDER BY id")
    assert rows == [(1, "2024-01-01"), (2, "2024-01-01"), (3, "2024-01-02")]


def test_hostile_header_names_map_to_safe_columns_and_the_mapping_is_reported(landing, glue, mysql):
    seventy = "a_very_long_column_name_" + "x" * 46
    header = ["first name", "we`ird", 'say "hi"', "select", seventy, "dup", "dup"]
    _put(landing, "hostile/h.csv", _csv(",".join(_quote(h) for h in header), ["1,2,3,4,5,6,7"]))
    report = _sync(landing, glue, mysql, "hostile")

    mapping = report.column_names()
    assert [m["source"] for m in mapping] == header
    mysql_names = [m["mysql"] for m in mapping]
    assert mysql_names[:4] == ["first_name", "we_ird", "say_hi", "select_"]
    assert len(mysql_names[4]) <= 64 and mysql_names[4].startswith("a_very_long_column_name_")
    assert mysql_names[5:] == ["dup", "dup_2"]
    assert list(_types(mysql, "hostile"))[:7] == mysql_names
    cols = ", ".join(quote_mysql(n) for n in mysql_names)
    assert _query(mysql, f"SELECT {cols} FROM {_ref(mysql, 'hostile')}") == [(1, 2, 3, 4, 5, 6, 7)]
    metadata = mirror_metadata(report)
    assert metadata["column_names"].data[0] == {
        "source": "first name",
        "catalog": "first_name",
        "mysql": "first_name",
    }


def test_catalog_names_mysql_cannot_take_are_mapped(landing, glue, mysql):
    """A catalog entry written by someone else: names are validated and mapped, never trusted."""
    _put(landing, "handmade/h.csv", _csv("id", ["1"]))
    crawl_table(landing, glue, "handmade", _config("handmade"))
    entry = glue.get_table("handmade")
    hostile = ["Order", "order", "a b", "x`y", "z" * 70, "_sf_source_id", "id"]
    columns = [{"Name": n, "Type": "string", "Parameters": {"sf.source_name": n}} for n in hostile]
    table_input = {
        k: entry[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
    }
    table_input["StorageDescriptor"] = {**entry["StorageDescriptor"], "Columns": columns}
    glue.update_table(table_input)

    report = _mirror(landing, glue, mysql, "handmade")
    names = [c.mysql for c in report.columns]
    assert names[:5] == ["order_", "order__2", "a_b", "x_y", names[4]] and len(names[4]) == 64
    assert names[5:] == ["sf_source_id", "id"]
    assert list(_types(mysql, "handmade"))[:7] == names
    assert _query(mysql, f"SELECT id FROM {_ref(mysql, 'handmade')}") == [("1",)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------------ migration


def test_a_table_from_before_the_row_key_is_rebuilt(landing, glue, mysql):
    _put(landing, "legacy/a.csv", _csv("id", ["1", "2"]))
    crawl_table(landing, glue, "legacy", _config("legacy"))
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {_ref(mysql, 'legacy')} (id INT NULL, _sf_source_key VARCHAR(1024) NOT NULL, "
            "KEY ix_sf_source_key (_sf_source_key(255)))"
        )
        cur.execute(f"INSERT INTO {_ref(mysql, 'legacy')} VALUES (1, 'legacy/a.csv'), (2, 'legacy/a.csv')")
        conn.commit()
    report = _mirror(landing, glue, mysql, "legacy")
    assert report.applied.full and report.applied.rows == _count(mysql, "legacy") == 2
    assert ddl.MYSQL_SOURCE_ID_COLUMN in _types(mysql, "legacy")


# ------------------------------------------------------------------------------------------ the asset


def test_the_asset_reports_what_was_loaded(landing, glue, mysql):
    registry = parse_registry({"tables": {"member": {}}})
    _put(landing, "member/m.csv", _csv("member_id,name", ["1,김", "2,이"]))
    crawl_table(landing, glue, "member", registry.table("member"))
    hops = [CuratedHop(glue.database, _curated(glue)), MySQLHop(glue.database, mysql.database, _curated(glue))]
    asset = build_hop_assets("mysql", hops, registry)
    resources = {"landing": landing, "glue": glue, "mysql": mysql}

    result = dg.materialize([asset], resources=resources)
    metadata = _mysql_metadata(result)
    assert metadata["dagster/row_count"].value == 2
    assert metadata["dagster/table_name"].value == f"{mysql.database}.member"
    assert (metadata["rows_inserted"].value, metadata["rows_deleted"].value) == (2, 0)
    assert metadata["snapshot_id"].value == str(_hub(landing, glue).current_snapshot_id("member"))
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "mysql"}
    assert checks == {"mysql_matches_catalog": True, "rows_reconcile": True, "schema_vs_previous": True}
    schema = {c.name: c.type for c in metadata["dagster/column_schema"].schema.columns}
    assert schema["member_id"] == "INT(11)" and schema["name"] == "VARCHAR(16)"
    assert schema[ddl.MYSQL_SOURCE_ID_COLUMN] == "BIGINT(20)"

    refresh = {"ops": {asset.op.name: {"config": {"full_refresh": True}}}}
    result = dg.materialize([asset], resources=resources, run_config=refresh)
    metadata = _mysql_metadata(result)
    assert metadata["full"].value is True and metadata["dagster/row_count"].value == 2
    assert (metadata["rows_inserted"].value, metadata["rows_deleted"].value) == (2, 2)


def _mysql_metadata(result) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "mysql"]
    return event.materialization.metadata
