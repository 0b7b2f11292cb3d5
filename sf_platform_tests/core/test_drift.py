"""Schema drift comparison and severities, and the reconciliation rule of the row-count checks."""

import dagster as dg
import pytest

from sf_platform.checks.reconcile import reconcile
from sf_platform.core.drift import Drift, compare, files_vs_catalog_severity, mysql_holds, snowflake_same
from sf_platform.core.registry import UpdateBehavior


def test_compare_reports_added_removed_and_retyped_columns():
    found = compare({"a": "int", "b": "string", "c": "date"}, {"a": "bigint", "b": "string", "d": "int"})
    assert found == Drift(added=("d",), removed=("c",), retyped=("a: int -> bigint",))
    assert not found.empty
    assert compare({"a": "int"}, {"a": "int"}).empty


@pytest.mark.parametrize(
    ("drift", "behavior", "level"),
    [
        (Drift(), UpdateBehavior.LOG, "ok"),
        (Drift(added=("x",)), UpdateBehavior.LOG, "error"),
        (Drift(added=("x",)), UpdateBehavior.UPDATE_IN_DATABASE, "warn"),
        (Drift(added=("x",)), UpdateBehavior.MERGE_NEW_COLUMNS, "warn"),
        (Drift(removed=("x",)), UpdateBehavior.LOG, "warn"),
    ],
)
def test_new_file_columns_block_only_when_the_catalog_will_not_take_them(drift, behavior, level):
    assert files_vs_catalog_severity(drift, behavior) == level


@pytest.mark.parametrize(
    ("expected", "actual", "holds"),
    [
        ("INT", "int(11)", True),
        ("INT", "bigint(20)", True),
        ("BIGINT", "int(11)", False),
        ("VARCHAR(32)", "varchar(64)", True),
        ("VARCHAR(64)", "varchar(32)", False),
        ("VARCHAR(64)", "text", True),
        ("DATE", "int(11)", False),
        ("TINYINT(1)", "tinyint(1)", True),
    ],
)
def test_mysql_column_holds_the_catalog_type(expected, actual, holds):
    assert mysql_holds(expected, actual) is holds


@pytest.mark.parametrize(
    ("expected", "actual"),
    [("VARCHAR", "TEXT"), ("NUMBER(38,0)", "NUMBER"), ("NUMBER(12,2)", "NUMBER"), ("FLOAT", "FLOAT"),
     ("TIMESTAMP_NTZ", "TIMESTAMP_NTZ"), ("DATE", "DATE")],
)
def test_snowflake_types_compare_on_base_names(expected, actual):
    assert snowflake_same(expected, actual)


def test_snowflake_type_change_is_drift():
    assert not snowflake_same("DATE", "TEXT")
    assert not snowflake_same("NUMBER(38,0)", "FLOAT")


def test_reconcile_passes_warns_and_fails():
    ok = reconcile(100, 100, 0, "s3://b/_quarantine/mysql/t/")
    assert ok.passed
    warn = reconcile(100, 97, 3, "s3://b/_quarantine/mysql/t/")
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.metadata["quarantine"].value == "s3://b/_quarantine/mysql/t/"
    bad = reconcile(100, 99, 0, "s3://b/_quarantine/mysql/t/")
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["difference"].value == 1


def test_reconcile_with_ragged_rows_in_the_catalog_count_and_the_quarantine():
    # recordCount 100, of which 1 ragged: 99 rows loaded and the ragged one quarantined add up.
    result = reconcile(100, 99, 1, "s3://b/_quarantine/mysql/t/", ragged=1)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN  # quarantined rows: a warning
    assert result.metadata["difference"].value == 0
    assert result.metadata["catalog_ragged_rows"].value == 1


def test_reconcile_on_a_merge_table_allows_collapsed_keys_but_not_extra_rows():
    assert reconcile(100, 90, 0, "s3://b/q/", merged=True).passed
    extra = reconcile(100, 101, 0, "s3://b/q/", merged=True)
    assert not extra.passed and extra.severity == dg.AssetCheckSeverity.ERROR
