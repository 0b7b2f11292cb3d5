"""Snowflake load hop: a catalog table becomes a Snowflake table through a stage and COPY INTO.

Rows reach Snowflake only through a stage and ``COPY INTO``, never row INSERTs. Two stage modes
(``snowflake.stage`` in the registry):

- ``internal`` (the local stack's): per S3 object, rows are typed against the catalog in Arrow (rows
  that cannot be typed and ragged rows quarantined with the reason), written as Parquet parts, PUT to
  an internal stage and loaded with ``COPY INTO ... MATCH_BY_COLUMN_NAME``.
- ``external``: ``COPY`` reads the object straight from a named stage on the landing bucket, with the
  catalog's CSV options; only the file's first bytes are read by the worker (to map its header to
  catalog columns). Rows Snowflake cannot convert are skipped by ``ON_ERROR = CONTINUE`` and reported
  per file (count and first error; Snowflake's VALIDATE() does not cover transforming COPYs).

Three write modes (``snowflake.write_mode``):

- ``append``: each new object is loaded once, in one transaction with its ledger row; a replaced
  object's old rows are deleted first, a deleted object's rows are removed. COPY's own load history
  is the server-side backstop for the external stage (a file it already loaded is reported, not
  reloaded).
- ``replace``: when anything changed, every object is loaded into a staging table that is swapped in
  with ``ALTER TABLE ... SWAP WITH``; the ledger is rewritten after the swap (a crash in between only
  makes the next run rebuild again).
- ``merge``: new objects are loaded into a transient staging table and upserted on ``merge_keys`` with
  one ``MERGE``; their ledger rows follow (re-merging after a crash in between gives the same table,
  so the two need no shared transaction). Duplicate keys inside one load: the last
  row wins (latest object key, then latest row in the file) and the superseded rows are counted; rows
  with an empty key are rejected (quarantined with the reason). A deleted object only leaves the
  ledger: merged rows are state, not a copy of one file.

Columns follow the catalog: new catalog columns are added (``ALTER TABLE ADD COLUMN``), NUMBER
precision is widened in place, other type changes fail with the column named (``replace`` rebuilds).

fakesnow gaps, each detected on its specific error and reported, never hidden: it cannot parse
``SWAP WITH`` (the swap falls back to two ``RENAME``s in one transaction; ``swap_method``) nor
``REMOVE @stage`` (parts a killed run left in the internal stage stay there; ``notes``).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sf_platform.core import ddl
from sf_platform.core import snowflake_sql as sql
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import RejectedRow, TargetColumn
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import (
    PrefixedStream,
    numbered_batches,
    read_head,
    read_layout,
    unknown_columns,
)
from sf_platform.resources.aws import GlueCatalog, LandingBucket

STAGE_NAME = "SF_PLATFORM_STAGE"
ROWS_PER_PART = 1_000_000
EXTERNAL_HEAD_BYTES = 64 * 1024  # enough to detect a file's format and read its header
SWAP_FALLBACK = "RENAME x2 in one transaction (fakesnow cannot parse ALTER TABLE ... SWAP WITH)"
REMOVE_FALLBACK = "stage not cleaned of killed runs' parts (fakesnow cannot parse REMOVE @stage)"


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
    bytes_loaded: int = 0
    parts_staged: int = 0
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
    def stage(self) -> str:
        if self.config.snowflake.stage == "external":
            parts = self.config.snowflake.external_stage.split(".")
            return sql.qualified(".".join([self.database, self.schema][: 3 - len(parts)] + parts))
        return self.ref(STAGE_NAME)

    def staging_name(self, purpose: str) -> str:
        return f"{self.table}__sf_{purpose}"


@dataclass
class _Prepared:
    """One object made ready for COPY: internal parts PUT under ``stage_path``, or an external mapping."""

    obj: SourceObject
    rows: int = 0
    rejected: int = 0
    stage_path: str = ""
    positions: dict[str, int] = field(default_factory=dict)
    constants: dict[str, str | None] = field(default_factory=dict)


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
    {"append": _append, "merge": _merge, "replace": _replace}[target_cfg.write_mode](ctx, plan, objects)
    ctx.cur.execute(f"SELECT COUNT(*) FROM {ctx.target}")
    report.rows_in_table = int(ctx.cur.fetchone()[0])
    report.seconds = time.monotonic() - started
    return report


def _prepare_schema(ctx: _Load) -> None:
    db, schema = (quote_snowflake(snowflake_name(p)) for p in (ctx.database, ctx.schema))
    ctx.cur.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{schema}")
    ctx.cur.execute(ddl.snowflake_ledger_table(ctx.database, ctx.schema))
    target = ctx.config.snowflake
    if target.stage == "internal":
        ctx.cur.execute(f"CREATE STAGE IF NOT EXISTS {ctx.stage}")
        _clean_stage(ctx)
    elif target.storage_integration:
        statement, params = sql.create_external_stage(ctx.stage, ctx.bucket.uri(), target.storage_integration)
        ctx.cur.execute(statement, params)


def _clean_stage(ctx: _Load) -> None:
    """Remove parts a killed run left in the internal stage (COPY purges the ones it loads)."""
    try:
        ctx.cur.execute(sql.remove_statement(ctx.stage, f"{ctx.table}/"))
    except Exception as exc:
        if not sql.is_remove_unsupported(exc):
            raise
        ctx.report.notes.append(REMOVE_FALLBACK)


def _read_ledger(ctx: _Load) -> dict[str, LedgerEntry]:
    ctx.cur.execute(f'SELECT "OBJECT_KEY", "ETAG", "ROWS_LOADED" FROM {ctx.ledger} WHERE "TABLE_NAME" = %s', (ctx.table,))
    return {k: LedgerEntry(k, e, int(r)) for k, e, r in ctx.cur.fetchall()}


# ---- write modes


def _append(ctx: _Load, plan, objects) -> None:
    ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, ctx.table, ctx.columns))
    ctx.report.schema_changes = _evolve(ctx)
    ctx.report.files_skipped = len(plan.unchanged)
    source_col = quote_snowflake(snowflake_name(ddl.SOURCE_KEY_COLUMN))
    for obj in plan.to_load:
        prepared = _prepare(ctx, obj, row_numbers=False)
        with _transaction(ctx.cur):
            ctx.cur.execute(f"DELETE FROM {ctx.target} WHERE {source_col} = %s", (obj.key,))
            loaded = _copy(ctx, prepared, ctx.target)
            _write_ledger(ctx, obj, loaded, prepared.rejected)
        _count(ctx, prepared, loaded)
    for gone in plan.deleted:
        with _transaction(ctx.cur):
            ctx.cur.execute(f"DELETE FROM {ctx.target} WHERE {source_col} = %s", (gone.key,))
            _delete_ledger(ctx, gone.key)
        ctx.report.files_removed.append(gone.key)


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
            for obj in plan.to_load:
                prepared = _prepare(ctx, obj, row_numbers=True)
                loaded.append((prepared, _copy(ctx, prepared, staging)))
            order = [ddl.SOURCE_KEY_COLUMN, sql.SOURCE_ROW_COLUMN]
            ctx.cur.execute(sql.null_key_rows(staging, keys))
            null_keys = int(ctx.cur.fetchone()[0])  # only the external stage can stage such rows
            ctx.cur.execute(sql.superseded_rows(staging, keys, order))
            ctx.report.duplicate_key_rows = int(ctx.cur.fetchone()[0])
            names = [c.name for c in ctx.columns] + [ddl.SOURCE_KEY_COLUMN]
            # One atomic MERGE, then the ledger. A crash in between re-merges the same rows next run,
            # which leaves the same table (an upsert is idempotent), so they need no shared transaction
            # (fakesnow could not run MERGE inside one: its MERGE also writes its own catalog).
            ctx.cur.execute(sql.merge_statement(ctx.target, staging, names, keys, order))
            inserted, updated = (list(ctx.cur.fetchone() or []) + [0, 0])[:2]
            with _transaction(ctx.cur):
                for prepared, rows in loaded:
                    _write_ledger(ctx, prepared.obj, rows, prepared.rejected)
        finally:
            ctx.cur.execute(f"DROP TABLE IF EXISTS {staging}")
        ctx.report.rows_inserted, ctx.report.rows_updated = int(inserted), int(updated)
        if null_keys:
            ctx.report.rows_rejected_by_copy += null_keys
            ctx.report.copy_errors.append({"errors_seen": null_keys, "first_error": f"merge key {keys} is empty"})
        for prepared, rows in loaded:
            _count(ctx, prepared, rows)
    for gone in plan.deleted:
        with _transaction(ctx.cur):
            _delete_ledger(ctx, gone.key)
        ctx.report.files_removed.append(gone.key)


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
        for obj in sorted(objects, key=lambda o: o.key):
            prepared = _prepare(ctx, obj, row_numbers=False)
            loaded.append((prepared, _copy(ctx, prepared, staging)))
        ctx.cur.execute(ddl.snowflake_create_table(ctx.database, ctx.schema, ctx.table, ctx.columns))
        ctx.report.swap_method = _swap(ctx, staging_name)
    finally:
        ctx.cur.execute(f"DROP TABLE IF EXISTS {staging}")  # after the swap: the previous table
    ctx.report.rebuilt = True
    ctx.report.schema_changes = changes
    with _transaction(ctx.cur):
        ctx.cur.execute(f'DELETE FROM {ctx.ledger} WHERE "TABLE_NAME" = %s', (ctx.table,))
        for prepared, rows in loaded:
            _write_ledger(ctx, prepared.obj, rows, prepared.rejected, delete_first=False)
    for prepared, rows in loaded:
        _count(ctx, prepared, rows)
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


def _write_ledger(ctx: _Load, obj: SourceObject, rows: int, quarantined: int, *, delete_first: bool = True) -> None:
    if delete_first:
        _delete_ledger(ctx, obj.key)
    ctx.cur.execute(
        f'INSERT INTO {ctx.ledger} ("TABLE_NAME", "OBJECT_KEY", "ETAG", "ROWS_LOADED", "ROWS_QUARANTINED", '
        '"BYTES", "LOADED_AT", "RUN_ID") VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
        (ctx.table, obj.key, obj.etag, rows, quarantined, obj.size, datetime.now(UTC).replace(tzinfo=None), ctx.run_id),
    )


def _delete_ledger(ctx: _Load, key: str) -> None:
    ctx.cur.execute(f'DELETE FROM {ctx.ledger} WHERE "TABLE_NAME" = %s AND "OBJECT_KEY" = %s', (ctx.table, key))


def _count(ctx: _Load, prepared: _Prepared, loaded: int) -> None:
    ctx.report.rows_loaded += loaded
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


def _column_diff(existing: dict[str, str], columns: Sequence[ddl.ColumnSpec]) -> list[str]:
    if not existing:
        return ["created"]
    wanted = {snowflake_name(c.name): c.snowflake_type for c in columns}
    wanted[snowflake_name(ddl.SOURCE_KEY_COLUMN)] = "VARCHAR"
    changes = [f"added {n} {t}" for n, t in wanted.items() if n not in existing]
    changes += [f"dropped {n}" for n in existing if n not in wanted]
    changes += [f"retyped {n} {existing[n]} -> {t}" for n, t in wanted.items() if n in existing and existing[n] != t]
    return changes


# ---- one object: prepare (type + PUT, or map the header), then COPY


def _prepare(ctx: _Load, obj: SourceObject, *, row_numbers: bool) -> _Prepared:
    if ctx.config.snowflake.stage == "external":
        return _prepare_external(ctx, obj)
    return _prepare_internal(ctx, obj, row_numbers)


def _copy(ctx: _Load, prepared: _Prepared, into_ref: str) -> int:
    """COPY one prepared object into ``into_ref``; returns the rows loaded."""
    if ctx.config.snowflake.stage == "external":
        return _copy_external(ctx, prepared, into_ref)
    if not prepared.stage_path:
        return 0
    ctx.cur.execute(sql.copy_parquet(into_ref, ctx.stage, prepared.stage_path))
    outcome = sql.copy_outcome(ctx.cur.fetchall())
    if outcome.rows_loaded != prepared.rows:
        raise SnowflakeLoadError(f"{prepared.obj.key}: staged {prepared.rows} rows but COPY loaded {outcome.rows_loaded}")
    return outcome.rows_loaded


def _prepare_internal(ctx: _Load, obj: SourceObject, row_numbers: bool) -> _Prepared:
    prepared = _Prepared(obj)
    partitions = partition_values(obj.key, f"{ctx.table}/")
    keys = list(ctx.config.snowflake.merge_keys) if ctx.config.snowflake.write_mode == "merge" else []
    data_columns = ctx.data_columns
    rejected: list[RejectedRow] = []
    body = ctx.bucket.open(obj.key)
    try:
        head = read_head(body)
        layout = read_layout(head, ctx.config)
        ignored = unknown_columns(layout, data_columns)
        if ignored:
            ctx.report.ignored_columns[obj.key] = ignored
        with tempfile.TemporaryDirectory(prefix="sf_snowflake_") as tmp:
            parts, writer, part_rows = [], None, 0
            for typed in numbered_batches(PrefixedStream(head, body), layout, data_columns):
                good = typed.good
                rejected.extend(typed.rejected)
                if keys and good.num_rows:
                    good = _reject_null_keys(good, keys, typed.good_lines(), rejected)
                if good.num_rows == 0:
                    continue
                batch = _with_constants(good, obj.key, ctx.partition_keys, partitions, prepared.rows if row_numbers else None)
                if writer is None or part_rows >= ROWS_PER_PART:
                    if writer is not None:
                        writer.close()
                    parts.append(os.path.join(tmp, f"part-{len(parts):05d}.parquet"))
                    writer, part_rows = pq.ParquetWriter(parts[-1], batch.schema, compression="zstd"), 0
                writer.write_batch(batch)
                part_rows += batch.num_rows
                prepared.rows += batch.num_rows
            if writer is not None:
                writer.close()
            if parts:
                prepared.stage_path = f"{ctx.table}/{ctx.run_id}/{uuid.uuid4().hex}/"
                location = sql.stage_location(ctx.stage, prepared.stage_path)
            for part in parts:
                ctx.cur.execute(f"PUT 'file://{part}' {location} AUTO_COMPRESS=FALSE PARALLEL=4")
            ctx.report.parts_staged += len(parts)
    finally:
        body.close()
    if rejected:
        qkey = quarantine_key("snowflake", ctx.table, obj.key, obj.etag)
        rejected.sort(key=lambda r: r.line)
        ctx.bucket.put(qkey, quarantine_csv(obj.key, [c.name for c in data_columns], rejected))
        ctx.report.quarantine_keys.append(qkey)
    prepared.rejected = len(rejected)
    return prepared


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


def _prepare_external(ctx: _Load, obj: SourceObject) -> _Prepared:
    """Map the file's fields to catalog columns from its first bytes; the rows stay in S3."""
    body = ctx.bucket.open(obj.key)
    try:
        layout = read_layout(read_head(body, EXTERNAL_HEAD_BYTES), ctx.config)
    finally:
        body.close()
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


def _copy_external(ctx: _Load, prepared: _Prepared, into_ref: str) -> int:
    merge = ctx.config.snowflake.write_mode == "merge"
    statement, params = sql.external_copy(
        into_ref, ctx.stage, prepared.obj.key, prepared.positions, prepared.constants, ddl.SOURCE_KEY_COLUMN,
        sql.csv_format_from_catalog(ctx.entry), row_column=sql.SOURCE_ROW_COLUMN if merge else None,
    )
    ctx.cur.execute(statement, params)
    outcome = sql.copy_outcome(ctx.cur.fetchall())
    if outcome.skipped_files:
        raise SnowflakeLoadError(
            f"{prepared.obj.key}: COPY's load history says this file is already in {into_ref}, but the ledger "
            "does not list it; the table and the ledger disagree (rebuild with write_mode: replace)"
        )
    if outcome.errors:
        ctx.report.rows_rejected_by_copy += outcome.rows_rejected
        ctx.report.copy_errors.extend(outcome.errors)
        key = quarantine_key("snowflake", ctx.table, prepared.obj.key, prepared.obj.etag)
        key = key.removesuffix(".rejected.csv") + ".copy_errors.csv"
        ctx.bucket.put(key, _copy_errors_csv(outcome.errors))
        ctx.report.quarantine_keys.append(key)
    return outcome.rows_loaded


def _copy_errors_csv(errors: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(errors[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(errors)
    return out.getvalue().encode("utf-8")
