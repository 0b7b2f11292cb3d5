"""Tests for sf_platform.core.inference: dialect, encoding, header and type inference on small in-memory files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import itertools
import json
import time
from fractions import Fraction

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sf_platform.core import inference
from sf_platform.core.inference import (
    ColumnProfile,
    CsvFormat,
    FileProfile,
    RaggedRow,
    detect_format,
    iter_string_blocks,
    merge_columns,
    profile_stream,
    widen,
)

KOREAN_NAMES = ["홍길동", "김철수", "이영희", "박민수", "최지우", "정하늘"]


def profile(data: bytes, **kwargs) -> FileProfile:
    return profile_stream(io.BytesIO(data), **kwargs)


def column(result: FileProfile, name: str) -> ColumnProfile:
    (found,) = [c for c in result.columns if c.name == name]
    return found


def types(result: FileProfile) -> dict[str, str]:
    return {c.name: c.type for c in result.columns}


def csv_bytes(
    rows: list[list[str]], delimiter: str = ",", terminator: str = "\n", encoding: str = "utf-8"
) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerows(rows)
    return buffer.getvalue().encode(encoding)


def read_all(data: bytes, fmt: CsvFormat, names: list[str], **kwargs) -> pa.Table:
    """The well-formed rows of a file as the loaders read them."""
    blocks = list(iter_string_blocks(io.BytesIO(data), fmt, names, **kwargs))
    return pa.Table.from_batches([b.batch for b in blocks])


def ragged_rows(data: bytes, fmt: CsvFormat, names: list[str], **kwargs) -> list[RaggedRow]:
    return [r for b in iter_string_blocks(io.BytesIO(data), fmt, names, **kwargs) for r in b.ragged]


PEOPLE = [
    ["id", "name", "score", "joined"],
    ["1", "Kim Minji", "12.50", "2024-01-05"],
    ["2", "Lee Jun", "3.25", "2024-02-29"],
    ["3", "Park, Ha-eun", "100.00", "2023-12-31"],
]
PLAIN = CsvFormat(",", False, "\n", "none", "utf-8", False)


# --------------------------------------------------------------------------- dialect


@pytest.mark.parametrize("delimiter", [",", "|", "\t", ";"])
def test_each_delimiter_is_detected_and_columns_typed(delimiter):
    result = profile(csv_bytes(PEOPLE, delimiter=delimiter))

    assert result.format.delimiter == delimiter
    assert result.format.header is True
    assert [c.name for c in result.columns] == ["id", "name", "score", "joined"]
    assert types(result) == {"id": "int", "name": "string", "score": "decimal(5,2)", "joined": "date"}
    assert result.rows == 3
    assert result.problems == ()


def test_semicolon_file_with_decimal_commas_is_split_on_semicolons():
    data = b"region;amount;code\nseoul;1,5;A\nbusan;2,75;B\ndaegu;3,0;C\n"
    fmt, _ = detect_format(data)
    assert fmt.delimiter == ";"


def test_crlf_line_endings_are_detected_and_not_left_in_values():
    data = csv_bytes(PEOPLE, terminator="\r\n")
    result = profile(data)

    assert result.format.line_terminator == "\r\n"
    assert column(result, "joined").type == "date"
    assert column(result, "joined").max_length == 10
    table = read_all(data, result.format, ["id", "name", "score", "joined"])
    assert table.column("joined").to_pylist() == ["2024-01-05", "2024-02-29", "2023-12-31"]


def test_gzip_is_detected_by_magic_bytes_and_read_through():
    data = gzip.compress(csv_bytes(PEOPLE))
    result = profile(data)

    assert result.format.compression == "gzip"
    assert types(result)["score"] == "decimal(5,2)"
    assert result.rows == 3


def test_gzip_head_is_decompressed_partially_and_the_rest_streamed():
    rows = [["n", "label"]] + [[str(i), f"item {i}"] for i in range(20_000)]
    data = gzip.compress(csv_bytes(rows, delimiter="|"))

    fmt, reason = detect_format(data[:200])
    assert (fmt.compression, fmt.delimiter, fmt.header) == ("gzip", "|", True)
    assert "'n' is not int" in reason

    result = profile(data, head_bytes=256)
    assert result.rows == 20_000
    assert column(result, "n").type == "int"
    assert column(result, "label").max_length == len("item 19999")


def test_quoted_fields_with_delimiters_quotes_and_newlines():
    data = b'id,comment,amount\n1,"hello, world",1.5\n2,"line one\nline two",2\n3,"she said ""hi""",3.25\n'
    result = profile(data)

    assert result.format.quoted is True
    assert result.rows == 3
    assert result.bad_rows == 0
    assert types(result) == {"id": "int", "comment": "string", "amount": "decimal(3,2)"}
    table = read_all(data, result.format, ["id", "comment", "amount"])
    assert table.column("comment").to_pylist() == ["hello, world", "line one\nline two", 'she said "hi"']


def test_unquoted_file_reports_quoted_false():
    assert detect_format(csv_bytes(PEOPLE[:1] + [["1", "Kim", "1.5", "2024-01-01"]]))[0].quoted is False


# --------------------------------------------------------------------------- encodings


def test_bom_with_crlf():
    data = "\ufeff".encode() + csv_bytes(PEOPLE, terminator="\r\n")
    result = profile(data)

    assert result.format.encoding == "utf-8-sig"
    assert result.format.line_terminator == "\r\n"
    assert result.columns[0].name == "id"
    assert column(result, "id").type == "int"


def test_cp949_korean_text():
    rows = [["회원번호", "이름", "점수"]] + [
        [str(i), name, f"{i}.5"] for i, name in enumerate(KOREAN_NAMES, 1)
    ]
    data = csv_bytes(rows, encoding="cp949")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    result = profile(data)

    assert result.format.encoding == "cp949"
    assert [c.name for c in result.columns] == ["회원번호", "이름", "점수"]
    assert types(result) == {"회원번호": "int", "이름": "string", "점수": "decimal(2,1)"}
    assert column(result, "이름").max_length == 3  # characters, not bytes
    table = read_all(data, result.format, ["no", "name", "score"])
    assert table.column("name").to_pylist() == KOREAN_NAMES


def test_cp949_after_an_ascii_head_is_transcoded_with_the_detected_encoding():
    rows = [["id", "name"]] + [[str(i), "kim"] for i in range(2000)] + [["9999", "홍길동"]]
    data = csv_bytes(rows, encoding="cp949")
    fmt = CsvFormat(",", False, "\n", "none", "cp949", True)
    table = read_all(data, fmt, ["id", "name"])
    assert table.column("name").to_pylist()[-1] == "홍길동"


def test_undecodable_bytes_are_a_problem_not_a_crash():
    data = b"id,name\n1,ok\n2,bad\xff\xfe\xfdvalue\n3,fine\n"
    result = profile(data)

    # The row is not profiled (nor loaded: the loaders quarantine it) but it is a record of the file.
    assert (result.rows, result.undecodable_rows, result.records) == (2, 1, 3)
    assert any(p.startswith("line 3: bytes not valid utf-8") for p in result.problems), result.problems
    assert column(result, "name").type == "string"
    assert column(result, "id").type == "int"


def test_undecodable_bytes_after_the_head_are_found_too():
    rows = b"id,name\n" + b"".join(b"%d,name%d\n" % (i, i) for i in range(500))
    data = rows + b"501,\x80\x80\n"
    result = profile(data, head_bytes=100)

    assert (result.rows, result.undecodable_rows) == (500, 1)
    assert any(p.startswith("line 502: bytes not valid utf-8") for p in result.problems), result.problems


# --------------------------------------------------------------------------- header


def test_header_found_from_typed_columns():
    fmt, reason = detect_format(csv_bytes(PEOPLE))
    assert fmt.header is True
    assert reason.startswith("header: first-row value 'id' is not int")


def test_header_found_when_every_column_is_a_string():
    rows = [["MEMBER_ID", "MEMBER_NAME", "SCHOOL_CODE"]] + [
        [f"M{i:04d}", name, f"S{i % 3:02d}"] for i, name in enumerate(KOREAN_NAMES, 1)
    ]
    result = profile(csv_bytes(rows))

    assert result.format.header is True
    assert "identifier-like" in result.header_reason
    assert [c.name for c in result.columns] == ["MEMBER_ID", "MEMBER_NAME", "SCHOOL_CODE"]
    assert result.rows == len(KOREAN_NAMES)
    assert all(c.type == "string" for c in result.columns)


def test_all_string_file_without_header_keeps_its_first_row_as_data():
    rows = [[name, f"A{i:03d}", "서울"] for i, name in enumerate(KOREAN_NAMES)]
    result = profile(csv_bytes(rows), column_names=["name", "code", "city"])

    assert result.format.header is False
    assert result.header_reason.startswith("no header")
    assert [c.name for c in result.columns] == ["name", "code", "city"]
    assert result.rows == len(KOREAN_NAMES)


def test_all_ascii_string_file_whose_first_row_looks_like_the_rest_has_no_header():
    data = b"apple,red,fruit\nbanana,yellow,fruit\ncherry,red,fruit\nleek,green,vegetable\n"
    fmt, reason = detect_format(data)
    assert fmt.header is False
    assert reason == "no header: all columns are strings and the first row looks like the data"


def test_numeric_file_without_header():
    result = profile(b"1,2.5,2024-01-01\n2,3.5,2024-01-02\n3,4.25,2024-01-03\n")

    assert result.format.header is False
    assert "typed like the data" in result.header_reason
    assert [c.name for c in result.columns] == ["col_1", "col_2", "col_3"]
    assert types(result) == {"col_1": "int", "col_2": "decimal(3,2)", "col_3": "date"}
    assert result.rows == 3


def test_header_forced_absent_loads_the_first_row_as_data():
    result = profile(csv_bytes(PEOPLE), header="absent", column_names=["a", "b"])

    assert result.format.header is False
    assert result.header_reason == "no header: absent, forced by registry"
    assert result.rows == 4
    assert [c.name for c in result.columns] == ["a", "b", "col_3", "col_4"]
    assert column(result, "a").type == "string"  # 'id' sits among the integers now


def test_header_forced_present_on_a_numeric_file():
    result = profile(b"1,2\n3,4\n5,6\n", header="present")

    assert result.format.header is True
    assert result.header_reason == "header: present, forced by registry"
    assert [c.name for c in result.columns] == ["1", "2"]
    assert result.rows == 2


def test_bad_header_argument_is_a_programming_error():
    with pytest.raises(ValueError):
        profile(b"a\n1\n", header="yes")


def test_header_names_are_stripped_and_empty_ones_named_by_position():
    result = profile(b" id ,,name,name\n1,2,x,y\n3,4,z,w\n")
    assert [c.name for c in result.columns] == ["id", "col_2", "name", "name"]


def test_headerless_file_with_fewer_names_than_fields():
    result = profile(b"1,2,3\n4,5,6\n", column_names=["a"])
    assert [c.name for c in result.columns] == ["a", "col_2", "col_3"]


# --------------------------------------------------------------------------- types


def one_column(values: list[str], name: str = "v") -> ColumnProfile:
    return profile(("\n".join([name, *values]) + "\n").encode(), header="present").columns[0]


def test_leading_zeros_stay_string_and_are_counted():
    values = [f"{i:07d}" for i in range(1, 13)] + [str(1000 + i) for i in range(28)]
    result = one_column(values)

    assert result.type == "string"
    assert result.reason.startswith("string: 12 of 40 values have leading zeros (e.g. '0000001')")


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["0", "5", "10"], "int"), (["0.5", "0.25", "0"], "decimal(3,2)"), (["-0", "+7"], "int")],
)
def test_a_lone_zero_or_zero_point_is_not_a_leading_zero(values, expected):
    assert one_column(values).type == expected


def test_signed_leading_zero_is_a_code():
    assert one_column(["-007", "12"]).type == "string"


def test_empty_fields_are_nulls_not_strings():
    result = profile(b"id,amount,note\n1,,\n,2.5,\n3,,\n")

    assert column(result, "id").type == "int"
    assert (column(result, "id").non_null, column(result, "id").nulls) == (2, 1)
    assert column(result, "amount").type == "decimal(2,1)"
    assert column(result, "note").type == "string"
    assert column(result, "note").reason == "string: all values empty"
    assert (
        column(result, "note").non_null,
        column(result, "note").nulls,
        column(result, "note").max_length,
    ) == (0, 3, 0)


def test_quoted_empty_field_is_null_too():
    result = profile(b'id,name\n1,""\n2,"x"\n')
    assert (column(result, "name").non_null, column(result, "name").nulls) == (1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2147483647", "int"),
        ("-2147483648", "int"),
        ("2147483648", "bigint"),
        ("-2147483649", "bigint"),
        ("9223372036854775807", "bigint"),
        ("-9223372036854775808", "bigint"),
        ("9223372036854775808", "decimal(19,0)"),
        ("1" * 39, "double"),
    ],
)
def test_int_bigint_boundaries(value, expected):
    result = one_column(["1", value, "-5"])
    assert result.type == expected
    if expected == "int":
        assert result.reason == "int: all 3 non-null values are integers in int32 range"


def test_decimal_precision_and_scale():
    result = one_column(["12.50", "3.1", "-1234.5", "7", "+0.125"])

    assert result.type == "decimal(7,3)"
    assert result.reason.startswith(
        "decimal(7,3): all 5 non-null values are fixed-point numbers with up to 4 integer digits"
    )


def test_fixed_point_beyond_38_digits_is_double():
    assert one_column(["1." + "1" * 30, "1" * 10 + ".5"]).type == "double"


def test_exponents_make_double():
    result = one_column(["1.5", "2", "-3.25E-4", "6e10"])
    assert result.type == "double"
    assert "exponent" in result.reason and "'-3.25E-4'" in result.reason


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["true", "FALSE", "True"], "boolean"),
        (["0", "1", "1"], "int"),
        (["yes", "no"], "string"),
        (["true", "false", "maybe"], "string"),
        (["1.5", "abc"], "string"),
        (["nan", "inf"], "string"),
        ([" 12", "13"], "string"),
    ],
)
def test_boolean_and_non_numbers(values, expected):
    assert one_column(values).type == expected


def test_dates_are_validated():
    assert one_column(["2024-02-29", "2024-12-31"]).type == "date"
    result = one_column(["2024-01-01", "2024-02-30", "2023-02-29", "2024-03-01"])
    assert result.type == "string"
    assert result.reason == "string: 2 of 4 values are not real dates (e.g. '2024-02-30', '2023-02-29')"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2024-01-01 10:00:00", "2024-12-31T23:59:59"], "timestamp"),
        (["2024-01-01 10:00:00.123456", "2024-01-01 10:00:00.123456789"], "timestamp"),
        (["2024-01-01", "2024-01-02 03:04:05"], "timestamp"),
        (["2024-01-01 25:00:00"], "string"),
        (["2024-01-01 10:00"], "string"),
        (["2024-01-01T10:00:00Z"], "string"),
        (["2024/01/01"], "string"),
        (["20240101"], "int"),
    ],
)
def test_timestamps(values, expected):
    assert one_column(values).type == expected


def test_invalid_day_inside_a_timestamp_is_string():
    result = one_column(["2024-01-01 10:00:00", "2023-02-29 10:00:00"])
    assert result.type == "string"
    assert "not real dates" in result.reason


def test_mixed_types_explain_each_conflict():
    result = one_column(["12", "2024-01-01"])
    assert result.type == "string"
    assert result.reason == "string: '2024-01-01' is not a number; '12' is not a boolean, date or timestamp"


def test_max_length_counts_characters():
    result = profile("name\n홍길동\nab\n".encode(), header="present")
    assert column(result, "name").max_length == 3


def test_types_are_decided_over_all_rows_across_many_batches(monkeypatch):
    monkeypatch.setattr(inference, "_PROFILE_BLOCK", 1 << 12)
    rows = [["id", "code", "amount", "day", "flag"]]
    rows += [[str(i), str(100 + i), str(i), "2024-01-01", "true"] for i in range(20_000)]
    rows.append(["3000000000", "0042", "1.25", "2024-02-30", "false"])  # the very last row
    result = profile(csv_bytes(rows), head_bytes=4096)

    assert result.rows == 20_001
    assert types(result) == {
        "id": "bigint",
        "code": "string",
        "amount": "decimal(7,2)",
        "day": "string",
        "flag": "boolean",
    }
    assert column(result, "code").reason.startswith("string: 1 of 20001 values have leading zeros")
    assert column(result, "day").reason == "string: 1 of 20,001 values are not real dates (e.g. '2024-02-30')"


# --------------------------------------------------------------------------- problems


def test_ragged_rows_are_counted_and_skipped():
    data = b"a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n13,14,15\n"
    result = profile(data)

    assert result.rows == 3
    assert result.bad_rows == 2
    assert result.problems == ("2 ragged rows (first at line 3: expected 3 fields, got 2)",)
    assert column(result, "a").non_null == 3


def test_empty_file():
    result = profile(b"")
    assert (result.rows, result.columns, result.problems) == (0, (), ("empty file",))


def test_blank_lines_only():
    result = profile(b"\n\n\r\n")
    assert result.rows == 0
    assert result.problems == ("empty file (no rows)",)


def test_header_only_file():
    result = profile(b"id,name,amount\n")

    assert result.format.header is True
    assert result.rows == 0
    assert result.problems == ("header only",)
    assert [c.name for c in result.columns] == ["id", "name", "amount"]
    assert all(c.reason == "string: all values empty" for c in result.columns)


def test_corrupt_gzip_is_a_problem():
    data = gzip.compress(csv_bytes(PEOPLE * 50))
    result = profile(data[: len(data) // 2])
    assert result.problems
    assert any("reading stopped" in p or "gzip" in p for p in result.problems)


class Breaks(io.RawIOBase):
    """A stream whose first read answers ``first`` and every later one raises ``error``."""

    def __init__(self, first: bytes, error: Exception) -> None:
        self.first, self.error, self.calls = first, error, 0

    def readable(self) -> bool:
        return True

    def read(self, size=-1) -> bytes:
        self.calls += 1
        if self.calls == 1:
            return self.first
        raise self.error


@pytest.mark.parametrize("head_bytes", [16, 1 << 10], ids=["in the rows", "in the head"])
@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), TimeoutError("The read operation timed out")],
    ids=["reset", "timeout"],
)
def test_a_read_that_breaks_off_transiently_raises_never_a_short_or_unreadable_profile(error, head_bytes):
    """Not the file's fault, so no verdict on it: the caller (the crawl) fails and is retried."""
    with pytest.raises(type(error)):
        profile_stream(Breaks(b"id,name\n1,a\n2,b\n", error), head_bytes=head_bytes)


@pytest.mark.parametrize("head_bytes", [16, 1 << 10], ids=["in the rows", "in the head"])
def test_a_read_that_fails_otherwise_is_unreadable_in_the_loaders_words(head_bytes):
    from sf_platform.core.source_file import unreadable_reason

    error = OSError("checksum mismatch")  # not transient (core/transient.py), not the bytes' fault either
    result = profile_stream(Breaks(b"id,name\n1,a\n2,b\n", error), head_bytes=head_bytes)
    # A read that breaks part way is no partial profile: the file is unreadable, and says why.
    assert (result.rows, result.columns) == (0, ())
    assert result.problems == ("OSError: checksum mismatch",) == (unreadable_reason(error),)
    assert result.unreadable == result.problems[0]
    assert result.read_failed  # read again next crawl (not cached with the file's ETag)


def test_bad_bytes_are_unreadable_as_the_loaders_word_them():
    """A truncated gzip: the crawl's reason is the loaders' (source_file), and it is the file's fault."""
    from sf_platform.core.conversion import TargetColumn
    from sf_platform.core.registry import TableConfig
    from sf_platform.core.source_file import (
        PrefixedStream,
        SourceReadError,
        numbered_batches,
        read_head,
        read_layout,
    )

    data = gzip.compress(b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(300_000)))
    cut = data[: len(data) * 2 // 3]
    crawled = profile(cut)
    assert crawled.unreadable.startswith("gzip data is truncated") and not crawled.read_failed
    stream = io.BytesIO(cut)
    head = read_head(stream)
    layout = read_layout(head, TableConfig())
    columns = [TargetColumn("id", "bigint"), TargetColumn("name", "string")]
    with pytest.raises(SourceReadError) as loaded:
        for _ in numbered_batches(PrefixedStream(head, stream), layout, columns, key="t/a.csv.gz"):
            pass
    assert crawled.unreadable == loaded.value.reason


class Trickle(io.RawIOBase):
    """A stream that returns at most a few bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.at, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size=-1) -> bytes:
        size = self.step if size is None or size < 0 else min(size, self.step)
        piece = self.data[self.at : self.at + size]
        self.at += len(piece)
        return piece


@pytest.mark.parametrize("compress", [False, True])
def test_short_reads_and_a_tiny_head(compress):
    data = csv_bytes(PEOPLE * 30)  # the header line recurs among the data: still one header
    data = gzip.compress(data) if compress else data
    result = profile_stream(Trickle(data), head_bytes=5)

    assert result.format.header is True
    assert [c.name for c in result.columns] == ["id", "name", "score", "joined"]
    assert result.rows == len(PEOPLE) * 30 - 1
    assert column(result, "joined").non_null == result.rows


def test_iter_string_blocks_with_short_reads():
    fmt = CsvFormat(",", True, "\n", "gzip", "utf-8", True)
    data = gzip.compress(csv_bytes(PEOPLE))
    blocks = list(iter_string_blocks(Trickle(data), fmt, ["a", "b", "c", "d"]))
    table = pa.Table.from_batches([b.batch for b in blocks])
    assert table.column("b").to_pylist() == ["Kim Minji", "Lee Jun", "Park, Ha-eun"]


# --------------------------------------------------------------------------- iter_string_blocks


def test_iter_string_blocks_yields_strings_with_nulls():
    data = b"id,amount,note\n1,2.5,\n,3,x\n"
    fmt, _ = detect_format(data)
    blocks = list(iter_string_blocks(io.BytesIO(data), fmt, ["id", "amount", "note"]))
    table = pa.Table.from_batches([b.batch for b in blocks])

    assert table.schema == pa.schema([("id", pa.string()), ("amount", pa.string()), ("note", pa.string())])
    assert table.to_pylist() == [
        {"id": "1", "amount": "2.5", "note": None},
        {"id": None, "amount": "3", "note": "x"},
    ]
    assert [(b.first_row, b.rows, b.ragged) for b in blocks] == [(1, 2, ())]


def test_iter_string_blocks_handles_gzip_cp949_and_keeps_ragged_rows():
    text = "번호|이름\n1|홍길동\n2|김철수|extra\n3|\n"
    data = gzip.compress(text.encode("cp949"))
    fmt = CsvFormat("|", False, "\n", "gzip", "cp949", True)
    assert read_all(data, fmt, ["no", "name"], block_size=1 << 10).to_pydict() == {
        "no": ["1", "3"],
        "name": ["홍길동", None],
    }
    assert ragged_rows(data, fmt, ["no", "name"], block_size=1 << 10) == [RaggedRow(2, 2, 3, "2|김철수|extra")]


def test_ragged_rows_keep_their_data_row_number_text_and_field_counts():
    # Data rows: 1 good, 2 short, 3 good over two lines, 4 long, 5 good, 6 short (the last line).
    # Blank lines are not rows; a quoted newline does not start one.
    data = b'id,name,n\n1,a,1\n\n2,b\n3,"x\ny",3\n4,d,4,extra\n\n5,e,5\n6\n'
    fmt, _ = detect_format(data)
    names = ["id", "name", "n"]
    for block_size in (16, 1 << 20):  # a block or so per row, and one block for the file
        blocks = list(iter_string_blocks(io.BytesIO(data), fmt, names, block_size=block_size))
        assert [r for b in blocks for r in b.ragged] == [
            RaggedRow(2, 3, 2, "2,b"),
            RaggedRow(4, 3, 4, "4,d,4,extra"),
            RaggedRow(6, 3, 1, "6"),
        ]
        assert pa.Table.from_batches([b.batch for b in blocks]).column("id").to_pylist() == ["1", "3", "5"]
        # Blocks follow one another and together cover every data row once.
        assert blocks[0].first_row == 1
        assert all(a.first_row + a.rows == b.first_row for a, b in zip(blocks, blocks[1:], strict=False))
        assert sum(b.rows for b in blocks) == 6
        for block in blocks:
            assert all(block.first_row <= r.row < block.first_row + block.rows for r in block.ragged)


def test_ragged_rows_without_a_header_and_with_crlf_line_ends():
    data = b"1;a\r\n2\r\n3;c\r\n"
    fmt = CsvFormat(";", False, "\r\n", "none", "utf-8", False)
    assert ragged_rows(data, fmt, ["n", "s"]) == [RaggedRow(2, 2, 1, "2")]
    assert read_all(data, fmt, ["n", "s"]).to_pydict() == {"n": ["1", "3"], "s": ["a", "c"]}


def test_ragged_rows_are_numbered_across_many_blocks():
    rows = [[str(i), "x" * 50] if i % 1000 else [str(i)] for i in range(1, 5001)]
    data = csv_bytes([["n", "s"], *rows])
    fmt, _ = detect_format(data)
    blocks = list(iter_string_blocks(io.BytesIO(data), fmt, ["n", "s"], block_size=1 << 14))
    assert len(blocks) > 5
    assert [(r.row, r.text) for b in blocks for r in b.ragged] == [(i, str(i)) for i in range(1000, 5001, 1000)]
    assert sum(b.batch.num_rows for b in blocks) == 4995


def test_a_file_of_only_ragged_rows_gives_them_all_back():
    data = b"a,b,c\n1\n2,2\n"
    fmt, _ = detect_format(data, header="present")
    blocks = list(iter_string_blocks(io.BytesIO(data), fmt, ["a", "b", "c"]))
    assert sum(b.batch.num_rows for b in blocks) == 0
    assert [r for b in blocks for r in b.ragged] == [RaggedRow(1, 3, 1, "1"), RaggedRow(2, 3, 2, "2,2")]


def test_iter_string_blocks_strips_the_bom_and_reads_without_header():
    data = "\ufeff1;a\r\n2;b\r\n".encode()
    fmt = CsvFormat(";", False, "\r\n", "none", "utf-8-sig", False)
    assert read_all(data, fmt, ["n", "s"]).to_pydict() == {"n": ["1", "2"], "s": ["a", "b"]}


def test_iter_string_blocks_yields_several_bounded_blocks():
    rows = [[str(i), "x" * 50] for i in range(5000)]
    blocks = list(iter_string_blocks(io.BytesIO(csv_bytes(rows)), PLAIN, ["n", "s"], block_size=1 << 14))
    assert len(blocks) > 5
    assert sum(b.batch.num_rows for b in blocks) == 5000
    assert blocks[-1].batch.column(0)[-1].as_py() == "4999"
    assert [b.first_row for b in blocks] == list(itertools.accumulate([1] + [b.rows for b in blocks[:-1]]))


class Metered(io.BytesIO):
    """A file that remembers how far it has been read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_up_to = 0

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        self.read_up_to = self.tell()
        return piece


def test_iter_string_blocks_reads_only_a_few_blocks_ahead_of_the_caller():
    # pyarrow's background reader would queue up to 32 blocks of the file: memory grew with the file.
    block = 1 << 14
    data = csv_bytes([[str(i), "x" * 50] for i in range(40_000)])  # ~2.3 MB: ~140 blocks
    stream = Metered(data)
    blocks = iter_string_blocks(stream, PLAIN, ["n", "s"], block_size=block)
    rows = next(blocks).rows
    time.sleep(0.3)  # time enough for an unbounded reader to run far ahead
    assert stream.read_up_to <= 8 * block
    rows += sum(b.rows for b in blocks)
    assert rows == 40_000
    assert stream.read_up_to == len(data)


# --------------------------------------------------------------------------- several files


def test_widen_lattice():
    assert widen("int", "bigint") == "bigint"
    assert widen("int", "decimal(5,2)") == "decimal(12,2)"
    assert widen("bigint", "decimal(5,2)") == "decimal(21,2)"
    assert widen("decimal(5,2)", "decimal(10,0)") == "decimal(12,2)"
    assert widen("decimal(38,30)", "int") == "double"
    assert widen("decimal(5,2)", "double") == "double"
    assert widen("int", "double") == "double"
    assert widen("date", "timestamp") == "timestamp"
    assert widen("date", "int") == "string"
    assert widen("boolean", "int") == "string"
    assert widen("string", "int") == "string"
    assert widen("boolean", "boolean") == "boolean"


def test_merge_columns_widens_unions_and_sums():
    first = profile(b"id,amount,day\n1,2.5,2024-01-01\n2,3,2024-01-02\n")
    second = profile(b"id,day,extra,amount\n3000000000,2024-01-03 10:00:00,x,\n4,2024-01-04,y,\n")
    third = profile(b"id,day\n5,tuesday\n")

    merged = merge_columns([first, second, third])
    by_name = {c.name: c for c in merged}

    assert [c.name for c in merged] == ["id", "amount", "day", "extra"]
    assert by_name["id"].type == "bigint"
    assert by_name["id"].reason == "bigint: widened from int, bigint across 3 files"
    assert (by_name["id"].non_null, by_name["id"].nulls) == (5, 0)
    # second file has no amounts: it does not vote; third file lacks the column: its row is null
    assert by_name["amount"].type == "decimal(2,1)"
    assert (by_name["amount"].non_null, by_name["amount"].nulls) == (2, 3)
    assert by_name["amount"].reason.endswith("missing from 1 of 3 files")
    assert by_name["day"].type == "string"
    assert by_name["day"].reason == "string: file 3 is string ('tuesday' is not a number, boolean, date or timestamp)"
    assert (by_name["extra"].type, by_name["extra"].nulls) == ("string", 3)
    assert by_name["extra"].max_length == 1


def test_merge_columns_agreeing_files_and_incompatible_files():
    a = profile(b"n,flag\n1,true\n")
    b = profile(b"n,flag\n2,2024-01-01\n")
    merged = {c.name: c for c in merge_columns([a, b])}

    assert merged["n"].type == "int"
    assert merged["n"].reason.startswith("int: all 2 files with values agree")
    assert merged["flag"].type == "string"
    assert merged["flag"].reason == "string: incompatible types across files (boolean, date)"


def test_merge_columns_matches_duplicate_names_by_occurrence():
    a = profile(b"x,x\n1,a\n")
    b = profile(b"x,x\n2,b\n")
    assert [(c.name, c.type, c.non_null) for c in merge_columns([a, b])] == [
        ("x", "int", 2),
        ("x", "string", 2),
    ]


def test_merge_of_one_file_keeps_its_reasons():
    a = profile(csv_bytes(PEOPLE))
    assert merge_columns([a]) == a.columns


# --------------------------------------------------------------------------- properties

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=40))
def test_any_list_of_ints_infers_int_or_bigint(values):
    result = one_column([str(v) for v in values])
    fits_int32 = all(-(2**31) <= v < 2**31 for v in values)
    assert result.type == ("int" if fits_int32 else "bigint")
    assert result.non_null == len(values)


@FAST
@given(
    st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=30),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=4),
    st.data(),
)
def test_ints_with_one_leading_zero_code_infer_string(values, code, zeros, data):
    position = data.draw(st.integers(min_value=0, max_value=len(values)))
    values = [str(v) for v in values]
    values.insert(position, "0" * zeros + str(code))
    result = one_column(values)
    assert result.type == "string"
    assert "leading zeros" in result.reason


@FAST
@given(
    st.lists(
        st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False), min_size=1, max_size=30
    )
)
def test_fixed_point_numbers_infer_a_decimal_that_holds_them(values):
    texts = [f"{v:f}" for v in values]
    result = one_column(texts)
    if all("." not in t for t in texts):
        assert result.type in ("int", "bigint")
        return
    precision, scale = map(int, result.type.removeprefix("decimal(").removesuffix(")").split(","))
    assert scale == max(len(t.split(".")[1]) if "." in t else 0 for t in texts)
    assert precision - scale >= max(len(t.lstrip("-").split(".")[0]) for t in texts)
    assert precision <= 38


GLUE = st.one_of(
    st.sampled_from(["int", "bigint", "double", "boolean", "date", "timestamp", "string"]),
    st.integers(min_value=1, max_value=38).flatmap(
        lambda p: st.integers(min_value=0, max_value=p).map(lambda s: f"decimal({p},{s})")
    ),
)


@settings(max_examples=300, deadline=None)
@given(GLUE, GLUE, GLUE)
def test_widen_is_commutative_associative_and_idempotent(a, b, c):
    assert widen(a, a) == a
    assert widen(a, b) == widen(b, a)
    assert widen(widen(a, b), c) == widen(a, widen(b, c))
    assert widen(a, "string") == "string"


@settings(max_examples=300, deadline=None)
@given(GLUE, GLUE)
def test_widen_is_an_upper_bound(a, b):
    top = widen(a, b)
    assert widen(top, a) == top
    assert widen(top, b) == top


CELL = st.text(alphabet=st.sampled_from(list('ab ,;"\n한1.')), max_size=8)


@FAST
@given(st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=20), st.sampled_from([",", ";", "|", "\t"]))
def test_iter_string_blocks_round_trips_what_csv_writes(rows, delimiter):
    data = csv_bytes([list(r) for r in rows], delimiter=delimiter)
    fmt = CsvFormat(delimiter, True, "\n", "none", "utf-8", False)
    table = read_all(data, fmt, ["a", "b", "c"])
    expected = [[value or None for value in row] for row in rows]
    assert [list(r.values()) for r in table.to_pylist()] == expected


def test_column_of_short_numbers_with_empty_values_is_not_mistaken_for_boolean():
    # 4-5 character values with gaps go through the boolean check; the gaps must not be taken as
    # counter-examples (they are nulls).
    rows = ["id,score,passed"] + [f"{i},{'' if i % 3 == 0 else f'{i}.25'},{'' if i % 3 == 0 else 'true'}" for i in range(1, 40)]
    profile = profile_stream(io.BytesIO(("\n".join(rows) + "\n").encode()))
    types = {c.name: c.type for c in profile.columns}
    assert types == {"id": "int", "score": "decimal(4,2)", "passed": "boolean"}
    assert {c.name: c.nulls for c in profile.columns} == {"id": 0, "score": 13, "passed": 13}


def test_truncated_gzip_is_a_problem_not_an_empty_file():
    whole = gzip.compress(b"id,name\n" + b"".join(f"{i},n{i}\n".encode() for i in range(100)))
    result = profile(whole[:12])
    assert result.format.compression == "gzip"
    assert result.problems == ("gzip data is truncated (the file ends inside the compressed stream)",)
    assert result.rows == 0


def test_korean_header_over_codes_is_a_header():
    rows = [["학교코드", "학교명", "전화번호"]] + [
        [f"{i:05d}", f"{name}학교", f"02-555-{i:04d}"] for i, name in enumerate(KOREAN_NAMES)
    ]
    result = profile(csv_bytes(rows))
    assert result.format.header is True
    assert [c.name for c in result.columns] == ["학교코드", "학교명", "전화번호"]
    # Korean names over Korean text alone cannot be told from data: `header: present` settles it.


def test_korean_rows_without_a_header_stay_data():
    rows = [[name, city] for name, city in zip(KOREAN_NAMES, ["서울", "부산", "대구", "인천", "광주", "대전"], strict=True)]
    result = profile(csv_bytes(rows))
    assert result.format.header is False
    assert result.rows == len(KOREAN_NAMES)


def test_profiles_round_trip_through_a_dict():
    result = profile(b"id,name\n1,a\n2,b,c\n")
    assert inference.profile_from_dict(json.loads(json.dumps(inference.profile_to_dict(result)))) == result


# --------------------------------------------------------------------------- tolerant typing


def tolerant(values: list[str], tolerance: float) -> ColumnProfile:
    return profile(("\n".join(["v", *values]) + "\n").encode(), header="present", tolerance=tolerance).columns[0]


# Values of one family, and values no type of any family holds (nor the loaders accept).
FAMILY_VALUES = {
    "integers": st.integers(min_value=-(2**40), max_value=2**40).map(str),
    "decimals": st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False).map(lambda d: f"{d:f}"),
    "doubles": st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).map(lambda f: f"{f:.3e}"),
    "booleans": st.sampled_from(["true", "false", "TRUE", "False"]),
    "dates": st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)).map(str),
    "timestamps": st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S")
    ),
}
MISFIT_VALUES = st.sampled_from(
    ["N/A", "n/a", "-", "?", "12a", "#REF!", "missing", "1.2.3", "2024-02-30x", "2024-02-30"]
)


@FAST
@given(
    st.sampled_from(sorted(FAMILY_VALUES)),
    st.data(),
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=0, max_value=6),
    st.sampled_from([0.0, 0.01, 0.02, 0.05, 0.1, 0.29, 0.49]),
)
def test_a_column_of_one_type_keeps_it_iff_its_misfits_are_within_the_tolerance(family, data, good, k, tol):
    values = data.draw(st.lists(FAMILY_VALUES[family], min_size=good, max_size=good))
    glue_type = tolerant(values, 0.0).type  # what the good values alone make of the column
    assert glue_type != "string"
    misfits = data.draw(st.lists(MISFIT_VALUES, min_size=k, max_size=k))
    for misfit in misfits:
        values.insert(data.draw(st.integers(min_value=0, max_value=len(values))), misfit)
    result = tolerant(values, tol)

    n = len(values)
    assert result.non_null == n
    if Fraction(str(tol)) * n >= k:
        assert result.type == glue_type
        assert inference.misfits(result) == k
        if k:
            first = list(dict.fromkeys(v for v in values if v in set(misfits)))[:3]  # in file order
            assert result.reason.startswith(
                f"{glue_type}: {k:,} of {n:,} values ({100 * k / n:.2g} %) did not fit and are quarantined: "
                + ", ".join(repr(m) for m in first)
            )
            assert f"; the other {n - k:,} are " in result.reason
    else:
        assert result.type == "string"
        assert inference.misfits(result) == 0


@FAST
@given(
    st.sampled_from(sorted(FAMILY_VALUES)),
    st.data(),
    st.integers(min_value=2, max_value=200),
    st.integers(min_value=0, max_value=6),
    st.sampled_from([0.0, 0.01, 0.05, 0.29]),
)
def test_the_files_of_a_table_are_decided_as_one_column(family, data, good, k, tol):
    """Placeholders, even a file of nothing else (other misfits making most of a file rule its type out)."""
    values = data.draw(st.lists(FAMILY_VALUES[family], min_size=good, max_size=good))
    values += data.draw(st.lists(st.sampled_from(["N/A", "null", "-", "?", "#REF!"]), min_size=k, max_size=k))
    values = data.draw(st.permutations(values))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=1, max_value=len(values) - 1), max_size=3)))
    parts = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True) if values[a:b]]
    files = [profile(("\n".join(["v", *part]) + "\n").encode(), header="present") for part in parts]

    (merged,) = merge_columns(files, tol)
    within = Fraction(str(tol)) * len(values) >= k
    assert (merged.type != "string") == within
    assert inference.misfits(merged) == (k if within else 0)
    if within and k:
        assert f"{k:,} of {len(values):,} values" in merged.reason


def test_the_explanation_counts_and_names_the_misfits():
    values = [str(i) for i in range(9_998)] + ["N/A", "12a"]
    result = tolerant(values, 0.01)
    assert result.type == "int"
    assert result.reason == (
        "int: 2 of 10,000 values (0.02 %) did not fit and are quarantined: 'N/A', '12a'; "
        "the other 9,998 are integers in int32 range"
    )
    # a repeated placeholder is counted every time, and shown once
    result = tolerant([str(i) for i in range(500)] + ["N/A"] * 4 + ["x"], 0.01)
    assert result.reason.startswith("int: 5 of 505 values (0.99 %) did not fit and are quarantined: 'N/A', 'x'; ")


def test_small_samples_stay_string_and_zero_is_strict():
    assert tolerant(["1", "2", "N/A"], 0.01).type == "string"  # 33 %
    assert tolerant(["1", "2", "N/A"], 0.4).type == "int"
    assert tolerant([str(i) for i in range(200)] + ["N/A"], 0.0).type == "string"
    result = tolerant([str(i) for i in range(200)] + ["N/A", "N/A", "x"], 0.01)
    assert result.type == "string"
    assert result.reason == (
        "string: 3 of 203 values are not numbers (e.g. 'N/A', 'x'); 1.5 % is more than the type_tolerance of 1 %"
    )


def test_misfits_never_widen_the_type_and_wider_values_of_the_family_are_not_misfits():
    # 1.5 is a number: the column is a decimal holding it, not an int quarantining it
    assert tolerant([str(i) for i in range(300)] + ["1.5", "N/A"], 0.01).type == "decimal(4,1)"
    assert tolerant([str(i) for i in range(300)] + ["3000000000", "N/A"], 0.01).type == "bigint"
    assert tolerant(["2024-01-01"] * 300 + ["2024-01-01 10:00:00", "soon"], 0.01).type == "timestamp"
    assert tolerant([f"{i}.25" for i in range(300)] + ["1e5", "?"], 0.01).type == "double"


def test_dates_with_days_that_do_not_exist_are_misfits():
    result = tolerant(["2024-03-01"] * 300 + ["2024-02-30"], 0.01)
    assert result.type == "date"
    assert "1 of 301 values (0.33 %) did not fit and are quarantined: '2024-02-30'" in result.reason
    strict = tolerant(["2024-03-01"] * 300 + ["2024-02-30"], 0.0)
    assert strict.reason == "string: 1 of 301 values are not real dates (e.g. '2024-02-30')"


@pytest.mark.parametrize(
    ("family", "accepted"),
    [
        ([str(i) for i in range(300)], " 12"),  # the loaders trim spaces
        (["true", "false"] * 150, "yes"),  # and read yes/no
        (["2024-01-01 10:00:00"] * 300, "2024-01-01 10:00"),  # and hh:mm
    ],
)
def test_a_value_the_loaders_accept_anyway_is_no_misfit_it_keeps_the_column_text(family, accepted):
    """Otherwise the explanation would count a row as quarantined that the loaders load."""
    result = tolerant([*family, accepted], 0.1)
    assert result.type == "string"
    assert repr(accepted) in result.reason


def test_text_columns_are_not_typed_by_their_few_values_of_a_type():
    names = [f"name{i}" for i in range(300)] + ["12", "2024-01-01", "true"]
    assert tolerant(names, 0.49).type == "string"
    codes = [f"{i:05d}" for i in range(300)] + ["N/A"]  # codes with leading zeros stay codes
    assert tolerant(codes, 0.1).reason.startswith("string: 300 of 301 values have leading zeros")


def test_empty_fields_are_not_values_of_the_share():
    rows = [["id", "v"]] + [[str(i), str(i)] for i in range(100)] + [[str(i), ""] for i in range(500)]
    result = column(profile(csv_bytes([*rows, ["1", "N/A"]]), tolerance=0.01), "v")
    assert result.type == "int"
    assert result.reason.startswith("int: 1 of 101 values (0.99 %) did not fit")
    assert result.reason.endswith("(500 empty)")


def test_the_table_decides_over_all_its_files():
    clean = profile(b"id,n\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(1, 301)))
    placeholders = profile(b"id,n\n" + b"".join(b"%d,N/A\n" % i for i in range(301, 304)))
    alone = {c.name: c for c in merge_columns([placeholders], 0.01)}
    assert alone["n"].type == "string"  # every value of that file is a misfit
    merged = {c.name: c for c in merge_columns([clean, placeholders], 0.01)}
    assert merged["n"].type == "int"
    assert merged["n"].reason == (
        "int: 3 of 303 values (0.99 %) did not fit and are quarantined: 'N/A'; "
        "all 2 files with values agree (file 1: all 300 non-null values are integers in int32 range)"
    )
    assert inference.misfits(merged["n"]) == 3 and inference.misfits(merged["id"]) == 0
    assert merge_columns([clean, placeholders], 0.0)[1].type == "string"
    assert inference.misfits(merge_columns([clean, placeholders], 0.0)[1]) == 0  # text: nothing quarantined
    wide = profile(b"n\n3000000000\n")
    widened = {c.name: c for c in merge_columns([clean, placeholders, wide], 0.01)}
    assert widened["n"].type == "bigint"
    assert widened["n"].reason.startswith("bigint: 3 of 304 values (0.99 %) did not fit and are quarantined: 'N/A'; "
                                          "widened from int, bigint across 3 files")


def test_a_header_over_a_column_with_misfits_is_a_header_not_a_misfit():
    data = b"id,name\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(300)) + b"N/A,y\n"
    fmt, reason = detect_format(data)
    assert fmt.header
    assert reason.startswith("header: first-row value 'id' is not int like the values below it")
    result = profile(data, tolerance=0.01)
    assert column(result, "id").reason.startswith("int: 1 of 301 values (0.33 %) did not fit and are quarantined: 'N/A';")
    # a lower-case name over a lower-case placeholder too
    assert detect_format(b"id\n" + b"".join(b"%d\n" % i for i in range(300)) + b"null\n")[0].header


@pytest.mark.parametrize(
    "first",
    [
        b"N/A,y",  # a placeholder that recurs below
        b"unknown,y",  # a placeholder, even once
        b"kim,y",  # shaped like the values below that fit no type
        b"7,y",  # typed like the data
    ],
)
def test_a_first_row_of_data_over_a_column_with_misfits_stays_data(first):
    rows = b"".join(b"%d,x%d\n" % (i, i) for i in range(300))
    assert not detect_format(first + b"\n" + rows + b"N/A,z\nlee,w\n")[0].header


def test_candidates_survive_the_profile_cache():
    result = profile(b"n\n" + b"".join(b"%d\n" % i for i in range(300)) + b"N/A\n")
    again = inference.profile_from_dict(json.loads(json.dumps(inference.profile_to_dict(result))))
    assert again == result
    assert merge_columns([again], 0.01)[0].type == "int"
