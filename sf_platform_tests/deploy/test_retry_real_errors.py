"""The table step's retry on real failures from the local stack's MySQL: a refused connection (2003) is
transient and retried, a wrong password (1045) is permanent and fails at once."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.landing import OrganizeHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core.registry import parse_registry
from sf_platform.local.stack import free_port
from sf_platform.resources.mysql import MySQLResource

pytestmark = pytest.mark.integration

REGISTRY = parse_registry({"tables": {"alpha": {"targets": ["mysql"]}}})


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("SF_STEP_RETRIES", "2")
    monkeypatch.setenv("SF_STEP_RETRY_SECONDS", "0")


def _run(landing, glue, mysql: MySQLResource) -> dg.ExecuteInProcessResult:
    landing.put("alpha/a1.csv", b"id,name\n1,a1\n")
    hops = [OrganizeHop(REGISTRY), CrawlHop(glue.database), MySQLHop(glue.database, mysql.database)]
    step = build_hop_assets("tables", hops, REGISTRY)
    return dg.materialize([step], resources={"landing": landing, "glue": glue, "mysql": mysql}, raise_on_error=False)


def _retries(result) -> int:
    return len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"])


def _failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    return "\n".join(filter(None, [error.message, error.cause.message if error.cause else ""]))


def test_a_refused_mysql_connection_is_retried(landing, glue, mysql):
    closed = MySQLResource(host="127.0.0.1", port=free_port(), user=mysql.user, password=mysql.password,
                           database=mysql.database)
    result = _run(landing, glue, closed)
    assert not result.success
    assert _retries(result) == 2, _failure(result)  # SF_STEP_RETRIES, then the step fails
    assert "2003" in _failure(result)


def test_a_wrong_mysql_password_is_not_retried(landing, glue, mysql):
    wrong = MySQLResource(host=mysql.host, port=mysql.port, user="sf_nobody", password="wrong",
                          database=mysql.database)
    result = _run(landing, glue, wrong)
    assert not result.success
    assert _retries(result) == 0
    assert "1045" in _failure(result)
