"""MySQL mirror hop: a catalog table becomes an exact MySQL table, loaded in bulk, once.

Per S3 object: rows stream from S3, are typed against the catalog in Arrow (bad rows go to the
quarantine prefix with the reason), and flow through a named pipe into ``LOAD DATA LOCAL INFILE``;
the object's ledger row is written in the same transaction, so a killed run leaves either all of an
object's rows or none. Every row carries its source key: reloading an object first deletes its rows,
which makes each load idempotent even if the ledger were lost.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow.csv as pacsv

from sf_platform.core import ddl
from sf_platform.core import types as glue_types
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import TargetColumn, mysql_ready
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import PrefixedStream, read_head, read_layout, typed_batches, unknown_columns
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.mysql import MySQLResource

LOCK_TIMEOUT_S = 3600


class MirrorError(RuntimeError):
    """The mirror cannot proceed; the message names the table/column and what to do."""


@dataclass
class MirrorReport:
    table: str
    database: str
    rows_in_table: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: int = 0
    files_removed: list[str] = field(default_factory=list)
    bytes_loaded: int = 0
    seconds: float = 0.0
    quarantine_keys: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    columns: list[ddl.ColumnSpec] = field(default_factory=list)
    full_refresh: bool = False


def mirror_table(
    bucket: LandingBucket,
    catalog: GlueCatalog,
    mysql: MySQLResource,
    table: str,
    config: TableConfig,
    *,
    run_id: str = "",
    full_refresh: bool = False,
) -> MirrorReport:
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise MirrorError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    partition_keys = partition_keys_of(entry)
    columns = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    columns += [ddl.ColumnSpec(k, "string", 255) for k in partition_keys]
    report = MirrorReport(table=table, database=mysql.database, columns=columns, full_refresh=full_refresh)
    run_id = run_id or uuid.uuid4().hex

    mysql.ensure_database()
    objects = [o for o in bucket.source_objects(f"{table}/") if is_data_key(o.key)]
    with mysql.connect() as conn, _table_lock(conn, mysql.database, table):
        cur = conn.cursor()
        cur.execute(ddl.mysql_ledger_table(mysql.database))
        if full_refresh:
            _full_refresh(conn, bucket, mysql.database, table, config, columns, partition_keys, objects, run_id, report)
        else:
            cur.execute(ddl.mysql_create_table(mysql.database, table, columns))
            report.schema_changes = _evolve(conn, mysql.database, table, columns, config)
            plan = plan_loads(objects, _ledger(conn, mysql.database, table))
            report.files_skipped = len(plan.unchanged)
            for obj in plan.to_load:
                _load_object(conn, bucket, mysql.database, table, table, config, columns, partition_keys, obj, run_id, report)
            for gone in plan.deleted:
                _remove_object(conn, mysql.database, table, gone.key)
                report.files_removed.append(gone.key)
        cur.execute(f"SELECT COUNT(*) FROM {quote_mysql(mysql.database)}.{quote_mysql(table)}")
        report.rows_in_table = int(cur.fetchone()[0])
        conn.commit()
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _table_lock(conn, database: str, table: str) -> Iterator[None]:
    """Serialize runs on one table across processes with a MySQL named lock."""
    name = f"sf_platform:{database}.{table}"[:64]
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, LOCK_TIMEOUT_S))
        if cur.fetchone()[0] != 1:
            raise MirrorError(f"timed out waiting for another run on {database}.{table}")
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))


def _ledger(conn, database: str, table: str) -> dict[str, LedgerEntry]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT object_key, etag, rows_loaded FROM {quote_mysql(database)}.{quote_mysql(ddl.MYSQL_LEDGER_TABLE)}"
            " WHERE table_name = %s",
            (table,),
        )
        return {k: LedgerEntry(k, e, int(r)) for k, e, r in cur.fetchall()}


def _existing_columns(conn, database: str, table: str) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        return {name: ctype for name, ctype in cur.fetchall()}


def _evolve(conn, database: str, table: str, columns: Sequence[ddl.ColumnSpec], config: TableConfig) -> list[str]:
    """Add new catalog columns and widen changed ones; fail clearly on a change that would lose data."""
    existing = _existing_columns(conn, database, table)
    changes = []
    with conn.cursor() as cur:
        for column in columns:
            if column.name not in existing:
                cur.execute(ddl.mysql_add_column(database, table, column))
                changes.append(f"added {column.name} {column.mysql_type}")
                continue
            try:
                widened = glue_types.mysql_widening(existing[column.name], column.mysql_type)
            except ValueError as exc:
                raise MirrorError(
                    f"{database}.{table}: column {column.name!r} changed from {existing[column.name]} to "
                    f"{column.mysql_type} ({exc}); set mysql.on_incompatible_change: rebuild in the registry "
                    "and run with full_refresh to rebuild the table"
                ) from None
            if widened:
                cur.execute(ddl.mysql_modify_column(database, table, column.name, widened))
                changes.append(f"widened {column.name} {existing[column.name]} -> {widened}")
    return changes


def _full_refresh(conn, bucket, database, table, config, columns, partition_keys, objects, run_id, report) -> None:
    """Load every object into a staging table, then swap it in with one atomic RENAME TABLE."""
    staging, old = f"{table}__sf_staging"[:64], f"{table}__sf_old"[:64]
    db = quote_mysql(database)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {db}.{quote_mysql(staging)}")
        cur.execute(ddl.mysql_create_table(database, staging, columns, if_not_exists=False))
        cur.execute(f"DROP TABLE IF EXISTS {db}.{quote_mysql(old)}")
    staged: list[tuple[SourceObject, int, int]] = []
    for obj in objects:
        before = (report.rows_loaded, report.rows_quarantined)
        _load_object(conn, bucket, database, staging, table, config, columns, partition_keys, obj, run_id, report, ledger=False)
        staged.append((obj, report.rows_loaded - before[0], report.rows_quarantined - before[1]))
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {db}.{quote_mysql(table)} LIKE {db}.{quote_mysql(staging)}")
        cur.execute(
            f"RENAME TABLE {db}.{quote_mysql(table)} TO {db}.{quote_mysql(old)}, "
            f"{db}.{quote_mysql(staging)} TO {db}.{quote_mysql(table)}"
        )
        cur.execute(f"DELETE FROM {db}.{quote_mysql(ddl.MYSQL_LEDGER_TABLE)} WHERE table_name = %s", (table,))
        for obj, rows, quarantined in staged:
            _write_ledger(cur, database, table, obj, rows, quarantined, run_id)
        conn.commit()
        cur.execute(f"DROP TABLE IF EXISTS {db}.{quote_mysql(old)}")


def _remove_object(conn, database: str, table: str, key: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"DELETE FROM {quote_mysql(database)}.{quote_mysql(table)} WHERE {quote_mysql(ddl.SOURCE_KEY_COLUMN)} = %s",
            (key,),
        )
        cur.execute(
            f"DELETE FROM {quote_mysql(database)}.{quote_mysql(ddl.MYSQL_LEDGER_TABLE)} "
            "WHERE table_name = %s AND object_key = %s",
            (table, key),
        )
    conn.commit()


def _write_ledger(cur, database, table, obj: SourceObject, rows: int, quarantined: int, run_id: str) -> None:
    cur.execute(
        f"INSERT INTO {quote_mysql(database)}.{quote_mysql(ddl.MYSQL_LEDGER_TABLE)} "
        "(table_name, object_key, etag, rows_loaded, rows_quarantined, bytes, run_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE etag = VALUES(etag), "
        "rows_loaded = VALUES(rows_loaded), rows_quarantined = VALUES(rows_quarantined), "
        "bytes = VALUES(bytes), run_id = VALUES(run_id), loaded_at = CURRENT_TIMESTAMP(6)",
        (table, obj.key, obj.etag, rows, quarantined, obj.size, run_id),
    )


def _load_object(
    conn, bucket, database, target_table, table, config, columns, partition_keys, obj: SourceObject, run_id, report,
    *, ledger: bool = True,
) -> None:
    """Load one object in one transaction: delete its old rows, LOAD DATA its rows, write its ledger row."""
    data_columns = [TargetColumn(c.name, c.type) for c in columns if c.name not in partition_keys]
    partitions = partition_values(obj.key, f"{table}/")
    body = bucket.open(obj.key)
    try:
        head = read_head(body)
        layout = read_layout(head, config)
        ignored = unknown_columns(layout, data_columns)
        if ignored:
            report.ignored_columns[obj.key] = ignored
        batches = typed_batches(PrefixedStream(head, body), layout, data_columns)
        with conn.cursor() as cur:
            db, tbl = quote_mysql(database), quote_mysql(target_table)
            cur.execute(f"DELETE FROM {db}.{tbl} WHERE {quote_mysql(ddl.SOURCE_KEY_COLUMN)} = %s", (obj.key,))
            written, rejected = _load_data(cur, db, tbl, data_columns, partition_keys, partitions, obj.key, batches)
            if rejected:
                qkey = quarantine_key("mysql", table, obj.key, obj.etag)
                bucket.put(qkey, quarantine_csv(obj.key, [c.name for c in data_columns], rejected))
                report.quarantine_keys.append(qkey)
            if ledger:
                _write_ledger(cur, database, table, obj, written, len(rejected), run_id)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        body.close()
    report.rows_loaded += written
    report.rows_quarantined += len(rejected)
    report.files_loaded.append(obj.key)
    report.bytes_loaded += obj.size


def _load_data(cur, db, tbl, data_columns, partition_keys, partitions, source_key, batches):
    """Stream typed batches through a named pipe into LOAD DATA LOCAL INFILE; returns (rows, rejected)."""
    state: dict = {"rows": 0, "rejected": [], "error": None}
    with tempfile.TemporaryDirectory(prefix="sf_mysql_") as tmp:
        fifo = os.path.join(tmp, "rows.csv")
        os.mkfifo(fifo)
        writer = threading.Thread(target=_write_fifo, args=(fifo, batches, data_columns, state), daemon=True)
        writer.start()
        column_list = ", ".join(quote_mysql(c.name) for c in data_columns)
        assignments = [f"{quote_mysql(ddl.SOURCE_KEY_COLUMN)} = %s"]
        args: list = [fifo, source_key]
        for key in partition_keys:
            assignments.append(f"{quote_mysql(key)} = %s")
            args.append(partitions.get(key))
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {db}.{tbl} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            "LINES TERMINATED BY '\\n' "
            f"({column_list}) SET {', '.join(assignments)}"
        )
        try:
            cur.execute(sql, args)
        except BaseException:
            _unblock_writer(fifo)
            writer.join()
            raise
        writer.join()
        if state["error"] is not None:
            raise state["error"]
        loaded = cur.rowcount
        warnings = cur.connection.show_warnings() if cur.warning_count else ()
    if warnings:
        raise MirrorError(f"MySQL reported problems loading {source_key}: {list(warnings)[:5]}")
    if loaded != state["rows"]:
        raise MirrorError(f"{source_key}: sent {state['rows']} rows but MySQL loaded {loaded}")
    return loaded, state["rejected"]


def _write_fifo(fifo: str, batches, data_columns, state: dict) -> None:
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid", null_string="NULL")
    try:
        with open(fifo, "wb") as sink:
            writer = None
            for good, bad in batches:
                state["rejected"].extend(bad)
                if good.num_rows == 0:
                    continue
                ready = mysql_ready(good)
                if writer is None:
                    writer = pacsv.CSVWriter(sink, ready.schema, write_options=options)
                writer.write_batch(ready)
                state["rows"] += good.num_rows
            if writer is not None:
                writer.close()
    except BaseException as exc:  # surfaced by the caller after LOAD DATA returns
        state["error"] = exc


def _unblock_writer(fifo: str) -> None:
    """Open and close the pipe's read end so a writer blocked in open() fails fast instead of hanging."""
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass

