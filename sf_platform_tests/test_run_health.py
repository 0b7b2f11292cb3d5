"""Killed runs do not wedge the local run queue (issue 17): sf_platform/local/run_launcher.py.

The unit tests judge real processes (alive, killed but not reaped, gone, a pid the worker did not own).
The integration test runs a real `dagster-daemon` on an instance made by ``local/dagster_home.prepare``
(one run at a time, run monitoring every 5 s), SIGKILLs run workers the two ways that left runs
STARTED for ever (a CLI run executing in its own process; a queued run's worker together with the code
server that spawned it) and checks that each run is marked failed with the reason, and that the run
queued behind the first one then starts by itself. No stack service is needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from sf_platform.local import dagster_home
from sf_platform.local.run_launcher import (
    LocalRunLauncher,
    WorkerPid,
    gone_reason,
    on_this_host,
    run_worker_pid,
)

HERE = Path(__file__).parent
DAGSTER = Path(sys.executable).with_name("dagster")
DAEMON = Path(sys.executable).with_name("dagster-daemon")
POLL_SECONDS = 5  # dagster_home's run_monitoring.poll_interval_seconds
# A killed run is failed at the first monitoring tick after the kill; the margin is for a loaded machine.
VERDICT_SECONDS = POLL_SECONDS + 50


# --- the verdict on one process ---------------------------------------------------------------


def test_a_running_process_is_not_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert gone_reason(WorkerPid(child.pid, time.time())) is None
    finally:
        child.kill()
        child.wait()


def test_a_killed_process_is_gone_before_and_after_its_parent_reaps_it():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = WorkerPid(child.pid, time.time())
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (reason := gone_reason(worker)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path("/proc/self").exists():  # not reaped yet: a zombie, which still answers kill(pid, 0)
        assert reason == f"process {child.pid} has exited (state Z: killed, not yet reaped by its parent)"
    child.wait()
    assert gone_reason(worker) == f"no process has pid {child.pid} any more"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs")
def test_a_pid_now_held_by_a_younger_process_is_gone():
    # This process holds the pid, but the "worker" recorded it an hour before this process started.
    worker = WorkerPid(os.getpid(), time.time() - 3600 - time.monotonic())
    reason = gone_reason(worker)
    assert reason is not None and reason.startswith(f"process {os.getpid()} has exited: the pid now belongs to")
    assert gone_reason(WorkerPid(os.getpid(), time.time())) is None


@pytest.mark.parametrize(
    ("grpc_info", "local"),
    [
        (None, True),  # a CLI run executing in its own process on the local instance
        ('{"host": "localhost", "socket": "/tmp/x"}', True),
        ('{"host": "127.0.0.1", "port": 4000}', True),
        ('{"host": "code-server.internal", "port": 4000}', False),
    ],
)
def test_only_workers_on_this_host_are_judged(grpc_info, local):
    from dagster import DagsterRun

    run = DagsterRun(job_name="j", run_id="r", tags={GRPC_INFO_TAG: grpc_info} if grpc_info else {})
    assert on_this_host(run) is local


# --- the instance config ----------------------------------------------------------------------


def test_prepare_writes_run_monitoring_and_keeps_a_users_own_config(tmp_path):
    home = dagster_home.prepare(tmp_path / "home")
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_monitoring_enabled and instance.run_monitoring_settings["poll_interval_seconds"] == POLL_SECONDS
        assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 1

    config = home / "dagster.yaml"
    config.write_text(dagster_home.MARKER + "\nrun_queue:\n  max_concurrent_runs: 1\n")  # an older version's
    dagster_home.prepare(home)
    assert config.read_text() == dagster_home.DAGSTER_YAML
    config.write_text("telemetry:\n  enabled: false\n")  # the user's own
    dagster_home.prepare(home)
    assert config.read_text() == "telemetry:\n  enabled: false\n"


# --- a real daemon ----------------------------------------------------------------------------


@pytest.fixture()
def daemon(tmp_path):
    """`dagster-daemon run` on a fresh local DAGSTER_HOME with the job of run_health_jobs.py."""
    home = dagster_home.prepare(tmp_path / "dagster_home")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_file:\n      relative_path: {HERE / 'run_health_jobs.py'}\n"
        f"      working_directory: {HERE}\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # Make the SQLite storages before the daemon starts: two processes creating them at once collide
    # ("table instigators already exists") and the daemon dies.
    instance = DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1), instance.all_instigator_state(), instance.get_daemon_heartbeats()
    log = open(tmp_path / "daemon.log", "wb")
    proc = subprocess.Popen(
        [str(DAEMON), "run", "-w", str(workspace)], cwd=tmp_path, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "MONITORING" not in instance.get_daemon_heartbeats():  # the run monitoring daemon is up
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no run monitoring heartbeat in 120 s"
            time.sleep(0.5)
        yield instance, env, workspace
    finally:
        instance.dispose()
        os.killpg(proc.pid, signal.SIGKILL)  # the daemon, its code servers and any run worker left
        proc.wait()
        log.close()


def _launch(env, workspace, job: str) -> subprocess.Popen:
    """`dagster job launch`: the run is queued; the daemon launches it through its code server."""
    return subprocess.Popen([str(DAGSTER), "job", "launch", "-w", str(workspace), "-j", job], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run_of(instance, job: str, status: DagsterRunStatus, timeout: float = 120, other_than: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records()
        for record in records:
            run = record.dagster_run
            if run.job_name == job and run.status == status and run.run_id != other_than:
                return record
        time.sleep(0.5)
    raise AssertionError(f"no {job} run {status} in {timeout} s: {[(r.dagster_run.job_name, r.dagster_run.status) for r in records]}")


def _worker(instance, run_id: str, timeout: float = 120) -> WorkerPid:
    deadline = time.monotonic() + timeout
    while (worker := run_worker_pid(instance, run_id)) is None:
        assert time.monotonic() < deadline, f"run {run_id} recorded no worker pid in {timeout} s"
        time.sleep(0.5)
    return worker


def _wait_for_status(instance, run_id: str, statuses: set, timeout: float) -> DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while (status := instance.get_run_by_id(run_id).status) not in statuses:
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {timeout} s"
        time.sleep(0.5)
    return status


def _failure_message(instance, run_id: str) -> str:
    from dagster._core.events import DagsterEventType

    [failure] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return failure.message


def test_a_killed_run_is_failed_and_the_queue_moves_on(daemon, tmp_path):
    instance, env, workspace = daemon

    # 1. A run executing in the process that started it, like `sf-platform materialize`, is SIGKILLed
    #    while a run waits in the one-run queue behind it.
    cli = subprocess.Popen(
        [sys.executable, "-c", "import run_health_jobs as j, dagster as dg\n"
         "with dg.DagsterInstance.get() as i: j.sleepy.execute_in_process(instance=i)"],
        cwd=HERE, env=env, stdout=open(tmp_path / "cli.log", "wb"), stderr=subprocess.STDOUT,
    )
    killed = _run_of(instance, "sleepy", DagsterRunStatus.STARTED).dagster_run
    assert _worker(instance, killed.run_id).pid == cli.pid
    launch = _launch(env, workspace, "sleepy")
    time.sleep(POLL_SECONDS + 2)  # a whole monitoring tick with the worker alive: nothing changes
    assert launch.wait(timeout=120) == 0
    queued = _run_of(instance, "sleepy", DagsterRunStatus.QUEUED).dagster_run
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.STARTED

    cli.send_signal(signal.SIGKILL)
    cli.wait()
    killed_at = time.time()
    assert _wait_for_status(instance, killed.run_id, {DagsterRunStatus.FAILURE}, VERDICT_SECONDS)
    assert _failure_message(instance, killed.run_id) == (
        f"Detected run worker status NOT_FOUND: 'the run worker (pid {cli.pid}) is gone: no process has pid "
        f"{cli.pid} any more'. Marking run {killed.run_id} as failed."
    )
    failed_at = instance.get_run_record_by_id(killed.run_id).end_time
    assert killed_at <= failed_at <= killed_at + VERDICT_SECONDS

    # The queued run then starts by itself, in a run worker of the daemon's code server.
    _wait_for_status(instance, queued.run_id, {DagsterRunStatus.STARTED}, 180)
    assert instance.get_run_record_by_id(queued.run_id).start_time >= failed_at

    # 2. That worker is SIGKILLed together with the code server that spawned it (what killing
    #    `dagster dev` or the stack does): no process is left to report the run's death.
    worker = _worker(instance, queued.run_id)
    code_server = int(Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(code_server, signal.SIGKILL)
    os.kill(worker.pid, signal.SIGKILL)
    assert _wait_for_status(instance, queued.run_id, {DagsterRunStatus.FAILURE}, VERDICT_SECONDS)
    # Orphaned by its code server, the worker may still be a zombie when the daemon looks (until init
    # reaps it): gone all the same.
    assert _failure_message(instance, queued.run_id) in (
        f"Detected run worker status NOT_FOUND: 'the run worker (pid {worker.pid}) is gone: {reason}'. "
        f"Marking run {queued.run_id} as failed."
        for reason in (f"no process has pid {worker.pid} any more",
                       f"process {worker.pid} has exited (state Z: killed, not yet reaped by its parent)")
    )
