"""Snowflake load hop: a catalog table becomes a Snowflake table through a stage and COPY INTO.

Per S3 object: rows are typed against the catalog in Arrow (bad rows quarantined with the reason),
written as Parquet parts, PUT to an internal stage and loaded with ``COPY INTO ... MATCH_BY_COLUMN_NAME``;
the ledger row is inserted in the same transaction as the rows. No row INSERTs.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.core import ddl
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import TargetColumn
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import PrefixedStream, read_head, read_layout, typed_batches, unknown_columns
from sf_platform.resources.aws import GlueCatalog, LandingBucket

STAGE_NAME = "SF_PLATFORM_STAGE"
ROWS_PER_PART = 1_000_000


class SnowflakeLoadError(RuntimeError):
    """The load cannot proceed; the message names the table and the reason."""


@dataclass
class SnowflakeReport:
    table: str
    database: str
    schema: str
    rows_in_table: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: int = 0
    files_removed: list[str] = field(default_factory=list)
    bytes_loaded: int = 0
    parts_staged: int = 0
    seconds: float = 0.0
    quarantine_keys: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    columns: list[ddl.ColumnSpec] = field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return ".".join(snowflake_name(p) for p in (self.database, self.schema, self.table))


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
    """Append new and replaced objects of ``table`` into Snowflake (``connection``: a DB-API connection)."""
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise SnowflakeLoadError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    partition_keys = partition_keys_of(entry)
    columns = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    columns += [ddl.ColumnSpec(k, "string", 255) for k in partition_keys]
    report = SnowflakeReport(table=table, database=database, schema=schema, columns=columns)
    run_id = run_id or uuid.uuid4().hex
    target = ddl.snowflake_table_ref(database, schema, table)
    ledger_ref = ddl.snowflake_table_ref(database, schema, ddl.SNOWFLAKE_LEDGER_TABLE)
    stage = ddl.snowflake_table_ref(database, schema, STAGE_NAME)

    cur = connection.cursor()
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_snowflake(snowflake_name(database))}.{quote_snowflake(snowflake_name(schema))}")
    cur.execute(ddl.snowflake_ledger_table(database, schema))
    cur.execute(ddl.snowflake_create_table(database, schema, table, columns))
    cur.execute(f"CREATE STAGE IF NOT EXISTS {stage}")
    report.schema_changes = _evolve(cur, database, schema, table, columns)

    cur.execute(f'SELECT "OBJECT_KEY", "ETAG", "ROWS_LOADED" FROM {ledger_ref} WHERE "TABLE_NAME" = %s', (table,))
    ledger = {k: LedgerEntry(k, e, int(r)) for k, e, r in cur.fetchall()}
    objects = [o for o in bucket.source_objects(f"{table}/") if is_data_key(o.key)]
    plan = plan_loads(objects, ledger)
    report.files_skipped = len(plan.unchanged)
    data_columns = [TargetColumn(c.name, c.type) for c in columns if c.name not in partition_keys]
    for obj in plan.to_load:
        _load_object(cur, bucket, target, ledger_ref, stage, table, config, data_columns, partition_keys, obj, run_id, report)
    source_col = quote_snowflake(snowflake_name(ddl.SOURCE_KEY_COLUMN))
    for gone in plan.deleted:
        cur.execute("BEGIN")
        cur.execute(f"DELETE FROM {target} WHERE {source_col} = %s", (gone.key,))
        cur.execute(f'DELETE FROM {ledger_ref} WHERE "TABLE_NAME" = %s AND "OBJECT_KEY" = %s', (table, gone.key))
        cur.execute("COMMIT")
        report.files_removed.append(gone.key)
    cur.execute(f"SELECT COUNT(*) FROM {target}")
    report.rows_in_table = int(cur.fetchone()[0])
    report.seconds = time.monotonic() - started
    return report


def _evolve(cur, database: str, schema: str, table: str, columns: list[ddl.ColumnSpec]) -> list[str]:
    cur.execute(
        f"SELECT COLUMN_NAME FROM {quote_snowflake(snowflake_name(database))}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (snowflake_name(schema), snowflake_name(table)),
    )
    existing = {row[0] for row in cur.fetchall()}
    changes = []
    for column in columns:
        name = snowflake_name(column.name)
        if name not in existing:
            cur.execute(
                f"ALTER TABLE {ddl.snowflake_table_ref(database, schema, table)} "
                f"ADD COLUMN {quote_snowflake(name)} {column.snowflake_type}"
            )
            changes.append(f"added {name} {column.snowflake_type}")
    return changes


def _load_object(cur, bucket, target, ledger_ref, stage, table, config, data_columns, partition_keys, obj: SourceObject, run_id, report) -> None:
    partitions = partition_values(obj.key, f"{table}/")
    stage_path = f"{table}/{run_id}/{uuid.uuid4().hex}/"
    body = bucket.open(obj.key)
    rejected = []
    rows = 0
    try:
        head = read_head(body)
        layout = read_layout(head, config)
        ignored = unknown_columns(layout, data_columns)
        if ignored:
            report.ignored_columns[obj.key] = ignored
        with tempfile.TemporaryDirectory(prefix="sf_snowflake_") as tmp:
            parts = []
            writer, part_rows = None, 0
            for good, bad in typed_batches(PrefixedStream(head, body), layout, data_columns):
                rejected.extend(bad)
                if good.num_rows == 0:
                    continue
                batch = _with_constants(good, obj.key, partition_keys, partitions)
                if writer is None or part_rows >= ROWS_PER_PART:
                    if writer is not None:
                        writer.close()
                    parts.append(os.path.join(tmp, f"part-{len(parts):05d}.parquet"))
                    writer, part_rows = pq.ParquetWriter(parts[-1], batch.schema, compression="zstd"), 0
                writer.write_batch(batch)
                part_rows += batch.num_rows
                rows += batch.num_rows
            if writer is not None:
                writer.close()
            for part in parts:
                cur.execute(f"PUT 'file://{part}' @{stage}/{stage_path} AUTO_COMPRESS=FALSE PARALLEL=4")
            report.parts_staged += len(parts)
            if rejected:
                qkey = quarantine_key("snowflake", table, obj.key, obj.etag)
                bucket.put(qkey, quarantine_csv(obj.key, [c.name for c in data_columns], rejected))
                report.quarantine_keys.append(qkey)
            source_col = quote_snowflake(snowflake_name(ddl.SOURCE_KEY_COLUMN))
            cur.execute("BEGIN")
            try:
                cur.execute(f"DELETE FROM {target} WHERE {source_col} = %s", (obj.key,))
                loaded = 0
                if parts:
                    cur.execute(
                        f"COPY INTO {target} FROM @{stage}/{stage_path} FILE_FORMAT = (TYPE = PARQUET) "
                        "MATCH_BY_COLUMN_NAME = CASE_SENSITIVE PURGE = TRUE"
                    )
                    loaded = sum(int(r[3]) for r in cur.fetchall())
                if loaded != rows:
                    raise SnowflakeLoadError(f"{obj.key}: staged {rows} rows but COPY loaded {loaded}")
                cur.execute(f'DELETE FROM {ledger_ref} WHERE "TABLE_NAME" = %s AND "OBJECT_KEY" = %s', (table, obj.key))
                cur.execute(
                    f'INSERT INTO {ledger_ref} ("TABLE_NAME", "OBJECT_KEY", "ETAG", "ROWS_LOADED", "ROWS_QUARANTINED", '
                    '"BYTES", "LOADED_AT", "RUN_ID") VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
                    (table, obj.key, obj.etag, rows, len(rejected), obj.size, datetime.now(timezone.utc).replace(tzinfo=None), run_id),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
    finally:
        body.close()
    report.rows_loaded += rows
    report.rows_quarantined += len(rejected)
    report.files_loaded.append(obj.key)
    report.bytes_loaded += obj.size


def _with_constants(batch: pa.RecordBatch, source_key: str, partition_keys, partitions) -> pa.RecordBatch:
    """Upper-case names for Snowflake, plus the source key and partition values as columns."""
    n = batch.num_rows
    arrays = list(batch.columns)
    names = [snowflake_name(f.name) for f in batch.schema]
    for key in partition_keys:
        arrays.append(pa.repeat(pa.scalar(partitions.get(key), pa.string()), n))
        names.append(snowflake_name(key))
    arrays.append(pa.repeat(pa.scalar(source_key, pa.string()), n))
    names.append(snowflake_name(ddl.SOURCE_KEY_COLUMN))
    return pa.RecordBatch.from_arrays(arrays, names=names)
