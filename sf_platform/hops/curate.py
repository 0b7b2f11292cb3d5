"""Curate hop: a crawled table's files become typed Parquet under ``_curated/<table>/``, registered in the
curated Glue database as the Parquet table Athena and Redshift Spectrum query in place.

Per source object, one curated file: rows typed against the catalog in Arrow the way the mirrors type
them (``source_file``), rows that cannot be typed and ragged rows quarantined with line and reason,
written as zstd Parquet in row groups of about ``ROW_GROUP_BYTES`` of Arrow data, streamed in bounded
memory. Hive partition folders are kept. A small JSON ledger per table (``columnar.CuratedLedger``)
makes it incremental through ``ledger.plan_loads``: a new source object adds its curated file, a
replaced one rewrites it, a deleted one removes it, and a change of the catalog schema rewrites them
all. Each curated file also carries its source key and ETag as S3 object metadata.

Exactly once without transactions: a curated file's key is a function of its source key, and it is
written before the ledger names it, so a crash in between only makes the next run write it again.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from sf_platform.core.quarantine import quarantine_csv, quarantine_key
from sf_platform.core.read_ahead import read_ahead
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import (
    PrefixedStream,
    numbered_batches,
    read_head,
    read_layout,
    unknown_columns,
)
from sf_platform.resources.aws import GlueCatalog, LandingBucket

# Rows are buffered until this much Arrow data, then written as one row group: large enough that a
# scan reads few, long column chunks; small enough to bound a worker's memory.
ROW_GROUP_BYTES = 128 * 1024**2
WORKERS = 2  # source objects converted at a time
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
    files: int = 0
    raw_bytes: int = 0
    curated_bytes: int = 0
    rows_written: int = 0  # this run
    row_groups_written: int = 0
    files_written: list[str] = field(default_factory=list)  # source keys curated this run
    files_skipped: int = 0
    files_removed: list[str] = field(default_factory=list)
    rows_quarantined: int = 0  # this run
    quarantine_keys: list[str] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # source key -> why it was not curated
    partitions_added: int = 0
    partitions_updated: int = 0
    partitions_removed: int = 0
    seconds: float = 0.0

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
    plan = plan_loads(_source_objects(bucket, table, keys), ledger.entries(fingerprint))
    ctx = _Curation(bucket, table, config, columns, keys, fingerprint, ledger, report)
    report.files_skipped = len(plan.unchanged)
    for gone in plan.deleted:
        _remove(ctx, gone.key)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="curate") as pool:
        list(pool.map(lambda obj: _curate_object(ctx, obj), plan.to_load))
    if plan.deleted:
        _save_ledger(ctx)
    files = list(ledger.files.values())
    report.rows, report.files = sum(f.rows for f in files), len(files)
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


def _remove(ctx: _Curation, source_key: str) -> None:
    curated = ctx.ledger.files[source_key]
    ctx.bucket.delete(curated.curated_key)
    with ctx.lock:
        del ctx.ledger.files[source_key]
    ctx.report.files_removed.append(source_key)


def _save_ledger(ctx: _Curation) -> None:
    with ctx.lock:
        body = ctx.ledger.to_json()
        ctx.bucket.put(columnar.ledger_key(ctx.table), body, ContentType="application/json")


# ------------------------------------------------------------------------------------------ one object


def _curate_object(ctx: _Curation, obj: SourceObject) -> None:
    """Convert one source object to its curated file, then name it in the ledger."""
    try:
        curated = _convert(ctx, obj)
    except Exception as exc:  # one bad file must not stop the others; reported per file
        with ctx.lock:
            ctx.report.problems[obj.key] = f"not curated: {exc}"
        return
    with ctx.lock:
        ctx.ledger.files[obj.key] = curated
        ctx.report.files_written.append(obj.key)
        ctx.report.rows_written += curated.rows
        ctx.report.rows_quarantined += curated.rejected
        if curated.quarantine_key:
            ctx.report.quarantine_keys.append(curated.quarantine_key)
    _save_ledger(ctx)


def _convert(ctx: _Curation, obj: SourceObject) -> CuratedFile:
    key = columnar.curated_key(ctx.table, obj.key)
    partitions = partition_values(obj.key, f"{ctx.table}/")
    rejected: list[RejectedRow] = []
    body = ctx.bucket.open(obj.key)
    try:
        head = read_head(body)
        layout = read_layout(head, ctx.config)
        ignored = unknown_columns(layout, ctx.targets)
        if ignored:
            with ctx.lock:
                ctx.report.ignored_columns[obj.key] = ignored
        batches = numbered_batches(PrefixedStream(head, body), layout, ctx.targets)
        # The next block is read, parsed and typed while the current one is encoded and compressed.
        good = read_ahead(_good_batches(batches, rejected), name="curate-reader")
        with tempfile.TemporaryDirectory(prefix="sf_curate_") as tmp:
            path = os.path.join(tmp, "part.parquet")
            rows, groups = write_parquet(good, path, columnar.arrow_schema(ctx.columns))
            size = os.path.getsize(path)
            metadata = {"sf-source-key": quote(obj.key, safe="/=")[:1800], "sf-source-etag": obj.etag}
            ctx.bucket.client().upload_file(
                path, ctx.bucket.bucket, key,
                ExtraArgs={"Metadata": metadata, "ContentType": "application/vnd.apache.parquet"},
            )
    finally:
        body.close()
    with ctx.lock:
        ctx.report.row_groups_written += groups
    qkey = ""
    if rejected:
        qkey = quarantine_key(QUARANTINE_TARGET, ctx.table, obj.key, obj.etag)
        rejected.sort(key=lambda r: r.line)
        ctx.bucket.put(qkey, quarantine_csv(obj.key, [c.name for c in ctx.columns], rejected))
    return CuratedFile(
        source_key=obj.key, etag=obj.etag, curated_key=key, rows=rows, rejected=len(rejected),
        raw_bytes=obj.size, curated_bytes=size,
        partition=tuple(partitions.get(k, "") for k in ctx.partition_keys), quarantine_key=qkey, schema=ctx.schema,
    )


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
