"""The curated hop: one hub table per registry table, an Apache Iceberg table in the curated Glue
database (``sf_platform/hub``) that MySQL and Snowflake load from and Athena / Redshift Spectrum query in
place, with its ``rows_reconcile`` check (catalog recordCount = hub rows + rows quarantined by curation,
from the hub ledger of the current snapshot)."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import curated_key, glue_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile, record_count
from sf_platform.core.catalog import column_schema
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import TableConfig
from sf_platform.hops.curate import QUARANTINE_TARGET, curate_table


class CuratedHop(Hop):
    name = "curated"
    requires = ("crawl",)
    resource_keys = frozenset({"landing", "glue"})
    kinds = frozenset({"iceberg", "s3", "glue"})

    def __init__(self, glue_database: str, curated_database: str):
        self.glue_database, self.curated_database = glue_database, curated_database

    def key(self, table: str) -> dg.AssetKey:
        return curated_key(table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [glue_key(self.glue_database, table)]

    def table_name(self, table: str) -> str:
        return f"{self.curated_database}.{table}"

    def description(self, table: str, config: TableConfig) -> str:
        return (
            f"Curated {table}: the typed hub, an Apache Iceberg table {self.curated_database}.{table} "
            f"(zstd Parquet under _curated/{table}/, partitions kept) that MySQL and Snowflake load from and "
            "Athena / Redshift Spectrum query in place."
        )

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        return [dg.AssetCheckSpec(
            ROWS_RECONCILE, asset=self.key(table),
            description="Catalog recordCount = hub rows + rows quarantined by curation (hub ledger).",
        )]

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        report = curate_table(r.landing, r.glue, run.table, run.config, curated_database=self.curated_database)
        for key, problem in report.problems.items():
            run.log("warning", f"{run.table}: {key} not curated (retried next run): {problem}")
        if report.rows_quarantined:
            run.log("warning", f"{run.table}: {report.rows_quarantined} rows quarantined: {report.quarantine_keys}")
        upkeep = report.upkeep
        metadata = table_metadata(report.qualified_name, report.rows, column_schema(report.columns)) | {
            "action": report.action,
            "snapshot_id": str(report.snapshot_id or ""),
            "files": report.files,
            "bytes_raw": report.raw_bytes,
            "bytes_curated": report.curated_bytes,
            "compression_ratio": dg.MetadataValue.float(report.compression_ratio),
            "sources": report.sources,
            "files_written": len(report.files_written),
            "files_skipped": report.files_skipped,
            "files_removed": len(report.files_removed),
            "files_failed": dg.MetadataValue.json(report.problems),
            "files_failed_count": len(report.problems),
            "rows_written": report.rows_written,
            "rows_rewritten": report.rows_rewritten,
            "data_files_added": report.data_files_added,
            "data_files_removed": report.data_files_removed,
            "rows_quarantined": report.rows_quarantined,
            "rows_quarantined_total": report.rows_quarantined_total,
            "quarantine_location": dg.MetadataValue.path(
                r.landing.uri(f"{QUARANTINE_ROOT}/{QUARANTINE_TARGET}/{run.table}/")
            ),
            "quarantine_keys": dg.MetadataValue.json(report.quarantine_keys),
            "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
            "schema_changes": dg.MetadataValue.json(report.schema_changes),
            "partition_keys": list(report.partition_keys),
            "commit_conflicts": report.conflicts,
            "compacted_files": upkeep.compacted_files,
            "snapshots_expired": upkeep.snapshots_expired,
            "orphans_removed": upkeep.orphans_removed,
            "location": report.location,
            "seconds": round(report.seconds, 3),
            "rows_per_second": throughput(report.rows_written, report.seconds),
        }
        return Outcome(metadata, report)

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        if ROWS_RECONCILE not in names:
            return []
        r = run.resources
        if outcome is not None:
            rows, quarantined = outcome.report.rows, outcome.report.rows_quarantined_total
        else:  # on its own: the ledger of the hub table's current snapshot
            from sf_platform.hub import ledger as hub_ledger
            from sf_platform.hub.catalog import Hub

            table = Hub(r.landing, r.glue, self.curated_database).load(run.table)
            snapshot = table.current_snapshot() if table is not None else None
            rows, quarantined, _ = hub_ledger.load(r.landing, snapshot.summary if snapshot else None).totals()
        count, ragged = record_count(r.glue, run.table)
        uri = r.landing.uri(f"{QUARANTINE_ROOT}/{QUARANTINE_TARGET}/{run.table}/")
        return [reconcile(count, rows, quarantined, uri, ragged=ragged, asset_key=self.key(run.table))]
