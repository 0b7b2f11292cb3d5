"""The Snowflake hop: one ``snowflake/<db>/<schema>/<table>`` table per table that targets Snowflake,
loaded from the table's hub (curated Iceberg) table, with its checks on the load's own connection:
``snowflake_matches_catalog`` (columns and types), ``rows_reconcile`` (Snowflake rows = the hub's rows at
the snapshot Snowflake holds) and ``schema_vs_previous``."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun, check_result
from sf_platform.assets.metadata import table_metadata, throughput
from sf_platform.assets.names import curated_key, snowflake_key
from sf_platform.checks.reconcile import ROWS_RECONCILE, reconcile_with_hub
from sf_platform.core import ddl, drift
from sf_platform.core.catalog import columns_of, partition_keys_of
from sf_platform.core.identifiers import snowflake_name
from sf_platform.core.registry import TableConfig
from sf_platform.hops.inspect import snowflake_columns

MATCHES_CATALOG = "snowflake_matches_catalog"
_HOW = {"append": "appended", "replace": "rebuilt and swapped in", "merge": "merged on {keys}"}


class SnowflakeHop(Hop):
    name = "snowflake"
    requires = ("curated",)
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
        return [curated_key(table)]

    def table_name(self, table: str) -> str:
        return ".".join(snowflake_name(p) for p in (self.database, self.schema, table))

    def description(self, table: str, config: TableConfig) -> str:
        target = config.snowflake
        how = _HOW[target.write_mode].format(keys=list(target.merge_keys))
        return (
            f"Snowflake table of {table}: COPY INTO of the hub's new Parquet data files ({target.stage} stage), "
            f"{how}; only the changes since the hub snapshot it holds (never row INSERTs)."
        )

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        key = self.key(table)
        return [
            dg.AssetCheckSpec(MATCHES_CATALOG, asset=key,
                              description="Snowflake columns (INFORMATION_SCHEMA) match the catalog's columns and types."),
            dg.AssetCheckSpec(ROWS_RECONCILE, asset=key,
                              description="Snowflake rows = the hub table's rows at the snapshot Snowflake holds "
                                          "(merge: at most as many)."),
        ]

    def materialize(self, run: TableRun) -> Outcome:
        from sf_platform.hops.snowflake_load import load_table
        from sf_platform.hub.catalog import Hub

        r = run.resources
        with r.snowflake.get_connection() as conn:
            report = load_table(Hub(r.landing, r.glue), r.landing, conn, self.database, self.schema, run.table,
                                run.config, run_id=run.run_id, full_refresh=run.step.full_refresh)
        if report.null_key_rows:
            run.log("warning", f"{run.table}: {report.null_key_rows} rows with an empty merge key were not merged")
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
                results.append(self._reconcile(run, conn, key))
        return results

    def _reconcile(self, run: TableRun, conn, key: dg.AssetKey) -> dg.AssetCheckResult:
        from sf_platform.hops.snowflake_load import loaded_state
        from sf_platform.hub.catalog import Hub

        state = loaded_state(conn, self.database, self.schema, run.table)
        hub = Hub(run.resources.landing, run.resources.glue)
        return reconcile_with_hub(
            key, "Snowflake", state.rows, state.snapshot_id,
            hub.rows_at(run.table, state.snapshot_id) if state.loaded else None,
            loaded=state.loaded, hub_rows_now=0 if state.loaded else hub.rows_now(run.table),
            merged=run.config.snowflake.write_mode == "merge",
        )


def _expected_specs(entry) -> list[ddl.ColumnSpec]:
    if entry is None:
        return []
    specs = [ddl.ColumnSpec(c.name, c.type, c.max_length) for c in columns_of(entry)]
    return specs + [ddl.ColumnSpec(k, "string", 255) for k in partition_keys_of(entry)]


def load_metadata(report) -> dict:
    columns = [(c.name.upper(), c.snowflake_type, "") for c in report.columns]
    return table_metadata(report.qualified_name, report.rows_in_table, columns) | {
        "write_mode": report.write_mode,
        "stage": report.stage_mode,
        "snapshot_id": str(report.snapshot_id),  # 64-bit: as text, exactly
        "previous_snapshot_id": str(report.previous_snapshot_id),
        "full": report.full,
        "up_to_date": report.up_to_date,
        "rows_inserted": report.rows_inserted,
        "rows_deleted": report.rows_deleted,
        "rows_updated": report.rows_updated,
        "rows_copied": report.rows_copied,
        "duplicate_key_rows": report.duplicate_key_rows,
        "null_key_rows": report.null_key_rows,
        "files_copied": report.files_copied,
        "swap_method": report.swap_method,
        "lock_wait_seconds": round(report.lock_wait_seconds, 3),
        "seconds": round(report.seconds, 3),
        "rows_per_second": throughput(report.rows_copied, report.seconds),
        "schema_changes": dg.MetadataValue.json(report.schema_changes),
        "notes": dg.MetadataValue.json(report.notes),
    }
