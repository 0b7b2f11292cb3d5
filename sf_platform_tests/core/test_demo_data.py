"""The demo data set: deterministic files in the shape of the real export."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from sf_platform.core import demo_data
from sf_platform.core.naming import DEFAULT_LOOSE_FILE_PATTERN, classify_loose_key
from sf_platform.core.registry import load_registry

FILES = demo_data.generate()
BY_KEY = {f.key: f for f in FILES}
REPO_TABLES = Path(__file__).resolve().parents[2] / "tables.yaml"

# How each demo file is written: (encoding, delimiter, line terminator, has header)
LAYOUT = {
    "MEMBER_202508291511.csv": ("utf-8", ",", "\n", True),
    "MEMBER_202508301200.csv": ("utf-8", ",", "\n", True),
    "SCHOOL_INFO_202508291511.csv": ("cp949", ",", "\r\n", True),
    "PSY_ORD_CLASS_202508291511.csv": ("utf-8", ",", "\n", False),
    "PSY_TARGET_DETAIL_202508291511.csv": ("utf-8-sig", ",", "\r\n", True),
    "REGION_202508291511.csv": ("utf-8", "|", "\n", True),
}


def _rows(key: str) -> list[list[str]]:
    encoding, delimiter, _, _ = LAYOUT[key]
    text = BY_KEY[key].body.decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _records(key: str) -> list[dict[str, str]]:
    header, *rows = _rows(key)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_the_expected_files_in_upload_order():
    assert list(BY_KEY) == list(LAYOUT)


def test_generation_is_deterministic():
    again = demo_data.generate()
    assert [(f.key, f.table, f.rows) for f in again] == [(f.key, f.table, f.rows) for f in FILES]
    assert [f.body for f in again] == [f.body for f in FILES]


def test_another_seed_gives_other_data_with_the_same_shape():
    other = demo_data.generate(seed=1)
    assert [f.key for f in other] == [f.key for f in FILES]
    assert [f.rows for f in other] == [f.rows for f in FILES]
    assert [f.body for f in other] != [f.body for f in FILES]


@pytest.mark.parametrize("demo", FILES, ids=lambda f: f.key)
def test_names_match_the_loose_file_pattern(demo):
    assert classify_loose_key(demo.key, DEFAULT_LOOSE_FILE_PATTERN).table == demo.table
    registry = load_registry(REPO_TABLES)
    assert classify_loose_key(demo.key, registry.landing.loose_file_pattern).table == demo.table
    assert demo.table in registry.tables


def test_one_two_and_three_word_table_names():
    words = {len(f.table.split("_")) for f in FILES}
    assert {1, 2, 3} <= words


@pytest.mark.parametrize("demo", FILES, ids=lambda f: f.key)
def test_row_counts_match(demo):
    has_header = LAYOUT[demo.key][3]
    assert len(_rows(demo.key)) - has_header == demo.rows
    assert demo.rows > 0


@pytest.mark.parametrize("demo", FILES, ids=lambda f: f.key)
def test_line_terminators(demo):
    terminator = LAYOUT[demo.key][2]
    text = demo.body.decode(LAYOUT[demo.key][0])
    assert text.endswith(terminator)
    if terminator == "\n":
        assert "\r" not in text
    else:
        assert text.count("\r\n") == text.count("\n")


def test_cp949_file_is_cp949_and_not_utf8():
    body = BY_KEY["SCHOOL_INFO_202508291511.csv"].body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("cp949")
    assert text.startswith("SCHOOL_CODE,SCHOOL_NAME,REGION,FOUNDED_ON,PHONE\r\n")
    assert re.search("[가-힣]", text)


def test_bom_file_starts_with_a_utf8_bom():
    body = BY_KEY["PSY_TARGET_DETAIL_202508291511.csv"].body
    assert body.startswith(b"\xef\xbb\xbfTARGET_ID,")


def test_headerless_file_has_no_header_and_the_registry_names_its_columns():
    rows = _rows("PSY_ORD_CLASS_202508291511.csv")
    first = rows[0]
    assert first[0] == "1"  # a data row: class_id 1
    assert not set(first) & set(demo_data.PSY_ORD_CLASS_COLUMNS)
    assert all(len(r) == len(demo_data.PSY_ORD_CLASS_COLUMNS) for r in rows)
    config = load_registry(REPO_TABLES).table("psy_ord_class")
    assert config.header == "absent"
    assert config.columns == demo_data.PSY_ORD_CLASS_COLUMNS


def test_other_files_start_with_a_header():
    for key, (_, _, _, has_header) in LAYOUT.items():
        if has_header:
            header = _rows(key)[0]
            assert all(re.fullmatch(r"[A-Z_]+", name) for name in header), key


def test_school_codes_are_unique_seven_digit_codes_with_leading_zeros():
    codes = [r["SCHOOL_CODE"] for r in _records("SCHOOL_INFO_202508291511.csv")]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[0-9]{7}", c) for c in codes)
    assert any(c.startswith("0") for c in codes)


def test_references_between_files_hold():
    schools = {r["SCHOOL_CODE"] for r in _records("SCHOOL_INFO_202508291511.csv")}
    members = _records("MEMBER_202508291511.csv") + _records("MEMBER_202508301200.csv")
    member_ids = [r["MEMBER_ID"] for r in members]
    assert len(set(member_ids)) == len(member_ids)  # the second file appends new members
    assert {r["SCHOOL_CODE"] for r in members} <= schools
    assert {r[1] for r in _rows("PSY_ORD_CLASS_202508291511.csv")} <= schools
    assert {r["MEMBER_ID"] for r in _records("PSY_TARGET_DETAIL_202508291511.csv")} <= set(member_ids)


def test_empty_values_dates_and_timestamps_are_present():
    members = _records("MEMBER_202508291511.csv")
    assert any(r["EMAIL"] == "" for r in members)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["BIRTH_DATE"]) for r in members)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", r["JOINED_AT"]) for r in members)
    assert any(r["PHONE"] == "" for r in _records("SCHOOL_INFO_202508291511.csv"))


def test_detail_scores_and_passed_flags_agree():
    details = _records("PSY_TARGET_DETAIL_202508291511.csv")
    assert any(r["SCORE"] == "" for r in details)
    for r in details:
        if r["SCORE"] == "":
            assert r["PASSED"] == ""
        else:
            assert re.fullmatch(r"\d{1,3}\.\d{2}", r["SCORE"])
            assert r["PASSED"] == ("true" if float(r["SCORE"]) >= 60 else "false")
    remarks = {r["REMARK"] for r in details}
    assert 'note with "quotes"' in remarks and "성실함, 집중력 좋음" in remarks


def test_region_is_tpch_region():
    rows = _rows("REGION_202508291511.csv")
    assert rows[0] == ["R_REGIONKEY", "R_NAME", "R_COMMENT"]
    assert [tuple(r) for r in rows[1:]] == [(str(k), n, c) for k, n, c in demo_data.TPCH_REGION]
