"""Benchmark: one tick of the landing_files sensor over a bucket of 100,000 objects with 10 new ones.

A child process runs a moto server and fills its bucket directly through moto's S3 backend (putting
100,000 objects over HTTP takes longer than the benchmark itself), spread over the registered table
folders. The sensor then lists it over HTTP, exactly as it lists real S3. Two scenarios:

- steady: the 100,000 objects landed a day ago; a cold first tick (no cursor), then 10 new files land
  and the next tick is timed;
- burst: the 100,000 objects all landed inside the sensor's lag window, so the cursor holds a digest of
  each of them; the tick after 10 new files is timed, and the cursor's size is reported.

Compares with Dagster's default sensor evaluation timeout (60 s). Saves bench/results/bench_sensor.json.

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
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

RESULTS = BENCH / "results" / "bench_sensor.json"
SENSOR_TIMEOUT_S = 60  # Dagster's default DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS
BUCKET = "sf-bench-sensor"
NEW_FILES = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument(
        "--serve", nargs=2, type=int, metavar=("OBJECTS", "AGE_SECONDS"), help=argparse.SUPPRESS
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
    }
    for name, age in (("steady", 86_400), ("burst", 0)):
        result[name] = scenario(registry, defs, args.objects, age)
        figures = result[name]
        print(
            f"{name:7s} {args.objects:,} objects (filled in {figures['fill_seconds']} s): first tick "
            f"{figures['first_tick_seconds']} s; tick with {NEW_FILES} new {figures['tick_seconds']} s "
            f"(own CPU {figures['tick_cpu_seconds']} s, listing alone {figures['listing_alone_seconds']} s) "
            f"({figures['fraction_of_timeout']:.1%} of the {SENSOR_TIMEOUT_S} s timeout), "
            f"{figures['tick_run_requests']} run requests, cursor {figures['cursor_bytes']:,} bytes"
        )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(BENCH.parent)}")
    ok = all(result[n]["tick_seconds"] < SENSOR_TIMEOUT_S / 4 for n in ("steady", "burst"))
    return 0 if ok else 1


def scenario(registry, defs, objects: int, age_seconds: int) -> dict:
    import boto3
    from dagster_aws.s3 import S3Resource

    from sf_platform.resources.aws import LandingBucket
    from sf_platform.sensors.landing import build_landing_sensor, list_landing

    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(objects), str(age_seconds)],
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
        sensor = build_landing_sensor(registry)
        first = tick(sensor, defs, landing, None)
        client = boto3.client("s3", endpoint_url=endpoint, **credentials)
        for i in range(NEW_FILES):
            client.put_object(Bucket=BUCKET, Key=f"MEMBER_2025090{i}1200.csv", Body=b"MEMBER_ID\n1\n")
        second = tick(sensor, defs, landing, first["cursor"])
        listed = time.monotonic()
        count = len(list_landing(landing, set()))
        list_seconds = round(time.monotonic() - listed, 3)
        return {
            "objects_landed_seconds_ago": age_seconds,
            "fill_seconds": fill_seconds,
            "first_tick_seconds": first["seconds"],
            "first_tick_run_requests": first["requests"],
            "first_tick_cursor_bytes": len(first["cursor"] or ""),
            "tick_seconds": second["seconds"],
            # the sensor process's own CPU (botocore parsing the listing's XML, the cursor, run requests);
            # the rest of the tick is waiting for the server's pages
            "tick_cpu_seconds": second["cpu_seconds"],
            "listing_alone_seconds": list_seconds,
            "objects_listed": count,
            "tick_run_requests": second["requests"],
            "fraction_of_timeout": round(second["seconds"] / SENSOR_TIMEOUT_S, 4),
            "cursor_bytes": len(second["cursor"] or ""),
        }
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def tick(sensor, defs, landing, cursor: str | None) -> dict:
    import dagster as dg

    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"landing": landing}
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
    }


def serve(objects: int, age_seconds: int) -> int:
    """Child: a moto server whose bucket holds ``objects`` objects, stamped ``age_seconds`` ago, spread
    over the registered table folders. Prints the port, serves until stdin closes."""
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
        key.last_modified = stamp
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
