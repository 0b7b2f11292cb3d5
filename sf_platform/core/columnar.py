"""The curated layer, pure: where the hub (Iceberg) tables live, how their columns follow the catalog's,
when their files need compacting, how to read any catalog table in place, and the Redshift statements.

The hub tables themselves are written by ``sf_platform/hub`` (pyiceberg); what can be decided without
pyiceberg lives here, with unit tests: ``plan_evolution`` (add, widen in place, or incompatible),
``file_budget`` / ``compaction_groups`` (issue 14: at most ceil(bytes / target) + 2 data files a table),
``read_spec`` (raw CSV tables read in place by ``sf-platform query``) and ``spectrum_script``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from . import types as glue_types
from .catalog import OPEN_CSV_SERDE, CatalogColumn, columns_of
from .export_catalog import PARQUET_INPUT_FORMAT, PARQUET_SERDE
from .identifiers import IdentifierError

CURATED_ROOT = "_curated"  # hidden to the organizer, the crawler and the sensor (starts with "_")
CODEC = "zstd"  # of the hub's Parquet data files
BOOKKEEPING = ("_sf_source_key", "_sf_row")  # the hub's own columns (sf_platform.hub.conventions)


def curated_database(glue_database: str, configured: str | None = "") -> str:
    """The Glue database of the hub tables: SF_GLUE_CURATED_DATABASE, or ``<glue database>_curated``."""
    return configured or f"{glue_database}_curated"


def curated_prefix(table: str) -> str:
    """The key prefix of a hub table's data and metadata files in the landing bucket."""
    return f"{CURATED_ROOT}/{table}/"


def arrow_schema(columns: Sequence[CatalogColumn]) -> pa.Schema:
    """Catalog columns in Arrow, through the one type mapping."""
    return pa.schema([pa.field(c.name, glue_types.to_arrow(c.type)) for c in columns])


# ------------------------------------------------------------------------------------------ reading in place

# What the crawl records (sf.encoding, or the SerDe's Java charset) -> the Python codec to read with;
# UTF-8 files with a byte order mark are read as UTF-8 (Arrow's CSV reader skips the mark).
_ENCODINGS = {
    "utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8",
    "cp949": "cp949", "ms949": "cp949", "x-windows-949": "cp949", "euc-kr": "cp949",
}


class UnreadableTableError(ValueError):
    """A catalog table this platform cannot read in place; the message says why and what to do."""


@dataclass(frozen=True)
class ReadSpec:
    """How to read a catalog table in place: its format, typed columns and partition keys."""

    format: str  # "csv" | "parquet"
    schema: pa.Schema  # data columns
    partition_schema: pa.Schema
    location: str
    delimiter: str = ","
    skip_rows: int = 0
    encoding: str = "utf-8"  # Python codec of the files
    quoted: bool = False  # fields may be quoted (and hold the delimiter or line ends)


def read_spec(table: Mapping) -> ReadSpec:
    """The read spec of a Glue table (GetTable's ``Table``); UnreadableTableError when there is none."""
    name = table.get("Name", "?")
    sd = table.get("StorageDescriptor") or {}
    params = {**(sd.get("Parameters") or {}), **(table.get("Parameters") or {})}
    serde = sd.get("SerdeInfo") or {}
    serde_params = serde.get("Parameters") or {}
    try:
        schema = arrow_schema(columns_of(table))
        partition_schema = pa.schema(
            [pa.field(k["Name"], glue_types.to_arrow(k.get("Type") or "string")) for k in table.get("PartitionKeys", [])]
        )
    except glue_types.UnknownTypeError as exc:
        raise UnreadableTableError(f"table {name}: {exc}") from None
    location = sd.get("Location") or ""
    classification = (params.get("classification") or "").lower()
    if classification == "parquet" or PARQUET_SERDE == serde.get("SerializationLibrary") or (
        sd.get("InputFormat") == PARQUET_INPUT_FORMAT
    ):
        return ReadSpec("parquet", schema, partition_schema, location)
    if classification != "csv":
        raise UnreadableTableError(
            f"table {name}: classification {classification or '(none)'!r} cannot be read in place (csv and parquet only)"
        )
    encoding = params.get("sf.encoding") or serde_params.get("serialization.encoding") or "utf-8"
    codec = _ENCODINGS.get(encoding.lower())
    if codec is None:
        raise UnreadableTableError(f"table {name}: files in {encoding!r} cannot be read in place (UTF-8 or CP949 only)")
    return ReadSpec(
        "csv", schema, partition_schema, location,
        delimiter=serde_params.get("field.delim") or serde_params.get("separatorChar") or params.get("delimiter") or ",",
        skip_rows=int(params.get("skip.header.line.count") or 0),
        encoding=codec,
        quoted=serde.get("SerializationLibrary") == OPEN_CSV_SERDE or params.get("areColumnsQuoted") == "true",
    )


# ------------------------------------------------------------------------------------------ Redshift

_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}\Z")
REDSHIFT_MAX_IDENTIFIER_BYTES = 127


def quote_redshift(name: str) -> str:
    """Double-quote a Redshift identifier (schema, table, column)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise IdentifierError(f"invalid Redshift identifier {name!r}")
    if len(name.encode("utf-8")) > REDSHIFT_MAX_IDENTIFIER_BYTES:
        raise IdentifierError(f"Redshift identifiers are at most 127 bytes: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def redshift_literal(text: str) -> str:
    """A Redshift string literal. Backslashes are escapes in Redshift literals, so they are doubled too."""
    if any(ord(ch) < 0x20 for ch in text):
        raise IdentifierError(f"control characters in a Redshift literal: {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def validate_iam_role(role: str) -> str:
    """An IAM role ARN, or a comma-separated chain of them, as Redshift's IAM_ROLE takes it."""
    role = (role or "").strip()
    if not role:
        raise ValueError(
            "SF_REDSHIFT_IAM_ROLE is not set: set it to the ARN of the IAM role Redshift assumes to read the "
            "catalog and the bucket (arn:aws:iam::<account-id>:role/<name>)"
        )
    bad = [r for r in role.split(",") if not _IAM_ROLE.match(r)]
    if bad:
        raise ValueError(f"SF_REDSHIFT_IAM_ROLE: {bad[0]!r} is not an IAM role ARN (arn:aws:iam::<account-id>:role/<name>)")
    return role


def external_schema_ddl(schema: str, glue_database: str, iam_role: str) -> str:
    return (
        f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {quote_redshift(schema)}\n"
        f"FROM DATA CATALOG DATABASE {redshift_literal(glue_database)}\n"
        f"IAM_ROLE {redshift_literal(validate_iam_role(iam_role))};"
    )


def create_table_as_ddl(schema: str, table: str, external_schema: str, columns: Sequence[CatalogColumn]) -> str:
    """A Redshift table filled from the external (Iceberg) table: Spectrum reads the current snapshot's
    files only. (A COPY of the table's folder would also read the files of replaced or compacted rows
    that older snapshots still reference.)"""
    names = ", ".join(quote_redshift(c.name) for c in columns)
    return (
        f"CREATE TABLE {quote_redshift(schema)}.{quote_redshift(table)} AS\n"
        f"SELECT {names}\nFROM {quote_redshift(external_schema)}.{quote_redshift(table)};"
    )


def spectrum_script(
    tables: Sequence[Mapping], *, glue_database: str, external_schema: str, copy_schema: str, iam_role: str
) -> str:
    """The Redshift statements for the hub tables (GetTable ``Table`` entries of Iceberg tables): one
    external schema over their Glue database (Redshift reads Iceberg tables registered in Glue in place),
    then, for teams that load instead, one CREATE TABLE AS SELECT each (the catalog's columns, without the
    hub's bookkeeping columns)."""
    parts = [
        "-- Query in place (Redshift Spectrum reads the Apache Iceberg tables of the curated Glue database).",
        external_schema_ddl(external_schema, glue_database, iam_role),
    ]
    if tables:
        parts.append(f"\n-- Or load: one table per curated table in schema {copy_schema}, from its current snapshot.")
    for table in tables:
        columns = [c for c in columns_of(table) if c.name not in BOOKKEEPING]
        parts.append("")
        parts.append(create_table_as_ddl(copy_schema, table["Name"], external_schema, columns))
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------ hub (Iceberg)


def _family(t: pa.DataType) -> pa.DataType:
    """An Arrow type as the Iceberg type it is stored as: Iceberg has no 8- or 16-bit ints."""
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return pa.int32()
    if pa.types.is_large_string(t):
        return pa.string()
    return t


def _widens(current: pa.DataType, wanted: pa.DataType) -> bool | None:
    """True: ``current`` can be widened in place to hold ``wanted``; False: ``current`` already holds every
    value of ``wanted`` (a narrower catalog type: keep the column); None: neither (incompatible)."""
    if current == wanted:
        return False
    ints = {pa.int32(): 0, pa.int64(): 1}
    if current in ints and wanted in ints:
        return ints[wanted] > ints[current]
    floats = {pa.float32(): 0, pa.float64(): 1}
    if current in floats and wanted in floats:
        return floats[wanted] > floats[current]
    if pa.types.is_decimal(current) and pa.types.is_decimal(wanted):
        # Only the precision may grow: pyiceberg 0.12 also accepts a scale change (its promote() compares
        # the file type's scale with itself) and the table can no longer be read (REPORT.md section 6).
        if current.scale != wanted.scale:
            return None
        return wanted.precision > current.precision
    return None


@dataclass(frozen=True)
class SchemaEvolution:
    """How a hub table's columns follow the catalog's: columns to add (name, Arrow type, the column it
    goes after or None for first), columns to widen in place (name, Arrow type), and changes Iceberg
    cannot make in place (each naming the column)."""

    add: tuple[tuple[str, pa.DataType, str | None], ...] = ()
    widen: tuple[tuple[str, pa.DataType], ...] = ()
    incompatible: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.add or self.widen)


def plan_evolution(current: pa.Schema, wanted: pa.Schema, *, keep: Sequence[str] = ()) -> SchemaEvolution:
    """Compare the hub table's schema (``current``) with the catalog's (``wanted``, same conventions).
    Columns in ``keep`` (the bookkeeping ones) are ignored. A column the catalog dropped or moved, or a
    type that is neither the same, a widening nor a narrowing of a number, is incompatible."""
    cur = [(f.name, _family(f.type)) for f in current if f.name not in keep]
    new = [(f.name, _family(f.type)) for f in wanted if f.name not in keep]
    types = dict(cur)
    add, widen, incompatible = [], [], []
    for i, (name, wanted_type) in enumerate(new):
        if name not in types:
            add.append((name, wanted_type, new[i - 1][0] if i else None))
            continue
        verdict = _widens(types[name], wanted_type)
        if verdict is None:
            incompatible.append(f"column {name}: {types[name]} cannot become {wanted_type}")
        elif verdict:
            widen.append((name, wanted_type))
    names = {n for n, _ in new}
    incompatible += [f"column {n}: no longer in the catalog" for n, _ in cur if n not in names]
    kept = [n for n, _ in new if n in types]
    if kept != [n for n, _ in cur if n in names]:
        incompatible.append(f"columns reordered: {[n for n, _ in cur]} -> {[n for n, _ in new]}")
    return SchemaEvolution(tuple(add), tuple(widen), tuple(incompatible))


def file_budget(total_bytes: int, target_bytes: int) -> int:
    """At most this many data files for ``total_bytes`` of data: ceil(bytes / target) + 2 (issue 14)."""
    return -(-max(total_bytes, 0) // max(target_bytes, 1)) + 2


def compaction_groups(
    files: Sequence[tuple[str, tuple, int]], target_bytes: int
) -> list[list[str]]:
    """Which data files to rewrite together when a table holds more than ``file_budget`` files:
    ``files`` are (path, partition, bytes); per partition, its files under half the target size when it
    has two or more of them (a file can hold one partition only). [] when the table is within budget."""
    if len(files) <= file_budget(sum(size for _, _, size in files), target_bytes):
        return []
    small: dict[tuple, list[str]] = {}
    for path, partition, size in files:
        if size < target_bytes // 2:
            small.setdefault(tuple(partition), []).append(path)
    return [sorted(paths) for _, paths in sorted(small.items(), key=lambda kv: repr(kv[0])) if len(paths) >= 2]
