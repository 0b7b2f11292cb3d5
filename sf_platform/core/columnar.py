"""The curated columnar layer, pure: where curated Parquet files live, their ledger, their Glue entry, how
to read any catalog table in place, and the Redshift statements (Spectrum schema, COPY) over them.

Curated files live under ``_curated/<table>/`` in the raw table's hive partition folders, so Athena,
Redshift Spectrum and ``sf-platform query`` read them with partition pruning. One Parquet file holds the
rows of a batch of source objects of one partition folder (``plan_batches``: up to ``BATCH_OBJECTS``
objects or ``BATCH_BYTES`` source bytes; an object of ``ALONE_BYTES`` or more is a batch of its own); its
name is a digest of the batch's (key, ETag) pairs (``batch_key``). The Glue entry is the Parquet
TableInput of ``export_catalog`` (one builder for every Avro or Parquet folder) with the raw table's typed
columns and partition keys. The ledger, one small JSON object per table, says for each source object
(key, ETag) which curated file holds its rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from . import types as glue_types
from .batching import MAX_BATCH_BYTES, MAX_BATCH_OBJECTS, batches, group_by
from .catalog import OPEN_CSV_SERDE, CatalogColumn, CrawlStats, columns_of, partition_input, partition_keys_of
from .export_catalog import PARQUET_INPUT_FORMAT, PARQUET_SERDE, folder_table_input
from .identifiers import IdentifierError
from .ledger import LedgerEntry, SourceObject
from .naming import partition_location

CURATED_ROOT = "_curated"  # hidden to the organizer, the crawler and the sensor (starts with "_")
LEDGER_ROOT = "_sf/curated"
CODEC = "zstd"
# Bumped when the writer changes what a curated file holds: every file is then rewritten once.
# 2: many source objects per file (1 wrote a file per object; a table curated by 1 is merged once).
WRITER_VERSION = 2
# A batch of source objects becomes one curated file: at most this many objects, this many source bytes.
BATCH_OBJECTS = MAX_BATCH_OBJECTS  # 1,000
BATCH_BYTES = MAX_BATCH_BYTES  # 128 MB
# An object this large is a batch of its own and is streamed; smaller ones are read whole and batched.
ALONE_BYTES = 32 * 1024**2


def curated_database(glue_database: str, configured: str = "") -> str:
    """The Glue database of the curated tables: SF_GLUE_CURATED_DATABASE, else ``<raw db>_curated``."""
    return configured or f"{glue_database}_curated"


def curated_prefix(table: str) -> str:
    return f"{CURATED_ROOT}/{table}/"


def source_folder(table: str, source_key: str) -> str:
    """The partition folder of a source object below the table prefix (``dt=1/region=kr/``, or ``""``)."""
    prefix = f"{table}/"
    if not source_key.startswith(prefix):
        raise ValueError(f"{source_key!r} is not under the table prefix {prefix!r}")
    return partition_location(source_key, prefix)[len(prefix) :]


def batch_key(table: str, sources: Iterable[tuple[str, str]]) -> str:
    """The curated file of a batch of source objects ((key, ETag) pairs, all in one partition folder):
    ``_curated/<table>/<partition folders>/part-<digest>.parquet``, the digest over the sorted pairs. The
    same batch always gets the same key (a retried run overwrites the file it wrote before); another
    batch, or another version of one of its objects, gets another key."""
    pairs = sorted((key, etag.strip().strip('"')) for key, etag in sources)
    if not pairs:
        raise ValueError("a batch holds at least one source object")
    folders = {source_folder(table, key) for key, _ in pairs}
    if len(folders) != 1:
        raise ValueError(f"a batch's objects share one partition folder, not {sorted(folders)}")
    digest = hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()[:24]
    return f"{curated_prefix(table)}{folders.pop()}part-{digest}.parquet"


def plan_batches(
    table: str,
    objects: Iterable[SourceObject],
    *,
    max_objects: int = BATCH_OBJECTS,
    max_bytes: int = BATCH_BYTES,
    alone_bytes: int = ALONE_BYTES,
) -> list[tuple[SourceObject, ...]]:
    """The objects grouped into curated files: per partition folder, in key order, at most
    ``max_objects`` objects and ``max_bytes`` source bytes per batch (``batching.batches``); an object of
    ``alone_bytes`` or more is a batch of its own. The same objects always make the same batches."""
    ordered = sorted(objects, key=lambda o: o.key)
    result: list[tuple[SourceObject, ...]] = []
    for group in group_by(ordered, lambda o: source_folder(table, o.key)):
        result += [(o,) for o in group if o.size >= alone_bytes]
        small = [o for o in group if o.size < alone_bytes]
        result += batches(small, max_objects=max_objects, max_bytes=max_bytes)
    return result


def curated_partition_location(table: str, key: str) -> str:
    """The partition folder (key up to its last ``k=v`` folder) of a curated file, without the bucket."""
    return partition_location(key, curated_prefix(table))


def ledger_key(table: str) -> str:
    return f"{LEDGER_ROOT}/{table}/ledger.json"


def arrow_schema(columns: Sequence[CatalogColumn]) -> pa.Schema:
    """The curated files' schema: the catalog's data columns through the one type mapping."""
    return pa.schema([pa.field(c.name, glue_types.to_arrow(c.type)) for c in columns])


def schema_fingerprint(columns: Sequence[CatalogColumn], partition_keys: Sequence[str]) -> str:
    """Changes when the curated files would need another schema (a column added, retyped, renamed)."""
    text = json.dumps([WRITER_VERSION, [[c.name, c.type] for c in columns], list(partition_keys)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ ledger


@dataclass(frozen=True)
class CuratedFile:
    """One source object version and the curated file holding its rows (shared with the other objects of
    its batch). ``curated_bytes`` is the object's share of that file's size (by source bytes), so summing
    over the objects gives the files' size."""

    source_key: str
    etag: str
    curated_key: str
    rows: int
    rejected: int
    raw_bytes: int
    curated_bytes: int
    partition: tuple[str, ...] = ()
    quarantine_key: str = ""
    schema: str = ""  # schema_fingerprint the file was written with


@dataclass
class CuratedLedger:
    """Source key -> the curated file holding its rows, for one table."""

    files: dict[str, CuratedFile] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data) -> CuratedLedger:
        """A ledger read back; anything unreadable is an empty ledger (every file is made again)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("files"), Mapping):
            return cls()
        files = {}
        for key, entry in data["files"].items():
            try:
                files[key] = CuratedFile(**{**entry, "partition": tuple(entry.get("partition") or ())})
            except TypeError:
                return cls()
        return cls(files)

    def to_json(self) -> bytes:
        files = {k: asdict(f) for k, f in sorted(self.files.items())}
        return json.dumps({"files": files}, ensure_ascii=False, indent=1).encode()

    def entries(self, schema: str) -> dict[str, LedgerEntry]:
        """What ``ledger.plan_loads`` compares against. A file written under another schema counts as
        changed (an empty ETag), so it is rewritten; files whose source is gone still count as deleted."""
        return {k: LedgerEntry(k, f.etag if f.schema == schema else "", f.rows) for k, f in self.files.items()}

    def totals(self) -> tuple[int, int]:
        """(rows in the curated files, rows quarantined by curation) over every source object: the two
        sides of the curated reconciliation against the catalog's recordCount."""
        return sum(f.rows for f in self.files.values()), sum(f.rejected for f in self.files.values())

    def curated_keys(self) -> set[str]:
        """Every curated file the ledger names (a file under the table's prefix that is not one of these
        holds rows no source points to: an orphan)."""
        return {f.curated_key for f in self.files.values()}


# ------------------------------------------------------------------------------------------ catalog


def curated_table_input(
    *,
    name: str,
    location: str,
    columns: Sequence[CatalogColumn],
    partition_keys: Sequence[str],
    files: Sequence[CuratedFile],
    source_table: str,
    description: str = "",
) -> dict:
    """A Glue TableInput for a curated table as Athena and Spectrum expect a Parquet table:
    ParquetHiveSerDe, MapredParquet formats, the raw table's typed columns (with their explanations)
    and its partition keys, the curated counts and sizes."""
    arrow_schema(columns)  # refuses a type the curated files cannot hold, as writing them would
    return folder_table_input(
        name=name, location=location, columns=columns, partition_keys=partition_keys, file_format="parquet",
        codec=CODEC, rows=sum(f.rows for f in files), objects=len({f.curated_key for f in files}),
        size_bytes=sum(f.curated_bytes for f in files), description=description,
        extra_parameters={"sf.source_table": source_table, "sf.raw_bytes": str(sum(f.raw_bytes for f in files))},
    )


def curated_partitions(bucket_uri: str, table: str, table_input: Mapping, files: Sequence[CuratedFile]) -> list[dict]:
    """One PartitionInput per partition of the curated files, with that partition's counts."""
    groups: dict[tuple[str, ...], list[CuratedFile]] = {}
    folders: dict[tuple[str, ...], str] = {}
    for f in files:
        groups.setdefault(f.partition, []).append(f)
        folders.setdefault(f.partition, curated_partition_location(table, f.curated_key))
    result = []
    for values, group in sorted(groups.items()):
        stats = CrawlStats(
            len({f.curated_key for f in group}), sum(f.curated_bytes for f in group), sum(f.rows for f in group)
        )
        result.append(partition_input(values, bucket_uri + folders[values], table_input, stats))
    return result


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


def create_table_ddl(schema: str, table: str, columns: Sequence[CatalogColumn]) -> str:
    """The table a COPY loads into: the curated files' columns, in file order (COPY maps them by position)."""
    lines = [f"  {quote_redshift(c.name)} {glue_types.to_redshift(c.type, c.max_length)}" for c in columns]
    return f"CREATE TABLE IF NOT EXISTS {quote_redshift(schema)}.{quote_redshift(table)} (\n" + ",\n".join(lines) + "\n);"


def copy_parquet_ddl(schema: str, table: str, location: str, iam_role: str) -> str:
    if not location.startswith("s3://"):
        raise ValueError(f"COPY reads from S3, not {location!r}")
    return (
        f"COPY {quote_redshift(schema)}.{quote_redshift(table)}\n"
        f"FROM {redshift_literal(location.rstrip('/') + '/')}\n"
        f"IAM_ROLE {redshift_literal(validate_iam_role(iam_role))}\n"
        "FORMAT AS PARQUET;"
    )


def spectrum_script(
    tables: Sequence[Mapping], *, glue_database: str, external_schema: str, copy_schema: str, iam_role: str
) -> str:
    """The Redshift statements for the curated tables (GetTable ``Table`` entries): one external schema
    over their Glue database (query in place), then, for teams that load instead, CREATE TABLE + COPY each."""
    parts = [
        "-- Query in place (Redshift Spectrum): the curated Glue database as an external schema.",
        external_schema_ddl(external_schema, glue_database, iam_role),
    ]
    if tables:
        parts.append(f"\n-- Or load: one table per curated table in schema {copy_schema}, filled by COPY from its Parquet files.")
    for table in tables:
        name, keys = table["Name"], partition_keys_of(table)
        location = table["StorageDescriptor"]["Location"]
        parts.append("")
        if keys:
            parts.append(
                f"-- {name} is partitioned by ({', '.join(keys)}): partition values live in folder names, not in\n"
                f"-- the files, so COPY loads the data columns only; query {external_schema}.{name} to keep them."
            )
        parts.append(create_table_ddl(copy_schema, name, columns_of(table)))
        parts.append(copy_parquet_ddl(copy_schema, name, location, iam_role))
    return "\n".join(parts) + "\n"
