"""Issue 14's benchmark of the Iceberg hub, end to end, in one run on the same data.

Data (nothing committed): TPC-H lineitem made by ``tpchgen-cli`` under /tmp (scale 1: 6,001,215 rows in
--parts CSV files, reused when present), landed as CSV objects in the landing bucket of a private moto
server, and the 1,200 one-row-file table of ``bench_runs.small_files``. Private fakesnow server, scratch
MariaDB database (SF_MYSQL_*, default 127.0.0.1:3306 root); all dropped/stopped at the end.

Contenders, alternated round by round (ABBA: chain first in odd rounds, the limit first in even ones),
each round on a fresh table (the objects uploaded again under a new prefix, so no crawl cache helps):

- the limit: raw ``LOAD DATA LOCAL INFILE`` of the same CSV files from local disk into a table with the
  mirror's column types (one connection, one transaction);
- the chain: in a child process of its own, our hop functions called as the Dagster step calls them -
  ``hops.crawl.crawl_table`` -> ``hops.curate.curate_table`` (the hub's Iceberg table, compaction
  included) -> ``hops.mysql_mirror.mirror_table`` (not the ``sf-platform materialize`` CLI: no Dagster
  start-up, which bench_runs measures). The organize hop is not in it: objects land under their table's
  prefix. In that process a counter on botocore's ``BaseClient._make_api_call`` counts every GetObject
  per source key and the bytes it returned, and a counter around ``core.inference.profile_stream``
  counts typing (inference) passes per object; peak RSS is the child's VmHWM after each hop, reset
  between hops (/proc/self/clear_refs), so each hop's own peak is known; the chain's is the largest.

Then, once: the Snowflake load from the hub (``hops.snowflake_load.load_table``, child process) vs
``executemany`` INSERT of --insert-rows rows and ``write_pandas`` of --pandas-rows rows (fakesnow's server
may not answer the connector's upload step: then the error is recorded, not a figure); the small-file
table through the same chain. The previous design's figures are read from bench/results as committed at
c9c841f (before the hub). Medians over rounds; /proc/loadavg before and after each measurement. Writes
bench/results/bench_hub.json.

    .venv/bin/python bench/bench_hub.py [--scale 1] [--parts 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_mysql import connection_settings, drop_database, server_info  # noqa: E402
from measure import line, peak_rss_mb, rate, reset_peak_rss, rss_mb, run_child  # noqa: E402

BEFORE_HUB = "c9c841f"  # the last commit of the previous design's benchmark results
SMALL_TABLE = "answer_log"
TARGETS = {
    "chain_vs_limit": 0.8, "snowflake_vs_executemany": 500.0, "snowflake_vs_write_pandas": 1.0,
    "reads_per_object": 2, "typing_passes_per_object": 1, "curated_vs_raw_bytes_lineitem": 0.25,
    "curated_vs_raw_bytes_small_files": 1.0, "peak_rss_mb": 300,
}
TARGET_FILE_BYTES = 128 * 1024**2  # the hub writer's default target data file size (SF_HUB_TARGET_FILE_MB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1: 6,001,215 rows)")
    parser.add_argument("--parts", type=int, default=4, help="CSV objects lineitem is split into")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the limit and the chain, alternated")
    parser.add_argument("--insert-rows", type=int, default=2_000, help="rows for the executemany baseline")
    parser.add_argument("--pandas-rows", type=int, default=100_000, help="rows for the write_pandas baseline")
    parser.add_argument("--data", default="/tmp/sf_hub_bench_data", help="where tpchgen-cli writes (reused)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        return {"chain": child_chain, "snowflake": child_snowflake, "write_pandas": child_write_pandas}[job["job"]](job)

    from sf_platform.local import stack

    paths = lineitem_parts(Path(args.data), args.scale, args.parts)
    work = Path(tempfile.mkdtemp(prefix="sf_bench_hub_"))
    figures: dict = {"scale": args.scale, "parts": args.parts, "rounds": args.rounds, "cores": os.cpu_count(),
                     "raw_bytes_lineitem": sum(p.stat().st_size for p in paths)}
    figures["load_average_before"] = loadavg()
    started = time.perf_counter()
    moto, fakesnow = stack.start_moto(work), stack.start_fakesnow(work)
    settings = connection_settings(moto.port)
    settings |= {"curated_database": f"{settings['glue_database']}_curated", "fakesnow_port": fakesnow.port}
    try:
        figures |= run_all(args, paths, settings)
    finally:
        drop_database(settings)
        stack.stop(fakesnow)
        stack.stop(moto)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_average_after"] = loadavg()
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report(figures)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def lineitem_parts(folder: Path, scale: float, parts: int) -> list[Path]:
    """lineitem as ``parts`` CSV files made by tpchgen-cli under ``folder`` (reused when present)."""
    out = folder / f"sf{scale:g}_{parts}"
    paths = [out / "lineitem" / f"lineitem.{n}.csv" for n in range(1, parts + 1)]
    if all(p.exists() and p.stat().st_size for p in paths):
        return paths
    tool = shutil.which("tpchgen-cli", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if tool is None:
        sys.exit("tpchgen-cli not found: .venv/bin/pip install -c constraints.txt -e '.[dev,bench]'")
    print(f"generating TPC-H lineitem at scale {scale:g} in {parts} parts into {out} ...")
    subprocess.run([tool, "csv", "-s", f"{scale:g}", "-T", "lineitem", "--parts", str(parts), "-o", str(out),
                    "--no-progress", "--overwrite"], check=True)
    return paths


def resources(settings: dict):
    from bench_mysql import resources as bench_resources

    return bench_resources(settings)


def table_config(table: str):
    from sf_platform.core.registry import parse_registry

    return parse_registry({"tables": {table: {}}}).table(table)


def run_all(args, paths: list[Path], settings: dict) -> dict:
    landing, glue, mysql = resources(settings)
    landing.ensure_bucket()
    glue.ensure_database()
    glue.ensure_database(settings["curated_database"])
    mysql.ensure_database()
    figures: dict = {"server": server_info(mysql)}

    chains, limits = [], []
    for number in range(1, args.rounds + 1):
        table = f"lineitem_r{number}"
        # uploaded again, untimed (moto's CopyObject of a multipart upload keeps a checksum its new body
        # does not match: botocore's FlexibleChecksumError on every read)
        uploading = time.perf_counter()
        for path in paths:
            landing.upload_file(str(path), f"{table}/{path.name}")
        print(f"upload {table}: {time.perf_counter() - uploading:.1f} s (untimed)")
        # round 1 starts with the chain: the limit's table takes the mirror's column types
        order = ("chain", "limit") if number % 2 else ("limit", "chain")
        for contender in order:
            if contender == "chain":
                chains.append(chain(settings, table))
                types = chains[-1]["mysql_types"]
            else:
                limits.append(raw_load(mysql, paths, types, f"raw_{table}"))
        if number > 1:
            drop_mysql_table(mysql, table)  # keep the scratch database small; round 1's stays for checks
    figures["chain_rounds"] = [_without(c, "mysql_types") for c in chains]
    figures["limit_rounds"] = limits
    figures["mysql_types"] = chains[0]["mysql_types"]

    figures["snowflake"] = snowflake(args, settings, paths[0], "lineitem_r1", chains[0]["mysql_rows"])
    figures["small_files"] = small_file_table(settings)
    figures["previous_design"] = previous_design()
    return figures


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def chain(settings: dict, table: str) -> dict:
    before = loadavg()
    result = run_child(__file__, {"job": "chain", "table": table, "settings": settings}, f"chain {table}")
    result |= {"loadavg_before": before, "loadavg_after": loadavg()}
    line(f"chain S3 -> hub -> MySQL ({table})", rate(result["mysql_rows"], result["seconds"]["total"]),
         f"crawl {result['seconds']['crawl']:.1f} s, curate {result['seconds']['curate']:.1f} s, "
         f"MySQL {result['seconds']['mysql']:.1f} s, peak RSS by hop {result['peak_rss_mb']}")
    return result


def raw_load(mysql, paths: list[Path], mysql_types: dict[str, str], name: str) -> dict:
    """The limit: LOAD DATA LOCAL INFILE of each CSV file as it is, one transaction, into a table with the
    mirror's column types (no bookkeeping columns)."""
    from sf_platform.core.identifiers import quote_mysql

    before = loadavg()
    body = ", ".join(f"{quote_mysql(n)} {t} NULL" for n, t in mysql_types.items() if not n.startswith("_sf_"))
    target = quote_mysql(name)
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {target} ({body}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
        rows = warnings = 0
        started = time.perf_counter()
        for path in paths:
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
                "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' IGNORE 1 LINES",
                (str(path),),
            )
            rows, warnings = rows + cur.rowcount, warnings + cur.warning_count
        conn.commit()
        seconds = time.perf_counter() - started
        cur.execute(f"DROP TABLE {target}")
    figure = rate(rows, seconds) | {"warnings": warnings, "loadavg_before": before, "loadavg_after": loadavg()}
    line("limit: raw LOAD DATA LOCAL INFILE", figure)
    return figure


def drop_mysql_table(mysql, table: str) -> None:
    from sf_platform.core.identifiers import quote_mysql

    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {quote_mysql(table)}")


class _Counters:
    """GetObject requests and bytes per key (botocore, every client of this process) and typing passes
    per object (``core.inference.profile_stream`` calls made by ``hops.crawl.profile_object``)."""

    def __init__(self):
        import botocore.client

        from sf_platform.core import inference
        from sf_platform.hops import crawl

        self.lock = threading.Lock()
        self.gets, self.bytes, self.typing = Counter(), Counter(), Counter()
        self.stage = "crawl"
        self.by_stage: dict[str, Counter] = {}
        call, profile_object, profile_stream = (
            botocore.client.BaseClient._make_api_call, crawl.profile_object, inference.profile_stream)
        local = threading.local()
        counters = self

        def counted_call(client, operation, params):
            answer = call(client, operation, params)
            if operation == "GetObject":
                with counters.lock:
                    counters.gets[params["Key"]] += 1
                    counters.bytes[params["Key"]] += int(answer.get("ContentLength") or 0)
                    counters.by_stage.setdefault(counters.stage, Counter())[params["Key"]] += 1
            return answer

        def counted_profile_object(bucket, key, config):
            local.key = key
            try:
                return profile_object(bucket, key, config)
            finally:
                local.key = None

        def counted_profile_stream(*a, **k):
            with counters.lock:
                counters.typing[getattr(local, "key", None) or "?"] += 1
            return profile_stream(*a, **k)

        botocore.client.BaseClient._make_api_call = counted_call
        crawl.profile_object = counted_profile_object
        inference.profile_stream = counted_profile_stream

    def per_object(self, objects: dict[str, int]) -> dict:
        """Per source object: GETs (all, in crawl, in curate), bytes read / size, typing passes."""
        def spread(values):
            return {"min": min(values), "median": statistics.median(values), "max": max(values)}

        keys = list(objects)
        return {
            "objects": len(keys),
            "gets": spread([self.gets[k] for k in keys]),
            "gets_by_hop": {s: spread([c[k] for k in keys]) for s, c in self.by_stage.items()},
            "bytes_read_vs_size": spread([round(self.bytes[k] / max(objects[k], 1), 3) for k in keys]),
            "typing_passes": spread([self.typing[k] for k in keys]),
        }


def child_chain(job: dict) -> int:
    """crawl -> curate -> MySQL load of one table in this process (its peak RSS is the chain's)."""
    from sf_platform.hops.crawl import crawl_table
    from sf_platform.hops.curate import curate_table
    from sf_platform.hops.mysql_mirror import mirror_table
    from sf_platform.hub.catalog import Hub

    settings, table = job["settings"], job["table"]
    counters = _Counters()
    landing, glue, mysql = resources(settings)
    config = table_config(table)
    objects = {o.key: o.size for o in landing.source_objects(f"{table}/")}
    seconds, peak, carried = {}, {"before": rss_mb()}, {"crawl": rss_mb()}
    started = time.perf_counter()
    crawled = crawl_table(landing, glue, table, config)
    seconds["crawl"], peak["crawl"] = time.perf_counter() - started, peak_rss_mb()
    reset_peak_rss()  # each hop's own peak (it includes what the hops before it left resident: carried)
    carried["curate"] = rss_mb()
    if crawled.unreadable or crawled.rows == 0:
        sys.exit(f"{table}: crawl {crawled.action}, {crawled.rows} rows, unreadable {crawled.unreadable}, "
                 f"problems {crawled.problems}, notes {crawled.notes}")
    counters.stage = "curate"
    mark = time.perf_counter()
    curated = curate_table(landing, glue, table, config, curated_database=settings["curated_database"])
    seconds["curate"], peak["curate"] = time.perf_counter() - mark, peak_rss_mb()
    reset_peak_rss()
    carried["mysql"] = rss_mb()
    if curated.problems or crawled.rows != curated.rows:
        sys.exit(f"{table}: crawl {crawled.rows} rows, curate {curated.rows} rows, problems {curated.problems}")
    counters.stage = "mysql"
    mark = time.perf_counter()
    mirrored = mirror_table(Hub(landing, glue, settings["curated_database"]), glue, mysql, table, config)
    seconds["mysql"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    peak["mysql"] = peak_rss_mb()
    peak["total"] = max(peak["crawl"], peak["curate"], peak["mysql"])
    applied = mirrored.applied
    if applied.rows != curated.rows:
        sys.exit(f"{table}: MySQL has {applied.rows} rows, the hub {curated.rows}")
    print(json.dumps({
        "table": table, "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "rows_per_s": round(applied.rows / seconds["total"]), "peak_rss_mb": peak,
        "rss_at_hop_start_mb": carried,
        "crawl_rows": crawled.rows, "hub_rows": curated.rows, "mysql_rows": applied.rows,
        "rows_quarantined": curated.rows_quarantined, "raw_bytes": curated.raw_bytes,
        "curated_bytes": curated.curated_bytes, "data_files": curated.files,
        "data_files_max": math.ceil(curated.curated_bytes / TARGET_FILE_BYTES) + 2,
        "row_groups_written": curated.row_groups_written, "upkeep": repr(curated.upkeep),
        "reads": counters.per_object(objects), "mysql_types": mirrored.mysql_types,
    }))
    return 0


def snowflake(args, settings: dict, sample_from: Path, table: str, rows: int) -> dict:
    from bench_snowflake import executemany_insert
    from measure import head_rows

    figures: dict = {"loadavg_before": loadavg()}
    load = run_child(__file__, {"job": "snowflake", "table": table, "settings": settings}, "Snowflake load")
    assert load["rows_inserted"] == rows and load["full"], load
    figures["load_from_hub"] = rate(rows, load["seconds"]) | {
        "peak_rss_mb": load["peak_rss_mb"], "rss_before_load_mb": load["baseline_rss_mb"],
        "files_copied": load["files_copied"]}
    line("Snowflake load from the hub (full)", figures["load_from_hub"], f"peak RSS {load['peak_rss_mb']:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="sf_bench_hub_sample_") as folder:
        subset = head_rows(sample_from, args.insert_rows, Path(folder) / "insert.csv")
        figures["executemany_insert"] = executemany_insert(settings, subset, load["snowflake_types"], 1_000)
    line(f"executemany INSERT ({args.insert_rows:,} rows)", figures["executemany_insert"])
    pandas = _child_or_error({"job": "write_pandas", "table": table, "rows": args.pandas_rows, "settings": settings})
    if "error" in pandas:
        figures["write_pandas"] = pandas | {"rows_tried": args.pandas_rows}
        print(f"{'write_pandas':44s} not measured: {pandas['error']}")
    else:
        figures["write_pandas"] = rate(pandas["rows"], pandas["seconds"])
        line(f"write_pandas ({args.pandas_rows:,} rows)", figures["write_pandas"])
    figures["loadavg_after"] = loadavg()
    return figures


def _child_or_error(job: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True,
                          check=False)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    lines = done.stderr.strip().splitlines() or ["no output"]
    return {"error": lines[-1], "traceback_tail": [t.strip() for t in lines[-12:]]}


def child_snowflake(job: dict) -> int:
    from bench_snowflake import DATABASE, SCHEMA, connect

    from sf_platform.hops.snowflake_load import load_table
    from sf_platform.hub.catalog import Hub

    settings, table = job["settings"], job["table"]
    landing, glue, _mysql = resources(settings)
    conn = connect(settings)
    baseline = rss_mb()
    started = time.perf_counter()
    report = load_table(Hub(landing, glue, settings["curated_database"]), landing, conn, DATABASE, SCHEMA, table,
                        table_config(table))
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "rows_inserted": report.rows_inserted, "full": report.full,
        "files_copied": report.files_copied, "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline,
        "snowflake_types": {c.name: c.snowflake_type for c in report.columns},
    }))
    return 0


def child_write_pandas(job: dict) -> int:
    """The hub's first rows into pandas (untimed), then ``write_pandas`` into a new table (timed)."""
    from bench_snowflake import DATABASE, SCHEMA, connect
    from snowflake.connector.pandas_tools import write_pandas

    from sf_platform.hub.catalog import Hub
    from sf_platform.hub.conventions import BOOKKEEPING

    settings = job["settings"]
    landing, glue, _mysql = resources(settings)
    rows = Hub(landing, glue, settings["curated_database"]).require(job["table"]).scan(limit=job["rows"]).to_arrow()
    frame = rows.drop_columns([c for c in BOOKKEEPING if c in rows.column_names]).to_pandas()
    frame.columns = [c.upper() for c in frame.columns]
    conn = connect(settings)
    started = time.perf_counter()
    ok, _chunks, written, _ = write_pandas(conn, frame, "LINEITEM_PANDAS", database=DATABASE, schema=SCHEMA,
                                           auto_create_table=True, overwrite=True)
    seconds = time.perf_counter() - started
    assert ok and written == len(frame), (ok, written, len(frame))
    print(json.dumps({"seconds": seconds, "rows": written}))
    return 0


def small_file_table(settings: dict) -> dict:
    """The 1,200 one-row files of bench_runs through the same chain."""
    from bench_runs import small_files

    landing, _glue, _mysql = resources(settings)
    files = small_files()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: landing.put(f"{SMALL_TABLE}/{item[0]}", item[1]), files.items()))
    result = _without(chain(settings, SMALL_TABLE), "mysql_types")
    assert result["mysql_rows"] == len(files), result
    return result


def previous_design() -> dict:
    """The figures of the design before the hub, as committed at BEFORE_HUB."""
    def committed(name: str) -> dict:
        done = subprocess.run(["git", "show", f"{BEFORE_HUB}:bench/results/{name}.json"], cwd=BENCH.parent,
                              capture_output=True, text=True, check=False)
        return json.loads(done.stdout) if done.returncode == 0 else {}

    mysql, curated, runs, snow = (committed(n) for n in ("bench_mysql", "bench_curated", "bench_runs", "bench_snowflake"))
    return {
        "commit": BEFORE_HUB,
        "mysql_crawl_and_mirror": mysql.get("platform_crawl_and_mirror"),
        "mysql_limit": mysql.get("raw_load_data_local"),
        "mysql_vs_limit": mysql.get("ratios", {}).get("platform_vs_limit"),
        "mysql_peak_rss_mb": mysql.get("platform_mirror", {}).get("peak_rss_mb"),
        "mysql_rows": mysql.get("rows"), "mysql_load_average": mysql.get("load_average_before"),
        "curated_bytes_vs_raw": curated.get("bytes", {}).get("curated_vs_raw"),
        "curate_peak_rss_mb": curated.get("curate", {}).get("peak_rss_mb"),
        "snowflake_push_vs_executemany": snow.get("ratios", {}).get("push_vs_executemany"),
        "small_files_run_s": runs.get("small_files", {}).get("run_s"),
        "small_files_hop_seconds": runs.get("small_files", {}).get("hop_seconds"),
    }


def report(figures: dict) -> int:
    chains, limits = figures["chain_rounds"], figures["limit_rounds"]
    chain_rate = statistics.median(c["rows_per_s"] for c in chains)
    limit_rate = statistics.median(x["rows_per_s"] for x in limits)
    snow = figures["snowflake"]
    mysql_rate = statistics.median(c["mysql_rows"] / c["seconds"]["mysql"] for c in chains)
    ratios = {"chain_vs_limit": round(chain_rate / limit_rate, 2),
              "snowflake_vs_executemany": round(snow["load_from_hub"]["rows_per_s"]
                                                / snow["executemany_insert"]["rows_per_s"], 1)}
    if "rows_per_s" in snow["write_pandas"]:
        ratios["snowflake_vs_write_pandas"] = round(snow["load_from_hub"]["rows_per_s"]
                                                    / snow["write_pandas"]["rows_per_s"], 2)
    big, small = chains[0], figures["small_files"]
    measured = {
        "chain_rows_per_s_median": chain_rate, "limit_rows_per_s_median": limit_rate,
        "mysql_load_alone_vs_limit": round(mysql_rate / limit_rate, 2),  # the hub -> MySQL hop only
        "peak_rss_mb_by_hop_lineitem": {h: max(c["peak_rss_mb"][h] for c in chains) for h in ("crawl", "curate", "mysql")},
        "reads_per_object_max": max(big["reads"]["gets"]["max"], small["reads"]["gets"]["max"]),
        "typing_passes_per_object_max": max(big["reads"]["typing_passes"]["max"],
                                            small["reads"]["typing_passes"]["max"]),
        "curated_vs_raw_bytes_lineitem": round(big["curated_bytes"] / big["raw_bytes"], 4),
        "curated_vs_raw_bytes_small_files": round(small["curated_bytes"] / small["raw_bytes"], 4),
        "data_files_lineitem": [big["data_files"], big["data_files_max"]],
        "data_files_small_files": [small["data_files"], small["data_files_max"]],
        "peak_rss_mb_max": max([c["peak_rss_mb"]["total"] for c in chains] + [small["peak_rss_mb"]["total"],
                                                                            snow["load_from_hub"]["peak_rss_mb"]]),
    }
    met = {k: ratios[k] >= TARGETS[k] for k in ratios}
    met |= {
        "reads_per_object": measured["reads_per_object_max"] <= TARGETS["reads_per_object"],
        "typing_passes_per_object": measured["typing_passes_per_object_max"] <= TARGETS["typing_passes_per_object"],
        "curated_vs_raw_bytes_lineitem": measured["curated_vs_raw_bytes_lineitem"]
        <= TARGETS["curated_vs_raw_bytes_lineitem"],
        "curated_vs_raw_bytes_small_files": measured["curated_vs_raw_bytes_small_files"]
        <= TARGETS["curated_vs_raw_bytes_small_files"],
        "data_files": all(n <= most for n, most in (measured["data_files_lineitem"], measured["data_files_small_files"])),
        "peak_rss_mb": measured["peak_rss_mb_max"] <= TARGETS["peak_rss_mb"],
    }
    if "snowflake_vs_write_pandas" not in ratios:
        met["snowflake_vs_write_pandas"] = None  # not measurable here: see snowflake.write_pandas.error
    figures |= {"ratios": ratios, "measured": measured, "targets": TARGETS, "targets_met": met}
    print()
    for name, value in {**ratios, **measured}.items():
        print(f"  {name:36s} {value!s:>24}  target {TARGETS.get(name, TARGETS.get(name.removesuffix('_max'), ''))}")
    for name, value in met.items():
        print(f"  met {name:32s} {value}")
    print(f"  load average before {figures['load_average_before']}, after {figures['load_average_after']}; "
          f"{figures['wall_seconds']} s")
    out = BENCH / "results" / "bench_hub.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
