"""Session fixtures: the real local services (moto server, fakesnow server, MySQL) and per-run names.

Every test session gets its own bucket, Glue database, MySQL database and Snowflake database, and
removes them afterwards; services are started in a private state folder and stopped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from hypothesis import settings as hypothesis_settings

from sf_platform import settings
from sf_platform.local import stack

# CI (.ci/run) replays the same examples on every run, so a commit lands or not on its own merits;
# `make test` on a workstation keeps exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.load_profile(os.environ.get("SF_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """Start the local stack for this session and point every SF_* variable at per-run names."""
    state_dir = tmp_path_factory.mktemp("sf_state")
    run = uuid.uuid4().hex[:8]
    names = {
        "SF_ENV": "local",
        "SF_STATE_DIR": str(state_dir),
        "SF_ENV_FILE": str(state_dir / "test.env"),
        "SF_TABLES_FILE": str(settings.REPO_ROOT / "tables.yaml"),
        "SF_LANDING_BUCKET": f"sf-test-{run}",
        "SF_GLUE_DATABASE": f"sf_test_{run}",
        "SF_MYSQL_DATABASE": f"sf_test_{run}",
        "SF_SNOWFLAKE_DATABASE": f"SF_TEST_{run.upper()}",
        "SF_SNOWFLAKE_SCHEMA": "RAW",
    }
    probe_env = {**os.environ, **names}
    values = stack.up(state_dir, probe_env, log=lambda _msg: None)
    env = {name: "" for name in settings.VARIABLES} | values | names
    saved = dict(os.environ)
    os.environ.update(env)
    os.environ["DAGSTER_HOME"] = str(_dagster_home(state_dir))
    try:
        yield env
    finally:
        _drop_mysql_database(env)
        stack.down(state_dir, log=lambda _msg: None)
        os.environ.clear()
        os.environ.update(saved)


def _dagster_home(state_dir: Path) -> Path:
    from sf_platform.local import dagster_home

    return dagster_home.prepare(state_dir / "dagster_home")


def _drop_mysql_database(env: dict[str, str]) -> None:
    try:
        conn = pymysql.connect(
            host=env["SF_MYSQL_HOST"],
            port=int(env["SF_MYSQL_PORT"]),
            user=env["SF_MYSQL_USER"],
            password=env["SF_MYSQL_PASSWORD"],
            autocommit=True,
        )
    except pymysql.MySQLError:
        return
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{env['SF_MYSQL_DATABASE']}`")


# ---- per-test resources on the session's stack: each test gets its own bucket / database


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def landing(stack_env):
    """A fresh, empty landing bucket on the moto server."""
    from dagster_aws.s3 import S3Resource

    from sf_platform.resources.aws import LandingBucket

    s3 = S3Resource(
        region_name=stack_env["SF_AWS_REGION"],
        endpoint_url=stack_env["SF_AWS_ENDPOINT_URL"],
        aws_access_key_id=stack_env["SF_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["SF_AWS_SECRET_ACCESS_KEY"],
    )
    bucket = LandingBucket(s3=s3, bucket=_unique("sf-t-"))
    bucket.ensure_bucket()
    return bucket


@pytest.fixture()
def glue(stack_env):
    """A Glue catalog resource pointing at a fresh database on the moto server."""
    from sf_platform.resources.aws import GlueCatalog

    catalog = GlueCatalog(
        region_name=stack_env["SF_AWS_REGION"],
        endpoint_url=stack_env["SF_AWS_ENDPOINT_URL"],
        aws_access_key_id=stack_env["SF_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["SF_AWS_SECRET_ACCESS_KEY"],
        database=_unique("sf_t_"),
    )
    catalog.ensure_database()
    return catalog


@pytest.fixture()
def mysql(stack_env):
    """A MySQL resource on a fresh database, dropped after the test."""
    from sf_platform.resources.mysql import MySQLResource

    resource = MySQLResource(
        host=stack_env["SF_MYSQL_HOST"],
        port=int(stack_env["SF_MYSQL_PORT"]),
        user=stack_env["SF_MYSQL_USER"],
        password=stack_env["SF_MYSQL_PASSWORD"],
        database=_unique("sf_t_"),
    )
    resource.ensure_database()
    yield resource
    _drop_mysql_database({**stack_env, "SF_MYSQL_DATABASE": resource.database})


@pytest.fixture()
def snowflake_conn(stack_env):
    """A real snowflake-connector connection to the fakesnow server, on a fresh database.

    Yields (connection, database, schema)."""
    import snowflake.connector

    database = _unique("SF_T_").upper()
    conn = snowflake.connector.connect(
        user=stack_env["SF_SNOWFLAKE_USER"],
        password=stack_env["SF_SNOWFLAKE_PASSWORD"],
        account=stack_env["SF_SNOWFLAKE_ACCOUNT"],
        host=stack_env["SF_SNOWFLAKE_HOST"],
        port=int(stack_env["SF_SNOWFLAKE_PORT"]),
        protocol=stack_env["SF_SNOWFLAKE_PROTOCOL"],
        database=database,
        schema="RAW",
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        network_timeout=60,
    )
    try:
        yield conn, database, "RAW"
    finally:
        try:
            # fakesnow cannot parse DROP DATABASE; dropping the schema removes what the test made.
            conn.cursor().execute(f'DROP SCHEMA IF EXISTS "{database}"."RAW" CASCADE')
        except Exception:
            pass
        finally:
            conn.close()



@pytest.fixture()
def snowflake_database(stack_env, snowflake_conn):
    """The platform's Snowflake resource on ``snowflake_conn``'s database and schema (as deployments builds it)."""
    from sf_platform.resources.snowflake import SnowflakeDatabase

    _, database, schema = snowflake_conn
    return SnowflakeDatabase(
        account=stack_env["SF_SNOWFLAKE_ACCOUNT"],
        user=stack_env["SF_SNOWFLAKE_USER"],
        password=stack_env["SF_SNOWFLAKE_PASSWORD"],
        database=database,
        schema=schema,
        additional_snowflake_connection_args={
            "host": stack_env["SF_SNOWFLAKE_HOST"],
            "port": int(stack_env["SF_SNOWFLAKE_PORT"]),
            "protocol": stack_env["SF_SNOWFLAKE_PROTOCOL"],
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        },
    )