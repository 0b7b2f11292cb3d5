"""The platform's type system: Glue/Hive column types and their one mapping to MySQL, Snowflake, Redshift
and Arrow.

A catalog column carries a Glue type string (``bigint``, ``decimal(12,2)`` ...). Every hop maps that
string through this module, so MySQL, Snowflake and Redshift DDL and the Arrow schema used to validate
rows can never disagree about what a column is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
_SIMPLE = {"bigint", "int", "smallint", "tinyint", "double", "float", "boolean", "date", "timestamp", "string"}

MYSQL_MAX_DECIMAL_PRECISION = 65

# String columns up to this many characters become VARCHAR; MySQL rows are limited to 65,535 bytes in
# total, so wider strings go to TEXT types, which live off-row.
MYSQL_MAX_VARCHAR_CHARS = 1024
MYSQL_TEXT_MAX_BYTES = 65_535
MYSQL_MEDIUMTEXT_MAX_BYTES = 16_777_215
UTF8MB4_BYTES_PER_CHAR = 4
REDSHIFT_MAX_VARCHAR_BYTES = 65_535


class UnknownTypeError(ValueError):
    """A catalog type string this platform does not know how to map."""


@dataclass(frozen=True)
class GlueType:
    """A parsed Glue type: the base name plus precision/scale for decimals."""

    name: str
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.name


def parse(type_string: str) -> GlueType:
    """Parse a Glue type string; raise UnknownTypeError naming it when unsupported."""
    text = type_string.strip().lower()
    if text in _SIMPLE:
        return GlueType(text)
    m = _DECIMAL.match(text)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not (1 <= precision <= 38 and 0 <= scale <= precision):
            raise UnknownTypeError(f"decimal precision/scale out of range: {type_string!r}")
        return GlueType("decimal", precision, scale)
    raise UnknownTypeError(f"unsupported column type {type_string!r}")


def sized_chars(max_chars: int | None) -> int:
    """Characters a string column gets for the longest observed value: double it, rounded up to a
    multiple of 16 (at least 16), so appended files with slightly longer values need no ALTER each load."""
    return max(16, -(-max(int(max_chars or 0), 1) * 2 // 16) * 16)


def mysql_string_type(max_chars: int | None) -> str:
    """VARCHAR sized from the longest observed value with headroom, or a TEXT type beyond that."""
    observed = max(int(max_chars or 0), 1)
    sized = sized_chars(max_chars)
    if sized <= MYSQL_MAX_VARCHAR_CHARS:
        return f"VARCHAR({sized})"
    if observed * UTF8MB4_BYTES_PER_CHAR <= MYSQL_TEXT_MAX_BYTES:
        return "TEXT"
    if observed * UTF8MB4_BYTES_PER_CHAR <= MYSQL_MEDIUMTEXT_MAX_BYTES:
        return "MEDIUMTEXT"
    return "LONGTEXT"


def to_mysql(type_string: str, max_chars: int | None = None) -> str:
    """MySQL column type for a Glue type; strings are sized from ``max_chars``."""
    t = parse(type_string)
    return {
        "bigint": "BIGINT",
        "int": "INT",
        "smallint": "SMALLINT",
        "tinyint": "TINYINT",
        "double": "DOUBLE",
        "float": "FLOAT",
        "boolean": "TINYINT(1)",
        "date": "DATE",
        "timestamp": "DATETIME(6)",
    }.get(t.name) or (
        f"DECIMAL({t.precision},{t.scale})" if t.name == "decimal" else mysql_string_type(max_chars)
    )


def to_snowflake(type_string: str) -> str:
    """Snowflake column type for a Glue type."""
    t = parse(type_string)
    if t.name == "decimal":
        return f"NUMBER({t.precision},{t.scale})"
    return {
        "bigint": "NUMBER(38,0)",
        "int": "NUMBER(38,0)",
        "smallint": "NUMBER(38,0)",
        "tinyint": "NUMBER(38,0)",
        "double": "FLOAT",
        "float": "FLOAT",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP_NTZ",
        "string": "VARCHAR",
    }[t.name]


def to_redshift(type_string: str, max_chars: int | None = None) -> str:
    """Redshift column type for a Glue type; strings are sized in bytes (UTF-8: up to 4 a character)."""
    t = parse(type_string)
    if t.name == "decimal":
        return f"DECIMAL({t.precision},{t.scale})"
    if t.name == "string":
        return f"VARCHAR({min(sized_chars(max_chars) * UTF8MB4_BYTES_PER_CHAR, REDSHIFT_MAX_VARCHAR_BYTES)})"
    return {
        "bigint": "BIGINT",
        "int": "INTEGER",
        "smallint": "SMALLINT",
        "tinyint": "SMALLINT",
        "double": "DOUBLE PRECISION",
        "float": "REAL",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    }[t.name]


def to_arrow(type_string: str) -> pa.DataType:
    """Arrow type used to validate and convert values of a Glue type."""
    t = parse(type_string)
    if t.name == "decimal":
        return pa.decimal128(t.precision, t.scale)
    return {
        "bigint": pa.int64(),
        "int": pa.int32(),
        "smallint": pa.int16(),
        "tinyint": pa.int8(),
        "double": pa.float64(),
        "float": pa.float32(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "string": pa.string(),
    }[t.name]


# MySQL types that can be widened in place by ALTER TABLE ... MODIFY without losing data.
_MYSQL_INT_RANK = {"TINYINT": 0, "SMALLINT": 1, "INT": 2, "BIGINT": 3}
_MYSQL_INT_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INT": 10, "BIGINT": 19}


def mysql_widening(current: str, wanted: str) -> str | None:
    """The type to MODIFY a MySQL column to, or None when ``current`` already holds ``wanted``.

    Raises ValueError when the change would lose data (narrowing or an incompatible type).
    """
    cur, new = _canonical_mysql(current), _canonical_mysql(wanted)
    if cur == new:
        return None
    if cur in _MYSQL_INT_RANK and new in _MYSQL_INT_RANK:
        return wanted if _MYSQL_INT_RANK[new] > _MYSQL_INT_RANK[cur] else None
    cur_len, new_len = _varchar_len(cur), _varchar_len(new)
    text_rank = {"TEXT": 1, "MEDIUMTEXT": 2, "LONGTEXT": 3}
    if cur_len is not None and new_len is not None:
        return wanted if new_len > cur_len else None
    if cur_len is not None and new in text_rank:
        return wanted
    if cur in text_rank and new_len is not None:
        return None
    if cur in text_rank and new in text_rank:
        return wanted if text_rank[new] > text_rank[cur] else None
    if cur == "DATE" and new == "DATETIME(6)":
        return wanted  # a date is that day at midnight
    if cur in _MYSQL_INT_RANK and new == "DOUBLE" and cur != "BIGINT":
        return wanted  # every INT is exact in a double; a BIGINT may not be
    cur_dec, new_dec = _decimal_ps(cur), _decimal_ps(new)
    if cur in _MYSQL_INT_RANK and new_dec:
        cur_dec = (_MYSQL_INT_DIGITS[cur], 0)  # an integer column as the decimal holding all its values
    if cur_dec and new_dec:
        (cp, cs), (np_, ns) = cur_dec, new_dec
        if ns >= cs and np_ - ns >= cp - cs:
            return wanted
        if ns <= cs and np_ - ns <= cp - cs:
            return None
        # Neither holds the other: take the larger integer part and the larger scale.
        scale = max(cs, ns)
        precision = max(cp - cs, np_ - ns) + scale
        if precision <= MYSQL_MAX_DECIMAL_PRECISION:
            return f"DECIMAL({precision},{scale})"
    raise ValueError(f"cannot change column type {current} to {wanted} without losing data")


def _canonical_mysql(t: str) -> str:
    """Upper case without spaces or integer display widths: information_schema on MariaDB and MySQL 5.7
    reports ``int(11)`` / ``bigint(20)`` for the ``INT`` / ``BIGINT`` this module creates.
    ``TINYINT(1)`` keeps its width: it is how booleans are stored."""
    t = t.upper().replace(" ", "")
    if t == "TINYINT(1)":
        return t
    return re.sub(r"^(TINYINT|SMALLINT|INT|BIGINT)\(\d+\)$", r"\1", t)


def _varchar_len(t: str) -> int | None:
    m = re.fullmatch(r"VARCHAR\((\d+)\)", t)
    return int(m.group(1)) if m else None


def _decimal_ps(t: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t)
    return (int(m.group(1)), int(m.group(2))) if m else None
