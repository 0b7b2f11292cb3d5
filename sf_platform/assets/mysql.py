"""The MySQL hop: one ``mysql/<db>/<table>`` mirror per table that targets MySQL, loaded from the
table's hub (``curated``, an Iceberg table) with only the changes since the snapshot it holds, and its
checks evaluated right after the load: ``mysql_matches_catalog`` (columns vs the catalog) and
``rows_reconcile`` (MySQL rows = the hub's rows at the snapshot MySQL loaded)."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun, check_result
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import curated_key, mysql_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile_with_hub
from sf_platform.core import ddl, drift
from sf_platform.core.registry import TableConfig
from sf_platform.hops.inspect import mysql_columns, mysql_loaded_snapshot_and_rows
from sf_platform.hops.mysql_mirror import MirrorReport, mirror_columns, mirror_table

MATCHES_CATALOG = "mysql_matches_catalog"


class MySQLHop(Hop):
    name = "mysql"
    requires = ("curated",)
    resource_keys = frozenset({"landing", "glue", "mysql"})
    kinds = frozenset({"mysql"})
    tracks_schema = True
    pool = "mysql"  # writers of this system share its pool (set a limit to cap concurrent writes)

    def __init__(self, glue_database: str, mysql_database: str, curated_database: str | None = None):
        self.glue_database, self.mysql_database = glue_database, mysql_database
        self.curated_database = curated_database  # None: the hub's default (<glue db>_curated or the setting)

    def covers(self, config: TableConfig) -> bool:
        return "mysql" in config.targets

    def key(self, table: str) -> dg.AssetKey:
        return mysql_key(self.mysql_database, table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [curated_key(table)]

    def table_name(self, table: str) -> str:
        return f"{self.mysql_database}.{table}"

    def description(self, table: str, config: TableConfig) -> str:
        return (
            f"MySQL mirror of {table}: DDL from the catalog, rows from the hub (curated Iceberg table), only the "
            "changes since the snapshot it holds, streamed into LOAD DATA LOCAL INFILE."
        )

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        key = self.key(table)
        return [
            dg.AssetCheckSpec(MATCHES_CATALOG, asset=key,
                              description="MySQL columns (information_schema) hold every catalog column at its mapped type."),
            dg.AssetCheckSpec(ROWS_RECONCILE, asset=key,
                              description="MySQL rows = the hub's rows (total-records) at the snapshot MySQL loaded."),
        ]

    def hub(self, resources):
        from sf_platform.hub.catalog import Hub  # imports pyiceberg only when a load runs

        return Hub(resources.landing, resources.glue, self.curated_database)

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        report = mirror_table(
            self.hub(r), r.glue, r.mysql, run.table, run.config, run_id=run.run_id, full_refresh=run.step.full_refresh
        )
        for change in report.applied.schema_changes:
            run.log("info", f"{run.table}: schema change: {change}")
        return Outcome(mirror_metadata(report), report)

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        r, key, results = run.resources, self.key(run.table), []
        if MATCHES_CATALOG in names:
            entry = r.glue.get_table(run.table)
            expected = {c.mysql: c.spec.mysql_type for c in mirror_columns(entry)} if entry else {}
            actual = {n: t for n, t in mysql_columns(r.mysql, run.table).items() if n not in ddl.MYSQL_BOOKKEEPING_COLUMNS}
            found = drift.compare(expected, actual, drift.mysql_holds)
            level = "error" if (found.removed or found.retyped) else ("warn" if found.added else "ok")
            results.append(check_result(key, MATCHES_CATALOG, found, level))
        if ROWS_RECONCILE in names:
            results.append(self._reconcile(run, key))
        return results

    def _reconcile(self, run: TableRun, key: dg.AssetKey) -> dg.AssetCheckResult:
        """MySQL rows (COUNT(*)) = the hub's total-records at the snapshot in MySQL's ledger."""
        r = run.resources
        loaded, rows = mysql_loaded_snapshot_and_rows(r.mysql, run.table)
        hub = self.hub(r)
        return reconcile_with_hub(
            key, "MySQL", rows, loaded, hub.rows_at(run.table, loaded) if loaded is not None else None,
            loaded=loaded is not None, hub_rows_now=0 if loaded is not None else hub.rows_now(run.table),
        )


def mirror_metadata(report: MirrorReport) -> dict:
    """Materialization metadata of a mirror run; column types as MySQL reports them."""
    applied = report.applied
    sources = {c.mysql: c.source for c in report.columns}
    columns = [
        (name, ctype, f"source column: {sources[name]}" if name in sources else "mirror bookkeeping")
        for name, ctype in report.mysql_types.items()
    ]
    moved = applied.rows_inserted + applied.rows_deleted
    return table_metadata(f"{report.database}.{report.table}", applied.rows, columns) | {
        "rows": applied.rows,
        "rows_inserted": applied.rows_inserted,
        "rows_deleted": applied.rows_deleted,
        "snapshot_id": str(applied.snapshot_id or ""),
        "previous_snapshot_id": str(applied.previous_snapshot_id or ""),
        "full": applied.full,
        "seconds": round(applied.seconds, 3),
        "rows_per_second": throughput(moved, applied.seconds),
        "column_names": dg.MetadataValue.json(report.column_names()),
        "schema_changes": dg.MetadataValue.json(applied.schema_changes),
    }
