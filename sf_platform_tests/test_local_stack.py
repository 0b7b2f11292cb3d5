"""Tests of the embedded local stack (sf_platform.local.stack): real moto, fakesnow and MariaDB processes.

Each test gets its own state dir under tmp_path and stops every process it started, even on failure.
The MySQL tests use the machine's MariaDB at 127.0.0.1:3306 (reuse) and its mariadbd binary (private
server); they skip, saying why, where neither exists.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pymysql
import pytest
import snowflake.connector
from dotenv import dotenv_values

from sf_platform.local import stack
from sf_platform.local.stack import Service


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def services():
    """Services a test started; all stopped at teardown."""
    started: list[Service] = []
    yield started
    for service in started:
        stack.stop(service)


@pytest.fixture
def stack_down(state_dir: Path):
    """Run `down` on state_dir at teardown, whatever the test did."""
    yield
    stack.down(state_dir, log=lambda _msg: None)


def _snowflake(port: int, **kwargs):
    return snowflake.connector.connect(
        user="fake",
        password="snow",
        account="fakesnow",
        host="127.0.0.1",
        port=port,
        protocol="http",
        database="SF_DEMO",
        schema="RAW",
        session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        network_timeout=5,
        **kwargs,
    )


def _require_local_mariadb() -> None:
    if stack.probe_mysql("127.0.0.1", 3306, "root", "") is not None:
        pytest.skip("no MySQL/MariaDB with root and an empty password at 127.0.0.1:3306")


def _require_mysql_binary() -> None:
    if stack.find_mysql_server() is None:
        pytest.skip("no mariadbd/mysqld binary on this machine (install Debian's mariadb-server)")


@pytest.mark.integration
def test_moto_server_serves_s3_and_glue(state_dir: Path, services: list[Service]) -> None:
    service = stack.start_moto(state_dir)
    services.append(service)
    assert service.started_by_us and stack.is_our_process(service)

    kwargs = {
        "endpoint_url": f"http://127.0.0.1:{service.port}",
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **kwargs)
    s3.create_bucket(Bucket="sf-landing")
    s3.put_object(Bucket="sf-landing", Key="raw/한글.csv", Body="id,name\n1,김\n".encode())
    assert s3.get_object(Bucket="sf-landing", Key="raw/한글.csv")["Body"].read().decode() == "id,name\n1,김\n"

    glue = boto3.client("glue", **kwargs)
    glue.create_database(DatabaseInput={"Name": "sf_raw"})
    assert glue.get_database(Name="sf_raw")["Database"]["Name"] == "sf_raw"

    stack.stop(service)
    assert not stack.pid_alive(service.pid)


@pytest.mark.integration
def test_fakesnow_keeps_tables_rows_and_stages_across_restart(
    state_dir: Path, services: list[Service], tmp_path: Path
) -> None:
    first = stack.start_fakesnow(state_dir)
    services.append(first)
    upload = tmp_path / "upload.csv"
    upload.write_text("1,서울\n", encoding="utf-8")
    with _snowflake(first.port) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE customers (id INT, name VARCHAR)")
        cur.execute("INSERT INTO customers VALUES (1, '김철수'), (2, 'Zoë')")
        cur.execute("CREATE STAGE landing")
        cur.execute(f"PUT file://{upload} @landing AUTO_COMPRESS=FALSE")
    stack.stop(first)
    assert not stack.pid_alive(first.pid)

    second = stack.start_fakesnow(state_dir)
    services.append(second)
    with _snowflake(second.port) as conn, conn.cursor() as cur:
        assert cur.execute("SELECT id, name FROM customers ORDER BY id").fetchall() == [
            (1, "김철수"),
            (2, "Zoë"),
        ]
        assert [row[0] for row in cur.execute("LIST @landing").fetchall()] == ["landing/upload.csv"]
    assert (state_dir / "fakesnow" / "SF_DEMO.db").is_file()


@pytest.mark.integration
def test_ensure_mysql_reuses_a_running_server(state_dir: Path) -> None:
    _require_local_mariadb()
    messages: list[str] = []
    env = {
        "SF_MYSQL_HOST": "127.0.0.1",
        "SF_MYSQL_PORT": "3306",
        "SF_MYSQL_USER": "root",
        "SF_MYSQL_PASSWORD": "",
    }
    service = stack.ensure_mysql(state_dir, env, log=messages.append)
    assert service == Service("mysql", 3306, None, False, host="127.0.0.1")
    assert "already running" in messages[0]
    stack.stop(service)  # a no-op for a server we did not start
    assert stack.probe_mysql("127.0.0.1", 3306, "root", "") is None


@pytest.mark.integration
def test_private_mariadb_loads_local_infile_and_stops(
    state_dir: Path, services: list[Service], tmp_path: Path
) -> None:
    _require_mysql_binary()
    unused = stack.free_port()
    service = stack.ensure_mysql(state_dir, {"SF_MYSQL_PORT": str(unused)}, log=lambda _msg: None)
    services.append(service)
    assert service.started_by_us and service.port != unused and stack.is_our_process(service)

    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("id,name,city\n1,김철수,서울\n2,이영희,부산\n", encoding="utf-8")
    conn = pymysql.connect(
        host="127.0.0.1",
        port=service.port,
        user="root",
        password="",
        local_infile=True,
        charset="utf8mb4",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE t CHARACTER SET utf8mb4")
            cur.execute("CREATE TABLE t.customers (id INT PRIMARY KEY, name VARCHAR(50), city VARCHAR(50))")
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{csv_path}' INTO TABLE t.customers CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' IGNORE 1 LINES (id, name, city)"
            )
            cur.execute("SELECT id, name, city FROM t.customers ORDER BY id")
            assert cur.fetchall() == ((1, "김철수", "서울"), (2, "이영희", "부산"))
    finally:
        conn.close()

    stack.stop(service)
    assert not stack.pid_alive(service.pid)


@pytest.mark.integration
def test_up_is_idempotent_and_down_stops_what_it_started(state_dir: Path, stack_down, tmp_path: Path) -> None:
    _require_mysql_binary()
    env = {"SF_MYSQL_PORT": str(stack.free_port()), "SF_LANDING_BUCKET": "my-landing"}
    first = stack.up(state_dir, env, log=lambda _msg: None)
    messages: list[str] = []
    second = stack.up(state_dir, env, log=messages.append)
    assert first == second
    assert all("already running" in message for message in messages) and len(messages) == 3

    assert first["SF_ENV"] == "local" and first["SF_STATE_DIR"] == str(state_dir.resolve())
    assert first["SF_LANDING_BUCKET"] == "my-landing" and first["SF_GLUE_DATABASE"] == "sf_raw"
    assert first["SF_AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert (first["SF_SNOWFLAKE_DATABASE"], first["SF_SNOWFLAKE_SCHEMA"]) == ("SF_DEMO", "RAW")
    assert (first["SF_MYSQL_USER"], first["SF_MYSQL_PASSWORD"]) == ("root", "")

    rows = stack.status(state_dir)
    assert [row["name"] for row in rows] == ["moto", "fakesnow", "mysql"]
    assert all(row["alive"] and row["started_by_us"] for row in rows)
    assert {row["name"]: str(row["port"]) for row in rows}["mysql"] == first["SF_MYSQL_PORT"]

    conn = pymysql.connect(host="127.0.0.1", port=int(first["SF_MYSQL_PORT"]), user="root", password="")
    try:
        with conn.cursor() as cur:
            assert cur.execute("SHOW DATABASES LIKE 'sf_mirror'") == 1
    finally:
        conn.close()

    pids = [row["pid"] for row in rows]
    assert sorted(stack.down(state_dir, log=lambda _msg: None)) == ["fakesnow", "moto", "mysql"]
    assert not any(stack.pid_alive(pid) for pid in pids)
    assert stack.status(state_dir) == [] and not (state_dir / "stack.json").exists()


@pytest.mark.integration
def test_stop_leaves_a_reused_pid_alone() -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        stack.stop(Service("moto", stack.free_port(), stranger.pid, True))
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_missing_mysql_without_apt_rights_raises_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack, "probe_mysql", lambda *a, **k: "connection refused")
    monkeypatch.setattr(stack, "find_mysql_server", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(stack.StackError, match="mariadb-server"):
        stack.ensure_mysql(tmp_path, {}, log=lambda _msg: None)


def test_env_file_round_trips_through_python_dotenv(tmp_path: Path) -> None:
    values = {
        "SF_B": "plain",
        "SF_A": 'it\'s a "quote" \\ back$lash $HOME #not-a-comment',
        "SF_EMPTY": "",
        "SF_KO": "서울 특별시",
        "SF_MULTI": "line1\nline2",
    }
    path = tmp_path / ".env"
    stack.write_env_file(path, values)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and "sf-platform stack up" in text.splitlines()[0]
    keys = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert keys[:2] == ["SF_A", "SF_B"]
    assert dotenv_values(path) == values
    assert path.stat().st_mode & 0o777 == 0o600


def test_env_file_refuses_values_python_dotenv_would_expand(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SF_MYSQL_PASSWORD"):
        stack.write_env_file(tmp_path / ".env", {"SF_MYSQL_PASSWORD": "pa${USER}ss"})
