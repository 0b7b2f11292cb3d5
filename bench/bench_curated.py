"""Benchmark the curated layer (the Iceberg hub) on TPC-H lineitem: bytes curated vs raw, and a query in place
on both.

Starts a private moto server in a temp folder (never the shared stack), uploads lineitem.csv (made by
tpchgen-cli under --data, /tmp by default, reused when present; never committed) to a landing bucket,
crawls it, curates it in a child process (``hops.curate.curate_table``: the hub's Iceberg table of typed
zstd Parquet files and its Glue entry; time, rows/s and peak RSS are the child's), then times, in one run
and through the same function ``sf-platform query`` uses,

    SELECT l_returnflag, sum(l_quantity) FROM <t> WHERE l_shipdate >= '1998-01-01' GROUP BY 1

on the raw CSV table (the crawl's Glue entry) and on the hub table (pyiceberg plans the current snapshot's
data files; both answers must agree), alternating, on S3 (moto) and on a local copy of the same files.
Targets (issue 14): curated bytes <= 25 % of raw bytes; the query >= 5x faster on curated. Prints a table
and writes bench/results/bench_curated.json with the load average (the machine may be shared).

    .venv/bin/python bench/bench_curated.py [--scale 1] [--rows 0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_hub import lineitem_parts  # noqa: E402
from measure import head_rows, landing_and_glue, peak_rss_mb, run_child  # noqa: E402

TABLE = "lineitem"
RAW_DB, CURATED_DB = "sf_bench", "sf_bench_curated"
QUERY = "SELECT l_returnflag, sum(l_quantity) FROM {} WHERE l_shipdate >= '1998-01-01' GROUP BY 1"
MAX_RATIO = 0.25  # issue 14
MIN_SPEEDUP = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor of the source file")
    parser.add_argument("--data", default="/tmp/sf_hub_bench_data", help="where tpchgen-cli writes (reused)")
    parser.add_argument("--rows", type=int, default=0, help="use only the first ROWS rows (0: the whole file)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each query (the fastest counts)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_curate(json.loads(args.child))

    import duckdb
    import pyarrow

    from sf_platform.local import stack

    work = Path(tempfile.mkdtemp(prefix="sf_bench_curated_"))
    source = lineitem_parts(Path(args.data), args.scale, 1)[0]
    path = head_rows(source, args.rows, work / "lineitem.csv") if args.rows else source
    print(f"{path}: {path.stat().st_size / 1e6:,.0f} MB, {os.cpu_count()} cores")
    figures: dict = {"file": str(path.relative_to(BENCH.parent)) if path.is_relative_to(BENCH.parent) else str(path)}
    figures |= {"file_bytes": path.stat().st_size, "cores": os.cpu_count(), "machine": platform.machine()}
    figures |= {"python": platform.python_version(), "pyarrow": pyarrow.__version__, "duckdb": duckdb.__version__}
    figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    moto = stack.start_moto(work)
    settings = {
        "aws": {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{moto.port}",
                "aws_access_key_id": "bench", "aws_secret_access_key": "bench"},
        "bucket": f"sf-bench-{uuid.uuid4().hex[:8]}",
    }
    aws = settings["aws"]  # where the query function's pyiceberg reads the hub's metadata (sf_platform.settings)
    os.environ |= {"SF_AWS_REGION": aws["region_name"], "SF_AWS_ENDPOINT_URL": aws["endpoint_url"],
                   "SF_AWS_ACCESS_KEY_ID": aws["aws_access_key_id"], "SF_AWS_SECRET_ACCESS_KEY": aws["aws_secret_access_key"]}
    try:
        figures |= run_all(args, path, settings, work)
    finally:
        stack.stop(moto)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report(figures)


def config():
    from sf_platform.core.registry import parse_registry

    return parse_registry({"tables": {TABLE: {}}}).table(TABLE)


def run_all(args, path: Path, settings: dict, work: Path) -> dict:
    from sf_platform.hops.crawl import crawl_table

    landing, glue = landing_and_glue(settings, RAW_DB)
    landing.ensure_bucket()
    glue.ensure_database()
    glue.ensure_database(CURATED_DB)
    started = time.perf_counter()
    landing.upload_file(str(path), f"{TABLE}/{TABLE}.csv")
    print(f"upload {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    crawl = crawl_table(landing, glue, TABLE, config())
    print(f"rows: {crawl.rows:,}; crawl {time.perf_counter() - started:.1f} s")

    curate = run_child(__file__, {"job": "curate"} | settings, "curate")
    assert curate["rows"] == crawl.rows and curate["rows_quarantined"] == 0, curate
    ratio = curate["curated_bytes"] / curate["raw_bytes"]
    figures: dict = {
        "rows": crawl.rows,
        "curate": {
            "seconds": round(curate["seconds"], 2),
            "rows_per_s": round(curate["rows"] / curate["seconds"]),
            "raw_mb_per_s": round(curate["raw_bytes"] / 1e6 / curate["seconds"], 1),
            "peak_rss_mb": round(curate["peak_rss_mb"]),
            "row_groups": curate["row_groups"],
            "data_files": curate["data_files"],
            "codec": curate["codec"],
        },
        "bytes": {
            "raw": curate["raw_bytes"], "curated": curate["curated_bytes"], "curated_vs_raw": round(ratio, 4),
            "target_max": MAX_RATIO, "meets_target": ratio <= MAX_RATIO,
        },
    }
    print(f"curate: {figures['curate']}")
    print(f"bytes curated / raw: {ratio:.1%} (target <= {MAX_RATIO:.0%})")
    from sf_platform.query import Catalog, s3_filesystem

    catalog = Catalog(glue, RAW_DB, {"raw": RAW_DB, "curated": CURATED_DB})
    aws = settings["aws"]
    s3 = s3_filesystem(aws["region_name"], aws["endpoint_url"], aws["aws_access_key_id"], aws["aws_secret_access_key"])
    figures["query"] = time_queries(catalog, s3, args.repeat, "S3 (moto server)")
    local = local_copy(landing, path, work / "local")
    figures["query_local_disk"] = time_queries(catalog, local, args.repeat, "local disk (same files, no network)")
    figures["note"] = (
        "moto answers a ranged GET by reading the whole object, so on S3 (moto) each 32 MB range of the raw "
        "CSV costs a read of all of it; the local-disk figures are the engine's cost without the store."
    )
    return figures


def local_copy(landing, raw_path: Path, root: Path):
    """The bucket's raw file and the hub table's files on local disk, as a filesystem the query function reads
    through the same catalog locations (the Iceberg metadata is still read from S3 by pyiceberg): the
    engine's cost without the object store's."""
    import pyarrow.fs as pafs

    from sf_platform.core.columnar import curated_prefix

    raw = root / landing.bucket / TABLE / f"{TABLE}.csv"
    raw.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(raw_path, raw)
    except OSError:
        raw.symlink_to(raw_path)
    for obj in landing.list_objects(curated_prefix(TABLE)):
        target = root / landing.bucket / obj["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        landing.client().download_file(landing.bucket, obj["Key"], str(target))
    return pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())


def time_queries(catalog, filesystem, repeat: int, where: str) -> dict:
    from sf_platform.query import run_query

    seconds: dict[str, list[float]] = {"raw": [], "curated": []}
    answers = {}
    for _ in range(repeat):
        for name in ("curated", "raw"):
            started = time.perf_counter()
            result = run_query(QUERY.format(f"{name}.{TABLE}"), catalog, filesystem)
            seconds[name].append(round(time.perf_counter() - started, 3))
            answers[name] = sorted(tuple(r.values()) for r in result.to_pylist())
            print(f"query on {name}, {where}: {seconds[name][-1]:.2f} s")
    assert answers["raw"] == answers["curated"], answers
    speedup = min(seconds["raw"]) / min(seconds["curated"])
    return {
        "sql": QUERY.format("<raw|curated>.lineitem"),
        "files_read_from": where,
        "raw_seconds": seconds["raw"],
        "curated_seconds": seconds["curated"],
        "speedup": round(speedup, 1),
        "target_min_speedup": MIN_SPEEDUP,
        "meets_target": speedup >= MIN_SPEEDUP,
        "answer": [[str(v) for v in row] for row in answers["curated"]],
    }


def child_curate(settings: dict) -> int:
    from sf_platform.core.columnar import CODEC
    from sf_platform.hops.curate import curate_table

    landing, glue = landing_and_glue(settings, RAW_DB)
    started = time.perf_counter()
    report = curate_table(landing, glue, TABLE, config(), curated_database=CURATED_DB)
    seconds = time.perf_counter() - started
    if report.problems:
        sys.exit(f"curate problems: {report.problems}")
    print(json.dumps({
        "seconds": seconds, "rows": report.rows, "rows_quarantined": report.rows_quarantined,
        "raw_bytes": report.raw_bytes, "curated_bytes": report.curated_bytes,
        "row_groups": report.row_groups_written, "data_files": report.files, "codec": CODEC, "peak_rss_mb": peak_rss_mb(),
    }))
    return 0


def report(figures: dict) -> int:
    out = BENCH / "results" / "bench_curated.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    q, b = figures["query"], figures["bytes"]
    print(f"\n{'':<36}{'value':>12}{'target':>12}")
    print(f"{'curated / raw bytes':<36}{b['curated_vs_raw']:>12.1%}{'<= ' + format(MAX_RATIO, '.0%'):>12}")
    for label, q in (("S3", figures["query"]), ("local disk", figures["query_local_disk"])):
        print(f"{'query raw, ' + label + ' (s, best)':<36}{min(q['raw_seconds']):>12.2f}")
        print(f"{'query curated, ' + label + ' (s, best)':<36}{min(q['curated_seconds']):>12.2f}")
        print(f"{'speedup, ' + label:<36}{q['speedup']:>11.1f}x{'>= ' + format(MIN_SPEEDUP, 'g') + 'x':>12}")
    q = figures["query"]
    print(f"load average before/after: {figures['load_average_before']} / {figures['load_average_after']}")
    print(f"written to {out}")
    return 0 if b["meets_target"] and q["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
