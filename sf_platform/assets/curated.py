"""Curated assets: one ``curated/<table>`` asset per registered table (typed Parquet + its Glue entry)."""

import dagster as dg

from sf_platform import settings
from sf_platform.assets.catalog import glue_key
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.core.catalog import column_schema
from sf_platform.core.columnar import curated_database
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.hops.curate import curate_table
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.settings import Settings


def curated_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["curated", table])


def build_curated_assets(registry: Registry, cfg: Settings) -> list[dg.AssetsDefinition]:
    database = curated_database(cfg.glue_database, settings.get("SF_GLUE_CURATED_DATABASE"))
    return [_curate_asset(table, config, cfg.glue_database, database) for table, config in registry.tables.items()]


def _curate_asset(table: str, config: TableConfig, glue_database: str, database: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=curated_key(table),
        deps=[glue_key(glue_database, table)],
        kinds={"parquet", "s3", "glue"},
        group_name="curated",
        description=(
            f"Curated {table}: typed zstd Parquet under _curated/{table}/ (partitions kept), registered in "
            f"Glue database {database} for Athena / Redshift Spectrum; one file per source object."
        ),
    )
    def curate(context: dg.AssetExecutionContext, landing: LandingBucket, glue: GlueCatalog) -> dg.MaterializeResult:
        report = curate_table(landing, glue, table, config, curated_database=database)
        for key, problem in report.problems.items():
            context.log.warning(f"{key}: {problem}")
        if report.rows_quarantined:
            context.log.warning(f"{report.rows_quarantined} rows quarantined: {report.quarantine_keys}")
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
        return dg.MaterializeResult(metadata=metadata)

    return curate
