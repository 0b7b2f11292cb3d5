"""Read one hub data file in bounded batches, in the table's current schema.

Why not pyiceberg's ``ArrowScan.to_record_batches``: in pyiceberg 0.12 it materialises a whole data file
in a worker thread before yielding its first batch, with the row group pre-buffered, so a reader holds a
whole file's decoded rows (the MySQL full load from the hub peaked at 607-636 MB RSS for 1M lineitem rows,
bench/bench_mysql_hub.py). Here ``pyarrow.parquet.ParquetFile.iter_batches`` decodes ``BATCH_ROWS`` rows
at a time, decoded in the caller's thread: memory is a batch plus one row group's compressed column
chunks, whatever the file size. Measured on a local 1M-row lineitem file (4 row groups of 64 MB Arrow,
zstd): peak RSS above the imports +113 MB at 64k rows with decoding threads, +79 MB at 32k rows without
(the thread pool decodes every column at once, each with its own buffers); a reader that sends rows to a
database is not bound by decoding.

Each row group is read with ``pre_buffer`` (its column chunks fetched in a few coalesced, concurrent
range reads, then decoded from memory), one row group at a time: reading column by column through 1 MiB
buffered streams made one small ranged GET per column and buffer. Measured on a 1M-row lineitem file of
4 row groups (23 MB zstd) on the local moto server: decoding all rows took 1.04-1.22 s that way, 0.38 s
per row group pre-buffered (0.36-0.51 s pre-buffering the whole file, whose compressed bytes would then
all be held), same peak RSS (+70 MB).

Columns are matched to the current schema by Iceberg field id (``PARQUET:field_id``, which pyiceberg and
``hub.files`` write), so renamed columns keep their values; a column the file lacks (added after it was
written) reads as its identity-partition value when it is one, else as nulls; older narrower types (int,
float, decimal precision) are cast to the current ones. A file without any field id (never written by
us) is matched by column name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sf_platform.hub.catalog import HubError

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

__all__ = ["BATCH_ROWS", "read_batches"]

BATCH_ROWS = 32 * 1024  # rows decoded at a time
FIELD_ID = b"PARQUET:field_id"


def read_batches(table: Table, data_file: DataFile, schema: pa.Schema, *, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The rows of ``data_file`` of the pyiceberg ``table``, in ``schema`` (the table's current schema in
    Arrow, same fields in the same order), ``batch_rows`` at a time."""
    import pyarrow.parquet as pq

    path = data_file.file_path
    fields = table.schema().fields
    if [f.name for f in fields] != schema.names:
        raise HubError(f"{table.name()}: schema {schema.names} is not the table's current schema")
    try:
        with table.io.new_input(path).open() as stream:
            parquet = pq.ParquetFile(stream, pre_buffer=True)
            sources = _sources(parquet.schema_arrow, fields)
            constants = _partition_values(table, data_file)
            columns = [name for name in sources.values() if name is not None]
            for group in range(parquet.num_row_groups):  # one at a time: pre_buffer holds the groups it reads
                for batch in parquet.iter_batches(
                    batch_size=batch_rows, row_groups=[group], columns=columns, use_threads=False
                ):
                    yield _project(batch, fields, sources, constants, schema)
    except (OSError, pa.ArrowException) as exc:
        raise HubError(f"{table.name()}: cannot read data file {path}: {exc}") from exc


def _sources(file_schema: pa.Schema, fields) -> dict[int, str | None]:
    """Iceberg field id -> the file's column holding it (None: the file has no such column)."""
    by_id = {int(f.metadata[FIELD_ID]): f.name for f in file_schema if f.metadata and FIELD_ID in f.metadata}
    if not by_id:
        names = set(file_schema.names)
        return {f.field_id: (f.name if f.name in names else None) for f in fields}
    return {f.field_id: by_id.get(f.field_id) for f in fields}


def _partition_values(table: Table, data_file: DataFile) -> dict[int, Any]:
    """Source field id -> the file's value of each identity partition (a column a file may omit)."""
    from pyiceberg.transforms import IdentityTransform

    spec = table.metadata.specs().get(data_file.spec_id)
    if spec is None or data_file.partition is None:
        return {}
    return {
        pf.source_id: data_file.partition[position]
        for position, pf in enumerate(spec.fields)
        if isinstance(pf.transform, IdentityTransform)
    }


def _project(batch: pa.RecordBatch, fields, sources, constants, schema: pa.Schema) -> pa.RecordBatch:
    columns = []
    for field, target in zip(fields, schema, strict=True):
        name = sources[field.field_id]
        if name is not None:
            column = batch.column(name)
            columns.append(column if column.type == target.type else column.cast(target.type))
        elif constants.get(field.field_id) is not None:
            columns.append(pa.array([constants[field.field_id]] * batch.num_rows, type=target.type))
        else:
            columns.append(pa.nulls(batch.num_rows, type=target.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
