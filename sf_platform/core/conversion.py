"""Typing rows: string record batches to the catalog's Arrow types, with the bad rows set aside.

Curation (the hub, the only hop that types rows) takes its rows through ``type_batch``, so "what counts as a valid
value" is decided once. A batch is cast column by column in Arrow (vectorised); only when a cast fails
are the offending rows looked for, column by column (patterns first, then bisection), and returned
with the reason; they are never loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import types as glue_types

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class RejectedRow:
    """One row that is not loaded: its position in the file, values and the reason. Rows that cannot be
    typed and ragged rows (another number of fields; no values, the row's text is in the reason)."""

    line: int  # 1-based data row number within the file (header excluded; see inference.StringBlock)
    values: tuple[str | None, ...]
    reason: str


@dataclass(frozen=True)
class TargetColumn:
    name: str
    type: str  # Glue type string


def arrow_schema(columns: Sequence[TargetColumn]) -> pa.Schema:
    return pa.schema([pa.field(c.name, glue_types.to_arrow(c.type)) for c in columns])


def type_batch(
    batch: pa.RecordBatch,
    columns: Sequence[TargetColumn],
    first_line: int,
    *,
    lines: Sequence[int] | None = None,
) -> tuple[pa.RecordBatch, list[RejectedRow]]:
    """Cast a string batch (columns named like ``columns``) to their types.

    Returns the typed good rows and the rejected rows. ``first_line`` is the data row number of the
    batch's first row, so rejected rows can be reported by line; ``lines``, when given, is the data row
    number of each row instead (for a batch whose rows do not follow one another in the file).
    """
    try:
        return _cast_all(batch, columns), []
    except _CAST_ERRORS:
        if batch.num_rows == 0:
            raise  # no row to blame
    reasons = _failing_rows(batch, columns)
    bad = pa.array(sorted(reasons), pa.int64())
    keep = pc.invert(pc.is_in(pa.array(np.arange(batch.num_rows)), bad))
    good = _cast_all(batch.filter(keep), columns)
    values = zip(*(column.take(bad).to_pylist() for column in batch.columns), strict=True)
    rejected = [
        RejectedRow(first_line + index if lines is None else int(lines[index]), row, reasons[index])
        for index, row in zip(bad.to_pylist(), values, strict=True)
    ]
    return good, rejected


_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError)


def _cast_all(batch: pa.RecordBatch, columns: Sequence[TargetColumn]) -> pa.RecordBatch:
    arrays = [cast_column(batch.column(c.name), c.type) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))


def _failing_rows(batch: pa.RecordBatch, columns: Sequence[TargetColumn]) -> dict[int, str]:
    """Row index -> why it cannot be typed, naming the first column (in ``columns`` order) that fails."""
    reasons: dict[int, str] = {}
    for c in columns:
        values = batch.column(c.name)
        failures = _column_failures(values, c.type)
        texts = values.take(pa.array([i for i, _ in failures], pa.int64())).to_pylist()
        for (index, message), text in zip(failures, texts, strict=True):
            reasons.setdefault(
                index, f"column {c.name!r}: value {text!r} is not a valid {c.type} ({message})"
            )
    return reasons


def _column_failures(values: pa.Array, type_string: str) -> list[tuple[int, str]]:
    """(index, message) of each value of one column that does not cast.

    Values a vectorised pattern already rules out are found at once; the rest (an int out of range,
    the 30th of February) by bisecting, so a column full of bad values costs no more than a good one.
    """
    try:
        cast_column(values, type_string)
        return []
    except _CAST_ERRORS:
        pass
    failures: list[tuple[int, str]] = []
    ruled_out = _ruled_out(values, type_string)
    if ruled_out is not None:
        mask, message = ruled_out
        failures = [(i, message) for i in pc.indices_nonzero(mask).to_pylist()]
        values = pc.if_else(mask, pa.scalar(None, values.type), values)
    return sorted(failures + _bisect_failures(values, type_string, 0))


def _bisect_failures(values: pa.Array, type_string: str, offset: int) -> list[tuple[int, str]]:
    try:
        cast_column(values, type_string)
        return []
    except _CAST_ERRORS as exc:
        if len(values) == 1:
            return [(offset, str(exc))]
    half = len(values) // 2
    return _bisect_failures(values.slice(0, half), type_string, offset) + _bisect_failures(
        values.slice(half), type_string, offset + half
    )


# Patterns every value a cast accepts matches (after trimming; timestamps with "T" as " "): a value
# that does not match certainly fails. Tested against the casts in test_conversion.
_DATE = "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = "(?:[01][0-9]|2[0-3])(?::[0-5][0-9](?::(?:[0-5][0-9]|60)(?:\\.[0-9]+)?)?)?"
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_SHAPES = {
    "date": (f"^{_DATE}$", "not a date (YYYY-MM-DD)"),
    "timestamp": (f"^{_DATE}(?: {_TIME})?$", "not a timestamp (YYYY-MM-DD hh:mm:ss)"),
    "double": (_NUMBER, "not a finite number"),
    "float": (_NUMBER, "not a finite number"),
}
_INTEGER_TYPES = ("bigint", "int", "smallint", "tinyint")


def _ruled_out(values: pa.Array, type_string: str) -> tuple[pa.Array, str] | None:
    """(mask of values that certainly fail, message), or None for types without such a pattern."""
    t = glue_types.parse(type_string)
    stripped = pc.utf8_trim_whitespace(values)
    if t.name in _INTEGER_TYPES:
        pattern, message = _INTEGER, "not an integer"
    elif t.name == "decimal":
        pattern, message = _decimal_pattern(t.scale), _decimal_message(t.scale)
    elif t.name == "boolean":
        known = pc.is_in(pc.utf8_lower(stripped), pa.array(sorted(_TRUE | _FALSE)))
        return pc.and_(pc.invert(known), pc.is_valid(stripped)), "not a boolean (true/false)"
    elif t.name in _SHAPES:
        pattern, message = _SHAPES[t.name]
        stripped = pc.replace_substring(stripped, "T", " ") if t.name == "timestamp" else stripped
    else:
        return None
    return pc.fill_null(pc.invert(pc.match_substring_regex(stripped, pattern)), False), message


def cast_column(values: pa.Array, type_string: str) -> pa.Array:
    """Cast one string column to a Glue type; raises on any value that does not fit exactly."""
    target = glue_types.to_arrow(type_string)
    if pa.types.is_string(target):
        return values
    fast = _cast_plain(values, target)
    return fast if fast is not None else _cast_exactly(values, target)


def _cast_plain(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    """The cast for the common case, values already in their plain form (no spaces, no "+" on an
    integer, no "T" in a timestamp): Arrow's cast itself, minus the forms it takes that we refuse.
    None when that is not enough; ``_cast_exactly`` then decides, with the reason."""
    if not (pa.types.is_integer(target) or pa.types.is_decimal(target) or pa.types.is_date(target)):
        return None
    try:
        cast = pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # Arrow also reads "0x1F" as an integer and "1e3" as a decimal; a CSV number has neither.
    refused = b"xX" if pa.types.is_integer(target) else b"eE" if pa.types.is_decimal(target) else b""
    return None if _may_contain(values, refused) else cast


def _may_contain(values: pa.Array, characters: bytes) -> bool:
    """Whether a value of a string array may hold one of the (ASCII) ``characters``. Searches the whole
    data buffer, at C speed: a sliced array may answer yes for bytes outside it, which only costs the
    exact path."""
    if not characters:
        return False
    data = values.buffers()[2] if pa.types.is_string(values.type) else None
    if data is None:
        return bool(pc.any(pc.match_substring_regex(values, f"[{characters.decode()}]")).as_py())
    raw = data.to_pybytes()
    return any(character in raw for character in characters)


def _cast_exactly(values: pa.Array, target: pa.DataType) -> pa.Array:
    stripped = pc.utf8_trim_whitespace(values)
    if pa.types.is_boolean(target):
        lowered = pc.utf8_lower(stripped)
        known = pc.or_(
            pc.is_in(lowered, pa.array(sorted(_TRUE))), pc.is_in(lowered, pa.array(sorted(_FALSE)))
        )
        if not pc.all(pc.or_(known, pc.is_null(lowered)), min_count=0).as_py():
            raise ValueError("not a boolean (true/false)")
        return pc.if_else(
            pc.is_null(lowered), pa.scalar(None, pa.bool_()), pc.is_in(lowered, pa.array(sorted(_TRUE)))
        )
    if pa.types.is_timestamp(target):
        normalized = pc.replace_substring(stripped, "T", " ")
        return pc.cast(normalized, target)
    if pa.types.is_integer(target):
        # Arrow's integer parser reads "0x1F" as 31 but refuses "+5"; a CSV integer is signed digits.
        _check_pattern(stripped, _INTEGER, "not an integer")
        stripped = pc.utf8_ltrim(stripped, characters="+")
    if pa.types.is_decimal(target):
        # Refuse exponents and name the scale when there are too many decimals (Arrow's own cast
        # refuses to round, with a less helpful message).
        _check_pattern(stripped, _decimal_pattern(target.scale), _decimal_message(target.scale))
    cast = pc.cast(stripped, target)
    # NaN and infinities (also what "1e400" overflows to) cannot be stored in MySQL's DOUBLE / FLOAT.
    if pa.types.is_floating(target) and pc.all(pc.is_finite(cast)).as_py() is False:
        raise ValueError("not a finite number")
    return cast


_INTEGER = r"^[+-]?[0-9]+$"


def _decimal_pattern(scale: int) -> str:
    # Trailing zeros past the scale lose nothing ("1.500" is a valid decimal(5,2)).
    # ".5" is a plain number at any scale, so ".0" is one at scale 0.
    return rf"^[+-]?[0-9]*\.?[0-9]{{0,{scale}}}0*$" if scale else r"^[+-]?([0-9]+(\.0*)?|\.0+)$"


def _decimal_message(scale: int) -> str:
    return f"not a plain decimal number with at most {scale} digits after the decimal point"


def _check_pattern(values: pa.Array, pattern: str, message: str) -> None:
    ok = pc.match_substring_regex(values, pattern)
    if not pc.all(pc.or_(pc.fill_null(ok, True), pc.is_null(values)), min_count=0).as_py():
        raise ValueError(message)


def mysql_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Arrow values in the text forms MySQL's LOAD DATA parses exactly (booleans as 0/1)."""
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        arrays.append(pc.cast(column, pa.int8()) if pa.types.is_boolean(field.type) else column)
    names = [f.name for f in batch.schema]
    return pa.RecordBatch.from_arrays(arrays, names=names)
