"""The one type mapping: Glue type strings to MySQL, Snowflake, Redshift and Arrow, and MySQL column widening."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core import types
from sf_platform.core.types import UnknownTypeError, mysql_string_type, mysql_widening

# Glue type -> (MySQL, Snowflake, Redshift, Arrow); strings are covered separately (they are sized).
MAPPING = {
    "bigint": ("BIGINT", "NUMBER(38,0)", "BIGINT", pa.int64()),
    "int": ("INT", "NUMBER(38,0)", "INTEGER", pa.int32()),
    "smallint": ("SMALLINT", "NUMBER(38,0)", "SMALLINT", pa.int16()),
    "tinyint": ("TINYINT", "NUMBER(38,0)", "SMALLINT", pa.int8()),
    "double": ("DOUBLE", "FLOAT", "DOUBLE PRECISION", pa.float64()),
    "float": ("FLOAT", "FLOAT", "REAL", pa.float32()),
    "boolean": ("TINYINT(1)", "BOOLEAN", "BOOLEAN", pa.bool_()),
    "date": ("DATE", "DATE", "DATE", pa.date32()),
    "timestamp": ("DATETIME(6)", "TIMESTAMP_NTZ", "TIMESTAMP", pa.timestamp("us")),
    "decimal(12,2)": ("DECIMAL(12,2)", "NUMBER(12,2)", "DECIMAL(12,2)", pa.decimal128(12, 2)),
    "decimal(38,0)": ("DECIMAL(38,0)", "NUMBER(38,0)", "DECIMAL(38,0)", pa.decimal128(38, 0)),
    "decimal(1,1)": ("DECIMAL(1,1)", "NUMBER(1,1)", "DECIMAL(1,1)", pa.decimal128(1, 1)),
}


@pytest.mark.parametrize("glue_type", sorted(MAPPING))
def test_every_glue_type_maps_to_mysql_snowflake_redshift_and_arrow(glue_type):
    mysql, snowflake, redshift, arrow = MAPPING[glue_type]
    assert types.to_mysql(glue_type) == mysql
    assert types.to_snowflake(glue_type) == snowflake
    assert types.to_redshift(glue_type) == redshift
    assert types.to_arrow(glue_type) == arrow


def test_string_maps_to_varchar_in_snowflake_and_string_in_arrow():
    assert types.to_snowflake("string") == "VARCHAR"
    assert types.to_arrow("string") == pa.string()


@pytest.mark.parametrize(
    "spelling, canonical",
    [
        ("BIGINT", "bigint"),
        ("  Int ", "int"),
        ("DECIMAL(10,2)", "decimal(10,2)"),
        ("decimal(10, 2)", "decimal(10,2)"),
        (" Decimal(38,38) ", "decimal(38,38)"),
    ],
)
def test_type_strings_are_case_and_space_insensitive(spelling, canonical):
    assert str(types.parse(spelling)) == canonical
    assert types.to_mysql(spelling) == types.to_mysql(canonical)
    assert types.to_snowflake(spelling) == types.to_snowflake(canonical)


def test_parse_keeps_decimal_precision_and_scale():
    parsed = types.parse("decimal(12,3)")
    assert (parsed.name, parsed.precision, parsed.scale) == ("decimal", 12, 3)


@pytest.mark.parametrize(
    "bad",
    [
        "varchar(10)",
        "integer",
        "text",
        "array<string>",
        "struct<a:int>",
        "",
        "decimal",
        "decimal(0,0)",
        "decimal(39,2)",
        "decimal(5,6)",
        "decimal(100,2)",
        "decimal(10;2)",
        "decimal(10,2,1)",
        "bigint unsigned",
    ],
)
@pytest.mark.parametrize("mapper", [types.parse, types.to_mysql, types.to_snowflake, types.to_redshift, types.to_arrow])
def test_unknown_types_raise_naming_the_type(bad, mapper):
    with pytest.raises(UnknownTypeError) as excinfo:
        mapper(bad)
    assert repr(bad) in str(excinfo.value)


def test_unknown_type_error_is_a_value_error():
    # Callers that only know ValueError (pydantic validators) still catch it.
    assert issubclass(UnknownTypeError, ValueError)


# ------------------------------------------------------------------------------------------ strings


@pytest.mark.parametrize(
    "max_chars, expected",
    [
        (None, "VARCHAR(16)"),
        (0, "VARCHAR(16)"),
        (1, "VARCHAR(16)"),
        (8, "VARCHAR(16)"),
        (9, "VARCHAR(32)"),
        (16, "VARCHAR(32)"),
        (100, "VARCHAR(208)"),
        (500, "VARCHAR(1008)"),
        (512, "VARCHAR(1024)"),
        (513, "TEXT"),
        (16_383, "TEXT"),  # 65,532 bytes in utf8mb4
        (16_384, "MEDIUMTEXT"),
        (4_194_303, "MEDIUMTEXT"),
        (4_194_304, "LONGTEXT"),
    ],
)
def test_mysql_string_type_is_sized_from_the_longest_value(max_chars, expected):
    assert mysql_string_type(max_chars) == expected
    assert types.to_mysql("string", max_chars) == expected


@pytest.mark.parametrize(
    "max_chars, expected", [(None, "VARCHAR(64)"), (3, "VARCHAR(64)"), (100, "VARCHAR(832)"), (100_000, "VARCHAR(65535)")]
)
def test_redshift_strings_are_sized_in_bytes_with_the_same_headroom(max_chars, expected):
    assert types.to_redshift("string", max_chars) == expected  # 4 bytes a character, at most 65,535


def _holds_chars(mysql_type: str) -> int:
    """How many utf8mb4 characters a MySQL string type can hold."""
    m = re.fullmatch(r"VARCHAR\((\d+)\)", mysql_type)
    if m:
        return int(m.group(1))
    max_bytes = {"TEXT": 65_535, "MEDIUMTEXT": 16_777_215, "LONGTEXT": 4_294_967_295}[mysql_type]
    return max_bytes // 4


@given(st.integers(min_value=0, max_value=100_000_000))
def test_string_type_never_truncates_the_longest_value(max_chars):
    mysql_type = mysql_string_type(max_chars)
    assert _holds_chars(mysql_type) >= max_chars
    m = re.fullmatch(r"VARCHAR\((\d+)\)", mysql_type)
    if m:
        size = int(m.group(1))
        assert size <= types.MYSQL_MAX_VARCHAR_CHARS
        assert size % 16 == 0
        assert size >= 2 * max_chars  # headroom for appended files


@given(st.integers(0, 5_000_000), st.integers(0, 5_000_000))
def test_longer_strings_only_ever_widen_the_mysql_column(a, b):
    """Loading a file with longer values widens the column; shorter values never narrow it."""
    short, long = sorted((a, b))
    grown = mysql_widening(mysql_string_type(short), mysql_string_type(long))
    assert grown is None or _holds_chars(grown) >= long
    if grown is None:
        assert _holds_chars(mysql_string_type(short)) >= long
    assert mysql_widening(mysql_string_type(long), mysql_string_type(short)) is None


# ------------------------------------------------------------------------------------------ widening


@pytest.mark.parametrize(
    "current, wanted, expected",
    [
        ("INT", "BIGINT", "BIGINT"),
        ("TINYINT", "SMALLINT", "SMALLINT"),
        ("SMALLINT", "BIGINT", "BIGINT"),
        ("BIGINT", "INT", None),
        ("INT", "INT", None),
        ("VARCHAR(10)", "VARCHAR(20)", "VARCHAR(20)"),
        ("VARCHAR(20)", "VARCHAR(10)", None),
        ("VARCHAR(1024)", "TEXT", "TEXT"),
        ("VARCHAR(16)", "LONGTEXT", "LONGTEXT"),
        ("TEXT", "VARCHAR(1024)", None),
        ("TEXT", "MEDIUMTEXT", "MEDIUMTEXT"),
        ("LONGTEXT", "TEXT", None),
        ("DECIMAL(10,2)", "DECIMAL(12,2)", "DECIMAL(12,2)"),
        ("DECIMAL(12,2)", "DECIMAL(10,2)", None),
        ("DECIMAL(10,2)", "DECIMAL(12,4)", "DECIMAL(12,4)"),
        # neither holds the other: 8 integer digits from the first, scale 4 from the second
        ("DECIMAL(10,2)", "DECIMAL(10,4)", "DECIMAL(12,4)"),
        ("DECIMAL(10, 2)", "decimal(10,2)", None),
        ("DATE", "DATE", None),
        ("DATETIME(6)", "datetime(6)", None),
        ("TINYINT(1)", "TINYINT(1)", None),
        ("DOUBLE", "DOUBLE", None),
    ],
)
def test_mysql_widening(current, wanted, expected):
    assert mysql_widening(current, wanted) == expected


@pytest.mark.parametrize(
    "reported, wanted, expected",
    [
        ("int(11)", "INT", None),
        ("bigint(20)", "BIGINT", None),
        ("smallint(6)", "SMALLINT", None),
        ("tinyint(4)", "TINYINT", None),
        ("int(11)", "BIGINT", "BIGINT"),
        ("bigint(20)", "INT", None),
        ("tinyint(1)", "TINYINT(1)", None),
        ("varchar(32)", "VARCHAR(64)", "VARCHAR(64)"),
        ("decimal(12,2)", "DECIMAL(12,2)", None),
        ("mediumtext", "TEXT", None),
    ],
)
def test_widening_reads_information_schema_spellings(reported, wanted, expected):
    """MariaDB and MySQL 5.7 report INT as int(11) and BIGINT as bigint(20) in COLUMN_TYPE."""
    assert mysql_widening(reported, wanted) == expected


@pytest.mark.parametrize(
    "current, wanted",
    [
        ("DATE", "INT"),
        ("INT", "DATE"),
        ("DATETIME(6)", "DATE"),
        ("INT", "VARCHAR(16)"),
        ("VARCHAR(16)", "INT"),
        ("DOUBLE", "DECIMAL(10,2)"),
        ("DECIMAL(10,2)", "INT"),
        ("TEXT", "DATE"),
        # 38 integer digits and 30 decimals need 68 digits, over MySQL's 65
        ("DECIMAL(38,0)", "DECIMAL(38,30)"),
    ],
)
def test_widening_that_would_lose_data_raises(current, wanted):
    with pytest.raises(ValueError) as excinfo:
        mysql_widening(current, wanted)
    assert current in str(excinfo.value) and wanted in str(excinfo.value)


def test_decimal_widening_does_not_drop_integer_digits_past_38():
    # A column holding 38-digit integers that now also needs 10 decimals: DECIMAL(48,10), which MySQL
    # allows (precision up to 65); DECIMAL(38,10) would overflow the existing values.
    assert mysql_widening("DECIMAL(38,0)", "DECIMAL(38,10)") == "DECIMAL(48,10)"


def _decimal(p_s: tuple[int, int]) -> str:
    return f"DECIMAL({p_s[0]},{p_s[1]})"


_decimals = st.integers(1, 38).flatmap(lambda p: st.tuples(st.just(p), st.integers(0, p)))


@given(_decimals, _decimals)
def test_decimal_widening_result_holds_both_types(cur, new):
    try:
        result = mysql_widening(_decimal(cur), _decimal(new))
    except ValueError:
        # Only when the combined type is beyond MySQL's 65 digits.
        assert max(cur[0] - cur[1], new[0] - new[1]) + max(cur[1], new[1]) > 65
        return
    held = cur if result is None else tuple(int(x) for x in re.findall(r"\d+", result))
    for p, s in (cur, new):
        assert held[1] >= s, "scale shrank"
        assert held[0] - held[1] >= p - s, "integer digits shrank"
    assert held[0] <= 65


_INT_TYPES = ["TINYINT", "SMALLINT", "INT", "BIGINT"]


@given(st.sampled_from(_INT_TYPES), st.sampled_from(_INT_TYPES))
def test_integer_widening_never_narrows(cur, new):
    result = mysql_widening(cur, new)
    if _INT_TYPES.index(new) > _INT_TYPES.index(cur):
        assert result == new
    else:
        assert result is None


@pytest.mark.parametrize(
    "current, wanted, expected",
    [
        ("DATE", "DATETIME(6)", "DATETIME(6)"),  # the crawl widens date + timestamp to timestamp
        ("INT", "DOUBLE", "DOUBLE"),
        ("int(11)", "DECIMAL(12,2)", "DECIMAL(12,2)"),
        ("INT", "DECIMAL(5,2)", "DECIMAL(12,2)"),  # keeps the 10 digits an INT can hold
        ("BIGINT", "DECIMAL(19,0)", "DECIMAL(19,0)"),
        ("SMALLINT", "DECIMAL(3,0)", None),
    ],
)
def test_lossless_changes_across_type_families_widen(current, wanted, expected):
    assert mysql_widening(current, wanted) == expected


@pytest.mark.parametrize("current, wanted", [("BIGINT", "DOUBLE"), ("DECIMAL(10,2)", "DOUBLE"), ("TINYINT(1)", "INT")])
def test_changes_that_could_alter_values_are_refused(current, wanted):
    with pytest.raises(ValueError):
        mysql_widening(current, wanted)
