"""The MySQL hop: one ``mysql/<db>/<table>`` mirror per table that targets MySQL, with its checks
(``mysql_matches_catalog``, ``rows_reconcile``) evaluated right after the load."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun, check_result
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import glue_key, mysql_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile, record_count
from sf_platform.core import ddl, drift
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import TableConfig
from sf_platform.hops.inspect import mysql_columns, mysql_counts
from sf_platform.hops.mysql_mirror import MirrorReport, mirror_columns, mirror_table

MATCHES_CATALOG = "mysql_matches_catalog"


class MySQLHop(Hop):
    name = "mysql"
    requires = ("crawl",)
    resource_keys = frozenset({"landing", "glue", "mysql"})
    kinds = frozenset({"mysql"})
    tracks_schema = True
    pool = "mysql"  # writers of this system share its pool (set a limit to cap concurrent writes)

    def __init__(self, glue_database: str, mysql_database: str):
        self.glue_database, self.mysql_database = glue_database, mysql_database

    def covers(self, config: TableConfig) -> bool:
        return "mysql" in config.targets

    def key(self, table: str) -> dg.AssetKey:
        return mysql_key(self.mysql_database, table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [glue_key(self.glue_database, table)]

    def table_name(self, table: str) -> str:
        return f"{self.mysql_database}.{table}"

    def description(self, table: str, config: TableConfig) -> str:
        return f"MySQL mirror of {table}: DDL from the catalog, rows bulk-loaded once per S3 object, small objects in batches."

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        key = self.key(table)
        return [
            dg.AssetCheckSpec(MATCHES_CATALOG, asset=key,
                              description="MySQL columns (information_schema) hold every catalog column at its mapped type."),
            dg.AssetCheckSpec(ROWS_RECONCILE, asset=key, description="Catalog recordCount = MySQL rows + quarantined rows."),
        ]

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        report = mirror_table(
            r.landing, r.glue, r.mysql, run.table, run.config, run_id=run.run_id, full_refresh=run.step.full_refresh
        )
        for change in report.schema_changes:
            run.log("info", f"{run.table}: schema change: {change}")
        if report.rows_quarantined:
            run.log("warning", f"{run.table}: {report.rows_quarantined} rows quarantined: {report.quarantine_keys}")
        for key, reason in report.files_failed.items():
            run.log("warning", f"{run.table}: {key} not loaded (retried next run): {reason}")
        if report.files_deferred:
            run.log("warning", f"{run.table}: changed in S3 during the run, loaded next run: {report.files_deferred}")
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
            rows, quarantined = mysql_counts(r.mysql, run.table)
            count, ragged = record_count(r.glue, run.table)
            results.append(reconcile(count, rows, quarantined, r.landing.uri(f"{QUARANTINE_ROOT}/mysql/{run.table}/"),
                                     ragged=ragged, asset_key=key))
        return results


def mirror_metadata(report: MirrorReport) -> dict:
    """Materialization metadata of a mirror run; column types as MySQL reports them."""
    sources = {c.mysql: c.source for c in report.columns}
    columns = [
        (name, ctype, f"source column: {sources[name]}" if name in sources else "mirror bookkeeping")
        for name, ctype in report.mysql_types.items()
    ]
    return table_metadata(f"{report.database}.{report.table}", report.rows_in_table, columns) | {
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "quarantine_keys": dg.MetadataValue.json(report.quarantine_keys),
        "files_loaded": len(report.files_loaded),
        "files_skipped": report.files_skipped,
        "files_removed": len(report.files_removed),
        "files_deferred": len(report.files_deferred),
        "files_failed": dg.MetadataValue.json(report.files_failed),
        "files_failed_count": len(report.files_failed),
        "batches": report.batches,
        "bytes_loaded": report.bytes_loaded,
        "seconds": round(report.seconds, 3),
        "rows_per_second": throughput(report.rows_loaded, report.seconds),
        "column_names": dg.MetadataValue.json(report.column_names()),
        "schema_changes": dg.MetadataValue.json(report.schema_changes),
        "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
        "full_refresh": report.full_refresh,
        "rebuilt": report.rebuilt,
    }
