"""The MySQL mirror against the real local MariaDB: DDL, values, names, exactly-once loads, full refresh,
quarantine, a killed run, schema evolution and concurrent runs. Files reach the catalog through the
real crawl."""

from __future__ import annotations

import csv
import gzip
import io
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import dagster as dg
import pyarrow as pa
import pymysql
import pytest

from sf_platform.assets.mysql import MySQLHop, mirror_metadata
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core import ddl
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.ledger import source_id
from sf_platform.core.quarantine import quarantine_key, unreadable_key
from sf_platform.core.registry import parse_registry
from sf_platform.hops import mysql_mirror
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.mysql_mirror import IncompatibleChange, MirrorError, mirror_table

pytestmark = pytest.mark.integration


def _config(table: str, **settings):
    return parse_registry({"tables": {table: settings}}).table(table)


def _put(landing, key: str, text: str, encoding: str = "utf-8") -> None:
    landing.put(key, text.encode(encoding))


def _sync(landing, glue, mysql, table: str, config=None, **kwargs):
    """Crawl, then mirror: what materializing both assets does."""
    config = config or _config(table)
    crawl_table(landing, glue, table, config)
    return mirror_table(landing, glue, mysql, table, config, **kwargs)


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

    assert report.rows_loaded == report.rows_in_table == _count(mysql, "typed") == 3
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
    assert report.rows_in_table == 3
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
    hostile = ["Order", "order", "a b", "x`y", "z" * 70, "_sf_row", "id"]
    columns = [{"Name": n, "Type": "string", "Parameters": {"sf.source_name": n}} for n in hostile]
    table_input = {
        k: entry[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
    }
    table_input["StorageDescriptor"] = {**entry["StorageDescriptor"], "Columns": columns}
    glue.update_table(table_input)

    report = mirror_table(landing, glue, mysql, "handmade", _config("handmade"))
    names = [c.mysql for c in report.columns]
    assert names[:5] == ["order_", "order__2", "a_b", "x_y", names[4]] and len(names[4]) == 64
    assert names[5:] == ["sf_row", "id"]
    assert list(_types(mysql, "handmade"))[:7] == names
    assert _query(mysql, f"SELECT id FROM {_ref(mysql, 'handmade')}") == [("1",)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------------ exactly once


def test_a_second_file_is_appended_once_and_rerunning_loads_nothing(landing, glue, mysql):
    _put(landing, "orders/o_1.csv", _csv("id,code", ["1,001", "2,002"]))
    first = _sync(landing, glue, mysql, "orders")
    assert (first.rows_loaded, len(first.files_loaded), first.files_skipped) == (2, 1, 0)

    _put(landing, "orders/o_2.csv", _csv("id,code", ["3,003"]))
    second = _sync(landing, glue, mysql, "orders")
    assert (second.rows_loaded, second.files_loaded, second.files_skipped) == (1, ["orders/o_2.csv"], 1)

    again = _sync(landing, glue, mysql, "orders")
    assert (again.rows_loaded, again.files_loaded, again.files_skipped) == (0, [], 2)
    assert again.rows_in_table == _count(mysql, "orders") == 3
    assert _query(mysql, f"SELECT id, code, _sf_source_key FROM {_ref(mysql, 'orders')} ORDER BY id") == [
        (1, "001", "orders/o_1.csv"),
        (2, "002", "orders/o_1.csv"),
        (3, "003", "orders/o_2.csv"),
    ]


def test_a_replaced_object_replaces_its_rows_and_a_deleted_one_removes_them(landing, glue, mysql):
    _put(landing, "items/a.csv", _csv("id,name", ["1,old", "2,old"]))
    _put(landing, "items/b.csv", _csv("id,name", ["10,keep"]))
    _sync(landing, glue, mysql, "items")

    _put(landing, "items/a.csv", _csv("id,name", ["1,new", "2,new", "3,new"]))
    report = _sync(landing, glue, mysql, "items")
    assert (report.files_loaded, report.files_skipped, report.rows_loaded) == (["items/a.csv"], 1, 3)
    assert _query(mysql, f"SELECT id, name FROM {_ref(mysql, 'items')} ORDER BY id") == [
        (1, "new"),
        (2, "new"),
        (3, "new"),
        (10, "keep"),
    ]

    landing.delete("items/b.csv")
    report = _sync(landing, glue, mysql, "items")
    assert report.files_removed == ["items/b.csv"]
    assert report.rows_in_table == _count(mysql, "items") == 3


def test_full_refresh_builds_aside_and_swaps_readers_see_the_old_table_until_then(
    landing, glue, mysql, monkeypatch
):
    _put(landing, "swap/a.csv", _csv("id", ["1", "2"]))
    _sync(landing, glue, mysql, "swap")
    # A row changed behind the mirror's back: only a rebuild from S3 restores it.
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {_ref(mysql, 'swap')} SET id = 99 WHERE id = 2")
        conn.commit()
    _put(landing, "swap/b.csv", _csv("id", ["3"]))

    seen = {}
    real_swap = mysql_mirror._Mirror._swap

    def swap_and_watch(self, staging, old):
        seen["before"] = sorted(r[0] for r in _query(mysql, f"SELECT id FROM {_ref(mysql, 'swap')}"))
        seen["staged"] = sorted(r[0] for r in _query(mysql, f"SELECT id FROM {_ref(mysql, staging)}"))
        real_swap(self, staging, old)

    monkeypatch.setattr(mysql_mirror._Mirror, "_swap", swap_and_watch)
    report = _sync(landing, glue, mysql, "swap", full_refresh=True)

    assert seen == {"before": [1, 99], "staged": [1, 2, 3]}
    assert sorted(r[0] for r in _query(mysql, f"SELECT id FROM {_ref(mysql, 'swap')}")) == [1, 2, 3]
    assert (report.rows_loaded, report.rows_in_table, report.full_refresh) == (3, 3, True)
    staging, old = mysql_mirror.work_tables("swap")
    assert not set(_query(mysql, "SHOW TABLES")) & {(staging,), (old,)}
    # The ledger was rewritten: an ordinary run afterwards has nothing to do.
    monkeypatch.undo()
    after = _sync(landing, glue, mysql, "swap")
    assert (after.rows_loaded, after.files_skipped, after.rows_in_table) == (0, 2, 3)


def test_rows_that_cannot_be_typed_are_quarantined_and_the_good_rows_load(landing, glue, mysql):
    config = _config("scores", types={"points": "int", "seen": "date"})
    _put(
        landing,
        "scores/s.csv",
        _csv("id,points,seen", ["1,10,2024-01-01", "2,ten,2024-01-02", "3,30,2024-02-30", "4,40,2024-01-04"]),
    )
    obj = landing.head("scores/s.csv")
    report = _sync(landing, glue, mysql, "scores", config)

    assert (report.rows_loaded, report.rows_quarantined, report.rows_in_table) == (2, 2, 2)
    assert _query(mysql, f"SELECT id, _sf_row FROM {_ref(mysql, 'scores')} ORDER BY id") == [(1, 1), (4, 4)]
    key = quarantine_key("mysql", "scores", "scores/s.csv", obj["ETag"])
    assert report.quarantine_keys == [key]
    text = landing.open(key).read().decode()
    lines = text.splitlines()
    assert lines[0] == "source_key,line,reason,id,points,seen"
    assert (
        lines[1].startswith("scores/s.csv,2,")
        and "'points'" in lines[1]
        and lines[1].endswith(",2,ten,2024-01-02")
    )
    assert (
        lines[2].startswith("scores/s.csv,3,")
        and "'seen'" in lines[2]
        and lines[2].endswith(",3,30,2024-02-30")
    )
    ledger = _query(
        mysql,
        f"SELECT rows_loaded, rows_quarantined FROM {_ref(mysql, '_sf_ledger')} WHERE table_name = 'scores'",
    )
    assert ledger == [(2, 2)]
    metadata = mirror_metadata(report)
    assert metadata["rows_quarantined"] == 2 and metadata["dagster/row_count"].value == 2


def test_ragged_rows_are_quarantined_with_their_text_and_the_good_rows_load(landing, glue, mysql):
    config = _config("scores", types={"points": "int", "seen": "date"})
    _put(
        landing,
        "scores/r.csv",
        _csv(
            "id,points,seen",
            ["1,10,2024-01-01", "2,20", "3,thirty,2024-01-03", "4,40,2024-01-04,extra", "5,50,2024-01-05", "6"],
        ),
    )
    obj = landing.head("scores/r.csv")
    report = _sync(landing, glue, mysql, "scores", config)

    assert (report.rows_loaded, report.rows_quarantined, report.rows_in_table) == (2, 4, 2)
    # Good rows keep their place in the file as the row key: data rows 1 and 5.
    assert _query(mysql, f"SELECT id, points, seen, _sf_row FROM {_ref(mysql, 'scores')} ORDER BY id") == [
        (1, 10, date(2024, 1, 1), 1),
        (5, 50, date(2024, 1, 5), 5),
    ]
    key = quarantine_key("mysql", "scores", "scores/r.csv", obj["ETag"])
    assert report.quarantine_keys == [key]
    rows = list(csv.DictReader(io.StringIO(landing.open(key).read().decode())))
    assert [(r["line"], r["id"], r["points"], r["seen"]) for r in rows] == [
        ("2", "", "", ""),
        ("3", "3", "thirty", "2024-01-03"),
        ("4", "", "", ""),
        ("6", "", "", ""),
    ]
    assert rows[0]["reason"] == (
        "ragged row: expected 3 fields, got 2 (data row 2, not counting the header or blank lines); raw text: 2,20"
    )
    assert "'points'" in rows[1]["reason"]
    assert rows[2]["reason"].startswith("ragged row: expected 3 fields, got 4 ")
    assert rows[2]["reason"].endswith("raw text: 4,40,2024-01-04,extra")
    assert rows[3]["reason"].startswith("ragged row: expected 3 fields, got 1 ")
    assert rows[3]["reason"].endswith("raw text: 6")
    ledger = _query(
        mysql,
        f"SELECT rows_loaded, rows_quarantined FROM {_ref(mysql, '_sf_ledger')} WHERE table_name = 'scores'",
    )
    assert ledger == [(2, 4)]
    assert mirror_metadata(report)["rows_quarantined"] == 4


@pytest.mark.parametrize(
    ("fault", "extra", "message"),
    [
        ("a value the column cannot hold", "x,c,3", "MySQL refused values"),
        ("a row sent twice", "1,a,1", "MySQL refused values"),  # a duplicate key is only a warning
        ("a row nobody counted", "5,e,99", "sent 2 rows but MySQL loaded 3"),
    ],
)
def test_rows_the_server_refuses_roll_the_whole_file_back(
    landing, glue, mysql, monkeypatch, fault, extra, message
):
    """With LOCAL the server cannot stop the stream, so it only warns about bad data and skips duplicate
    keys; the mirror checks the warnings and the row count and rolls the file back."""
    _put(landing, "guarded/a.csv", _csv("id,name", ["1,a", "2,b"]))
    real_chunks = mysql_mirror._RowFeed.chunks

    def faulty_chunks(self):
        yield from real_chunks(self)
        # a row of the stream: data fields, row number, then the object's key and id
        yield f"{extra},guarded/a.csv,{source_id('guarded/a.csv')}\n".encode()

    monkeypatch.setattr(mysql_mirror._RowFeed, "chunks", faulty_chunks)
    with pytest.raises(MirrorError, match=f"guarded/a.csv: {message}"):
        _sync(landing, glue, mysql, "guarded")
    assert _count(mysql, "guarded") == 0
    assert _query(mysql, f"SELECT * FROM {_ref(mysql, '_sf_ledger')} WHERE table_name = 'guarded'") == []

    monkeypatch.undo()
    assert _sync(landing, glue, mysql, "guarded").rows_in_table == _count(mysql, "guarded") == 2


# ------------------------------------------------------------------------------------------ many small files


def _put_many(landing, items: dict[str, str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: _put(landing, *item), items.items()))


def _ledger_rows(mysql, table: str) -> dict[str, int]:
    rows = _query(
        mysql,
        f"SELECT object_key, rows_loaded FROM {_ref(mysql, '_sf_ledger')} WHERE table_name = %s",
        (table,),
    )
    return dict(rows)


def test_many_one_row_files_load_in_few_batches_once_and_replaced_ones_replace_their_rows(
    landing, glue, mysql
):
    files = {f"tiny/t_{i:04d}.csv": _csv("id,name,amount", [f"{i},name {i},{i}.5"]) for i in range(300)}
    _put_many(landing, files)
    first = _sync(landing, glue, mysql, "tiny")

    assert (first.rows_loaded, len(first.files_loaded), first.rows_in_table) == (300, 300, 300)
    assert first.batches == 1  # one transaction, one LOAD DATA stream for the 300 files
    rows = f"SELECT id, name, CAST(amount AS CHAR), _sf_source_key, _sf_row FROM {_ref(mysql, 'tiny')} ORDER BY id"
    expected = [(i, f"name {i}", f"{i}.5", f"tiny/t_{i:04d}.csv", 1) for i in range(300)]
    assert _query(mysql, rows) == expected
    assert _ledger_rows(mysql, "tiny") == dict.fromkeys(files, 1)

    again = _sync(landing, glue, mysql, "tiny")
    assert (again.rows_loaded, again.files_loaded, again.files_skipped, again.batches) == (0, [], 300, 0)
    assert _query(mysql, rows) == expected

    _put(landing, "tiny/t_0007.csv", _csv("id,name,amount", ["1007,seven,7.2", "2007,seven b,7.7"]))
    _put(landing, "tiny/t_0123.csv", _csv("id,name,amount", ["1123,one two three,1.5"]))
    replaced = _sync(landing, glue, mysql, "tiny")
    assert sorted(replaced.files_loaded) == ["tiny/t_0007.csv", "tiny/t_0123.csv"]
    assert (replaced.rows_loaded, replaced.files_skipped, replaced.batches) == (3, 298, 1)
    expected = [r for r in expected if r[0] not in (7, 123)] + [
        (1007, "seven", "7.2", "tiny/t_0007.csv", 1),
        (1123, "one two three", "1.5", "tiny/t_0123.csv", 1),
        (2007, "seven b", "7.7", "tiny/t_0007.csv", 2),
    ]
    assert _query(mysql, rows) == expected
    assert replaced.rows_in_table == _count(mysql, "tiny") == 301
    assert _ledger_rows(mysql, "tiny") == {**dict.fromkeys(files, 1), "tiny/t_0007.csv": 2}


def test_a_full_refresh_of_many_files_loads_them_in_batches(landing, glue, mysql, monkeypatch):
    monkeypatch.setattr(mysql_mirror, "BATCH_OBJECTS", 40)
    files = {f"refresh/r_{i:03d}.csv": _csv("id,name", [f"{i},n{i}"]) for i in range(100)}
    _put_many(landing, files)
    _sync(landing, glue, mysql, "refresh")
    report = _sync(landing, glue, mysql, "refresh", full_refresh=True)

    assert (report.rows_loaded, report.rows_in_table, report.batches) == (100, 100, 3)
    assert _query(mysql, f"SELECT id, name FROM {_ref(mysql, 'refresh')} ORDER BY id") == [
        (i, f"n{i}") for i in range(100)
    ]
    assert _ledger_rows(mysql, "refresh") == dict.fromkeys(files, 1)


def test_an_unreadable_file_is_named_and_left_out_while_its_batch_and_the_others_commit(
    landing, glue, mysql, monkeypatch
):
    monkeypatch.setattr(mysql_mirror, "BATCH_OBJECTS", 100)
    _put_many(landing, {f"parts/p_{i:03d}.csv": _csv("id,name", [f"{i},n{i}"]) for i in range(250)})
    crawl_table(landing, glue, "parts", _config("parts"))
    # Half a gzip file, in the second batch (after p_150.csv in key order).
    whole = gzip.compress(_csv("id,name", [f"{i},late {i}" for i in range(1000, 3000)]).encode())
    landing.put("parts/p_150b.csv.gz", whole[: len(whole) // 2])

    report = mirror_table(landing, glue, mysql, "parts", _config("parts"))
    assert list(report.files_failed) == ["parts/p_150b.csv.gz"]
    assert report.files_failed["parts/p_150b.csv.gz"].startswith("gzip data is truncated")
    # Every batch committed, the second one without the bad file, and nothing of it.
    assert _count(mysql, "parts") == len(_ledger_rows(mysql, "parts")) == 250
    assert "parts/p_150b.csv.gz" not in _ledger_rows(mysql, "parts")
    assert _query(mysql, f"SELECT COUNT(*) FROM {_ref(mysql, 'parts')} WHERE name LIKE 'late %%'") == [(0,)]
    etag = landing.head("parts/p_150b.csv.gz")["ETag"]
    assert unreadable_key("mysql", "parts", "parts/p_150b.csv.gz", etag) in report.quarantine_keys

    landing.put("parts/p_150b.csv.gz", whole)
    report = mirror_table(landing, glue, mysql, "parts", _config("parts"))
    assert (report.rows_loaded, report.files_skipped, report.batches, report.files_failed) == (2000, 250, 1, {})
    assert report.rows_in_table == _count(mysql, "parts") == 2250
    assert _query(mysql, f"SELECT COUNT(*) FROM {_ref(mysql, 'parts')} WHERE name LIKE 'late %%'") == [(2000,)]


def test_a_file_replaced_during_the_run_waits_for_the_next_one_and_its_batch_loads(
    landing, glue, mysql, monkeypatch
):
    _put_many(landing, {f"moving/m_{i:02d}.csv": _csv("id,name", [f"{i},old"]) for i in range(20)})
    crawl_table(landing, glue, "moving", _config("moving"))
    real_open = mysql_mirror._Mirror._open
    replaced = []

    def replace_then_open(self, obj):
        if obj.key == "moving/m_05.csv" and not replaced:  # a newer version lands after the listing
            _put(landing, obj.key, _csv("id,name", ["5,new"]))
            replaced.append(obj.key)
        return real_open(self, obj)

    monkeypatch.setattr(mysql_mirror._Mirror, "_open", replace_then_open)
    report = mirror_table(landing, glue, mysql, "moving", _config("moving"))
    assert report.files_deferred == ["moving/m_05.csv"]
    assert (report.rows_loaded, len(report.files_loaded), report.batches) == (19, 19, 1)
    assert _query(mysql, f"SELECT id FROM {_ref(mysql, 'moving')} ORDER BY id") == [
        (i,) for i in range(20) if i != 5
    ]

    later = mirror_table(landing, glue, mysql, "moving", _config("moving"))
    assert (later.files_loaded, later.rows_loaded) == (["moving/m_05.csv"], 1)
    assert _query(mysql, f"SELECT name FROM {_ref(mysql, 'moving')} WHERE id = 5") == [("new",)]


def test_values_too_long_for_a_stale_catalog_widen_the_column_for_the_whole_batch(landing, glue, mysql):
    _put_many(landing, {f"narrow/n_{i:02d}.csv": _csv("id,name", [f"{i},short"]) for i in range(30)})
    _sync(landing, glue, mysql, "narrow")
    assert _types(mysql, "narrow")["name"] == "VARCHAR(16)"
    more = {f"narrow/z_{i:02d}.csv": _csv("id,name", [f"{100 + i},{'w' * (20 + i)}"]) for i in range(10)}
    _put_many(landing, more)
    report = mirror_table(landing, glue, mysql, "narrow", _config("narrow"))  # no crawl: the catalog is stale

    assert (report.rows_loaded, report.batches) == (10, 1)
    assert [c for c in report.schema_changes if c.startswith("widened")] == [
        "widened name VARCHAR(16) -> VARCHAR(64) (values in narrow/z_09.csv longer than the catalog says)"
    ]
    assert _query(mysql, f"SELECT id, LENGTH(name) FROM {_ref(mysql, 'narrow')} WHERE id >= 100 ORDER BY id") == [
        (100 + i, 20 + i) for i in range(10)
    ]


def test_a_value_the_server_refuses_names_its_file_and_rolls_its_whole_batch_back(
    landing, glue, mysql, monkeypatch
):
    _put_many(landing, {f"checked/{name}.csv": _csv("id,name", [f"{i},{name}"]) for i, name in enumerate("abc")})
    real_stream_batch = mysql_mirror._RowFeed._stream_batch

    def corrupt(self, obj, batch):
        rows = real_stream_batch(self, obj, batch)
        if obj.key != "checked/b.csv":
            return rows
        bad_id = pa.array(["not a number"] * rows.num_rows)
        return pa.RecordBatch.from_arrays([bad_id, *rows.columns[1:]], names=rows.schema.names)

    monkeypatch.setattr(mysql_mirror._RowFeed, "_stream_batch", corrupt)
    with pytest.raises(MirrorError, match=r"checked/b\.csv: MySQL refused values, nothing of its batch of 3 files"):
        _sync(landing, glue, mysql, "checked")
    assert _count(mysql, "checked") == 0 and _ledger_rows(mysql, "checked") == {}

    monkeypatch.undo()
    assert _sync(landing, glue, mysql, "checked").rows_in_table == _count(mysql, "checked") == 3


_CHILD = textwrap.dedent(
    """
    import json, sys
    from dagster_aws.s3 import S3Resource
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.mysql_mirror import mirror_table
    from sf_platform.resources.aws import GlueCatalog, LandingBucket
    from sf_platform.resources.mysql import MySQLResource

    a = json.loads(sys.argv[1])
    s3 = S3Resource(**a["s3"])
    mirror_table(
        LandingBucket(s3=s3, bucket=a["bucket"]),
        GlueCatalog(**a["glue"]),
        MySQLResource(**a["mysql"]),
        a["table"],
        parse_registry({"tables": {a["table"]: {}}}).table(a["table"]),
    )
    """
)


def test_a_run_killed_mid_load_then_rerun_ends_with_exactly_the_right_rows(landing, glue, mysql):
    rows = 150_000
    _put(landing, "big/a_small.csv", _csv("id,name,amount", [f"{i},n{i},{i}.25" for i in range(1000)]))
    _put(landing, "big/b_large.csv", _csv("id,name,amount", [f"{i},name {i},{i}.75" for i in range(rows)]))
    crawl_table(landing, glue, "big", _config("big"))

    args = {
        "s3": landing.s3.model_dump(exclude_none=True),
        "bucket": landing.bucket,
        "glue": glue.model_dump(),
        "mysql": mysql.model_dump(),
        "table": "big",
    }
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stderr=subprocess.PIPE)
    try:
        in_flight = _wait_for_uncommitted_rows(mysql, "big/b_large.csv", child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert 0 < in_flight < rows, "killed in the middle of the load"

    committed = _query(mysql, f"SELECT object_key FROM {_ref(mysql, '_sf_ledger')} WHERE table_name = 'big'")
    assert committed == [("big/a_small.csv",)]
    assert _count(mysql, "big") == 1000

    report = mirror_table(landing, glue, mysql, "big", _config("big"))
    assert (report.files_loaded, report.files_skipped) == (["big/b_large.csv"], 1)
    total, distinct = _query(
        mysql, f"SELECT COUNT(*), COUNT(DISTINCT _sf_source_key, id) FROM {_ref(mysql, 'big')}"
    )[0]
    assert total == distinct == report.rows_in_table == rows + 1000


def _wait_for_uncommitted_rows(mysql, key: str, child, timeout: float = 60) -> int:
    """Wait until the child's open transaction holds some of ``key``'s rows; how many it holds."""
    deadline = time.monotonic() + timeout
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED")
        while time.monotonic() < deadline:
            try:
                cur.execute(
                    f"SELECT COUNT(*) FROM {_ref(mysql, 'big')} WHERE _sf_source_id = %s", (source_id(key),)
                )
                if (seen := cur.fetchone()[0]) > 0:
                    return seen
            except pymysql.err.ProgrammingError:
                pass  # the table is not created yet
            if child.poll() is not None:
                pytest.fail(f"the mirror ended before it was killed: {child.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
    pytest.fail("the load never started")


def test_concurrent_runs_on_one_table_are_serialized(landing, glue, mysql):
    _put(landing, "busy/a.csv", _csv("id,name", [f"{i},name {i}" for i in range(50_000)]))
    config = _config("busy")
    crawl_table(landing, glue, "busy", config)
    reports, errors = [], []

    def run():
        try:
            reports.append(mirror_table(landing, glue, mysql, "busy", config))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted((len(r.files_loaded), r.files_skipped) for r in reports) == [(0, 1), (1, 0)]
    assert _count(mysql, "busy") == 50_000


# ------------------------------------------------------------------------------------------ schema evolution


def test_a_new_catalog_column_is_added_with_alter_table(landing, glue, mysql):
    _put(landing, "grow/a.csv", _csv("id,name", ["1,a"]))
    _sync(landing, glue, mysql, "grow")
    _put(landing, "grow/b.csv", _csv("id,name,joined", ["2,b,2024-05-01"]))
    report = _sync(landing, glue, mysql, "grow")

    assert any(c.startswith("added joined DATE") for c in report.schema_changes)
    assert _query(mysql, f"SELECT id, name, CAST(joined AS CHAR) FROM {_ref(mysql, 'grow')} ORDER BY id") == [
        (1, "a", None),
        (2, "b", "2024-05-01"),
    ]


def test_wider_catalog_types_widen_the_mysql_columns(landing, glue, mysql):
    _put(landing, "widen/a.csv", _csv("id,name", ["1,ab"]))
    _sync(landing, glue, mysql, "widen")
    assert _types(mysql, "widen")["id"] == "INT(11)"
    _put(landing, "widen/b.csv", _csv("id,name", ["9000000000," + "n" * 100]))
    report = _sync(landing, glue, mysql, "widen")

    assert _types(mysql, "widen")["id"] == "BIGINT(20)"
    assert _types(mysql, "widen")["name"] == "VARCHAR(208)"
    assert sum(c.startswith("widened") for c in report.schema_changes) == 2
    assert _query(mysql, f"SELECT id, LENGTH(name) FROM {_ref(mysql, 'widen')} ORDER BY id") == [
        (1, 2),
        (9000000000, 100),
    ]


def test_strings_longer_than_a_stale_catalog_says_widen_the_column_and_are_never_truncated(
    landing, glue, mysql
):
    _put(landing, "stale/a.csv", _csv("id,name", ["1,short"]))
    _sync(landing, glue, mysql, "stale")
    assert _types(mysql, "stale")["name"] == "VARCHAR(16)"
    long_value = "긴" * 3000 + "!"
    _put(landing, "stale/b.csv", _csv("id,name", ["2,mid length value", f"3,{long_value}"]))
    report = mirror_table(landing, glue, mysql, "stale", _config("stale"))  # no crawl: the catalog is stale

    assert report.rows_loaded == 2
    assert any("widened name VARCHAR(16) -> TEXT" in c for c in report.schema_changes)
    assert _query(mysql, f"SELECT name FROM {_ref(mysql, 'stale')} WHERE id = 3") == [(long_value,)]


def test_an_incompatible_change_fails_naming_the_column_or_rebuilds_when_configured(landing, glue, mysql):
    _put(landing, "shift/a.csv", _csv("id,amount", ["1,10"]))
    _sync(landing, glue, mysql, "shift")
    _put(landing, "shift/b.csv", _csv("id,amount", ["2,ten"]))
    with pytest.raises(IncompatibleChange, match=r"column 'amount'.*INT\(11\) to VARCHAR\(16\).*rebuild"):
        _sync(landing, glue, mysql, "shift")
    assert _count(mysql, "shift") == 1

    report = _sync(
        landing, glue, mysql, "shift", _config("shift", mysql={"on_incompatible_change": "rebuild"})
    )
    assert report.rebuilt and report.rows_in_table == 2
    assert _types(mysql, "shift")["amount"] == "VARCHAR(16)"
    assert _query(mysql, f"SELECT id, amount FROM {_ref(mysql, 'shift')} ORDER BY id") == [
        (1, "10"),
        (2, "ten"),
    ]


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
    report = mirror_table(landing, glue, mysql, "legacy", _config("legacy"))
    assert report.rebuilt and report.rows_in_table == _count(mysql, "legacy") == 2
    assert ddl.MYSQL_SOURCE_ID_COLUMN in _types(mysql, "legacy")


# ------------------------------------------------------------------------------------------ the asset


def test_the_asset_reports_what_was_loaded(landing, glue, mysql):
    registry = parse_registry({"tables": {"member": {}}})
    _put(landing, "member/m.csv", _csv("member_id,name", ["1,김", "2,이"]))
    crawl_table(landing, glue, "member", registry.table("member"))
    asset = build_hop_assets("mysql", [MySQLHop(glue.database, mysql.database)], registry)
    resources = {"landing": landing, "glue": glue, "mysql": mysql}

    result = dg.materialize([asset], resources=resources)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["dagster/table_name"].value == f"{mysql.database}.member"
    assert metadata["rows_loaded"].value == 2 and metadata["files_loaded"].value == 1
    schema = {c.name: c.type for c in metadata["dagster/column_schema"].schema.columns}
    assert schema["member_id"] == "INT(11)" and schema["name"] == "VARCHAR(16)"
    assert schema[ddl.MYSQL_SOURCE_ID_COLUMN] == "BIGINT(20)"

    refresh = {"ops": {asset.op.name: {"config": {"full_refresh": True}}}}
    result = dg.materialize([asset], resources=resources, run_config=refresh)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["full_refresh"].value is True and metadata["dagster/row_count"].value == 2
