"""MySQL mirror hop: a catalog table becomes an exact MySQL table, loaded in bulk, once.

Per S3 object, in one transaction: the object's old rows are deleted, its rows stream from S3, are
typed against the catalog in Arrow (rows that cannot be typed and ragged rows go to the quarantine
prefix with line and reason) and flow through a named pipe into ``LOAD DATA LOCAL INFILE``, and its
ledger row is written. A killed run leaves all of an object's rows or none. Rows are keyed by (hash of
the object key, data row number), so deleting an object's rows is one key range and no row can be
loaded twice.

Strings longer than their MySQL column (a file newer than the catalog's crawl) are never truncated:
each block is checked before it is sent; on the first value too long the load is rolled back, the
whole object is measured, the columns are widened with ALTER TABLE, and the object is loaded again.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pymysql
from botocore.exceptions import ClientError

from sf_platform.core import ddl
from sf_platform.core import types as glue_types
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import RejectedRow, TargetColumn, mysql_ready
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads, source_id
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_header, quarantine_key, quarantine_rows
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import (
    PrefixedStream,
    TypedBatch,
    numbered_batches,
    read_head,
    read_layout,
    unknown_columns,
)
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.mysql import MySQLResource, load_data_local

LOCK_TIMEOUT_S = 3600
PARTITION_KEY_LENGTH = 255  # sizes partition key columns; longer values widen them like any string
# CSV bytes parsed per block. The reader's memory grows with it (measured in a Dagster step with the
# jemalloc pool of sf_platform.arrow_memory, 2M lineitem rows: peak RSS 297 MB at 512 KiB, 281 MB at
# 256 KiB, at the same rows/s): the server, not the parser, sets the pace.
BLOCK_BYTES = 1 << 18
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed", null_string="NULL", batch_size=16384)


class MirrorError(RuntimeError):
    """The mirror cannot proceed; the message names the table/column and what to do."""


class IncompatibleChange(MirrorError):
    """The catalog changed a column in a way MySQL cannot widen in place."""


@dataclass(frozen=True)
class MirrorColumn:
    """One column of the mirror: its name in the files, in the catalog and in MySQL, and its type."""

    source: str
    catalog: str
    mysql: str
    type: str  # Glue type
    max_length: int = 0
    partition: bool = False

    @property
    def spec(self) -> ddl.ColumnSpec:
        return ddl.ColumnSpec(self.mysql, self.type, self.max_length)


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
    files_deferred: list[str] = field(default_factory=list)  # changed in S3 during the run
    bytes_loaded: int = 0
    seconds: float = 0.0
    quarantine_keys: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    columns: list[MirrorColumn] = field(default_factory=list)
    mysql_types: dict[str, str] = field(default_factory=dict)  # MySQL column -> type as created
    full_refresh: bool = False
    rebuilt: bool = False

    def column_names(self) -> list[dict[str, str]]:
        """Source name -> catalog name -> MySQL column, for every mirrored column."""
        return [{"source": c.source, "catalog": c.catalog, "mysql": c.mysql} for c in self.columns]


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
    """Bring ``mysql.database``.``table`` up to date with the objects under ``table/`` in the bucket."""
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise MirrorError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    report = MirrorReport(table=table, database=mysql.database, columns=mirror_columns(entry))
    report.full_refresh = full_refresh
    mysql.ensure_database()
    with mysql.connect() as conn, _table_lock(conn, mysql.database, table):
        _Mirror(conn, bucket, mysql.database, table, config, run_id or uuid.uuid4().hex, report).run(
            full_refresh
        )
    report.seconds = time.monotonic() - started
    return report


def mirror_columns(entry: Mapping) -> list[MirrorColumn]:
    """The mirror's columns from a Glue table entry: data columns, then partition keys."""
    data = columns_of(entry)
    keys = partition_keys_of(entry)
    names = ddl.mysql_column_names([c.name for c in data] + list(keys))
    columns = [
        MirrorColumn(c.source_name or c.name, c.name, name, c.type, c.max_length)
        for c, name in zip(data, names[: len(data)], strict=True)
    ]
    columns += [
        MirrorColumn(k, k, name, "string", PARTITION_KEY_LENGTH, partition=True)
        for k, name in zip(keys, names[len(data) :], strict=True)
    ]
    return columns


@contextmanager
def _table_lock(conn, database: str, table: str) -> Iterator[None]:
    """Serialize runs on one table across processes with a MySQL named lock (held by the connection,
    so a killed run releases it)."""
    name = "sf_mirror:" + hashlib.sha1(f"{database}.{table}".encode()).hexdigest()
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (name, LOCK_TIMEOUT_S))
        if cur.fetchone()[0] != 1:
            raise MirrorError(f"timed out waiting for another run on {database}.{table}")
    try:
        yield
    finally:
        # The lock dies with the connection anyway; a failure here must not hide the run's own error.
        with suppress(pymysql.MySQLError, OSError), conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (name,))


def work_tables(table: str) -> tuple[str, str]:
    """(staging, old) table names of a full refresh: distinct from every registry table name, which
    cannot start with ``_``."""
    digest = hashlib.sha1(table.encode()).hexdigest()[:10]
    return f"_sf_stage_{digest}_{table}"[:64], f"_sf_old_{digest}_{table}"[:64]


class _TooLong(Exception):
    """A value does not fit its MySQL column; the load must be rolled back and the column widened."""


def _q(name: str) -> str:
    """A quoted identifier for a statement run with parameters (pymysql formats them with ``%``)."""
    return quote_mysql(name).replace("%", "%%")


class _Mirror:
    """One run on one table, on one connection that holds the table's lock."""

    def __init__(self, conn, bucket, database, table, config: TableConfig, run_id, report: MirrorReport):
        self.conn, self.bucket, self.database, self.table = conn, bucket, database, table
        self.config, self.run_id, self.report = config, run_id, report
        self.s3 = bucket.client()  # one client for the run: each new one loads the S3 service model again
        self.columns = report.columns
        self.data_columns = [c for c in self.columns if not c.partition]
        self.targets = [TargetColumn(c.catalog, c.type) for c in self.data_columns]

    # ---------------------------------------------------------------- the run

    def run(self, full_refresh: bool) -> None:
        self._execute(ddl.mysql_ledger_table(self.database))
        for leftover in work_tables(self.table):  # from a killed full refresh
            self._execute(f"DROP TABLE IF EXISTS {self._ref(leftover)}")
        objects = [o for o in self.bucket.source_objects(f"{self.table}/") if is_data_key(o.key)]
        rebuild = full_refresh
        if not rebuild:
            self._execute(ddl.mysql_create_table(self.database, self.table, [c.spec for c in self.columns]))
            rebuild = self._needs_rebuild()
        if rebuild:
            self._rebuild(objects)
        else:
            self._incremental(objects)
        self.report.rows_in_table = self._rows_in_ledger()
        self.report.mysql_types = self._column_types(self.table)
        self.conn.commit()

    def _needs_rebuild(self) -> bool:
        """Evolve the table in place; True when it must be rebuilt instead (by policy, or because it
        predates the mirror's current layout)."""
        if not set(ddl.MYSQL_BOOKKEEPING_COLUMNS) <= set(self._column_types(self.table)):
            self.report.schema_changes.append("rebuilt: the table predates the (source id, row) key")
            self.report.rebuilt = True
            return True
        try:
            self.report.schema_changes += self._evolve(self.table)
        except IncompatibleChange as exc:
            if self.config.mysql.on_incompatible_change != "rebuild":
                raise
            self.report.schema_changes.append(f"rebuilt: {exc}")
            self.report.rebuilt = True
            return True
        return False

    def _incremental(self, objects: Sequence[SourceObject]) -> None:
        ledger = self._ledger()
        _check_source_ids([*ledger, *(o.key for o in objects)])
        plan = plan_loads(objects, ledger)
        self.report.files_skipped = len(plan.unchanged)
        for obj in plan.to_load:
            self._load(obj, self.table, record=True)
        for gone in plan.deleted:
            self._remove(gone.key)

    def _rebuild(self, objects: Sequence[SourceObject]) -> None:
        """Load every object into a staging table, then swap it in with one atomic RENAME TABLE.

        The ledger is rewritten after the swap: if the run dies in between, the next run reloads the
        objects whose ledger rows are missing or stale, deleting their rows first, which converges."""
        _check_source_ids([o.key for o in objects])
        staging, old = work_tables(self.table)
        self._execute(
            ddl.mysql_create_table(
                self.database, staging, [c.spec for c in self.columns], if_not_exists=False
            )
        )
        loaded = [(obj, *self._load(obj, staging, record=False)) for obj in objects]
        self._execute(f"CREATE TABLE IF NOT EXISTS {self._ref(self.table)} LIKE {self._ref(staging)}")
        self._swap(staging, old)
        with self.conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} WHERE table_name = %s", (self.table,)
            )
            for obj, rows, quarantined in loaded:
                if rows is not None:
                    self._write_ledger(cur, obj, rows, quarantined)
        self.conn.commit()
        self._execute(f"DROP TABLE IF EXISTS {self._ref(old)}")

    def _swap(self, staging: str, old: str) -> None:
        self._execute(
            f"RENAME TABLE {self._ref(self.table)} TO {self._ref(old)}, {self._ref(staging)} TO {self._ref(self.table)}"
        )

    # ---------------------------------------------------------------- schema

    def _evolve(self, table: str) -> list[str]:
        """Add new catalog columns and widen changed ones; raise IncompatibleChange naming the column
        when a change would lose data."""
        existing = {name.lower(): (name, ctype) for name, ctype in self._column_types(table).items()}
        changes = []
        for column in self.columns:
            found = existing.pop(column.mysql.lower(), None)
            if found is None:
                self._execute(ddl.mysql_add_column(self.database, table, column.spec))
                changes.append(f"added {column.mysql} {column.spec.mysql_type}")
                continue
            changes += self._widen(table, column.mysql, found[1], column.spec.mysql_type, column.catalog)
        for name, _ in existing.values():
            if name not in ddl.MYSQL_BOOKKEEPING_COLUMNS:
                changes.append(f"kept {name}: no longer in the catalog, new rows hold NULL")
        return changes

    def _widen(self, table: str, name: str, current: str, wanted: str, catalog_name: str) -> list[str]:
        try:
            widened = glue_types.mysql_widening(current, wanted)
        except ValueError:
            raise IncompatibleChange(
                f"{self.database}.{table}: column {name!r} (catalog {catalog_name!r}) changed from {current} to "
                f"{wanted}, which MySQL cannot hold without losing data; set `mysql: {{on_incompatible_change: "
                "rebuild}` for the table in the registry, or run with full_refresh, to rebuild it"
            ) from None
        if widened is None:
            return []
        self._execute(ddl.mysql_modify_column(self.database, table, name, widened))
        return [f"widened {name} {current} -> {widened}"]

    def _column_types(self, table: str) -> dict[str, str]:
        rows = self._fetch(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (self.database, table),
        )
        return {name: ctype.upper() for name, ctype in rows}

    def _string_limits(self, table: str) -> dict[str, tuple[str, int]]:
        """Per MySQL string column: ("chars", n) for VARCHAR/CHAR, ("bytes", n) for the TEXT types."""
        rows = self._fetch(
            "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND CHARACTER_MAXIMUM_LENGTH IS NOT NULL",
            (self.database, table),
        )
        limits = {}
        for name, data_type, chars, octets in rows:
            kind = "chars" if data_type.lower() in ("varchar", "char") else "bytes"
            limits[name.lower()] = (kind, int(chars if kind == "chars" else octets))
        return limits

    # ---------------------------------------------------------------- loading one object

    def _load(self, obj: SourceObject, target: str, *, record: bool) -> tuple[int | None, int]:
        """Load one object into ``target``; (rows, rows quarantined), rows None if it changed in S3."""
        try:
            try:
                return self._load_once(obj, target, record)
            except _TooLong:
                self.report.schema_changes += self._widen_for(obj, target)
                return self._load_once(obj, target, record)
        except _ObjectChanged:
            self.report.files_deferred.append(obj.key)
            return None, 0

    def _load_once(self, obj: SourceObject, target: str, record: bool) -> tuple[int, int]:
        partitions = partition_values(obj.key, f"{self.table}/")
        limits = self._string_limits(target)
        self._check_partition_values(partitions, limits)
        body = self._open(obj)
        spool = _QuarantineSpool(obj.key, [c.catalog for c in self.data_columns])
        try:
            batches = self._batches(obj, body)
            feed = _RowFeed(batches, self._checks(limits), spool)
            with self.conn.cursor() as cur:
                cur.execute(
                    f"DELETE FROM {self._ref(target, q=_q)} WHERE {_q(ddl.MYSQL_SOURCE_ID_COLUMN)} = %s",
                    (source_id(obj.key),),
                )
                self._load_rows(cur, target, obj, partitions, feed)
                if spool.rows:
                    self._upload_quarantine(obj, spool)
                if record:
                    self._write_ledger(cur, obj, feed.rows, spool.rows)
            self.conn.commit()
        except BaseException:
            # A broken connection rolls back on the server; its error must not hide the original one.
            with suppress(pymysql.MySQLError, OSError):
                self.conn.rollback()
            raise
        finally:
            body.close()
            spool.close()
        self.report.rows_loaded += feed.rows
        self.report.rows_quarantined += spool.rows
        self.report.files_loaded.append(obj.key)
        self.report.bytes_loaded += obj.size
        return feed.rows, spool.rows

    def _batches(self, obj: SourceObject, body) -> Iterator[TypedBatch]:
        head = read_head(body)
        layout = read_layout(head, self.config)
        ignored = unknown_columns(layout, self.targets)
        if ignored:
            self.report.ignored_columns[obj.key] = ignored
        return numbered_batches(PrefixedStream(head, body), layout, self.targets, block_size=BLOCK_BYTES)

    def _load_rows(
        self, cur, target: str, obj: SourceObject, partitions: Mapping[str, str], feed: _RowFeed
    ) -> None:
        file_columns = [c.mysql for c in self.data_columns] + [ddl.MYSQL_ROW_COLUMN]
        constants = [ddl.SOURCE_KEY_COLUMN, ddl.MYSQL_SOURCE_ID_COLUMN]
        values: list = [obj.key, source_id(obj.key)]
        for column in self.columns:
            if column.partition:
                constants.append(column.mysql)
                values.append(partitions.get(column.catalog))
        sql = ddl.mysql_load_data(self.database, target, file_columns, constants)
        result = load_data_local(cur, sql, values, feed.chunks())
        if result.warnings:
            shown = "; ".join(f"{code}: {message}" for _, code, message in result.warnings[:5])
            raise MirrorError(f"{obj.key}: MySQL refused values, nothing of the file was loaded: {shown}")
        if result.rows != feed.rows:
            raise MirrorError(f"{obj.key}: sent {feed.rows} rows but MySQL loaded {result.rows}; rolled back")

    def _checks(self, limits: Mapping[str, tuple[str, int]]) -> list[tuple[str, str, int]]:
        """(catalog name, "chars" | "bytes", limit) for each string column of the file."""
        return [
            (c.catalog, *limits[c.mysql.lower()])
            for c in self.data_columns
            if c.mysql.lower() in limits and glue_types.parse(c.type).name == "string"
        ]

    def _check_partition_values(
        self, partitions: Mapping[str, str], limits: Mapping[str, tuple[str, int]]
    ) -> None:
        for column in self.columns:
            value = partitions.get(column.catalog) if column.partition else None
            if value is not None and _too_long(
                len(value), len(value.encode()), limits.get(column.mysql.lower())
            ):
                raise _TooLong(column.mysql)

    def _widen_for(self, obj: SourceObject, target: str) -> list[str]:
        """Measure every string of the object and widen the columns its values do not fit."""
        longest = self._measure(obj)
        partitions = partition_values(obj.key, f"{self.table}/")
        for column in self.columns:
            if column.partition and partitions.get(column.catalog) is not None:
                value = partitions[column.catalog]
                longest[column.catalog] = (len(value), len(value.encode()))
        limits = self._string_limits(target)
        current = self._column_types(target)
        changes = []
        for column in self.columns:
            chars, octets = longest.get(column.catalog, (0, 0))
            if _too_long(chars, octets, limits.get(column.mysql.lower())):
                wanted = glue_types.mysql_string_type(
                    max(chars, -(-octets // glue_types.UTF8MB4_BYTES_PER_CHAR))
                )
                changes += self._widen(target, column.mysql, current[column.mysql], wanted, column.catalog)
        return [f"{change} (values in {obj.key} longer than the catalog says)" for change in changes]

    def _measure(self, obj: SourceObject) -> dict[str, tuple[int, int]]:
        """Longest value of each string column of an object: (characters, UTF-8 bytes)."""
        strings = [c.catalog for c in self.data_columns if glue_types.parse(c.type).name == "string"]
        longest = dict.fromkeys(strings, (0, 0))
        body = self._open(obj)
        try:
            for batch in self._batches(obj, body):
                for name in strings:
                    column = batch.good.column(name)
                    chars = pc.max(pc.utf8_length(column)).as_py() or 0
                    octets = pc.max(pc.binary_length(column)).as_py() or 0
                    longest[name] = (max(longest[name][0], chars), max(longest[name][1], octets))
        finally:
            body.close()
        return longest

    def _open(self, obj: SourceObject):
        """The object's body, provided it is still the version listed (a newer one waits for the next run)."""
        try:
            return self.s3.get_object(Bucket=self.bucket.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise _ObjectChanged(obj.key) from None
            raise

    def _upload_quarantine(self, obj: SourceObject, spool: _QuarantineSpool) -> None:
        # Before the commit: if the upload fails the rows are not loaded either, and a re-run redoes both.
        key = quarantine_key("mysql", self.table, obj.key, obj.etag)
        self.bucket.upload_file(spool.path(), key)
        if key not in self.report.quarantine_keys:
            self.report.quarantine_keys.append(key)

    def _remove(self, key: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM {self._ref(self.table, q=_q)} WHERE {_q(ddl.MYSQL_SOURCE_ID_COLUMN)} = %s",
                (source_id(key),),
            )
            cur.execute(
                f"DELETE FROM {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} WHERE table_name = %s AND object_key = %s",
                (self.table, key),
            )
        self.conn.commit()
        self.report.files_removed.append(key)

    # ---------------------------------------------------------------- ledger

    def _ledger(self) -> dict[str, LedgerEntry]:
        rows = self._fetch(
            f"SELECT object_key, etag, rows_loaded FROM {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} WHERE table_name = %s",
            (self.table,),
        )
        return {k: LedgerEntry(k, e, int(r)) for k, e, r in rows}

    def _rows_in_ledger(self) -> int:
        # Exact: each object's ledger row is committed with its rows; and O(files), where COUNT(*) scans.
        rows = self._fetch(
            f"SELECT COALESCE(SUM(rows_loaded), 0) FROM {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} WHERE table_name = %s",
            (self.table,),
        )
        return int(rows[0][0])

    def _write_ledger(self, cur, obj: SourceObject, rows: int, quarantined: int) -> None:
        cur.execute(
            f"INSERT INTO {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} "
            "(table_name, object_key, etag, rows_loaded, rows_quarantined, bytes, run_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE etag = VALUES(etag), "
            "rows_loaded = VALUES(rows_loaded), rows_quarantined = VALUES(rows_quarantined), "
            "bytes = VALUES(bytes), run_id = VALUES(run_id), loaded_at = CURRENT_TIMESTAMP(6)",
            (self.table, obj.key, obj.etag, rows, quarantined, obj.size, self.run_id),
        )

    # ---------------------------------------------------------------- SQL helpers

    def _ref(self, table: str, q=quote_mysql) -> str:
        return f"{q(self.database)}.{q(table)}"

    def _execute(self, sql: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def _fetch(self, sql: str, args: tuple) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())


class _ObjectChanged(Exception):
    """The object was replaced or deleted in S3 after the listing."""


def _check_source_ids(keys: Sequence[str]) -> None:
    seen: dict[int, str] = {}
    for key in keys:
        other = seen.setdefault(source_id(key), key)
        if other != key:
            raise MirrorError(f"object keys {other!r} and {key!r} hash to the same source id; rename one")


def _too_long(chars: int, octets: int, limit: tuple[str, int] | None) -> bool:
    if limit is None:
        return False
    kind, size = limit
    return (chars if kind == "chars" else octets) > size


class _RowFeed:
    """Typed batches as CSV bytes for LOAD DATA, each good row numbered; rejected rows to the spool.

    Runs on the loader's feeding thread; ``rows`` is read after the statement ends."""

    def __init__(
        self, batches: Iterator[TypedBatch], checks: Sequence[tuple[str, str, int]], spool: _QuarantineSpool
    ):
        self.batches, self.checks, self.spool = batches, checks, spool
        self.rows = 0

    def chunks(self) -> Iterator[bytes]:
        for batch in self.batches:
            self.spool.add(batch.rejected)
            if batch.good.num_rows == 0:
                continue
            self._check_lengths(batch.good)
            ready = mysql_ready(batch.good)
            ready = pa.RecordBatch.from_arrays(
                [*ready.columns, batch.good_lines()], names=[*ready.schema.names, ddl.MYSQL_ROW_COLUMN]
            )
            sink = pa.BufferOutputStream()
            pacsv.write_csv(ready, sink, _CSV)
            self.rows += batch.good.num_rows
            yield sink.getvalue()

    def _check_lengths(self, batch: pa.RecordBatch) -> None:
        for name, kind, size in self.checks:
            column = batch.column(name)
            measure = pc.utf8_length if kind == "chars" else pc.binary_length
            longest = pc.max(measure(column)).as_py()
            if longest is not None and longest > size:
                raise _TooLong(name)


class _QuarantineSpool:
    """An object's rejected rows, written to a temporary file as they come (bounded memory)."""

    def __init__(self, source_key: str, column_names: Sequence[str]):
        self.source_key, self.column_names = source_key, list(column_names)
        self.rows = 0
        self._file = None

    def add(self, rows: Sequence[RejectedRow]) -> None:
        if not rows:
            return
        if self._file is None:
            self._file = tempfile.NamedTemporaryFile(prefix="sf_quarantine_", suffix=".csv")
            self._file.write(quarantine_header(self.column_names))
        self._file.write(quarantine_rows(self.source_key, rows))
        self.rows += len(rows)

    def path(self) -> str:
        self._file.flush()
        return self._file.name

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
