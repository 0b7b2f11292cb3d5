"""Names shared by the hub's writer and its readers (the hub contract of issue 14), free of pyiceberg.

Every hub table is ``(<curated Glue database>, <table>)`` at ``s3://<landing bucket>/_curated/<table>/``:
the raw catalog entry's columns in order (data columns, then hive partition keys, which are identity
partitions), all nullable, then ``_sf_source_key`` (the S3 key of the source object) and ``_sf_row``
(1-based data row number in it); (key, row) is unique. Every commit we make sets the snapshot summary
property ``sf.operation``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from sf_platform import settings
from sf_platform.core import types
from sf_platform.core.catalog import CatalogColumn
from sf_platform.core.columnar import BOOKKEEPING, CURATED_ROOT, curated_database, curated_prefix

SOURCE_KEY, ROW = BOOKKEEPING
__all__ = [
    "BOOKKEEPING", "COMPACTION", "CURATE", "CURATED_ROOT", "OPERATION", "OPERATIONS", "REBUILD", "ROW", "SOURCE_KEY",
    "arrow_schema", "curated_database", "hub_columns", "orphan_age_hours", "snapshot_retention_hours",
    "table_prefix", "target_file_bytes",
]

OPERATION = "sf.operation"  # snapshot summary property set by every commit we make
CURATE, COMPACTION, REBUILD = "curate", "compaction", "rebuild"
OPERATIONS = (CURATE, COMPACTION, REBUILD)


table_prefix = curated_prefix  # the key prefix of a hub table's data and metadata files


def arrow_schema(columns: Sequence[CatalogColumn]) -> pa.Schema:
    """The hub rows' Arrow schema: the catalog columns (types from ``core.types``), all nullable, then
    the two bookkeeping columns."""
    fields = [pa.field(c.name, types.to_arrow(c.type), nullable=True) for c in columns]
    fields += [pa.field(SOURCE_KEY, pa.string(), nullable=True), pa.field(ROW, pa.int64(), nullable=True)]
    return pa.schema(fields)


def hub_columns(entry: dict) -> list[CatalogColumn]:
    """The catalog columns of a hub table, from the raw Glue entry (GetTable's ``Table``): data columns
    in order, then the hive partition keys (their Glue type, ``string`` when it has none)."""
    data = [CatalogColumn.from_glue(c) for c in entry["StorageDescriptor"]["Columns"]]
    keys = [CatalogColumn(k["Name"], k.get("Type") or "string") for k in entry.get("PartitionKeys", [])]
    return data + keys


# ------------------------------------------------------------------------------------------ tuning
# Settings of the hub writer (defaults and meaning in ``settings.VARIABLES``): SF_HUB_TARGET_FILE_MB
# Parquet bytes per data file; SF_HUB_SNAPSHOT_RETENTION_HOURS how long old snapshots stay readable (a
# target that loaded an expired one reloads in full); SF_HUB_ORPHAN_AGE_HOURS files no snapshot
# references are deleted once this old (younger ones may belong to a commit in flight).


def _positive(name: str) -> float:
    """A positive number from the setting ``name`` (its default in ``settings.VARIABLES``)."""
    raw = settings.get(name).strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{name}={raw!r}: expected a positive number")
    return value


def target_file_bytes() -> int:
    return int(_positive("SF_HUB_TARGET_FILE_MB") * 1024**2)


def snapshot_retention_hours() -> float:
    return _positive("SF_HUB_SNAPSHOT_RETENTION_HOURS")


def orphan_age_hours() -> float:
    return _positive("SF_HUB_ORPHAN_AGE_HOURS")
