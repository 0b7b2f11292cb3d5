"""Benchmark: the landing_files sensor's ticks over a bucket of 100,000 objects with 10 new ones.

A child process runs a moto server and fills its bucket directly through moto's S3 backend (putting
100,000 objects over HTTP takes longer than the benchmark itself), spread over the registered table
folders. The sensor then lists it over HTTP, exactly as it lists real S3: each tick the loose files at the
root and at most SF_SENSOR_LIST_BUDGET keys of the folders, so the bucket is swept over several ticks.
Two scenarios:

- steady: the 100,000 objects landed over the 30 days before yesterday;
- burst: they all landed in the last 4 minutes, inside the sensor's lag window, so the cursor holds a
  digest of each of them;
- events: steady, with the bucket's S3 notifications going to an SQS queue the sensor reads.

In each, the first sweep runs from no cursor; then 10 files land (5 loose at the root, 5 in table
folders) and ticks run until all 10 have been reported. Reported: the slowest and mean tick against
Dagster's default sensor evaluation timeout (60 s), the ticks it took to report every new file, the
cursor's size, and one whole listing of the bucket (what every tick cost before sweeps). Exits 1 if a
tick takes a quarter of the timeout or a new file is missed. Saves bench/results/bench_sensor.json.

    .venv/bin/python bench/bench_sensor.py [--objects 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("SF_BENCH_SOURCE") or str(BENCH.parent))  # see bench_registry.py

RESULTS = BENCH / "results" / "bench_sensor.json"
SENSOR_TIMEOUT_S = 60  # Dagster's default DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS
BUCKET = "sf-bench-sensor"
NEW_FILES = 10
# name: (objects landed this long ago, spread over this many seconds before that, S3 notifications to SQS)
SCENARIOS = {
    "steady": (86_400, 30 * 86_400, False),
    "burst": (0, 240, False),
    "events": (86_400, 30 * 86_400, True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument(
        "--serve", nargs=3, type=int, metavar=("OBJECTS", "AGE", "SPREAD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        return serve(*args.serve)

    import dagster as dg  # noqa: F401  (imported before timing anything)

    from sf_platform.core.registry import load_registry
    from sf_platform.definitions import build_definitions
    from sf_platform.settings import REPO_ROOT, Settings

    registry = load_registry(REPO_ROOT / "tables.yaml")
    defs = build_definitions(Settings.from_env())  # the asset graph the sensor resolves its selections in
    result = {
        "objects": args.objects,
        "new_objects": NEW_FILES,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "sensor_timeout_seconds": SENSOR_TIMEOUT_S,
        "commit": subprocess.run(["git", "-C", str(BENCH.parent), "log", "-1", "--format=%h"], capture_output=True,
                                 text=True, check=False).stdout.strip(),
    }
    for name, (age, spread, events) in SCENARIOS.items():
        result[name] = scenario(registry, defs, args.objects, age, spread, events)
        figures = result[name]
        print(
            f"{name:7s} {args.objects:,} objects (filled in {figures['fill_seconds']} s), budget "
            f"{figures['list_budget_keys_per_tick']:,} keys/tick: first sweep {figures['first_sweep_ticks']} "
            f"ticks (slowest {figures['first_sweep_slowest_tick_seconds']} s); {figures['new_reported']} of "
            f"{NEW_FILES} new files reported in {figures['ticks_to_report_all_new']} ticks; slowest tick "
            f"{figures['tick_seconds']} s, mean {figures['tick_seconds_mean']} s (own CPU "
            f"{figures['tick_cpu_seconds']} s, moto's {figures['tick_server_cpu_seconds']} s) = "
            f"{figures['fraction_of_timeout']:.1%} of the "
            f"{SENSOR_TIMEOUT_S} s timeout; one whole listing {figures['whole_listing_seconds']} s; "
            f"{figures['tick_run_requests']} run requests, cursor up to {figures['cursor_bytes']:,} bytes"
        )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(BENCH.parent)}")
    ok = all(
        max(result[n]["tick_seconds"], result[n]["first_sweep_slowest_tick_seconds"]) < SENSOR_TIMEOUT_S / 4
        and result[n]["new_reported"] == NEW_FILES
        for n in SCENARIOS
    )
    return 0 if ok else 1


def scenario(registry, defs, objects: int, age_seconds: int, spread_seconds: int, events: bool) -> dict:
    import boto3
    from dagster_aws.s3 import S3Resource

    from sf_platform import settings
    from sf_platform.core.sensor_cursor import Cursor
    from sf_platform.resources.aws import LandingBucket, LandingEvents
    from sf_platform.sensors.landing import build_landing_sensor, scan

    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(objects), str(age_seconds), str(spread_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        fill_seconds = round(time.monotonic() - started, 1)
        endpoint = f"http://127.0.0.1:{port}"
        credentials = {
            "region_name": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }
        landing = LandingBucket(s3=S3Resource(endpoint_url=endpoint, **credentials), bucket=BUCKET)
        queue = LandingEvents(endpoint_url=endpoint, **credentials)
        if events:  # notifications from now on (the backend was filled without them)
            queue = LandingEvents(endpoint_url=endpoint, **credentials, queue_url=notify(queue, landing))
        sensor = build_landing_sensor(registry, "load_tables")
        # the first sweep (no cursor): every object is new, the sweep spans ceil(objects / budget) ticks
        def timed(cursor: str | None) -> dict:  # the tick, with the moto server's CPU serving it
            server_cpu = process_cpu(server.pid)
            result = tick(sensor, defs, landing, queue, cursor)
            result["server_cpu_seconds"] = round(process_cpu(server.pid) - server_cpu, 2)
            return result

        first = [timed(None)]
        while Cursor.from_json(first[-1]["cursor"]).sweep is not None:
            first.append(timed(first[-1]["cursor"]))
        # 10 new files: half loose at the root (listed every tick), half in the table folders (found
        # when the sweep reaches them); ticks run until all of them have been reported
        client = boto3.client("s3", endpoint_url=endpoint, **credentials)
        tables = sorted(registry.tables)
        new_keys = {f"MEMBER_202509{i + 1:02d}1200.csv" for i in range(NEW_FILES // 2)} | {
            f"{tables[i % len(tables)]}/new-{i}.csv" for i in range(NEW_FILES - NEW_FILES // 2)
        }
        for key in sorted(new_keys):
            client.put_object(Bucket=BUCKET, Key=key, Body=b"MEMBER_ID\n1\n")
        after, found, cursor = [], set(), first[-1]["cursor"]
        while found != new_keys and len(after) < 10 * len(first) + 2:
            after.append(timed(cursor))
            cursor = after[-1]["cursor"]
            found |= after[-1]["new_keys"]
        listed = time.monotonic()
        whole, _ = scan(landing, Cursor(), set(), 10**9, timedelta(minutes=5), datetime.now(UTC))
        whole_seconds = round(time.monotonic() - listed, 3)
        slowest = max(after, key=lambda t: t["seconds"])
        interval = int(settings.get("SF_SENSOR_INTERVAL_SECONDS"))
        return {
            "objects_landed_seconds_ago": age_seconds,
            "objects_spread_over_seconds": spread_seconds,
            "s3_notifications_to_sqs": events,
            "fill_seconds": fill_seconds,
            "list_budget_keys_per_tick": int(settings.get("SF_SENSOR_LIST_BUDGET")),
            "first_sweep_ticks": len(first),
            "first_sweep_slowest_tick_seconds": max(t["seconds"] for t in first),
            "first_sweep_run_requests": sum(t["requests"] for t in first),
            "ticks_to_report_all_new": len(after) if found == new_keys else None,
            "new_reported": len(found & new_keys),
            # a tick happens every SF_SENSOR_INTERVAL_SECONDS at most (plus its own duration)
            "latency_seconds_at_interval": len(after) * interval,
            "tick_seconds": slowest["seconds"],
            "tick_seconds_mean": round(sum(t["seconds"] for t in after) / len(after), 3),
            # the sensor process's own CPU (botocore parsing the listing's XML, the cursor, run requests);
            # the rest of the tick is waiting for the server's pages
            "tick_cpu_seconds": slowest["cpu_seconds"],
            "tick_server_cpu_seconds": slowest["server_cpu_seconds"],  # moto serving the tick's requests
            "tick_run_requests": sum(t["requests"] for t in after),
            "whole_listing_seconds": whole_seconds,  # what one tick cost before sweeps
            "objects_listed": len(whole),
            "fraction_of_timeout": round(slowest["seconds"] / SENSOR_TIMEOUT_S, 4),
            "cursor_bytes": max(len(t["cursor"] or "") for t in [*first, *after]),
        }
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def notify(queue, landing) -> str:
    """An SQS queue receiving the bucket's ObjectCreated notifications; -> its URL."""
    sqs = queue.client()
    url = sqs.create_queue(QueueName="sf-bench-sensor-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    landing.client().put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return url


def process_cpu(pid: int) -> float:
    """A process's user + system CPU seconds so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tick(sensor, defs, landing, queue, cursor: str | None) -> dict:
    import dagster as dg

    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=defs,
            resources={"landing": landing, "landing_events": queue},
        ) as context,
    ):
        started, cpu = time.monotonic(), time.process_time()
        result = sensor.evaluate_tick(context)
        seconds, cpu = round(time.monotonic() - started, 3), round(time.process_time() - cpu, 3)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "requests": len(result.run_requests or []),
        "cursor": result.cursor,
        "new_keys": {
            key for r in result.run_requests or [] for key in r.tags["sf/new_file_keys"].split(", ")
        },
    }


def serve(objects: int, age_seconds: int, spread_seconds: int) -> int:
    """Child: a moto server whose bucket holds ``objects`` objects over the registered table folders,
    stamped from ``age_seconds`` to ``age_seconds + spread_seconds`` ago. Prints the port, serves until
    stdin closes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.s3.models import s3_backends

    from sf_platform.core.registry import load_registry
    from sf_platform.settings import REPO_ROOT

    tables = sorted(load_registry(REPO_ROOT / "tables.yaml").tables)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, "us-east-1")
    stamp = utcnow() - timedelta(seconds=age_seconds)
    for i in range(objects):
        key = backend.put_object(BUCKET, f"{tables[i % len(tables)]}/part-{i:07d}.csv", b"a\n1\n")
        key.last_modified = stamp - timedelta(seconds=spread_seconds * i / objects)
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
