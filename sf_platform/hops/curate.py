"""Curate hop: a crawled table's objects become rows of its hub table, an Apache Iceberg table in the
curated Glue database (``sf_platform/hub``), typed once: the MySQL and Snowflake loads read the hub.

Rows are parsed and typed against the catalog in Arrow (``core.source_file``, ``core.conversion``), each
with its source key and 1-based data row number (``_sf_source_key``, ``_sf_row``) and its hive partition
values. Ragged rows and rows that cannot be typed are quarantined once, here, with line and reason
(``_quarantine/curated/<table>/<key>.<etag>.rejected.csv``). An object that cannot be read (S3 refusing
it, bad gzip, not text, a row over SF_MAX_FIELD_BYTES) is reported in ``problems`` with one quarantine
record per version and left out; the run goes on with the other objects, and the next run tries it
again. A read that breaks off for a reason that is not the file's (a reset, a timeout, throttling, a
5xx: ``TransientReadError``) is no verdict on it: the table fails as transient, nothing is committed,
and the step retries it (``assets/hop.py``).

Exactly once, in one commit: the hub ledger (``hub.ledger``: which (key, ETag) the table holds) is
compared with the listing; the rows of every new and replaced object go into data files of the target
size (``hub.files``), and ONE snapshot removes the data files holding rows of replaced and deleted
objects, adds the rewritten rest of those files and the new files, and points at the new ledger. A run
killed before that commit leaves only unreferenced files (removed as orphans); after it, everything is
there. A commit that loses a race with another writer is planned again from the new head (at most
``COMMIT_ATTEMPTS`` times). A deleted object's rows are removed, and leave MySQL and Snowflake with their
next load (the registry's ``delete_behavior`` governs catalog entries and partitions, in the crawl);
a curated object replaced by a version that cannot be read loses its stale rows.

Small objects are fetched and typed a few at a time ahead of the writer (at most ``FETCH_AHEAD`` objects
or ``READ_AHEAD_BYTES``), and typed whole before any of their rows is written; an object of
``ALONE_BYTES`` or more is streamed in bounded memory into data files of its own, which are deleted if
anything stops it part way (then it is unreadable, or the table fails as transient, as above). Then
upkeep (``hub.maintenance``): compaction when small files pile up, snapshot expiry, orphan removal.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from sf_platform.core.catalog import CatalogColumn, columns_of, partition_keys_of
from sf_platform.core.conversion import RejectedRow, TargetColumn
from sf_platform.core.ledger import SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key, quarantine_unreadable
from sf_platform.core.read_ahead import read_ahead
from sf_platform.core.registry import TableConfig, UpdateBehavior
from sf_platform.core.source_file import (
    PrefixedStream,
    SourceReadError,
    numbered_batches,
    open_source,
    read_head,
    read_layout,
    read_source,
    unknown_columns,
)
from sf_platform.hub import ledger as hub_ledger
from sf_platform.hub import maintenance, writer
from sf_platform.hub.catalog import Hub
from sf_platform.hub.conventions import CURATE, REBUILD, ROW, SOURCE_KEY, hub_columns, target_file_bytes
from sf_platform.hub.files import DataFileWriter
from sf_platform.resources.aws import GlueCatalog, LandingBucket

FETCH_WORKERS = 4  # small source objects read and typed at a time
FETCH_AHEAD = 16  # ... at most this many objects ahead of the writer
READ_AHEAD_BYTES = 64 * 1024**2  # ... and at most this many source bytes (at least one object)
ALONE_BYTES = 32 * 1024**2  # an object this large is streamed into data files of its own
COMMIT_ATTEMPTS = 5  # plans made again after losing a commit race
QUARANTINE_TARGET = "curated"


class CurateError(RuntimeError):
    """The table cannot be curated; the message names the table and the reason."""


@dataclass
class CurateReport:
    table: str
    database: str  # the curated Glue database
    location: str
    columns: tuple[CatalogColumn, ...] = ()  # the hub table's catalog columns (data columns, partition keys)
    partition_keys: tuple[str, ...] = ()
    action: str = ""  # created | migrated | rebuilt | updated | unchanged
    snapshot_id: int | None = None  # the hub table's current snapshot after the run
    rows: int = 0  # rows in the hub table
    files: int = 0  # live data files
    raw_bytes: int = 0  # source bytes of the objects in the table
    curated_bytes: int = 0  # bytes of its live data files
    rows_written: int = 0  # this run: rows of new and replaced objects
    rows_rewritten: int = 0  # this run: rows of other objects moved out of files holding replaced ones
    row_groups_written: int = 0
    files_written: list[str] = field(default_factory=list)  # source keys curated this run
    files_skipped: int = 0  # source objects unchanged
    files_removed: list[str] = field(default_factory=list)  # deleted source objects whose rows were removed
    data_files_added: int = 0
    data_files_removed: int = 0
    rows_quarantined: int = 0  # this run
    rows_quarantined_total: int = 0  # quarantined rows of every object in the table
    quarantine_keys: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # source key -> why it could not be read
    schema_changes: list[str] = field(default_factory=list)
    conflicts: int = 0  # commits lost to another writer, planned again
    upkeep: maintenance.Upkeep = field(default_factory=maintenance.Upkeep)
    seconds: float = 0.0
    sources: int = 0  # source objects in the table

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def compression_ratio(self) -> float:
        """Curated bytes per raw byte (0.25: the curated table takes a quarter of the raw one's space)."""
        return round(self.curated_bytes / self.raw_bytes, 4) if self.raw_bytes else 0.0


@dataclass
class _Curation:
    """Everything one table's curation needs, passed around instead of a dozen arguments."""

    bucket: LandingBucket
    table: str
    config: TableConfig
    data_columns: list[CatalogColumn]
    partition_keys: list[str]
    report: CurateReport
    target_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def targets(self) -> list[TargetColumn]:
        return [TargetColumn(c.name, c.type) for c in self.data_columns]


def curate_table(
    bucket: LandingBucket, catalog: GlueCatalog, table: str, config: TableConfig, *, curated_database: str
) -> CurateReport:
    """Bring ``table``'s hub (Iceberg) table in ``curated_database`` up to date with its objects."""
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise CurateError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    hub = Hub(bucket, catalog, curated_database)
    columns, keys = hub_columns(entry), partition_keys_of(entry)
    report = CurateReport(table, curated_database, hub.location(table) + "/", tuple(columns), tuple(keys))
    ctx = _Curation(bucket, table, config, columns_of(entry), keys, report, target_file_bytes())
    iceberg, report.action = writer.open_table(hub, table, columns, keys)
    iceberg, operation = _follow_catalog(ctx, hub, iceberg, columns)
    objects = _source_objects(bucket, table, keys)
    for _attempt in range(COMMIT_ATTEMPTS):
        try:
            iceberg = _curate_once(ctx, iceberg, objects, operation)
            break
        except writer.conflict_errors():
            report.conflicts += 1
            iceberg = hub.require(table)
    else:
        raise CurateError(f"{table}: {COMMIT_ATTEMPTS} commits in a row lost to other writers; try again")
    iceberg = maintenance.compact(iceberg, bucket, ctx.target_bytes, report.upkeep)
    iceberg = maintenance.expire(iceberg, bucket, report.upkeep)
    _totals(ctx, iceberg)
    report.seconds = time.monotonic() - started
    return report


def _follow_catalog(ctx: _Curation, hub: Hub, iceberg, columns: list[CatalogColumn]):
    """Evolve the hub table's schema to the catalog's (another run evolving it first: read it again);
    -> (table, the operation of this run's commit: ``curate``, or ``rebuild`` after an incompatible change
    under UPDATE_IN_DATABASE)."""
    report, behavior = ctx.report, ctx.config.schema_change.update_behavior
    for _attempt in range(COMMIT_ATTEMPTS):
        try:
            iceberg, report.schema_changes = writer.evolve(iceberg, columns)
            return iceberg, CURATE
        except writer.conflict_errors():
            iceberg = hub.require(ctx.table)
        except writer.SchemaChangeError as exc:
            if behavior is not UpdateBehavior.UPDATE_IN_DATABASE:
                raise CurateError(f"{ctx.table}: the catalog's columns changed in a way the hub cannot follow in "
                                  f"place (update_behavior {behavior.value}): {exc}") from None
            writer.drop(hub, ctx.table)
            iceberg, _ = writer.open_table(hub, ctx.table, columns, ctx.partition_keys)
            report.action, report.schema_changes = "rebuilt", [f"rebuilt: {exc}"]
            return iceberg, REBUILD
    raise CurateError(f"{ctx.table}: {COMMIT_ATTEMPTS} schema updates in a row lost to other writers; try again")


def _source_objects(bucket: LandingBucket, table: str, keys: Sequence[str]) -> list[SourceObject]:
    """The table's data objects in the catalog's partition layout (the crawl leaves the others out)."""
    prefix = f"{table}/"
    return [
        o
        for o in bucket.source_objects(prefix)
        if is_data_key(o.key) and tuple(partition_values(o.key, prefix)) == tuple(keys)
    ]


def _totals(ctx: _Curation, iceberg) -> None:
    report, snapshot = ctx.report, iceberg.current_snapshot()
    ledger = hub_ledger.load(ctx.bucket, snapshot.summary if snapshot else None)
    files = writer.live_files(iceberg)
    report.snapshot_id = snapshot.snapshot_id if snapshot else None
    report.rows, report.rows_quarantined_total, report.raw_bytes = ledger.totals()
    report.sources, report.files = len(ledger.objects), len(files)
    report.curated_bytes = sum(int(f.file_size_in_bytes) for f in files)
    if report.action == "existing":
        report.action = "updated" if report.rows_written or report.files_removed or report.schema_changes else "unchanged"


# ------------------------------------------------------------------------------------------ one commit


def _curate_once(ctx: _Curation, iceberg, objects: Sequence[SourceObject], operation: str):
    """Plan against the ledger of the current snapshot and commit the changes in one snapshot."""
    from pyiceberg.expressions import In

    snapshot = iceberg.current_snapshot()
    summary = snapshot.summary if snapshot is not None else None
    if snapshot is not None and not (summary or {}).get(hub_ledger.P_LEDGER) and writer.live_files(iceberg):
        raise CurateError(f"{ctx.table}: the hub table's current snapshot has no sf.ledger (written by another tool?)")
    ledger = hub_ledger.load(ctx.bucket, summary)
    plan = plan_loads(objects, ledger.entries())
    ctx.report.files_skipped = len(plan.unchanged)
    if not plan.to_load and not plan.deleted:
        return iceberg
    affected = {o.key for o in plan.replaced} | {e.key for e in plan.deleted}
    new_ledger = hub_ledger.HubLedger(dict(ledger.objects))
    for gone in plan.deleted:
        del new_ledger.objects[gone.key]
    removed = writer.live_files(iceberg, In(SOURCE_KEY, sorted(affected))) if affected else []
    work = _Work(ctx, iceberg, affected)
    try:
        for partition in sorted({*(_partition(ctx, o.key) for o in plan.to_load),
                                 *(writer.partition_of(iceberg, f) for f in removed)}, key=repr):
            work.rewrite([f for f in removed if writer.partition_of(iceberg, f) == partition])
            work.curate([o for o in plan.to_load if _partition(ctx, o.key) == partition], new_ledger)
        added = work.close()
        if ledger.objects == new_ledger.objects and not added and not removed:
            return iceberg  # only unreadable new objects: nothing to commit
        hub_ledger.save(ctx.bucket, ctx.table, new_ledger)
        iceberg = writer.commit_files(
            iceberg, removed=removed, added=added, properties=new_ledger.summary(ctx.table, operation)
        )
    except BaseException:
        work.abort()
        raise
    report = ctx.report
    report.files_removed = [gone.key for gone in plan.deleted]
    report.files_written = [k for k in work.done]
    report.rows_written, report.rows_rewritten = work.rows_written, work.rows_rewritten
    report.rows_quarantined = sum(new_ledger.objects[k].rejected for k in work.done)
    report.quarantine_keys += [new_ledger.objects[k].quarantine_key for k in work.done if new_ledger.objects[k].quarantine_key]
    report.data_files_added, report.data_files_removed = len(added), len(removed)
    report.row_groups_written = work.row_groups()
    return iceberg


class _Work:
    """The data files of one commit being written: the main writer (small objects and rewritten rows,
    one partition after the other) and one writer per streamed large object."""

    def __init__(self, ctx: _Curation, iceberg, affected: set[str]):
        self.ctx, self.iceberg, self.affected = ctx, iceberg, affected
        self.main = DataFileWriter(iceberg, ctx.bucket, target_bytes=ctx.target_bytes)
        self.writers = [self.main]
        self.done: list[str] = []
        self.rows_written = self.rows_rewritten = 0

    def rewrite(self, files) -> None:
        """The rows of other objects in files holding replaced or deleted ones, written again."""
        import pyarrow.compute as pc

        keys = pa.array(sorted(self.affected), pa.string())
        for data_file in files:
            partition = writer.partition_of(self.iceberg, data_file)
            for batch in writer.read_file(self.iceberg, data_file):
                kept = batch.filter(pc.invert(pc.is_in(batch.column(SOURCE_KEY).cast(pa.string()), value_set=keys)))
                self.rows_rewritten += kept.num_rows
                self.main.write(kept, partition)

    def curate(self, objects: Sequence[SourceObject], ledger: hub_ledger.HubLedger) -> None:
        sources = _read_sources(self.ctx, objects)
        try:
            for source in sources:
                if source.streamed:
                    self._streamed(source, ledger)
                    continue
                if source.error:
                    self._failed(source, ledger)
                    continue
                for batch in source.batches:
                    self.main.write(batch, source.partition)
                self._done(source, ledger)
        finally:
            sources.close()  # on a failure: the fetch threads stop now, not when the traceback is freed

    def _streamed(self, source: _Source, ledger: hub_ledger.HubLedger) -> None:
        """A large object into data files of its own (``own``, uploaded as they fill). Whatever stops it
        part way, its uploaded files are deleted and its reader is stopped here: an unreadable object
        is reported and the others go on; any other failure (a TransientReadError: the read broke off,
        which is not the file's fault) is raised as it is, for the step to retry."""
        own = DataFileWriter(self.iceberg, self.ctx.bucket, target_bytes=self.ctx.target_bytes)
        self.writers.append(own)
        try:
            for batch in source.batches:
                own.write(batch, source.partition)
        except BaseException as exc:
            source.batches.close()  # the reader thread and the object's bodies, if the write failed
            own.abort()
            self.writers.remove(own)
            if not isinstance(exc, SourceReadError):
                raise
            source.error = exc.reason
            self._failed(source, ledger)
            return
        self._done(source, ledger)

    def _done(self, source: _Source, ledger: hub_ledger.HubLedger) -> None:
        quarantined = _quarantine(self.ctx, source) if source.rejected else ""
        ledger.objects[source.obj.key] = hub_ledger.Curated(
            etag=source.obj.etag, rows=source.rows, rejected=len(source.rejected), raw_bytes=source.obj.size,
            quarantine_key=quarantined,
        )
        self.done.append(source.obj.key)
        self.rows_written += source.rows

    def _failed(self, source: _Source, ledger: hub_ledger.HubLedger) -> None:
        _failed(self.ctx, source.obj, source.error)
        ledger.objects.pop(source.obj.key, None)  # a replaced object's stale rows go (they are in affected)

    def close(self) -> list:
        added = []
        for each in self.writers:
            added += each.close()
        return added

    def abort(self) -> None:
        for each in self.writers:
            each.abort()

    def row_groups(self) -> int:
        return sum(each.row_groups for each in self.writers)


# ------------------------------------------------------------------------------------------ reading


@dataclass
class _Source:
    """One source object's good rows (a list when read whole, a stream when large) and rejected rows."""

    obj: SourceObject
    partition: tuple[str, ...] = ()
    batches: Iterator[pa.RecordBatch] | list[pa.RecordBatch] = ()
    rejected: list[RejectedRow] = field(default_factory=list)
    rows: int = 0
    error: str = ""
    streamed: bool = False


def _read_sources(ctx: _Curation, objects: Sequence[SourceObject]) -> Iterator[_Source]:
    """The objects, read, in order. A large one is streamed (its next block read and typed while the
    current one is written); small ones are read whole and typed on ``FETCH_WORKERS`` threads, up to
    ``FETCH_AHEAD`` objects and ``READ_AHEAD_BYTES`` ahead of the writer."""
    pool = ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="curate-fetch")
    pending: deque = deque()
    items, ahead = iter(objects), 0
    try:
        while True:
            while len(pending) < FETCH_AHEAD and (not pending or ahead < READ_AHEAD_BYTES):
                obj = next(items, None)
                if obj is None:
                    break
                if obj.size >= ALONE_BYTES:
                    pending.append((obj, None))
                    break  # read it when its turn comes
                pending.append((obj, pool.submit(_read_whole, ctx, obj)))
                ahead += obj.size
            if not pending:
                return
            obj, future = pending.popleft()
            if future is None:
                source = _Source(obj, _partition(ctx, obj.key), streamed=True)
                source.batches = _streamed(ctx, source)
                yield source
                continue
            ahead -= obj.size
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_whole(ctx: _Curation, obj: SourceObject) -> _Source:
    source = _Source(obj, _partition(ctx, obj.key))
    try:
        source.batches = list(_typed(ctx, source, io.BytesIO(read_source(ctx.bucket, obj.key))))
    except SourceReadError as exc:  # reported per object by the writer
        source.error, source.batches, source.rejected, source.rows = exc.reason, [], [], 0
    return source


def _streamed(ctx: _Curation, source: _Source) -> Iterator[pa.RecordBatch]:
    opened = [open_source(ctx.bucket, source.obj.key)]

    def reopen():
        opened.append(open_source(ctx.bucket, source.obj.key))
        return opened[-1]

    try:
        yield from read_ahead(_typed(ctx, source, opened[0], reopen), name="curate-reader")
    finally:
        for body in opened:
            body.close()


def _typed(ctx: _Curation, source: _Source, stream, reopen=None) -> Iterator[pa.RecordBatch]:
    """The good rows of one source object's stream, typed against the catalog, with their partition
    values, source key and data row number; rejected rows are collected in ``source.rejected``. A file
    that cannot be read raises SourceReadError naming it."""
    key = source.obj.key
    head = read_head(stream)
    layout = read_layout(head, ctx.config, key=key)
    ignored = unknown_columns(layout, ctx.targets)
    if ignored:
        with ctx.lock:
            ctx.report.ignored_columns[key] = ignored
    for typed in numbered_batches(PrefixedStream(head, stream), layout, ctx.targets, key=key, reopen=reopen):
        source.rejected.extend(typed.rejected)
        good = typed.good
        if not good.num_rows:
            continue
        n = good.num_rows
        arrays = list(good.columns) + [pa.array([v] * n, pa.string()) for v in source.partition]
        arrays += [pa.array([key] * n, pa.string()), typed.good_lines()]
        names = list(good.schema.names) + list(ctx.partition_keys) + [SOURCE_KEY, ROW]
        source.rows += n
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def _failed(ctx: _Curation, obj: SourceObject, reason: str) -> None:
    """Report an object that could not be read (key -> reason, one quarantine record per version)."""
    record = quarantine_unreadable(ctx.bucket, QUARANTINE_TARGET, ctx.table, obj.key, obj.etag, reason)
    with ctx.lock:
        ctx.report.problems[obj.key] = reason
        if record not in ctx.report.quarantine_keys:
            ctx.report.quarantine_keys.append(record)


def _quarantine(ctx: _Curation, source: _Source) -> str:
    key = quarantine_key(QUARANTINE_TARGET, ctx.table, source.obj.key, source.obj.etag)
    source.rejected.sort(key=lambda r: r.line)
    ctx.bucket.put(key, quarantine_csv(source.obj.key, [c.name for c in ctx.data_columns], source.rejected))
    return key


def _partition(ctx: _Curation, source_key: str) -> tuple[str, ...]:
    values = partition_values(source_key, f"{ctx.table}/")
    return tuple(values.get(k, "") for k in ctx.partition_keys)
