"""MySQL mirror hop: a catalog table becomes an exact MySQL table, loaded in bulk, once.

The objects to load are taken in batches (up to ``BATCH_OBJECTS`` objects and ``BATCH_BYTES`` of
source bytes; an object of ``ALONE_BYTES`` or more is a batch of its own). Per batch, in one
transaction: the old rows of the batch's objects are deleted (one statement), their rows stream from
S3 (small objects fetched ahead on a few threads), are typed against the catalog in Arrow (rows that
cannot be typed and ragged rows go to the quarantine prefix, one file per object, with line and
reason) and flow through a named pipe into one ``LOAD DATA LOCAL INFILE``, each row carrying its
object's key and id, and the batch's ledger rows are written (one statement). A killed run leaves all
of a batch's rows or none. Rows are keyed by (hash of the object key, data row number), so deleting an
object's rows is one key range and no row can be loaded twice.

Strings longer than their MySQL column (a file newer than the catalog's crawl) are never truncated:
each block is checked before it is sent; on the first value too long the batch is rolled back, its
objects are measured, the columns are widened with ALTER TABLE, and the batch is loaded again. An
object replaced or deleted in S3 since the listing is left for the next run; the rest of its batch
loads.

One bad file never blocks the rest: an object that cannot be read (a GET failing, bad gzip, not text, a
row over SF_MAX_FIELD_BYTES) is reported in ``MirrorReport.files_failed`` with its key and reason, gets
one quarantine record per version (``_quarantine/mysql/<table>/<key>.<etag>.unreadable.csv``), and is
not written to the ledger, so the next run tries it again. Its batch is rolled back and loaded again
without it (no partial rows of it ever commit); the table's other objects load in the same run. An object
that was loaded before and is now replaced by an unreadable version has its old rows removed: the
table mirrors the readable files, as the catalog's recordCount counts them.
"""

from __future__ import annotations

import hashlib
import io
import re
import tempfile
import time
import uuid
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pymysql
from botocore.exceptions import ClientError

from sf_platform.core import batching, ddl
from sf_platform.core import types as glue_types
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.conversion import RejectedRow, TargetColumn, mysql_ready
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.ledger import LedgerEntry, SourceObject, plan_loads, source_id
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import (
    quarantine_header,
    quarantine_key,
    quarantine_rows,
    quarantine_unreadable,
)
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import (
    PrefixedStream,
    SourceReadError,
    TypedBatch,
    numbered_batches,
    open_source,
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
# Objects loaded in one transaction. Small objects share one LOAD DATA stream, so a table of many
# small files costs a few statements instead of several per file; an object of ALONE_BYTES or more
# takes long enough to load that a transaction of its own costs nothing, and a killed run loses less.
BATCH_OBJECTS = 500
BATCH_BYTES = 64 << 20
ALONE_BYTES = 1 << 20
# Objects up to PREFETCH_MAX_BYTES are fetched whole and typed on PREFETCH_THREADS threads, at most
# PREFETCH_AHEAD_OBJECTS / about PREFETCH_AHEAD_BYTES of source ahead of the feed (memory stays
# bounded); larger ones are streamed when their turn comes.
PREFETCH_MAX_BYTES = 8 << 20
PREFETCH_AHEAD_BYTES = 16 << 20
PREFETCH_AHEAD_OBJECTS = 64
PREFETCH_THREADS = 8  # S3 reads wait on the network: more threads than cores pay off
FLUSH_ROWS = 16384  # rows of small objects gathered into one CSV write
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
    files_failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be read (not loaded)
    bytes_loaded: int = 0
    seconds: float = 0.0
    quarantine_keys: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    columns: list[MirrorColumn] = field(default_factory=list)
    mysql_types: dict[str, str] = field(default_factory=dict)  # MySQL column -> type as created
    full_refresh: bool = False
    rebuilt: bool = False
    batches: int = 0  # transactions that loaded objects

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
        self.columns = report.columns
        self.data_columns = [c for c in self.columns if not c.partition]
        self.targets = [TargetColumn(c.catalog, c.type) for c in self.data_columns]
        self.pool: ThreadPoolExecutor | None = None  # reads small objects ahead, during a run
        self.ignored: dict[str, list[str]] = {}  # object key -> file columns not in the catalog

    # ---------------------------------------------------------------- the run

    def run(self, full_refresh: bool) -> None:
        self.pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="sf-mirror-get")
        try:
            self._run(full_refresh)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, full_refresh: bool) -> None:
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
        for batch in self._batches(plan.to_load):
            self._load(batch, self.table, record=True)
        for gone in plan.deleted:
            self._remove(gone.key)
        for key in self.report.files_failed:
            if key in ledger:  # its loaded version was replaced by one that cannot be read
                self._remove(key, removed=False)

    def _rebuild(self, objects: Sequence[SourceObject]) -> None:
        """Load every object into a staging table, then swap it in with one atomic RENAME TABLE.

        The ledger is rewritten after the swap: if the run dies in between, the next run reloads the
        objects whose ledger rows are missing or stale, deleting their rows first, which converges."""
        _check_source_ids([o.key for o in objects])
        staging, old = work_tables(self.table)
        try:
            self._execute(
                ddl.mysql_create_table(
                    self.database, staging, [c.spec for c in self.columns], if_not_exists=False
                )
            )
            loaded: list[_Loaded] = []
            for batch in self._batches(sorted(objects, key=lambda o: o.key)):
                loaded += self._load(batch, staging, record=False)
            self._execute(f"CREATE TABLE IF NOT EXISTS {self._ref(self.table)} LIKE {self._ref(staging)}")
            self._swap(staging, old)
        except BaseException:
            # A failed rebuild leaves no staging table behind (the live table is untouched); a broken
            # connection's error must not hide the original one (the next run drops it then).
            with suppress(pymysql.MySQLError, OSError):
                self.conn.rollback()
                self._execute(f"DROP TABLE IF EXISTS {self._ref(staging)}")
            raise
        with self.conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM {self._ref(ddl.MYSQL_LEDGER_TABLE, q=_q)} WHERE table_name = %s", (self.table,)
            )
            for start in range(0, len(loaded), BATCH_OBJECTS):
                self._write_ledger(cur, loaded[start : start + BATCH_OBJECTS])
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

    # ---------------------------------------------------------------- loading a batch of objects

    @staticmethod
    def _batches(objects: Sequence[SourceObject]) -> list[tuple[SourceObject, ...]]:
        """The objects in order, in load batches: each run of objects under ALONE_BYTES cut by
        ``batching.batches``, each larger object alone."""
        result: list[tuple[SourceObject, ...]] = []
        small: list[SourceObject] = []
        for obj in objects:
            if obj.size < ALONE_BYTES:
                small.append(obj)
                continue
            result += batching.batches(small, max_objects=BATCH_OBJECTS, max_bytes=BATCH_BYTES)
            result.append((obj,))
            small = []
        return result + batching.batches(small, max_objects=BATCH_OBJECTS, max_bytes=BATCH_BYTES)

    def _load(self, batch: Sequence[SourceObject], target: str, *, record: bool) -> list[_Loaded]:
        """Load a batch of objects into ``target`` in one transaction; what was loaded, per object.

        An object replaced or deleted in S3 since the listing is deferred and the rest of the batch
        loaded again without it; so is an object that cannot be read (reported in ``files_failed``,
        left out of the ledger); a value too long for its column widens the column and the batch is
        loaded again."""
        pending = list(batch)
        widened = False
        while pending:
            try:
                return self._load_once(pending, target, record)
            except _ObjectChanged as exc:
                self.report.files_deferred.append(exc.key)
                pending = [o for o in pending if o.key != exc.key]
            except SourceReadError as exc:
                pending = self._without_failed(pending, exc)
            except _TooLong as exc:
                if widened:
                    raise MirrorError(
                        f"{_names(pending)}: column {exc.args[0]!r} is still too short after widening it"
                    ) from None
                try:
                    self.report.schema_changes += self._widen_for(pending, target)
                except _ObjectChanged as changed:
                    self.report.files_deferred.append(changed.key)
                    pending = [o for o in pending if o.key != changed.key]
                    continue  # measure again without it
                except SourceReadError as failed:
                    pending = self._without_failed(pending, failed)
                    continue
                widened = True
        return []

    def _without_failed(self, pending: Sequence[SourceObject], exc: SourceReadError) -> list[SourceObject]:
        """Report the object that could not be read (its key, the reason, one quarantine record per
        version) and return the batch without it, to be loaded again: nothing of it was committed."""
        failed = [o for o in pending if o.key == exc.key]
        if not failed:  # cannot name one of the batch's objects: not a per-file failure
            raise exc
        obj = failed[0]
        self.report.files_failed[obj.key] = exc.reason
        record = quarantine_unreadable(self.bucket, "mysql", self.table, obj.key, obj.etag, exc.reason)
        if record not in self.report.quarantine_keys:
            self.report.quarantine_keys.append(record)
        return [o for o in pending if o.key != obj.key]

    def _load_once(self, objects: Sequence[SourceObject], target: str, record: bool) -> list[_Loaded]:
        limits = self._string_limits(target)
        for obj in objects:
            self._check_partition_values(self._partitions(obj), limits)
        feed = _RowFeed(self, objects, self._checks(limits))
        try:
            with self.conn.cursor() as cur:
                ids = [source_id(o.key) for o in objects]
                cur.execute(ddl.mysql_delete_sources(self.database, target, len(ids)), ids)
                self._load_rows(cur, target, feed)
                if record:
                    self._write_ledger(cur, feed.loaded)
            self.conn.commit()
        except BaseException:
            # A broken connection rolls back on the server; its error must not hide the original one.
            with suppress(pymysql.MySQLError, OSError):
                self.conn.rollback()
            raise
        self.report.batches += 1
        for obj, rows, quarantined in feed.loaded:
            self.report.rows_loaded += rows
            self.report.rows_quarantined += quarantined
            self.report.files_loaded.append(obj.key)
            self.report.bytes_loaded += obj.size
        for obj, _, _ in feed.loaded:
            if obj.key in self.ignored:
                self.report.ignored_columns[obj.key] = self.ignored[obj.key]
        for key in feed.quarantine_keys:
            if key not in self.report.quarantine_keys:
                self.report.quarantine_keys.append(key)
        return feed.loaded

    def _partitions(self, obj: SourceObject) -> dict[str, str]:
        return partition_values(obj.key, f"{self.table}/")

    def _typed(self, obj: SourceObject, body, reopen=None) -> Iterator[TypedBatch]:
        """The object's rows as typed batches. An object that cannot be read (a truncated gzip, not
        text, a broken connection) raises SourceReadError naming it. File columns the catalog does not
        know are recorded in ``ignored``. ``reopen``: a new body of the same version (large objects)."""
        try:
            head = read_head(body)
            layout = read_layout(head, self.config, key=obj.key)
            unknown = unknown_columns(layout, self.targets)
            if unknown:
                self.ignored[obj.key] = unknown
            stream = PrefixedStream(head, body)
            yield from numbered_batches(
                stream, layout, self.targets, block_size=BLOCK_BYTES, key=obj.key, reopen=reopen
            )
        except SourceReadError as exc:
            if isinstance(exc.__cause__, _ObjectChanged):  # replaced while it was read again
                raise exc.__cause__ from None
            raise
        except (_TooLong, _ObjectChanged, MirrorError):
            raise
        except Exception as exc:
            raise SourceReadError(obj.key, f"{type(exc).__name__}: {exc}") from exc

    def _sources(
        self, objects: Sequence[SourceObject]
    ) -> Iterator[tuple[SourceObject, Iterator[TypedBatch]]]:
        """(object, its typed batches) in order, each object still the version listed (else
        _ObjectChanged). Small objects are fetched and typed ahead on the pool, a bounded number of
        source bytes ahead of the caller: reading a small file is mostly waiting (for S3, and for
        pyarrow's reader thread to get the GIL), which several threads overlap. Larger objects are
        streamed from S3 when their turn comes."""
        ahead: deque[tuple[SourceObject, Future | None]] = deque()
        queued = 0  # source bytes read ahead
        rest = iter(objects)
        try:
            while True:
                while len(ahead) < PREFETCH_AHEAD_OBJECTS and queued < PREFETCH_AHEAD_BYTES:
                    obj = next(rest, None)
                    if obj is None:
                        break
                    small = obj.size <= PREFETCH_MAX_BYTES
                    ahead.append((obj, self.pool.submit(self._read_small, obj) if small else None))
                    queued += obj.size if small else 0
                if not ahead:
                    return
                obj, read = ahead.popleft()
                if read is None:
                    yield obj, self._read_large(obj)
                else:
                    queued -= obj.size
                    yield obj, iter(read.result())
        finally:
            for _, read in ahead:
                if read is not None:
                    read.cancel()

    def _read_small(self, obj: SourceObject) -> list[TypedBatch]:
        body = self._open(obj)
        try:
            data = body.read()
        finally:
            body.close()
        return list(self._typed(obj, io.BytesIO(data)))

    def _read_large(self, obj: SourceObject) -> Iterator[TypedBatch]:
        opened = [self._open(obj)]

        def reopen():
            opened.append(self._open(obj))
            return opened[-1]

        try:
            yield from self._typed(obj, opened[0], reopen)
        finally:
            for body in opened:
                body.close()

    def _load_rows(self, cur, target: str, feed: _RowFeed) -> None:
        columns = [c.mysql for c in self.data_columns] + list(_STREAM_BOOKKEEPING)
        columns += [c.mysql for c in self.columns if c.partition]
        sql = ddl.mysql_load_data(self.database, target, columns, [])
        result = load_data_local(cur, sql, (), feed.chunks())
        whole = "the file" if len(feed.objects) == 1 else f"its batch of {len(feed.objects)} files"
        if result.warnings:
            shown = "; ".join(f"{code}: {message}" for _, code, message in result.warnings[:5])
            raise MirrorError(
                f"{feed.culprit(result.warnings)}: MySQL refused values, nothing of {whole} was loaded: {shown}"
            )
        if result.rows != feed.rows:
            raise MirrorError(
                f"{_names(feed.objects)}: sent {feed.rows} rows but MySQL loaded {result.rows}; "
                f"nothing of {whole} was loaded"
            )

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

    def _widen_for(self, objects: Sequence[SourceObject], target: str) -> list[str]:
        """Measure every string of the objects and widen the columns their values do not fit."""
        longest = self._measure(objects)  # catalog name -> (characters, bytes, object key)
        for obj in objects:
            for column in self.columns:
                value = self._partitions(obj).get(column.catalog) if column.partition else None
                if value is not None:
                    _keep_longest(longest, column.catalog, len(value), len(value.encode()), obj.key)
        limits = self._string_limits(target)
        current = self._column_types(target)
        changes = []
        for column in self.columns:
            chars, octets, key = longest.get(column.catalog, (0, 0, ""))
            if _too_long(chars, octets, limits.get(column.mysql.lower())):
                wanted = glue_types.mysql_string_type(_chars_needed(chars, octets))
                widened = self._widen(target, column.mysql, current[column.mysql], wanted, column.catalog)
                changes += [f"{change} (values in {key} longer than the catalog says)" for change in widened]
        return changes

    def _measure(self, objects: Sequence[SourceObject]) -> dict[str, tuple[int, int, str]]:
        """Longest value of each string column over the objects: (characters, UTF-8 bytes, the key of
        the object that needs the widest column)."""
        strings = [c.catalog for c in self.data_columns if glue_types.parse(c.type).name == "string"]
        longest: dict[str, tuple[int, int, str]] = {}
        with closing(self._sources(objects)) as sources:
            for obj, typed in sources:
                for batch in typed:
                    for name in strings:
                        column = batch.good.column(name)
                        chars = pc.max(pc.utf8_length(column)).as_py() or 0
                        octets = pc.max(pc.binary_length(column)).as_py() or 0
                        _keep_longest(longest, name, chars, octets, obj.key)
        return longest

    def _open(self, obj: SourceObject):
        """The object's body, provided it is still the version listed (a newer one waits for the next
        run); its read errors, and a GET that fails otherwise, are SourceReadErrors naming it."""
        try:
            return open_source(self.bucket, obj.key, IfMatch=f'"{obj.etag}"')
        except SourceReadError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] in (
                "PreconditionFailed", "412", "NoSuchKey", "404",
            ):
                raise _ObjectChanged(obj.key) from None
            raise

    def _upload_quarantine(self, obj: SourceObject, spool: _QuarantineSpool) -> str:
        # Before the commit: if the upload fails the rows are not loaded either, and a re-run redoes both
        # (the key is the object's and its ETag's, so a batch loaded again writes the same file again).
        key = quarantine_key("mysql", self.table, obj.key, obj.etag)
        self.bucket.upload_file(spool.path(), key)
        return key

    def _remove(self, key: str, *, removed: bool = True) -> None:
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
        if removed:
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

    def _write_ledger(self, cur, loaded: Sequence[_Loaded]) -> None:
        """The ledger rows of ``loaded`` objects, in one statement."""
        if not loaded:
            return
        args: list = []
        for obj, rows, quarantined in loaded:
            args += [self.table, obj.key, obj.etag, rows, quarantined, obj.size, self.run_id]
        cur.execute(ddl.mysql_ledger_upsert(self.database, len(loaded)), args)

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

    @property
    def key(self) -> str:
        return self.args[0]


# (object, rows loaded, rows quarantined)
_Loaded = tuple[SourceObject, int, int]

# The bookkeeping fields of each streamed row, after the data columns and before the partition keys.
_STREAM_BOOKKEEPING = (ddl.MYSQL_ROW_COLUMN, ddl.SOURCE_KEY_COLUMN, ddl.MYSQL_SOURCE_ID_COLUMN)
_WARNING_ROW = re.compile(r"\bat row (\d+)")


def _names(objects: Sequence[SourceObject]) -> str:
    """The objects of a batch for a message: the key of one, the first and last keys of several."""
    if len(objects) == 1:
        return objects[0].key
    return f"{objects[0].key} .. {objects[-1].key} ({len(objects)} files)"


def _keep_longest(longest: dict[str, tuple[int, int, str]], name: str, chars: int, octets: int, key: str):
    """Fold one object's longest value of a column into ``longest``, keeping the key of the object
    whose value needs the widest column."""
    seen_chars, seen_octets, seen_key = longest.get(name, (0, 0, ""))
    widest = key if _chars_needed(chars, octets) > _chars_needed(seen_chars, seen_octets) else seen_key
    longest[name] = (max(seen_chars, chars), max(seen_octets, octets), widest)


def _chars_needed(chars: int, octets: int) -> int:
    return max(chars, -(-octets // glue_types.UTF8MB4_BYTES_PER_CHAR))


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
    """The rows of a batch's objects as one CSV stream for LOAD DATA: each good row numbered within
    its object and carrying the object's key, id and partition values; rejected rows to a quarantine
    file per object, uploaded when the object is done.

    Runs on the loader's feeding thread; ``rows``, ``loaded`` and the rest are read after the
    statement ends."""

    def __init__(
        self, mirror: _Mirror, objects: Sequence[SourceObject], checks: Sequence[tuple[str, str, int]]
    ):
        self.mirror, self.objects, self.checks = mirror, list(objects), checks
        self.rows = 0  # rows sent
        self.loaded: list[_Loaded] = []  # per object, once all its rows are sent
        self.quarantine_keys: list[str] = []
        self._starts: list[int] = []  # rows sent before each object's first row

    def chunks(self) -> Iterator[bytes]:
        gathered: list[pa.RecordBatch] = []
        waiting = 0  # rows gathered, not yet sent
        names = [c.catalog for c in self.mirror.data_columns]
        with closing(self.mirror._sources(self.objects)) as sources:
            for obj, typed in sources:
                self._starts.append(self.rows + waiting)
                spool = _QuarantineSpool(obj.key, names)
                good = 0
                try:
                    for batch in typed:
                        spool.add(batch.rejected)
                        if batch.good.num_rows == 0:
                            continue
                        self._check_lengths(batch.good)
                        gathered.append(self._stream_batch(obj, batch))
                        good += batch.good.num_rows
                        waiting += batch.good.num_rows
                        if waiting >= FLUSH_ROWS:
                            yield _csv(gathered)
                            self.rows += waiting
                            gathered, waiting = [], 0
                    if spool.rows:
                        self.quarantine_keys.append(self.mirror._upload_quarantine(obj, spool))
                finally:
                    close = getattr(typed, "close", None)
                    if close is not None:
                        close()
                    spool.close()
                self.loaded.append((obj, good, spool.rows))
        if gathered:
            yield _csv(gathered)
            self.rows += waiting

    def _stream_batch(self, obj: SourceObject, batch: TypedBatch) -> pa.RecordBatch:
        """The good rows of ``batch`` as the stream's fields: data columns, bookkeeping, partition keys."""
        ready = mysql_ready(batch.good)
        count = batch.good.num_rows
        partitions = self.mirror._partitions(obj)
        extra = [
            batch.good_lines(),
            pa.repeat(pa.scalar(obj.key, pa.string()), count),
            pa.repeat(pa.scalar(source_id(obj.key), pa.int64()), count),
        ]
        names = list(_STREAM_BOOKKEEPING)
        for column in self.mirror.columns:
            if column.partition:
                extra.append(pa.repeat(pa.scalar(partitions.get(column.catalog), pa.string()), count))
                names.append(column.mysql)
        return pa.RecordBatch.from_arrays([*ready.columns, *extra], names=[*ready.schema.names, *names])

    def culprit(self, warnings: Sequence[tuple]) -> str:
        """The object whose row the first warning names ("at row N"), or the batch."""
        for _, _, message in warnings:
            found = _WARNING_ROW.search(str(message))
            if found:
                index = bisect_right(self._starts, int(found.group(1)) - 1) - 1
                if 0 <= index < len(self.loaded) and int(found.group(1)) <= self.rows:
                    return self.loaded[index][0].key
        return _names(self.objects)

    def _check_lengths(self, batch: pa.RecordBatch) -> None:
        for name, kind, size in self.checks:
            column = batch.column(name)
            measure = pc.utf8_length if kind == "chars" else pc.binary_length
            longest = pc.max(measure(column)).as_py()
            if longest is not None and longest > size:
                raise _TooLong(name)


def _csv(batches: Sequence[pa.RecordBatch]) -> pa.Buffer:
    """Record batches (of one stream, so of one schema but for null-only columns) as CSV lines."""
    sink = pa.BufferOutputStream()
    schema = batches[0].schema
    if all(b.schema == schema for b in batches):
        pacsv.write_csv(pa.Table.from_batches(batches, schema), sink, _CSV)
    else:
        for batch in batches:
            pacsv.write_csv(batch, sink, _CSV)
    return sink.getvalue()


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
