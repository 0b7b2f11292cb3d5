"""One step for many tables: the frame every table asset is built on.

A *hop* (organize, crawl, curated, MySQL, Snowflake) knows how to bring one table one step further and
which checks judge the result. ``build_table_step`` turns a list of hops into ONE subsettable
multi-asset: one step per run, whatever the number of tables and checks, so a run's cost is its data,
not its process start-ups (a step costs about a second of start-up and Dagster bookkeeping; the demo
had 61 of them). Inside the step each table runs its hops one after another, each after the hops it
``requires`` (``in_requires_order``: whatever order a caller lists them in, so any subset of hops or
assets works), with the tables on a small thread pool (the hops wait on S3, MySQL and Snowflake far more
than they compute); a table's checks are evaluated right after its materialization and yielded with it.

One table's failure never blocks another's: a hop that fails marks that table's later hops skipped,
every other table goes on, and the step fails at the end naming each failed table, hop and reason
(the failed assets show as failed in the UI; the others are materialized and checked). Selecting only
checks in the UI evaluates them without materializing anything.
"""


import contextlib
import functools
import gc
import inspect
import logging
import queue
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from sf_platform import settings
from sf_platform.assets.names import run_tags
from sf_platform.assets.pools import pool_slot
from sf_platform.core import drift
from sf_platform.core.registry import Registry, TableConfig

SCHEMA_VS_PREVIOUS = "schema_vs_previous"

# (table, hop) started / failed / skipped, as plain log records with ``extra`` fields sf_table, sf_hop,
# sf_state and sf_reason, for a listener in the run's own process (the CLI's live table): nothing is
# written to the event log, and nothing at all when no one listens.
PROGRESS = logging.getLogger("sf_platform.progress")


class StepConfig(dg.Config):
    # MySQL and Snowflake: load the hub's whole table into a new table and swap it in atomically, instead
    # of only the changes since the snapshot they hold
    full_refresh: bool = False


@dataclass
class TableRun:
    """What a hop sees of the step while it works on one table."""

    table: str
    config: TableConfig
    resources: Any
    run_id: str
    step: StepConfig
    log: Callable[[str, str], None]  # (level, message), written to the step's log in order
    prepared: Mapping[str, Any] = field(default_factory=dict)  # hop name -> what its prepare() returned
    instance: Any = None
    dagster_run: Any = None


@dataclass
class Outcome:
    """A hop's work on one table: the materialization's metadata, what checks need, and whether the
    table's later hops may run (False after a failed blocking check)."""

    metadata: dict
    report: Any = None
    proceed: bool = True


class Hop:
    """One hop of the chain; subclasses fill in the table-specific parts."""

    name: str = ""
    requires: tuple[str, ...] = ()  # hops that must have succeeded for the same table first
    resource_keys: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    tracks_schema = False  # adds the schema_vs_previous check
    pool: str | None = None  # the Dagster pool a materialization of this hop holds a slot of

    def covers(self, config: TableConfig) -> bool:
        return True

    def key(self, table: str) -> dg.AssetKey:
        raise NotImplementedError

    def deps(self, table: str) -> list[dg.AssetKey]:
        raise NotImplementedError

    def description(self, table: str, config: TableConfig) -> str:
        raise NotImplementedError

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        """The hop's own checks (schema_vs_previous is added by the frame)."""
        return []

    def prepare(self, resources: Any, tables: list[str], log: Callable[[str, str], None]) -> Any:
        """Work done once for all the step's tables before any table starts (organize's moves); what
        it returns reaches ``materialize`` as ``run.prepared[hop.name]`` (hops hold no run state: two
        runs in one process share them)."""
        return None

    def materialize(self, run: TableRun) -> Outcome:
        raise NotImplementedError

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        """Results of the hop's own checks ``names``; ``outcome`` is None when they run on their own."""
        return []

    # ---- what the frame builds from the above

    def table_name(self, table: str) -> str:
        """The physical table's name (``dagster/table_name``), known before any run."""
        return ""

    def spec(self, table: str, config: TableConfig, group: str) -> dg.AssetSpec:
        description = self.description(table, config)
        if config.description and config.description not in description:
            description = f"{config.description}\n\n{description}"
        metadata = {"dagster/code_references": _code_reference(type(self))}
        if self.table_name(table):
            metadata["dagster/table_name"] = self.table_name(table)
        tags = {**{f"sf/{k}": v for k, v in config.tags.items()}, "sf/table": table}
        return dg.AssetSpec(
            self.key(table), deps=self.deps(table), kinds=set(self.kinds), group_name=group,
            description=description, skippable=True, tags=tags, owners=list(config.owners), metadata=metadata,
        )

    def check_specs(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        specs = self.checks(table, config)
        if self.tracks_schema:
            specs.append(dg.AssetCheckSpec(
                SCHEMA_VS_PREVIOUS, asset=self.key(table),
                description="Column schema of this materialization vs the previous one (added/removed/retyped).",
            ))
        return specs


@functools.cache
def _code_reference(cls: type) -> dg.CodeReferencesMetadataValue:
    """Where a hop's code is: the UI links each asset to it."""
    return dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(
        file_path=inspect.getsourcefile(cls), line_number=inspect.getsourcelines(cls)[1], label=f"{cls.__name__}",
    )])


def build_table_step(
    name: str, hops: list[Hop], registry: Registry, groups: Mapping[str, str], *, description: str = ""
) -> dg.AssetsDefinition:
    """One subsettable multi-asset over every (table, hop) pair the registry asks for."""
    hops = in_requires_order(hops)
    with _gc_paused():
        specs, check_specs, where = [], [], {}
        for table, config in registry.tables.items():
            for hop in hops:
                if hop.covers(config):
                    specs.append(hop.spec(table, config, groups[hop.name]))
                    check_specs += hop.check_specs(table, config)
                    where[hop.key(table)] = (hop, table)
        resource_keys = set().union(*(h.resource_keys for h in hops))
        _check_targets(name, check_specs, where)

        @dg.multi_asset(
            name=name, specs=specs, check_specs=check_specs, can_subset=True,
            required_resource_keys=resource_keys, description=description or None,
            # Dagster's own version of _check_targets looks each check's asset up in a list: 9,700 checks
            # x 4,900 assets cost 0.67 s CPU of a 1,000-table registry's definitions (bench_registry.py)
            allow_arbitrary_check_specs=True,
        )
        def table_step(context: dg.AssetExecutionContext, config: StepConfig):
            yield from _run(context, config, hops, registry, where)

    return table_step


def in_requires_order(hops: Sequence[Hop]) -> list[Hop]:
    """``hops`` with each after the hops it ``requires`` (those among ``hops``; the others belong to
    another step), otherwise in the order given: a stable topological order. A cycle is a definition
    error naming the hops left waiting."""
    present = {h.name for h in hops}
    ordered: list[Hop] = []
    waiting = list(hops)
    while waiting:
        placed = {h.name for h in ordered}
        ready = next((h for h in waiting if all(r in placed or r not in present for r in h.requires)), None)
        if ready is None:
            raise dg.DagsterInvalidDefinitionError(
                "hops whose requires can never be met (a cycle): "
                + "; ".join(f"{h.name} requires {', '.join(h.requires)}" for h in waiting)
            )
        waiting.remove(ready)
        ordered.append(ready)
    return ordered


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a step's specs are built: nothing built is garbage, and the
    collections its ~100,000 allocations per 1,000 tables trigger walk them again and again (0.35 s of
    1.5 s CPU building a 1,000-table registry's step, bench_registry.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_targets(step: str, check_specs: list[dg.AssetCheckSpec], where: Mapping[dg.AssetKey, Any]) -> None:
    """Every check is on an asset of the step (what Dagster checks unless told not to, in a set here)."""
    stray = sorted({s.asset_key.to_user_string() for s in check_specs if s.asset_key not in where})
    if stray:
        raise dg.DagsterInvalidDefinitionError(f"step {step}: checks on assets it does not define: {stray}")


@dataclass
class _Work:
    """What the step does for one table: per hop, whether to materialize it and which checks to run."""

    table: str
    hops: list[tuple[Hop, bool, set[str]]] = field(default_factory=list)


def _plan(context: dg.AssetExecutionContext, hops: list[Hop], where: dict) -> dict[str, _Work]:
    selected = set(context.selected_asset_keys)
    checks_by_key: dict[dg.AssetKey, set[str]] = {}
    for check_key in context.selected_asset_check_keys:
        checks_by_key.setdefault(check_key.asset_key, set()).add(check_key.name)
    work: dict[str, _Work] = {}
    for hop in hops:  # in requires order
        for key, (owner, table) in where.items():
            if owner is not hop or (key not in selected and key not in checks_by_key):
                continue
            work.setdefault(table, _Work(table)).hops.append((hop, key in selected, checks_by_key.get(key, set())))
    return work


def _run(context, step: StepConfig, hops: list[Hop], registry: Registry, where: dict) -> Iterator:
    work = _plan(context, hops, where)
    if "sf/table" not in context.run.tags:  # launched from the UI: tag it like sensor and CLI runs
        context.instance.add_run_tags(context.run_id, run_tags(sorted(work), "manual"))
    events: queue.Queue = queue.Queue()

    def log(level: str, message: str) -> None:
        events.put(("log", level, message))

    previous = _previous_schemas(context, work)
    prepared = {}
    for hop in hops:
        tables = [t for t, w in work.items() if any(h is hop and m for h, m, _ in w.hops)]
        if tables:
            prepared[hop.name] = hop.prepare(context.resources, tables, lambda level, msg: getattr(context.log, level)(msg))
    failures: dict[str, str] = {}

    def run_table(w: _Work) -> None:
        run = TableRun(w.table, registry.tables[w.table], context.resources, context.run_id, step, log, prepared,
                       context.instance, context.run)
        done: set[str] = set()
        for hop, materialize, check_names in w.hops:
            missing = [r for r in hop.requires if r in {h.name for h, m, _ in w.hops if m} and r not in done]
            if missing:
                log("warning", f"{w.table}: {hop.name} skipped: {', '.join(missing)} did not complete")
                _progress(w.table, hop.name, "skipped", f"{', '.join(missing)} did not complete")
                continue
            _progress(w.table, hop.name, "running")
            try:
                results = _evaluate(hop, run, materialize, check_names, previous)
            except Exception as exc:  # one table's failure is reported and never stops the others
                failures[f"{w.table} ({hop.name})"] = f"{type(exc).__name__}: {exc}"
                log("error", f"{w.table}: {hop.name} failed: {exc}\n{traceback.format_exc()}")
                _progress(w.table, hop.name, "failed", f"{type(exc).__name__}: {exc}")
                continue
            events.put(("result", results))
            if results.proceed:
                done.add(hop.name)

    threads = max(1, int(settings.get("SF_TABLE_THREADS")))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sf-table") as pool:
        futures = [pool.submit(run_table, w) for w in work.values()]
        while not (all(f.done() for f in futures) and events.empty()):
            try:
                item = events.get(timeout=0.1)
            except queue.Empty:
                continue
            if item[0] == "log":
                getattr(context.log, item[1])(item[2])
            else:
                yield from item[1]
        for f in futures:
            f.result()
    if failures:
        failure = dg.Failure(
            description=f"{len(failures)} of {len(work)} tables failed: "
            + "; ".join(f"{where}: {why}" for where, why in sorted(failures.items())),
            metadata={"failed": dg.MetadataValue.json(failures)},
        )
        # Retry the step (which redoes only unfinished work: the ledgers) only when every failed table
        # failed transiently (connection lost, throttled, lock wait, deadlock); never for bad
        # credentials or bad DDL. Backoff doubles from SF_STEP_RETRY_SECONDS.
        from sf_platform.core import transient

        retries = int(settings.get("SF_STEP_RETRIES"))
        if retries > 0 and transient.all_transient(failures.values()):
            attempt = getattr(context, "retry_number", 0)
            wait = float(settings.get("SF_STEP_RETRY_SECONDS")) * 2 ** attempt
            context.log.warning(
                f"every failure is transient; retry {attempt + 1} of {retries} in {wait:.0f} s: {failure.description}"
            )
            raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from failure
        raise failure


def _progress(table: str, hop: str, state: str, reason: str = "") -> None:
    PROGRESS.debug("%s: %s %s", table, hop, state, extra={"sf_table": table, "sf_hop": hop, "sf_state": state, "sf_reason": reason})


class _Results(list):
    """The events of one (table, hop): a materialization with its checks, or check results alone;
    ``proceed`` is False when the table's later hops must not run (a failed blocking check)."""

    proceed = True


def _evaluate(hop: Hop, run: TableRun, materialize: bool, names: set[str], previous: dict) -> _Results:
    key = hop.key(run.table)
    own = names - {SCHEMA_VS_PREVIOUS}
    results = _Results()
    if not materialize:
        results += hop.evaluate(run, own, None)
        if SCHEMA_VS_PREVIOUS in names:
            results.append(_vs_previous(key, *previous.get(("pair", key), (None, None))))
        return results
    if hop.pool and run.instance is not None:
        with pool_slot(run.instance, run.dagster_run, hop.pool, f"tables[{hop.name}:{run.table}]", run.log):
            outcome = _timed(hop, run)
    else:
        outcome = _timed(hop, run)
    checks = hop.evaluate(run, own, outcome)
    if hop.tracks_schema and SCHEMA_VS_PREVIOUS in names:
        checks.append(_vs_previous(key, previous.get(key), _schema_of(outcome.metadata)))
    results.append(dg.MaterializeResult(asset_key=key, metadata=outcome.metadata, check_results=checks))
    results.proceed = outcome.proceed
    return results


def _timed(hop: Hop, run: TableRun) -> Outcome:
    """The hop's materialization, with when it started and ended (the events are written later, by
    the step's thread)."""
    started = time.time()
    outcome = hop.materialize(run)
    outcome.metadata = {**outcome.metadata, "started_at": dg.MetadataValue.timestamp(started),
                        "finished_at": dg.MetadataValue.timestamp(time.time())}
    return outcome


def _previous_schemas(context, work: dict[str, _Work]) -> dict:
    """Column schemas of the last materializations, read once in the step's own thread: key -> schema
    for assets to materialize, ("pair", key) -> (older, newer) for schema checks run on their own."""
    out: dict = {}
    materialize = [h.key(w.table) for w in work.values() for h, m, _ in w.hops if m and h.tracks_schema]
    if materialize:
        latest = context.instance.get_latest_materialization_events(materialize)
        out.update({k: _schema_of_event(e) for k, e in latest.items()})
    for w in work.values():
        for hop, m, names in w.hops:
            if not m and SCHEMA_VS_PREVIOUS in names:
                key = hop.key(w.table)
                records = context.instance.fetch_materializations(key, limit=2).records
                schemas = [_schema_of_event(r.event_log_entry) for r in records]
                out[("pair", key)] = (schemas[1] if len(schemas) > 1 else None, schemas[0] if schemas else None)
    return out


def _schema_of_event(entry) -> dict[str, str] | None:
    materialization = entry.asset_materialization if entry else None
    return _schema_of(materialization.metadata) if materialization else None


def _schema_of(metadata: Mapping) -> dict[str, str] | None:
    value = metadata.get("dagster/column_schema")
    schema = getattr(value, "value", value)
    if schema is None:
        return None
    return {c.name: c.type for c in schema.columns}


def _vs_previous(key: dg.AssetKey, before: dict | None, now: dict | None) -> dg.AssetCheckResult:
    if before is None or now is None:
        return dg.AssetCheckResult(
            asset_key=key, check_name=SCHEMA_VS_PREVIOUS, passed=True,
            description="first materialization: nothing to compare",
        )
    found = drift.compare(before, now)
    return check_result(key, SCHEMA_VS_PREVIOUS, found, "ok" if found.empty else "warn")


_SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def check_result(key: dg.AssetKey, name: str, found: drift.Drift, level: str, **metadata) -> dg.AssetCheckResult:
    """A drift check's result: passed when ``level`` is "ok"; a one-line description of the drift and
    the columns as a readable table besides the JSON lists."""
    return dg.AssetCheckResult(
        asset_key=key, check_name=name,
        passed=level == "ok",
        severity=_SEVERITY.get(level, dg.AssetCheckSeverity.WARN),
        description=found.summary(),
        metadata={**found.as_metadata(), **metadata},
    )
