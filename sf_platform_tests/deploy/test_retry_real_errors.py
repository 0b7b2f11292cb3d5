"""The table step's retry on real failures from the local stack's MySQL: a refused connection (2003) is
transient and retried, a wrong password (1045) is permanent and fails at once. The step is the real
chain's (``chain_hops``: organize, crawl, curated, then MySQL loading from the hub), so the failure comes
from the MySQL load after the hub was curated, as in a deployment."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.names import curated_key
from sf_platform.assets.tables import build_hop_assets, chain_hops
from sf_platform.core.registry import parse_registry
from sf_platform.local.stack import free_port
from sf_platform.resources.mysql import MySQLResource
from sf_platform.settings import Settings

pytestmark = pytest.mark.integration

REGISTRY = parse_registry({"tables": {"alpha": {"targets": ["mysql"]}}})


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("SF_STEP_RETRIES", "2")
    monkeypatch.setenv("SF_STEP_RETRY_SECONDS", "0")
    monkeypatch.delenv("SF_GLUE_CURATED_DATABASE", raising=False)  # the hub in <glue db>_curated


def _run(landing, glue, mysql: MySQLResource, tmp_path) -> dg.ExecuteInProcessResult:
    landing.put("alpha/a1.csv", b"id,name\n1,a1\n")
    cfg = Settings(
        env="local", tables_file=tmp_path / "tables.yaml", state_dir=tmp_path, landing_bucket=landing.bucket,
        glue_database=glue.database, mysql_database=mysql.database, snowflake_database="SF_DEMO",
        snowflake_schema="RAW",
    )
    # The chain's hops that cover the table (Snowflake does not: its resource is not needed).
    hops = [h for h in chain_hops(REGISTRY, cfg) if h.covers(REGISTRY.table("alpha"))]
    assert [h.name for h in hops] == ["organize", "crawl", "curated", "mysql"]
    step = build_hop_assets("tables", hops, REGISTRY)
    return dg.materialize([step], resources={"landing": landing, "glue": glue, "mysql": mysql}, raise_on_error=False)


def _curated(result) -> bool:
    return any(e.asset_key == curated_key("alpha") for e in result.get_asset_materialization_events())


def _retries(result) -> int:
    return len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"])


def _failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    return "\n".join(filter(None, [error.message, error.cause.message if error.cause else ""]))


def test_a_refused_mysql_connection_is_retried(landing, glue, mysql, tmp_path):
    closed = MySQLResource(host="127.0.0.1", port=free_port(), user=mysql.user, password=mysql.password,
                           database=mysql.database)
    result = _run(landing, glue, closed, tmp_path)
    assert not result.success
    assert _curated(result)  # the hub was curated; the MySQL load from it is what failed
    assert _retries(result) == 2, _failure(result)  # SF_STEP_RETRIES, then the step fails
    assert "2003" in _failure(result)


def test_a_wrong_mysql_password_is_not_retried(landing, glue, mysql, tmp_path):
    wrong = MySQLResource(host=mysql.host, port=mysql.port, user="sf_nobody", password="wrong",
                          database=mysql.database)
    result = _run(landing, glue, wrong, tmp_path)
    assert not result.success
    assert _curated(result)
    assert _retries(result) == 0
    assert "1045" in _failure(result)
