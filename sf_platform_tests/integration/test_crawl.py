"""The crawl hop against the real moto server: files in a bucket -> the Glue entry, partitions, versions."""

from __future__ import annotations

import gzip
import io

import pytest

from sf_platform.core import catalog as cat
from sf_platform.core.registry import parse_registry
from sf_platform.hops.crawl import PROFILE_CACHE_ROOT, crawl_table

pytestmark = pytest.mark.integration

MEMBER_CSV = (
    b"MEMBER_ID,MEMBER_NAME,SCHOOL_CODE,SCORE,JOINED_ON,ACTIVE,LAST_LOGIN\n"
    b"1,Kim,00123,91.50,2024-03-01,true,2024-03-01 09:00:00\n"
    b"2,Lee,04567,78.25,2024-03-02,false,2024-03-02 10:30:00\n"
    b"3,Park,00089,88.00,2024-03-03,true,\n"
)


def _config(**settings):
    return parse_registry({"tables": {"t": settings}}).table("t")


def _types(entry: dict) -> dict[str, str]:
    return {c["Name"]: c["Type"] for c in entry["StorageDescriptor"]["Columns"]}


def _versions(glue, table: str) -> int:
    return len(glue.table_versions(table))


# ------------------------------------------------------------------------------------------ the entry


def test_a_headered_csv_becomes_a_crawler_like_entry(landing, glue):
    landing.put("member/MEMBER_202508291511.csv", MEMBER_CSV)
    report = crawl_table(landing, glue, "member", _config())
    assert report.action == "created"

    entry = glue.get_table("member")
    assert _types(entry) == {
        "member_id": "int",
        "member_name": "string",
        "school_code": "string",  # leading zeros: codes, not numbers
        "score": "decimal(4,2)",
        "joined_on": "date",
        "active": "boolean",
        "last_login": "timestamp",
    }
    assert entry["TableType"] == "EXTERNAL_TABLE"
    assert entry["DatabaseName"] == glue.database
    sd = entry["StorageDescriptor"]
    assert sd["Location"] == f"s3://{landing.bucket}/member/"
    assert sd["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
    assert sd["SerdeInfo"] == {
        "SerializationLibrary": cat.LAZY_SIMPLE_SERDE,
        "Parameters": {"field.delim": ","},
    }
    params = entry["Parameters"]
    assert {
        k: params[k] for k in ("classification", "delimiter", "skip.header.line.count", "compressionType")
    } == {
        "classification": "csv",
        "delimiter": ",",
        "skip.header.line.count": "1",
        "compressionType": "none",
    }
    assert params["typeOfData"] == "file"
    assert params["objectCount"] == "1"
    assert params["sizeKey"] == str(len(MEMBER_CSV))
    assert params["recordCount"] == "3"
    assert params["averageRecordSize"] == str(len(MEMBER_CSV) // 3)
    assert params[cat.P_ENCODING] == "utf-8"

    # Explained: per column the inferred type and why, plus the header decision.
    columns = {c.name: c for c in report.columns}
    assert "leading zeros" in columns["school_code"].reason
    assert columns["score"].inferred_type == "decimal(4,2)"
    assert report.header_reason.startswith("header:")
    assert (report.rows, report.files, report.bytes) == (3, 1, len(MEMBER_CSV))
    assert (
        "| school_code | string | string | - | string: 3 of 3 values have leading zeros"
        in cat.explain_columns(report.columns)
    )


def test_headerless_file_takes_the_configured_names(landing, glue):
    landing.put("psy_ord_class/PSY_ORD_CLASS_202508291511.csv", b"1,00012,3,A-1\n2,00013,3,A-2\n")
    config = _config(header="absent", columns=["class_id", "school_code", "grade", "class_name"])
    crawl_table(landing, glue, "psy_ord_class", config)
    entry = glue.get_table("psy_ord_class")
    assert _types(entry) == {
        "class_id": "int",
        "school_code": "string",
        "grade": "int",
        "class_name": "string",
    }
    assert entry["Parameters"]["skip.header.line.count"] == "0"
    assert entry["Parameters"]["recordCount"] == "2"


def test_headerless_file_without_names_gets_numbered_columns(landing, glue):
    landing.put("t/x.csv", b"1,2024-01-01\n2,2024-01-02\n")
    crawl_table(landing, glue, "t", _config(header="absent"))
    assert list(_types(glue.get_table("t"))) == ["col_1", "col_2"]


def test_all_string_file_with_a_header_is_detected(landing, glue):
    landing.put(
        "t/x.csv", b"NAME,CITY,NICKNAME\nKim Minsu,Seoul,minsu\nLee Jiwoo,Busan,jw\nPark Hana,Incheon,hana\n"
    )
    report = crawl_table(landing, glue, "t", _config())
    entry = glue.get_table("t")
    assert _types(entry) == {"name": "string", "city": "string", "nickname": "string"}
    assert entry["Parameters"]["skip.header.line.count"] == "1"
    assert entry["Parameters"]["recordCount"] == "3"
    assert "identifier-like names" in report.header_reason


def test_forced_header_present_for_a_single_name_like_row(landing, glue):
    landing.put("t/x.csv", b"alpha,beta\ngamma,delta\n")
    crawl_table(landing, glue, "t", _config(header="present"))
    entry = glue.get_table("t")
    assert list(_types(entry)) == ["alpha", "beta"] and entry["Parameters"]["recordCount"] == "1"


def test_leading_zero_codes_stay_strings_and_empty_fields_are_nulls(landing, glue):
    landing.put("t/x.csv", b"zip,qty,note\n01234,1,\n00501,,x\n90210,3,\n")
    report = crawl_table(landing, glue, "t", _config())
    assert _types(glue.get_table("t")) == {"zip": "string", "qty": "int", "note": "string"}
    qty = next(c for c in report.columns if c.name == "qty")
    assert "(1 empty)" in qty.reason


def test_every_glue_type_over_all_rows(landing, glue):
    rows = [b"big,small,ratio,amount,flag,on_day,at,text"]
    rows += [
        f"{i},{i},{i}.5e0,{i}.25,true,2024-01-{i % 28 + 1:02d},2024-01-01 00:00:{i % 60:02d},t{i}".encode()
        for i in range(1, 3000)
    ]
    rows.append(
        b"9000000000,7,1.5,12345.678,false,2024-12-31,2024-12-31,last"
    )  # the last row widens two types
    landing.put("t/x.csv", b"\n".join(rows) + b"\n")
    crawl_table(landing, glue, "t", _config())
    assert _types(glue.get_table("t")) == {
        "big": "bigint",
        "small": "int",
        "ratio": "double",
        "amount": "decimal(8,3)",
        "flag": "boolean",
        "on_day": "date",
        "at": "timestamp",
        "text": "string",
    }


def test_cp949_is_detected_and_recorded(landing, glue):
    body = "학교코드,학교명,학생수\r\n00001,서울고등학교,812\r\n00002,부산중학교,640\r\n".encode("cp949")
    landing.put("school_info/SCHOOL_INFO_202508291511.csv", body)
    report = crawl_table(landing, glue, "school_info", _config())
    entry = glue.get_table("school_info")
    assert entry["Parameters"][cat.P_ENCODING] == "cp949"
    assert entry["StorageDescriptor"]["SerdeInfo"]["Parameters"]["serialization.encoding"] == "MS949"
    assert _types(entry) == {"학교코드": "string", "학교명": "string", "학생수": "int"}
    assert entry["Parameters"]["recordCount"] == "2"
    assert report.format.encoding == "cp949" and not report.problems
    assert cat.columns_of(entry)[1].max_length == 6  # characters, not bytes


def test_bom_and_crlf(landing, glue):
    body = "\ufeffID,NAME\r\n1,김민수\r\n2,이지우\r\n".encode()
    landing.put("t/x.csv", body)
    report = crawl_table(landing, glue, "t", _config())
    entry = glue.get_table("t")
    assert _types(entry) == {"id": "int", "name": "string"}  # no BOM in the first name
    assert entry["Parameters"][cat.P_ENCODING] == "utf-8-sig"
    assert entry["Parameters"][cat.P_LINE_TERMINATOR] == '"\\r\\n"'
    assert "serialization.encoding" not in entry["StorageDescriptor"]["SerdeInfo"]["Parameters"]
    assert report.format.line_terminator == "\r\n" and entry["Parameters"]["recordCount"] == "2"


def test_quoted_commas_and_newlines_choose_open_csv_serde(landing, glue):
    body = b'id,comment,city\n1,"Hello, world",Seoul\n2,"two\nlines",Busan\n3,plain,Daegu\n'
    landing.put("t/x.csv", body)
    crawl_table(landing, glue, "t", _config())
    entry = glue.get_table("t")
    serde = entry["StorageDescriptor"]["SerdeInfo"]
    assert serde == {
        "SerializationLibrary": cat.OPEN_CSV_SERDE,
        "Parameters": {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\\"},
    }
    assert entry["Parameters"]["areColumnsQuoted"] == "true"
    assert entry["Parameters"]["recordCount"] == "3"  # the quoted newline is no record of its own
    assert list(_types(entry)) == ["id", "comment", "city"]


@pytest.mark.parametrize("delimiter", [b"|", b"\t", b";"])
def test_other_delimiters(landing, glue, delimiter):
    body = delimiter.join([b"r_regionkey", b"r_name"]) + b"\n" + delimiter.join([b"0", b"AFRICA"]) + b"\n"
    landing.put("region/x.tbl", body)
    crawl_table(landing, glue, "region", _config())
    entry = glue.get_table("region")
    assert entry["Parameters"]["delimiter"] == delimiter.decode()
    assert entry["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": delimiter.decode()}
    assert _types(entry) == {"r_regionkey": "int", "r_name": "string"}


def test_gzip(landing, glue):
    landing.put("member/MEMBER_202508291511.csv.gz", gzip.compress(MEMBER_CSV))
    crawl_table(landing, glue, "member", _config())
    entry = glue.get_table("member")
    assert entry["Parameters"]["compressionType"] == "gzip"
    assert entry["StorageDescriptor"]["Compressed"] is True
    assert entry["Parameters"]["recordCount"] == "3"
    assert _types(entry)["score"] == "decimal(4,2)"


def test_files_with_different_columns_are_unioned(landing, glue):
    landing.put("t/a.csv", b"id,name\n1,a\n2,b\n")
    landing.put("t/b.csv", b"id,name,score\n3,c,1.5\n")
    report = crawl_table(landing, glue, "t", _config())
    assert _types(glue.get_table("t")) == {"id": "int", "name": "string", "score": "decimal(2,1)"}
    assert glue.get_table("t")["Parameters"]["recordCount"] == "3"
    assert "missing from 1 of 2 files" in next(c for c in report.columns if c.name == "score").reason


def test_types_widen_across_files(landing, glue):
    landing.put("t/a.csv", b"id,v\n1,1\n")
    landing.put("t/b.csv", b"id,v\n3000000000,2.5\n")
    crawl_table(landing, glue, "t", _config())
    assert _types(glue.get_table("t")) == {"id": "bigint", "v": "decimal(11,1)"}


# ------------------------------------------------------------------------------------------ partitions


def test_hive_partitions_become_partition_keys_and_registered_partitions(landing, glue):
    landing.put("events/dt=2024-01-01/region=kr/a.csv", b"id,amount\n1,10\n2,20\n")
    landing.put("events/dt=2024-01-01/region=us/a.csv", b"id,amount\n3,30\n")
    landing.put("events/dt=2024-01-02/region=kr/a.csv", b"id,amount\n4,40\n5,50\n6,60\n")
    landing.put("events/dt=2024-01-02/region=kr/b.csv", b"id,amount\n7,70\n")
    landing.put("events/dt=2024-01-02/region=kr/_SUCCESS", b"")
    report = crawl_table(landing, glue, "events", _config())

    entry = glue.get_table("events")
    assert entry["PartitionKeys"] == [{"Name": "dt", "Type": "string"}, {"Name": "region", "Type": "string"}]
    assert _types(entry) == {"id": "int", "amount": "int"}  # partition keys are no data columns
    assert entry["Parameters"]["recordCount"] == "7"
    partitions = {tuple(p["Values"]): p for p in glue.partitions("events")}
    assert set(partitions) == {("2024-01-01", "kr"), ("2024-01-01", "us"), ("2024-01-02", "kr")}
    kr2 = partitions[("2024-01-02", "kr")]
    assert kr2["StorageDescriptor"]["Location"] == f"s3://{landing.bucket}/events/dt=2024-01-02/region=kr/"
    assert kr2["Parameters"]["recordCount"] == "4" and kr2["Parameters"]["objectCount"] == "2"
    assert kr2["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == cat.LAZY_SIMPLE_SERDE
    assert [c["Name"] for c in kr2["StorageDescriptor"]["Columns"]] == ["id", "amount"]
    assert report.partitions_added == 3

    again = crawl_table(landing, glue, "events", _config())
    assert (again.action, again.partitions_added, again.partitions_updated) == ("unchanged", 0, 0)

    landing.put("events/dt=2024-01-03/region=kr/a.csv", b"id,amount\n8,80\n")
    third = crawl_table(landing, glue, "events", _config())
    assert third.partitions_added == 1 and third.partitions_updated == 0
    assert len(glue.partitions("events")) == 4
    assert glue.get_table("events")["Parameters"]["recordCount"] == "8"


def test_partition_values_are_url_decoded_and_locations_kept_as_stored(landing, glue):
    landing.put("t/city=%EC%84%9C%EC%9A%B8/a.csv", b"id\n1\n")
    crawl_table(landing, glue, "t", _config())
    (partition,) = glue.partitions("t")
    assert partition["Values"] == ["서울"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://{landing.bucket}/t/city=%EC%84%9C%EC%9A%B8/"


def test_a_file_outside_the_partition_layout_is_reported_and_left_out(landing, glue):
    landing.put("t/dt=1/a.csv", b"id\n1\n")
    landing.put("t/dt=2/a.csv", b"id\n2\n")
    landing.put("t/stray.csv", b"id\n3\n")
    report = crawl_table(landing, glue, "t", _config())
    assert "differ from the table's (dt)" in report.problems["t/stray.csv"][0]
    assert glue.get_table("t")["Parameters"]["recordCount"] == "2"


@pytest.mark.parametrize(
    "behavior, left",
    [
        ("LOG", {("1",), ("2",)}),
        ("DEPRECATE_IN_DATABASE", {("1",), ("2",)}),
        ("DELETE_FROM_DATABASE", {("1",)}),
    ],
)
def test_vanished_partitions_follow_the_delete_behavior(landing, glue, behavior, left):
    config = _config(schema_change={"delete_behavior": behavior})
    landing.put("t/dt=1/a.csv", b"id\n1\n")
    landing.put("t/dt=2/a.csv", b"id\n2\n")
    crawl_table(landing, glue, "t", config)
    landing.delete("t/dt=2/a.csv")
    report = crawl_table(landing, glue, "t", config)
    partitions = {tuple(p["Values"]): p for p in glue.partitions("t")}
    assert set(partitions) == left
    if behavior == "DEPRECATE_IN_DATABASE":
        assert partitions[("2",)]["Parameters"][cat.DEPRECATED] == "true"
        assert cat.DEPRECATED not in partitions[("1",)]["Parameters"]
    assert any("partition(s) no longer in S3" in n for n in report.notes)


# ------------------------------------------------------------------------------------------ schema change policy


def _recrawl_with_a_new_column(landing, glue, behavior: str):
    config = _config(schema_change={"update_behavior": behavior})
    landing.put("t/a.csv", b"id,qty\n1,5\n2,6\n")
    crawl_table(landing, glue, "t", config)
    landing.put("t/b.csv", b"id,qty,color\n3,7.5,red\n")  # qty widens to decimal, color is new
    return crawl_table(landing, glue, "t", config)


def test_update_in_database_takes_the_new_schema(landing, glue):
    report = _recrawl_with_a_new_column(landing, glue, "UPDATE_IN_DATABASE")
    assert report.action == "updated"
    assert _types(glue.get_table("t")) == {"id": "int", "qty": "decimal(11,1)", "color": "string"}
    assert report.diff.added == ("color",) and report.diff.retyped == (("qty", "int", "decimal(11,1)"),)
    assert _versions(glue, "t") == 2
    assert glue.get_table("t")["Parameters"]["recordCount"] == "3"


def test_merge_new_columns_adds_columns_and_keeps_old_types(landing, glue):
    report = _recrawl_with_a_new_column(landing, glue, "MERGE_NEW_COLUMNS")
    assert report.action == "updated"
    assert _types(glue.get_table("t")) == {"id": "int", "qty": "int", "color": "string"}
    assert any("kept qty: int" in n for n in report.notes)
    assert glue.get_table("t")["Parameters"]["recordCount"] == "3"


def test_log_leaves_the_table_unchanged(landing, glue):
    report = _recrawl_with_a_new_column(landing, glue, "LOG")
    assert report.action == "logged"
    entry = glue.get_table("t")
    assert _types(entry) == {"id": "int", "qty": "int"}
    assert entry["Parameters"]["recordCount"] == "2"
    assert _versions(glue, "t") == 1
    assert report.diff.added == ("color",)


def test_merge_new_columns_never_drops_a_column(landing, glue):
    config = _config(schema_change={"update_behavior": "MERGE_NEW_COLUMNS"})
    landing.put("t/a.csv", b"id,old\n1,x\n")
    crawl_table(landing, glue, "t", config)
    landing.delete("t/a.csv")
    landing.put("t/b.csv", b"id,new\n2,y\n")
    crawl_table(landing, glue, "t", config)
    assert list(_types(glue.get_table("t"))) == ["id", "old", "new"]


@pytest.mark.parametrize("behavior", ["LOG", "DEPRECATE_IN_DATABASE", "DELETE_FROM_DATABASE"])
def test_a_table_whose_files_are_gone_follows_the_delete_behavior(landing, glue, behavior):
    config = _config(schema_change={"delete_behavior": behavior})
    landing.put("t/a.csv", b"id\n1\n")
    crawl_table(landing, glue, "t", config)
    landing.delete("t/a.csv")
    report = crawl_table(landing, glue, "t", config)
    entry = glue.get_table("t")
    if behavior == "DELETE_FROM_DATABASE":
        assert report.action == "deleted" and entry is None
        return
    if behavior == "LOG":
        assert report.action == "logged" and cat.DEPRECATED not in entry["Parameters"]
        assert _versions(glue, "t") == 1
        return
    assert report.action == "deprecated" and entry["Parameters"][cat.DEPRECATED] == "true"
    assert _versions(glue, "t") == 2
    crawl_table(landing, glue, "t", config)
    assert _versions(glue, "t") == 2  # marked once
    landing.put("t/a.csv", b"id\n1\n2\n")
    back = crawl_table(landing, glue, "t", config)
    assert back.action == "updated" and cat.DEPRECATED not in glue.get_table("t")["Parameters"]


# ------------------------------------------------------------------------------------------ overrides, hand edits, versions


def test_overrides_survive_every_recrawl(landing, glue):
    config = _config(
        header="absent",
        columns=["class_id", "school_code", "grade", "phone"],
        renames={"grade": "grade_no"},
        force_string=["phone"],
        types={"class_id": "bigint"},
        schema_change={"update_behavior": "UPDATE_IN_DATABASE"},
    )
    landing.put("c/a.csv", b"1,00012,3,1012345678\n2,00013,4,1098765432\n")
    crawl_table(landing, glue, "c", config)
    expected = {"class_id": "bigint", "school_code": "string", "grade_no": "int", "phone": "string"}
    assert _types(glue.get_table("c")) == expected
    landing.put("c/b.csv", b"3,00014,5,1012345678\n")
    report = crawl_table(landing, glue, "c", config)
    assert report.action == "updated"  # recordCount changed
    entry = glue.get_table("c")
    assert _types(entry) == expected and entry["Parameters"]["recordCount"] == "3"
    columns = {c.name: c for c in cat.columns_of(entry)}
    assert (columns["phone"].override, columns["phone"].inferred_type) == (
        "forced to string by registry",
        "int",
    )
    assert (columns["class_id"].override, columns["class_id"].inferred_type) == (
        "type set by registry",
        "int",
    )
    assert columns["grade_no"].source_name == "grade"


def test_overrides_are_reapplied_with_merge_new_columns(landing, glue):
    landing.put("t/a.csv", b"id,code\n1,5\n")
    crawl_table(landing, glue, "t", _config(schema_change={"update_behavior": "MERGE_NEW_COLUMNS"}))
    assert _types(glue.get_table("t"))["code"] == "int"
    config = _config(force_string=["code"], schema_change={"update_behavior": "MERGE_NEW_COLUMNS"})
    crawl_table(landing, glue, "t", config)
    assert _types(glue.get_table("t"))["code"] == "string"


def test_table_versions_only_on_change(landing, glue):
    landing.put("t/a.csv", b"id,v\n1,a\n")
    first = crawl_table(landing, glue, "t", _config())
    assert _versions(glue, "t") == 1 and first.version == "1"
    same = crawl_table(landing, glue, "t", _config(), use_cache=False)
    assert same.action == "unchanged" and _versions(glue, "t") == 1
    landing.put("t/b.csv", b"id,v\n2,b\n")
    changed = crawl_table(landing, glue, "t", _config())
    assert changed.action == "updated" and _versions(glue, "t") == 2 and changed.version == "2"
    assert crawl_table(landing, glue, "t", _config()).action == "unchanged" and _versions(glue, "t") == 2


def test_hand_added_fields_survive_a_recrawl(landing, glue):
    landing.put("t/a.csv", b"id,name\n1,a\n")
    crawl_table(landing, glue, "t", _config(description="From the registry"))
    entry = glue.get_table("t")
    assert entry["Description"] == "From the registry"

    edited = cat.as_table_input(entry)
    edited["Description"] = "Curated by the data team"
    edited["Parameters"]["owner_team"] = "growth"
    edited["StorageDescriptor"]["SerdeInfo"]["Parameters"]["serialization.null.format"] = ""
    edited["StorageDescriptor"]["Columns"][0]["Comment"] = "Member number, never reused"
    edited["StorageDescriptor"]["Columns"][0]["Parameters"]["pii"] = "false"
    glue.update_table(edited)

    landing.put("t/b.csv", b"id,name,extra\n2,b,x\n")
    report = crawl_table(landing, glue, "t", _config(description="From the registry"))
    assert report.action == "updated"
    entry = glue.get_table("t")
    assert entry["Description"] == "Curated by the data team"
    assert entry["Parameters"]["owner_team"] == "growth"
    assert entry["Parameters"]["recordCount"] == "2"
    assert "serialization.null.format" in entry["StorageDescriptor"]["SerdeInfo"]["Parameters"]
    first = entry["StorageDescriptor"]["Columns"][0]
    assert first["Comment"] == "Member number, never reused" and first["Parameters"]["pii"] == "false"
    assert [c["Name"] for c in entry["StorageDescriptor"]["Columns"]] == ["id", "name", "extra"]
    assert crawl_table(landing, glue, "t", _config()).action == "unchanged"


# ------------------------------------------------------------------------------------------ bad input


def test_bad_files_are_reported_and_the_good_ones_make_the_entry(landing, glue):
    landing.put("t/good.csv", b"id,name\n1,a\n2,b\n3,c\n")
    landing.put("t/empty.csv", b"")
    landing.put("t/header_only.csv", b"id,name\n")
    landing.put("t/ragged.csv", b"id,name\n4,d\n5,e,extra\n6,f\n")
    landing.put("t/undecodable.csv", b"id,name\n7,caf\xc3\n8,h\n")
    landing.put("t/broken.csv.gz", b"\x1f\x8b\x08\x00garbage")
    report = crawl_table(landing, glue, "t", _config())

    entry = glue.get_table("t")
    assert _types(entry) == {"id": "int", "name": "string"}
    assert entry["Parameters"]["objectCount"] == "5"  # the unreadable file is named, not counted
    # The ragged row and the undecodable one are records too: the loaders quarantine them.
    assert entry["Parameters"]["recordCount"] == str(3 + 3 + 2)
    assert entry["Parameters"][cat.P_RAGGED_ROWS] == "1"
    assert report.problems["t/empty.csv"] == ["empty file"]
    assert report.problems["t/header_only.csv"] == ["header only"]
    assert report.problems["t/ragged.csv"] == ["1 ragged row (first at line 3: expected 2 fields, got 3)"]
    assert report.problems["t/undecodable.csv"][0].startswith("line 2: bytes not valid utf-8")
    assert report.undecodable_rows == 1
    assert "gzip" in " ".join(report.problems["t/broken.csv.gz"])
    assert list(report.unreadable) == ["t/broken.csv.gz"]
    assert "t/good.csv" not in report.problems
    assert report.bad_rows == 1


def test_ragged_rows_count_as_records_of_the_table_and_their_partition(landing, glue):
    """recordCount is every data record, so that it equals what the loaders load plus what they
    quarantine (a ragged row is quarantined); sf.ragged_rows says how many of them are ragged."""
    landing.put("t/dt=1/a.csv", b"id,name\n1,a\n2,b,extra\n3,c\n4\n")
    landing.put("t/dt=2/a.csv", b"id,name\n5,e\n")
    report = crawl_table(landing, glue, "t", _config())

    assert (report.rows, report.bad_rows) == (5, 2)
    assert report.problems["t/dt=1/a.csv"] == ["2 ragged rows (first at line 3: expected 2 fields, got 3)"]
    params = glue.get_table("t")["Parameters"]
    assert (params["recordCount"], params[cat.P_RAGGED_ROWS]) == ("5", "2")
    partitions = {tuple(p["Values"]): p["Parameters"] for p in glue.partitions("t")}
    assert (partitions[("1",)]["recordCount"], partitions[("1",)][cat.P_RAGGED_ROWS]) == ("4", "2")
    assert partitions[("2",)]["recordCount"] == "1" and cat.P_RAGGED_ROWS not in partitions[("2",)]

    # The file fixed: the count of ragged rows goes, from the table and the partition.
    landing.put("t/dt=1/a.csv", b"id,name\n1,a\n3,c\n")
    report = crawl_table(landing, glue, "t", _config())
    assert (report.action, report.rows, report.bad_rows, report.partitions_updated) == ("updated", 3, 0, 1)
    params = glue.get_table("t")["Parameters"]
    assert params["recordCount"] == "3" and cat.P_RAGGED_ROWS not in params
    (fixed,) = [p["Parameters"] for p in glue.partitions("t") if p["Values"] == ["1"]]
    assert fixed["recordCount"] == "2" and cat.P_RAGGED_ROWS not in fixed


def test_only_unreadable_files_write_nothing(landing, glue):
    landing.put("t/empty.csv", b"")
    report = crawl_table(landing, glue, "t", _config())
    assert report.action == "unreadable" and glue.get_table("t") is None
    assert report.problems == {"t/empty.csv": ["empty file"]}


def test_unreadable_files_never_delete_an_entry(landing, glue):
    config = _config(schema_change={"delete_behavior": "DELETE_FROM_DATABASE"})
    landing.put("t/a.csv", b"id\n1\n")
    crawl_table(landing, glue, "t", config)
    landing.put("t/a.csv", b"")
    report = crawl_table(landing, glue, "t", config)
    assert report.action == "unreadable" and glue.get_table("t") is not None


def test_a_file_in_another_format_is_reported(landing, glue):
    landing.put("t/a.csv", b"id,name\n1,a\n")
    landing.put("t/b.csv", b"id,name\n2,b\n")
    landing.put("t/c.csv", b"id|name\n3|c\n")
    report = crawl_table(landing, glue, "t", _config())
    assert report.problems["t/c.csv"] == ["format differs from the table's: delimiter '|' (table ',')"]


def test_a_10_mb_field_is_counted_with_its_whole_file(landing, glue):
    """A field far beyond the read block: every row of the file is counted, never 1 of 3."""
    landing.put("t/big.csv", b"id,body\n1,a\n2," + b"x" * (10 << 20) + b"\n3,c\n")
    report = crawl_table(landing, glue, "t", _config())
    assert (report.rows, report.problems, report.unreadable) == (3, {}, {})
    entry = glue.get_table("t")
    assert entry["Parameters"]["recordCount"] == "3" and _types(entry) == {"id": "int", "body": "string"}


def test_a_quoted_multi_line_value_longer_than_a_block_is_read_again_from_s3(landing, glue):
    value = ("y" * 99 + "\n") * ((10 << 20) // 100)  # line breaks inside quotes, over two 4 MiB blocks
    landing.put("t/q.csv", b'id,body\n1,a\n2,"' + value.encode() + b'"\n3,c\n')
    report = crawl_table(landing, glue, "t", _config())
    assert (report.rows, report.unreadable) == (3, {})
    assert glue.get_table("t")["Parameters"]["recordCount"] == "3"


def test_unreadable_files_are_listed_and_retried_only_when_the_failure_may_pass(landing, glue):
    landing.put("t/a.csv", b"id\n1\n2\n")
    landing.put("t/cut.csv.gz", gzip.compress(b"id\n" + b"3\n" * 100_000)[:200])
    report = crawl_table(landing, glue, "t", _config())
    assert list(report.unreadable) == ["t/cut.csv.gz"] and report.unreadable["t/cut.csv.gz"].startswith("gzip")
    assert (report.files, report.rows) == (1, 2)
    # A truncated gzip stays truncated: its verdict is cached with its ETag like any profile.
    again = crawl_table(landing, glue, "t", _config())
    assert again.profiles_reused == 2 and again.unreadable == report.unreadable


def test_the_registry_encoding_replaces_sniffing_and_is_part_of_the_cache_key(landing, glue):
    landing.put("t/a.csv", "id,name\n1,Gruyère\n".encode("latin-1"))
    sniffed = crawl_table(landing, glue, "t", _config())
    assert sniffed.undecodable_rows == 1 and sniffed.problems["t/a.csv"][0].startswith("line 2: bytes not valid")
    named = crawl_table(landing, glue, "t", _config(encoding="latin-1"))
    assert (named.profiles_reused, named.undecodable_rows, named.problems) == (0, 0, {})
    assert named.format.encoding == "iso8859-1"


# ------------------------------------------------------------------------------------------ the profile cache


def test_a_changed_file_is_profiled_again(landing, glue):
    landing.put("t/a.csv", b"id,v\n1,1\n")
    landing.put("t/b.csv", b"id,v\n2,2\n")
    crawl_table(landing, glue, "t", _config())
    landing.put("t/b.csv", b"id,v\n2,2.5\n3,3\n")
    report = crawl_table(landing, glue, "t", _config())
    assert report.profiles_reused == 1
    entry = glue.get_table("t")
    assert entry["Parameters"]["recordCount"] == "3" and _types(entry)["v"] == "decimal(11,1)"
    assert landing.head(f"{PROFILE_CACHE_ROOT}/t/profiles.json") is not None


def test_the_cache_is_not_used_across_registry_header_settings(landing, glue):
    landing.put("t/a.csv", b"a,b\nc,d\n")
    crawl_table(landing, glue, "t", _config(header="absent"))
    report = crawl_table(landing, glue, "t", _config(header="present"))
    assert report.profiles_reused == 0
    assert glue.get_table("t")["Parameters"]["recordCount"] == "1"


def test_a_corrupt_cache_is_ignored(landing, glue):
    landing.put("t/a.csv", b"id\n1\n")
    landing.put(f"{PROFILE_CACHE_ROOT}/t/profiles.json", b"{not json")
    report = crawl_table(landing, glue, "t", _config())
    assert report.profiles_reused == 0 and glue.get_table("t")["Parameters"]["recordCount"] == "1"


def test_gzip_body_is_streamed_not_buffered(landing, glue):
    # A bigger gzip file read in several blocks: the count must still be exact.
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as f:
        f.write(b"id,v\n")
        for i in range(200_000):
            f.write(f"{i},{i % 7}\n".encode())
    landing.put("t/big.csv.gz", out.getvalue())
    crawl_table(landing, glue, "t", _config())
    assert glue.get_table("t")["Parameters"]["recordCount"] == "200000"


# ------------------------------------------------------------------------------------------ the assets


def test_the_assets_materialize_with_explained_metadata(landing, glue):
    import dagster as dg

    from sf_platform.assets.catalog import CrawlHop
    from sf_platform.assets.landing import OrganizeHop
    from sf_platform.assets.names import glue_key, s3_key
    from sf_platform.assets.tables import build_hop_assets

    registry = parse_registry({"tables": {"member": {}}})
    landing.put("MEMBER_202508291511.csv", MEMBER_CSV)
    landing.put("README.md", b"read me")
    landing.put("orphan/x.csv", b"a\n1\n")
    step = build_hop_assets("ingest", [OrganizeHop(registry), CrawlHop(glue.database)], registry)
    result = dg.materialize([step], resources={"landing": landing, "glue": glue})
    assert result.success

    def metadata(key):
        (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        return event.materialization.metadata

    organized = metadata(s3_key("member"))
    assert organized["files_moved_this_run"].value == 1
    assert organized["bytes_moved_this_run"].value == len(MEMBER_CSV)
    assert organized["left_in_place"].data == {"README.md": "name does not match the loose-file pattern"}
    assert organized["unregistered_tables"].data == ["orphan"]

    crawled = metadata(glue_key(glue.database, "member"))
    assert crawled["dagster/row_count"].value == 3
    assert crawled["action"].text == "created" and crawled["table_version"].text == "1"
    assert crawled["encoding"].text == "utf-8" and crawled["header"].text.startswith("header:")
    assert (crawled["files"].value, crawled["bytes"].value) == (1, len(MEMBER_CSV))
    schema = crawled["dagster/column_schema"].schema
    assert [(c.name, c.type) for c in schema.columns][:3] == [
        ("member_id", "int"),
        ("member_name", "string"),
        ("school_code", "string"),
    ]
    assert "leading zeros" in schema.columns[2].description
    assert (
        "| score | decimal(4,2) | decimal(4,2) | - | decimal(4,2): all 3 non-null values"
        in crawled["columns_explained"].md_str
    )


# ------------------------------------------------------------------------------------------ tolerant typing


def _with_misfits(first: int) -> bytes:
    """100 rows whose n is an integer but for one 'N/A' (1 %)."""
    rows = [f"{i},{'N/A' if i == first + 50 else i},d{i}" for i in range(first, first + 100)]
    return ("id,n,note\n" + "\n".join(rows) + "\n").encode()


def test_the_registry_type_tolerance_decides_over_every_file_of_the_table(landing, glue):
    landing.put("tol/a.csv", _with_misfits(1))
    landing.put("tol/b.csv", _with_misfits(101))  # 2 of 200 values across the files: 1 %
    crawl_table(landing, glue, "tol", _config())  # default type_tolerance: 0.01
    columns = {c.name: c for c in cat.columns_of(glue.get_table("tol"))}
    assert columns["n"].type == "int"
    assert columns["n"].reason.startswith(
        "int: 2 of 200 values (1 %) did not fit and are quarantined: 'N/A'; all 2 files with values agree"
    )
    assert glue.get_table("tol")["StorageDescriptor"]["Columns"][1]["Comment"].startswith("int: 2 of 200 values")

    crawl_table(landing, glue, "tol", _config(type_tolerance=0.005))
    strict = {c.name: c for c in cat.columns_of(glue.get_table("tol"))}
    assert strict["n"].type == "string"
    assert strict["n"].reason == (
        "string: 2 of 200 values across 2 files are not numbers (e.g. 'N/A'); 1 % is more than the type_tolerance of 0.5 %"
    )


def test_force_string_and_registry_types_win_over_tolerant_typing(landing, glue):
    landing.put("tol/a.csv", _with_misfits(1) + b"".join(b"%d,%d,x\n" % (i, i) for i in range(200, 400)))
    crawl_table(landing, glue, "tol", _config(force_string=["n"]))
    assert _types(glue.get_table("tol"))["n"] == "string"
    crawl_table(landing, glue, "tol", _config(types={"n": "decimal(10,2)"}))
    columns = {c.name: c for c in cat.columns_of(glue.get_table("tol"))}
    assert (columns["n"].type, columns["n"].override, columns["n"].inferred_type) == (
        "decimal(10,2)", "type set by registry", "int",
    )
