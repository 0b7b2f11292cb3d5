"""The Snowflake hop: one ``snowflake/<db>/<schema>/<table>`` table per table that targets Snowflake,
with its checks (``snowflake_matches_catalog``, ``rows_reconcile``) on the load's own connection."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun, check_result
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import glue_key, snowflake_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile, record_count
from sf_platform.core import ddl, drift
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.identifiers import snowflake_name
from sf_platform.core.quarantine import QUARANTINE_ROOT
from sf_platform.core.registry import TableConfig
from sf_platform.hops.inspect import snowflake_columns, snowflake_counts
from sf_platform.hops.snowflake_load import SnowflakeReport, load_table

MATCHES_CATALOG = "snowflake_matches_catalog"
_HOW = {"append": "appended", "replace": "rebuilt and swapped in", "merge": "merged on {keys}"}


class SnowflakeHop(Hop):
    name = "snowflake"
    requires = ("crawl",)
    resource_keys = frozenset({"landing", "glue", "snowflake"})
    kinds = frozenset({"snowflake"})
    tracks_schema = True
    pool = "snowflake"  # writers of this system share its pool (set a limit to cap concurrent writes)

    def __init__(self, glue_database: str, database: str, schema: str):
        self.glue_database, self.database, self.schema = glue_database, database, schema

    def covers(self, config: TableConfig) -> bool:
        return "snowflake" in config.targets

    def key(self, table: str) -> dg.AssetKey:
        return snowflake_key(self.database, self.schema, table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [glue_key(self.glue_database, table)]

    def table_name(self, table: str) -> str:
        return ".".join(snowflake_name(p) for p in (self.database, self.schema, table))

    def description(self, table: str, config: TableConfig) -> str:
        target = config.snowflake
        how = _HOW[target.write_mode].format(keys=list(target.merge_keys))
        return f"Snowflake table of {table}: {target.stage}-stage COPY INTO, {how} (never row INSERTs)."

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        key = self.key(table)
        return [
            dg.AssetCheckSpec(MATCHES_CATALOG, asset=key,
                              description="Snowflake columns (INFORMATION_SCHEMA) match the catalog's columns and types."),
            dg.AssetCheckSpec(ROWS_RECONCILE, asset=key, description="Catalog recordCount = Snowflake rows + quarantined rows."),
        ]

    def materialize(self, run: TableRun) -> Outcome:
        r = run.resources
        with r.snowflake.get_connection() as conn:
            report = load_table(r.landing, r.glue, conn, self.database, self.schema, run.table, run.config,
                                run_id=run.run_id)
        if report.rows_rejected:
            run.log("warning", f"{run.table}: {report.rows_rejected} rows rejected: {report.quarantine_keys}")
        for key, reason in report.files_failed.items():
            run.log("warning", f"{run.table}: {key} not loaded (retried next run): {reason}")
        return Outcome(load_metadata(report), report)

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        if not names & {MATCHES_CATALOG, ROWS_RECONCILE}:
            return []
        r, key, results = run.resources, self.key(run.table), []
        with r.snowflake.get_connection() as conn:
            if MATCHES_CATALOG in names:
                expected = {snowflake_name(c.name): c.snowflake_type for c in _expected_specs(r.glue.get_table(run.table))}
                actual = snowflake_columns(conn, self.database, self.schema, run.table)
                actual.pop(snowflake_name(ddl.SOURCE_KEY_COLUMN), None)
                found = drift.compare(expected, actual, drift.snowflake_same)
                level = "error" if (found.removed or found.retyped) else ("warn" if found.added else "ok")
                results.append(check_result(key, MATCHES_CATALOG, found, level))
            if ROWS_RECONCILE in names:
                rows, quarantined = snowflake_counts(conn, self.database, self.schema, run.table)
                count, ragged = record_count(r.glue, run.table)
                merged = run.config.snowflake.write_mode == "merge"
                uri = r.landing.uri(f"{QUARANTINE_ROOT}/snowflake/{run.table}/")
                results.append(reconcile(count, rows, quarantined, uri, merged=merged, ragged=ragged, asset_key=key))
        return results


def _expected_specs(entry) -> list[ddl.ColumnSpec]:
    if entry is None:
        return []
    specs = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    return specs + [ddl.ColumnSpec(k, "string", 255) for k in partition_keys_of(entry)]


def load_metadata(report: SnowflakeReport) -> dict:
    columns = [(c.name.upper(), c.snowflake_type, "") for c in report.columns]
    return table_metadata(report.qualified_name, report.rows_in_table, columns) | {
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
        "files_failed": dg.MetadataValue.json(report.files_failed),
        "files_failed_count": len(report.files_failed),
        "parts_staged": report.parts_staged,
        "batches": report.batches,
        "lock_wait_seconds": round(report.lock_wait_seconds, 3),
        "bytes_loaded": report.bytes_loaded,
        "seconds": round(report.seconds, 3),
        "rows_per_second": throughput(report.rows_loaded, report.seconds),
        "schema_changes": dg.MetadataValue.json(report.schema_changes),
        "ignored_columns": dg.MetadataValue.json(report.ignored_columns),
        "notes": dg.MetadataValue.json(report.notes),
    }
