"""The one rows_reconcile rule of the hub's targets (MySQL, Snowflake), without services."""

from __future__ import annotations

import dagster as dg

from sf_platform.checks.reconcile import reconcile_with_hub

KEY = dg.AssetKey(["mysql", "db", "orders"])


def test_equal_rows_pass_and_a_difference_is_an_error_naming_both_counts():
    assert reconcile_with_hub(KEY, "MySQL", 7, 11, 7, loaded=True).passed
    wrong = reconcile_with_hub(KEY, "MySQL", 6, 11, 7, loaded=True)
    assert not wrong.passed and wrong.severity == dg.AssetCheckSeverity.ERROR
    assert wrong.description == "6 rows in MySQL vs 7 in the hub at snapshot 11 (-1)"


def test_a_merge_table_may_hold_fewer_rows_never_more():
    assert reconcile_with_hub(KEY, "Snowflake", 5, 11, 7, loaded=True, merged=True).passed
    assert not reconcile_with_hub(KEY, "Snowflake", 8, 11, 7, loaded=True, merged=True).passed


def test_an_expired_snapshot_warns():
    expired = reconcile_with_hub(KEY, "MySQL", 7, 11, None, loaded=True)
    assert not expired.passed and expired.severity == dg.AssetCheckSeverity.WARN


def test_never_loaded_passes_only_when_target_and_hub_are_empty():
    assert reconcile_with_hub(KEY, "MySQL", 0, None, None, loaded=False, hub_rows_now=0).passed
    behind = reconcile_with_hub(KEY, "MySQL", 0, None, None, loaded=False, hub_rows_now=3)
    assert not behind.passed and behind.description == "MySQL was never loaded from the hub (3 rows there)"
