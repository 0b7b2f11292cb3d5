"""Exports of Snowflake tables to S3: which tables (the lock file), what each column becomes, where the
parts go, and the manifest that records an export and carries its incremental state.

- Discovery: every table of one schema whose name fully matches the registry's pattern
  (case-insensitive) and whose type is listed. The list is cached in ``snowflake_exports.lock.yaml``
  next to the registry, so definitions load without a network call. The tables the platform loads
  itself into that schema are known from the registry and join the list without any discovery, so
  the first ``materialize`` after a registry change loads them and then exports them (before, the
  lock file had to be written after a load and a second ``materialize`` run).
- Columns: each Snowflake type maps to one Arrow type (and so one Avro/Parquet/Glue type); NUMBER with
  scale 0 is a 64-bit integer (Snowflake's INTEGER is NUMBER(38,0)), TIME/VARIANT/OBJECT/ARRAY/
  GEOGRAPHY are exported as text, timestamps at microseconds.
- Layout: ``<prefix><table>/part-<snapshot>-<n>.<ext>`` plus ``_manifest.json`` in the same folder.
  Names starting with ``_`` are hidden from Hive, Athena and Spark, so the folder reads as a table.
- Incremental: the manifest keeps the column's high-water mark; the next export selects rows above it
  up to the current maximum (taken before reading, so the mark never skips rows of that snapshot).

Pure: the SQL runs in the export hop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from .avro import avro_names
from .registry import ExportConfig

LOCK_FILE_NAME = "snowflake_exports.lock.yaml"
MANIFEST_NAME = "_manifest.json"
EXTENSIONS = {"avro": "avro", "parquet": "parquet"}
FIELD_SOURCE_NAME = b"sf.source_name"
FIELD_SOURCE_TYPE = b"sf.source_type"

# The platform's own tables (ledgers, staging tables of a load) are never exported.
_INTERNAL_TABLE = re.compile(r"^_SF_|__SF_", re.IGNORECASE)


# ---- columns


@dataclass(frozen=True)
class SourceColumn:
    """A Snowflake result column: name and type as the connector describes it."""

    name: str
    type_name: str  # FIXED, REAL, TEXT, DATE, TIMESTAMP_NTZ, ... (connector's FIELD_ID_TO_NAME)
    precision: int | None = None
    scale: int | None = None
    nullable: bool = True  # NOT NULL columns become plain (non-union) Avro fields, twice as fast to write

    @property
    def sql_type(self) -> str:
        if self.type_name == "FIXED":
            return f"NUMBER({self.precision or 38},{self.scale or 0})"
        return {"REAL": "FLOAT", "TEXT": "VARCHAR"}.get(self.type_name, self.type_name)


def export_arrow_type(column: SourceColumn) -> pa.DataType:
    t = column.type_name
    if t == "FIXED":
        if not column.scale:
            return pa.int64()
        return pa.decimal128(column.precision or 38, column.scale)
    if t in ("TIMESTAMP_TZ", "TIMESTAMP_LTZ"):
        return pa.timestamp("us", tz="UTC")
    return {
        "REAL": pa.float64(),
        "TEXT": pa.string(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
        "TIMESTAMP_NTZ": pa.timestamp("us"),
        "BINARY": pa.binary(),
    }.get(t, pa.string())  # TIME, VARIANT, OBJECT, ARRAY, GEOGRAPHY ...: their text form


def export_schema(columns: Sequence[SourceColumn]) -> pa.Schema:
    """The Arrow schema of an export: Avro-safe names, the Snowflake name and type kept as metadata."""
    names = avro_names([c.name for c in columns])
    return pa.schema(
        [
            pa.field(
                n, export_arrow_type(c), nullable=c.nullable,
                metadata={FIELD_SOURCE_NAME: c.name, FIELD_SOURCE_TYPE: c.sql_type},
            )
            for n, c in zip(names, columns, strict=True)
        ]
    )


def source_names(schema: pa.Schema) -> dict[str, str]:
    return {f.name: (f.metadata or {}).get(FIELD_SOURCE_NAME, f.name.encode()).decode() for f in schema}


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> tuple[pa.RecordBatch, list[str]]:
    """Cast one fetched batch (columns in ``schema``'s order) to the export schema.

    Returns the batch and notes: timestamps finer than microseconds are truncated (and said so).
    Integers that do not fit 64 bits raise, naming the column.
    """
    arrays, notes = [], []
    for target, column in zip(schema, batch.columns, strict=True):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        arrays.append(_cast(column, target, notes))
    return pa.RecordBatch.from_arrays(arrays, schema=schema), notes


def _cast(values: pa.Array, target: pa.Field, notes: list[str]) -> pa.Array:
    if values.type == target.type:
        return values
    try:
        return pc.cast(values, target.type)
    except pa.ArrowInvalid as exc:
        if pa.types.is_timestamp(target.type) and pa.types.is_timestamp(values.type):
            notes.append(f"{target.name}: sub-microsecond digits truncated")
            return pc.cast(values, target.type, safe=False)
        raise ValueError(f"column {target.name}: {exc}") from None


# ---- discovery and the lock file


@dataclass(frozen=True)
class ExportTable:
    name: str  # the Snowflake table name
    key: str  # lower-case, Avro/asset-safe: the asset key and the S3 folder
    type: str = "BASE TABLE"


def match_tables(found: Iterable[tuple[str, str]], config: ExportConfig) -> list[ExportTable]:
    """The (name, table type) rows of INFORMATION_SCHEMA.TABLES that the export config selects."""
    pattern = re.compile(config.table_pattern, re.IGNORECASE)
    selected = sorted(
        (name, kind.upper())
        for name, kind in found
        if pattern.fullmatch(name) and kind.upper() in config.table_types and not _INTERNAL_TABLE.search(name)
    )
    keys = avro_names([name for name, _ in selected])
    return [ExportTable(name, key, kind) for (name, kind), key in zip(selected, keys, strict=True)]


def lock_path(tables_file: Path) -> Path:
    return Path(tables_file).parent / LOCK_FILE_NAME


def lock_document(database: str, schema: str, config: ExportConfig, tables: Sequence[ExportTable], when: datetime) -> str:
    doc = {
        "database": database,
        "schema": schema,
        "table_pattern": config.table_pattern,
        "table_types": list(config.table_types),
        "discovered_at": when.isoformat(timespec="seconds"),
        "tables": [asdict(t) for t in tables],
    }
    header = (
        "# Snowflake tables the registry's `exports` section selects, cached so definitions load without\n"
        "# a network call. Written by `sf-platform snowflake-tables`; run it again when tables come or go.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def locked_tables(lock_text: str | None, config: ExportConfig, database: str, schema: str) -> list[ExportTable]:
    """The cached tables that still apply: same database and schema, still matching the pattern."""
    if not lock_text:
        return []
    doc = yaml.safe_load(lock_text) or {}
    if str(doc.get("database", "")).upper() != database.upper() or str(doc.get("schema", "")).upper() != schema.upper():
        return []
    cached = [ExportTable(**t) for t in doc.get("tables") or []]
    still = {t.name for t in match_tables([(t.name, t.type) for t in cached], config)}
    return [t for t in cached if t.name in still]


def export_tables(
    lock_text: str | None, config: ExportConfig, database: str, schema: str, loaded: Iterable[str] = ()
) -> list[ExportTable]:
    """The tables to export: the lock file's (tables others made, found by ``snowflake-tables``) and
    ``loaded``, the Snowflake names of the tables this platform itself loads into ``database.schema``
    (known from the registry, so they need no discovery: one ``materialize`` loads them and then
    exports them, even before they exist). One list, filtered and keyed like a discovery."""
    locked = locked_tables(lock_text, config, database, schema)
    found = {t.name: t.type for t in locked}
    for name in loaded:
        found.setdefault(name, "BASE TABLE")
    return match_tables(found.items(), config)


def glue_table_name(config: ExportConfig, key: str) -> str:
    """The catalog name of an exported folder: its path with ``_`` for ``/`` (exports/member -> exports_member)."""
    return (config.prefix + key).replace("/", "_")


# ---- layout, manifest and incremental state


def folder(config: ExportConfig, key: str) -> str:
    return f"{config.prefix}{key}/"


def part_key(config: ExportConfig, key: str, snapshot_id: str, index: int) -> str:
    return f"{folder(config, key)}part-{snapshot_id}-{index:05d}.{EXTENSIONS[config.format]}"


def manifest_key(config: ExportConfig, key: str) -> str:
    return folder(config, key) + MANIFEST_NAME


@dataclass
class Part:
    key: str
    rows: int
    bytes: int
    snapshot_id: str


@dataclass
class Manifest:
    """What an export folder holds; rewritten (the commit point) after every export run."""

    source_table: str
    format: str
    mode: str  # full | incremental
    snapshot_id: str
    snapshot_time: str
    source_query: str
    query_params: list
    schema: dict  # the Avro schema (also for Parquet: it is the portable description)
    parts: list[Part] = field(default_factory=list)
    incremental_column: str = ""
    high_water: dict | None = None  # {"type": ..., "value": ...}: see encode_value
    runs: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)

    def to_json(self) -> bytes:
        doc = asdict(self) | {"rows": self.rows, "bytes": self.bytes}
        return json.dumps(doc, indent=2, ensure_ascii=False, default=str).encode("utf-8")

    @classmethod
    def from_json(cls, body: bytes) -> Manifest:
        doc = json.loads(body)
        doc.pop("rows", None)
        doc.pop("bytes", None)
        doc["parts"] = [Part(**p) for p in doc.get("parts", [])]
        return cls(**doc)


def encode_value(value) -> dict | None:
    """A high-water mark as JSON that decodes back to the same Python value."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"type": "timestamp", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, bool):
        raise ValueError("a boolean column cannot be an incremental column")
    if isinstance(value, int | float | str):
        return {"type": type(value).__name__, "value": value}
    raise ValueError(f"cannot keep a high-water mark of type {type(value).__name__}")


def decode_value(doc: Mapping | None):
    if not doc:
        return None
    kind, value = doc["type"], doc["value"]
    return {
        "timestamp": datetime.fromisoformat,
        "date": date.fromisoformat,
        "decimal": Decimal,
    }.get(kind, lambda v: v)(value)


def stale_keys(listed: Iterable[str], manifest: Manifest, config: ExportConfig, key: str) -> list[str]:
    """Part files in the folder that the manifest does not list (a previous snapshot, a killed run)."""
    keep = {p.key for p in manifest.parts}
    prefix = folder(config, key) + "part-"
    return sorted(k for k in listed if k.startswith(prefix) and k not in keep)
