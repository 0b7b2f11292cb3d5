"""The rows_reconcile checks on the real stack: crawl, curate (the hub) and the MySQL load from the hub in
one step, each check evaluated right after its load, as a run from the UI does. Curated reconciles with the
catalog (rows + quarantined = recordCount); MySQL with the hub (rows = the hub's rows at the snapshot it
loaded)."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import curated_key, mysql_key
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core.catalog import P_RAGGED_ROWS
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration


def _run(landing, glue, mysql, table: str) -> dg.AssetCheckEvaluation:
    """The curated asset's rows_reconcile evaluation; MySQL's must pass (it holds the hub's rows)."""
    registry = parse_registry({"tables": {table: {"targets": ["mysql"]}}})
    curated = f"{glue.database}_curated"
    hops = [CrawlHop(glue.database), CuratedHop(glue.database, curated), MySQLHop(glue.database, mysql.database, curated)]
    step = build_hop_assets("load", hops, registry)
    result = dg.materialize([step], resources={"landing": landing, "glue": glue, "mysql": mysql})
    assert result.success
    checks = {e.asset_key: e for e in result.get_asset_check_evaluations() if e.check_name == "rows_reconcile"}
    assert set(checks) == {curated_key(table), mysql_key(mysql.database, table)}
    in_mysql = checks[mysql_key(mysql.database, table)]
    metadata = {k: v.value for k, v in in_mysql.metadata.items()}
    assert in_mysql.passed and metadata["rows_in_target"] == metadata["rows_in_hub"]
    return checks[curated_key(table)]


def test_a_ragged_row_quarantined_by_curation_reconciles_with_the_catalog(landing, glue, mysql):
    landing.put("scores/a.csv", b"id,points\n1,10\n2,20,extra\n3,30\n4,40\n")
    evaluation = _run(landing, glue, mysql, "scores")

    assert glue.get_table("scores")["Parameters"]["recordCount"] == "4"
    assert glue.get_table("scores")["Parameters"][P_RAGGED_ROWS] == "1"
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["catalog_record_count"] == 4
    assert (metadata["rows_in_target"], metadata["rows_quarantined"]) == (3, 1)
    assert metadata["difference"] == 0 and metadata["catalog_ragged_rows"] == 1
    # Nothing lost: a warning that rows sit in the quarantine, not an error.
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert metadata["quarantine"] == landing.uri("_quarantine/curated/scores/")
    assert mysql.fetch_all(f"SELECT COUNT(*) FROM `{mysql.database}`.`scores`") == [(3,)]  # never the ragged row


def test_a_clean_table_reconciles(landing, glue, mysql):
    landing.put("scores/a.csv", b"id,points\n1,10\n2,20\n")
    evaluation = _run(landing, glue, mysql, "scores")
    assert evaluation.passed
    assert {k: v.value for k, v in evaluation.metadata.items()}["catalog_ragged_rows"] == 0
