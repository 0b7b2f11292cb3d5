"""The MySQL mirror's columns, from the Glue catalog entry: what the DDL is built from and what the
``mysql_matches_catalog`` check compares against (one home for both, so a clean load never alarms)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from sf_platform.core import ddl
from sf_platform.core.catalog import columns_of, partition_keys_of

PARTITION_KEY_LENGTH = 255  # sizes partition key columns; longer values widen them like any string


class MirrorError(RuntimeError):
    """The mirror cannot proceed; the message names the table/column and what to do."""


class IncompatibleChange(MirrorError):
    """The catalog changed a column in a way MySQL cannot widen in place."""


@dataclass(frozen=True)
class MirrorColumn:
    """One column of the mirror: its name in the files, in the catalog (= in the hub) and in MySQL,
    and its Glue type."""

    source: str
    catalog: str
    mysql: str
    type: str  # Glue type
    max_length: int = 0
    partition: bool = False

    @property
    def spec(self) -> ddl.ColumnSpec:
        return ddl.ColumnSpec(self.mysql, self.type, self.max_length)


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


def work_tables(table: str) -> tuple[str, str]:
    """(staging, old) table names of a rebuild: distinct from every registry table name, which cannot
    start with ``_``."""
    digest = hashlib.sha1(table.encode()).hexdigest()[:10]
    return f"_sf_stage_{digest}_{table}"[:64], f"_sf_old_{digest}_{table}"[:64]
