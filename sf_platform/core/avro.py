"""Avro for exports: column names Avro accepts, an Avro schema with logical types from an Arrow schema,
and Arrow batches as Avro records.

Avro names are ASCII ``[A-Za-z_][A-Za-z0-9_]*``; Snowflake column names are anything. Names are made
safe the catalog's way (lower case, reserved words get a trailing ``_``), folded to ASCII, numbered when
two collide, and the original name is kept in each field's ``sf_source_name`` attribute.

Logical types: decimal (bytes), date, ``local-timestamp-micros`` for TIMESTAMP_NTZ (a wall-clock time
with no zone: read back as the same naive datetime) and ``timestamp-micros`` for zoned timestamps.
Nullable fields are ``["null", T]`` with default null (so readers can evolve across exports); fields
of NOT NULL columns are plain ``T``.
Pure: pyarrow and numpy only; the writing is done by fastavro in the export hop.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .identifiers import normalize_name

AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
NAMESPACE = "sf_platform.exports"
SOURCE_NAME_ATTRIBUTE = "sf_source_name"
RECORDS_PER_SLICE = 2_000  # rows turned into Python dicts at a time (bounded memory)
# Latin letters that Unicode does not decompose into ASCII ones.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th"})


class AvroSchemaError(ValueError):
    """An Arrow type with no Avro counterpart in this platform."""


def avro_name(raw: str, position: int) -> str:
    """One column name as an Avro name (before de-duplication); ``position`` is 1-based."""
    text = normalize_name(raw, position)
    if AVRO_NAME.match(text):
        return text
    folded = unicodedata.normalize("NFKD", text.translate(_LETTERS)).encode("ascii", "ignore").decode("ascii")
    folded = re.sub(r"[^A-Za-z0-9_]+", "_", folded).strip("_")
    if not folded:
        return f"col_{position}"
    return f"c_{folded}" if folded[0].isdigit() else folded


def avro_names(raw_names: Sequence[str]) -> list[str]:
    """Unique Avro names for a table's columns, deterministic (same input, same output)."""
    result: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_names, start=1):
        name = avro_name(raw, position)
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        result.append(candidate)
    return result


def avro_type(arrow_type: pa.DataType) -> str | dict:
    """The (non-null) Avro type of an Arrow type."""
    t = arrow_type
    if pa.types.is_decimal(t):
        return {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
    if pa.types.is_date32(t):
        return {"type": "int", "logicalType": "date"}
    if pa.types.is_timestamp(t):
        if t.unit not in ("ms", "us"):
            raise AvroSchemaError(f"timestamps must be in ms or us for Avro, not {t.unit}")
        precision = "millis" if t.unit == "ms" else "micros"
        return {"type": "long", "logicalType": f"{'timestamp' if t.tz else 'local-timestamp'}-{precision}"}
    if pa.types.is_time64(t) and t.unit == "us":
        return {"type": "long", "logicalType": "time-micros"}
    simple = [
        (pa.types.is_boolean, "boolean"),
        (lambda x: pa.types.is_int8(x) or pa.types.is_int16(x) or pa.types.is_int32(x), "int"),
        (pa.types.is_int64, "long"),
        (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"),
        (lambda x: pa.types.is_string(x) or pa.types.is_large_string(x), "string"),
        (lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x), "bytes"),
    ]
    for test, name in simple:
        if test(t):
            return name
    raise AvroSchemaError(f"no Avro type for Arrow type {t}")


def avro_schema(schema: pa.Schema, name: str, *, source_names: Mapping[str, str] | None = None, doc: str = "") -> dict:
    """An Avro record schema for Arrow ``schema`` (whose field names must already be Avro names)."""
    if not AVRO_NAME.match(name):
        raise AvroSchemaError(f"record name {name!r} is not an Avro name")
    fields = []
    for f in schema:
        if not AVRO_NAME.match(f.name):
            raise AvroSchemaError(f"field name {f.name!r} is not an Avro name; use avro_names() first")
        field: dict = {"name": f.name, "type": avro_type(f.type)}
        if f.nullable:
            field |= {"type": ["null", field["type"]], "default": None}
        source = (source_names or {}).get(f.name)
        if source and source != f.name:
            field[SOURCE_NAME_ATTRIBUTE] = source
        fields.append(field)
    record = {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields}
    if doc:
        record["doc"] = doc
    return record


def avro_records(batch: pa.RecordBatch) -> Iterator[dict]:
    """The rows of ``batch`` as dicts for fastavro, logical types already in their Avro encoding.

    Decimals, dates and timestamps are encoded column-wise in Arrow (unscaled big-endian two's
    complement bytes, days, microseconds): fastavro writes such values as they are, and reading them
    back through the schema's logical types gives Decimal, date and datetime again. Building a Decimal
    or datetime per value only for fastavro to take it apart again costs over half the write time.
    """
    ready = avro_ready(batch)
    for start in range(0, ready.num_rows, RECORDS_PER_SLICE):
        yield from ready.slice(start, RECORDS_PER_SLICE).to_pylist()


def avro_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [_avro_encoded(column) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _avro_encoded(values: pa.Array) -> pa.Array:
    t = values.type
    if pa.types.is_decimal128(t):
        return _decimal_bytes(values)
    if pa.types.is_date32(t):
        return values.cast(pa.int32())
    if pa.types.is_timestamp(t) or pa.types.is_time64(t):
        return values.cast(pa.int64())
    return values


def _decimal_bytes(values: pa.Array) -> pa.Array:
    """decimal128 values as 16-byte big-endian two's complement (Arrow stores them little-endian)."""
    count = values.offset + len(values)
    little = np.frombuffer(values.buffers()[1], dtype=np.uint8, count=count * 16).reshape(count, 16)
    big = pa.py_buffer(np.ascontiguousarray(little[:, ::-1]))
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(values), [values.buffers()[0], big], offset=values.offset)
    return fixed.cast(pa.binary())
