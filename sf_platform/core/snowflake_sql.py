"""Snowflake load statements: COPY INTO (internal Parquet parts, external CSV), MERGE, SWAP, and the
decisions around them (column type changes, COPY results).

Pure: statements come back as text plus bind values (the connector's ``%s`` binds); every identifier
is quoted through ``identifiers``, and no value is ever formatted into the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .identifiers import quote_snowflake, snowflake_name

SOURCE_ROW_COLUMN = "_SF_ROW"  # merge staging only: the row's position in its file, to order duplicates

# Stage paths are built by the loader from validated table names and run ids; checked anyway, since
# a stage location is SQL syntax (``@stage/path``), not a bindable value.
_STAGE_PATH = re.compile(r"^[A-Za-z0-9_\-./=]*\Z")

# Glue/crawler encodings to Snowflake's ENCODING names for delimited files.
_SNOWFLAKE_ENCODING = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "cp949": "IBM949"}


class StatementError(ValueError):
    """A statement cannot be built from these inputs."""


def qualified(name: str) -> str:
    """A user-written ``[db.][schema.]name`` (unquoted identifiers) as quoted, upper-case parts."""
    return ".".join(quote_snowflake(snowflake_name(part)) for part in name.split("."))


def stage_location(stage_ref: str, path: str) -> str:
    if not _STAGE_PATH.match(path) or ".." in path:
        raise StatementError(f"unsafe stage path {path!r}")
    return f"@{stage_ref}/{path}"


def copy_parquet(target_ref: str, stage_ref: str, path: str) -> str:
    """Load typed Parquet parts PUT under ``path`` of an internal stage; the parts are purged after."""
    return (
        f"COPY INTO {target_ref} FROM {stage_location(stage_ref, path)} FILE_FORMAT = (TYPE = PARQUET) "
        "MATCH_BY_COLUMN_NAME = CASE_SENSITIVE PURGE = TRUE"
    )


@dataclass(frozen=True)
class CsvFileFormat:
    """The CSV options of a catalog entry, in Snowflake's terms."""

    delimiter: str = ","
    skip_header: int = 0
    quoted: bool = False
    encoding: str = "UTF8"
    compression: str = "NONE"  # NONE | GZIP


def csv_format_from_catalog(entry: Mapping) -> CsvFileFormat:
    """The file format the crawl recorded for a table (GetTable's ``Table``)."""
    params = entry.get("Parameters") or {}
    encoding = params.get("sf.encoding", "utf-8")
    if encoding not in _SNOWFLAKE_ENCODING:
        raise StatementError(f"no Snowflake ENCODING known for the catalog's encoding {encoding!r}")
    return CsvFileFormat(
        delimiter=params.get("delimiter", ","),
        skip_header=int(params.get("skip.header.line.count", "0") or 0),
        quoted=params.get("areColumnsQuoted") == "true",
        encoding=_SNOWFLAKE_ENCODING[encoding],
        compression="GZIP" if params.get("compressionType") == "gzip" else "NONE",
    )


def csv_file_format_clause(fmt: CsvFileFormat) -> tuple[str, list]:
    """``FILE_FORMAT = (...)`` for the catalog's CSV: only empty fields are NULL (as the crawl and the
    internal path read them), no escape character outside quotes."""
    quote = "FIELD_OPTIONALLY_ENCLOSED_BY = %s" if fmt.quoted else "FIELD_OPTIONALLY_ENCLOSED_BY = NONE"
    params: list = [fmt.delimiter, fmt.skip_header] + (['"'] if fmt.quoted else []) + [fmt.encoding]
    sql = (
        "FILE_FORMAT = (TYPE = CSV FIELD_DELIMITER = %s SKIP_HEADER = %s "
        f"{quote} ESCAPE_UNENCLOSED_FIELD = NONE ENCODING = %s EMPTY_FIELD_AS_NULL = TRUE NULL_IF = () "
        f"COMPRESSION = {'GZIP' if fmt.compression == 'GZIP' else 'NONE'})"
    )
    return sql, params


def external_copy(
    target_ref: str,
    stage_ref: str,
    key: str,
    positions: Mapping[str, int],
    constants: Mapping[str, str | None],
    source_key_column: str,
    fmt: CsvFileFormat,
    *,
    row_column: str | None = None,
) -> tuple[str, list]:
    """COPY one S3 object straight from an external stage whose URL is the bucket root.

    ``positions`` maps target columns to 1-based field numbers in the file (columns the file lacks are
    left out and load as NULL); ``constants`` are per-file values (hive partitions). Rows that do not
    convert are skipped and reported by COPY (``ON_ERROR = CONTINUE``), never silently.
    """
    columns = list(positions) + list(constants) + [source_key_column]
    select = [f"${int(p)}" for p in positions.values()] + ["%s"] * len(constants) + ["METADATA$FILENAME"]
    params: list = list(constants.values())
    if row_column:
        columns.append(row_column)
        select.append("METADATA$FILE_ROW_NUMBER")
    format_sql, format_params = csv_file_format_clause(fmt)
    sql = (
        f"COPY INTO {target_ref} ({', '.join(quote_snowflake(snowflake_name(c)) for c in columns)}) "
        f"FROM (SELECT {', '.join(select)} FROM @{stage_ref}) FILES = (%s) {format_sql} ON_ERROR = CONTINUE"
    )
    return sql, params + [key] + format_params


def create_external_stage(stage_ref: str, url: str, integration: str) -> tuple[str, list]:
    return f"CREATE STAGE IF NOT EXISTS {stage_ref} URL = %s STORAGE_INTEGRATION = {qualified(integration)}", [url]


def merge_statement(
    target_ref: str, staging_ref: str, columns: Sequence[str], keys: Sequence[str], order_by: Sequence[str]
) -> str:
    """Upsert the staging table into the target on ``keys``.

    Within one load a key may appear more than once: the last row wins (``order_by`` descending: the
    latest object, then the latest row in it); rows with a NULL key never match and are left out.
    """
    q = [quote_snowflake(snowflake_name(c)) for c in columns]
    k = [quote_snowflake(snowflake_name(c)) for c in keys]
    missing = set(k) - set(q)
    if missing:
        raise StatementError(f"merge keys {sorted(missing)} are not columns of the table")
    on = " AND ".join(f'"T".{c} = "S".{c}' for c in k)
    updates = ", ".join(f'{c} = "S".{c}' for c in q if c not in k)
    values = ", ".join(f'"S".{c}' for c in q)
    return (
        f'MERGE INTO {target_ref} AS "T" USING ({deduplicated_source(staging_ref, q, keys, order_by)}) AS "S" '
        f"ON {on} "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(q)}) VALUES ({values})"
    )


def deduplicated_source(staging_ref: str, quoted_columns: Sequence[str], keys: Sequence[str], order_by: Sequence[str]) -> str:
    k = [quote_snowflake(snowflake_name(c)) for c in keys]
    order = ", ".join(f"{quote_snowflake(snowflake_name(c))} DESC" for c in order_by)
    return (
        f"SELECT {', '.join(quoted_columns)} FROM {staging_ref} WHERE {_keys_not_null(k)} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {', '.join(k)} ORDER BY {order}) = 1"
    )


def superseded_rows(staging_ref: str, keys: Sequence[str], order_by: Sequence[str]) -> str:
    """How many staged rows lose to a later row with the same key (duplicates within one load)."""
    k = [quote_snowflake(snowflake_name(c)) for c in keys]
    order = ", ".join(f"{quote_snowflake(snowflake_name(c))} DESC" for c in order_by)
    return (
        f"SELECT COUNT(*) FROM (SELECT 1 AS x FROM {staging_ref} WHERE {_keys_not_null(k)} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {', '.join(k)} ORDER BY {order}) > 1)"
    )


def null_key_rows(staging_ref: str, keys: Sequence[str]) -> str:
    k = [quote_snowflake(snowflake_name(c)) for c in keys]
    return f"SELECT COUNT(*) FROM {staging_ref} WHERE " + " OR ".join(f"{c} IS NULL" for c in k)


def _keys_not_null(quoted_keys: Sequence[str]) -> str:
    return " AND ".join(f"{c} IS NOT NULL" for c in quoted_keys)


def remove_statement(stage_ref: str, path: str) -> str:
    return f"REMOVE {stage_location(stage_ref, path)}"


def is_remove_unsupported(exc: Exception) -> bool:
    """fakesnow does not parse ``REMOVE @stage``; real Snowflake never raises this."""
    text = str(exc)
    return "syntax error" in text.lower() and "REMOVE" in text


def swap_statement(target_ref: str, staging_ref: str) -> str:
    return f"ALTER TABLE {target_ref} SWAP WITH {staging_ref}"


def rename_statement(old_ref: str, new_ref: str) -> str:
    return f"ALTER TABLE {old_ref} RENAME TO {new_ref}"


def is_swap_unsupported(exc: Exception) -> bool:
    """fakesnow (DuckDB) does not parse ``SWAP WITH``; real Snowflake never raises this."""
    text = str(exc)
    return "syntax error" in text.lower() and "SWAP" in text


# ---- column type changes on an existing table

_NUMBER = re.compile(r"^NUMBER\((\d+),\s*(\d+)\)$")


def existing_type(data_type: str, precision, scale) -> str:
    """INFORMATION_SCHEMA.COLUMNS' DATA_TYPE (+ precision, scale) in the spelling ``types`` produces."""
    data_type = data_type.upper()
    if data_type in ("NUMBER", "DECIMAL", "NUMERIC"):
        return f"NUMBER({int(precision or 38)},{int(scale or 0)})"
    return {"TEXT": "VARCHAR", "STRING": "VARCHAR", "DOUBLE": "FLOAT", "REAL": "FLOAT"}.get(data_type, data_type)


def type_change(current: str, wanted: str) -> str | None:
    """The type to ``ALTER COLUMN ... SET DATA TYPE`` to, or None when ``current`` already holds ``wanted``.

    Snowflake can only widen a NUMBER's precision in place (same scale); anything else raises
    ValueError: the table must be rebuilt (write_mode replace does that on every load).
    """
    if current == wanted:
        return None
    cur, new = _NUMBER.match(current), _NUMBER.match(wanted)
    if cur and new and cur.group(2) == new.group(2):
        return wanted if int(new.group(1)) > int(cur.group(1)) else None
    raise ValueError(f"cannot change column type {current} to {wanted} in place")


# ---- COPY results


@dataclass
class CopyOutcome:
    """What COPY INTO reported, summed over its files."""

    files: int = 0
    rows_parsed: int = 0
    rows_loaded: int = 0
    skipped_files: list[str] = field(default_factory=list)  # LOAD_SKIPPED: already in the load history
    errors: list[dict] = field(default_factory=list)  # per file with errors: count and the first error

    @property
    def rows_rejected(self) -> int:
        return sum(e["errors_seen"] for e in self.errors)


def copy_outcome(rows: Sequence[Sequence]) -> CopyOutcome:
    """Parse COPY INTO's result rows (file, status, rows_parsed, rows_loaded, error_limit, errors_seen,
    first_error, first_error_line, first_error_character, first_error_column_name)."""
    outcome = CopyOutcome()
    for row in rows:
        if len(row) < 10:
            continue  # "Copy executed with 0 files processed."
        file, status, parsed, loaded, _limit, errors_seen = row[:6]
        outcome.files += 1
        if str(status).upper() == "LOAD_SKIPPED":
            outcome.skipped_files.append(str(file))
            continue
        outcome.rows_parsed += int(parsed or 0)
        outcome.rows_loaded += int(loaded or 0)
        if int(errors_seen or 0):
            outcome.errors.append(
                {
                    "file": str(file),
                    "status": str(status),
                    "errors_seen": int(errors_seen),
                    "first_error": row[6],
                    "first_error_line": row[7],
                    "first_error_column": row[9],
                }
            )
    return outcome
