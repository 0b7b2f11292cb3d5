"""The ``sf-platform`` command: the local stack, seeding, materializing, the demo, discovery, the UI."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from sf_platform import settings
from sf_platform.settings import REPO_ROOT, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sf-platform", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="the embedded local stack (moto, fakesnow, MySQL)")
    stack.add_argument("action", choices=["up", "down", "status"])

    sub.add_parser("seed", help="upload the demo data set to the landing bucket")

    mat = sub.add_parser("materialize", help="materialize assets against the persistent DAGSTER_HOME")
    mat.add_argument("--select", default="*", help="asset selection (default: every asset)")
    mat.add_argument("--table", action="append", default=[], help="one table's chain (repeatable); instead of --select")
    mat.add_argument("--full-refresh", action="store_true", help="rebuild the MySQL mirrors (staging table + swap)")
    mat.add_argument("-v", "--verbose", action="store_true",
                     help="print the run's whole log as it is written instead of the progress table")

    sub.add_parser("demo", help="stack up, seed, materialize everything, print the summary")
    sub.add_parser("summary", help="files / catalog / MySQL / Snowflake rows per table")
    sub.add_parser("discover", help="propose registry entries for table prefixes not in the registry")
    sub.add_parser("snowflake-tables", help="cache the Snowflake tables the registry's `exports` select")
    query = sub.add_parser("query", help="run SQL over catalog tables in place (raw.<t>, curated.<t>, <glue db>.<t>)")
    query.add_argument("sql", help='e.g. "SELECT count(*) FROM curated.member"')
    query.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output (default: table)")
    ddl = sub.add_parser("spectrum-ddl", help="print the Redshift statements for the curated tables (SF_REDSHIFT_IAM_ROLE)")
    ddl.add_argument("--schema", default="", help="external schema name (default: the curated Glue database)")
    ddl.add_argument("--copy-schema", default="public", help="Redshift schema of the tables COPY loads (default: public)")
    ui = sub.add_parser("ui", help="stack up, then `dagster dev` on the local stack")
    ui.add_argument("--host", default=os.environ.get("SF_UI_HOST", "127.0.0.1"), help="address to serve on")
    ui.add_argument("--port", default=os.environ.get("SF_UI_PORT", "3000"), help="port to serve on")

    args = parser.parse_args(argv)
    _quiet_framework_warnings()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for users; tracebacks are for `--debug` runs of python -m
        if os.environ.get("SF_DEBUG"):
            raise
        print(f"sf-platform {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sf_platform")
    except PackageNotFoundError:
        return "unknown"


def _quiet_framework_warnings() -> None:
    """Dagster's beta/preview and deprecation warnings are about its own API, not about the user's data
    or anything they can change: keep them out of the command's output."""
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"dagster(\.|_)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(beta|preview|superseded|deprecated).*")


def _stack(args) -> int:
    from sf_platform.local import stack

    cfg = Settings.from_env()
    if args.action == "up":
        values = stack.up(cfg.state_dir)
        stack.write_env_file(settings.env_file(), _recorded(values, cfg))
        for key in ("SF_AWS_ENDPOINT_URL", "SF_MYSQL_HOST", "SF_MYSQL_PORT", "SF_SNOWFLAKE_PORT"):
            os.environ[key] = values[key]
        print(f"local stack up; settings written to {settings.env_file()}")
        _print_status(stack.status(cfg.state_dir))
    elif args.action == "down":
        stopped = stack.down(cfg.state_dir)
        print(f"stopped: {', '.join(stopped) or 'nothing'}")
    else:
        rows = stack.status(cfg.state_dir)
        if not rows:
            print(f"nothing is running (no local stack recorded in {cfg.state_dir}); start it with `sf-platform stack up`")
            return 3
        _print_status(rows)
        if not all(r.get("alive") for r in rows):
            return 3
    return 0


def _recorded(values: dict[str, str], cfg: Settings) -> dict[str, str]:
    """What the env file keeps for the next shell: the stack's settings and the registry in use (as an
    absolute path), so a new shell does not fall back to the demo registry."""
    return {**values, "SF_TABLES_FILE": str(cfg.tables_file)}


def _print_status(rows: list[dict]) -> None:
    for row in rows:
        owner = "started by sf-platform" if row.get("started_by_us") else "existing server"
        state = "up" if row.get("alive") else "DOWN"
        print(f"  {row['name']:<9} {row.get('host', '127.0.0.1')}:{row['port']:<6} {state:<5} ({owner})")


def _ensure_stack(cfg: Settings) -> None:
    """For the local deployment, start the stack (idempotent) and load its settings."""
    if cfg.env != "local":
        return
    from sf_platform.local import stack

    values = stack.up(cfg.state_dir)
    stack.write_env_file(settings.env_file(), _recorded(values, cfg))
    for key, value in values.items():
        os.environ.setdefault(key, value)
    # A running stack's ports win over a stale .env loaded earlier.
    for key in ("SF_AWS_ENDPOINT_URL", "SF_MYSQL_HOST", "SF_MYSQL_PORT", "SF_SNOWFLAKE_PORT"):
        os.environ[key] = values[key]


def _seed(args) -> int:
    from sf_platform.runtime import seed_demo

    cfg = Settings.from_env()
    files = seed_demo(cfg)
    print(f"seeded {len(files)} files into s3://{cfg.landing_bucket}/")
    return 0


def _dagster_home(cfg: Settings) -> Path:
    from sf_platform.local import dagster_home

    return dagster_home.prepare(cfg.state_dir / "dagster_home")


def _materialize(args) -> int:
    cfg = Settings.from_env()
    os.environ.setdefault("DAGSTER_HOME", str(_dagster_home(cfg)))
    from sf_platform.runs import SelectionError, materialize, resolve

    try:
        keys = resolve(args.select, args.table)
    except SelectionError as exc:
        print(f"sf-platform materialize: {exc}", file=sys.stderr)
        return 2
    if not keys:
        print(f"sf-platform materialize: --select {args.select!r} selects no asset", file=sys.stderr)
        return 2
    down = _stack_down(cfg)
    if down:
        print(f"sf-platform materialize: the local stack is not running ({', '.join(down)}); "
              "run `sf-platform stack up` first", file=sys.stderr)
        return 3
    boards: list = []
    outcomes = materialize(keys, full_refresh=args.full_refresh, watch=_watcher(cfg, args.verbose, boards))
    failed = [f"{t} ({hop})" for b in boards for t, (hop, _) in b.failed_tables().items()]
    if failed:
        print(f"sf-platform materialize: {len(failed)} table{'s' if len(failed) > 1 else ''} failed: "
              f"{', '.join(failed)} (reasons above and in the log)", file=sys.stderr)
    for outcome, board in zip(outcomes, boards, strict=False):
        if not outcome.success and not board.failed_tables():
            print(f"sf-platform materialize: {outcome.job} failed: {'; '.join(outcome.errors) or 'see the log'}",
                  file=sys.stderr)
    return 0 if all(o.success for o in outcomes) else 1


def _watcher(cfg: Settings, verbose: bool, boards: list):
    """What each run shows (the live table, plain lines or the log) and where its log goes; the summary
    is printed when the run ends. Each run's board is appended to ``boards``."""
    import time

    from sf_platform.core.run_board import Board, summary_lines
    from sf_platform.progress import LIVE, RunWatch, choose_mode

    mode = choose_mode(verbose)

    def watch(job: str, run_id: str, layout):
        board = Board(job, run_id, list(dict.fromkeys(layout.cells.values())), layout.hops, time.time())
        boards.append(board)
        path = cfg.state_dir / "logs" / f"{run_id}.log"
        return _Summarized(RunWatch(board, layout, path, mode), lambda: summary_lines(
            board, lambda key: f"s3://{cfg.landing_bucket}/{key}", str(path), table=mode != LIVE))

    return watch


class _Summarized:
    """A run's watch that prints the summary once the display has drawn its last frame."""

    def __init__(self, watch, summary):
        self.watch, self.summary = watch, summary

    def __enter__(self):
        return self.watch.__enter__()

    def __exit__(self, *exc):
        self.watch.__exit__(*exc)
        print("\n".join(self.summary()), flush=True)


def _stack_down(cfg: Settings) -> list[str]:
    """Local deployment: the services of the stack that do not answer (all of them when none is recorded)."""
    if cfg.env != "local":
        return []
    from sf_platform.local import stack

    rows = stack.status(cfg.state_dir)
    if not rows:
        return ["nothing recorded"]
    return [r["name"] for r in rows if not r.get("alive")]


def _summary(args) -> int:
    from sf_platform.runtime import TargetUnreachable, summary_rows

    cfg = Settings.from_env()
    try:
        rows = summary_rows(cfg)
    except TargetUnreachable as exc:
        hint = "; is the local stack up? (`sf-platform stack status`)" if cfg.env == "local" else ""
        print(f"sf-platform summary: {exc}{hint}", file=sys.stderr)
        return 3
    header = ("table", "files", "catalog rows", "mysql rows", "snowflake rows")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))))
    return 0


def _demo(args) -> int:
    cfg = Settings.from_env()
    _ensure_stack(cfg)
    _seed(args)
    code = _materialize(argparse.Namespace(select="*", table=[], full_refresh=False, verbose=False))
    if code != 0:
        print("sf-platform demo: materialization failed (see the log above)", file=sys.stderr)
        return code
    print()
    _summary(args)
    print("\nOpen the Dagster UI on this stack with:  make ui   (then http://127.0.0.1:3000)")
    return 0


def _discover(args) -> int:
    from sf_platform.runtime import discover

    cfg = Settings.from_env()
    proposal = discover(cfg)
    if not proposal:
        print(f"every table prefix in s3://{cfg.landing_bucket}/ is in {cfg.tables_file.name}")
        return 0
    print(f"# proposed entries for {cfg.tables_file.name} (review, then paste under `tables:`)")
    print(proposal)
    return 0


def _snowflake_tables(args) -> int:
    from sf_platform.assets.exports import tables_to_export
    from sf_platform.core.exports import lock_path
    from sf_platform.core.registry import load_registry
    from sf_platform.hops.snowflake_export import write_table_lock
    from sf_platform.runtime import open_resources

    cfg = Settings.from_env()
    registry = load_registry(cfg.tables_file)
    path = lock_path(cfg.tables_file)
    with open_resources(cfg) as r, r.snowflake.get_connection() as conn:
        found = write_table_lock(conn, registry, cfg.snowflake_database, cfg.snowflake_schema, path)
    print(f"{len(found)} tables found in Snowflake, cached in {path}: {', '.join(t.name for t in found) or '(none)'}")
    tables = tables_to_export(registry, cfg)[2]
    print(f"{len(tables)} tables to export (the platform's own loads need no discovery): "
          f"{', '.join(t.name for t in tables) or '(none)'}")
    return 0


def _query(args) -> int:
    from sf_platform.query import format_result, query

    print(format_result(query(args.sql), args.format), end="")
    return 0


def _spectrum_ddl(args) -> int:
    from sf_platform.query import spectrum_ddl

    print(spectrum_ddl(args.schema, args.copy_schema), end="")
    return 0


def _ui(args) -> int:
    cfg = Settings.from_env()
    _ensure_stack(cfg)
    home = Path(os.environ.get("DAGSTER_HOME") or _dagster_home(cfg))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    # `dagster dev` applies the `.env` of its working directory OVER the environment: run it from
    # DAGSTER_HOME, which has none, so a real variable always wins (the env file still fills the gaps:
    # the definitions load it without overriding).
    workspace = home / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_module:\n      module_name: sf_platform.definitions\n"
        f"      working_directory: {REPO_ROOT}\n", encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)]
    return subprocess.call(cmd, cwd=home, env=env)


COMMANDS = {
    "stack": _stack,
    "seed": _seed,
    "materialize": _materialize,
    "demo": _demo,
    "summary": _summary,
    "discover": _discover,
    "snowflake-tables": _snowflake_tables,
    "query": _query,
    "spectrum-ddl": _spectrum_ddl,
    "ui": _ui,
}

settings.absolute_paths_from(Path.cwd())
settings.load_env_file()

if __name__ == "__main__":
    sys.exit(main())
