"""Every asset key and group of the platform, decided in one place.

Keys mirror the physical tables: ``s3/<table>``, ``glue/<db>/<table>``, ``mysql/<db>/<table>``,
``snowflake/<db>/<schema>/<table>``, ``curated/<table>``, ``exports/<table>``.
"""

from __future__ import annotations

import dagster as dg

LANDING_KEY = dg.AssetKey("landing")

# hop -> asset group in the UI
GROUPS = {
    "landing": "landing",
    "organize": "s3",
    "crawl": "catalog",
    "mysql": "mysql",
    "snowflake": "snowflake",
    "curated": "curated",
    "exports": "exports",
}


def s3_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["s3", table])


def glue_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["glue", database, table])


def mysql_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["mysql", database, table])


def snowflake_key(database: str, schema: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["snowflake", database, schema, table])


def curated_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["curated", table])


def export_key(key: str) -> dg.AssetKey:
    return dg.AssetKey(["exports", key])


def table_of(key: dg.AssetKey) -> str:
    """The registry table an asset key of the chain belongs to (its last part)."""
    return key.path[-1]


def run_tags(tables: list[str], trigger: str) -> dict[str, str]:
    """The tags every run of the chain carries, whoever starts it (sensor, CLI): which tables, and why."""
    shown = ",".join(sorted(tables))
    if len(shown) > 200:
        shown = f"{shown[:180]}... ({len(tables)} tables)"
    return {"sf/table": shown, "sf/trigger": trigger}
