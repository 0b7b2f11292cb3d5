"""Command-line work outside a Dagster run: seed the demo, summarize every hop, discover new tables.

Resources are the deployment's own (``deployments.resources``), resolved with ``dg.build_resources`` so
the CLI reads exactly what the assets read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from sf_platform import deployments
from sf_platform.core import demo_data
from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.core.identifiers import quote_mysql
from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import load_registry
from sf_platform.hops.crawl import discover_tables
from sf_platform.settings import Settings


@contextmanager
def open_resources(cfg: Settings) -> Iterator:
    with dg.build_resources(deployments.resources(cfg)) as resources:
        yield resources


def seed_demo(cfg: Settings) -> list[str]:
    """Upload the demo files to the landing bucket root (idempotent: same bytes, same ETags)."""
    with open_resources(cfg) as r:
        r.landing.ensure_bucket()
        files = demo_data.generate()
        for f in files:
            r.landing.put(f.key, f.body)
        return [f.key for f in files]


class TargetUnreachable(RuntimeError):
    """A target the summary must read did not answer; the message says which and where."""


def summary_rows(cfg: Settings) -> list[tuple]:
    """Per registered table: files in S3, catalog recordCount, rows in MySQL, rows in Snowflake ("-":
    not loaded yet). Raises TargetUnreachable when a target does not answer at all, rather than
    showing it as "-"."""
    registry = load_registry(cfg.tables_file)
    rows = []
    with open_resources(cfg) as r:
        wanted = {t for c in registry.tables.values() for t in c.targets}
        snowflake = _snowflake_cursor(r.snowflake) if "snowflake" in wanted else None
        if "mysql" in wanted:
            _reach_mysql(r.mysql)
        for table, config in registry.tables.items():
            files = [o for o in r.landing.list_objects(f"{table}/") if is_data_key(o["Key"])]
            entry = r.glue.get_table(table)
            catalog_rows = entry["Parameters"].get("recordCount", "-") if entry else "-"
            mysql_rows = _mysql_count(r.mysql, table) if "mysql" in config.targets else "n/a"
            snowflake_rows = _snowflake_count(snowflake, cfg, table) if "snowflake" in config.targets else "n/a"
            rows.append((table, len(files), catalog_rows, mysql_rows, snowflake_rows))
    return rows


def _reach_mysql(mysql) -> None:
    try:
        mysql.fetch_all("SELECT 1")
    except Exception as exc:
        raise TargetUnreachable(f"MySQL at {mysql.host}:{mysql.port} did not answer: {exc}") from None


def _mysql_count(mysql, table: str):
    try:
        return mysql.fetch_all(f"SELECT COUNT(*) FROM {quote_mysql(mysql.database)}.{quote_mysql(table)}")[0][0]
    except Exception:  # reachable (checked first): the table is not there yet
        return "-"


def _snowflake_cursor(snowflake):
    try:
        with snowflake.get_connection() as conn:
            conn.cursor().execute("SELECT 1")
    except Exception as exc:
        raise TargetUnreachable(f"Snowflake ({snowflake.account}) did not answer: {str(exc).splitlines()[0]}") from None
    return snowflake


def _snowflake_count(snowflake, cfg: Settings, table: str):
    try:
        with snowflake.get_connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {snowflake_table_ref(cfg.snowflake_database, cfg.snowflake_schema, table)}")
            return cur.fetchone()[0]
    except Exception:  # reachable (checked first): the table is not there yet
        return "-"


def discover(cfg: Settings) -> str:
    """YAML registry entries (with the evidence as comments) for tables in the bucket that the registry
    does not list: unknown table prefixes, and loose files that organize would move to a new prefix."""
    registry = load_registry(cfg.tables_file)
    with open_resources(cfg) as r:
        return discover_tables(r.landing, registry).to_yaml()
