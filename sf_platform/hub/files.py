"""Data files of a target size: typed batches become zstd Parquet files of about ``target_bytes`` (of
Parquet, measured on the file being written, not on Arrow bytes as pyiceberg's
``write.target-file-size-bytes`` is: that makes files ~4x smaller than asked, REPORT.md section 5),
uploaded under ``<table location>/data/<partition path>/`` and described as Iceberg ``DataFile``s for one
snapshot producer (one snapshot per commit however many files: ``tx.append`` per object is quadratic).

Batches arrive grouped by partition (source keys in key order: a hive partition folder is a key prefix),
so one file is open at a time. Rows are buffered up to ``row_group_bytes`` of Arrow data per row group:
memory stays at about one row group whatever the size of the change.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

ROW_GROUP_BYTES = 64 * 1024**2
CODEC = "zstd"


def writer_schema(table: Table) -> pa.Schema:
    """The table's current schema in Arrow with Iceberg field ids (``PARQUET:field_id``), strings as
    ``string``: what every data file is written with, so readers map columns by id."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    fields = []
    for f in schema_to_pyarrow(table.schema(), include_field_ids=True):
        t = pa.string() if pa.types.is_large_string(f.type) else f.type
        fields.append(pa.field(f.name, t, nullable=f.nullable, metadata=f.metadata))
    return pa.schema(fields)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in ``schema``: columns in its order, cast (int -> long, wider decimals), missing ones null."""
    names = set(batch.schema.names)
    arrays = [
        batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(batch.num_rows, f.type) for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class DataFileWriter:
    """Writes a table's new data files; ``close()`` returns their DataFiles, ``abort()`` deletes what it
    uploaded (a commit that failed leaves nothing behind)."""

    def __init__(self, table: Table, bucket, *, target_bytes: int, row_group_bytes: int = ROW_GROUP_BYTES):
        self.table, self.bucket = table, bucket
        self.schema = writer_schema(table)
        # A row group is never larger than a file may be (a small target in tests, or a tiny table).
        self.target_bytes, self.row_group_bytes = target_bytes, min(row_group_bytes, target_bytes)
        self.partition_names = [table.schema().find_field(f.source_id).name for f in table.spec().fields]
        self.data_files: list[DataFile] = []
        self.uploaded: list[str] = []
        self.row_groups = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="sf_hub_")
        self._run = uuid.uuid4().hex
        self._count = 0
        self._partition: tuple[str, ...] | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def write(self, batch: pa.RecordBatch, partition: Sequence[str] = ()) -> None:
        """Add rows (all of ``partition``: its values in the table's partition field order)."""
        partition = tuple(partition)
        if self._partition is not None and partition != self._partition:
            self._finish()
        self._partition = partition
        if not batch.num_rows:
            return
        self._buffer.append(conform(batch, self.schema))
        self._buffered += batch.nbytes
        if self._buffered >= self.row_group_bytes:
            self._flush()
            if os.path.getsize(self._path) >= self.target_bytes:
                self._finish()

    def close(self) -> list[DataFile]:
        try:
            self._finish()
        finally:
            self._tmp.cleanup()
        return self.data_files

    def abort(self) -> None:
        self._buffer.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.cleanup()
        for key in self.uploaded:
            try:
                self.bucket.delete(key)
            except Exception:  # best effort: an orphan is removed by the orphan sweep
                pass

    # ------------------------------------------------------------------------------------------

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self._count += 1
            self._path = os.path.join(self._tmp.name, f"{self._count}.parquet")
            self._writer = pq.ParquetWriter(self._path, self.schema, compression=CODEC, write_statistics=True)
        rows = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._writer.write_table(rows, row_group_size=max(rows.num_rows, 1))
        self.row_groups += 1
        self._buffer.clear()
        self._buffered = 0

    def _finish(self) -> None:
        self._flush()
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        key = self._key()
        self.bucket.upload_file(self._path, key)
        self.uploaded.append(key)
        self.data_files.append(self._data_file(self._path, self.bucket.uri(key)))
        os.remove(self._path)

    def _key(self) -> str:
        prefix = urlparse(self.table.location()).path.strip("/")
        folders = "".join(f"{n}={v}/" for n, v in zip(self.partition_names, self._partition or (), strict=True))
        return f"{prefix}/data/{folders}{self._run}-{self._count:05d}.parquet"

    def _data_file(self, path: str, uri: str) -> DataFile:
        """The Iceberg description of a file written here (stats from its footer, no read from S3)."""
        from pyiceberg.io.pyarrow import (
            compute_statistics_plan,
            data_file_statistics_from_parquet_metadata,
            parquet_path_to_id_mapping,
        )
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat

        metadata = self.table.metadata
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=pq.read_metadata(path),
            stats_columns=compute_statistics_plan(metadata.schema(), metadata.properties),
            parquet_column_mapping=parquet_path_to_id_mapping(metadata.schema()),
        )
        return DataFile.from_args(
            content=DataFileContent.DATA, file_path=uri, file_format=FileFormat.PARQUET,
            partition=stats.partition(metadata.spec(), metadata.schema()), file_size_in_bytes=os.path.getsize(path),
            sort_order_id=None, spec_id=metadata.default_spec_id, equality_ids=None, key_metadata=None,
            **stats.to_serialized_dict(),
        )
