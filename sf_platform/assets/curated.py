"""The curated hop: one ``curated/<table>`` typed Parquet copy per table, registered in the curated
Glue database for Athena / Redshift Spectrum, with its ``rows_reconcile`` check (catalog recordCount =
curated rows + rows quarantined by curation, from the curated ledger)."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import curated_key, glue_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile, record_count
from sf_platform.core import columnar
from sf_platform.core.catalog import column_schema
from sf_platform.core.columnar import CuratedLedger
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import TableConfig
from sf_platform.hops.curate import QUARANTINE_TARGET, curate_table


class CuratedHop(Hop):
    name = "curated"
    requires = ("crawl",)
    resource_keys = frozenset({"landing", "glue"})
    kinds = frozenset({"parquet", "s3", "glue"})

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
            f"Curated {table}: typed zstd Parquet under _curated/{table}/ (partitions kept), registered in "
            f"Glue database {self.curated_database} for Athena / Redshift Spectrum."
        )

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        return [dg.AssetCheckSpec(
            ROWS_RECONCILE, asset=self.key(table),
            description="Catalog recordCount = curated rows + rows quarantined by curation (curated ledger).",
        )]

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        report = curate_table(r.landing, r.glue, run.table, run.config, curated_database=self.curated_database)
        for key, problem in report.problems.items():
            run.log("warning", f"{run.table}: {key} not curated (retried next run): {problem}")
        if report.rows_quarantined:
            run.log("warning", f"{run.table}: {report.rows_quarantined} rows quarantined: {report.quarantine_keys}")
        metadata = table_metadata(report.qualified_name, report.rows, column_schema(report.columns)) | {
            "action": report.action,
            "files": report.files,
            "bytes_raw": report.raw_bytes,
            "bytes_curated": report.curated_bytes,
            "compression_ratio": dg.MetadataValue.float(report.compression_ratio),
            "files_written": len(report.files_written),
            "files_skipped": report.files_skipped,
            "files_removed": len(report.files_removed),
            "files_failed": dg.MetadataValue.json(report.problems),
            "files_failed_count": len(report.problems),
            "rows_written": report.rows_written,
            "row_groups_written": report.row_groups_written,
            "rows_quarantined": report.rows_quarantined,
            "quarantine_keys": dg.MetadataValue.json(report.quarantine_keys),
            "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
            "partition_keys": list(report.partition_keys),
            "partitions_added": report.partitions_added,
            "partitions_updated": report.partitions_updated,
            "partitions_removed": report.partitions_removed,
            "location": report.location,
            "seconds": round(report.seconds, 3),
            "rows_per_second": throughput(report.rows_written, report.seconds),
        }
        return Outcome(metadata, report)

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        if ROWS_RECONCILE not in names:
            return []
        r = run.resources
        # The ledger as this run left it (or, on its own, as the last run saved it).
        ledger = CuratedLedger.from_json(r.landing.read_json(columnar.ledger_key(run.table)))
        rows, quarantined = ledger.totals()
        count, ragged = record_count(r.glue, run.table)
        uri = r.landing.uri(f"{QUARANTINE_ROOT}/{QUARANTINE_TARGET}/{run.table}/")
        return [reconcile(count, rows, quarantined, uri, ragged=ragged, asset_key=self.key(run.table))]
