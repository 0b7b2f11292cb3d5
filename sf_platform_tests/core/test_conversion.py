"""Typing rows: string batches to catalog types, bad rows set aside with line, values and reason."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sf_platform.core.conversion import RejectedRow, TargetColumn, cast_column, mysql_ready, type_batch
from sf_platform.core.quarantine import quarantine_csv, quarantine_header, quarantine_rows


def _batch(**columns: list) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({name: pa.array(values, pa.string()) for name, values in columns.items()})


def _cast(values: list, glue_type: str) -> list:
    return cast_column(pa.array(values, pa.string()), glue_type).to_pylist()


def _rejected(values: list, glue_type: str) -> bool:
    good, bad = type_batch(_batch(v=values), [TargetColumn("v", glue_type)], 1)
    return good.num_rows == 0 and len(bad) == len(values)


# ------------------------------------------------------------------------------------------ type_batch


def test_good_and_bad_rows_in_one_batch():
    batch = _batch(
        id=["1", "x", "3", "4", "99999999999", "6"],
        name=["a", "b", "c", "d", "e", "f"],
    )
    columns = [TargetColumn("id", "int"), TargetColumn("name", "string")]
    good, bad = type_batch(batch, columns, first_line=101)

    assert good.schema == pa.schema([("id", pa.int32()), ("name", pa.string())])
    assert good.to_pydict() == {"id": [1, 3, 4, 6], "name": ["a", "c", "d", "f"]}
    assert [r.line for r in bad] == [102, 105]
    assert [r.values for r in bad] == [("x", "b"), ("99999999999", "e")]
    for row in bad:
        assert "'id'" in row.reason and "int" in row.reason
        assert repr(row.values[0]) in row.reason


def test_the_reason_names_the_column_that_failed():
    batch = _batch(a=["1", "2"], b=["2024-01-01", "2024-02-30"], c=["x", "y"])
    columns = [TargetColumn("a", "bigint"), TargetColumn("b", "date"), TargetColumn("c", "string")]
    good, bad = type_batch(batch, columns, first_line=1)
    assert good.num_rows == 1
    assert bad == [bad[0]] and bad[0].line == 2
    assert bad[0].values == ("2", "2024-02-30", "y")
    assert bad[0].reason.startswith("column 'b': value '2024-02-30' is not a valid date")


def test_every_row_bad():
    good, bad = type_batch(_batch(n=["a", "b", "c"]), [TargetColumn("n", "bigint")], first_line=7)
    assert good.num_rows == 0
    assert good.schema == pa.schema([("n", pa.int64())])
    assert [r.line for r in bad] == [7, 8, 9]


def test_rows_that_do_not_follow_one_another_are_reported_by_their_own_line():
    # Data rows 3 and 5 of the file were ragged: the batch holds rows 1, 2, 4 and 6.
    batch = _batch(n=["1", "x", "y", "6"])
    good, bad = type_batch(batch, [TargetColumn("n", "int")], first_line=1, lines=[1, 2, 4, 6])
    assert good.column("n").to_pylist() == [1, 6]
    assert [(r.line, r.values) for r in bad] == [(2, ("x",)), (4, ("y",))]


def test_all_good_batch_returns_no_rejects():
    good, bad = type_batch(_batch(n=["1", "2"]), [TargetColumn("n", "bigint")], first_line=1)
    assert bad == []
    assert good.column("n").to_pylist() == [1, 2]


def test_empty_batch():
    good, bad = type_batch(_batch(n=[]), [TargetColumn("n", "int")], first_line=1)
    assert good.num_rows == 0 and bad == []


def test_columns_come_out_in_the_target_order():
    batch = _batch(b=["x"], a=["1"])
    good, _ = type_batch(batch, [TargetColumn("a", "int"), TargetColumn("b", "string")], 1)
    assert good.schema.names == ["a", "b"]


def test_nulls_pass_through_every_type():
    glue_types = ["bigint", "int", "double", "decimal(10,2)", "boolean", "date", "timestamp", "string"]
    batch = _batch(**{f"c{i}": [None, None] for i in range(len(glue_types))})
    columns = [TargetColumn(f"c{i}", t) for i, t in enumerate(glue_types)]
    good, bad = type_batch(batch, columns, 1)
    assert bad == []
    assert good.num_rows == 2
    assert all(good.column(i).null_count == 2 for i in range(len(columns)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**31), 2**31 - 1).map(str),
            st.sampled_from(["x", "1.5", "12a", "--1", "0x1F", "1e3", "2147483648", "-2147483649", "١٢", " "]),
        ),
        max_size=80,
    ),
    st.integers(1, 10_000),
)
def test_good_plus_bad_rows_are_the_input_rows(values, first_line):
    good, bad = type_batch(_batch(n=values), [TargetColumn("n", "int")], first_line)

    expected_good = []
    expected_bad_lines = []
    for i, v in enumerate(values):
        number = _as_int32(v)
        if number is None:
            expected_bad_lines.append(first_line + i)
        else:
            expected_good.append(number)
    assert good.num_rows + len(bad) == len(values)
    assert good.column("n").to_pylist() == expected_good
    assert [r.line for r in bad] == expected_bad_lines
    assert all(r.values == (values[r.line - first_line],) for r in bad)


def _as_int32(text: str) -> int | None:
    body = text.strip()
    digits = body[1:] if body[:1] in ("+", "-") else body
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(body)
    return number if -(2**31) <= number < 2**31 else None


# ------------------------------------------------------------------------------------------ each type


def test_int_range_is_enforced():
    assert _cast(["2147483647", "-2147483648", " 7 ", "+5", "-0"], "int") == [2147483647, -2147483648, 7, 5, 0]
    for overflow in ["2147483648", "-2147483649"]:
        assert _rejected([overflow], "int")


@pytest.mark.parametrize("bad", ["1.0", "1e3", "x", "1_000", "1,000", "0x10", "+-5", "++5", "5+", "١٢", "１２"])
def test_integers_must_be_plain_integers(bad):
    assert _rejected([bad], "bigint")


def test_bigint_range():
    assert _cast(["9223372036854775807", "-9223372036854775808"], "bigint") == [2**63 - 1, -(2**63)]
    assert _rejected(["9223372036854775808"], "bigint")
    assert _rejected(["4294967296"], "int")
    assert _cast(["4294967296"], "bigint") == [4294967296]


def test_double():
    assert _cast(["1.5", "-0.25", "1e3", "+2", " 3 ", ".5", "1E-3"], "double") == [1.5, -0.25, 1000.0, 2.0, 3.0, 0.5, 0.001]


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity", "1e400", "abc", "1,5"])
def test_double_rejects_what_mysql_cannot_store(bad):
    assert _rejected([bad], "double")


def test_float_overflow_is_rejected_not_made_infinite():
    assert _rejected(["3.5e38"], "float")
    assert _cast(["3.4e38"], "float")[0] == pytest.approx(3.4e38, rel=1e-6)


def test_decimal_values_are_exact():
    assert _cast(["12.34", "-0.01", "5", "7.", ".5", " 1.2 ", "+3.10"], "decimal(10,2)") == [
        Decimal("12.34"),
        Decimal("-0.01"),
        Decimal("5.00"),
        Decimal("7.00"),
        Decimal("0.50"),
        Decimal("1.20"),
        Decimal("3.10"),
    ]


def test_decimal_with_too_many_decimals_is_rejected_not_rounded():
    good, bad = type_batch(_batch(d=["1.23", "1.235", "1.2"]), [TargetColumn("d", "decimal(5,2)")], 1)
    assert good.column("d").to_pylist() == [Decimal("1.23"), Decimal("1.20")]
    assert [r.line for r in bad] == [2]
    assert "2 digits after the decimal point" in bad[0].reason


def test_decimal_trailing_zeros_past_the_scale_lose_nothing():
    assert _cast(["1.500", "12.0", "0.0000", "123.450"], "decimal(5,2)") == [
        Decimal("1.50"),
        Decimal("12.00"),
        Decimal("0.00"),
        Decimal("123.45"),
    ]
    assert _cast(["12.", "12.00"], "decimal(5,0)") == [Decimal("12"), Decimal("12")]


@pytest.mark.parametrize(
    "bad, glue_type",
    [
        ("123456789.12", "decimal(10,2)"),
        ("1.505", "decimal(10,2)"),
        ("12.01", "decimal(10,0)"),  # 9 integer digits, only 8 fit
        ("1.5", "decimal(10,0)"),
        ("1e3", "decimal(10,2)"),
        ("1,000.00", "decimal(10,2)"),
        (".", "decimal(10,2)"),
        ("-", "decimal(10,2)"),
        ("abc", "decimal(10,2)"),
    ],
)
def test_decimal_rejects(bad, glue_type):
    assert _rejected([bad], glue_type)


@settings(max_examples=100, deadline=None)
@given(st.decimals(min_value=-(10**8) + 1, max_value=10**8 - 1, places=4, allow_nan=False, allow_infinity=False))
def test_decimal_never_rounds(value):
    text = format(value, "f")
    good, bad = type_batch(_batch(d=[text]), [TargetColumn("d", "decimal(12,2)")], 1)
    if value == value.quantize(Decimal("0.01")):
        assert good.column("d").to_pylist() == [value]
    else:
        assert good.num_rows == 0 and len(bad) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("FALSE", False),
        ("True", True),
        (" t ", True),
        ("f", False),
        ("yes", True),
        ("No", False),
        ("y", True),
        ("N", False),
        ("1", True),
        ("0", False),
    ],
)
def test_boolean(text, expected):
    assert _cast([text], "boolean") == [expected]


@pytest.mark.parametrize("bad", ["maybe", "2", "-1", "tru", "on", " "])
def test_boolean_rejects(bad):
    assert _rejected([bad], "boolean")


def test_dates():
    assert _cast(["2024-02-29", " 2024-01-01 "], "date") == [dt.date(2024, 2, 29), dt.date(2024, 1, 1)]


@pytest.mark.parametrize("bad", ["2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "20240101", "2024/01/01", "x"])
def test_invalid_dates_are_rejected(bad):
    assert _rejected([bad], "date")


def test_timestamps():
    assert _cast(
        ["2024-01-01 10:00:00", "2024-01-01T10:00:00.123456", "2025-08-29 15:11:59.5", "2024-02-29"],
        "timestamp",
    ) == [
        dt.datetime(2024, 1, 1, 10, 0, 0),
        dt.datetime(2024, 1, 1, 10, 0, 0, 123456),
        dt.datetime(2025, 8, 29, 15, 11, 59, 500000),
        dt.datetime(2024, 2, 29),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "2024-01-01 25:00:00",
        "2024-02-30 10:00:00",
        "2024-01-01 10:00:00+09:00",  # a zone offset cannot be kept in TIMESTAMP_NTZ / DATETIME
        "2024-01-01 10:00:00.1234567",  # below a microsecond would be truncated
        "yesterday",
    ],
)
def test_invalid_timestamps_are_rejected(bad):
    assert _rejected([bad], "timestamp")


def test_strings_are_kept_exactly():
    values = ["  padded  ", "", "회원", 'a "b", c', None]
    assert _cast(values, "string") == values


# ------------------------------------------------------------------------------------------ mysql_ready


def test_mysql_ready_turns_booleans_into_0_and_1():
    columns = [TargetColumn("b", "boolean"), TargetColumn("n", "int"), TargetColumn("s", "string")]
    good, _ = type_batch(_batch(b=["true", "no", None], n=["1", "2", "3"], s=["x", "y", None]), columns, 1)
    ready = mysql_ready(good)
    assert ready.column("b").to_pylist() == [1, 0, None]
    assert pa.types.is_integer(ready.schema.field("b").type)
    assert ready.column("n").to_pylist() == [1, 2, 3]
    assert ready.column("s").to_pylist() == ["x", "y", None]
    assert ready.schema.names == ["b", "n", "s"]


def test_mysql_ready_text_is_what_load_data_parses():
    """The MySQL mirror writes mysql_ready batches as CSV for LOAD DATA; check the text forms."""
    columns = [
        TargetColumn("b", "boolean"),
        TargetColumn("t", "timestamp"),
        TargetColumn("d", "decimal(10,2)"),
        TargetColumn("day", "date"),
    ]
    good, _ = type_batch(_batch(b=["y"], t=["2024-01-01T10:00:00.5"], d=["1.5"], day=["2024-02-29"]), columns, 1)
    out = io.BytesIO()
    pacsv.write_csv(mysql_ready(good), out, write_options=pacsv.WriteOptions(include_header=False))
    assert next(csv.reader(io.StringIO(out.getvalue().decode()))) == [
        "1",
        "2024-01-01 10:00:00.500000",
        "1.50",
        "2024-02-29",
    ]


# ------------------------------------------------------------------------------------------ quarantine


def test_quarantine_csv_keeps_line_reason_and_values():
    rows = [
        RejectedRow(3, ("x", None, "회원"), "column 'id': value 'x' is not a valid int (...)"),
        RejectedRow(9, ('a "q", b', "2", ""), "reason, with comma"),
    ]
    body = quarantine_csv("member/a.csv", ["id", "n", "name"], rows)
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert parsed == [
        ["source_key", "line", "reason", "id", "n", "name"],
        ["member/a.csv", "3", "column 'id': value 'x' is not a valid int (...)", "x", "", "회원"],
        ["member/a.csv", "9", "reason, with comma", 'a "q", b', "2", ""],
    ]


def test_quarantine_files_can_be_written_in_pieces():
    rows = [RejectedRow(1, ("x",), "r1"), RejectedRow(5, ("y",), "r2")]
    pieces = quarantine_header(["id"]) + quarantine_rows("t/a.csv", rows[:1]) + quarantine_rows("t/a.csv", rows[1:])
    assert pieces == quarantine_csv("t/a.csv", ["id"], rows)


# ------------------------------------------------------------------------------------------ many bad rows


def test_a_block_where_every_value_is_bad_rejects_every_row_with_its_line():
    # Speed is measured in bench/, not here; this checks the all-bad block's results.
    n = 10_000
    batch = _batch(id=[str(i) for i in range(n)], amount=[f"x{i}" for i in range(n)], day=["2024-13-01"] * n)
    columns = [TargetColumn("id", "int"), TargetColumn("amount", "decimal(10,2)"), TargetColumn("day", "date")]
    good, bad = type_batch(batch, columns, first_line=1)
    assert good.num_rows == 0 and [r.line for r in bad] == list(range(1, n + 1))
    assert bad[7].reason == "column 'amount': value 'x7' is not a valid decimal(10,2) " + (
        "(not a plain decimal number with at most 2 digits after the decimal point)"
    )


def test_rows_failing_in_several_columns_are_reported_once_by_their_first_failing_column():
    batch = _batch(a=["1", "x", "3", "y"], b=["2024-01-01", "bad", "2024-02-30", "2024-01-04"])
    good, bad = type_batch(batch, [TargetColumn("a", "int"), TargetColumn("b", "date")], first_line=10)
    assert good.column("a").to_pylist() == [1]
    assert [(r.line, r.reason.split(":")[0]) for r in bad] == [
        (11, "column 'a'"),
        (12, "column 'b'"),
        (13, "column 'a'"),
    ]


_shapes = st.text(alphabet="0123456789-:. T+eE,xZ", max_size=26)


@settings(max_examples=400, deadline=None)
@given(_shapes, st.sampled_from(["int", "bigint", "double", "decimal(6,2)", "date", "timestamp", "boolean"]))
def test_values_ruled_out_by_pattern_never_cast(text, glue_type):
    """The patterns that find bad rows fast only ever rule out values the cast itself refuses."""
    from sf_platform.core.conversion import _ruled_out

    values = pa.array([text], pa.string())
    mask, _ = _ruled_out(values, glue_type)
    if mask[0].as_py():
        with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError)):
            cast_column(values, glue_type)


_date_like = st.builds(
    lambda y, m, d, h, mi, sec, sep, frac: f"{y:04d}-{m:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{sec:02d}{frac}",
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from([" ", "T"]),
    st.sampled_from(["", ".5", ".123456"]),
)


@settings(max_examples=400, deadline=None)
@given(_date_like, st.booleans())
def test_dates_and_times_ruled_out_by_pattern_never_cast(text, date_only):
    from sf_platform.core.conversion import _ruled_out

    values = pa.array([text[:10] if date_only else text], pa.string())
    glue_type = "date" if date_only else "timestamp"
    mask, _ = _ruled_out(values, glue_type)
    if mask[0].as_py():
        with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError)):
            cast_column(values, glue_type)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01",
        "2024-01-01 10",
        "2024-01-01 10:11",
        "2024-01-01T10:11:12",
        "2024-01-01 10:11:12.123456",
        "2024-12-31 23:59:59",
    ],
)
def test_timestamps_the_cast_accepts_are_not_ruled_out(text):
    from sf_platform.core.conversion import _ruled_out

    values = pa.array([text], pa.string())
    cast_column(values, "timestamp")
    assert not _ruled_out(values, "timestamp")[0][0].as_py()


_numeric_text = st.text(alphabet="0123456789-+. eExX\\u00a0T:", max_size=14)


@settings(max_examples=500, deadline=None)
@given(_numeric_text, st.sampled_from(["int", "bigint", "decimal(6,2)", "decimal(5,0)", "date"]))
@example(".0", "decimal(5,0)")  # once refused by the exact path only
@example("-.0", "decimal(5,0)")
def test_the_fast_cast_agrees_with_the_exact_one(text, glue_type):
    """cast_column first tries Arrow's cast on the values as they are; it must accept exactly what the
    slower, exact path accepts, with the same values."""
    from sf_platform.core.conversion import _cast_exactly, _cast_plain

    values = pa.array([text], pa.string())
    target = _arrow(glue_type)
    fast = _cast_plain(values, target)
    try:
        exact = _cast_exactly(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        assert fast is None
        return
    assert fast is None or fast.to_pylist() == exact.to_pylist()


def _arrow(glue_type: str) -> pa.DataType:
    from sf_platform.core.types import to_arrow

    return to_arrow(glue_type)
