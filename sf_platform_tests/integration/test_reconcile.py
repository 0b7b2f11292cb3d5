"""The rows_reconcile check on the real stack: crawl and MySQL mirror in one step, the check evaluated
right after the load, as a run from the UI does."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import mysql_key
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core.catalog import P_RAGGED_ROWS
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration


def _run(landing, glue, mysql, table: str) -> dg.AssetCheckEvaluation:
    registry = parse_registry({"tables": {table: {"targets": ["mysql"]}}})
    step = build_hop_assets("load", [CrawlHop(glue.database), MySQLHop(glue.database, mysql.database)], registry)
    result = dg.materialize([step], resources={"landing": landing, "glue": glue, "mysql": mysql})
    assert result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "rows_reconcile"]
    assert (evaluation.asset_key, evaluation.check_name) == (mysql_key(mysql.database, table), "rows_reconcile")
    return evaluation


def test_a_ragged_row_quarantined_by_the_mirror_reconciles_with_the_catalog(landing, glue, mysql):
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
    assert metadata["quarantine"] == landing.uri("_quarantine/mysql/scores/")


def test_a_clean_table_reconciles(landing, glue, mysql):
    landing.put("scores/a.csv", b"id,points\n1,10\n2,20\n")
    evaluation = _run(landing, glue, mysql, "scores")
    assert evaluation.passed
    assert {k: v.value for k, v in evaluation.metadata.items()}["catalog_ragged_rows"] == 0
