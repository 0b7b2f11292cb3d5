"""The production deployment on loopback: Dagster's own distributed machinery, each piece its own process.

- instance: deploy/dagster.yaml as shipped (PostgreSQL storage, queued runs, pools, run retries and
  monitoring), on a throwaway database of the machine's PostgreSQL;
- the code location as a gRPC server (`dagster code-server start`), `dagster-webserver` and
  `dagster-daemon run` on it, and two Celery workers (`dagster-celery worker start`, deploy/celery-worker.yaml)
  on the machine's RabbitMQ (a vhost of its own), with SF_EXECUTOR=celery;
- data: the session's local stack (moto, fakesnow, MySQL), on names of its own.

Three tables' files land at once; the sensor's runs go through the queue, their steps run on the
workers; the `mysql` pool is 1, so no two runs write MySQL at once (each materialization's
started_at / finished_at); the worker running the biggest table's step is killed while that step holds
the MySQL slot, the broker gives the step to the other worker, and every table ends with exactly its
rows in MySQL and Snowflake. Every process it started is stopped.

    make test-deploy     (pytest -m deploy sf_platform_tests/deploy)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from itertools import combinations
from pathlib import Path

import pytest
import requests

from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.local.stack import free_port
from sf_platform.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

DEPLOY = REPO_ROOT / "deploy"
BIN = Path(sys.executable).parent
PG = ("127.0.0.1", 5432)
AMQP = ("127.0.0.1", 5672)
# rows per table; the first is big enough that its MySQL load lasts a few seconds (the kill lands in it)
ROWS = {"dep_alpha": 300_000, "dep_beta": 40, "dep_gamma": 60}
BIG = "dep_alpha"
RUNS = 3  # runs in progress at once (the queue's limit)
WORKER_PROCESSES = 3  # Celery processes per worker
REGISTRY = """\
landing:
  loose_file_pattern: '^(?P<table>[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?)_(?P<ts>\\d{12})\\.(?P<ext>csv|tsv|txt)(?:\\.gz)?$'
defaults:
  targets: [mysql, snowflake]
tables:
  dep_alpha: {description: the big one}
  dep_beta: {description: small}
  dep_gamma: {description: small}
"""

LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


# ---- the machine's services: PostgreSQL and RabbitMQ (started if down, else a clear failure)


def _open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def _ensure(name: str, address: tuple[str, int], start: str) -> None:
    if _open(address):
        return
    try:
        subprocess.run(["bash", "-c", start], check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.fail(f"{name} is not running on {address[0]}:{address[1]} and `{start}` failed: {exc}")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _open(address):
            return
        time.sleep(1)
    pytest.fail(f"{name} is not running on {address[0]}:{address[1]}; started with `{start}`, still closed after 90 s")


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=120).returncode == 0


@pytest.fixture()
def services():
    _ensure("PostgreSQL", PG, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    _ensure("RabbitMQ", AMQP, "rabbitmq-server -detached")


@pytest.fixture()
def postgres_db(services):
    """A throwaway PostgreSQL database for the instance."""
    name = f"sf_deploy_{uuid.uuid4().hex[:8]}"
    psql = ["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
    yield name
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, timeout=60)


@pytest.fixture()
def broker(services):
    """A RabbitMQ vhost of this test's own (leftover tasks of another run can never reach its workers)."""
    vhost = f"sf_deploy_{uuid.uuid4().hex[:8]}"
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"):
        yield f"pyamqp://guest:guest@{AMQP[0]}:{AMQP[1]}/{vhost}"
        _rabbitmqctl("delete_vhost", vhost)
    else:  # no rabbitmqctl here: the default vhost
        yield f"pyamqp://guest:guest@{AMQP[0]}:{AMQP[1]}//"


# ---- the processes


class Processes:
    """Every process the test starts, each in its own session (so its children go with it)."""

    def __init__(self, logs: Path, env: dict[str, str], cwd: Path):
        self.logs, self.env, self.cwd = logs, env, cwd
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop_all(self) -> list[str]:
        """SIGTERM every group, SIGKILL what is left after 30 s; -> names that needed SIGKILL."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        killed = []
        deadline = time.monotonic() + 30
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
            try:  # the group too: a worker's pool children, a code server's gRPC child
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        return killed


@pytest.fixture()
def deployment(stack_env, postgres_db, broker, tmp_path):
    run = uuid.uuid4().hex[:8]
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The production file as shipped, sized for this test's workers: 2 workers x 3 processes, so with
    # one worker lost the 3 processes left still serve max_concurrent_runs=3 (README "Deploying").
    shipped = (DEPLOY / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 10" in shipped
    (home / "dagster.yaml").write_text(shipped.replace("max_concurrent_runs: 10", f"max_concurrent_runs: {RUNS}"))
    registry = tmp_path / "tables.yaml"
    registry.write_text(REGISTRY)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG[0],
        "DAGSTER_PG_PORT": str(PG[1]),
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": postgres_db,
        "SF_EXECUTOR": "celery",
        "SF_CELERY_BROKER_URL": broker,
        "SF_CELERY_BACKEND_URL": "rpc://",
        "SF_TABLES_FILE": str(registry),
        "SF_LANDING_BUCKET": f"sf-deploy-{run}",
        "SF_GLUE_DATABASE": f"sf_deploy_{run}",
        "SF_MYSQL_DATABASE": f"sf_deploy_{run}",
        "SF_SNOWFLAKE_DATABASE": f"SF_DEPLOY_{run.upper()}",
        "SF_SENSOR_INTERVAL_SECONDS": "5",
        "SF_STEP_RETRY_SECONDS": "2",
    }
    saved = dict(os.environ)
    os.environ.update(env)  # the test's own reads (resources, instance) see the same deployment
    cfg = Settings.from_env()

    import dagster as dg

    from sf_platform.runtime import open_resources

    with open_resources(cfg) as r:
        r.landing.ensure_bucket()
        r.mysql.ensure_database()
    instance = dg.DagsterInstance.from_config(str(home))
    instance.event_log_storage.set_concurrency_slots("mysql", 1)  # one MySQL writer at a time, every run

    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {grpc_port}\n"
        "      location_name: sf_platform\n"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs, env, tmp_path)  # cwd tmp_path: no developer .env applies
    try:
        procs.start("code_server", [str(BIN / "dagster"), "code-server", "start", "-m", "sf_platform.definitions",
                                    "-h", "127.0.0.1", "-p", str(grpc_port), "--location-name", "sf_platform"])
        for worker in ("w1", "w2"):
            procs.start(worker, [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                                 "-y", str(DEPLOY / "celery-worker.yaml"), "-n", worker, "--", "-c", str(WORKER_PROCESSES)])
        procs.start("webserver", [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                                  "-p", str(web_port)])
        procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        _wait_for_location(web_port, procs)
        for worker in ("w1", "w2"):
            _wait_for_log(procs, worker, "ready.")
        yield cfg, instance, procs, web_port
    finally:
        leftover = procs.stop_all()
        instance.dispose()
        try:
            with open_resources(cfg) as r:
                r.mysql.fetch_all(f"DROP DATABASE IF EXISTS `{cfg.mysql_database}`")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        print(f"stopped {len(procs.procs)} processes ({', '.join(procs.procs)}); SIGKILL needed: {leftover or 'none'}")


def _wait_for_location(port: int, procs: Processes, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.procs.items():
            assert proc.poll() is None, f"{name} exited: {procs.log(name)[-3000:]}"
        try:
            response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": LOCATION_QUERY}, timeout=10)
            entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
        except (requests.RequestException, KeyError, TypeError, ValueError):
            time.sleep(1)
            continue
        for entry in entries:
            loaded = entry["locationOrLoadError"] or {}
            if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
                return
        time.sleep(1)
    raise AssertionError(f"code location did not load: {procs.log('code_server')[-3000:]}")


def _wait_for_log(procs: Processes, name: str, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in procs.log(name):
            return
        assert procs.procs[name].poll() is None, f"{name} exited: {procs.log(name)[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{name}: no {text!r} in {timeout} s: {procs.log(name)[-3000:]}")


# ---- the data


def _csv(rows: int, seed: int) -> bytes:
    lines = ["ID,NAME,AMOUNT,CREATED_AT"]
    lines += [f"{seed * 10_000_000 + i},name-{i % 977},{i % 10_000}.{i % 100:02d},2025-09-01 10:{i // 60 % 60:02d}:{i % 60:02d}"
              for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _counts(cfg: Settings, table: str) -> tuple[int | None, int | None]:
    from sf_platform.runtime import open_resources

    out = []
    with open_resources(cfg) as r:
        try:
            out.append(int(r.mysql.fetch_all(f"SELECT COUNT(*) FROM `{cfg.mysql_database}`.`{table}`")[0][0]))
        except Exception:
            out.append(None)
        try:
            with r.snowflake.get_connection() as conn:
                cur = conn.cursor()
                cur.execute(f"SELECT COUNT(*) FROM {snowflake_table_ref(cfg.snowflake_database, cfg.snowflake_schema, table)}")
                out.append(int(cur.fetchone()[0]))
        except Exception:
            out.append(None)
    return tuple(out)


def _runs_by_table(instance) -> dict[str, list]:
    import dagster as dg

    out: dict[str, list] = {}
    for run in instance.get_runs(dg.RunsFilter(job_name="load_tables")):
        out.setdefault(run.tags.get("sf/table", "?"), []).append(run)
    return out


def _engine_workers(instance, run_id: str) -> list[str]:
    """The Celery workers that picked up the run's step, in order (dagster-celery's engine event)."""
    workers = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        message = f"{record.user_message or ''} {getattr(event, 'message', '') or ''}"
        if event and event.event_type_value == "ENGINE_EVENT" and "in celery worker" in message:
            metadata = event.engine_event_data.metadata or {}
            value = metadata.get("Celery worker")
            workers.append(getattr(value, "value", getattr(value, "text", str(value))))
    return workers


def test_three_tables_through_queue_pools_and_celery_workers_survive_a_killed_worker(deployment):
    import dagster as dg

    from sf_platform.assets.names import mysql_key
    from sf_platform.runtime import open_resources

    cfg, instance, procs, _port = deployment
    started = time.monotonic()

    # 1. three tables' files land at once; the sensor asks for one run per table
    with open_resources(cfg) as r:
        for i, (table, rows) in enumerate(ROWS.items()):
            r.landing.put(f"{table.upper()}_20250901120{i}.csv", _csv(rows, i + 1))

    # 2. while the big table's step holds the MySQL slot (its load is under way), kill its worker
    step_key = f"tables[mysql:{BIG}]"
    killed = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed is None:
        info = instance.event_log_storage.get_concurrency_info("mysql")
        holder = next((s for s in info.claimed_slots if s.step_key == step_key), None)
        if holder is not None:
            workers = _engine_workers(instance, holder.run_id)
            assert workers, (
                "the big table's step holds the MySQL slot but no celery worker picked it up: "
                + repr([(e.dagster_event.event_type_value, e.user_message, e.dagster_event.message)
                        for e in instance.all_logs(holder.run_id) if e.dagster_event][:12])
                + procs.log("w1")[-1500:] + procs.log("w2")[-1500:]
            )
            killed = workers[-1].split("@")[0]
            procs.kill(killed)
            killed_at = time.monotonic() - started
            big_run_id = holder.run_id
        else:
            runs = _runs_by_table(instance).get(BIG, [])
            assert not any(r.is_finished for r in runs), f"{BIG} finished before its MySQL load was seen"
            time.sleep(0.1)
    assert killed, f"{BIG}'s MySQL load never started within 300 s; worker logs: {procs.log('w1')[-2000:]}"

    # 3. every run ends, every table has exactly its rows in MySQL and Snowflake
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        runs = _runs_by_table(instance)
        if set(ROWS) <= set(runs) and all(r.is_finished for t in ROWS for r in runs[t]):
            break
        time.sleep(2)
    runs = _runs_by_table(instance)
    assert set(ROWS) <= set(runs), f"runs per table: { {t: len(r) for t, r in runs.items()} }"
    for table in ROWS:
        statuses = [r.status for r in runs[table]]
        assert dg.DagsterRunStatus.SUCCESS in statuses, f"{table}: runs {statuses}; daemon: {procs.log('daemon')[-2000:]}"
        assert _counts(cfg, table) == (ROWS[table], ROWS[table]), table

    # the runs went through the queue (enqueued by the sensor, launched by the daemon)
    for table in ROWS:
        types = {e.dagster_event.event_type_value for e in instance.all_logs(runs[table][-1].run_id) if e.dagster_event}
        assert "PIPELINE_ENQUEUED" in types or "RUN_ENQUEUED" in types, (table, sorted(types))
        assert runs[table][-1].tags.get("sf/trigger") == "landing_files"

    # the runs' steps ran at the same time (on the workers' processes), not one after another
    steps = {}
    for table in ROWS:
        records = instance.all_logs(runs[table][-1].run_id)
        starts = [r.timestamp for r in records if r.dagster_event and r.dagster_event.event_type_value == "STEP_START"]
        ends = [r.timestamp for r in records if r.dagster_event and r.dagster_event.event_type_value == "STEP_SUCCESS"]
        steps[table] = (min(starts), max(ends))
    assert any(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in combinations(steps.values(), 2)), steps

    # the killed worker's step was given to the other worker, in the same run
    big_workers = [w.split("@")[0] for w in _engine_workers(instance, big_run_id)]
    assert big_workers[0] == killed and len(big_workers) >= 2 and big_workers[-1] != killed, big_workers

    # 4. the mysql pool of 1: no two MySQL writes overlapped (each materialization's started_at/finished_at)
    windows = {}
    for table in ROWS:
        event = instance.get_latest_materialization_event(mysql_key(cfg.mysql_database, table))
        metadata = event.asset_materialization.metadata
        windows[table] = (metadata["started_at"].value, metadata["finished_at"].value)
    for (a, (a0, a1)), (b, (b0, b1)) in combinations(sorted(windows.items()), 2):
        assert a1 <= b0 or b1 <= a0, f"MySQL writes overlap: {a} {a0}-{a1}, {b} {b0}-{b1}"
    print(f"killed {killed} at {killed_at:.1f} s; MySQL windows {windows}; done in {time.monotonic() - started:.0f} s")
