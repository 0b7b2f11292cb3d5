"""The curated hop: one ``curated/<table>`` typed Parquet copy per table, registered in the curated
Glue database for Athena / Redshift Spectrum."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import curated_key, glue_key
from sf_platform.core.catalog import column_schema
from sf_platform.core.registry import TableConfig
from sf_platform.hops.curate import curate_table


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

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        report = curate_table(r.landing, r.glue, run.table, run.config, curated_database=self.curated_database)
        for key, problem in report.problems.items():
            run.log("warning", f"{key}: {problem}")
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
            "files_failed": len(report.problems),
            "rows_written": report.rows_written,
            "row_groups_written": report.row_groups_written,
            "rows_quarantined": report.rows_quarantined,
            "quarantine_keys": dg.MetadataValue.json(report.quarantine_keys),
            "file_problems": dg.MetadataValue.json(report.problems),
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
