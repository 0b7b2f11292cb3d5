"""Curate hop: a crawled table's files become typed Parquet under ``_curated/<table>/``, registered in the
curated Glue database as the Parquet table Athena and Redshift Spectrum query in place.

Rows are typed against the catalog in Arrow the way the mirrors type them (``source_file``); rows that
cannot be typed and ragged rows are quarantined with line and reason (one quarantine file per source
object). Source objects are curated in batches (``columnar.plan_batches``): per hive partition folder, up
to 1,000 objects or 128 MB of source bytes become ONE zstd Parquet file, named after the batch's (key,
ETag) pairs (``columnar.batch_key``), in row groups of about ``ROW_GROUP_BYTES`` of Arrow data. Small
objects are fetched and typed a few at a time ahead of the writer (at most ``FETCH_AHEAD`` objects or
``READ_AHEAD_BYTES``); an object of 32 MB or more is a batch of its own and is streamed in bounded memory.

A small JSON ledger per table (``columnar.CuratedLedger``) maps each source (key, ETag) to the curated
file holding its rows, and ``ledger.plan_loads`` says what changed. A new object goes into a new file
with the other new objects of its folder, together with the objects of that folder's smallest file when
it is small (under 100 objects and 16 MB: a table that receives one object per run keeps few files, and a
run reads at most that much again); other files holding only unchanged objects are not touched.

Replaced and deleted objects: rows are never cut out of a file. A file that holds a replaced or deleted
object is retired whole, and its other (unchanged) objects are curated again from their sources, in the
same batches as the new and replaced ones. Small objects are cheap to read again, and no row of the
curated files has to say which object it came from (the files keep exactly the catalog's columns, as
Athena, Spectrum and ``COPY ... FORMAT AS PARQUET`` expect). A change of the catalog schema rewrites every
file this way.

Exactly once without transactions, in this order:

1. At the start, every object under ``_curated/<table>/`` the ledger does not name (an orphan a killed
   run wrote before it could update the ledger) is deleted.
2. When files are to be retired, the ledger is saved first with their deleted objects dropped and their
   other objects' ETags blanked: should the run die part way, the next one re-curates those objects and
   retires the files, even though some of their objects are already in new files.
3. Per batch: the Parquet file is uploaded, then the ledger names it (one PUT of the ledger), then every
   retired file whose objects all moved is deleted. A crash between two steps leaves an orphan (deleted
   by step 1 of the next run) or a retired file the ledger no longer names (likewise). Until the old
   file is deleted, a query may count a moved object's rows twice: a few requests per batch, or until
   the next run after a crash.
4. An object that cannot be read (a GET failing, bad gzip, not text, a row over SF_MAX_FIELD_BYTES)
   is reported in ``problems`` (key -> reason: the curated hop's failed files), gets one quarantine
   record per version (``_quarantine/curated/<table>/<key>.<etag>.unreadable.csv``) and is left out of
   its batch's file and of the ledger; if its rows were in a retired file, its ledger entry goes with
   that file, so the next run curates it again. A small object is typed whole before any of its rows is
   written; a streamed one is alone in its batch, whose file is then not uploaded. Any other error
   (an upload, the ledger) fails the hop: rows are never silently missing.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from sf_platform.core import catalog as cat
from sf_platform.core import columnar
from sf_platform.core.catalog import CatalogColumn, columns_of, partition_keys_of
from sf_platform.core.columnar import CuratedFile, CuratedLedger
from sf_platform.core.conversion import RejectedRow, TargetColumn
from sf_platform.core.ledger import SourceObject, plan_loads
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.quarantine import quarantine_csv, quarantine_key, quarantine_unreadable
from sf_platform.core.read_ahead import read_ahead
from sf_platform.core.registry import TableConfig
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
from sf_platform.resources.aws import GlueCatalog, LandingBucket

# Rows are buffered until this much Arrow data, then written as one row group: large enough that a
# scan reads few, long column chunks; small enough to bound a worker's memory.
ROW_GROUP_BYTES = 128 * 1024**2
WORKERS = 2  # batches (curated files) written at a time
FETCH_WORKERS = 4  # small source objects read and typed at a time, per batch
FETCH_AHEAD = 16  # ... at most this many objects ahead of the writer
READ_AHEAD_BYTES = 64 * 1024**2  # ... and at most this many source bytes (at least one object)
DELETE_CHUNK = 1000  # keys per DeleteObjects request
# New objects join their folder's smallest file when it holds fewer objects and source bytes than these.
TOP_UP_OBJECTS = 100
TOP_UP_BYTES = 16 * 1024**2
QUARANTINE_TARGET = "curated"


class CurateError(RuntimeError):
    """The table cannot be curated; the message names the table and the reason."""


@dataclass
class CurateReport:
    table: str
    database: str  # the curated Glue database
    location: str
    columns: tuple[CatalogColumn, ...] = ()
    partition_keys: tuple[str, ...] = ()
    action: str = ""  # created | updated | unchanged | recreated
    rows: int = 0  # rows in the curated table
    files: int = 0  # curated Parquet files in the table
    raw_bytes: int = 0
    curated_bytes: int = 0
    rows_written: int = 0  # this run
    row_groups_written: int = 0
    files_written: list[str] = field(default_factory=list)  # source keys curated this run
    files_skipped: int = 0  # source objects left in their curated files
    files_removed: list[str] = field(default_factory=list)  # deleted source objects whose rows were removed
    rows_quarantined: int = 0  # this run
    quarantine_keys: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # source key -> why it could not be read (not curated)
    partitions_added: int = 0
    partitions_updated: int = 0
    partitions_removed: int = 0
    seconds: float = 0.0
    sources: int = 0  # source objects in the curated table
    batches: int = 0  # curated files written this run
    files_retired: int = 0  # curated files deleted this run because a source object was replaced or deleted
    orphans_removed: int = 0  # curated files no ledger entry named (left by an interrupted run), deleted

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
    columns: list[CatalogColumn]
    partition_keys: list[str]
    schema: str  # the columns' fingerprint, recorded with every file written
    ledger: CuratedLedger
    report: CurateReport
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Curated files being retired -> the source keys whose rows they hold and that have not moved yet.
    retiring: dict[str, set[str]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # curated files written this run

    @property
    def targets(self) -> list[TargetColumn]:
        return [TargetColumn(c.name, c.type) for c in self.columns]


def curate_table(
    bucket: LandingBucket, catalog: GlueCatalog, table: str, config: TableConfig, *, curated_database: str
) -> CurateReport:
    """Bring ``table``'s curated Parquet files and its entry in ``curated_database`` up to date."""
    started = time.monotonic()
    entry = catalog.get_table(table)
    if entry is None:
        raise CurateError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    columns, keys = columns_of(entry), partition_keys_of(entry)
    report = CurateReport(
        table, curated_database, bucket.uri(columnar.curated_prefix(table)), tuple(columns), tuple(keys)
    )
    ledger = CuratedLedger.from_json(bucket.read_json(columnar.ledger_key(table)))
    fingerprint = columnar.schema_fingerprint(columns, keys)
    ctx = _Curation(bucket, table, config, columns, keys, fingerprint, ledger, report)
    _remove_orphans(ctx)
    plan = plan_loads(_source_objects(bucket, table, keys), ledger.entries(fingerprint))
    changed = {o.key for o in plan.to_load} | {e.key for e in plan.deleted}
    retire = {ledger.files[k].curated_key for k in changed if k in ledger.files}
    retire |= _files_to_top_up(ctx, plan.to_load, retire)
    again = tuple(o for o in plan.unchanged if ledger.files[o.key].curated_key in retire)
    report.files_skipped = len(plan.unchanged) - len(again)
    if retire:
        _start_retiring(ctx, retire, {e.key for e in plan.deleted})
    batches = columnar.plan_batches(
        table, plan.to_load + again,
        max_objects=columnar.BATCH_OBJECTS, max_bytes=columnar.BATCH_BYTES, alone_bytes=columnar.ALONE_BYTES,
    )
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="curate") as pool:
        list(pool.map(lambda batch: _curate_batch(ctx, batch), batches))
    _finish_retiring(ctx)
    files = list(ledger.files.values())
    report.rows, report.sources, report.files = sum(f.rows for f in files), len(files), len(ledger.curated_keys())
    report.raw_bytes, report.curated_bytes = sum(f.raw_bytes for f in files), sum(f.curated_bytes for f in files)
    _register(catalog, ctx, entry, files)
    report.seconds = time.monotonic() - started
    return report


def _source_objects(bucket: LandingBucket, table: str, keys: Sequence[str]) -> list[SourceObject]:
    """The table's data objects in the catalog's partition layout (the crawl leaves the others out)."""
    prefix = f"{table}/"
    return [
        o
        for o in bucket.source_objects(prefix)
        if is_data_key(o.key) and tuple(partition_values(o.key, prefix)) == tuple(keys)
    ]


def _files_to_top_up(ctx: _Curation, to_load: Sequence[SourceObject], retire: set[str]) -> set[str]:
    """Per partition folder that gets new rows, its smallest curated file when it is small (under
    ``TOP_UP_OBJECTS`` objects and ``TOP_UP_BYTES`` source bytes): its objects are curated again together
    with the new ones, so a table that receives an object per run does not grow a file per run, and no
    run reads more than that again."""
    folders = {columnar.source_folder(ctx.table, o.key) for o in to_load}
    files: dict[str, list[CuratedFile]] = {}
    for curated in ctx.ledger.files.values():
        files.setdefault(curated.curated_key, []).append(curated)
    most = min(TOP_UP_OBJECTS, columnar.BATCH_OBJECTS)
    smallest: dict[str, tuple[int, str]] = {}
    for key, group in files.items():
        folder = columnar.source_folder(ctx.table, group[0].source_key)
        if key in retire or folder not in folders or len(group) >= most:
            continue
        if sum(f.raw_bytes for f in group) >= TOP_UP_BYTES:
            continue
        smallest[folder] = min(smallest.get(folder, (len(group), key)), (len(group), key))
    return {key for _, key in smallest.values()}


# ------------------------------------------------------------------------------------------ bookkeeping


def _delete(ctx: _Curation, keys: Iterable[str]) -> None:
    keys = sorted(keys)
    for i in range(0, len(keys), DELETE_CHUNK):
        chunk = [{"Key": k} for k in keys[i : i + DELETE_CHUNK]]
        answer = ctx.bucket.client().delete_objects(Bucket=ctx.bucket.bucket, Delete={"Objects": chunk, "Quiet": True})
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise CurateError(f"{ctx.table}: could not delete {error.get('Key')}: {error.get('Message')}")


def _remove_orphans(ctx: _Curation) -> None:
    """Delete the curated files no ledger entry names: written by a run that stopped before its ledger
    named them, or retired by one that stopped before deleting them. Their rows would count twice."""
    named = ctx.ledger.curated_keys()
    orphans = [o["Key"] for o in ctx.bucket.list_objects(columnar.curated_prefix(ctx.table)) if o["Key"] not in named]
    _delete(ctx, orphans)
    ctx.report.orphans_removed = len(orphans)


def _save_ledger(ctx: _Curation) -> None:
    """Write the ledger; the caller holds ``ctx.lock`` (saves must not overtake each other)."""
    ctx.bucket.put(columnar.ledger_key(ctx.table), ctx.ledger.to_json(), ContentType="application/json")


def _start_retiring(ctx: _Curation, retire: set[str], deleted: set[str]) -> None:
    """Before any new file is written: drop the deleted objects and blank the ETags of the other objects
    of the files to retire, so a run that dies part way leaves them to be curated again."""
    with ctx.lock:
        ctx.retiring = {key: set() for key in retire}
        for source_key, curated in list(ctx.ledger.files.items()):
            if curated.curated_key not in retire:
                continue
            if source_key in deleted:
                del ctx.ledger.files[source_key]
                ctx.report.files_removed.append(source_key)
            else:
                ctx.ledger.files[source_key] = replace(curated, etag="")
                ctx.retiring[curated.curated_key].add(source_key)
        _save_ledger(ctx)
        _delete_retired(ctx)


def _delete_retired(ctx: _Curation) -> None:
    """Delete the retiring files all of whose objects have moved (the caller holds the lock, and has saved
    the ledger: none of them is named any more)."""
    done = [key for key, left in ctx.retiring.items() if not left]
    _delete(ctx, [key for key in done if key not in ctx.written])  # a rewritten batch keeps its key
    for key in done:
        del ctx.retiring[key]
    ctx.report.files_retired += len(done)


def _finish_retiring(ctx: _Curation) -> None:
    """Objects that could not be curated again leave the ledger with the file that held their rows."""
    with ctx.lock:
        stale = [(key, source) for key, left in ctx.retiring.items() for source in left]
        if not stale:
            return
        for key, source in stale:
            if source in ctx.ledger.files and ctx.ledger.files[source].curated_key == key:
                del ctx.ledger.files[source]
            ctx.retiring[key].discard(source)
        _save_ledger(ctx)
        _delete_retired(ctx)


# ------------------------------------------------------------------------------------------ one batch


@dataclass
class _Source:
    """One source object's good rows (a list when read whole, a stream when large) and rejected rows."""

    obj: SourceObject
    batches: Iterable[pa.RecordBatch] = ()
    rejected: list[RejectedRow] = field(default_factory=list)
    rows: int = 0
    error: str = ""


def _curate_batch(ctx: _Curation, batch: Sequence[SourceObject]) -> None:
    """Write one curated file with the rows of ``batch``'s objects, then name it in the ledger."""
    done: list[_Source] = []
    rows = _batch_rows(ctx, batch, done)
    try:
        with tempfile.TemporaryDirectory(prefix="sf_curate_") as tmp:
            path = os.path.join(tmp, "part.parquet")
            _, groups = write_parquet(rows, path, columnar.arrow_schema(ctx.columns))
            if not done:
                return
            key = columnar.batch_key(ctx.table, [(s.obj.key, s.obj.etag) for s in done])
            size = os.path.getsize(path)
            # Before the file: a file is only uploaded once its rejected rows are kept (under keys of
            # their own source version, so a retry writes the same ones).
            quarantined = {s.obj.key: _quarantine(ctx, s) for s in done if s.rejected}
            metadata = {"sf-sources": str(len(done))}
            if len(done) == 1:
                metadata |= {"sf-source-key": quote(done[0].obj.key, safe="/=")[:1800], "sf-source-etag": done[0].obj.etag}
            ctx.bucket.client().upload_file(
                path, ctx.bucket.bucket, key,
                ExtraArgs={"Metadata": metadata, "ContentType": "application/vnd.apache.parquet"},
            )
    except SourceReadError as exc:  # a streamed object (alone in its batch) broke off: no file for it
        failed = {o.key: o for o in batch}.get(exc.key)
        if failed is None:
            raise
        _failed(ctx, failed, exc.reason)
        return
    finally:
        rows.close()
    shares = _shares(size, [s.obj.size for s in done])
    entries = [
        CuratedFile(
            source_key=s.obj.key, etag=s.obj.etag, curated_key=key, rows=s.rows, rejected=len(s.rejected),
            raw_bytes=s.obj.size, curated_bytes=share, partition=_partition(ctx, s.obj.key),
            quarantine_key=quarantined.get(s.obj.key, ""), schema=ctx.schema,
        )
        for s, share in zip(done, shares, strict=True)
    ]
    with ctx.lock:
        ctx.written.add(key)
        ctx.report.batches += 1
        ctx.report.row_groups_written += groups
        for curated in entries:
            old = ctx.ledger.files.get(curated.source_key)
            if old is not None and old.curated_key in ctx.retiring:
                ctx.retiring[old.curated_key].discard(curated.source_key)
            ctx.ledger.files[curated.source_key] = curated
            ctx.report.files_written.append(curated.source_key)
            ctx.report.rows_written += curated.rows
            ctx.report.rows_quarantined += curated.rejected
            if curated.quarantine_key:
                ctx.report.quarantine_keys.append(curated.quarantine_key)
        _save_ledger(ctx)
        _delete_retired(ctx)


def _batch_rows(ctx: _Curation, batch: Sequence[SourceObject], done: list[_Source]) -> Iterator[pa.RecordBatch]:
    """The good rows of the batch's objects, in key order. An object that cannot be read is reported and
    left out (small objects are typed whole before any of their rows is written); ``done`` collects the
    objects whose rows were written."""
    for source in _read_sources(ctx, batch):
        if source.error:
            _failed(ctx, source.obj, source.error)
            continue
        done.append(source)
        for good in source.batches:
            source.rows += good.num_rows
            yield good


def _read_sources(ctx: _Curation, batch: Sequence[SourceObject]) -> Iterator[_Source]:
    """The batch's objects, read. A large object (alone in its batch) is streamed: its next block is read
    and typed while the current one is written. Small ones are read whole and typed on ``FETCH_WORKERS``
    threads, up to ``FETCH_AHEAD`` objects and ``READ_AHEAD_BYTES`` ahead of the writer."""
    if len(batch) == 1 and batch[0].size >= columnar.ALONE_BYTES:
        source = _Source(batch[0])
        source.batches = _streamed(ctx, source)
        yield source
        return
    pool = ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="curate-fetch")
    pending: deque = deque()
    objects, ahead = iter(batch), 0
    try:
        while True:
            while len(pending) < FETCH_AHEAD and (not pending or ahead < READ_AHEAD_BYTES):
                obj = next(objects, None)
                if obj is None:
                    break
                pending.append((obj, pool.submit(_read_whole, ctx, obj)))
                ahead += obj.size
            if not pending:
                return
            obj, future = pending.popleft()
            ahead -= obj.size
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _failed(ctx: _Curation, obj: SourceObject, reason: str) -> None:
    """Report an object that could not be read (key -> reason, one quarantine record per version)."""
    record = quarantine_unreadable(ctx.bucket, QUARANTINE_TARGET, ctx.table, obj.key, obj.etag, reason)
    with ctx.lock:
        ctx.report.problems[obj.key] = reason
        if record not in ctx.report.quarantine_keys:
            ctx.report.quarantine_keys.append(record)


def _read_whole(ctx: _Curation, obj: SourceObject) -> _Source:
    source = _Source(obj)
    try:
        source.batches = list(_typed(ctx, source, io.BytesIO(read_source(ctx.bucket, obj.key))))
    except SourceReadError as exc:  # reported per object by the writer
        source.error, source.batches, source.rejected = exc.reason, (), []
    return source


def _streamed(ctx: _Curation, source: _Source) -> Iterator[pa.RecordBatch]:
    opened = [open_source(ctx.bucket, source.obj.key)]

    def reopen():
        opened.append(open_source(ctx.bucket, source.obj.key))
        return opened[-1]

    try:
        # The next block is read, parsed and typed while the current one is encoded and compressed.
        yield from read_ahead(_typed(ctx, source, opened[0], reopen), name="curate-reader")
    finally:
        for body in opened:
            body.close()


def _typed(ctx: _Curation, source: _Source, stream, reopen=None) -> Iterator[pa.RecordBatch]:
    """The good rows of one source object's stream, typed against the catalog; its rejected rows are
    collected in ``source.rejected``. A file that cannot be read raises SourceReadError naming it."""
    key = source.obj.key
    head = read_head(stream)
    layout = read_layout(head, ctx.config, key=key)
    ignored = unknown_columns(layout, ctx.targets)
    if ignored:
        with ctx.lock:
            ctx.report.ignored_columns[key] = ignored
    typed = numbered_batches(PrefixedStream(head, stream), layout, ctx.targets, key=key, reopen=reopen)
    yield from _good_batches(typed, source.rejected)


def _quarantine(ctx: _Curation, source: _Source) -> str:
    key = quarantine_key(QUARANTINE_TARGET, ctx.table, source.obj.key, source.obj.etag)
    source.rejected.sort(key=lambda r: r.line)
    ctx.bucket.put(key, quarantine_csv(source.obj.key, [c.name for c in ctx.columns], source.rejected))
    return key


def _partition(ctx: _Curation, source_key: str) -> tuple[str, ...]:
    values = partition_values(source_key, f"{ctx.table}/")
    return tuple(values.get(k, "") for k in ctx.partition_keys)


def _shares(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (evenly when they are all 0); the parts sum to it."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    parts[-1] += total - sum(parts)
    return parts


def _good_batches(batches, rejected: list[RejectedRow]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rejected.extend(batch.rejected)
        if batch.good.num_rows:
            yield batch.good


def write_parquet(batches, path: str, schema: pa.Schema, *, row_group_bytes: int = ROW_GROUP_BYTES) -> tuple[int, int]:
    """Write ``batches`` to one zstd Parquet file in row groups of about ``row_group_bytes`` of Arrow
    data (``ParquetWriter`` makes a row group per write, so batches are gathered first).
    Returns (rows, row groups). A file with no rows still gets its schema."""
    rows = groups = 0
    buffered: list[pa.RecordBatch] = []
    size = 0
    with pq.ParquetWriter(path, schema, compression=columnar.CODEC, write_statistics=True) as writer:

        def flush() -> None:
            nonlocal groups, size
            if buffered:
                table = pa.Table.from_batches(buffered, schema=schema)
                writer.write_table(table, row_group_size=table.num_rows)
                groups += 1
                buffered.clear()
                size = 0

        for batch in batches:
            buffered.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if size >= row_group_bytes:
                flush()
        flush()
    return rows, groups


# ------------------------------------------------------------------------------------------ catalog


def _register(catalog: GlueCatalog, ctx: _Curation, raw_entry: dict, files: list[CuratedFile]) -> None:
    """Write the curated table's entry (only when it changes) and bring its partitions in line."""
    report, database = ctx.report, ctx.report.database
    catalog.ensure_database(database)
    description = ctx.config.description or raw_entry.get("Description") or ""
    managed = columnar.curated_table_input(
        name=ctx.table, location=report.location, columns=ctx.columns, partition_keys=ctx.partition_keys,
        files=files, source_table=f"{catalog.database}.{ctx.table}",
        description=f"{description} Curated Parquet of {catalog.database}.{ctx.table}.".strip(),
    )
    existing = catalog.get_table(ctx.table, database)
    if existing is not None and partition_keys_of(existing) != ctx.partition_keys:
        catalog.delete_table(ctx.table, database)  # partition keys cannot change under registered partitions
        existing, report.action = None, "recreated"
    merged = cat.merge_table_input(existing, managed)
    if existing is None:
        catalog.create_table(merged, database)
        report.action = report.action or "created"
    elif cat.same_entry(cat.as_table_input(existing), merged):
        report.action = "unchanged"
    else:
        catalog.update_table(merged, database)
        report.action = "updated"
    if ctx.partition_keys:
        _sync_partitions(catalog, ctx, merged, files)


def _sync_partitions(catalog: GlueCatalog, ctx: _Curation, table_input: dict, files: list[CuratedFile]) -> None:
    database, report = ctx.report.database, ctx.report
    wanted = {
        tuple(p["Values"]): p
        for p in columnar.curated_partitions(ctx.bucket.uri(), ctx.table, table_input, files)
    }
    existing = {tuple(p["Values"]): p for p in catalog.partitions(ctx.table, database)}
    new = [p for v, p in wanted.items() if v not in existing]
    changed = []
    for values, partition in wanted.items():
        if values in existing:
            merged = cat.merge_partition_input(existing[values], partition)
            if not cat.same_entry(cat.as_partition_input(existing[values]), merged):
                changed.append(merged)
    gone = [list(v) for v in existing if v not in wanted]
    errors = catalog.create_partitions(ctx.table, new, database) + catalog.update_partitions(ctx.table, changed, database)
    if errors:
        raise CurateError(f"{ctx.table}: Glue refused partitions: {'; '.join(errors[:3])}")
    if gone:
        catalog.delete_partitions(ctx.table, gone, database)
    report.partitions_added, report.partitions_updated, report.partitions_removed = len(new), len(changed), len(gone)
