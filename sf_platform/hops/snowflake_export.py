"""Snowflake export hop: one Snowflake table becomes an S3 folder of Avro or Parquet parts, registered
in the Glue catalog like any crawled table.

The table is read with one ``SELECT`` streamed by ``cursor.fetch_arrow_batches()`` (the connector
downloads result chunks as they are consumed, so memory stays bounded), each batch is conformed to the
export schema, written to a local part file until it reaches ``part_size_mb``, uploaded, and removed.
``_manifest.json`` (rows, parts, schema, source query, snapshot time, incremental high-water mark) is
written last: it is the commit point, after which part files it does not list are deleted.

fakesnow gap: the server returns a whole result inline in one response (no chunking), so one SELECT of
a large table would sit in memory whole. The export first sets ``CLIENT_RESULT_CHUNK_SIZE`` (also a
real Snowflake tuning knob for chunk size); fakesnow answers "not implemented", and on exactly that
error the read falls back to LIMIT/OFFSET pages (fakesnow scans in insertion order). The report says
which method ran (``read_method``).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from fastavro.write import Writer as AvroWriter

from sf_platform.core import exports as ex
from sf_platform.core.avro import avro_records, avro_schema
from sf_platform.core.export_catalog import AVRO_CODEC, PARQUET_CODEC, export_table_input
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.core.registry import ExportConfig, Registry

if TYPE_CHECKING:  # the hop only calls their methods; an export process need not import Dagster
    from sf_platform.resources.aws import GlueCatalog, LandingBucket

RESULT_CHUNK_MB = 48  # Snowflake's smallest CLIENT_RESULT_CHUNK_SIZE
PAGE_ROWS = 25_000  # fallback pages (fakesnow only)
SLICE_ROWS = {"avro": 10_000, "parquet": 65_536}  # rows written between part-size checks
READ_STREAM = "one SELECT, streamed with fetch_arrow_batches"
READ_PAGED = "LIMIT/OFFSET pages (fakesnow: CLIENT_RESULT_CHUNK_SIZE not implemented, results are not chunked)"


class SnowflakeExportError(RuntimeError):
    """The export cannot proceed; the message names the table and the reason."""


@dataclass
class ExportReport:
    table: str  # DB.SCHEMA.TABLE
    key: str
    format: str
    location: str
    mode: str = "full"  # full | incremental
    rows_exported: int = 0  # this run
    rows_total: int = 0  # in the folder (incremental: all runs)
    parts_written: list[str] = field(default_factory=list)
    parts_total: int = 0
    bytes_written: int = 0
    bytes_total: int = 0
    parts_deleted: int = 0
    seconds: float = 0.0
    snapshot_time: str = ""
    source_query: str = ""
    high_water: object = None
    read_method: str = ""
    notes: list[str] = field(default_factory=list)
    manifest_key: str = ""
    glue_table: str = ""
    glue_action: str = ""
    schema: pa.Schema | None = None


def discover_tables(connection, config: ExportConfig, database: str, schema: str) -> list[ex.ExportTable]:
    """The tables of ``database.schema`` the export config selects (INFORMATION_SCHEMA.TABLES)."""
    cur = connection.cursor()
    cur.execute(
        f"SELECT TABLE_NAME, TABLE_TYPE FROM {quote_snowflake(snowflake_name(database))}.INFORMATION_SCHEMA.TABLES "
        "WHERE TABLE_SCHEMA = %s",
        (snowflake_name(schema),),
    )
    return ex.match_tables(cur.fetchall(), config)


def write_table_lock(connection, registry: Registry, database: str, schema: str, path: Path) -> list[ex.ExportTable]:
    """Discover the matching tables and cache them in the lock file ``path``."""
    if registry.exports is None:
        raise SnowflakeExportError(f"{registry.source}: no `exports` section, so there is nothing to discover")
    config = registry.exports
    database, schema = config.database or database, config.schema_name or schema
    tables = discover_tables(connection, config, database, schema)
    path.write_text(ex.lock_document(database, schema, config, tables, datetime.now(UTC)), encoding="utf-8")
    return tables


def export_table(
    bucket: LandingBucket,
    connection,
    database: str,
    schema: str,
    table: ex.ExportTable,
    config: ExportConfig,
    *,
    glue: GlueCatalog | None = None,
    run_id: str = "",
) -> ExportReport:
    """Export one table to ``<prefix><key>/`` in the bucket; register the folder in ``glue`` if given."""
    started = time.monotonic()
    source = ".".join(snowflake_name(p) for p in (database, schema)) + f".{table.name}"
    # The discovered name is Snowflake's own spelling: quoted as is, never upper-cased.
    ref = ".".join(quote_snowflake(p) for p in (snowflake_name(database), snowflake_name(schema), table.name))
    report = ExportReport(source, table.key, config.format, bucket.uri(ex.folder(config, table.key)))
    report.manifest_key = ex.manifest_key(config, table.key)
    cur = connection.cursor()
    columns = _describe(cur, f"SELECT * FROM {ref}")
    report.schema = ex.export_schema(columns)
    previous = _read_manifest(bucket, report.manifest_key)
    query, params, high_water, continuing = _plan_query(cur, ref, columns, config, previous, report)
    snapshot_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{(run_id or uuid.uuid4().hex)[:8]}"
    report.snapshot_time = _server_time(cur)
    schema_doc = avro_schema(report.schema, table.key, source_names=ex.source_names(report.schema), doc=f"Snowflake {source}")
    parts: list[ex.Part] = []
    if query is not None:
        report.source_query = query
        parts = _write_parts(bucket, cur, query, params, report.schema, schema_doc, config, table.key, snapshot_id, report)
    if continuing and previous.schema != schema_doc:
        report.notes.append("schema changed since the previous export: older parts keep their schema")
    manifest = ex.Manifest(
        source_table=source, format=config.format, mode=report.mode, snapshot_id=snapshot_id,
        snapshot_time=report.snapshot_time, source_query=query or (previous.source_query if previous else ""),
        query_params=[str(p) for p in params], schema=schema_doc,
        parts=(list(previous.parts) if continuing else []) + parts,
        incremental_column=config.incremental_column if report.mode == "incremental" else "",
        high_water=ex.encode_value(high_water),
        runs=(previous.runs if previous else [])[-99:] + [_run_entry(snapshot_id, report, len(parts))],
    )
    _commit(bucket, manifest, config, table.key, report)
    report.high_water = high_water
    if glue is not None:
        report.glue_table, report.glue_action = _register(glue, bucket, config, table, manifest, report.schema, report)
    report.seconds = time.monotonic() - started
    return report


def _run_entry(snapshot_id: str, report: ExportReport, parts: int) -> dict:
    return {
        "snapshot_id": snapshot_id, "snapshot_time": report.snapshot_time, "rows": report.rows_exported,
        "parts": parts, "mode": report.mode, "read_method": report.read_method,
    }


def _commit(bucket: LandingBucket, manifest: ex.Manifest, config: ExportConfig, key: str, report: ExportReport) -> None:
    """Write the manifest (the commit point), then delete the part files it no longer lists."""
    bucket.put(report.manifest_key, manifest.to_json(), ContentType="application/json")
    listed = [o["Key"] for o in bucket.list_objects(ex.folder(config, key))]
    for stale in ex.stale_keys(listed, manifest, config, key):
        bucket.delete(stale)
        report.parts_deleted += 1
    report.rows_total, report.parts_total, report.bytes_total = manifest.rows, len(manifest.parts), manifest.bytes


def _describe(cur, query: str) -> list[ex.SourceColumn]:
    from snowflake.connector.constants import (
        FIELD_ID_TO_NAME,  # the connector is imported only by steps that use it
    )

    return [
        ex.SourceColumn(m.name, FIELD_ID_TO_NAME[m.type_code], m.precision, m.scale, m.is_nullable is not False)
        for m in cur.describe(query)
    ]


def _server_time(cur) -> str:
    cur.execute("SELECT CURRENT_TIMESTAMP()")
    value = cur.fetchone()[0]
    return value.isoformat() if value else datetime.now(UTC).isoformat()


def _read_manifest(bucket: LandingBucket, key: str) -> ex.Manifest | None:
    if bucket.head(key) is None:
        return None
    body = bucket.open(key)
    try:
        return ex.Manifest.from_json(body.read())
    finally:
        body.close()


def _plan_query(cur, ref: str, columns, config: ExportConfig, previous, report: ExportReport):
    """This run's SELECT (None when an incremental run has nothing new), its binds, the high-water
    mark after it, and whether it continues the previous incremental series (keeping its parts)."""
    base = f"SELECT * FROM {ref}"
    wanted = config.incremental_column.upper()
    column = next((c.name for c in columns if c.name.upper() == wanted), None) if wanted else None
    if config.incremental_column and column is None:
        report.notes.append(f"no column {config.incremental_column}: exported in full")
    if column is None:
        return base, [], None, False
    report.mode = "incremental"
    continuing = bool(
        previous
        and previous.mode == "incremental"
        and previous.format == config.format
        and previous.incremental_column == config.incremental_column
        and previous.high_water
    )
    lower = ex.decode_value(previous.high_water) if continuing else None
    quoted = quote_snowflake(column)
    cur.execute(f"SELECT MAX({quoted}) FROM {ref}")
    upper = cur.fetchone()[0]
    if continuing and (upper is None or upper <= lower):
        return None, [], lower, True
    if lower is None:
        # A new series also takes rows whose column is empty; later runs cannot tell them apart.
        return f"{base} WHERE {quoted} <= %s OR {quoted} IS NULL", [upper], upper, False
    return f"{base} WHERE {quoted} > %s AND {quoted} <= %s", [lower, upper], upper, True


def _fetch(cur, query: str, params: list, report: ExportReport) -> Iterator[pa.RecordBatch]:
    """The query's rows as Arrow batches, in bounded memory."""
    try:
        cur.execute(f"ALTER SESSION SET CLIENT_RESULT_CHUNK_SIZE = {RESULT_CHUNK_MB}")
    except Exception as exc:
        if "not implemented" not in str(exc):
            raise
        report.read_method = READ_PAGED
        yield from _fetch_pages(cur, query, params)
        return
    report.read_method = READ_STREAM
    cur.execute(query, params)
    for table in cur.fetch_arrow_batches():
        yield from table.to_batches()


def _fetch_pages(cur, query: str, params: list) -> Iterator[pa.RecordBatch]:
    offset = 0
    while True:
        cur.execute(f"{query} LIMIT %s OFFSET %s", [*params, PAGE_ROWS, offset])
        rows = 0
        for table in cur.fetch_arrow_batches():
            rows += table.num_rows
            yield from table.to_batches()
        if rows < PAGE_ROWS:
            return
        offset += PAGE_ROWS


def _write_parts(bucket, cur, query, params, schema, schema_doc, config, key, snapshot_id, report) -> list[ex.Part]:
    limit = int(config.part_size_mb * 1024 * 1024)
    slice_rows = SLICE_ROWS[config.format]
    parts: list[ex.Part] = []
    with tempfile.TemporaryDirectory(prefix="sf_export_") as tmp:
        writer: _PartWriter | None = None
        for batch in _fetch(cur, query, params, report):
            conformed, notes = ex.conform(batch, schema)
            report.notes.extend(n for n in notes if n not in report.notes)
            for start in range(0, conformed.num_rows, slice_rows):
                if writer is None:
                    path = os.path.join(tmp, f"part-{len(parts):05d}")
                    writer = _PartWriter(path, config.format, schema, schema_doc)
                writer.write(conformed.slice(start, slice_rows))
                if writer.size() >= limit:
                    parts.append(_upload(bucket, writer, ex.part_key(config, key, snapshot_id, len(parts)), snapshot_id))
                    writer = None
        if writer is not None:
            parts.append(_upload(bucket, writer, ex.part_key(config, key, snapshot_id, len(parts)), snapshot_id))
    report.parts_written = [p.key for p in parts]
    report.rows_exported = sum(p.rows for p in parts)
    report.bytes_written = sum(p.bytes for p in parts)
    return parts


class _PartWriter:
    """One local part file, Avro (fastavro, deflate) or Parquet (snappy)."""

    def __init__(self, path: str, file_format: str, schema: pa.Schema, schema_doc: dict):
        self.path, self.format, self.rows = path, file_format, 0
        self._file = open(path, "wb")  # closed in close()
        if file_format == "avro":
            self._avro = AvroWriter(self._file, fastavro.parse_schema(schema_doc), codec=AVRO_CODEC)
        else:
            self._parquet = pq.ParquetWriter(self._file, schema, compression=PARQUET_CODEC)

    def write(self, batch: pa.RecordBatch) -> None:
        if self.format == "avro":
            for record in avro_records(batch):
                self._avro.write(record)
            self._avro.flush()
        else:
            self._parquet.write_batch(batch)
        self.rows += batch.num_rows

    def size(self) -> int:
        return self._file.tell()

    def close(self) -> int:
        if self.format == "avro":
            self._avro.flush()
        else:
            self._parquet.close()
        self._file.close()
        return os.path.getsize(self.path)


def _upload(bucket: LandingBucket, writer: _PartWriter, key: str, snapshot_id: str) -> ex.Part:
    size = writer.close()
    bucket.upload_file(writer.path, key)
    os.remove(writer.path)
    return ex.Part(key=key, rows=writer.rows, bytes=size, snapshot_id=snapshot_id)


def _register(glue: GlueCatalog, bucket, config, table, manifest: ex.Manifest, schema, report) -> tuple[str, str]:
    """Write (or update) the Glue entry of the export folder; returns (table name, created|updated)."""
    name = ex.glue_table_name(config, table.key)
    table_input = export_table_input(
        name=name, location=report.location, schema=schema, file_format=config.format, rows=manifest.rows,
        objects=len(manifest.parts), size_bytes=manifest.bytes, avro_schema=manifest.schema,
        extra_parameters={
            "sf.source_table": manifest.source_table,
            "sf.snapshot_time": manifest.snapshot_time,
            "sf.manifest": bucket.uri(report.manifest_key),
            "sf.export_mode": manifest.mode,
        },
    )
    glue.ensure_database()
    if glue.get_table(name) is None:
        glue.create_table(table_input)
        return name, "created"
    glue.update_table(table_input)
    return name, "updated"
