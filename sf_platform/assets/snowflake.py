"""Snowflake assets: one ``snowflake/<db>/<schema>/<table>`` asset per table that targets Snowflake."""

import dagster as dg

from sf_platform.assets.catalog import glue_key
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.hops.snowflake_load import load_table
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.snowflake import SnowflakeDatabase


def snowflake_key(database: str, schema: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["snowflake", database, schema, table])


def build_snowflake_assets(
    registry: Registry, glue_database: str, database: str, schema: str
) -> list[dg.AssetsDefinition]:
    return [
        _load_asset(table, config, glue_database, database, schema)
        for table, config in registry.tables.items()
        if "snowflake" in config.targets
    ]


def _load_asset(table: str, config: TableConfig, glue_database: str, database: str, schema: str):
    target = config.snowflake
    how = {"append": "appended", "replace": "rebuilt and swapped in", "merge": f"merged on {list(target.merge_keys)}"}

    @dg.asset(
        key=snowflake_key(database, schema, table),
        deps=[glue_key(glue_database, table)],
        kinds={"snowflake"},
        group_name="snowflake",
        description=(
            f"Snowflake table of {table}: {target.stage}-stage COPY INTO, {how[target.write_mode]} "
            "(never row INSERTs)."
        ),
    )
    def load(
        context: dg.AssetExecutionContext,
        landing: LandingBucket,
        glue: GlueCatalog,
        snowflake: SnowflakeDatabase,
    ) -> dg.MaterializeResult:
        with snowflake.get_connection() as conn:
            report = load_table(landing, glue, conn, database, schema, table, config, run_id=context.run_id)
        if report.rows_rejected:
            context.log.warning(f"{report.rows_rejected} rows rejected: {report.quarantine_keys}")
        columns = [(c.name.upper(), c.snowflake_type, "") for c in report.columns]
        return dg.MaterializeResult(
            metadata=table_metadata(report.qualified_name, report.rows_in_table, columns)
            | {
                "write_mode": report.write_mode,
                "stage": report.stage_mode,
                "rows_loaded": report.rows_loaded,
                "rows_rejected": report.rows_rejected,
                "rows_quarantined": report.rows_quarantined,
                "rows_rejected_by_copy": report.rows_rejected_by_copy,
                "copy_errors": dg.MetadataValue.json(report.copy_errors),
                "quarantine_keys": dg.MetadataValue.json(report.quarantine_keys),
                "rows_inserted": report.rows_inserted,
                "rows_updated": report.rows_updated,
                "duplicate_key_rows": report.duplicate_key_rows,
                "rebuilt": report.rebuilt,
                "swap_method": report.swap_method,
                "files_loaded": len(report.files_loaded),
                "files_skipped": report.files_skipped,
                "files_removed": len(report.files_removed),
                "parts_staged": report.parts_staged,
                "bytes_loaded": report.bytes_loaded,
                "seconds": round(report.seconds, 3),
                "rows_per_second": throughput(report.rows_loaded, report.seconds),
                "schema_changes": dg.MetadataValue.json(report.schema_changes),
                "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
                "notes": dg.MetadataValue.json(report.notes),
            }
        )

    return load
