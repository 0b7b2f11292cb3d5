"""A run's fixed cost: the real CLI on the local stack, per scenario, against the same hops called
directly without Dagster (the floor).

Scenarios, each on data this script makes (nothing downloaded):
- demo_scratch: the demo set (5 tables, 1,099 rows) from an empty stack; demo_again: the same, nothing new;
- one_new_file: one new small file for one table (`materialize --table member`);
- small_files: 1,200 one-row files of one table through every hop;
- thirteen_tables: 13 tables (the demo's 5, 7 more with Korean text, one headerless, and the
  1,200-file table) from scratch.
Per scenario: the CLI's wall time, the run's own time (run start to success, from the event log), its
steps, the time before its first step starts (process and framework start-up), and the floor: the
same hops on the same data in fresh targets, called in one process without Dagster. Prints ratios and
saves bench/results/bench_runs.json. Usage: python bench/bench_runs.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from sf_platform.core import demo_data  # noqa: E402

SMALL_FILES = 1200
TARGETS = {"demo_scratch": 20, "demo_again": 8, "one_new_file": 10, "small_files": 20, "thirteen_tables": 60}

EXTRA_TABLES = {  # name -> (header, rows): Korean text, dates, decimals
    "student": (["STUDENT_ID", "STUDENT_NAME", "SCHOOL_CODE", "BIRTH_DATE"],
                [[i, f"학생{i}", f"{i % 90:07d}", f"2012-03-{1 + i % 28:02d}"] for i in range(300)]),
    "test_result": (["RESULT_ID", "STUDENT_ID", "TEST_CODE", "SCORE", "TAKEN_AT"],
                    [[i, i % 300, f"PSY0{i % 4}", f"{50 + (i % 50)}.{i % 10}", f"2025-09-01 10:{i % 60:02d}:00"]
                     for i in range(600)]),
    "teacher": (["TEACHER_ID", "TEACHER_NAME", "SUBJECT"], [[i, f"선생님{i}", "국어"] for i in range(40)]),
    "school_year": (["YEAR", "STARTS_ON"], [[2020 + i, f"{2020 + i}-03-02"] for i in range(6)]),
    "test_code": (["TEST_CODE", "TEST_NAME"], [[f"PSY0{i}", f"심리검사{i}"] for i in range(4)]),
    "notice": (["NOTICE_ID", "TITLE", "BODY"], [[i, f"공지 {i}", f"내용, \"인용\" {i}"] for i in range(25)]),
}
HEADERLESS = ("class_log", ["log_id", "class_id", "event"], [[i, i % 60, "출석"] for i in range(90)])


def registry_yaml(small: bool, thirteen: bool = False) -> str:
    import yaml

    base = yaml.safe_load((REPO / "tables.yaml").read_text())
    tables = dict(base["tables"])
    if small:
        tables["answer_log"] = {"description": "1,200 one-row files, as a per-event export writes them"}
    if thirteen:
        for name in EXTRA_TABLES:
            tables[name] = {}
        tables[HEADERLESS[0]] = {"header": "absent", "columns": HEADERLESS[1]}
    return yaml.safe_dump({**base, "tables": tables}, allow_unicode=True)


def csv_bytes(header, rows) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def small_files(stamp: int = 202509011200) -> dict[str, bytes]:
    return {
        f"ANSWER_LOG_{stamp + i:012d}.csv": csv_bytes(["ANSWER_ID", "STUDENT_ID", "CHOICE"], [[i, i % 300, i % 5]])
        for i in range(SMALL_FILES)
    }


def extra_files() -> dict[str, bytes]:
    files = {f"{name.upper()}_202509011200.csv": csv_bytes(h, rows) for name, (h, rows) in EXTRA_TABLES.items()}
    files[f"{HEADERLESS[0].upper()}_202509011200.csv"] = csv_bytes(None, HEADERLESS[2])
    return files


class Stack:
    """The local stack in a state folder of its own, and fresh names per scenario."""

    def __init__(self, root: Path):
        self.root = root
        self.base = {**os.environ, "SF_ENV": "local", "SF_STATE_DIR": str(root / "state"),
                     "SF_ENV_FILE": str(root / "state" / "bench.env")}
        from sf_platform.local import stack

        self.values = stack.up(root / "state", self.base, log=lambda _m: None)

    def env(self, tag: str, registry: str) -> dict[str, str]:
        run = uuid.uuid4().hex[:6]
        path = self.root / f"tables_{tag}.yaml"
        path.write_text(registry, encoding="utf-8")
        home = self.root / f"home_{tag}_{run}"
        from sf_platform.local import dagster_home

        dagster_home.prepare(home)
        return {**self.base, **self.values, "SF_TABLES_FILE": str(path), "DAGSTER_HOME": str(home),
                "SF_LANDING_BUCKET": f"bench-{tag.replace('_', '-')}-{run}", "SF_GLUE_DATABASE": f"bench_{tag}_{run}",
                "SF_MYSQL_DATABASE": f"bench_{tag}_{run}", "SF_SNOWFLAKE_DATABASE": f"BENCH_{tag.upper()}_{run.upper()}"}

    def down(self):
        from sf_platform.local import stack

        stack.down(self.root / "state", log=lambda _m: None)


def put_files(env: dict, files: dict[str, bytes]) -> None:
    code = ("import json,sys\nfrom sf_platform.runtime import open_resources\nfrom sf_platform.settings import Settings\n"
            "from concurrent.futures import ThreadPoolExecutor\nfiles=json.load(sys.stdin)\n"
            "with open_resources(Settings.from_env()) as r:\n r.landing.ensure_bucket()\n"
            " with ThreadPoolExecutor(16) as p: list(p.map(lambda kv: r.landing.put(kv[0], kv[1].encode('latin-1')), files.items()))\n")
    payload = json.dumps({k: v.decode("latin-1") for k, v in files.items()})
    subprocess.run([sys.executable, "-c", code], input=payload, text=True, env=env, check=True, cwd=REPO)


def materialize(env: dict, *args: str) -> dict:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sf_platform.cli", "materialize", *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"materialize failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return {"cli_wall_s": round(wall, 2), **run_figures(env)}


def run_figures(env: dict) -> dict:
    """The latest run's own time, steps, start-up before its first step, and hop seconds (metadata)."""
    code = r"""
import json, dagster as dg
from dagster._core.events import DagsterEventType as T
inst = dg.DagsterInstance.get()
run = inst.get_runs(limit=1)[0]
logs = inst.all_logs(run.run_id)
t = lambda kind: [r.timestamp for r in logs if r.dagster_event and r.dagster_event.event_type_value == kind.value]
hops = {}
for r in logs:
    e = r.dagster_event
    if e and e.is_step_materialization:
        m = e.step_materialization_data.materialization
        s = m.metadata.get("seconds")
        if s is not None:
            hop = m.asset_key.path[0]
            hops[hop] = hops.get(hop, 0) + s.value
print(json.dumps({"run_s": round(t(T.RUN_SUCCESS)[0] - t(T.RUN_START)[0], 2), "steps": len(t(T.STEP_START)),
                  "startup_s": round(t(T.STEP_START)[0] - t(T.RUN_START)[0], 2),
                  "hop_seconds": {k: round(v, 2) for k, v in hops.items()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        sys.exit(f"reading the run failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor(env: dict) -> float:
    """The same hops, on the same data already in the bucket, into fresh targets, without Dagster."""
    code = r"""
import time
from sf_platform.core.columnar import curated_database
from sf_platform.core.registry import load_registry
from sf_platform.hops.crawl import crawl_table
from sf_platform.hops.curate import curate_table
from sf_platform.hops.mysql_mirror import mirror_table
from sf_platform.hops.organize import organize
from sf_platform.hops.snowflake_load import load_table
from sf_platform.hub.catalog import Hub
from sf_platform.runtime import open_resources
from sf_platform.settings import Settings
cfg = Settings.from_env(); reg = load_registry(cfg.tables_file)
with open_resources(cfg) as r:
    with r.snowflake.get_connection() as conn: pass
    t0 = time.monotonic()
    organize(r.landing, reg.landing.loose_file_pattern, tables=set(reg.tables))
    for table, config in reg.tables.items():
        crawl_table(r.landing, r.glue, table, config)
        curate_table(r.landing, r.glue, table, config, curated_database=curated_database(cfg.glue_database, None))
        hub = Hub(r.landing, r.glue, curated_database(cfg.glue_database, None))
        mirror_table(hub, r.glue, r.mysql, table, config)
        with r.snowflake.get_connection() as conn:
            load_table(hub, r.landing, conn, cfg.snowflake_database, cfg.snowflake_schema, table, config)
    print(round(time.monotonic() - t0, 2))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        sys.exit(f"floor failed: {out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def demo_files() -> dict[str, bytes]:
    return {f.key: f.body for f in demo_data.generate()}


def scenarios(stack: Stack) -> dict[str, dict]:
    out = {}
    env = stack.env("demo", registry_yaml(False))
    put_files(env, demo_files())
    out["demo_scratch"] = materialize(env)
    out["demo_again"] = materialize(env)
    put_files(env, {"MEMBER_202509101200.csv": b"MEMBER_ID,MEMBER_NAME\n9001,\xec\x8b\xa0\xec\x9e\x85\n"})
    out["one_new_file"] = materialize(env, "--table", "member")
    fenv = stack.env("demo_floor", registry_yaml(False))
    put_files(fenv, demo_files())
    out["demo_scratch"]["floor_s"] = floor(fenv)

    env = stack.env("small", registry_yaml(True, True))
    put_files(env, small_files())
    out["small_files"] = materialize(env, "--table", "answer_log")
    fenv = stack.env("small_floor", "tables:\n  answer_log: {}\n")
    put_files(fenv, small_files())
    out["small_files"]["floor_s"] = floor(fenv)

    env = stack.env("thirteen", registry_yaml(True, True))
    put_files(env, {**demo_files(), **small_files(), **extra_files()})
    out["thirteen_tables"] = materialize(env)
    fenv = stack.env("thirteen_floor", registry_yaml(True, True))
    put_files(fenv, {**demo_files(), **small_files(), **extra_files()})
    out["thirteen_tables"]["floor_s"] = floor(fenv)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_runs_") as tmp:
        stack = Stack(Path(tmp))
        try:
            for _ in range(args.repeat):
                results.append(scenarios(stack))
        finally:
            stack.down()
    summary = {}
    for name in results[0]:
        runs = sorted(results, key=lambda r: r[name]["cli_wall_s"])
        median = runs[len(runs) // 2][name]
        summary[name] = median | {"target_s": TARGETS[name], "met": median["run_s"] <= TARGETS[name]}
        floor_s = median.get("floor_s")
        ratio = f"  {median['run_s'] / floor_s:.1f}x the floor ({floor_s} s)" if floor_s else ""
        print(f"{name:16s} cli {median['cli_wall_s']:6.1f} s  run {median['run_s']:6.1f} s  steps {median['steps']}  "
              f"start-up {median['startup_s']:.1f} s  target {TARGETS[name]} s{ratio}  hops {median['hop_seconds']}")
    if "small_files" in summary:
        hops = summary["small_files"]["hop_seconds"]
        summary["small_files"]["files_per_s"] = {h: round(SMALL_FILES / s) for h, s in hops.items() if s > 0}
        print(f"small_files files/s per hop: {summary['small_files']['files_per_s']}")
    summary["load_average"] = os.getloadavg()
    summary["repeat"] = args.repeat
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_runs.json").write_text(json.dumps(summary, indent=2))
    return 0 if all(v["met"] for k, v in summary.items() if isinstance(v, dict) and "met" in v) else 1


if __name__ == "__main__":
    sys.exit(main())
