"""Runs started from the command line: the named jobs, in this process, on the persistent instance.

``sf-platform materialize`` runs ``load_tables`` (then ``export_tables`` when exports are selected) in
the CLI's own process, recorded in ``DAGSTER_HOME`` with the same tags as sensor runs, so the UI shows
them like any other run. One process, one step: no step process to start.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
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


def materialize(
    keys: tuple[dg.AssetKey, ...], *, trigger: str = "cli", full_refresh: bool = False, watch: Watch | None = None
) -> list[RunOutcome]:
    """Run the named jobs over ``keys``: the chain first, then the exports. ``watch(job, run_id,
    layout)`` gives a context manager whose ``on_event`` hears each of the run's events as it is
    written (the CLI's progress display and log file)."""
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
        # The console logger stays quiet: the CLI shows progress and a summary, and writes the whole log
        # to a file (watch); a Dagster warning there is in that file.
        run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        if config is not None:
            run_config["ops"] = {"tables": {"config": config}}
        outcomes.append(_execute(job_name, job_keys, run_tags(tables, trigger), run_config, watch))
    return outcomes


@dataclass
class Layout:
    """Where a run's assets show in a progress table: asset key -> (table, hop), hops in chain order,
    and step key -> the (table, hop) pairs of steps that work on one table only."""

    cells: dict[dg.AssetKey, tuple[str, str]]
    hops: list[str]
    steps: dict[str, list[tuple[str, str]]]


def layout(job_name: str, keys: set[dg.AssetKey]) -> Layout:
    """The chain's assets by the hop that makes them (hop names as the step logs them); an export by
    its table, in an ``export`` and a ``catalog`` column."""
    from sf_platform.assets.tables import chain_hops
    from sf_platform.core.registry import load_registry
    from sf_platform.definitions import defs
    from sf_platform.settings import Settings

    cfg = Settings.from_env()
    registry = load_registry(cfg.tables_file)
    hops = chain_hops(registry, cfg)
    cells: dict[dg.AssetKey, tuple[str, str]] = {}
    for table, config in registry.tables.items():
        for hop in hops:
            if hop.covers(config) and hop.key(table) in keys:
                cells[hop.key(table)] = (table, hop.name)
    graph = defs.resolve_asset_graph()
    for key in sorted(keys - set(cells)):  # exports/<t> and the catalog entry of its folder
        if key.path[0] == "exports":
            cells[key] = (key.path[-1], "export")
        else:
            parent = next((p for p in graph.get(key).parent_keys if p.path[0] == "exports"), None)
            cells[key] = (parent.path[-1], "catalog") if parent else (key.path[-1], key.path[0])
    steps: dict[str, list[tuple[str, str]]] = {}
    for key, pair in cells.items():
        steps.setdefault(defs.resolve_assets_def(key).node_def.name, []).append(pair)
    steps = {s: pairs for s, pairs in steps.items() if len({t for t, _ in pairs}) == 1}
    names = [h.name for h in hops] + ["export", "catalog"]
    names += sorted({h for _, h in cells.values()} - set(names))
    return Layout(cells, names, steps)


Watch = Callable[[str, str, Layout], AbstractContextManager]


def _execute(job_name: str, keys: set[dg.AssetKey], tags: dict, run_config: dict, watch: Watch | None) -> RunOutcome:
    """``execute_job``, opened up: the run is created first so a listener hears every one of its events
    in this process (``DagsterInstance.add_event_listener``), with no polling of the event log."""
    from dagster._cli.workspace.cli_target import get_repository_python_origin_from_cli_opts
    from dagster._core.execution.api import _job_with_repository_load_data, execute_run
    from dagster._core.origin import JobPythonOrigin
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster_shared.cli import PythonPointerOpts

    origin = get_repository_python_origin_from_cli_opts(PythonPointerOpts(module_name=MODULE))
    job, load_data = _job_with_repository_load_data(recon_job_from_origin(JobPythonOrigin(job_name, repository_origin=origin)))
    definition = job.get_definition()
    with dg.DagsterInstance.get() as instance:
        run = instance.create_run_for_job(
            job_def=definition, run_config=run_config, tags={**definition.run_tags, **tags},
            job_code_origin=job.get_python_origin(), repository_load_data=load_data,
            asset_selection=frozenset(keys),
        )
        with watch(job_name, run.run_id, layout(job_name, keys)) if watch else nullcontext() as watcher:
            if watcher is not None:
                instance.add_event_listener(run.run_id, watcher.on_event)
            result = execute_run(job, run, instance, raise_on_error=False)
            if watcher is not None:
                watcher.catch_up(instance.all_logs(run.run_id))
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
