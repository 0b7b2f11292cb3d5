"""Reconciliation checks: rows in the files (catalog recordCount) = rows loaded + rows quarantined.

recordCount counts every data record of the files, ragged rows (wrong number of fields) included:
the loaders quarantine those, so they are on the right-hand side too."""

import dagster as dg

from sf_platform.assets.mysql import mysql_key
from sf_platform.assets.snowflake import snowflake_key
from sf_platform.core.catalog import P_RAGGED_ROWS
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import Registry
from sf_platform.hops.inspect import mysql_counts, snowflake_counts
from sf_platform.resources.aws import GlueCatalog, LandingBucket
from sf_platform.resources.mysql import MySQLResource
from sf_platform.resources.snowflake import SnowflakeDatabase


def reconcile(
    record_count: int,
    rows: int,
    quarantined: int,
    quarantine_uri: str,
    *,
    merged: bool = False,
    ragged: int = 0,
) -> dg.AssetCheckResult:
    """Rows in the files = rows in the target + quarantined rows. A merge table keeps one row per key,
    so there the target may hold fewer rows, never more. ``ragged``: of record_count, the ragged rows
    the crawl found (shown, not part of the rule)."""
    metadata = {
        "catalog_record_count": record_count,
        "catalog_ragged_rows": ragged,
        "rows_in_target": rows,
        "rows_quarantined": quarantined,
        "difference": record_count - quarantined - rows,
        "rule": "rows + quarantined <= recordCount (merge on keys)" if merged else "rows + quarantined = recordCount",
    }
    mismatch = rows + quarantined > record_count if merged else rows + quarantined != record_count
    if mismatch:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)
    if quarantined:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={**metadata, "quarantine": quarantine_uri}
        )
    return dg.AssetCheckResult(passed=True, metadata=metadata)


def build_reconcile_checks(registry: Registry, mysql_db: str, sf_db: str, sf_schema: str) -> list:
    checks = []
    for table, config in registry.tables.items():
        if "mysql" in config.targets:
            checks.append(_mysql(table, mysql_key(mysql_db, table)))
        if "snowflake" in config.targets:
            merged = config.snowflake.write_mode == "merge"
            checks.append(_snowflake(table, sf_db, sf_schema, snowflake_key(sf_db, sf_schema, table), merged))
    return checks


def _record_count(glue: GlueCatalog, table: str) -> tuple[int, int]:
    """(recordCount, of it the ragged rows) of the table's catalog entry; (0, 0) without one."""
    entry = glue.get_table(table)
    params = (entry or {}).get("Parameters") or {}
    return int(params.get("recordCount", 0)), int(params.get(P_RAGGED_ROWS, 0))


def _mysql(table: str, key: dg.AssetKey):
    @dg.asset_check(asset=key, name="rows_reconcile", description="Catalog recordCount = MySQL rows + quarantined rows.")
    def check(glue: GlueCatalog, mysql: MySQLResource, landing: LandingBucket) -> dg.AssetCheckResult:
        rows, quarantined = mysql_counts(mysql, table)
        record_count, ragged = _record_count(glue, table)
        return reconcile(
            record_count, rows, quarantined, landing.uri(f"{QUARANTINE_ROOT}/mysql/{table}/"), ragged=ragged
        )

    return check


def _snowflake(table: str, sf_db: str, sf_schema: str, key: dg.AssetKey, merged: bool):
    @dg.asset_check(asset=key, name="rows_reconcile", description="Catalog recordCount = Snowflake rows + quarantined rows.")
    def check(glue: GlueCatalog, snowflake: SnowflakeDatabase, landing: LandingBucket) -> dg.AssetCheckResult:
        with snowflake.get_connection() as conn:
            rows, quarantined = snowflake_counts(conn, sf_db, sf_schema, table)
        record_count, ragged = _record_count(glue, table)
        return reconcile(
            record_count, rows, quarantined, landing.uri(f"{QUARANTINE_ROOT}/snowflake/{table}/"),
            merged=merged, ragged=ragged,
        )

    return check
