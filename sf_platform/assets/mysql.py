"""MySQL mirror assets: one ``mysql/<db>/<table>`` asset per table that targets MySQL."""

import dagster as dg

from sf_platform.assets.catalog import glue_key
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.hops.mysql_mirror import MirrorReport, mirror_table
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.mysql import MySQLResource


class MirrorConfig(dg.Config):
    full_refresh: bool = False  # rebuild into a staging table and swap it in atomically


def mysql_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["mysql", database, table])


def build_mysql_assets(
    registry: Registry, glue_database: str, mysql_database: str
) -> list[dg.AssetsDefinition]:
    return [
        _mirror_asset(table, config, glue_database, mysql_database)
        for table, config in registry.tables.items()
        if "mysql" in config.targets
    ]


def _mirror_asset(table: str, table_config: TableConfig, glue_database: str, mysql_database: str):
    @dg.asset(
        key=mysql_key(mysql_database, table),
        deps=[glue_key(glue_database, table)],
        kinds={"mysql"},
        group_name="mysql",
        description=f"MySQL mirror of {table}: DDL from the catalog, rows bulk-loaded once per S3 object.",
    )
    def mirror(
        context: dg.AssetExecutionContext,
        config: MirrorConfig,
        landing: LandingBucket,
        glue: GlueCatalog,
        mysql: MySQLResource,
    ) -> dg.MaterializeResult:
        report = mirror_table(
            landing, glue, mysql, table, table_config, run_id=context.run_id, full_refresh=config.full_refresh
        )
        for change in report.schema_changes:
            context.log.info(f"schema change: {change}")
        if report.rows_quarantined:
            context.log.warning(f"{report.rows_quarantined} rows quarantined: {report.quarantine_keys}")
        if report.files_deferred:
            context.log.warning(f"changed in S3 during the run, loaded next run: {report.files_deferred}")
        return dg.MaterializeResult(metadata=mirror_metadata(report))

    return mirror


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
        "bytes_loaded": report.bytes_loaded,
        "seconds": round(report.seconds, 3),
        "rows_per_second": throughput(report.rows_loaded, report.seconds),
        "column_names": dg.MetadataValue.json(report.column_names()),
        "schema_changes": dg.MetadataValue.json(report.schema_changes),
        "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
        "full_refresh": report.full_refresh,
        "rebuilt": report.rebuilt,
    }
