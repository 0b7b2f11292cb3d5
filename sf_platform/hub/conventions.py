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

from sf_platform.core import types
from sf_platform.core.catalog import CatalogColumn

CURATED_ROOT = "_curated"  # hidden to the organizer, the crawler and the sensor (starts with "_")
SOURCE_KEY = "_sf_source_key"
ROW = "_sf_row"
BOOKKEEPING = (SOURCE_KEY, ROW)

OPERATION = "sf.operation"  # snapshot summary property set by every commit we make
CURATE, COMPACTION, REBUILD = "curate", "compaction", "rebuild"
OPERATIONS = (CURATE, COMPACTION, REBUILD)


def curated_database(glue_database: str, configured: str = "") -> str:
    """The Glue database of the hub tables: SF_GLUE_CURATED_DATABASE, or ``<glue database>_curated``."""
    return configured or f"{glue_database}_curated"


def table_prefix(table: str) -> str:
    """The key prefix of a hub table's data and metadata in the landing bucket."""
    return f"{CURATED_ROOT}/{table}/"


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
