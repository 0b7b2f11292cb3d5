"""Runs started from the command line: the named jobs, in this process, on the persistent instance.

``sf-platform materialize`` runs ``load_tables`` (then ``export_tables`` when exports are selected) in
the CLI's own process, recorded in ``DAGSTER_HOME`` with the same tags as sensor runs, so the UI shows
them like any other run. One process, one step: no step process to start.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import dagster as dg

MODULE = "sf_platform.definitions"


class SelectionError(ValueError):
    """The selection names nothing the platform has; the message says what exists."""


@dataclass
class RunOutcome:
    job: str
    run_id: str
    success: bool
    materialized: dict[str, dict] = field(default_factory=dict)  # asset key -> metadata
    checks: int = 0
    failed_checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def resolve(select: str, tables: list[str]) -> tuple[dg.AssetKey, ...]:
    """Asset keys of ``--select`` (Dagster's selection syntax) or of ``--table`` names."""
    from sf_platform.definitions import defs

    graph = defs.resolve_asset_graph()
    known = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "s3"}
    if tables:
        for table in tables:
            if table not in known:
                close = difflib.get_close_matches(table, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(sorted(known))}"
                raise SelectionError(f"unknown table {table!r}{hint}")
        return tuple(k for k in graph.get_all_asset_keys() if k.path[-1] in tables and k.path[0] != "exports")
    try:
        keys = dg.AssetSelection.from_coercible(select.split(",")).resolve(graph)
    except Exception as exc:  # Dagster names the unknown key
        raise SelectionError(f"--select {select!r}: {exc}".splitlines()[0]) from None
    return tuple(keys)


def materialize(keys: tuple[dg.AssetKey, ...], *, trigger: str = "cli", full_refresh: bool = False) -> list[RunOutcome]:
    """Run the named jobs over ``keys``: the chain first, then the exports."""
    from sf_platform.assets.names import run_tags
    from sf_platform.definitions import EXPORT_JOB, LOAD_JOB, defs

    outcomes = []
    for job_name, config in ((LOAD_JOB, {"full_refresh": full_refresh}), (EXPORT_JOB, None)):
        if job_name not in {j.name for j in defs.jobs or ()}:
            continue
        graph = defs.resolve_job_def(job_name).asset_layer.asset_graph
        job_keys = {k for k in keys if graph.has(k) and graph.get(k).is_executable and graph.get(k).is_materializable}
        if not job_keys:
            continue
        tables = sorted({k.path[-1] for k in job_keys})
        run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        if config is not None:
            run_config["ops"] = {"tables": {"config": config}}
        outcomes.append(_execute(job_name, job_keys, run_tags(tables, trigger), run_config))
    return outcomes


def _execute(job_name: str, keys: set[dg.AssetKey], tags: dict, run_config: dict) -> RunOutcome:
    from dagster._cli.workspace.cli_target import get_repository_python_origin_from_cli_opts
    from dagster._core.execution.api import execute_job
    from dagster._core.origin import JobPythonOrigin
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster_shared.cli import PythonPointerOpts

    origin = get_repository_python_origin_from_cli_opts(PythonPointerOpts(module_name=MODULE))
    job = recon_job_from_origin(JobPythonOrigin(job_name, repository_origin=origin))
    with dg.DagsterInstance.get() as instance:
        result = execute_job(job, instance=instance, asset_selection=sorted(keys), tags=tags, run_config=run_config)
        outcome = RunOutcome(job_name, result.run_id, result.success)
        for event in result.all_events:
            if event.is_step_materialization:
                m = event.step_materialization_data.materialization
                outcome.materialized[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                ev = event.event_specific_data
                outcome.checks += 1
                if not ev.passed:
                    outcome.failed_checks.append(
                        f"{ev.asset_key.to_user_string()} {ev.check_name}: {ev.description or ev.severity.value}"
                    )
            elif event.is_step_failure:
                error = event.step_failure_data.error
                outcome.errors.append(error.message.strip() if error else "step failed")
    return outcome
