"""The MySQL statements of the hub's MySQL target: identifiers quoted (also for pymysql's ``%``
formatting), values only as parameters, the swap one atomic RENAME."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.core import mysql_sql


def test_snapshot_ledger_statements_take_values_as_parameters():
    assert mysql_sql.read_snapshot("sf db") == (
        "SELECT snapshot_id, table_rows FROM `sf db`.`_sf_snapshots` WHERE table_name = %s"
    )
    upsert = mysql_sql.record_snapshot("sf_db")
    assert upsert.startswith(
        "INSERT INTO `sf_db`.`_sf_snapshots` (table_name, snapshot_id, table_rows, run_id) VALUES (%s, %s, %s, %s)"
    )
    assert upsert.count("%s") == 4
    assert mysql_sql.snapshot_ledger_table("sf_db").startswith("CREATE TABLE IF NOT EXISTS `sf_db`.`_sf_snapshots` (")


def test_a_percent_in_a_name_is_doubled_only_where_parameters_are_formatted():
    assert mysql_sql.delete_source_ids("d%b", "t`x", 2) == (
        "DELETE FROM `d%%b`.`t``x` WHERE `_sf_source_id` IN (%s, %s)"
    )
    assert mysql_sql.drop_table("d%b", "t") == "DROP TABLE IF EXISTS `d%b`.`t`"
    with pytest.raises(ValueError):
        mysql_sql.delete_source_ids("d", "t", 0)


def test_the_swap_is_one_rename_statement():
    assert mysql_sql.swap_tables("d", "t", "_sf_stage_t", "_sf_old_t", live_exists=True) == (
        "RENAME TABLE `d`.`t` TO `d`.`_sf_old_t`, `d`.`_sf_stage_t` TO `d`.`t`"
    )
    assert mysql_sql.swap_tables("d", "t", "_sf_stage_t", "_sf_old_t", live_exists=False) == (
        "RENAME TABLE `d`.`_sf_stage_t` TO `d`.`t`"
    )


def test_lock_names_fit_mysql_and_differ_per_table():
    names = {mysql_sql.lock_name("d", t) for t in ("a", "b", "a" * 64)} | {mysql_sql.lock_name("e", "a")}
    assert len(names) == 4 and all(len(n) <= 64 for n in names)


@given(st.text(min_size=0, max_size=40), st.sampled_from(["varchar", "char", "text", "mediumtext"]),
       st.integers(1, 200))
def test_a_value_is_too_long_exactly_when_its_measure_exceeds_the_column(value, data_type, size):
    limit = mysql_sql.string_limit(data_type, size, size * 4 if data_type.endswith("char") else size)
    chars, octets = len(value), len(value.encode())
    measured = chars if data_type in ("varchar", "char") else octets
    assert mysql_sql.too_long(chars, octets, limit) == (measured > size)
    assert not mysql_sql.too_long(chars, octets, None)
