"""Typing rows: string record batches to the catalog's Arrow types, with the bad rows set aside.

Every loader (MySQL, Snowflake) takes its rows through ``type_batch``, so "what counts as a valid
value" is decided once. A batch is cast column by column in Arrow (vectorised); only when a cast fails
is the batch bisected to find the offending rows, which are returned with the reason and never loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from . import types as glue_types

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class RejectedRow:
    """One row that could not be typed: its position in the file, values and the reason."""

    line: int  # 1-based data row number within the file (header excluded)
    values: tuple[str | None, ...]
    reason: str


@dataclass(frozen=True)
class TargetColumn:
    name: str
    type: str  # Glue type string


def arrow_schema(columns: Sequence[TargetColumn]) -> pa.Schema:
    return pa.schema([pa.field(c.name, glue_types.to_arrow(c.type)) for c in columns])


def type_batch(
    batch: pa.RecordBatch, columns: Sequence[TargetColumn], first_line: int
) -> tuple[pa.RecordBatch, list[RejectedRow]]:
    """Cast a string batch (columns named like ``columns``) to their types.

    Returns the typed good rows and the rejected rows. ``first_line`` is the data row number of the
    batch's first row, so rejected rows can be reported by line.
    """
    try:
        return _cast_all(batch, columns), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        if batch.num_rows == 0:
            raise  # no row to blame: bisecting would never end
        if batch.num_rows == 1:
            values = tuple(batch.column(i)[0].as_py() for i in range(batch.num_columns))
            return _empty(columns), [RejectedRow(first_line, values, _reason(exc, batch, columns))]
    half = batch.num_rows // 2
    good_a, bad_a = type_batch(batch.slice(0, half), columns, first_line)
    good_b, bad_b = type_batch(batch.slice(half), columns, first_line + half)
    good = pa.Table.from_batches([good_a, good_b]).combine_chunks().to_batches()
    return (good[0] if good else _empty(columns)), bad_a + bad_b


def _empty(columns: Sequence[TargetColumn]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=arrow_schema(columns))


def _cast_all(batch: pa.RecordBatch, columns: Sequence[TargetColumn]) -> pa.RecordBatch:
    arrays = [cast_column(batch.column(c.name), c.type) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))


def cast_column(values: pa.Array, type_string: str) -> pa.Array:
    """Cast one string column to a Glue type; raises on any value that does not fit exactly."""
    target = glue_types.to_arrow(type_string)
    if pa.types.is_string(target):
        return values
    stripped = pc.utf8_trim_whitespace(values)
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(stripped)
        known = pc.or_(pc.is_in(lowered, pa.array(sorted(_TRUE))), pc.is_in(lowered, pa.array(sorted(_FALSE))))
        if not pc.all(pc.or_(known, pc.is_null(lowered)), min_count=0).as_py():
            raise ValueError("not a boolean (true/false)")
        return pc.if_else(pc.is_null(lowered), pa.scalar(None, pa.bool_()), pc.is_in(lowered, pa.array(sorted(_TRUE))))
    if pa.types.is_timestamp(target):
        normalized = pc.replace_substring(stripped, "T", " ")
        return pc.cast(normalized, target)
    if pa.types.is_integer(target):
        # Arrow's integer parser reads "0x1F" as 31 but refuses "+5"; a CSV integer is signed digits.
        _check_pattern(stripped, r"^[+-]?[0-9]+$", "not an integer")
        stripped = pc.utf8_ltrim(stripped, characters="+")
    if pa.types.is_decimal(target):
        # Arrow's decimal cast rounds extra digits away; refuse values whose scale is too large.
        _check_decimal_scale(stripped, target.scale)
    cast = pc.cast(stripped, target)
    # NaN and infinities (also what "1e400" overflows to) cannot be stored in MySQL's DOUBLE / FLOAT.
    if pa.types.is_floating(target) and pc.all(pc.is_finite(cast)).as_py() is False:
        raise ValueError("not a finite number")
    return cast


def _check_decimal_scale(values: pa.Array, scale: int) -> None:
    # Trailing zeros past the scale lose nothing ("1.500" is a valid decimal(5,2)).
    pattern = rf"^[+-]?[0-9]*\.?[0-9]{{0,{scale}}}0*$" if scale else r"^[+-]?[0-9]+(\.0*)?$"
    message = f"not a plain decimal number with at most {scale} digits after the decimal point"
    _check_pattern(values, pattern, message)


def _check_pattern(values: pa.Array, pattern: str, message: str) -> None:
    ok = pc.match_substring_regex(values, pattern)
    if not pc.all(pc.or_(pc.fill_null(ok, True), pc.is_null(values)), min_count=0).as_py():
        raise ValueError(message)


def _reason(exc: Exception, batch: pa.RecordBatch, columns: Sequence[TargetColumn]) -> str:
    for c in columns:
        try:
            cast_column(batch.column(c.name), c.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as col_exc:
            value = batch.column(c.name)[0].as_py()
            return f"column {c.name!r}: value {value!r} is not a valid {c.type} ({col_exc})"
    return str(exc)


def mysql_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Arrow values in the text forms MySQL's LOAD DATA parses exactly (booleans as 0/1)."""
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        arrays.append(pc.cast(column, pa.int8()) if pa.types.is_boolean(field.type) else column)
    names = [f.name for f in batch.schema]
    return pa.RecordBatch.from_arrays(arrays, names=names)
