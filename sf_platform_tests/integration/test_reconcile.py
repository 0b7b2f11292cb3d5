"""The rows_reconcile check on the real stack: crawl, MySQL mirror and the check in one run, as the
UI materializes them."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.catalog import build_crawl_assets
from sf_platform.assets.mysql import build_mysql_assets, mysql_key
from sf_platform.checks.reconcile import build_reconcile_checks
from sf_platform.core.catalog import P_RAGGED_ROWS
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration


def _run(landing, glue, mysql, table: str) -> dg.AssetCheckEvaluation:
    registry = parse_registry({"tables": {table: {"targets": ["mysql"]}}})
    assets = [
        *build_crawl_assets(registry, glue.database),
        *build_mysql_assets(registry, glue.database, mysql.database),
        *build_reconcile_checks(registry, mysql.database, "UNUSED", "UNUSED"),
    ]
    result = dg.materialize(assets, resources={"landing": landing, "glue": glue, "mysql": mysql})
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
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
