"""Benchmark the Snowflake load from the hub (issue 14) against row INSERTs and write_pandas of the same rows.

Generates lineitem-shaped CSV objects (``bench_mysql_hub.write_objects``), lands them in a bucket on a
private moto server, crawls and curates them into the hub (an Iceberg table; timed apart), then, each in
a child process whose peak RSS is measured, loads a private fakesnow server:

- full: the first load of the Snowflake table from the hub (``hops.snowflake_load.load_table``, internal
  stage: the hub's Parquet data files downloaded, PUT and COPYed with MATCH_BY_COLUMN_NAME, the ledger
  row in the same transaction);
- nothing new: the same call again (answered without the table's lock);
- one object replaced: the object rewritten, crawled and curated again, then the incremental load.

Baselines through the same connector on the same server: ``cursor.executemany`` of a subset of the rows
(one parameterized INSERT per batch; rows/s of the subset, said so) and ``write_pandas`` of all rows
(the rows read from the hub into pandas first, untimed). Issue 14's targets: load >= 500 x executemany
and >= 1 x write_pandas. fakesnow is DuckDB behind an HTTP server: the figures compare mechanisms on one
machine, not Snowflake's own speed. Writes bench/results/bench_snowflake_hub.json.

    .venv/bin/python bench/bench_snowflake_hub.py [--rows 1000000] [--objects 4] [--insert-rows 5000]
"""

from __future__ import annotations

import argparse
import json
import os
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

from bench_mysql_hub import write_objects  # noqa: E402
from bench_snowflake import DATABASE, SCHEMA, connect, executemany_insert  # noqa: E402
from measure import head_rows, landing_and_glue, line, peak_rss_mb, rate, rss_mb, run_child  # noqa: E402

TABLE = "lineitem"
TARGETS = {"vs_executemany": 500.0, "vs_write_pandas": 1.0}
MAX_RSS_MB = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=4, help="CSV objects the rows are split into")
    parser.add_argument("--insert-rows", type=int, default=5_000, help="rows for the executemany baseline")
    parser.add_argument("--insert-batch", type=int, default=1_000, help="rows per executemany call")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        return {"load": child_load, "write_pandas": child_write_pandas}[job["job"]](job)

    from sf_platform.local import stack

    work = Path(tempfile.mkdtemp(prefix="sf_bench_snowflake_hub_"))
    figures: dict = {"rows": args.rows, "objects": args.objects, "cores": os.cpu_count()}
    figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    moto, fakesnow = stack.start_moto(work), stack.start_fakesnow(work)
    settings = {
        "aws": {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{moto.port}",
                "aws_access_key_id": "bench", "aws_secret_access_key": "bench"},
        "bucket": f"sf-bench-{uuid.uuid4().hex[:8]}", "glue_database": "sf_bench", "fakesnow_port": fakesnow.port,
    }
    settings["curated_database"] = f"{settings['glue_database']}_curated"
    try:
        figures |= run_all(args, work, settings)
    finally:
        stack.stop(fakesnow)
        stack.stop(moto)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report(figures)


def run_all(args, work: Path, settings: dict) -> dict:
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.crawl import crawl_table
    from sf_platform.hops.curate import curate_table

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    landing.ensure_bucket()
    glue.ensure_database()
    glue.ensure_database(settings["curated_database"])
    config = parse_registry({"tables": {TABLE: {}}}).table(TABLE)
    paths = write_objects(work, args.rows, args.objects)
    for path in paths:
        landing.upload_file(str(path), f"{TABLE}/{path.name}")
    started = time.perf_counter()
    crawl_table(landing, glue, TABLE, config)
    curated = curate_table(landing, glue, TABLE, config, curated_database=settings["curated_database"])
    figures: dict = {"crawl_and_curate": rate(curated.rows, time.perf_counter() - started)}
    line("crawl + curate (S3 CSV -> hub)", figures["crawl_and_curate"])
    connect(settings).close()  # creates the database and schema

    full = run_child(__file__, {"job": "load"} | settings, "full load")
    assert full["rows_inserted"] == full["rows"] == args.rows and full["full"], full
    figures["full"] = rate(full["rows_inserted"], full["seconds"]) | {
        "peak_rss_mb": full["peak_rss_mb"], "rss_before_load_mb": full["baseline_rss_mb"],
        "files_copied": full["files_copied"],
    }
    line("Snowflake load from the hub (full)", figures["full"],
         f"{full['files_copied']} files, peak RSS {full['peak_rss_mb']:.0f} MB")

    quiet = run_child(__file__, {"job": "load"} | settings, "nothing new")
    assert quiet["rows_inserted"] == quiet["rows_deleted"] == 0 and quiet["up_to_date"], quiet
    figures["nothing_new_seconds"] = round(quiet["seconds"], 3)
    print(f"{'Snowflake load from the hub (nothing new)':44s} {quiet['seconds']:8.2f} s")

    replaced = paths[0]
    replaced.write_bytes(replaced.read_bytes().replace(b'"AIR"', b'"SHIP"', 1000))
    landing.upload_file(str(replaced), f"{TABLE}/{replaced.name}")
    crawl_table(landing, glue, TABLE, config)
    curate_table(landing, glue, TABLE, config, curated_database=settings["curated_database"])
    one = run_child(__file__, {"job": "load"} | settings, "one object replaced")
    assert one["rows"] == args.rows and one["rows_deleted"] >= -(-args.rows // args.objects), one
    figures["one_replaced"] = rate(one["rows_inserted"], one["seconds"]) | {"rows_deleted": one["rows_deleted"]}
    line("Snowflake load from the hub (1 object replaced)", figures["one_replaced"], f"{one['rows_deleted']:,} deleted")

    subset = head_rows(paths[1], args.insert_rows, work / "insert.csv")
    types = {name: t for name, t in full["snowflake_types"].items()}
    figures["executemany_insert"] = executemany_insert(settings, subset, types, args.insert_batch)
    line(f"executemany INSERT ({args.insert_rows:,} rows)", figures["executemany_insert"], f"batches of {args.insert_batch}")

    pandas = _child_or_error({"job": "write_pandas"} | settings)
    if "error" in pandas:
        figures["write_pandas"] = pandas
        print(f"{'write_pandas':44s} not measured: {pandas['error']}")
    else:
        figures["write_pandas"] = rate(pandas["rows"], pandas["seconds"]) | {"peak_rss_mb": pandas["peak_rss_mb"]}
        line("write_pandas (all rows, read from the hub untimed)", figures["write_pandas"],
             f"peak RSS {pandas['peak_rss_mb']:.0f} MB")
    return figures


def _child_or_error(job: dict) -> dict:
    """A child's JSON answer, or {"error": its last error line} when it fails (fakesnow's server does not
    answer every client-side command, e.g. write_pandas' upload)."""
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True,
                          check=False)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}


def child_load(settings: dict) -> int:
    """One Snowflake load from the hub in a process of its own (its peak RSS is the load's)."""
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.snowflake_load import load_table
    from sf_platform.hub.catalog import Hub

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    config = parse_registry({"tables": {TABLE: {}}}).table(TABLE)
    conn = connect(settings)
    baseline = rss_mb()
    started = time.perf_counter()
    report = load_table(Hub(landing, glue, settings["curated_database"]), landing, conn, DATABASE, SCHEMA, TABLE, config)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "rows": report.rows_in_table, "rows_inserted": report.rows_inserted,
        "rows_deleted": report.rows_deleted, "full": report.full, "up_to_date": report.up_to_date,
        "files_copied": report.files_copied, "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline,
        "snowflake_types": {c.name: c.snowflake_type for c in report.columns},
    }))
    return 0


def child_write_pandas(settings: dict) -> int:
    """The hub's rows into pandas (untimed), then ``write_pandas`` into a new table (timed)."""
    from snowflake.connector.pandas_tools import write_pandas

    from sf_platform.hub.catalog import Hub
    from sf_platform.hub.conventions import BOOKKEEPING

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    table = Hub(landing, glue, settings["curated_database"]).require(TABLE).scan().to_arrow()
    frame = table.drop_columns([c for c in BOOKKEEPING if c in table.column_names]).to_pandas()
    frame.columns = [c.upper() for c in frame.columns]
    conn = connect(settings)
    started = time.perf_counter()
    ok, _chunks, rows, _ = write_pandas(conn, frame, "LINEITEM_PANDAS", database=DATABASE, schema=SCHEMA,
                                        auto_create_table=True, overwrite=True)
    seconds = time.perf_counter() - started
    assert ok and rows == len(frame), (ok, rows, len(frame))
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mb": peak_rss_mb()}))
    return 0


def report(figures: dict) -> int:
    load = figures["full"]["rows_per_s"]
    ratios = {"vs_executemany": round(load / figures["executemany_insert"]["rows_per_s"], 1)}
    if "rows_per_s" in figures["write_pandas"]:
        ratios["vs_write_pandas"] = round(load / figures["write_pandas"]["rows_per_s"], 2)
    figures["ratios"], figures["targets"] = ratios, TARGETS | {"peak_rss_mb": MAX_RSS_MB}
    figures["targets_met"] = {k: ratios[k] >= v for k, v in TARGETS.items() if k in ratios} | {
        "peak_rss": figures["full"]["peak_rss_mb"] <= MAX_RSS_MB}
    for name, value in ratios.items():
        print(f"  full load {name.replace('_', ' ')}: {value}x (target {TARGETS[name]}x)")
    print(f"  full load peak RSS {figures['full']['peak_rss_mb']:.0f} MB, of it "
          f"{figures['full']['rss_before_load_mb']:.0f} MB before the load (imports, connection)")
    print(f"  load average before {figures['load_average_before']}, after {figures['load_average_after']}")
    out = BENCH / "results" / "bench_snowflake_hub.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
