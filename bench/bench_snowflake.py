"""Benchmark the Snowflake hops on the local stack: the push (stage + COPY) against row INSERTs, and the
export's rows/s and peak memory.

Starts a private moto server and a private fakesnow server in a temp folder (never the shared stack),
puts the first --rows rows of TPC-H lineitem (bench/data/sf<scale>/, generated with tpchgen-cli when
missing) in a landing bucket, crawls it, and in the same run:

- curates it into the hub, then pushes it with the platform (``load_table``: the hub's Parquet data
  files -> PUT -> COPY INTO; the load alone is timed) in a child process whose peak RSS is measured;
- inserts the first --insert-rows rows with ``cursor.executemany`` in batches of --insert-batch (NiFi
  PutDatabaseRecord's style: one parameterized INSERT, rows sent in batches) through the same
  connector into a table of the same types; timed on that subset and extrapolated as rows/s (said so);
- exports the pushed table to S3 (``export_table``, Avro and Parquet) in a lean child process (the
  connector, pyarrow, fastavro, boto3; no Dagster): rows/s and peak RSS, with the size of the exported
  data (Arrow bytes) next to the 300 MB memory target. What a Dagster step imports on top is measured
  apart (a fixed cost, independent of the table).

Prints a table and writes bench/results/bench_snowflake.json with the load average (the machine may be
shared; figures are for re-running on a quiet one).

    .venv/bin/python bench/bench_snowflake.py [--scale 1.5] [--rows 3000000] [--insert-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_crawl import lineitem_csv  # noqa: E402
from measure import head_rows, landing_and_glue, line, peak_rss_mb, rate, rss_mb, run_child  # noqa: E402

TABLE = "lineitem"
DATABASE, SCHEMA = "SF_BENCH", "RAW"
PUSH_VS_INSERT_TARGET = 200.0
MAX_RSS_MB = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.5, help="TPC-H scale factor of the source file")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows pushed and exported (0: the whole file)")
    parser.add_argument("--insert-rows", type=int, default=20_000, help="rows for the executemany baseline")
    parser.add_argument("--insert-batch", type=int, default=1_000, help="rows per executemany call")
    parser.add_argument("--formats", nargs="+", choices=["avro", "parquet"], default=["avro", "parquet"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        return {"push": child_push, "export": child_export}[job["job"]](job)

    from sf_platform.local import stack

    work = Path(tempfile.mkdtemp(prefix="sf_bench_snowflake_"))
    source = lineitem_csv(args.scale)
    path = head_rows(source, args.rows, work / "lineitem.csv") if args.rows else source
    print(f"{path}: {path.stat().st_size / 1e6:,.0f} MB, {os.cpu_count()} cores")
    figures: dict = {"file_bytes": path.stat().st_size, "cores": os.cpu_count(), "machine": platform.machine()}
    figures |= {"python": platform.python_version(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    moto, fakesnow = stack.start_moto(work), stack.start_fakesnow(work)
    settings = {
        "aws": {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{moto.port}",
                "aws_access_key_id": "bench", "aws_secret_access_key": "bench"},
        "bucket": f"sf-bench-{uuid.uuid4().hex[:8]}", "glue_database": "sf_bench", "fakesnow_port": fakesnow.port,
    }
    try:
        figures |= run_all(args, path, settings)
    finally:
        stack.stop(fakesnow)
        stack.stop(moto)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report(figures)


def connect(settings: dict):
    import snowflake.connector

    conn = snowflake.connector.connect(
        user="bench", password="bench", account="fakesnow", host="127.0.0.1", port=settings["fakesnow_port"],
        protocol="http", network_timeout=600, session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    )
    conn.cursor().execute(f'CREATE DATABASE IF NOT EXISTS "{DATABASE}"')
    conn.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{DATABASE}"."{SCHEMA}"')
    return conn


def run_all(args, path: Path, settings: dict) -> dict:
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.crawl import crawl_table

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    landing.ensure_bucket()
    landing.upload_file(str(path), f"{TABLE}/{TABLE}.csv")
    started = time.perf_counter()
    crawl = crawl_table(landing, glue, TABLE, parse_registry({"tables": {TABLE: {}}}).table(TABLE))
    print(f"rows: {crawl.rows:,}; crawl {time.perf_counter() - started:.1f} s")

    push = run_child(__file__, {"job": "push"} | settings, "push")
    assert push["rows_loaded"] == crawl.rows == push["rows_in_table"], push
    figures: dict = {"rows": crawl.rows}
    figures["platform_push"] = rate(push["rows_loaded"], push["seconds"]) | {
        "peak_rss_mb": round(push["peak_rss_mb"]), "parts": push["parts"], "bytes": push["bytes"]
    }
    line("platform push (stage + COPY INTO)", figures["platform_push"], f"peak RSS {push['peak_rss_mb']:.0f} MB")

    subset = head_rows(path, args.insert_rows, path.parent / "insert.csv")
    figures["executemany_insert"] = executemany_insert(settings, subset, push["snowflake_types"], args.insert_batch)
    line(f"executemany INSERT ({args.insert_rows:,} rows, extrapolated)", figures["executemany_insert"],
         f"batches of {args.insert_batch}")

    for file_format in args.formats:
        export = run_child(__file__, {"job": "export"} | settings | {"format": file_format}, "export")
        figures[f"platform_export_{file_format}"] = rate(export["rows"], export["seconds"]) | {
            key: round(export[key]) if key.endswith("_mb") else export[key]
            for key in ("peak_rss_mb", "baseline_rss_mb", "arrow_bytes", "parts", "bytes_written", "read_method")
        }
        line(f"platform export ({file_format})", figures[f"platform_export_{file_format}"],
             f"peak RSS {export['peak_rss_mb']:.0f} MB (imports {export['baseline_rss_mb']:.0f}), "
             f"data {export['arrow_bytes'] / 2**20:,.0f} MiB (Arrow)")
    figures["dagster_step_import_rss_mb"] = dagster_import_rss()
    print(f"(a Dagster step imports {figures['dagster_step_import_rss_mb']} MB before exporting a row; "
          "the export above runs without Dagster)")
    return figures


def child_push(settings: dict) -> int:
    """Curate the table into the hub (untimed: the curated hop's work), then time the Snowflake load from
    the hub: the hub's Parquet data files downloaded, PUT and COPYed (the internal stage)."""
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.curate import curate_table
    from sf_platform.hops.snowflake_load import load_table
    from sf_platform.hub.catalog import Hub

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    config = parse_registry({"tables": {TABLE: {}}}).table(TABLE)
    curated = f"{settings['glue_database']}_curated"
    glue.ensure_database(curated)
    curate_table(landing, glue, TABLE, config, curated_database=curated)
    conn = connect(settings)
    started = time.perf_counter()
    report = load_table(Hub(landing, glue, curated), landing, conn, DATABASE, SCHEMA, TABLE, config)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "rows_loaded": report.rows_copied, "rows_in_table": report.rows_in_table,
        "parts": report.files_copied, "bytes": 0, "peak_rss_mb": peak_rss_mb(),
        "snowflake_types": {c.name: c.snowflake_type for c in report.columns},
    }))
    return 0


def child_export(settings: dict) -> int:
    """The export in a lean process: the connector, pyarrow, fastavro and boto3, without Dagster (its
    imports are a fixed cost measured apart, see ``dagster_import_rss``)."""
    from sf_platform.core import exports as ex
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops import snowflake_export

    bucket = _S3Bucket(settings)
    conn = connect(settings)
    config = parse_registry(
        {"tables": {"t": {}}, "exports": {"table_pattern": TABLE, "format": settings["format"]}}
    ).exports
    arrow_bytes = 0
    conform = ex.conform

    def measured(batch, schema):  # the size of the data that flowed through, for the memory comparison
        nonlocal arrow_bytes
        out, notes = conform(batch, schema)
        arrow_bytes += out.nbytes
        return out, notes

    ex.conform = measured
    baseline = rss_mb()
    started = time.perf_counter()
    report = snowflake_export.export_table(bucket, conn, DATABASE, SCHEMA, ex.ExportTable(TABLE.upper(), TABLE), config)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "rows": report.rows_exported, "parts": len(report.parts_written),
        "bytes_written": report.bytes_written, "arrow_bytes": arrow_bytes, "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline, "read_method": report.read_method,
    }))
    return 0


class _S3Bucket:
    """The LandingBucket methods the export calls, on plain boto3 (LandingBucket imports Dagster)."""

    def __init__(self, settings: dict):
        import boto3

        self.bucket = settings["bucket"]
        self._s3 = boto3.client("s3", **settings["aws"])

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def head(self, key: str):
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.ClientError:
            return None

    def open(self, key: str):
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]

    def put(self, key: str, body: bytes, **kwargs) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)

    def upload_file(self, path: str, key: str) -> None:
        self._s3.upload_file(path, self.bucket, key)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def list_objects(self, prefix: str = "") -> list[dict]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])]


def dagster_import_rss() -> float:
    """RSS of a process that has imported what a Dagster step running the export imports."""
    code = "import dagster_aws.s3, dagster_snowflake, sf_platform.resources.aws, sf_platform.hops.snowflake_export, measure\n"
    code += "print(measure.rss_mb())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(BENCH.parent)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return round(float(done.stdout.strip().splitlines()[-1]))


def executemany_insert(settings: dict, path: Path, snowflake_types: dict[str, str], batch: int) -> dict:
    """Row INSERTs through the connector: one parameterized INSERT, executemany per batch of rows."""
    import pyarrow.csv as pacsv

    from sf_platform.core.ddl import snowflake_table_ref
    from sf_platform.core.identifiers import quote_snowflake, snowflake_name

    columns = {n: t for n, t in snowflake_types.items() if not n.startswith("_sf_")}
    target = snowflake_table_ref(DATABASE, SCHEMA, "lineitem_inserts")
    body = ", ".join(f"{quote_snowflake(snowflake_name(n))} {t}" for n, t in columns.items())
    rows = pacsv.read_csv(path).to_pylist()
    values = [tuple(row.values()) for row in rows]
    conn = connect(settings)
    cur = conn.cursor()
    cur.execute(f"CREATE OR REPLACE TABLE {target} ({body})")
    statement = f"INSERT INTO {target} VALUES ({', '.join(['%s'] * len(columns))})"
    started = time.perf_counter()
    for start in range(0, len(values), batch):
        cur.executemany(statement, values[start : start + batch])
    seconds = time.perf_counter() - started
    cur.execute(f"SELECT COUNT(*) FROM {target}")
    assert cur.fetchone()[0] == len(values)
    return rate(len(values), seconds) | {"subset": True, "batch_rows": batch, "extrapolated": "rows/s of the subset"}


def report(figures: dict) -> int:
    push, insert = figures["platform_push"], figures["executemany_insert"]
    ratio = round(push["rows_per_s"] / insert["rows_per_s"], 1)
    figures["ratios"] = {"push_vs_executemany": ratio}
    figures["targets"] = {"push_vs_executemany": PUSH_VS_INSERT_TARGET, "export_peak_rss_mb": MAX_RSS_MB}
    met = {"push_vs_executemany": ratio >= PUSH_VS_INSERT_TARGET}
    print(f"  push vs executemany INSERT: {ratio}x (target >= {PUSH_VS_INSERT_TARGET:g}x; INSERTs timed on a subset)")
    for name in [k for k in figures if k.startswith("platform_export_")]:
        export = figures[name]
        met[f"{name}_peak_rss"] = export["peak_rss_mb"] <= MAX_RSS_MB
        met[f"{name}_data_larger_than_rss_target"] = export["arrow_bytes"] > MAX_RSS_MB * 2**20
        print(f"  {name}: peak RSS {export['peak_rss_mb']} MB (target <= {MAX_RSS_MB} MB) "
              f"for {export['arrow_bytes'] / 2**20:,.0f} MiB of data, {export['rows_per_s']:,} rows/s")
    figures["targets_met"] = met
    print(f"  load average before {figures['load_average_before']}, after {figures['load_average_after']}")
    out = BENCH / "results" / "bench_snowflake.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out.relative_to(BENCH.parent)}")
    return 0 if all(figures["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
