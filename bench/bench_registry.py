"""Benchmark: a registry of 1,000 tables. Definitions load in <= 5 s without a network call, and the
landing_files sensor stays within its budget over 1,000 table folders.

1. Definitions: a child process (like a code server starting) imports the code location and builds the
   definitions from a generated 1,000-table registry, with every endpoint on a closed loopback port and
   every socket connect recorded (there must be none). Timed apart (wall and CPU): the libraries'
   imports, importing ``sf_platform.definitions`` (whose module-level ``build_definitions()`` reads the
   registry, as a code server does),
   resolving the repository (asset graph, jobs, sensor) and the repository snapshot the code server
   sends to the webserver and daemon. Target: build + resolve <= 5 s; 0 connects.
2. Sensor: a moto server whose bucket holds OBJECTS_PER_TABLE objects in each of the 1,000 table
   folders; the sensor runs from no cursor over its first sweep, then 10 files land (5 loose at the root,
   5 in folders) and ticks run until every one is reported (as bench_sensor.py, on this registry).
   Target: every tick well inside Dagster's 60 s sensor timeout (< 15 s), all 10 reported.

The machine is shared, so wall times are noisy: every figure is given with the process's own CPU
time (and the moto server's, for sensor ticks) and the load average, repeated ``--repeat`` times (medians
reported). With ``--baseline REF`` the same measurements run alternately on that commit's
``sf_platform`` and on HEAD's (each exported with ``git archive``), so both see the same load.

Saves bench/results/bench_registry.json.

    .venv/bin/python bench/bench_registry.py [--tables 1000] [--objects-per-table 20] [--repeat 3]
                                             [--baseline REF] [--only definitions|sensor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# the sf_platform measured: the working tree's, or an exported commit's (--baseline); ahead of the
# editable install, whose finder comes after sys.path
sys.path.insert(0, os.environ.get("SF_BENCH_SOURCE") or str(BENCH.parent))

RESULTS = BENCH / "results" / "bench_registry.json"
BUCKET = "sf-bench-registry"
SENSOR_TIMEOUT_S = 60
DEFINITIONS_TARGET_S = 5.0
NEW_FILES = 10
LOOSE = r"^(?P<table>[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?)_(?P<ts>\d{12})\.(?P<ext>csv|tsv|txt)(?:\.gz)?$"


def registry_yaml(tables: int) -> str:
    """A registry of ``tables`` tables, a mix of the settings real entries use."""
    lines = [
        "landing:",
        f"  loose_file_pattern: '{LOOSE}'",
        "defaults:",
        "  targets: [mysql, snowflake]",
        "tables:",
    ]
    for i in range(tables):
        name = table_name(i)
        if i % 10 == 0:
            lines.append(f"  {name}: {{description: table {i}, snowflake: {{write_mode: merge, merge_keys: [id]}}}}")
        elif i % 10 == 1:
            lines.append(f"  {name}: {{description: table {i}, force_string: [code], targets: [mysql]}}")
        else:
            lines.append(f"  {name}: {{description: table {i}}}")
    return "\n".join(lines) + "\n"


def table_name(i: int) -> str:
    return f"tbl_{i:04d}"


def child_env(registry: Path, source: Path | None = None) -> dict[str, str]:
    """A child's environment: this registry, the sf_platform at ``source`` (None: the working tree's),
    every endpoint on a closed loopback port (a connect attempt would fail fast, and is counted)."""
    return {
        **os.environ,
        "SF_BENCH_SOURCE": str(source or ""),
        "SF_ENV": "local",
        "SF_ENV_FILE": "/nonexistent/.env",
        "SF_TABLES_FILE": str(registry),
        "SF_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "SF_MYSQL_HOST": "127.0.0.1",
        "SF_MYSQL_PORT": "9",
        "SF_SNOWFLAKE_HOST": "127.0.0.1",
        "SF_SNOWFLAKE_PORT": "9",
        "SF_GLUE_DATABASE": "sf_raw",
        "SF_MYSQL_DATABASE": "sf_mirror",
        "SF_SNOWFLAKE_DATABASE": "SF_DEMO",
        "SF_SNOWFLAKE_SCHEMA": "RAW",
    }


def definitions_child() -> int:
    """Child: load the definitions as a code server does; print the timings as JSON."""
    connects: list[str] = []
    original = socket.socket.connect

    def record(self, address):
        connects.append(repr(address))
        return original(self, address)

    socket.socket.connect = record  # type: ignore[method-assign]
    started, cpu_started = time.perf_counter(), time.process_time()
    import dagster as dg

    import sf_platform.assets.exports  # noqa: F401  (the libraries, before the registry is read)
    import sf_platform.assets.tables  # noqa: F401
    import sf_platform.deployments  # noqa: F401
    import sf_platform.sensors.landing  # noqa: F401

    imported, cpu_imported = time.perf_counter(), time.process_time()
    # what a code server does: import the module, whose `defs = build_definitions()` reads the registry
    import sf_platform.definitions

    defs = sf_platform.definitions.defs
    built, cpu_built = time.perf_counter(), time.process_time()
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    jobs = [repo.get_job(name) for name in repo.job_names]
    resolved, cpu_resolved = time.perf_counter(), time.process_time()
    from dagster._core.remote_representation.external_data import RepositorySnap

    snap = RepositorySnap.from_def(repo)
    from dagster._serdes import serialize_value

    payload = serialize_value(snap)
    snapped = time.perf_counter()
    print(json.dumps({
        "import_seconds": round(imported - started, 2),
        "build_definitions_seconds": round(built - imported, 2),
        "resolve_seconds": round(resolved - built, 2),
        "build_and_resolve_seconds": round(resolved - imported, 2),
        "build_and_resolve_cpu_seconds": round(cpu_resolved - cpu_imported, 2),
        "import_cpu_seconds": round(cpu_imported - cpu_started, 2),
        "build_cpu_seconds": round(cpu_built - cpu_imported, 2),
        "repository_snapshot_seconds": round(snapped - resolved, 2),
        "repository_snapshot_mb": round(len(payload) / 1e6, 1),
        "assets": len(graph.get_all_asset_keys()),
        "asset_checks": len(list(graph.asset_check_keys)),
        "jobs": len(jobs),
        "sensors": len(repo.sensor_defs),
        "socket_connects": len(connects),
        "connect_targets": connects[:5],
        "dagster": dg.__version__,
        "sf_platform": str(Path(sf_platform.__file__).parent),
    }))
    return 0


def measure_definitions(registry: Path, variants: dict[str, Path | None], repeat: int) -> dict:
    """``repeat`` rounds, each loading the definitions once per variant (alternating, so all variants
    see the same load); -> per variant: every sample and the medians."""
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, source in variants.items():
            load = os.getloadavg()[0]
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--definitions-child"],
                                  env=child_env(registry, source), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"definitions child ({name}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            sample = json.loads(done.stdout.strip().splitlines()[-1])
            sample["process_seconds"] = round(time.perf_counter() - started, 2)
            sample["load_average_1m"] = round(load, 2)
            samples[name].append(sample)
    return {name: _summary(runs, DEFINITION_FIGURES) for name, runs in samples.items()}


DEFINITION_FIGURES = (
    "build_and_resolve_seconds", "build_and_resolve_cpu_seconds", "build_definitions_seconds", "build_cpu_seconds",
    "resolve_seconds", "import_seconds", "import_cpu_seconds", "repository_snapshot_seconds", "process_seconds",
    "load_average_1m",
)


def _summary(runs: list[dict], figures: tuple[str, ...]) -> dict:
    """The last run's other fields, the median of each figure and every run's value (``<figure>_runs``)."""
    out = dict(runs[-1])
    for figure in figures:
        values = [r[figure] for r in runs if r.get(figure) is not None]
        out[figure] = round(statistics.median(values), 3) if values else None
        out[f"{figure}_runs"] = values
    out["runs"] = len(runs)
    return out


def serve(tables: int, per_table: int) -> int:
    """Child: a moto server whose bucket holds ``per_table`` objects in each of ``tables`` folders,
    landed a day ago. Prints the port, serves until stdin closes."""
    from datetime import timedelta

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.models import s3_backends

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, "us-east-1")
    stamp = utcnow() - timedelta(days=1)
    n = 0
    for t in range(tables):
        for j in range(per_table):
            key = backend.put_object(BUCKET, f"{table_name(t)}/part-{j:04d}.csv", b"id\n1\n")
            key.last_modified = stamp - timedelta(seconds=n)
            n += 1
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


def measure_sensor(registry: Path, tables: int, per_table: int, variants: dict[str, Path | None], repeat: int) -> dict:
    """One moto server; ``repeat`` rounds, each running a sensor child per variant (alternating): its
    first sweep from no cursor, then NEW_FILES new files and ticks until all are reported."""
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(tables), str(per_table)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline())
        fill_seconds = round(time.monotonic() - started, 1)
        samples: dict[str, list[dict]] = {name: [] for name in variants}
        for round_ in range(repeat):
            for number, (name, source) in enumerate(variants.items()):
                load = os.getloadavg()[0]
                command = [sys.executable, __file__, "--sensor-child", str(port), str(server.pid),
                           str(round_ * len(variants) + number), str(tables)]
                done = subprocess.run(command, env=child_env(registry, source), capture_output=True, text=True,
                                      check=False)
                if done.returncode != 0:
                    sys.exit(f"sensor child ({name}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
                sample = json.loads(done.stdout.strip().splitlines()[-1])
                sample["load_average_1m"] = round(load, 2)
                samples[name].append(sample)
        flat = _flat_listing(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    return {
        "tables": tables,
        "objects": tables * per_table,
        "objects_per_table": per_table,
        "fill_seconds": fill_seconds,
        **flat,
        **{name: _summary(runs, SENSOR_FIGURES) for name, runs in samples.items()},
    }


SENSOR_FIGURES = (
    "first_tick_seconds", "first_tick_cpu_seconds", "first_tick_server_cpu_seconds", "first_tick_requests",
    "tick_seconds", "tick_cpu_seconds", "tick_server_cpu_seconds", "tick_requests", "slowest_tick_seconds",
    "load_average_1m",
)


def sensor_child(port: int, server_pid: int, number: int, tables: int) -> int:
    """Child: the sensor from no cursor over the moto server's bucket, then NEW_FILES files of its own
    (``number`` makes their keys unique) until every one is reported; prints the figures as JSON."""
    import boto3
    from bench_sensor import tick
    from dagster_aws.s3 import S3Resource

    from sf_platform import settings
    from sf_platform.core.registry import load_registry
    from sf_platform.core.sensor_cursor import Cursor
    from sf_platform.definitions import LOAD_JOB, defs
    from sf_platform.resources.aws import LandingBucket, LandingEvents
    from sf_platform.sensors.landing import build_landing_sensor

    registry = load_registry(Path(os.environ["SF_TABLES_FILE"]))
    defs.get_repository_def().asset_graph  # noqa: B018  (resolved once, as a code server has it)
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    landing = LandingBucket(s3=S3Resource(endpoint_url=endpoint, **credentials), bucket=BUCKET)
    queue = LandingEvents(endpoint_url=endpoint, **credentials)
    sensor = build_landing_sensor(registry, LOAD_JOB)
    requests = _count_requests(landing)

    def timed(cursor: str | None) -> dict:
        server_cpu = _process_cpu(server_pid)
        result = _counted(requests, tick(sensor, defs, landing, queue, cursor))
        result["server_cpu_seconds"] = round(_process_cpu(server_pid) - server_cpu, 2)
        return result

    first = [timed(None)]
    while Cursor.from_json(first[-1]["cursor"]).sweep is not None:
        first.append(timed(first[-1]["cursor"]))
    client = boto3.client("s3", endpoint_url=endpoint, **credentials)
    picks = [table_name(i * (tables // NEW_FILES)) for i in range(NEW_FILES)]
    new_keys = {f"{t.upper()}_{202509011200 + number}.csv" for t in picks[: NEW_FILES // 2]} | {
        f"{t}/new-{number}-{i}.csv" for i, t in enumerate(picks[NEW_FILES // 2:])
    }
    for key in sorted(new_keys):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"ID\n1\n")
    after, found, cursor = [], set(), first[-1]["cursor"]
    while found != new_keys and len(after) < 10 * len(first) + 2:
        after.append(timed(cursor))
        cursor = after[-1]["cursor"]
        found |= after[-1]["new_keys"]
    slowest = max(after, key=lambda t: t["seconds"])
    print(json.dumps({
        "list_budget_keys_per_tick": int(settings.get("SF_SENSOR_LIST_BUDGET")),
        "first_sweep_ticks": len(first),
        "first_tick_seconds": max(t["seconds"] for t in first),
        "first_tick_cpu_seconds": sum(t["cpu_seconds"] for t in first),
        "first_tick_server_cpu_seconds": round(sum(t["server_cpu_seconds"] for t in first), 2),
        "first_tick_requests": sum(t["list_requests"] + t["other_requests"] for t in first),
        "first_sweep_list_requests": sum(t["list_requests"] for t in first),
        "first_sweep_run_requests": sum(t["requests"] for t in first),
        "ticks_to_report_all_new": len(after) if found == new_keys else None,
        "new_reported": len(found & new_keys),
        "run_requests_after": sum(t["requests"] for t in after),
        # the tick that reported the new files: the steady state
        "tick_seconds": slowest["seconds"],
        "tick_cpu_seconds": slowest["cpu_seconds"],  # the sensor's own process
        "tick_server_cpu_seconds": slowest["server_cpu_seconds"],  # moto serving its requests
        "tick_requests": slowest["list_requests"] + slowest["other_requests"],
        "list_requests_per_tick_after": [t["list_requests"] for t in after],
        "slowest_tick_seconds": max(t["seconds"] for t in [*first, *after]),
        "cursor_bytes": max(len(t["cursor"] or "") for t in [*first, *after]),
        "sf_platform": str(Path(sys.modules["sf_platform"].__file__).parent),
    }))
    return 0


def _flat_listing(endpoint: str, server_pid: int) -> dict:
    """What one plain listing of the whole bucket costs on this server (pages of up to 1,000 keys)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
    started, cpu, server_cpu = time.monotonic(), time.process_time(), _process_cpu(server_pid)
    pages = sum(1 for _ in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET))
    return {
        "flat_listing_requests": pages,
        "flat_listing_seconds": round(time.monotonic() - started, 2),
        "flat_listing_cpu_seconds": round(time.process_time() - cpu, 2),
        "flat_listing_server_cpu_seconds": round(_process_cpu(server_pid) - server_cpu, 2),
    }


def _process_cpu(pid: int) -> float:
    """A process's user + system CPU seconds so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count_requests(landing) -> dict[str, int]:
    """Count the S3 requests of the landing bucket's (process-wide shared) client, by operation."""
    calls: dict[str, int] = {}

    def count(model, **_):
        calls[model.name] = calls.get(model.name, 0) + 1

    landing.client().meta.events.register("before-call.s3", count)
    return calls


def _counted(calls: dict[str, int], tick_result: dict) -> dict:
    tick_result["list_requests"] = calls.pop("ListObjectsV2", 0)
    tick_result["other_requests"] = sum(calls.values())
    calls.clear()
    return tick_result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--objects-per-table", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (medians reported)")
    parser.add_argument("--baseline", help="a commit to compare HEAD with, alternately (e.g. HEAD~3)")
    parser.add_argument("--only", choices=("definitions", "sensor"), help="measure only this")
    parser.add_argument("--definitions-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sensor-child", nargs=4, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.definitions_child:
        return definitions_child()
    if args.serve:
        return serve(*args.serve)
    if args.sensor_child:
        return sensor_child(*args.sensor_child)

    result = {
        "tables": args.tables,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "repeat": args.repeat,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    if args.only and RESULTS.exists():  # the other part keeps its last figures
        result = {**json.loads(RESULTS.read_text()), **result}
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, Path | None] = {"current": None}
        if args.baseline:
            variants = {
                f"baseline {args.baseline}": export(args.baseline, Path(tmp) / "baseline"),
                "HEAD": export("HEAD", Path(tmp) / "head"),
            }
            result["commits"] = {name: _commit(ref) for name, ref in (("baseline", args.baseline), ("HEAD", "HEAD"))}
        registry = Path(tmp) / "tables.yaml"
        registry.write_text(registry_yaml(args.tables))
        if args.only != "sensor":
            result["definitions"] = measure_definitions(registry, variants, args.repeat)
            print_definitions(result["definitions"], args.tables)
        if args.only != "definitions":
            result["sensor"] = measure_sensor(registry, args.tables, args.objects_per_table, variants, args.repeat)
            print_sensor(result["sensor"], variants)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(BENCH.parent)}")
    latest = list(variants)[-1]
    d, s = result.get("definitions", {}).get(latest), result.get("sensor", {}).get(latest)
    ok = (
        (d is None or (d["build_and_resolve_seconds"] <= DEFINITIONS_TARGET_S and d["socket_connects"] == 0))
        and (s is None or (s["slowest_tick_seconds"] < SENSOR_TIMEOUT_S / 4 and s["new_reported"] == NEW_FILES))
    )
    return 0 if ok else 1


def print_definitions(definitions: dict, tables: int) -> None:
    for name, d in definitions.items():
        print(
            f"[{name}] definitions of {tables:,} tables ({d['assets']:,} assets, {d['asset_checks']:,} "
            f"checks), medians of {d['runs']}: build {d['build_definitions_seconds']} s + resolve "
            f"{d['resolve_seconds']} s = {d['build_and_resolve_seconds']} s (runs "
            f"{d['build_and_resolve_seconds_runs']}); CPU {d['build_and_resolve_cpu_seconds']} s (runs "
            f"{d['build_and_resolve_cpu_seconds_runs']}); load {d['load_average_1m_runs']}; library imports "
            f"{d['import_seconds']} s; repository snapshot {d['repository_snapshot_seconds']} s "
            f"({d['repository_snapshot_mb']} MB); {d['socket_connects']} socket connects"
        )


def print_sensor(s: dict, variants: dict) -> None:
    print(f"sensor over {s['tables']:,} table folders, {s['objects']:,} objects; one plain listing of the "
          f"bucket: {s['flat_listing_requests']} requests, {s['flat_listing_seconds']} s (moto's CPU "
          f"{s['flat_listing_server_cpu_seconds']} s, the client's {s['flat_listing_cpu_seconds']} s)")
    for name in variants:
        v = s[name]
        print(
            f"[{name}] medians of {v['runs']}: first tick (no cursor) {v['first_tick_seconds']} s (runs "
            f"{v['first_tick_seconds_runs']}; sensor CPU {v['first_tick_cpu_seconds']} s, moto CPU "
            f"{v['first_tick_server_cpu_seconds']} s, {v['first_tick_requests']} S3 requests, "
            f"{v['first_sweep_run_requests']} runs); {v['new_reported']} of {NEW_FILES} new files in "
            f"{v['ticks_to_report_all_new']} ticks: {v['tick_seconds']} s (runs {v['tick_seconds_runs']}; sensor "
            f"CPU {v['tick_cpu_seconds']} s, moto CPU {v['tick_server_cpu_seconds']} s, {v['tick_requests']} "
            f"requests); load {v['load_average_1m_runs']}"
        )


def export(ref: str, into: Path) -> Path:
    """``sf_platform`` as of commit ``ref`` (git archive), in ``into``; -> the directory to import it from."""
    into.mkdir(parents=True)
    archive = into / "source.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(BENCH.parent), "archive", ref, "sf_platform"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def _commit(ref: str) -> str:
    done = subprocess.run(["git", "-C", str(BENCH.parent), "log", "-1", "--format=%h %s", ref],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()[:120]


if __name__ == "__main__":
    sys.exit(main())
