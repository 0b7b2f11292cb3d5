"""The local instance's run launcher: Dagster's DefaultRunLauncher that can also tell when a run's worker died.

Why: a run killed by SIGKILL (or lost with its machine) never writes its failure, so it stays
``STARTED``; with the local queue's one run at a time every sensor run then waits behind it until
someone marks it failed by hand (issue 17). Dagster's daemon already has the machinery to fix that,
run monitoring (``run_monitoring`` in dagster.yaml, ``dagster/_daemon/monitoring/run_monitoring.py``):
every ``poll_interval_seconds`` it asks the instance's run launcher about each ``STARTED`` run and marks
it failed, with the launcher's reason in the event log, when the launcher says its worker is gone. But
in Dagster 1.13.27 ``DefaultRunLauncher`` answers ``supports_check_run_worker_health = False`` (only the
K8s / Docker / ECS launchers implement it), so with it monitoring only times out runs that never start.

What Dagster covers without this class, tried on this machine: when only the run worker is killed,
the gRPC code server that spawned it notices (``_check_for_orphaned_runs`` every ``CLEANUP_TICK = 0.5``
s; the run was FAILURE when looked at 4 s after the kill) and marks the run failed. It cannot when the code server went too (``dagster
dev`` or the whole stack killed, a reboot), nor for runs it never spawned: ``sf-platform materialize``
executes in the CLI's own process (``sf_platform/runs.py``). Those are the runs that stayed STARTED.

How this class tells: every run worker records its pid in its first engine event that carries one
("Started process for run (pid: N)" from the code server's worker, "Executing steps in process (pid:
N)" from the in-process executor of a CLI run). The worker is gone when no process has that pid, when
it is a zombie (killed, not yet reaped by its parent), or when the process now holding the pid started
after the event was written (the pid was reused). Reading ``/proc`` needs Linux; elsewhere only "no such
process" counts.

The local stack runs every process (daemon, code server, CLI) on one machine, which is what makes a
pid meaningful here; a run whose worker is on another host (a code server not on loopback) or recorded
no pid yet is reported RUNNING (run monitoring fails a run on any other answer, UNKNOWN included), so
this class only ever fails a run whose worker it has seen gone. Production uses launchers that check their workers
themselves (deploy/dagster.yaml, deploy/helm).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dagster import DefaultRunLauncher
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})
PROC = Path("/proc")
# A process that started this long after the event recording its pid holds a reused pid. The margin is
# for the wall clock, which may be stepped (NTP, resume) between the event and the check: /proc counts
# start times from boot, the event has wall-clock time. A pid reused sooner than that only delays the verdict.
START_TIME_SLACK_SECONDS = 60.0


@dataclass(frozen=True)
class WorkerPid:
    """A run worker's pid and the time (epoch seconds) of the event that recorded it."""

    pid: int
    recorded_at: float


def run_worker_pid(instance, run_id: str) -> WorkerPid | None:
    """The pid the run's worker recorded in its first engine event with one, or None if it recorded none.

    Step subprocesses of the multiprocess executor record theirs with a ``step_key``; they are not the worker.
    """
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data if record.dagster_event else None
        metadata = data.metadata if data else {}
        if "pid" in metadata and "step_key" not in metadata:
            return WorkerPid(int(metadata["pid"].value), record.timestamp)
    return None


def gone_reason(worker: WorkerPid, proc: Path = PROC) -> str | None:
    """Why the process that recorded ``worker`` is no longer running, or None if it still is."""
    stat_path = proc / str(worker.pid) / "stat"
    if not proc.joinpath("self").exists():  # no procfs (macOS): existence is all we can ask
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return f"no process has pid {worker.pid} any more"
        except PermissionError:
            return None  # it exists, owned by someone else
        return None
    try:
        stat = stat_path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return f"no process has pid {worker.pid} any more"
    # "pid (comm) state ppid ... starttime(22nd field) ..."; comm may hold spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])
    if state in ("Z", "X"):
        return f"process {worker.pid} has exited (state {state}: killed, not yet reaped by its parent)"
    started_at = boot_time(proc) + start_ticks / os.sysconf("SC_CLK_TCK")
    if started_at > worker.recorded_at + START_TIME_SLACK_SECONDS:
        return (f"process {worker.pid} has exited: the pid now belongs to a process started "
                f"{started_at - worker.recorded_at:.0f} s after the run worker recorded it")
    return None


def boot_time(proc: Path = PROC) -> float:
    for line in (proc / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError(f"no btime line in {proc / 'stat'}")


def on_this_host(run: DagsterRun) -> bool:
    """Whether the run's worker runs on this machine: spawned by a code server on loopback or a local
    socket, or (no gRPC tag) executed in the process of a CLI on the local instance."""
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:
        return True
    grpc = json.loads(info)
    return bool(grpc.get("socket")) or str(grpc.get("host", "")).strip("[]") in LOOPBACK_HOSTS


class LocalRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers the daemon's run monitoring can check (module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if not on_this_host(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not checked: the run worker is not on this host")
        worker = run_worker_pid(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not checked: the run worker recorded no pid yet")
        reason = gone_reason(worker)
        if reason is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {worker.pid} is running")
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND, f"the run worker (pid {worker.pid}) is gone: {reason}", run_worker_id=str(worker.pid)
        )
