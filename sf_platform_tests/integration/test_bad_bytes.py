"""Bad bytes and bad files against the real local services (moto S3 + Glue, MariaDB): nothing invented,
one bad file named and never counted as a short one, long fields loaded.

- a file whose encoding changes part way: the crawl says where, its good rows load, the rest is
  quarantined (once, by curation) with its bytes escaped, and no replacement character reaches MySQL;
- random binary named .csv and a truncated .csv.gz beside good files: both named unreadable by the
  crawl, the catalog counts only the good files, curation names them and MySQL loads the rest;
- a 1 MB field loads in MySQL with the default SF_MAX_FIELD_BYTES; a registry encoding is honoured.
"""

from __future__ import annotations

import csv
import gzip
import io
import random

import pytest

from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.quarantine import quarantine_key
from sf_platform.core.registry import parse_registry
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.curate import QUARANTINE_TARGET, curate_table
from sf_platform.hops.mysql_mirror import mirror_table
from sf_platform.hub.catalog import Hub

pytestmark = pytest.mark.integration


def _config(table: str, **settings):
    return parse_registry({"tables": {table: settings}}).table(table)


def _curate_and_mirror(landing, glue, mysql, table: str, config):
    """Curate into the hub, then load MySQL from it: (the curation's report, the mirror's)."""
    curated = f"{glue.database}_curated"
    report = curate_table(landing, glue, table, config, curated_database=curated)
    return report, mirror_table(Hub(landing, glue, curated), glue, mysql, table, config)


def _ref(mysql, table: str) -> str:
    return f"{quote_mysql(mysql.database)}.{quote_mysql(table)}"


def _good_file(first: int, rows: int) -> bytes:
    return ("id,name\n" + "".join(f"{i},이영희{i}\n" for i in range(first, first + rows))).encode()


def _mixed_file(first: int) -> bytes:
    """2,000 UTF-8 rows, then 2,000 CP949 rows: every row has Hangul, so every CP949 row is not UTF-8."""
    utf8 = "".join(f"{i},홍길동{i}\n" for i in range(first, first + 2000)).encode("utf-8")
    cp949 = "".join(f"{i},김철수{i}\n" for i in range(first + 2000, first + 4000)).encode("cp949")
    return b"id,name\n" + utf8 + cp949


def test_a_file_changing_encoding_loads_its_good_rows_and_quarantines_the_rest(landing, glue, mysql):
    config = _config("members")
    landing.put("members/a.csv", _good_file(1, 100))
    landing.put("members/mixed.csv", _mixed_file(1001))
    landing.put("members/z.csv", _good_file(9001, 100))

    report = crawl_table(landing, glue, "members", config)
    (problem,) = report.problems["members/mixed.csv"]
    assert problem.startswith("line 2002: bytes not valid utf-8; looks like cp949 from there"), problem
    assert report.unreadable == {} and report.undecodable_rows == 2000
    params = glue.get_table("members")["Parameters"]
    assert params["recordCount"] == str(100 + 4000 + 100)  # the quarantined rows are records too

    curated, mirrored = _curate_and_mirror(landing, glue, mysql, "members", config)
    assert (mirrored.applied.rows_inserted, curated.rows_quarantined) == (2200, 2000)
    rows = mysql.fetch_all(f"SELECT id, name FROM {_ref(mysql, 'members')} ORDER BY id")
    assert len(rows) == 2200
    assert all(name in (f"이영희{i}", f"홍길동{i}") for i, name in rows)
    replaced = mysql.fetch_all(
        f"SELECT COUNT(*) FROM {_ref(mysql, 'members')} WHERE INSTR(name, %s) > 0", ("\ufffd",)
    )
    assert replaced == [(0,)]

    etag = landing.head("members/mixed.csv")["ETag"]
    key = quarantine_key(QUARANTINE_TARGET, "members", "members/mixed.csv", etag)
    assert key in curated.quarantine_keys
    text = landing.open(key).read().decode("utf-8")
    assert "\ufffd" not in text
    quarantined = list(csv.reader(io.StringIO(text)))
    assert quarantined[0] == ["source_key", "line", "reason", "id", "name"]
    assert [int(r[1]) for r in quarantined[1:]] == list(range(2001, 4001))
    source, line, reason, id_, name = quarantined[1]
    assert (source, id_) == ("members/mixed.csv", "3001")
    assert reason.startswith("not valid utf-8: bytes \\xb1\\xe8") and reason.endswith("decodes as cp949")
    assert name == "김철수3001".encode("cp949").decode("utf-8", "backslashreplace")


def test_binary_and_truncated_gzip_files_are_named_unreadable_and_not_counted(landing, glue, mysql):
    config = _config("events")
    landing.put("events/a.csv", _good_file(1, 50))
    landing.put("events/b.csv", _good_file(51, 70))
    landing.put("events/binary.csv", random.Random(17).randbytes(200_000))
    whole = gzip.compress(_good_file(1000, 50_000))
    landing.put("events/cut.csv.gz", whole[: len(whole) // 2])

    report = crawl_table(landing, glue, "events", config)
    assert sorted(report.unreadable) == ["events/binary.csv", "events/cut.csv.gz"]
    assert report.unreadable["events/binary.csv"].startswith("not a text file: its first 65,536 bytes hold")
    assert report.unreadable["events/cut.csv.gz"].startswith("gzip data is truncated")
    entry = glue.get_table("events")
    assert {c["Name"]: c["Type"] for c in entry["StorageDescriptor"]["Columns"]} == {"id": "int", "name": "string"}
    params = entry["Parameters"]
    assert (params["recordCount"], params["objectCount"]) == ("120", "2")
    assert (report.rows, report.files) == (120, 2)

    # Curation names both and takes the good files' rows in the same run; MySQL holds exactly those.
    curated, mirrored = _curate_and_mirror(landing, glue, mysql, "events", config)
    assert sorted(curated.problems) == ["events/binary.csv", "events/cut.csv.gz"]
    assert curated.problems["events/binary.csv"].startswith("not a text file")
    assert (mirrored.applied.rows_inserted, mirrored.applied.rows) == (120, 120)
    keys = mysql.fetch_all(f"SELECT DISTINCT _sf_source_key FROM {_ref(mysql, 'events')} ORDER BY 1")
    assert keys == [("events/a.csv",), ("events/b.csv",)]


def test_a_1_mb_field_crawls_and_loads_in_mysql_with_the_default_limit(landing, glue, mysql):
    config = _config("notes")
    big = "가나다라" * (1 << 18)  # 1,048,576 characters, 3 MB of UTF-8
    text = "id,body\n1,short\n2," + big + "\n3,after\n"
    landing.put("notes/n.csv", text.encode())

    report = crawl_table(landing, glue, "notes", config)
    assert report.unreadable == {} and report.problems == {}
    assert glue.get_table("notes")["Parameters"]["recordCount"] == "3"

    curated, mirrored = _curate_and_mirror(landing, glue, mysql, "notes", config)
    assert (mirrored.applied.rows_inserted, curated.rows_quarantined) == (3, 0)
    rows = mysql.fetch_all(f"SELECT id, CHAR_LENGTH(body), body = %s FROM {_ref(mysql, 'notes')} ORDER BY id", (big,))
    assert rows == [(1, 5, 0), (2, len(big), 1), (3, 5, 0)]


def test_a_row_over_the_field_limit_makes_only_its_file_unreadable(landing, glue, monkeypatch):
    monkeypatch.setenv("SF_MAX_FIELD_BYTES", str(1 << 20))
    config = _config("docs")
    landing.put("docs/a.csv", b"id,body\n1,x\n2,y\n")
    landing.put("docs/huge.csv", b"id,body\n1,x\n2," + b"z" * (2 << 20) + b"\n3,after\n")

    report = crawl_table(landing, glue, "docs", config)
    assert report.unreadable == {
        "docs/huge.csv": "line 3 (data row 2) is longer than SF_MAX_FIELD_BYTES (1,048,576 bytes): the file is not read"
    }
    assert glue.get_table("docs")["Parameters"]["recordCount"] == "2"


def test_the_registry_encoding_is_applied_by_the_crawl_and_the_mirror(landing, glue, mysql):
    config = _config("cities", encoding="latin-1")
    landing.put("cities/c.csv", "id,name\n1,Zürich\n2,Besançon\n".encode("latin-1"))

    report = crawl_table(landing, glue, "cities", config)
    assert report.problems == {} and report.format.encoding == "iso8859-1"
    curated, mirrored = _curate_and_mirror(landing, glue, mysql, "cities", config)
    assert (mirrored.applied.rows_inserted, curated.rows_quarantined) == (2, 0)
    names = mysql.fetch_all(f"SELECT name FROM {_ref(mysql, 'cities')} ORDER BY id")
    assert names == [("Zürich",), ("Besançon",)]
