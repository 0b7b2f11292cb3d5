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

Saves bench/results/bench_registry.json.

    .venv/bin/python bench/bench_registry.py [--tables 1000] [--objects-per-table 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

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


def child_env(registry: Path) -> dict[str, str]:
    # every endpoint on a closed loopback port: a connect attempt would fail fast (and is counted)
    return {
        **os.environ,
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
    }))
    return 0


def measure_definitions(registry: Path, runs: int = 2) -> dict:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--definitions-child"], env=child_env(registry),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"definitions child failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        sample = json.loads(done.stdout.strip().splitlines()[-1])
        sample["process_seconds"] = round(time.perf_counter() - started, 2)
        samples.append(sample)
    best = min(samples, key=lambda s: s["build_and_resolve_seconds"])
    return {**best, "build_and_resolve_seconds_runs": [s["build_and_resolve_seconds"] for s in samples],
            "process_seconds_runs": [s["process_seconds"] for s in samples]}


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


def measure_sensor(registry_path: Path, tables: int, per_table: int) -> dict:
    import boto3
    from dagster_aws.s3 import S3Resource

    os.environ.update({k: v for k, v in child_env(registry_path).items() if k.startswith("SF_")})
    from bench_sensor import tick

    from sf_platform import settings
    from sf_platform.core.registry import load_registry
    from sf_platform.core.sensor_cursor import Cursor
    from sf_platform.definitions import LOAD_JOB, build_definitions
    from sf_platform.resources.aws import LandingBucket, LandingEvents
    from sf_platform.sensors.landing import build_landing_sensor
    from sf_platform.settings import Settings

    registry = load_registry(registry_path)
    defs = build_definitions(Settings.from_env())
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(tables), str(per_table)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline())
        fill_seconds = round(time.monotonic() - started, 1)
        endpoint = f"http://127.0.0.1:{port}"
        credentials = {"region_name": "us-east-1", "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        landing = LandingBucket(s3=S3Resource(endpoint_url=endpoint, **credentials), bucket=BUCKET)
        queue = LandingEvents(endpoint_url=endpoint, **credentials)
        sensor = build_landing_sensor(registry, LOAD_JOB)
        requests = _count_listings()
        first = [_counted(requests, tick(sensor, defs, landing, queue, None))]
        while Cursor.from_json(first[-1]["cursor"]).sweep is not None:
            first.append(_counted(requests, tick(sensor, defs, landing, queue, first[-1]["cursor"])))
        client = boto3.client("s3", endpoint_url=endpoint, **credentials)
        picks = [table_name(i * (tables // NEW_FILES)) for i in range(NEW_FILES)]
        new_keys = {f"{t.upper()}_202509011200.csv" for t in picks[: NEW_FILES // 2]} | {
            f"{t}/new-{i}.csv" for i, t in enumerate(picks[NEW_FILES // 2:])
        }
        for key in sorted(new_keys):
            client.put_object(Bucket=BUCKET, Key=key, Body=b"ID\n1\n")
        after, found, cursor = [], set(), first[-1]["cursor"]
        while found != new_keys and len(after) < 10 * len(first) + 2:
            after.append(_counted(requests, tick(sensor, defs, landing, queue, cursor)))
            cursor = after[-1]["cursor"]
            found |= after[-1]["new_keys"]
        slowest = max(t["seconds"] for t in [*first, *after])
        # what one flat listing of the same bucket costs (a page of up to 1,000 keys per request)
        paginator = client.get_paginator("list_objects_v2")
        listed = time.monotonic()
        pages = sum(1 for _ in paginator.paginate(Bucket=BUCKET))
        flat_seconds = round(time.monotonic() - listed, 2)
        return {
            "tables": tables,
            "objects": tables * per_table,
            "objects_per_table": per_table,
            "fill_seconds": fill_seconds,
            "list_budget_keys_per_tick": int(settings.get("SF_SENSOR_LIST_BUDGET")),
            "first_sweep_ticks": len(first),
            "first_sweep_slowest_tick_seconds": max(t["seconds"] for t in first),
            "first_sweep_run_requests": sum(t["requests"] for t in first),
            "ticks_to_report_all_new": len(after) if found == new_keys else None,
            "new_reported": len(found & new_keys),
            "run_requests_after": sum(t["requests"] for t in after),
            "tick_seconds": max(t["seconds"] for t in after),
            "tick_seconds_mean": round(sum(t["seconds"] for t in after) / len(after), 3),
            "tick_cpu_seconds": max(t["cpu_seconds"] for t in after),
            "slowest_tick_seconds": slowest,
            "fraction_of_timeout": round(slowest / SENSOR_TIMEOUT_S, 4),
            "cursor_bytes": max(len(t["cursor"] or "") for t in [*first, *after]),
            # the sweep lists folder by folder: at least one request per table folder per sweep
            "list_requests_first_sweep": sum(t["list_requests"] for t in first),
            "list_requests_per_tick_after": [t["list_requests"] for t in after],
            "seconds_per_list_request": round(
                sum(t["seconds"] for t in first) / max(1, sum(t["list_requests"] for t in first)), 4
            ),
            "flat_listing_seconds": flat_seconds,
            "flat_listing_requests": pages,
        }
    finally:
        server.stdin.close()
        server.wait(timeout=60)


def _count_listings() -> list[int]:
    """Count the sensor's S3 listing requests (LandingBucket.list_page / list_top_level calls)."""
    from sf_platform.resources.aws import LandingBucket

    calls = [0]
    for name in ("list_page", "list_top_level"):
        original = getattr(LandingBucket, name)

        def counting(self, *args, _original=original, **kwargs):
            calls[0] += 1
            return _original(self, *args, **kwargs)

        setattr(LandingBucket, name, counting)
    return calls


def _counted(calls: list[int], tick_result: dict) -> dict:
    tick_result["list_requests"] = calls[0]
    calls[0] = 0
    return tick_result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--objects-per-table", type=int, default=20)
    parser.add_argument("--definitions-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.definitions_child:
        return definitions_child()
    if args.serve:
        return serve(*args.serve)

    result = {
        "tables": args.tables,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "tables.yaml"
        registry.write_text(registry_yaml(args.tables))
        d = result["definitions"] = measure_definitions(registry)
        print(
            f"definitions of {args.tables:,} tables ({d['assets']:,} assets, {d['asset_checks']:,} checks): "
            f"build {d['build_definitions_seconds']} s + resolve {d['resolve_seconds']} s = "
            f"{d['build_and_resolve_seconds']} s (CPU {d['build_and_resolve_cpu_seconds']} s; runs "
            f"{d['build_and_resolve_seconds_runs']}), library imports "
            f"{d['import_seconds']} s, repository snapshot {d['repository_snapshot_seconds']} s "
            f"({d['repository_snapshot_mb']} MB); whole process {d['process_seconds']} s; "
            f"{d['socket_connects']} socket connects"
        )
        s = result["sensor"] = measure_sensor(registry, args.tables, args.objects_per_table)
        print(
            f"sensor over {s['tables']:,} table folders, {s['objects']:,} objects: first sweep {s['first_sweep_ticks']} "
            f"ticks (slowest {s['first_sweep_slowest_tick_seconds']} s); {s['new_reported']} of {NEW_FILES} new files "
            f"in {s['ticks_to_report_all_new']} ticks; slowest tick {s['slowest_tick_seconds']} s = "
            f"{s['fraction_of_timeout']:.1%} of the {SENSOR_TIMEOUT_S} s timeout; cursor up to {s['cursor_bytes']:,} bytes; "
            f"{s['list_requests_first_sweep']:,} list requests in the first sweep ({s['seconds_per_list_request']} s each); "
            f"one flat listing of the bucket: {s['flat_listing_requests']} requests, {s['flat_listing_seconds']} s"
        )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(BENCH.parent)}")
    ok = (
        result["definitions"]["build_and_resolve_seconds"] <= DEFINITIONS_TARGET_S
        and result["definitions"]["socket_connects"] == 0
        and result["sensor"]["slowest_tick_seconds"] < SENSOR_TIMEOUT_S / 4
        and result["sensor"]["new_reported"] == NEW_FILES
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
