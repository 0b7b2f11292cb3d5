"""MySQL mirror hop: a hub (Iceberg) table becomes an exact MySQL table, loading only the changes
since the snapshot it holds.

The sequence is the shared one of ``hops/sink.py`` (``apply_changes``); the MySQL statements are
``hops/mysql_sink.py``'s; the columns come from the Glue catalog entry (``hops/mysql_columns.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sf_platform.core.registry import TableConfig
from sf_platform.hops.mysql_columns import MirrorColumn, MirrorError, mirror_columns
from sf_platform.hops.mysql_sink import MySQLSink
from sf_platform.hops.sink import ApplyReport, ChangeSource, apply_changes
from sf_platform.resources.aws import GlueCatalog
from sf_platform.resources.mysql import MySQLResource


@dataclass
class MirrorReport:
    """One run on one table: what ``apply_changes`` did, the columns and their MySQL types."""

    database: str
    applied: ApplyReport
    columns: list[MirrorColumn] = field(default_factory=list)
    mysql_types: dict[str, str] = field(default_factory=dict)  # MySQL column -> type, as MySQL reports it

    @property
    def table(self) -> str:
        return self.applied.table

    def column_names(self) -> list[dict[str, str]]:
        """Source name -> catalog name -> MySQL column, for every mirrored column."""
        return [{"source": c.source, "catalog": c.catalog, "mysql": c.mysql} for c in self.columns]


def mirror_table(
    hub: ChangeSource,
    catalog: GlueCatalog,
    mysql: MySQLResource,
    table: str,
    config: TableConfig,
    *,
    run_id: str = "",
    full_refresh: bool = False,
) -> MirrorReport:
    """Bring ``mysql.database``.``table`` to the hub table's current snapshot."""
    entry = catalog.get_table(table)
    if entry is None:
        raise MirrorError(f"table {table!r} is not in Glue database {catalog.database!r}; crawl it first")
    columns = mirror_columns(entry)
    mysql.ensure_database()
    with mysql.connect() as conn:
        sink = MySQLSink(
            conn, mysql.database, table, columns, config, run_id or uuid.uuid4().hex, full_refresh=full_refresh
        )
        applied = apply_changes(hub, table, sink, full_refresh=full_refresh)
        types = sink.column_types()
    return MirrorReport(mysql.database, applied, columns, types)
