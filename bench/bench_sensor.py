"""Benchmark: one tick of the landing_files sensor over a bucket of 100,000 objects with 10 new ones.

Starts a private moto server, fills a bucket (objects under registered table prefixes), evaluates the
sensor once to build its cursor, lands 10 new files, and times the next tick. Compares with Dagster's
default sensor timeout (60 s). Saves bench/results/bench_sensor.json.

    .venv/bin/python bench/bench_sensor.py [--objects 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import dagster as dg
from dagster_aws.s3 import S3Resource

from sf_platform.core.registry import load_registry
from sf_platform.definitions import build_definitions
from sf_platform.local import stack
from sf_platform.resources.aws import LandingBucket
from sf_platform.sensors.landing import build_landing_sensor
from sf_platform.settings import REPO_ROOT, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "bench_sensor.json"
SENSOR_TIMEOUT_S = 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="sf_bench_sensor_"))
    moto = stack.start_moto(state)
    try:
        endpoint = f"http://127.0.0.1:{moto.port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="sf-bench-sensor")
        registry = load_registry(REPO_ROOT / "tables.yaml")
        tables = sorted(registry.tables)
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: client.put_object(Bucket="sf-bench-sensor",
                                                      Key=f"{tables[i % len(tables)]}/part-{i:07d}.csv", Body=b"a\n1\n"),
                          range(args.objects)))
        fill_seconds = time.monotonic() - started

        landing = LandingBucket(
            s3=S3Resource(region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing"),
            bucket="sf-bench-sensor",
        )
        sensor = build_landing_sensor(registry)
        defs = build_definitions(Settings.from_env())  # the asset graph the sensor resolves its selection in
        first = _tick(sensor, defs, landing, None)
        for i in range(10):
            client.put_object(Bucket="sf-bench-sensor", Key=f"MEMBER_2025090{i}1200.csv", Body=b"MEMBER_ID\n1\n")
        second = _tick(sensor, defs, landing, first["cursor"])
        result = {
            "objects": args.objects,
            "new_objects": 10,
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "load_average": os.getloadavg(),
            "fill_seconds": round(fill_seconds, 1),
            "first_tick_seconds": first["seconds"],
            "first_tick_run_requests": first["requests"],
            "tick_with_10_new_seconds": second["seconds"],
            "tick_with_10_new_run_requests": second["requests"],
            "sensor_timeout_seconds": SENSOR_TIMEOUT_S,
            "fraction_of_timeout": round(second["seconds"] / SENSOR_TIMEOUT_S, 3),
            "cursor_bytes": len(second["cursor"] or ""),
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
    finally:
        stack.stop(moto)


def _tick(sensor, defs, landing, cursor):
    with dg.instance_for_test() as instance, dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"landing": landing}
    ) as context:
        started = time.monotonic()
        result = sensor.evaluate_tick(context)
        seconds = round(time.monotonic() - started, 2)
    return {"seconds": seconds, "requests": len(result.run_requests or []), "cursor": result.cursor}


if __name__ == "__main__":
    main()
