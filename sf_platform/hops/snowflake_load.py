"""Snowflake load hop: a catalog table becomes a Snowflake table through a stage and COPY INTO.

Rows reach Snowflake only through a stage and ``COPY INTO``, never row INSERTs. Objects travel in
batches (``core.batching``: up to 1,000 objects or 128 MB of source bytes, a larger object alone), so a
table of many small files costs a few statements per batch rather than per file. Two stage modes
(``snowflake.stage`` in the registry):

- ``internal`` (the local stack's): the rows of every object of a batch are typed against the catalog
  in Arrow (rows that cannot be typed and ragged rows quarantined per object with the reason), each row
  keeping its ``_sf_source_key``, written into one Parquet part (more beyond ``ROWS_PER_PART`` rows),
  PUT to an internal stage under ``<table>/<run_id>/<batch>/`` and loaded with one
  ``COPY INTO ... MATCH_BY_COLUMN_NAME`` of that directory. Small objects are read ahead on a few threads.
- ``external``: ``COPY`` reads the objects straight from a named stage on the landing bucket, with the
  catalog's CSV options, one statement (``FILES = (...)``) per group of a batch's files that share a
  layout; only each file's first bytes are read by the worker (to map its header to catalog columns).
  Rows Snowflake cannot convert are skipped by ``ON_ERROR = CONTINUE`` and reported per file from
  COPY's result rows (count and first error; Snowflake's VALIDATE() does not cover transforming COPYs).

Three write modes (``snowflake.write_mode``):

- ``append``: each batch is loaded in one transaction: the old rows of its replaced objects deleted,
  its COPY, and the ledger rows of all its objects, so every object is loaded once. A deleted object's
  rows are removed. COPY's own load history is the server-side backstop for the external stage (a file
  it already loaded is reported, not reloaded).
- ``replace``: when anything changed, every object is loaded into a staging table that is swapped in
  with ``ALTER TABLE ... SWAP WITH``; the ledger is rewritten after the swap (a crash in between only
  makes the next run rebuild again).
- ``merge``: new objects are loaded into a transient staging table and upserted on ``merge_keys`` with
  one ``MERGE``; their ledger rows follow (re-merging after a crash in between gives the same table,
  so the two need no shared transaction). Duplicate keys inside one load: the last
  row wins (latest object key, then latest row in the file) and the superseded rows are counted; rows
  with an empty key are rejected (quarantined with the reason). A deleted object only leaves the
  ledger: merged rows are state, not a copy of one file.

One bad file never blocks the rest: an object that cannot be read (a GET failing, bad gzip, not text,
a row over SF_MAX_FIELD_BYTES) is reported in ``SnowflakeReport.files_failed`` with its key and reason,
gets one quarantine record per version (``_quarantine/snowflake/<table>/<key>.<etag>.unreadable.csv``)
and no ledger row, so the next run tries it again; the rest of its batch and the table's other objects
load in the same run. A small object fails before any of its rows is staged; a streamed one that fails
after some of its rows went into the batch's parts makes the batch be prepared again without it, under
a new stage directory (nothing of it is copied). In append mode an object replaced by an unreadable
version has its old rows removed (the table holds the readable files, as recordCount counts them).

One run at a time per table: the whole plan-load-record sequence holds the table's lock (a claim in
``_SF_LOCKS``, see ``snowflake_sql``), and every load transaction commits only while the claim is still
fresh, so two overlapping runs never load a file twice. Staging tables are named per run; the stage
files a run PUTs live under ``<table>/<run_id>/`` and only those are removed by it.

Columns follow the catalog: new catalog columns are added (``ALTER TABLE ADD COLUMN``), NUMBER
precision is widened in place, other type changes fail with the column named (``replace`` rebuilds).

fakesnow gaps, each detected on its specific error and reported, never hidden: it cannot parse
``SWAP WITH`` (the swap falls back to two ``RENAME``s in one transaction; ``swap_method``) nor
``REMOVE @stage`` (parts of a batch that failed before its COPY stay in the internal stage; ``notes``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sf_platform.core import ddl
from sf_platform.core import snowflake_sql as sql
from sf_platform.core.batching import MAX_BATCH_BYTES, MAX_BATCH_OBJECTS, batches, group_by
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import RejectedRow, TargetColumn
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key, quarantine_unreadable
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import (
    PrefixedStream,
    SourceReadError,
    numbered_batches,
    open_source,
    read_head,
    read_layout,
    unknown_columns,
)
from sf_platform.resources.aws import GlueCatalog, LandingBucket

STAGE_NAME = "SF_PLATFORM_STAGE"
ROWS_PER_PART = 1_000_000
BATCH_OBJECTS = MAX_BATCH_OBJECTS  # objects per batch (one part, one COPY, one transaction)
BATCH_BYTES = MAX_BATCH_BYTES  # source bytes per batch; a larger object is a batch of its own
ROW_GROUP_ROWS = 128_000  # small objects' rows are buffered into row groups of about this many rows
EXTERNAL_HEAD_BYTES = 64 * 1024  # enough to detect a file's format and read its header
# Read-ahead: objects up to READ_AHEAD_MAX_OBJECT bytes are fetched whole on READERS threads, at most
# READ_AHEAD_OBJECTS objects and READ_AHEAD_BYTES bytes ahead of the one being typed; larger objects are
# streamed when their turn comes.
READERS = 8
READ_AHEAD_OBJECTS = 64
READ_AHEAD_BYTES = 64 * 1024 * 1024
READ_AHEAD_MAX_OBJECT = 8 * 1024 * 1024
# The table lock: a claim without a heartbeat for LOCK_LEASE_SECONDS is a dead run's. A load
# transaction commits only if its run's heartbeat is at most LOCK_LEASE_SECONDS - LOCK_MARGIN_SECONDS
# old; a run waits at most LOCK_WAIT_SECONDS for another run's load of the table to finish.
LOCK_LEASE_SECONDS = 900
LOCK_MARGIN_SECONDS = 60
LOCK_WAIT_SECONDS = 3600
LOCK_POLL_SECONDS = (0.02, 1.0)  # first and longest pause between looks at the claims
SWAP_FALLBACK = "RENAME x2 in one transaction (fakesnow cannot parse ALTER TABLE ... SWAP WITH)"
REMOVE_FALLBACK = "stage not cleaned of this run's unloaded parts (fakesnow cannot parse REMOVE @stage)"

T = TypeVar("T")


class SnowflakeLoadError(RuntimeError):
    """The load cannot proceed; the message names the table and the reason."""


@dataclass
class SnowflakeReport:
    table: str
    database: str
    schema: str
    write_mode: str = "append"
    stage_mode: str = "internal"
    rows_in_table: int = 0
    rows_loaded: int = 0  # rows staged and copied (for merge: into the staging table)
    rows_quarantined: int = 0  # typed in Arrow and set aside, with line and reason
    rows_rejected_by_copy: int = 0  # skipped by COPY ON_ERROR = CONTINUE (external stage)
    copy_errors: list[dict] = field(default_factory=list)
    rows_inserted: int = 0  # merge
    rows_updated: int = 0  # merge
    duplicate_key_rows: int = 0  # merge: rows that lost to a later row with the same key in one load
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: int = 0
    files_removed: list[str] = field(default_factory=list)
    files_failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be read (not loaded)
    bytes_loaded: int = 0
    parts_staged: int = 0
    batches: int = 0  # groups of objects loaded with one COPY (internal) and one transaction (append)
    lock_wait_seconds: float = 0.0  # time spent waiting for another run's load of the table
    seconds: float = 0.0
    rebuilt: bool = False  # replace: a new table was swapped in
    swap_method: str = ""
    quarantine_keys: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    columns: list[ddl.ColumnSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fallbacks taken, and why

    @property
    def qualified_name(self) -> str:
        return ".".join(snowflake_name(p) for p in (self.database, self.schema, self.table))

    @property
    def rows_rejected(self) -> int:
        return self.rows_quarantined + self.rows_rejected_by_copy


@dataclass
class _Load:
    """Everything one table load needs, passed around instead of a dozen arguments."""

    cur: object
    bucket: LandingBucket
    entry: dict
    database: str
    schema: str
    table: str
    config: TableConfig
    columns: list[ddl.ColumnSpec]
    partition_keys: list[str]
    run_id: str
    report: SnowflakeReport
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # this call's: staging names, lock owner

    @property
    def data_columns(self) -> list[TargetColumn]:
        return [TargetColumn(c.name, c.type) for c in self.columns if c.name not in self.partition_keys]

    def ref(self, table: str) -> str:
        return ddl.snowflake_table_ref(self.database, self.schema, table)

    @property
    def target(self) -> str:
        return self.ref(self.table)

    @property
    def ledger(self) -> str:
        return self.ref(ddl.SNOWFLAKE_LEDGER_TABLE)

    @property
    def locks(self) -> str:
        return self.ref(sql.LOCKS_TABLE)

    @property
    def owner(self) -> str:
        """This call's lock claim (a run id alone could be shared by two calls)."""
        return f"{self.run_id}/{self.nonce}"

    @property
    def external(self) -> bool:
        return self.config.snowflake.stage == "external"

    @property
    def stage(self) -> str:
        if self.external:
            parts = self.config.snowflake.external_stage.split(".")
            return sql.qualified(".".join([self.database, self.schema][: 3 - len(parts)] + parts))
        return self.ref(STAGE_NAME)

    @property
    def run_path(self) -> str:
        """Where this run's parts are PUT in the internal stage."""
        return f"{self.table}/{self.run_id}/"

    def staging_name(self, purpose: str) -> str:
        return f"{self.table}__sf_{purpose}_{self.nonce}"


@dataclass
class _Prepared:
    """One object made ready for COPY: its rows typed into its batch's parts, or an external mapping."""

    obj: SourceObject
    rows: int = 0
    rejected: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    constants: dict[str, str | None] = field(default_factory=dict)


@dataclass
class _Batch:
    """Objects loaded together: (internal) their parts PUT under ``stage_path`` as ``files``."""

    objects: list[_Prepared] = field(default_factory=list)
    stage_path: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.objects)


def load_table(
    bucket: LandingBucket,
    catalog: GlueCatalog,
    connection,
    database: str,
    schema: str,
    table: str,
    config: TableConfig,
    *,
    run_id: str = "",
) -> SnowflakeReport:
    """Bring ``table``'s Snowflake copy up to date with its S3 objects (``connection``: DB-API)."""
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise SnowflakeLoadError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    partition_keys = partition_keys_of(entry)
    columns = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    columns += [ddl.ColumnSpec(k, "string", 255) for k in partition_keys]
    target_cfg = config.snowflake
    report = SnowflakeReport(
        table=table, database=database, schema=schema, columns=columns,
        write_mode=target_cfg.write_mode, stage_mode=target_cfg.stage,
    )
    names = {c.name for c in columns}
    missing_keys = [k for k in target_cfg.merge_keys if k not in names]
    if target_cfg.write_mode == "merge" and missing_keys:
        raise SnowflakeLoadError(f"{table}: merge_keys {missing_keys} are not catalog columns ({sorted(names)})")
    ctx = _Load(
        connection.cursor(), bucket, entry, database, schema, table, config, columns, partition_keys,
        run_id or uuid.uuid4().hex, report,
    )
    _prepare_schema(ctx)
    objects = [o for o in bucket.source_objects(f"{table}/") if is_data_key(o.key)]
    plan = plan_loads(objects, _read_ledger(ctx))
    if _up_to_date(ctx, plan):  # most runs of most tables: answered without the lock's statements
        report.files_skipped = len(plan.unchanged)
        ctx.cur.execute(f"SELECT COUNT(*) FROM {ctx.target}")
        report.rows_in_table = int(ctx.cur.fetchone()[0])
        report.seconds = time.monotonic() - started
        return report
    with _table_lock(ctx):
        _drop_leftover_staging(ctx)
        plan = plan_loads(objects, _read_ledger(ctx))  # again, under the lock: another run may have loaded
        try:
            {"append": _append, "merge": _merge, "replace": _replace}[target_cfg.write_mode](ctx, plan, objects)
        finally:
            _clean_run_files(ctx)
        ctx.cur.execute(f"SELECT COUNT(*) FROM {ctx.target}")
        report.rows_in_table = int(ctx.cur.fetchone()[0])
    report.seconds = time.monotonic() - started
    return report


def _prepare_schema(ctx: _Load) -> None:
    """The objects every load of the schema shares (idempotent, so overlapping runs may both do it)."""
    db, schema = (quote_snowflake(snowflake_name(p)) for p in (ctx.database, ctx.schema))
    ctx.cur.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{schema}")
    ctx.cur.execute(ddl.snowflake_ledger_table(ctx.database, ctx.schema))
    ctx.cur.execute(sql.locks_table(ctx.locks))
    target = ctx.config.snowflake
    if target.stage == "internal":
        ctx.cur.execute(f"CREATE STAGE IF NOT EXISTS {ctx.stage}")
    elif target.storage_integration:
        statement, params = sql.create_external_stage(ctx.stage, ctx.bucket.uri(), target.storage_integration)
        ctx.cur.execute(statement, params)


def _clean_run_files(ctx: _Load) -> None:
    """Remove what is left of this run's parts in the internal stage (COPY purges the ones it loads)."""
    if ctx.external:
        return
    try:
        ctx.cur.execute(sql.remove_statement(ctx.stage, ctx.run_path))
    except Exception as exc:
        if not sql.is_remove_unsupported(exc):
            raise
        if REMOVE_FALLBACK not in ctx.report.notes:
            ctx.report.notes.append(REMOVE_FALLBACK)


def _drop_leftover_staging(ctx: _Load) -> None:
    """Drop the staging tables of killed loads of this table (safe: no other load of it is running)."""
    ctx.cur.execute(
        f"SELECT TABLE_NAME FROM {quote_snowflake(snowflake_name(ctx.database))}.INFORMATION_SCHEMA.TABLES "
        "WHERE TABLE_SCHEMA = %s",
        (snowflake_name(ctx.schema),),
    )
    leftover = re.compile(rf"^{re.escape(snowflake_name(ctx.table))}__SF_(MERGE|STAGING|OLD)(_[0-9A-F]{{12}})?$")
    for (name,) in ctx.cur.fetchall():
        if leftover.match(name):
            ctx.cur.execute(f"DROP TABLE IF EXISTS {ctx.ref(name)}")


def _read_ledger(ctx: _Load) -> dict[str, LedgerEntry]:
    ctx.cur.execute(f'SELECT "OBJECT_KEY", "ETAG", "ROWS_LOADED" FROM {ctx.ledger} WHERE "TABLE_NAME" = %s', (ctx.table,))
    return {k: LedgerEntry(k, e, int(r)) for k, e, r in ctx.cur.fetchall()}


# ---- the table lock (see snowflake_sql: a bakery over per-run claim rows)


@contextlib.contextmanager
def _table_lock(ctx: _Load) -> Iterator[None]:
    """Hold ``ctx.table``'s lock for the block: claim, wait for the runs ahead, release."""
    started = time.monotonic()
    ctx.cur.execute(*sql.lock_claim(ctx.locks, ctx.table, ctx.owner, ctx.run_id))
    try:
        ctx.cur.execute(*sql.lock_max_ticket(ctx.locks, ctx.table))
        ticket = int(ctx.cur.fetchone()[0] or 0) + 1
        ctx.cur.execute(*sql.lock_take_ticket(ctx.locks, ctx.owner, ticket))
        _wait_for_turn(ctx)
        ctx.report.lock_wait_seconds = time.monotonic() - started
        ctx.cur.execute(*sql.lock_clear_stale(ctx.locks, ctx.table, LOCK_LEASE_SECONDS * 1000))
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the load's own error is the one to report
            ctx.cur.execute(*sql.lock_release(ctx.locks, ctx.owner))
        raise
    ctx.cur.execute(*sql.lock_release(ctx.locks, ctx.owner))


def _wait_for_turn(ctx: _Load) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause, longest = LOCK_POLL_SECONDS
    while True:
        ctx.cur.execute(*sql.lock_claims(ctx.locks, ctx.table))
        rows = ctx.cur.fetchall()
        now_ms = int(rows[0][5]) if rows else 0
        claims = [sql.LockClaim(o, r, None if t is None else int(t), bool(c), int(h)) for o, r, t, c, h, _ in rows]
        try:
            blockers = sql.lock_blockers(claims, ctx.owner, now_ms, LOCK_LEASE_SECONDS * 1000)
        except LookupError:
            raise SnowflakeLoadError(f"{ctx.report.qualified_name}: this run's lock claim disappeared") from None
        if not blockers:
            return
        if time.monotonic() > deadline:
            runs = sorted({b.run_id for b in blockers})
            raise SnowflakeLoadError(
                f"{ctx.report.qualified_name}: waited {LOCK_WAIT_SECONDS} s for other loads of this table to "
                f"finish (runs {runs}); a run that died frees the table {LOCK_LEASE_SECONDS} s after its "
                f"last heartbeat (rows of {sql.LOCKS_TABLE})"
            )
        time.sleep(pause)
        pause = min(pause * 2, longest)
        _heartbeat(ctx)


def _heartbeat(ctx: _Load) -> None:
    """Renew this run's claim; inside a load transaction, the check that lets it commit."""
    fresh_ms = (LOCK_LEASE_SECONDS - LOCK_MARGIN_SECONDS) * 1000
    ctx.cur.execute(*sql.lock_heartbeat(ctx.locks, ctx.owner, fresh_ms))
    if int((ctx.cur.fetchone() or [0])[0] or 0) != 1:
        raise SnowflakeLoadError(
            f"{ctx.report.qualified_name}: this run's lock on the table lapsed (no heartbeat for "
            f"{LOCK_LEASE_SECONDS - LOCK_MARGIN_SECONDS} s), so another run may be loading it; nothing of "
            "the current step was committed"
        )


# ---- write modes


def _append(ctx: _Load, plan, objects) -> None:
    ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, ctx.table, ctx.columns))
    ctx.report.schema_changes = _evolve(ctx)
    ctx.report.files_skipped = len(plan.unchanged)
    replaced = {o.key for o in plan.replaced}
    with contextlib.closing(_prepared_batches(ctx, plan.to_load, row_numbers=False)) as prepared:
        for batch in prepared:
            old = [p.obj.key for p in batch.objects if p.obj.key in replaced]
            with _transaction(ctx.cur):
                _delete_rows(ctx, old)
                loaded = _copy(ctx, batch, ctx.target)
                _write_ledger(ctx, batch.objects, loaded)
                _heartbeat(ctx)
            _count(ctx, batch, loaded)
    unreadable = [k for k in ctx.report.files_failed if k in replaced]  # their loaded version was replaced
    if plan.deleted or unreadable:
        gone = [g.key for g in plan.deleted]
        with _transaction(ctx.cur):
            _delete_rows(ctx, gone + unreadable)
            _delete_ledger(ctx, gone + unreadable)
            _heartbeat(ctx)
        ctx.report.files_removed.extend(gone)


def _merge(ctx: _Load, plan, objects) -> None:
    ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, ctx.table, ctx.columns))
    ctx.report.schema_changes = _evolve(ctx)
    ctx.report.files_skipped = len(plan.unchanged)
    keys = list(ctx.config.snowflake.merge_keys)
    if plan.to_load:
        staging_name = ctx.staging_name("merge")
        staging = ctx.ref(staging_name)
        ctx.cur.execute(
            ddl.snowflake_create_table(
                ctx.database, ctx.schema, staging_name, ctx.columns,
                replace=True, transient=True, extra_columns=[(sql.SOURCE_ROW_COLUMN, "NUMBER(38,0)")],
            )
        )
        try:
            loaded = []
            with contextlib.closing(_prepared_batches(ctx, plan.to_load, row_numbers=True)) as prepared:
                for batch in prepared:
                    loaded.append((batch, _copy(ctx, batch, staging)))
                    _heartbeat(ctx)
            order = [ddl.SOURCE_KEY_COLUMN, sql.SOURCE_ROW_COLUMN]
            ctx.cur.execute(sql.null_key_rows(staging, keys))
            null_keys = int(ctx.cur.fetchone()[0])  # only the external stage can stage such rows
            ctx.cur.execute(sql.superseded_rows(staging, keys, order))
            ctx.report.duplicate_key_rows = int(ctx.cur.fetchone()[0])
            names = [c.name for c in ctx.columns] + [ddl.SOURCE_KEY_COLUMN]
            # One atomic MERGE, then the ledger. A crash in between re-merges the same rows next run,
            # which leaves the same table (an upsert is idempotent), so they need no shared transaction
            # (fakesnow could not run MERGE inside one: its MERGE also writes its own catalog).
            _heartbeat(ctx)
            ctx.cur.execute(sql.merge_statement(ctx.target, staging, names, keys, order))
            inserted, updated = (list(ctx.cur.fetchone() or []) + [0, 0])[:2]
            with _transaction(ctx.cur):
                for batch, rows in loaded:
                    _write_ledger(ctx, batch.objects, rows)
                _heartbeat(ctx)
        finally:
            ctx.cur.execute(f"DROP TABLE IF EXISTS {staging}")
        ctx.report.rows_inserted, ctx.report.rows_updated = int(inserted), int(updated)
        if null_keys:
            ctx.report.rows_rejected_by_copy += null_keys
            ctx.report.copy_errors.append({"errors_seen": null_keys, "first_error": f"merge key {keys} is empty"})
        for batch, rows in loaded:
            _count(ctx, batch, rows)
    if plan.deleted:
        gone = [g.key for g in plan.deleted]
        with _transaction(ctx.cur):
            _delete_ledger(ctx, gone)
            _heartbeat(ctx)
        ctx.report.files_removed.extend(gone)


def _replace(ctx: _Load, plan, objects) -> None:
    existing = _existing_columns(ctx, ctx.table)
    changes = _column_diff(existing, ctx.columns)
    if not changes and not plan.to_load and not plan.deleted:
        ctx.report.files_skipped = len(plan.unchanged)
        return
    staging_name = ctx.staging_name("staging")
    staging = ctx.ref(staging_name)
    # Not transient: after the swap this table is the live one.
    ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, staging_name, ctx.columns, replace=True))
    try:
        loaded = []
        everything = sorted(objects, key=lambda o: o.key)
        with contextlib.closing(_prepared_batches(ctx, everything, row_numbers=False)) as prepared:
            for batch in prepared:
                loaded.append((batch, _copy(ctx, batch, staging)))
                _heartbeat(ctx)
        ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, ctx.table, ctx.columns))
        _heartbeat(ctx)
        ctx.report.swap_method = _swap(ctx, staging_name)
    finally:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {staging}")  # after the swap: the previous table
    ctx.report.rebuilt = True
    ctx.report.schema_changes = changes
    with _transaction(ctx.cur):
        ctx.cur.execute(f'DELETE FROM {ctx.ledger} WHERE "TABLE_NAME" = %s', (ctx.table,))
        for batch, rows in loaded:
            _write_ledger(ctx, batch.objects, rows, delete_first=False)
        _heartbeat(ctx)
    for batch, rows in loaded:
        _count(ctx, batch, rows)
    ctx.report.files_removed = [gone.key for gone in plan.deleted]


def _swap(ctx: _Load, staging_name: str) -> str:
    """Swap the staging table in; returns how. Real Snowflake: one atomic SWAP WITH."""
    target, staging = ctx.target, ctx.ref(staging_name)
    try:
        ctx.cur.execute(sql.swap_statement(target, staging))
        return "SWAP WITH"
    except Exception as exc:
        if not sql.is_swap_unsupported(exc):
            raise
    old = ctx.ref(ctx.staging_name("old"))
    ctx.cur.execute(f"DROP TABLE IF EXISTS {old}")
    with _transaction(ctx.cur):
        ctx.cur.execute(sql.rename_statement(target, old))
        ctx.cur.execute(sql.rename_statement(staging, target))
        ctx.cur.execute(sql.rename_statement(old, staging))
    return SWAP_FALLBACK


class _transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, cur):
        self.cur = cur

    def __enter__(self):
        self.cur.execute("BEGIN")

    def __exit__(self, exc_type, exc, tb):
        self.cur.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _write_ledger(ctx: _Load, objects: Sequence[_Prepared], loaded: dict[str, int], *, delete_first: bool = True) -> None:
    """The ledger rows of ``objects`` (``loaded``: rows per object key), one INSERT per 1,000."""
    if not objects:
        return
    if delete_first:
        _delete_ledger(ctx, [p.obj.key for p in objects])
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [sql.LedgerRow(p.obj.key, p.obj.etag, loaded.get(p.obj.key, 0), p.rejected, p.obj.size) for p in objects]
    for chunk in sql.chunks(rows):
        ctx.cur.execute(*sql.ledger_insert(ctx.ledger, ctx.table, ctx.run_id, now, chunk))


def _delete_ledger(ctx: _Load, keys: Sequence[str]) -> None:
    for chunk in sql.chunks(list(keys)):
        ctx.cur.execute(*sql.delete_by_keys(ctx.ledger, "OBJECT_KEY", chunk, table_name=ctx.table))


def _delete_rows(ctx: _Load, keys: Sequence[str]) -> None:
    """Delete the rows of these objects from the target table."""
    for chunk in sql.chunks(list(keys)):
        ctx.cur.execute(*sql.delete_by_keys(ctx.target, ddl.SOURCE_KEY_COLUMN, chunk))


def _count(ctx: _Load, batch: _Batch, loaded: dict[str, int]) -> None:
    ctx.report.batches += 1
    ctx.report.parts_staged += len(batch.files)
    for prepared in batch.objects:
        ctx.report.rows_loaded += loaded.get(prepared.obj.key, 0)
        ctx.report.rows_quarantined += prepared.rejected
        ctx.report.files_loaded.append(prepared.obj.key)
        ctx.report.bytes_loaded += prepared.obj.size


# ---- schema


def _existing_columns(ctx: _Load, table: str) -> dict[str, str]:
    """Column name -> Snowflake type of an existing table (empty when it does not exist)."""
    ctx.cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
        f"FROM {quote_snowflake(snowflake_name(ctx.database))}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (snowflake_name(ctx.schema), snowflake_name(table)),
    )
    return {name: sql.existing_type(dtype, p, s) for name, dtype, p, s in ctx.cur.fetchall()}


def _evolve(ctx: _Load) -> list[str]:
    existing = _existing_columns(ctx, ctx.table)
    changes = []
    for column in ctx.columns:
        name = snowflake_name(column.name)
        if name not in existing:
            ctx.cur.execute(ddl.snowflake_add_column(ctx.database, ctx.schema, ctx.table, column))
            changes.append(f"added {name} {column.snowflake_type}")
            continue
        try:
            wider = sql.type_change(existing[name], column.snowflake_type)
        except ValueError as exc:
            raise SnowflakeLoadError(
                f"{ctx.report.qualified_name}: column {name} is {existing[name]} but the catalog now says "
                f"{column.type} ({column.snowflake_type}): {exc}; set snowflake.write_mode: replace to rebuild "
                "the table, or pin the type with `types:` in the registry"
            ) from None
        if wider:
            ctx.cur.execute(ddl.snowflake_alter_column_type(ctx.database, ctx.schema, ctx.table, name, wider))
            changes.append(f"widened {name} {existing[name]} -> {wider}")
    return changes


def _up_to_date(ctx: _Load, plan) -> bool:
    """Nothing to load or remove, and the table already has the catalog's columns at their types: a
    load would change nothing. Read without the lock, from committed state only (a concurrent load's
    rows and ledger commit together), so a True is never wrong; a False takes the locked path."""
    if plan.to_load or plan.deleted:
        return False
    existing = _existing_columns(ctx, ctx.table)
    if not existing:
        return False
    if ctx.config.snowflake.write_mode == "replace":
        return not _column_diff(existing, ctx.columns)
    for column in ctx.columns:
        name = snowflake_name(column.name)
        try:
            if name not in existing or sql.type_change(existing[name], column.snowflake_type) is not None:
                return False
        except ValueError:
            return False
    return True


def _column_diff(existing: dict[str, str], columns: Sequence[ddl.ColumnSpec]) -> list[str]:
    if not existing:
        return ["created"]
    wanted = {snowflake_name(c.name): c.snowflake_type for c in columns}
    wanted[snowflake_name(ddl.SOURCE_KEY_COLUMN)] = "VARCHAR"
    changes = [f"added {n} {t}" for n, t in wanted.items() if n not in existing]
    changes += [f"dropped {n}" for n in existing if n not in wanted]
    changes += [f"retyped {n} {existing[n]} -> {t}" for n, t in wanted.items() if n in existing and existing[n] != t]
    return changes


# ---- one batch: prepare (type + PUT, or map the headers), then COPY


def _prepared_batches(ctx: _Load, objects: Sequence[SourceObject], *, row_numbers: bool) -> Iterator[_Batch]:
    """``objects`` in batches, each prepared for its COPY. Small objects are read (and, for the internal
    stage, typed) on a few threads ahead of the batch being prepared, so their GETs overlap."""
    if ctx.external:  # only the first bytes of every object are read
        work = functools.partial(_read_external_head, ctx)
        ahead, weight = (lambda obj: True), (lambda obj: min(obj.size, EXTERNAL_HEAD_BYTES))
    else:
        work = functools.partial(_read_small, ctx, row_numbers=row_numbers)
        ahead, weight = (lambda obj: obj.size <= READ_AHEAD_MAX_OBJECT), (lambda obj: obj.size)
    with _ReadAhead(objects, work, ahead, weight) as done:
        for group in batches(objects, max_objects=BATCH_OBJECTS, max_bytes=BATCH_BYTES):
            if ctx.external:
                prepared = [p for obj in group if (p := _prepare_external(ctx, obj, done.take(obj))) is not None]
                if prepared:
                    yield _Batch(prepared)
                continue
            try:
                batch = _prepare_internal(ctx, group, done, row_numbers)
            except _Redo as redo:
                # Rows of the failed object are in the parts: the rest of the group is prepared again,
                # read again, under a new stage directory (the old one is never copied).
                _fail(ctx, redo.obj, redo.reason)
                rest = [o for o in group if o.key != redo.obj.key]
                yield from _prepared_batches(ctx, rest, row_numbers=row_numbers)
                continue
            if batch.objects:
                yield batch


class _Redo(Exception):
    """A streamed object failed after some of its rows went into its batch's parts."""

    def __init__(self, obj: SourceObject, reason: str):
        super().__init__(obj.key, reason)
        self.obj, self.reason = obj, reason


def _fail(ctx: _Load, obj: SourceObject, reason: str) -> None:
    """Report an object that could not be read: key and reason, one quarantine record per version; it
    gets no ledger row, so the next run tries it again."""
    ctx.report.files_failed[obj.key] = reason
    record = quarantine_unreadable(ctx.bucket, "snowflake", ctx.table, obj.key, obj.etag, reason)
    if record not in ctx.report.quarantine_keys:
        ctx.report.quarantine_keys.append(record)


def _copy(ctx: _Load, batch: _Batch, into_ref: str) -> dict[str, int]:
    """COPY one prepared batch into ``into_ref``; returns the rows loaded per object key."""
    if ctx.external:
        return _copy_external(ctx, batch, into_ref)
    if not batch.files:
        return {}
    ctx.cur.execute(sql.copy_parquet(into_ref, ctx.stage, batch.stage_path))
    outcome = sql.copy_outcome(ctx.cur.fetchall())
    if outcome.rows_loaded != batch.rows:
        raise SnowflakeLoadError(
            f"{ctx.report.qualified_name}: staged {batch.rows} rows of {len(batch.objects)} objects "
            f"({batch.objects[0].obj.key} ...) but COPY loaded {outcome.rows_loaded}"
        )
    return {p.obj.key: p.rows for p in batch.objects}


class _ReadAhead:
    """``work(obj)`` for the ``objects`` that ``ahead`` picks, run on ``READERS`` threads at most
    ``READ_AHEAD_OBJECTS`` objects and ``READ_AHEAD_BYTES`` bytes read (``weight``) ahead of the caller,
    which takes the results in order (None for an object left to the caller)."""

    def __init__(
        self,
        objects: Iterable[SourceObject],
        work: Callable[[SourceObject], T],
        ahead: Callable[[SourceObject], bool],
        weight: Callable[[SourceObject], int],
    ):
        self.waiting, self.work, self.ahead, self.weight = iter(objects), work, ahead, weight
        self.window: deque[tuple[SourceObject, Future | None]] = deque()
        self.window_bytes = 0
        self.pool = ThreadPoolExecutor(READERS, thread_name_prefix="sf-snowflake-read")

    def __enter__(self) -> _ReadAhead:
        self._fill()
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        while len(self.window) < READ_AHEAD_OBJECTS and self.window_bytes < READ_AHEAD_BYTES:
            obj = next(self.waiting, None)
            if obj is None:
                return
            if self.ahead(obj):
                self.window.append((obj, self.pool.submit(self.work, obj)))
                self.window_bytes += self.weight(obj)
            else:
                self.window.append((obj, None))

    def take(self, obj: SourceObject) -> T | None:
        """``work(obj)`` (``obj`` must be the next object), or None when the caller reads it itself."""
        queued, future = self.window.popleft()
        if queued.key != obj.key:
            raise AssertionError(f"read-ahead out of order: {queued.key} != {obj.key}")
        try:
            return None if future is None else future.result()
        finally:
            if future is not None:
                self.window_bytes -= self.weight(obj)
            self._fill()


class _Parts:
    """Typed batches of many objects into Parquet parts of up to ``ROWS_PER_PART`` rows (small batches
    buffered into row groups); each finished part is handed to ``on_part`` (PUT) and deleted."""

    def __init__(self, directory: str, on_part):
        self.directory, self.on_part = directory, on_part
        self.buffer: list[pa.RecordBatch] = []
        self.buffered = 0
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None
        self.path = ""
        self.part_rows = 0
        self.names: list[str] = []

    def write(self, batch: pa.RecordBatch) -> None:
        if self.schema is not None and batch.schema != self.schema:
            self.finish_part()  # a different set of columns or types: its own part (COPY matches by name)
        self.schema = batch.schema
        self.buffer.append(batch)
        self.buffered += batch.num_rows
        if self.buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            self.path = os.path.join(self.directory, f"part-{len(self.names):05d}.parquet")
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        table = pa.Table.from_batches(self.buffer, self.schema)
        self.writer.write_table(table, row_group_size=max(ROW_GROUP_ROWS, table.num_rows))
        self.part_rows += table.num_rows
        self.buffer, self.buffered = [], 0
        if self.part_rows >= ROWS_PER_PART:
            self.finish_part()

    def finish_part(self) -> None:
        self._flush()
        if self.writer is None:
            return
        self.writer.close()
        self.writer, self.part_rows = None, 0
        self.names.append(os.path.basename(self.path))
        try:
            self.on_part(self.path)
        finally:
            os.remove(self.path)


def _prepare_internal(ctx: _Load, group: Sequence[SourceObject], done: _ReadAhead, row_numbers: bool) -> _Batch:
    """Type the group's rows into Parquet parts of its own stage directory and PUT them."""
    batch = _Batch(stage_path=f"{ctx.run_path}{uuid.uuid4().hex}/")
    location = sql.stage_location(ctx.stage, batch.stage_path)

    def put(path: str) -> None:
        ctx.cur.execute(f"PUT 'file://{path}' {location} AUTO_COMPRESS=FALSE PARALLEL=4")
        _heartbeat(ctx)

    with tempfile.TemporaryDirectory(prefix="sf_snowflake_") as tmp:
        parts = _Parts(tmp, put)
        try:
            for index, obj in enumerate(group):
                typed = done.take(obj)
                if typed is None:  # a large object: streamed and typed here, straight into the parts
                    typed = _stream_into(ctx, obj, parts, row_numbers)
                    if typed.failed and typed.rows:
                        for rest in group[index + 1 :]:  # keep the read-ahead in step with the objects
                            done.take(rest)
                        raise _Redo(obj, typed.failed)
                else:
                    for rows in typed.batches:
                        parts.write(rows)
                if typed.failed:
                    _fail(ctx, obj, typed.failed)
                    continue
                batch.objects.append(_typed_object(ctx, typed))
            parts.finish_part()
        finally:
            if parts.writer is not None:
                parts.writer.close()
        batch.files = parts.names
    return batch


def _stream_into(ctx: _Load, obj: SourceObject, parts: _Parts, row_numbers: bool) -> _Typed:
    """A large object streamed from S3 and typed straight into ``parts``; ``failed`` says why it could
    not be read to its end (``rows``: how many of its rows went into the parts before)."""
    typed = _Typed(obj)
    opened: list = []

    def reopen():
        opened.append(open_source(ctx.bucket, obj.key))
        return opened[-1]

    try:
        for rows in _typed_rows(ctx, obj, reopen(), typed, row_numbers, reopen=reopen):
            parts.write(rows)
    except SourceReadError as exc:
        typed.failed = exc.reason
    finally:
        for body in opened:
            body.close()
    return typed


@dataclass
class _Typed:
    """One object's rows typed against the catalog: the good ones (``batches``, kept only for a small
    object typed ahead), the rejected ones and the file's columns the catalog does not know."""

    obj: SourceObject
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    failed: str = ""  # why the object could not be read (then none of its rows is loaded)


def _read_small(ctx: _Load, obj: SourceObject, *, row_numbers: bool) -> _Typed:
    """A small object read whole and typed (on a read-ahead thread: touches nothing shared). One that
    cannot be read comes back with ``failed`` set and no rows."""
    typed = _Typed(obj)
    try:
        typed.batches = list(_typed_rows(ctx, obj, io.BytesIO(_read(ctx.bucket, obj.key)), typed, row_numbers))
    except SourceReadError as exc:
        return _Typed(obj, failed=exc.reason)
    return typed


def _read(bucket: LandingBucket, key: str, size: int | None = None) -> bytes:
    body = open_source(bucket, key)
    try:
        return body.read() if size is None else read_head(body, size)
    finally:
        body.close()


def _typed_rows(
    ctx: _Load, obj: SourceObject, body, typed: _Typed, row_numbers: bool, *, reopen=None
) -> Iterator[pa.RecordBatch]:
    """``obj``'s good rows, named for Snowflake, with their source key, partition values and (merge) row
    numbers; the rejected rows (and merge rows without a key) and unknown columns go to ``typed``. A file
    that cannot be read raises SourceReadError naming it."""
    partitions = partition_values(obj.key, f"{ctx.table}/")
    keys = list(ctx.config.snowflake.merge_keys) if ctx.config.snowflake.write_mode == "merge" else []
    data_columns = ctx.data_columns
    try:
        head = read_head(body)
        layout = read_layout(head, ctx.config, key=obj.key)
        typed.ignored = unknown_columns(layout, data_columns)
        batches_ = numbered_batches(PrefixedStream(head, body), layout, data_columns, key=obj.key, reopen=reopen)
        for block in batches_:
            good = block.good
            typed.rejected.extend(block.rejected)
            if keys and good.num_rows:
                good = _reject_null_keys(good, keys, block.good_lines(), typed.rejected)
            if good.num_rows == 0:
                continue
            first_row = typed.rows if row_numbers else None
            typed.rows += good.num_rows
            yield _with_constants(good, obj.key, ctx.partition_keys, partitions, first_row)
    finally:
        body.close()


def _typed_object(ctx: _Load, typed: _Typed) -> _Prepared:
    """Report a typed object: its unknown columns, and its rejected rows in its quarantine file."""
    obj = typed.obj
    if typed.ignored:
        ctx.report.ignored_columns[obj.key] = typed.ignored
    if typed.rejected:
        qkey = quarantine_key("snowflake", ctx.table, obj.key, obj.etag)
        rejected = sorted(typed.rejected, key=lambda r: r.line)
        ctx.bucket.put(qkey, quarantine_csv(obj.key, [c.name for c in ctx.data_columns], rejected))
        if qkey not in ctx.report.quarantine_keys:  # a batch prepared again writes the same file again
            ctx.report.quarantine_keys.append(qkey)
    return _Prepared(obj, rows=typed.rows, rejected=len(typed.rejected))


def _reject_null_keys(good: pa.RecordBatch, keys, lines: pa.Array, rejected: list) -> pa.RecordBatch:
    """Move rows whose merge key is empty from ``good`` (data rows ``lines``) to ``rejected``: they
    could never be merged."""
    null = pc.is_null(good.column(keys[0]))
    for key in keys[1:]:
        null = pc.or_(null, pc.is_null(good.column(key)))
    if not pc.any(null).as_py():
        return good
    for index in pc.indices_nonzero(null).to_pylist():
        values = tuple(None if v is None else str(v) for v in good.slice(index, 1).to_pylist()[0].values())
        rejected.append(RejectedRow(lines[index].as_py(), values, f"merge key {list(keys)} is empty: the row cannot be merged"))
    return good.filter(pc.invert(null))


def _with_constants(batch: pa.RecordBatch, source_key: str, partition_keys, partitions, first_row: int | None) -> pa.RecordBatch:
    """Upper-case names for Snowflake, plus the source key, partition values and (merge) row numbers."""
    n = batch.num_rows
    arrays = list(batch.columns)
    names = [snowflake_name(f.name) for f in batch.schema]
    for key in partition_keys:
        arrays.append(pa.repeat(pa.scalar(partitions.get(key), pa.string()), n))
        names.append(snowflake_name(key))
    arrays.append(pa.repeat(pa.scalar(source_key, pa.string()), n))
    names.append(snowflake_name(ddl.SOURCE_KEY_COLUMN))
    if first_row is not None:
        arrays.append(pa.array(range(first_row, first_row + n), pa.int64()))
        names.append(sql.SOURCE_ROW_COLUMN)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _read_external_head(ctx: _Load, obj: SourceObject) -> bytes | SourceReadError:
    try:
        return _read(ctx.bucket, obj.key, EXTERNAL_HEAD_BYTES)
    except SourceReadError as exc:  # reported by the caller, in order
        return exc


def _prepare_external(ctx: _Load, obj: SourceObject, head: bytes | SourceReadError) -> _Prepared | None:
    """Map the file's fields to catalog columns from its first bytes; the rows stay in S3. None (and
    the object reported) when its first bytes cannot be read or are not text."""
    try:
        if isinstance(head, SourceReadError):
            raise head
        layout = read_layout(head, ctx.config, key=obj.key)
    except SourceReadError as exc:
        _fail(ctx, obj, exc.reason)
        return None
    ignored = unknown_columns(layout, ctx.data_columns)
    if ignored:
        ctx.report.ignored_columns[obj.key] = ignored
    position = {name: i + 1 for i, name in enumerate(layout.catalog_names)}
    partitions = partition_values(obj.key, f"{ctx.table}/")
    return _Prepared(
        obj,
        positions={c.name: position[c.name] for c in ctx.data_columns if c.name in position},
        constants={k: partitions.get(k) for k in ctx.partition_keys},
    )


def _copy_external(ctx: _Load, batch: _Batch, into_ref: str) -> dict[str, int]:
    """One COPY per group of the batch's files that share a layout (field positions and partition
    values); rows loaded and errors per file from COPY's result rows."""
    merge = ctx.config.snowflake.write_mode == "merge"
    fmt = sql.csv_format_from_catalog(ctx.entry)
    loaded: dict[str, int] = {}
    for group in group_by(batch.objects, key=lambda p: (tuple(p.positions.items()), tuple(p.constants.items()))):
        keys = [p.obj.key for p in group]
        statement, params = sql.external_copy(
            into_ref, ctx.stage, keys, group[0].positions, group[0].constants, ddl.SOURCE_KEY_COLUMN, fmt,
            row_column=sql.SOURCE_ROW_COLUMN if merge else None,
        )
        ctx.cur.execute(statement, params)
        outcome = sql.copy_outcome(ctx.cur.fetchall())
        if outcome.skipped_files:
            raise SnowflakeLoadError(
                f"{outcome.skipped_files}: COPY's load history says these files are already in {into_ref}, but "
                "the ledger does not list them; the table and the ledger disagree (rebuild with write_mode: replace)"
            )
        for file, rows in outcome.rows_by_file.items():
            key = sql.file_of_key(file, keys)
            if key is not None:
                loaded[key] = loaded.get(key, 0) + rows
        if outcome.errors:
            ctx.report.rows_rejected_by_copy += outcome.rows_rejected
            ctx.report.copy_errors.extend(outcome.errors)
            objects = {p.obj.key: p.obj for p in group}
            for errors in group_by(outcome.errors, key=lambda e: sql.file_of_key(e["file"], keys) or keys[0]):
                obj = objects[sql.file_of_key(errors[0]["file"], keys) or keys[0]]
                qkey = quarantine_key("snowflake", ctx.table, obj.key, obj.etag)
                qkey = qkey.removesuffix(".rejected.csv") + ".copy_errors.csv"
                ctx.bucket.put(qkey, _copy_errors_csv(errors))
                ctx.report.quarantine_keys.append(qkey)
    return loaded


def _copy_errors_csv(errors: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(errors[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(errors)
    return out.getvalue().encode("utf-8")
