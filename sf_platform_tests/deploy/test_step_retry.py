"""The table step retries itself only when every failed table failed transiently (core.transient).

A stand-in hop fails on purpose: a lost MySQL connection is retried (and the retry loads), a bad
password is not, nor is a mix of both. Runs in process on an ephemeral instance: no service needed.
"""

from __future__ import annotations

import dagster as dg
import pymysql
import pytest

from sf_platform.assets.hop import Hop, Outcome, build_table_step
from sf_platform.core.registry import parse_registry

REGISTRY = parse_registry({"tables": {"alpha": {"targets": ["mysql"]}, "beta": {"targets": ["mysql"]}}})


class ScriptedHop(Hop):
    """Raises the next scripted error for a table on each attempt, then succeeds."""

    name = "scripted"

    def __init__(self, script: dict[str, list[Exception]]):
        self.script = {t: list(errors) for t, errors in script.items()}
        self.attempts: dict[str, int] = {}

    def key(self, table):
        return dg.AssetKey(["scripted", table])

    def deps(self, table):
        return []

    def description(self, table, config):
        return f"scripted {table}"

    def materialize(self, run):
        self.attempts[run.table] = self.attempts.get(run.table, 0) + 1
        errors = self.script.get(run.table) or []
        if errors:
            raise errors.pop(0)
        return Outcome(metadata={"rows": 1})


def _groups():
    return {"scripted": "scripted"}


def _run(hop: ScriptedHop) -> dg.ExecuteInProcessResult:
    step = build_table_step("tables", [hop], REGISTRY, _groups())
    job = dg.define_asset_job("load", selection=[step]).resolve(asset_graph=dg.Definitions(assets=[step]).resolve_asset_graph())
    return job.execute_in_process(raise_on_error=False)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("SF_STEP_RETRIES", "2")
    monkeypatch.setenv("SF_STEP_RETRY_SECONDS", "0")


def _lost():
    return pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")


def _denied():
    return pymysql.err.OperationalError(1045, "Access denied for user 'loader'@'10.0.0.2' (using password: YES)")


def test_a_lost_connection_is_retried_and_the_retry_loads():
    hop = ScriptedHop({"alpha": [_lost()]})
    result = _run(hop)
    assert result.success
    assert hop.attempts == {"alpha": 2, "beta": 2}  # the step reruns; the ledgers make that cheap
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1


def test_retries_stop_after_the_limit():
    hop = ScriptedHop({"alpha": [_lost(), _lost(), _lost(), _lost()]})
    result = _run(hop)
    assert not result.success
    assert hop.attempts["alpha"] == 3  # the first try and SF_STEP_RETRIES=2 retries


def test_bad_credentials_are_not_retried():
    hop = ScriptedHop({"alpha": [_denied()]})
    result = _run(hop)
    assert not result.success
    assert hop.attempts == {"alpha": 1, "beta": 1}
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_permanent_failure_beside_a_transient_one_is_not_retried():
    hop = ScriptedHop({"alpha": [_lost()], "beta": [_denied()]})
    result = _run(hop)
    assert not result.success
    assert hop.attempts == {"alpha": 1, "beta": 1}
