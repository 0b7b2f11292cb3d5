"""Catalog assets: one ``glue/<db>/<table>`` asset per registered table (crawl hop)."""

import dagster as dg

from sf_platform.assets.landing import s3_key
from sf_platform.assets.metadata import table_metadata
from sf_platform.core.catalog import column_schema, explain_columns
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.hops.crawl import crawl_table
from sf_platform.resources.aws import GlueCatalog, LandingBucket


def glue_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["glue", database, table])


def build_crawl_assets(registry: Registry, glue_database: str) -> list[dg.AssetsDefinition]:
    return [_crawl_asset(table, config, glue_database) for table, config in registry.tables.items()]


def _crawl_asset(table: str, config: TableConfig, glue_database: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=glue_key(glue_database, table),
        deps=[s3_key(table)],
        kinds={"glue"},
        group_name="catalog",
        description=f"Glue Data Catalog entry of {table}: dialect, encoding, header, types over all rows.",
    )
    def crawl(
        context: dg.AssetExecutionContext, landing: LandingBucket, glue: GlueCatalog
    ) -> dg.MaterializeResult:
        report = crawl_table(landing, glue, table, config)
        for key, problems in report.problems.items():
            context.log.warning(f"{key}: {'; '.join(problems)}")
        for note in report.notes:
            context.log.info(note)
        fmt = report.format
        metadata = table_metadata(f"{glue.database}.{table}", report.rows, column_schema(report.columns)) | {
            "action": report.action,
            "table_version": report.version,
            "files": report.files,
            "bytes": report.bytes,
            "bad_rows": report.bad_rows,
            "files_with_problems": len(report.problems),
            "profiles_reused": report.profiles_reused,
            "encoding": fmt.encoding if fmt else "",
            "delimiter": repr(fmt.delimiter) if fmt else "",
            "quoted": bool(fmt and fmt.quoted),
            "compression": fmt.compression if fmt else "",
            "header": report.header_reason,
            "partition_keys": list(report.partition_keys),
            "partitions_added": report.partitions_added,
            "partitions_updated": report.partitions_updated,
            "partitions_removed": report.partitions_removed,
            "schema_diff": dg.MetadataValue.json(report.diff.as_dict()),
            "notes": dg.MetadataValue.json(report.notes),
            "file_problems": dg.MetadataValue.json(report.problems),
            "columns_explained": dg.MetadataValue.md(explain_columns(report.columns)),
            "location": report.location,
        }
        return dg.MaterializeResult(metadata=metadata)

    return crawl
