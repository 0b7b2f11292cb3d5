"""The table chain as Dagster assets: every registered table's s3 → glue → curated → mysql / snowflake
assets, built from the registry, materialized by one step per run (see ``assets/hop.py``)."""

from __future__ import annotations

import dagster as dg

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.hop import Hop, build_table_step
from sf_platform.assets.landing import OrganizeHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import GROUPS
from sf_platform.assets.snowflake import SnowflakeHop
from sf_platform.core.columnar import curated_database
from sf_platform.core.registry import Registry
from sf_platform.settings import Settings, get

STEP_NAME = "tables"


def chain_hops(registry: Registry, cfg: Settings) -> list[Hop]:
    """The hops in the order a table goes through them (MySQL and Snowflake load from the curated hub)."""
    return [
        OrganizeHop(registry),
        CrawlHop(cfg.glue_database),
        CuratedHop(cfg.glue_database, curated_database(cfg.glue_database, get("SF_GLUE_CURATED_DATABASE"))),
        MySQLHop(cfg.glue_database, cfg.mysql_database),
        SnowflakeHop(cfg.glue_database, cfg.snowflake_database, cfg.snowflake_schema),
    ]


def build_table_assets(registry: Registry, cfg: Settings) -> dg.AssetsDefinition:
    return build_table_step(
        STEP_NAME, chain_hops(registry, cfg), registry, GROUPS,
        description="Every registered table from its landed files to the catalog, MySQL, Snowflake and curated.",
    )


def build_hop_assets(name: str, hops: list[Hop], registry: Registry) -> dg.AssetsDefinition:
    """A step of selected hops only (tests and benchmarks run one hop on its own this way)."""
    return build_table_step(name, hops, registry, GROUPS)
