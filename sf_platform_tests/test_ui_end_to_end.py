"""The UI path for real: `dagster dev` (webserver + daemon) on the local stack, driven over GraphQL.

Materialize everything through DagsterGraphQLClient, drop a new file and let the sensor carry it to
MySQL and Snowflake, then drop a file with an extra column and see the drift check warn.
Run alone with `pytest -m e2e sf_platform_tests/test_ui_end_to_end.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from sf_platform.core import demo_data
from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.local import dagster_home
from sf_platform.local.stack import free_port
from sf_platform.runtime import open_resources, seed_demo
from sf_platform.settings import Settings
from sf_platform_tests.ui_support import graphql as _graphql
from sf_platform_tests.ui_support import wait_for_location as _wait_for_location
from sf_platform_tests.ui_support import wait_for_run as _wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

NEW_MEMBERS = "MEMBER_ID,MEMBER_NAME,SCHOOL_CODE,BIRTH_DATE,JOINED_AT,EMAIL\n" + "".join(
    f"{5000 + i},신입{i},0001234,2010-01-0{i + 1},2025-09-01 09:00:0{i},new{i}@example.kr\n" for i in range(7)
)
DRIFTED_MEMBERS = "MEMBER_ID,MEMBER_NAME,SCHOOL_CODE,BIRTH_DATE,JOINED_AT,EMAIL,GRADE_LEVEL\n" + "".join(
    f"{6000 + i},전학생{i},0001234,2011-02-0{i + 1},2025-09-02 10:00:0{i},,{i + 1}\n" for i in range(3)
)

CHECK_QUERY = """
query Checks($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 10) {
    runId
    status
    evaluation { success severity metadataEntries { label ... on JsonMetadataEntry { jsonString } } }
  }
}
"""


@pytest.fixture()
def ui(stack_env, tmp_path, monkeypatch):
    """`dagster dev` on its own names (bucket, databases), a free port and a fresh DAGSTER_HOME."""
    run = uuid.uuid4().hex[:8]
    names = {
        "SF_LANDING_BUCKET": f"sf-ui-{run}",
        "SF_GLUE_DATABASE": f"sf_ui_{run}",
        "SF_MYSQL_DATABASE": f"sf_ui_{run}",
        "SF_SNOWFLAKE_DATABASE": f"SF_UI_{run.upper()}",
        "SF_SENSOR_INTERVAL_SECONDS": "5",
        "DAGSTER_HOME": str(dagster_home.prepare(tmp_path / "dagster_home")),
    }
    for key, value in names.items():
        monkeypatch.setenv(key, value)
    cfg = Settings.from_env()
    with open_resources(cfg) as r:
        r.mysql.ensure_database()
    port = free_port()
    # Dagster reads `.env` from the working directory over the environment; a developer's repo-root
    # .env must not redirect this test, so run from tmp_path with a workspace file of its own.
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: sf_platform.definitions\n"
        f"      working_directory: {tmp_path}\n"
    )
    log = open(tmp_path / "dagster_dev.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        location = _wait_for_location(port, proc, tmp_path / "dagster_dev.log")
        yield client, location, cfg, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        with open_resources(cfg) as r:
            r.mysql.fetch_all(f"DROP DATABASE IF EXISTS `{cfg.mysql_database}`")


def _counts(cfg: Settings, table: str) -> tuple[int, int]:
    with open_resources(cfg) as r:
        mysql_rows = r.mysql.fetch_all(f"SELECT COUNT(*) FROM `{cfg.mysql_database}`.`{table}`")[0][0]
        with r.snowflake.get_connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {snowflake_table_ref(cfg.snowflake_database, cfg.snowflake_schema, table)}")
            return int(mysql_rows), int(cur.fetchone()[0])


def _wait_for_counts(cfg: Settings, table: str, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = _counts(cfg, table)
        except Exception:  # the table may not exist yet while the first run is going
            seen = None
        if seen == (expected, expected):
            return
        time.sleep(3)
    raise AssertionError(f"{table}: expected {expected} rows in MySQL and Snowflake, last saw {seen}")


def test_materialize_sensor_and_drift_check_through_the_ui(ui):
    client, location, cfg, port = ui
    expected = Counter()
    for f in demo_data.generate():
        expected[f.table] += f.rows
    seed_demo(cfg)

    # 1. Materialize every table (with its checks) through the GraphQL client: the named job.
    try:
        run_id = client.submit_job_execution(
            "load_tables", repository_location_name=location, repository_name="__repository__"
        )
    except DagsterGraphQLClientError as exc:
        pytest.fail(f"could not launch the asset job: {exc}")
    assert _wait_for_run(client, run_id) == "SUCCESS"
    for table, rows in expected.items():
        assert _counts(cfg, table) == (rows, rows), table

    # 2. A new file lands: the sensor runs the member chain with no manual step.
    with open_resources(cfg) as r:
        r.landing.put("MEMBER_202509011200.csv", NEW_MEMBERS.encode())
    _wait_for_counts(cfg, "member", expected["member"] + 7)

    # 3. A file with an extra column lands: the chain loads it and the drift check warns.
    with open_resources(cfg) as r:
        r.landing.put("MEMBER_202509021200.csv", DRIFTED_MEMBERS.encode())
    _wait_for_counts(cfg, "member", expected["member"] + 10)
    key = {"path": ["glue", cfg.glue_database, "member"]}
    deadline = time.monotonic() + 120
    evaluations = []
    while time.monotonic() < deadline:
        executions = _graphql(port, CHECK_QUERY, {"assetKey": key, "checkName": "schema_vs_previous"})
        evaluations = [e["evaluation"] for e in executions["assetCheckExecutions"] if e["evaluation"]]
        if any(not e["success"] for e in evaluations):
            break
        time.sleep(3)
    drifted = [e for e in evaluations if not e["success"]]
    assert drifted, f"no failing schema_vs_previous evaluation: {evaluations}"
    assert drifted[0]["severity"] == "WARN"
    added = next(m for m in drifted[0]["metadataEntries"] if m["label"] == "added")
    assert "grade_level" in added["jsonString"]
