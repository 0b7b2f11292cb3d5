"""Benchmark the MySQL path of the hub (crawl, curate, the MySQL load) on TPC-H lineitem against the
alternatives; also the MySQL helpers the other benches share (connection settings, raw load, clean-up).

Puts lineitem.csv (made by tpchgen-cli under --data, /tmp by default, reused; never committed) in a landing
bucket on a private moto server, crawls it, then in a child process whose peak RSS is measured curates it
into the hub (``hops.curate.curate_table``) and loads MySQL from the hub (``hops.mysql_mirror.mirror_table``),
into a scratch database on the MySQL server named by SF_MYSQL_* (default 127.0.0.1:3306, root). On the same
server, in the same run, it then times:

- raw ``LOAD DATA LOCAL INFILE`` of the same file from local disk into a table with the same column
  types (the limit: no S3, no typing, no hub, no ledger);
- pandas ``read_csv`` + ``to_sql(chunksize=10_000, method="multi")`` on the first --pandas-rows rows;
- dlt (filesystem source -> sqlalchemy destination) on the first --dlt-rows rows.

Subsets are timed as they are and extrapolated as rows/s (said so in the output). Prints a table of
rows/s and ratios and writes bench/results/bench_mysql.json. The scratch database is dropped. Issue 14's
full benchmark (both targets, alternated rounds, the small-file table) is bench_hub.py.

    .venv/bin/python bench/bench_mysql.py [--scale 1] [--rows N] [--pandas-rows N] [--dlt-rows N]
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

from measure import head_rows, landing_and_glue, line, peak_rss_mb, rate, rss_mb, run_child  # noqa: E402

TABLE = "lineitem"
TARGETS = {"limit": 0.8, "pandas": 10.0, "dlt": 5.0}  # platform rows/s must be >= this x theirs
MAX_RSS_MB = 300
NOTES = [
    "platform_mirror: curate (S3 CSV -> the hub's Iceberg table) and the MySQL load from the hub (Parquet -> "
    "CSV through a named pipe -> LOAD DATA LOCAL INFILE, with the snapshot ledger), hop functions called in a "
    "process of their own (no Dagster start-up); the crawl ran before, timed apart.",
    "raw_load_data_local: the same file from local disk into a table with the same column types and no "
    "bookkeeping columns, IGNORE 1 LINES; the limit.",
    "pandas_to_sql and dlt run on the first N rows (subset: true); their rows/s are extrapolated as is.",
    "The machine has 2 cores shared with other work: see the load averages.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1: 6M rows, 0.77 GB)")
    parser.add_argument("--data", default="/tmp/sf_hub_bench_data", help="where tpchgen-cli writes (reused)")
    parser.add_argument("--rows", type=int, default=0, help="mirror only the first N rows (0: all)")
    parser.add_argument("--pandas-rows", type=int, default=100_000, help="rows for pandas (0: skip)")
    parser.add_argument("--dlt-rows", type=int, default=100_000, help="rows for dlt (0: skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_mirror(json.loads(args.child))

    from bench_hub import lineitem_parts

    from sf_platform.local import stack

    source = lineitem_parts(Path(args.data), args.scale, 1)[0]
    work = Path(tempfile.mkdtemp(prefix="sf_bench_mysql_"))
    path = head_rows(source, args.rows, work / "lineitem.csv") if args.rows else source
    print(f"{path}: {path.stat().st_size / 1e6:,.0f} MB, {os.cpu_count()} cores")
    shown = path.relative_to(BENCH.parent) if path.is_relative_to(BENCH.parent) else path
    figures: dict = {"file": str(shown), "file_bytes": path.stat().st_size, "cores": os.cpu_count()}
    figures |= {"machine": platform.machine(), "python": platform.python_version()}
    figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    moto = stack.start_moto(work)
    settings = connection_settings(moto.port)
    try:
        figures |= run_all(args, path, work, settings)
    finally:
        drop_database(settings)
        stack.stop(moto)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report(figures)


def connection_settings(moto_port: int) -> dict:
    endpoint = f"http://127.0.0.1:{moto_port}"
    aws = {"region_name": "us-east-1", "endpoint_url": endpoint, "aws_access_key_id": "bench"}
    aws["aws_secret_access_key"] = "bench"
    mysql = {
        "host": os.environ.get("SF_MYSQL_HOST") or "127.0.0.1",
        "port": int(os.environ.get("SF_MYSQL_PORT") or 3306),
        "user": os.environ.get("SF_MYSQL_USER") or "root",
        "password": os.environ.get("SF_MYSQL_PASSWORD", ""),
        "database": f"sf_bench_{uuid.uuid4().hex[:8]}",
    }
    return {
        "aws": aws,
        "bucket": f"sf-bench-{uuid.uuid4().hex[:8]}",
        "glue_database": "sf_bench",
        "curated_database": "sf_bench_curated",
        "mysql": mysql,
    }


def resources(settings: dict):
    from sf_platform.resources.mysql import MySQLResource

    landing, glue = landing_and_glue(settings, settings["glue_database"])
    return landing, glue, MySQLResource(**settings["mysql"])


def run_all(args, path: Path, work: Path, settings: dict) -> dict:
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.crawl import crawl_table

    landing, glue, mysql = resources(settings)
    landing.ensure_bucket()
    glue.ensure_database()
    glue.ensure_database(settings["curated_database"])
    landing.upload_file(str(path), f"{TABLE}/{TABLE}.csv")
    started = time.perf_counter()
    crawl = crawl_table(landing, glue, TABLE, parse_registry({"tables": {TABLE: {}}}).table(TABLE))
    crawl_s = time.perf_counter() - started
    rows = crawl.rows
    print(f"rows: {rows:,}; crawl {crawl_s:.1f} s")

    mirror = run_child(__file__, settings, "mirror")
    assert mirror["rows_loaded"] == rows and mirror["rows_in_table"] == rows, mirror
    figures = {"rows": rows, "crawl_seconds": round(crawl_s, 2), "server": server_info(mysql)}
    figures["platform_mirror"] = rate(rows, mirror["seconds"]) | {
        "peak_rss_mb": mirror["peak_rss_mb"],
        # RSS of the same process before the run (the code location's imports)
        "rss_before_load_mb": mirror["baseline_rss_mb"],
    }
    figures["platform_crawl_and_mirror"] = rate(rows, crawl_s + mirror["seconds"])
    figures["mysql_types"] = mirror["mysql_types"]
    note = f"peak RSS {mirror['peak_rss_mb']:.0f} MB ({mirror['baseline_rss_mb']:.0f} MB before the load)"
    figures["platform_mirror"] |= {"curate_seconds": round(mirror["curate_seconds"], 2),
                                   "mysql_seconds": round(mirror["mysql_seconds"], 2)}
    line("platform curate + MySQL load (S3 -> hub -> MySQL)", figures["platform_mirror"], note)
    line("platform crawl + mirror", figures["platform_crawl_and_mirror"])

    figures["definitions_import_rss_mb"] = definitions_rss_mb()
    figures["raw_load_data_local"] = raw_load(mysql, path, mirror["mysql_types"])
    line("raw LOAD DATA LOCAL INFILE", figures["raw_load_data_local"])
    if args.pandas_rows:
        subset = head_rows(path, args.pandas_rows, work / "pandas.csv")
        figures["pandas_to_sql"] = pandas_load(settings["mysql"], subset) | {"subset": True}
        line(f"pandas to_sql ({args.pandas_rows:,} rows)", figures["pandas_to_sql"])
    if args.dlt_rows:
        subset = head_rows(path, args.dlt_rows, work / "dlt" / "lineitem.csv")
        figures["dlt"] = dlt_load(settings["mysql"], subset, work / "dlt_state") | {"subset": True}
        line(f"dlt filesystem -> sqlalchemy ({args.dlt_rows:,} rows)", figures["dlt"])
    return figures


def child_mirror(settings: dict) -> int:
    """Curate the crawled table into the hub, then load MySQL from it, in this process (its peak RSS)."""
    from sf_platform.core.registry import parse_registry
    from sf_platform.hops.curate import curate_table
    from sf_platform.hops.mysql_mirror import mirror_table
    from sf_platform.hub.catalog import Hub

    landing, glue, mysql = resources(settings)
    config = parse_registry({"tables": {TABLE: {}}}).table(TABLE)
    baseline = rss_mb()
    started = time.perf_counter()
    curate_table(landing, glue, TABLE, config, curated_database=settings["curated_database"])
    curated = time.perf_counter()
    report = mirror_table(Hub(landing, glue, settings["curated_database"]), glue, mysql, TABLE, config)
    finished = time.perf_counter()
    figures = {
        "seconds": finished - started,
        "curate_seconds": curated - started,
        "mysql_seconds": finished - curated,
        "rows_loaded": report.applied.rows_inserted,
        "rows_in_table": report.applied.rows,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "mysql_types": report.mysql_types,
    }
    print(json.dumps(figures))
    return 0


def definitions_rss_mb() -> float:
    """RSS of a process that has only imported the Dagster definitions: a run worker's floor."""
    code = "import sf_platform.definitions, measure; print(measure.rss_mb())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(BENCH.parent)])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0.0


def raw_load(mysql, path: Path, mysql_types: dict[str, str]) -> dict:
    """LOAD DATA LOCAL INFILE of the file as it is, into a table with the mirror's column types."""
    from sf_platform.core.identifiers import quote_mysql

    columns = {name: ctype for name, ctype in mysql_types.items() if not name.startswith("_sf_")}
    body = ", ".join(f"{quote_mysql(n)} {t} NULL" for n, t in columns.items())
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE raw_lineitem ({body}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        started = time.perf_counter()
        cur.execute(
            "LOAD DATA LOCAL INFILE %s INTO TABLE raw_lineitem CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
            "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' IGNORE 1 LINES",
            (str(path),),
        )
        rows, warnings = cur.rowcount, cur.warning_count
        conn.commit()
        seconds = time.perf_counter() - started
        cur.execute("DROP TABLE raw_lineitem")
    return rate(rows, seconds) | {"warnings": warnings}


def pandas_load(mysql_settings: dict, path: Path) -> dict:
    import pandas
    import sqlalchemy

    engine = sqlalchemy.create_engine(mysql_url(mysql_settings), pool_pre_ping=True)
    try:
        started = time.perf_counter()
        frame = pandas.read_csv(path)
        frame.to_sql("pandas_lineitem", engine, index=False, chunksize=10_000, method="multi")
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return rate(len(frame), seconds)


def dlt_load(mysql_settings: dict, path: Path, state: Path) -> dict:
    try:
        import dlt
        from dlt.sources.filesystem import filesystem, read_csv
    except ImportError as exc:
        print(f"dlt: skipped ({exc}); install with .venv/bin/pip install 'dlt[sqlalchemy]'")
        return {"skipped": str(exc)}
    os.environ["DLT_DATA_DIR"] = str(state)
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    started = time.perf_counter()
    files = filesystem(bucket_url=path.parent.as_uri(), file_glob=path.name)
    pipeline = dlt.pipeline(
        pipeline_name="bench_mysql",
        pipelines_dir=str(state),
        destination=dlt.destinations.sqlalchemy(credentials=mysql_url(mysql_settings)),
        dataset_name="dlt_lineitem",
    )
    info = pipeline.run((files | read_csv()).with_name("lineitem"))
    seconds = time.perf_counter() - started
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("lineitem", 0)
    del info
    return rate(rows, seconds)


def mysql_url(settings: dict) -> str:
    return (
        f"mysql+pymysql://{settings['user']}:{settings['password']}@{settings['host']}:{settings['port']}"
        f"/{settings['database']}?charset=utf8mb4&local_infile=1"
    )


def server_info(mysql) -> dict:
    names = ("version", "innodb_buffer_pool_size", "innodb_flush_log_at_trx_commit", "innodb_log_file_size")
    with mysql.connect() as conn, conn.cursor() as cur:
        values = {}
        for name in names:
            cur.execute("SELECT @@" + name)
            values[name] = cur.fetchone()[0]
    return values


def drop_database(settings: dict) -> None:
    from sf_platform.resources.mysql import MySQLResource

    mysql = MySQLResource(**settings["mysql"])
    with mysql.connect(database=False) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{mysql.database}`")
        cur.execute("DROP DATABASE IF EXISTS `dlt_lineitem`")


def report(figures: dict) -> int:
    platform_rate = figures["platform_mirror"]["rows_per_s"]
    competitors = {"limit": "raw_load_data_local", "pandas": "pandas_to_sql", "dlt": "dlt"}
    ratios, met = {}, {}
    for name, key in competitors.items():
        other = figures.get(key, {}).get("rows_per_s")
        if other:
            ratios[f"platform_vs_{name}"] = round(platform_rate / other, 2)
            met[f"platform_vs_{name}"] = platform_rate >= TARGETS[name] * other
    met["peak_rss"] = figures["platform_mirror"]["peak_rss_mb"] <= MAX_RSS_MB
    figures["ratios"], figures["targets_met"] = ratios, met
    figures["targets"] = TARGETS | {"peak_rss_mb": MAX_RSS_MB}
    figures["notes"] = NOTES
    for name, value in ratios.items():
        print(f"  {name}: {value}x (target {TARGETS[name.removeprefix('platform_vs_')]}x)")
    print(
        f"  peak RSS {figures['platform_mirror']['peak_rss_mb']:.0f} MB (target <= {MAX_RSS_MB} MB; "
        f"{figures['platform_mirror']['rss_before_load_mb']:.0f} MB before the load, "
        f"{figures['definitions_import_rss_mb']:.0f} MB for a process that imports the Dagster definitions)"
    )
    print(f"  load average before {figures['load_average_before']}, after {figures['load_average_after']}")
    out = BENCH / "results" / "bench_mysql.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {out.relative_to(BENCH.parent)}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
