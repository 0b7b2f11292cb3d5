"""Snowflake load statements: COPY INTO of the hub's Parquet data files (internal or external stage),
MERGE, SWAP, the snapshot ledger and the per-table lock, and the decisions around them (the hub's columns
in Snowflake types, column type changes, COPY results, who holds a table's lock).

Pure: statements come back as text plus bind values (the connector's ``%s`` binds); every identifier
is quoted through ``identifiers``, and no value is ever formatted into the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import batching
from .ddl import SOURCE_KEY_COLUMN, ColumnSpec
from .export_catalog import glue_type
from .identifiers import quote_snowflake, snowflake_name

if TYPE_CHECKING:
    import pyarrow as pa

LOCKS_TABLE = "_SF_LOCKS"

SOURCE_ROW_COLUMN = "_SF_ROW"  # merge staging only: the row's place in its object (the hub's _sf_row), to order duplicates

# Stage paths are built by the loader from validated table names and run ids; checked anyway, since
# a stage location is SQL syntax (``@stage/path``), not a bindable value.
_STAGE_PATH = re.compile(r"^[A-Za-z0-9_\-./=]*\Z")

# COPY's FILES list takes at most 1,000 names per statement (Snowflake's documented limit).
MAX_FILES_PER_COPY = 1_000

class StatementError(ValueError):
    """A statement cannot be built from these inputs."""


def qualified(name: str) -> str:
    """A user-written ``[db.][schema.]name`` (unquoted identifiers) as quoted, upper-case parts."""
    return ".".join(quote_snowflake(snowflake_name(part)) for part in name.split("."))


def stage_location(stage_ref: str, path: str) -> str:
    if not _STAGE_PATH.match(path) or ".." in path:
        raise StatementError(f"unsafe stage path {path!r}")
    return f"@{stage_ref}/{path}"


def copy_hub_files(
    target_ref: str, stage_ref: str, path: str = "", files: Sequence[str] = (), *, purge: bool = False
) -> tuple[str, list]:
    """COPY the hub's Parquet data files into ``target_ref``, columns matched by name.

    ``files``: the names, relative to ``@stage/path``, to load (at most ``MAX_FILES_PER_COPY``; the
    external stage, whose URL is the landing bucket root, reads the hub's data files where they are).
    Without ``files`` every file under ``path`` is loaded (the internal stage: each load PUTs into a
    directory of its own; fakesnow cannot combine an internal stage with ``FILES``).

    ``MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE``: the hub's files name columns as the catalog does (lower
    case), the table in upper case; a table column the file lacks (older files, before a column was
    added) loads as NULL, a file column the table lacks (``_sf_row``) is not loaded. ``FORCE = TRUE``:
    the snapshot ledger, not COPY's 64-day load history, says what is loaded (a rebuild copies files
    again). Parquet COPY stops at the first bad value (``ON_ERROR`` defaults to ``ABORT_STATEMENT``):
    the hub holds typed rows only, so an error is a real fault, never a row to skip.
    """
    files = list(files)
    if len(files) > MAX_FILES_PER_COPY:
        raise StatementError(f"{len(files)} files in one COPY (at most {MAX_FILES_PER_COPY})")
    source = stage_location(stage_ref, path)
    listed = f" FILES = ({', '.join(['%s'] * len(files))})" if files else ""
    return (
        f"COPY INTO {target_ref} FROM {source}{listed} FILE_FORMAT = (TYPE = PARQUET) "
        f"MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE{' PURGE = TRUE' if purge else ''}",
        files,
    )


def stage_relative(uri: str, bucket: str) -> str:
    """The key of ``s3://<bucket>/<key>`` (a hub data file), as named in COPY's FILES list of a stage on
    the bucket root; raises StatementError for a file elsewhere."""
    prefix = f"s3://{bucket}/"
    if not uri.startswith(prefix) or uri == prefix:
        raise StatementError(f"data file {uri!r} is not in the landing bucket {bucket!r}: the external stage cannot read it")
    return uri[len(prefix):]


def create_external_stage(stage_ref: str, url: str, integration: str) -> tuple[str, list]:
    return f"CREATE STAGE IF NOT EXISTS {stage_ref} URL = %s STORAGE_INTEGRATION = {qualified(integration)}", [url]


def merge_statement(
    target_ref: str,
    staging_ref: str,
    columns: Sequence[str],
    keys: Sequence[str],
    order_by: Sequence[str],
    source_key_column: str | None = None,
) -> str:
    """Upsert the staging table into the target on ``keys``.

    Within one load a key may appear more than once: the last row wins (``order_by`` descending: the
    latest object, then the latest row in it); rows with a NULL key never match and are left out. With
    ``source_key_column`` the rule holds across loads too: a matched row is updated only by a row of the
    same or a later object key, so rows the hub merely moved to a new file (a copy-on-write rewrite
    after another object was replaced) never overwrite a later object's values.
    """
    q = [quote_snowflake(snowflake_name(c)) for c in columns]
    k = [quote_snowflake(snowflake_name(c)) for c in keys]
    missing = set(k) - set(q)
    if missing:
        raise StatementError(f"merge keys {sorted(missing)} are not columns of the table")
    on = " AND ".join(f'"T".{c} = "S".{c}' for c in k)
    updates = ", ".join(f'{c} = "S".{c}' for c in q if c not in k)
    values = ", ".join(f'"S".{c}' for c in q)
    matched = "WHEN MATCHED"
    if source_key_column is not None:
        source_key = quote_snowflake(snowflake_name(source_key_column))
        if source_key not in q:
            raise StatementError(f"{source_key} must be one of the merged columns")
        matched += f' AND "S".{source_key} >= "T".{source_key}'
    return (
        f'MERGE INTO {target_ref} AS "T" USING ({deduplicated_source(staging_ref, q, keys, order_by)}) AS "S" '
        f"ON {on} "
        f"{matched} THEN UPDATE SET {updates} "
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


# ---- deletes by source object
#
# Keys travel as ONE JSON array bound to ONE parameter and are unnested server-side
# (FLATTEN(PARSE_JSON(...))): the statement stays the same size whatever the number of keys. A VALUES
# list or an IN list of 1,000 literals costs fakesnow ~5 s to parse; this costs it ~0.2 s, and is
# plain Snowflake SQL.

MAX_KEYS_PER_STATEMENT = 1_000


# The hub's targets record one row per table: the hub snapshot the table holds (``_SF_HUB_LEDGER``),
# written in the transaction that changes the table's rows, so rows and snapshot id commit together.
HUB_LEDGER_TABLE = "_SF_HUB_LEDGER"


def hub_ledger_table(ledger_ref: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {ledger_ref} (\n"
        '  "TABLE_NAME" VARCHAR NOT NULL,\n'
        '  "SNAPSHOT_ID" NUMBER(38,0),\n'
        '  "ROWS_LOADED" NUMBER(38,0) NOT NULL,\n'
        '  "LOADED_AT" TIMESTAMP_NTZ NOT NULL,\n'
        '  "RUN_ID" VARCHAR NOT NULL\n'
        ")"
    )


def hub_ledger_read(ledger_ref: str, table: str) -> tuple[str, list]:
    """The table's ledger row: (SNAPSHOT_ID,), or no row when it was never loaded from the hub."""
    return f'SELECT "SNAPSHOT_ID" FROM {ledger_ref} WHERE "TABLE_NAME" = %s', [table]


def hub_ledger_write(
    ledger_ref: str, table: str, snapshot_id: int | None, rows_loaded: int, run_id: str
) -> list[tuple[str, list]]:
    """Replace the table's ledger row: two statements, for the caller's transaction."""
    return [
        (f'DELETE FROM {ledger_ref} WHERE "TABLE_NAME" = %s', [table]),
        (
            f'INSERT INTO {ledger_ref} ("TABLE_NAME", "SNAPSHOT_ID", "ROWS_LOADED", "LOADED_AT", "RUN_ID") '
            "SELECT %s, %s, %s, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ, %s",
            [table, snapshot_id, int(rows_loaded), run_id],
        ),
    ]


def _unnested() -> str:
    """The rows of a JSON array bound to one ``%s``, as ``"F".VALUE``."""
    return 'TABLE(FLATTEN(INPUT => PARSE_JSON(%s))) AS "F"'


def delete_by_keys(table_ref: str, key_column: str, keys: Sequence[str], *, table_name: str | None = None) -> tuple[str, list]:
    """DELETE the rows whose ``key_column`` is one of ``keys`` (and, for the ledger, whose TABLE_NAME is
    ``table_name``)."""
    if not keys:
        raise StatementError("no keys to delete")
    column = quote_snowflake(snowflake_name(key_column))
    where = f'{column} IN (SELECT "F".VALUE::VARCHAR FROM {_unnested()})'
    params: list = [json.dumps(list(keys))]
    if table_name is not None:
        where = f'"TABLE_NAME" = %s AND {where}'
        params.insert(0, table_name)
    return f"DELETE FROM {table_ref} WHERE {where}", params


def chunks(items: Sequence, size: int = MAX_KEYS_PER_STATEMENT) -> list[Sequence]:
    """``batching.chunks`` with Snowflake's keys-per-statement default."""
    return batching.chunks(items, size)


# ---- the per-table lock
#
# Two runs loading one table must not both read the ledger, both load a file and record it twice. On
# Snowflake an UPDATE of a shared row would serialize them (the statement takes the table's lock until
# commit), but on fakesnow (DuckDB: optimistic MVCC) a second writer of the same row is not made to wait:
# it fails with a write-write conflict. So the lock is Lamport's bakery over rows each run writes only
# for itself, which no engine has to arbitrate: a run inserts its claim (CHOOSING), takes a ticket one
# above every ticket it sees, and proceeds once no other live claim on the table is choosing or holds a
# lower (ticket, owner). A claim whose heartbeat is older than the lease belongs to a dead run and is
# ignored; the holder renews its heartbeat inside every load transaction (``lock_heartbeat``: the
# transaction commits only if the claim is still fresh), so a run that lost its claim cannot commit.

NOW_MS = "DATE_PART(EPOCH_MILLISECOND, CURRENT_TIMESTAMP())"  # the server's clock: one clock for every run


def locks_table(locks_ref: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {locks_ref} (\n"
        '  "TABLE_NAME" VARCHAR NOT NULL,\n'
        '  "OWNER" VARCHAR NOT NULL,\n'
        '  "RUN_ID" VARCHAR NOT NULL,\n'
        '  "TICKET" NUMBER(38,0),\n'
        '  "CHOOSING" BOOLEAN NOT NULL,\n'
        '  "HEARTBEAT_MS" NUMBER(38,0) NOT NULL\n'
        ")"
    )


def lock_claim(locks_ref: str, table: str, owner: str, run_id: str) -> tuple[str, list]:
    return (
        f'INSERT INTO {locks_ref} ("TABLE_NAME", "OWNER", "RUN_ID", "TICKET", "CHOOSING", "HEARTBEAT_MS") '
        f"SELECT %s, %s, %s, NULL, TRUE, {NOW_MS}",
        [table, owner, run_id],
    )


def lock_max_ticket(locks_ref: str, table: str) -> tuple[str, list]:
    return f'SELECT COALESCE(MAX("TICKET"), 0) FROM {locks_ref} WHERE "TABLE_NAME" = %s', [table]


def lock_take_ticket(locks_ref: str, owner: str, ticket: int) -> tuple[str, list]:
    return (
        f'UPDATE {locks_ref} SET "TICKET" = %s, "CHOOSING" = FALSE, "HEARTBEAT_MS" = {NOW_MS} WHERE "OWNER" = %s',
        [ticket, owner],
    )


def lock_claims(locks_ref: str, table: str) -> tuple[str, list]:
    """Every claim on ``table``, each with the server's time now."""
    return (
        f'SELECT "OWNER", "RUN_ID", "TICKET", "CHOOSING", "HEARTBEAT_MS", {NOW_MS} FROM {locks_ref} '
        'WHERE "TABLE_NAME" = %s',
        [table],
    )


def lock_heartbeat(locks_ref: str, owner: str, fresh_ms: int) -> tuple[str, list]:
    """Renew ``owner``'s claim if its last heartbeat is at most ``fresh_ms`` old; updates no row when the
    claim is gone or went stale (others may have taken the table since)."""
    return (
        f'UPDATE {locks_ref} SET "HEARTBEAT_MS" = {NOW_MS} WHERE "OWNER" = %s AND "HEARTBEAT_MS" >= {NOW_MS} - %s',
        [owner, fresh_ms],
    )


def lock_release(locks_ref: str, owner: str) -> tuple[str, list]:
    return f'DELETE FROM {locks_ref} WHERE "OWNER" = %s', [owner]


def lock_clear_stale(locks_ref: str, table: str, lease_ms: int) -> tuple[str, list]:
    """Remove claims of dead runs (no heartbeat for ``lease_ms``) on ``table``."""
    return (
        f'DELETE FROM {locks_ref} WHERE "TABLE_NAME" = %s AND "HEARTBEAT_MS" < {NOW_MS} - %s',
        [table, lease_ms],
    )


@dataclass(frozen=True)
class LockClaim:
    owner: str
    run_id: str
    ticket: int | None
    choosing: bool
    heartbeat_ms: int


def lock_blockers(claims: Sequence[LockClaim], owner: str, now_ms: int, lease_ms: int) -> list[LockClaim]:
    """The live claims ``owner`` must wait for before it holds the table (none: it holds it).

    Live: a heartbeat at most ``lease_ms`` old. A claim still choosing its ticket blocks (it may yet
    take a lower one); so does one with a lower (ticket, owner). Raises LookupError when ``owner`` has no
    claim, or has not taken its ticket yet."""
    mine = next((c for c in claims if c.owner == owner), None)
    if mine is None or mine.ticket is None or mine.choosing:
        raise LookupError(f"lock claim {owner!r} is missing or has no ticket")
    live = [c for c in claims if c.owner != owner and now_ms - c.heartbeat_ms <= lease_ms]
    return [c for c in live if c.choosing or c.ticket is None or (c.ticket, c.owner) < (mine.ticket, owner)]


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


# ---- the hub's columns in a Snowflake table


def hub_column_specs(schema: pa.Schema, bookkeeping: Sequence[str]) -> list[ColumnSpec]:
    """The table's columns for the hub's rows schema: every column but the hub's ``bookkeeping`` ones
    (the source key is added by the table DDL), typed through the one Glue type mapping."""
    return [ColumnSpec(f.name, glue_type(f.type)) for f in schema if f.name not in bookkeeping]


def evolution(existing: Mapping[str, str], columns: Sequence[ColumnSpec]) -> list[tuple[ColumnSpec, str | None]]:
    """What makes a table with ``existing`` columns (name -> type, as ``existing_type`` spells it) hold
    ``columns``: (column, None) to add it, (column, type) to widen it. Raises ValueError naming a column
    Snowflake cannot change in place. A column of the table the hub no longer has is left as it is."""
    steps: list[tuple[ColumnSpec, str | None]] = []
    for column in columns:
        name = snowflake_name(column.name)
        if name not in existing:
            steps.append((column, None))
            continue
        try:
            wider = type_change(existing[name], column.snowflake_type)
        except ValueError as exc:
            raise ValueError(f"column {name} is {existing[name]} but the hub now says {column.type}: {exc}") from None
        if wider:
            steps.append((column, wider))
    return steps


def column_diff(existing: Mapping[str, str], columns: Sequence[ColumnSpec]) -> list[str]:
    """Every difference between a table's columns and ``columns`` plus the source key, one line each
    (a table built for exactly ``columns`` has none)."""
    wanted = {snowflake_name(c.name): c.snowflake_type for c in columns}
    wanted[snowflake_name(SOURCE_KEY_COLUMN)] = "VARCHAR"
    changes = [f"added {n} {t}" for n, t in wanted.items() if n not in existing]
    changes += [f"dropped {n}" for n in existing if n not in wanted]
    changes += [f"retyped {n} {existing[n]} -> {t}" for n, t in wanted.items() if n in existing and existing[n] != t]
    return changes


# ---- COPY results


@dataclass
class CopyOutcome:
    """What COPY INTO reported, summed over its files."""

    files: int = 0
    rows_parsed: int = 0
    rows_loaded: int = 0
    skipped_files: list[str] = field(default_factory=list)  # LOAD_SKIPPED: already in the load history
    errors: list[dict] = field(default_factory=list)  # per file with errors: count and the first error
    rows_by_file: dict[str, int] = field(default_factory=dict)  # rows loaded, per file as COPY names it

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
        outcome.rows_by_file[str(file)] = outcome.rows_by_file.get(str(file), 0) + int(loaded or 0)
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
