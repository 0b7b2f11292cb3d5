"""The Dagster definitions: every asset built from the table registry, with this deployment's resources."""

from __future__ import annotations

import dagster as dg

from sf_platform import arrow_memory, deployments
from sf_platform.assets.catalog import build_crawl_assets
from sf_platform.assets.curated import build_curated_assets
from sf_platform.assets.exports import build_export_assets
from sf_platform.assets.landing import build_organize_asset, landing_spec
from sf_platform.assets.mysql import build_mysql_assets
from sf_platform.assets.snowflake import build_snowflake_assets
from sf_platform.checks.reconcile import build_reconcile_checks
from sf_platform.checks.schema import build_schema_checks
from sf_platform.core.registry import load_registry
from sf_platform.sensors.landing import build_landing_sensor
from sf_platform.settings import Settings

# Steps run in child processes forked from a server that has already imported dagster and this
# package, so a step starts in a fraction of a second instead of re-importing everything.
EXECUTOR = dg.multiprocess_executor.configured(
    {"max_concurrent": 4, "start_method": {"forkserver": {"preload_modules": ["sf_platform.definitions"]}}}
)


arrow_memory.use_returning_pool()  # every run process loads this module: its Arrow memory is returned


def build_definitions(cfg: Settings | None = None) -> dg.Definitions:
    cfg = cfg or Settings.from_env()
    registry = load_registry(cfg.tables_file)
    assets = [
        landing_spec(),
        build_organize_asset(registry),
        *build_crawl_assets(registry, cfg.glue_database),
        *build_mysql_assets(registry, cfg.glue_database, cfg.mysql_database),
        *build_snowflake_assets(registry, cfg.glue_database, cfg.snowflake_database, cfg.snowflake_schema),
        *build_export_assets(registry, cfg),
        *build_curated_assets(registry, cfg),
    ]
    checks = [
        *build_schema_checks(
            registry, cfg.glue_database, cfg.mysql_database, cfg.snowflake_database, cfg.snowflake_schema
        ),
        *build_reconcile_checks(registry, cfg.mysql_database, cfg.snowflake_database, cfg.snowflake_schema),
    ]
    return dg.Definitions(
        assets=assets,
        executor=EXECUTOR,
        asset_checks=checks,
        sensors=[build_landing_sensor(registry)],
        resources=deployments.resources(cfg),
    )


defs = build_definitions()
