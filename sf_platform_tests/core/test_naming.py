"""S3 key naming: loose landing files to tables, data keys, hive partitions."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core.identifiers import TABLE_NAME
from sf_platform.core.naming import (
    DEFAULT_LOOSE_FILE_PATTERN,
    classify_loose_key,
    is_data_key,
    partition_location,
    partition_values,
    table_of_key,
)


@pytest.mark.parametrize(
    "key, table",
    [
        ("PSY_ORD_CLASS_202508291511.csv", "psy_ord_class"),
        ("PSY_TARGET_DETAIL_202508291511.csv", "psy_target_detail"),
        ("MEMBER_202508291511.csv", "member"),
        ("SCHOOL_INFO_202508291511.csv", "school_info"),
        ("MEMBER_202508291511.csv.gz", "member"),
        ("MEMBER_202508291511.tsv", "member"),
        ("MEMBER_202508291511.txt", "member"),
        ("member_202508291511.csv", "member"),
        ("Member_V2_202508291511.csv", "member_v2"),
        ("MEMBER_2025_202508291511.csv", "member_2025"),  # the table is the whole prefix
        ("A_B_C_D_E_202508291511.csv", "a_b_c_d_e"),
    ],
)
def test_loose_files_go_to_the_table_named_by_their_prefix(key, table):
    match = classify_loose_key(key)
    assert (match.table, match.reason) == (table, "matched")
    assert match.destination == f"{table}/{key}"


@pytest.mark.parametrize(
    "key, reason",
    [
        ("MEMBER.csv", "does not match"),
        ("MEMBER_20250829.csv", "does not match"),
        ("MEMBER_20250829151.csv", "does not match"),  # 11-digit timestamp
        ("MEMBER_2025082915111.csv", "does not match"),  # 13 digits
        ("MEMBER_202508291511", "does not match"),
        ("MEMBER_202508291511.json", "does not match"),
        ("MEMBER_202508291511.csv.zip", "does not match"),
        ("MEM-BER_202508291511.csv", "does not match"),
        ("MEMBER _202508291511.csv", "does not match"),
        ("MEMBER__202508291511.csv", "does not match"),
        ("_MEMBER_202508291511.csv", "does not match"),
        ("1MEMBER_202508291511.csv", "does not match"),
        ("회원_202508291511.csv", "does not match"),
        ("MEMBER_202508291511.csv ", "does not match"),
        ("member/MEMBER_202508291511.csv", "not at the bucket root"),
        ("inbox/2025/MEMBER_202508291511.csv", "not at the bucket root"),
        ("MEMBER_202508291511.csv\n", "control characters"),
        ("MEM\rBER_202508291511.csv", "control characters"),
        ("X" * 65 + "_202508291511.csv", "not a valid table name"),
        ("MEMBER_202513011200.csv", "not a real YYYYMMDDHHMM"),  # month 13
        ("MEMBER_202502301200.csv", "not a real YYYYMMDDHHMM"),  # 30 February
        ("MEMBER_202508292460.csv", "not a real YYYYMMDDHHMM"),  # minute 60
    ],
)
def test_non_matching_keys_stay_put_with_a_reason(key, reason):
    match = classify_loose_key(key)
    assert match.table is None
    assert match.destination is None
    assert reason in match.reason


def test_a_custom_pattern_decides_the_table():
    pattern = r"^export-(?P<table>[a-z_]+)-\d{8}\.csv$"
    assert classify_loose_key("export-member-20250829.csv", pattern).table == "member"
    assert classify_loose_key("MEMBER_202508291511.csv", pattern).table is None


@given(
    st.lists(st.from_regex(r"[A-Z][A-Z0-9]{0,8}", fullmatch=True), min_size=1, max_size=4),
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.sampled_from(["csv", "tsv", "txt", "csv.gz"]),
)
def test_any_upper_case_table_name_with_a_timestamp_is_recognised(words, moment, ext):
    table = "_".join(words)
    ts = moment.strftime("%Y%m%d%H%M")
    match = classify_loose_key(f"{table}_{ts}.{ext}", DEFAULT_LOOSE_FILE_PATTERN)
    assert match.table == table.lower()
    assert TABLE_NAME.match(match.table)


@pytest.mark.parametrize(
    "key",
    ["member/MEMBER_202508291511.csv", "member/dt=2024-01-01/part-0.csv", "member/x.csv.gz", "member/x_.csv"],
)
def test_data_keys(key):
    assert is_data_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "member/",
        "member/dt=2024-01-01/",
        "member/_SUCCESS",
        "member/dt=2024-01-01/_SUCCESS",
        "member/_manifest.json",
        "member/.hidden.csv",
        "member/.part-0.csv.crc",
        "member/_committed_123",
        "member/_temporary/0/part-0.csv",
        "member/.spark-staging/part-0.csv",
        "member_$folder$",
        "member/dt=2024-01-01_$folder$",
    ],
)
def test_folder_markers_hidden_and_bookkeeping_files_are_not_data(key):
    assert not is_data_key(key)


def test_underscore_partition_folders_are_data():
    # As in Spark, "_name=value" is a partition folder, not a hidden one.
    assert is_data_key("member/_dt=2024/part-0.csv")


@pytest.mark.parametrize(
    "key, table",
    [
        ("member/x.csv", "member"),
        ("psy_ord_class/dt=1/x.csv", "psy_ord_class"),
        ("MEMBER_202508291511.csv", None),
        ("Member/x.csv", None),
        ("_quarantine/mysql/member/x.csv", None),
        ("member\n/x.csv", None),
    ],
)
def test_table_of_key(key, table):
    assert table_of_key(key) == table


@pytest.mark.parametrize("prefix", ["t/", "t"])
def test_partition_values_in_folder_order(prefix):
    values = partition_values("t/dt=2024-01-01/region=kr/f.csv", prefix)
    assert values == {"dt": "2024-01-01", "region": "kr"}
    assert list(values) == ["dt", "region"]


@pytest.mark.parametrize(
    "key, expected",
    [
        ("t/f.csv", {}),
        ("t/region=%EC%84%9C%EC%9A%B8/f.csv", {"region": "서울"}),
        ("t/name=a%2Fb%20c/f.csv", {"name": "a/b c"}),
        ("t/DT=2024/f.csv", {"dt": "2024"}),
        ("t/k=a=b/f.csv", {"k": "a=b"}),
        ("t/k=/f.csv", {"k": ""}),
        ("t/plain/dt=1/f.csv", {"dt": "1"}),  # folders that are not key=value are not partitions
        ("t/=x/f.csv", {}),
        ("t/dt=2024-01-01.csv", {}),  # the file name is never a partition
    ],
)
def test_partition_values(key, expected):
    assert partition_values(key, "t/") == expected


def test_a_custom_pattern_with_another_timestamp_format_is_not_second_guessed():
    pattern = r"^(?P<table>[a-z]+)-(?P<ts>\d{8})\.csv$"
    assert classify_loose_key("member-20250829.csv", pattern).table == "member"


@pytest.mark.parametrize(
    "key, location",
    [
        ("t/f.csv", "t/"),
        ("t/plain/f.csv", "t/"),
        ("t/dt=2024-01-01/f.csv", "t/dt=2024-01-01/"),
        ("t/dt=2024-01-01/region=kr/f.csv", "t/dt=2024-01-01/region=kr/"),
        ("t/dt=2024-01-01/sub/f.csv", "t/dt=2024-01-01/"),
        ("t/region=%EC%84%9C/f.csv", "t/region=%EC%84%9C/"),  # the folder as stored, not decoded
    ],
)
def test_partition_location_is_the_last_partition_folder(key, location):
    assert partition_location(key, "t/") == location
    assert partition_location(key, "t") == location
