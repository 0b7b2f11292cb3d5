"""The Dagster definitions: every asset built from the table registry, with this deployment's resources.

Named jobs: ``load_tables`` (the chain of every table: one step per run, see ``assets/hop.py``) and
``export_tables`` (the Snowflake exports). By default both run in the run's own process (in-process
executor): a run is one or two steps, so a step process per step would only add start-up time. A
deployment picks another executor with ``SF_EXECUTOR`` (``deployments.executor``: Celery workers, a
Kubernetes Job per step).
"""

from __future__ import annotations

import gc

import dagster as dg

from sf_platform import arrow_memory, deployments
from sf_platform.assets.exports import build_export_assets
from sf_platform.assets.landing import landing_spec
from sf_platform.assets.tables import build_table_assets
from sf_platform.core.registry import load_registry
from sf_platform.sensors.landing import build_landing_sensor
from sf_platform.settings import Settings

LOAD_JOB = "load_tables"
EXPORT_JOB = "export_tables"

arrow_memory.use_returning_pool()  # every run process loads this module: its Arrow memory is returned


def build_definitions(cfg: Settings | None = None) -> dg.Definitions:
    cfg = cfg or Settings.from_env()
    registry = load_registry(cfg.tables_file)
    tables = build_table_assets(registry, cfg)
    executor = deployments.executor(cfg)
    exports = build_export_assets(registry, cfg)
    load_job = dg.define_asset_job(
        LOAD_JOB, selection=dg.AssetSelection.assets(tables), executor_def=executor,
        description="Landed files of the selected tables to the catalog, MySQL, Snowflake and curated.",
    )
    jobs = [load_job]
    if any(isinstance(a, dg.AssetsDefinition) for a in exports):
        jobs.append(dg.define_asset_job(
            EXPORT_JOB, selection=dg.AssetSelection.groups("exports"), executor_def=executor,
            description="Snowflake tables matching the registry's exports pattern, to S3 and the catalog.",
        ))
    return dg.Definitions(
        assets=[landing_spec(), tables, *exports],
        jobs=jobs,
        executor=executor,
        sensors=[build_landing_sensor(registry, LOAD_JOB)],
        resources=deployments.resources(cfg),
    )


defs = build_definitions()
# The code location's objects live as long as its process: frozen out of the garbage collector's
# generations, later collections stop walking them (resolving a 1,000-table registry's repository and
# jobs: 2.5 -> 1.6 s CPU, bench/bench_registry.py). Only here, not in build_definitions (tests build many).
gc.freeze()
