"""Export assets: one ``exports/<table>`` asset per Snowflake table the registry's ``exports`` section
selects (the tables the platform loads into that schema, plus the others cached in the lock file),
each registering its folder as ``glue/<db>/<prefix>_<table>``.

Tables export in separate runs, in parallel. Source tables that no load asset produces appear as
external ``snowflake/<db>/<schema>/<table>`` assets, so lineage starts at Snowflake either way.
"""

import dagster as dg

from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import export_key, glue_key, snowflake_key
from sf_platform.core import exports as ex
from sf_platform.core.export_catalog import export_columns
from sf_platform.core.identifiers import snowflake_name
from sf_platform.core.registry import ExportConfig, Registry
from sf_platform.hops.snowflake_export import export_table
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.snowflake import SnowflakeDatabase
from sf_platform.settings import Settings


def build_export_assets(registry: Registry, cfg: Settings) -> list:
    """Export multi-assets (plus external specs for unloaded source tables)."""
    config = registry.exports
    if config is None:
        return []
    database, schema, tables = tables_to_export(registry, cfg)
    loaded = {snowflake_key(cfg.snowflake_database, cfg.snowflake_schema, t) for t in _loaded_by_us(registry)}
    result: list = []
    for table in tables:
        source = snowflake_key(database, schema, table.key)
        if source not in loaded:
            result.append(
                dg.AssetSpec(
                    source, kinds={"snowflake"}, group_name="snowflake",
                    description=f"Snowflake table {database}.{schema}.{table.name} (not loaded by this platform).",
                )
            )
        result.append(_export_asset(table, config, database, schema, cfg.glue_database, source))
    return result


def tables_to_export(registry: Registry, cfg: Settings) -> tuple[str, str, list[ex.ExportTable]]:
    """The export's database and schema, and the tables it selects: those this platform loads there
    (from the registry) and the others the lock file lists. No network call."""
    config = registry.exports
    if config is None:
        return "", "", []
    database = config.database or cfg.snowflake_database
    schema = config.schema_name or cfg.snowflake_schema
    path = ex.lock_path(cfg.tables_file)
    lock_text = path.read_text(encoding="utf-8") if path.exists() else None
    same_schema = (database.upper(), schema.upper()) == (cfg.snowflake_database.upper(), cfg.snowflake_schema.upper())
    ours = [snowflake_name(t) for t in _loaded_by_us(registry)] if same_schema else []
    return database, schema, ex.export_tables(lock_text, config, database, schema, ours)


def _loaded_by_us(registry: Registry) -> list[str]:
    return [t for t, c in registry.tables.items() if "snowflake" in c.targets]


def _export_asset(table: ex.ExportTable, config: ExportConfig, database: str, schema: str, glue_database: str, source):
    glue_name = ex.glue_table_name(config, table.key)
    specs = [
        dg.AssetSpec(
            export_key(table.key), deps=[source], kinds={"snowflake", config.format, "s3"}, group_name="exports",
            description=(
                f"{database}.{schema}.{table.name} exported to s3://<landing>/{ex.folder(config, table.key)} as "
                f"{config.format}" + (f", incrementally by {config.incremental_column}" if config.incremental_column else "")
            ),
        ),
        dg.AssetSpec(
            glue_key(glue_database, glue_name), deps=[export_key(table.key)], kinds={"glue"}, group_name="exports",
            description=f"Glue catalog entry of the exported folder {ex.folder(config, table.key)}.",
        ),
    ]

    @dg.multi_asset(specs=specs, name=f"export_{table.key}", can_subset=False)
    def export(
        context: dg.AssetExecutionContext, landing: LandingBucket, glue: GlueCatalog, snowflake: SnowflakeDatabase
    ):
        with snowflake.get_connection() as conn:
            report = export_table(landing, conn, database, schema, table, config, glue=glue, run_id=context.run_id)
        columns = [(c.name, c.type, c.reason) for c in export_columns(report.schema)]
        yield dg.MaterializeResult(
            asset_key=export_key(table.key),
            metadata=table_metadata(report.location, report.rows_total, columns)
            | {
                "source_table": report.table,
                "format": report.format,
                "mode": report.mode,
                "rows_exported": report.rows_exported,
                "parts_written": len(report.parts_written),
                "parts_total": report.parts_total,
                "parts_deleted": report.parts_deleted,
                "bytes_written": report.bytes_written,
                "bytes_total": report.bytes_total,
                "seconds": round(report.seconds, 3),
                "rows_per_second": throughput(report.rows_exported, report.seconds),
                "snapshot_time": report.snapshot_time,
                "source_query": dg.MetadataValue.md(f"```sql\n{report.source_query}\n```"),
                "high_water": str(report.high_water) if report.high_water is not None else "",
                "read_method": report.read_method,
                "manifest": landing.uri(report.manifest_key),
                "notes": dg.MetadataValue.json(report.notes),
            },
        )
        yield dg.MaterializeResult(
            asset_key=glue_key(glue_database, glue_name),
            metadata=table_metadata(f"{glue.database}.{report.glue_table}", report.rows_total, columns)
            | {"action": report.glue_action, "location": report.location, "format": report.format},
        )

    return export
