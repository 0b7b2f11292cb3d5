"""Schema drift checks at every hop: files vs catalog, catalog vs MySQL and Snowflake, and each
asset's column schema vs its previous materialization."""

import dagster as dg

from sf_platform.assets.catalog import glue_key
from sf_platform.assets.mysql import mysql_key
from sf_platform.assets.snowflake import snowflake_key
from sf_platform.core import ddl, drift
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.identifiers import snowflake_name
from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import Registry, TableConfig
from sf_platform.core.source_file import read_head, read_layout
from sf_platform.hops.inspect import mysql_columns, snowflake_columns
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.mysql import MySQLResource
from sf_platform.resources.snowflake import SnowflakeDatabase

HEAD_BYTES = 64 * 1024
_SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def result(found: drift.Drift, level: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=level == "ok",
        severity=_SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        metadata={**found.as_metadata(), **metadata},
    )


def build_schema_checks(registry: Registry, glue_db: str, mysql_db: str, sf_db: str, sf_schema: str) -> list:
    checks = []
    for table, config in registry.tables.items():
        checks += [_files_vs_catalog(table, config, glue_db), _vs_previous(glue_key(glue_db, table))]
        if "mysql" in config.targets:
            checks += [_catalog_vs_mysql(table, glue_db, mysql_db), _vs_previous(mysql_key(mysql_db, table))]
        if "snowflake" in config.targets:
            key = snowflake_key(sf_db, sf_schema, table)
            checks += [_catalog_vs_snowflake(table, glue_db, sf_db, sf_schema, key), _vs_previous(key)]
    return checks


def _files_vs_catalog(table: str, config: TableConfig, glue_db: str):
    @dg.asset_check(
        asset=glue_key(glue_db, table),
        name="files_match_catalog",
        blocking=True,
        description="Columns in the landed files vs the catalog entry. Blocks the loads when files carry "
        "columns the catalog will not take (UpdateBehavior LOG), so no data is silently dropped.",
    )
    def check(landing: LandingBucket, glue: GlueCatalog) -> dg.AssetCheckResult:
        entry = glue.get_table(table)
        if entry is None:
            return result(drift.Drift(), "error", reason="no catalog entry")
        expected = {c.name: "column" for c in columns_of(entry)}
        seen: dict[str, str] = {}
        per_file: dict[str, list[str]] = {}
        for obj in landing.list_objects(f"{table}/"):
            if not is_data_key(obj["Key"]):
                continue
            body = landing.open(obj["Key"])
            try:
                layout = read_layout(read_head(body, HEAD_BYTES), config)
            finally:
                body.close()
            extra = [n for n in layout.catalog_names if n not in expected]
            if extra:
                per_file[obj["Key"]] = extra
            seen.update({n: "column" for n in layout.catalog_names})
        found = drift.compare(expected, seen)
        level = drift.files_vs_catalog_severity(found, config.schema_change.update_behavior)
        return result(found, level, files_with_new_columns=dg.MetadataValue.json(per_file),
                      update_behavior=config.schema_change.update_behavior.value)

    return check


def _catalog_vs_mysql(table: str, glue_db: str, mysql_db: str):
    @dg.asset_check(asset=mysql_key(mysql_db, table), name="mysql_matches_catalog",
                    description="MySQL columns (information_schema) hold every catalog column at its mapped type.")
    def check(glue: GlueCatalog, mysql: MySQLResource) -> dg.AssetCheckResult:
        expected = _expected_specs(glue.get_table(table))
        actual = {n: t for n, t in mysql_columns(mysql, table).items() if n != ddl.SOURCE_KEY_COLUMN}
        found = drift.compare({c.name: c.mysql_type for c in expected}, actual, drift.mysql_holds)
        return result(found, "error" if (found.removed or found.retyped) else ("warn" if found.added else "ok"))

    return check


def _catalog_vs_snowflake(table: str, glue_db: str, sf_db: str, sf_schema: str, key: dg.AssetKey):
    @dg.asset_check(asset=key, name="snowflake_matches_catalog",
                    description="Snowflake columns (INFORMATION_SCHEMA) match the catalog's columns and types.")
    def check(glue: GlueCatalog, snowflake: SnowflakeDatabase) -> dg.AssetCheckResult:
        expected = {snowflake_name(c.name): c.snowflake_type for c in _expected_specs(glue.get_table(table))}
        with snowflake.get_connection() as conn:
            actual = snowflake_columns(conn, sf_db, sf_schema, table)
        actual.pop(snowflake_name(ddl.SOURCE_KEY_COLUMN), None)
        found = drift.compare(expected, actual, drift.snowflake_same)
        return result(found, "error" if (found.removed or found.retyped) else ("warn" if found.added else "ok"))

    return check


def _expected_specs(entry) -> list[ddl.ColumnSpec]:
    if entry is None:
        return []
    specs = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    return specs + [ddl.ColumnSpec(k, "string", 255) for k in partition_keys_of(entry)]


def _vs_previous(key: dg.AssetKey):
    @dg.asset_check(asset=key, name="schema_vs_previous",
                    description="Column schema of this materialization vs the previous one (added/removed/retyped).")
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        records = context.instance.fetch_materializations(key, limit=2).records
        schemas = [_column_schema(r) for r in records]
        if len(schemas) < 2 or schemas[1] is None or schemas[0] is None:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no previous materialization to compare"})
        found = drift.compare(schemas[1], schemas[0])
        return result(found, "ok" if found.empty else "warn")

    return check


def _column_schema(record) -> dict[str, str] | None:
    materialization = record.asset_materialization
    entry = materialization.metadata.get("dagster/column_schema") if materialization else None
    if entry is None:
        return None
    return {c.name: c.type for c in entry.value.columns}
