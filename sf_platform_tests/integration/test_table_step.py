"""The table step on the real stack: one step per run for many tables, each table on its own.

A run touches only its tables; a table whose load fails is reported while the others load and are
checked; checks ride along with their materializations and can run on their own; a table's hops run
after the hops they require, in whatever order the step's hops were listed.
"""

from __future__ import annotations

import itertools
import threading

import dagster as dg
import pytest

from sf_platform.assets.catalog import CrawlHop
from sf_platform.assets.curated import CuratedHop
from sf_platform.assets.hop import Hop, in_requires_order
from sf_platform.assets.landing import OrganizeHop
from sf_platform.assets.mysql import MySQLHop
from sf_platform.assets.names import curated_key, glue_key, mysql_key, s3_key
from sf_platform.assets.snowflake import SnowflakeHop
from sf_platform.assets.tables import build_hop_assets
from sf_platform.core.registry import parse_registry

pytestmark = pytest.mark.integration

REGISTRY = parse_registry({"tables": {"alpha": {"targets": ["mysql"]}, "beta": {"targets": ["mysql"]}}})


def _loaders(glue, mysql) -> list:
    """The hub (curated) and the MySQL load from it, as the chain orders them."""
    curated = f"{glue.database}_curated"
    return [CuratedHop(glue.database, curated), MySQLHop(glue.database, mysql.database, curated)]


def _step(glue, mysql):
    hops = [OrganizeHop(REGISTRY), CrawlHop(glue.database), *_loaders(glue, mysql)]
    return build_hop_assets("tables", hops, REGISTRY)


def _chain(table: str, glue, mysql) -> list[dg.AssetKey]:
    return [s3_key(table), glue_key(glue.database, table), curated_key(table), mysql_key(mysql.database, table)]


def _rows(mysql, table: str) -> list[tuple]:
    return mysql.fetch_all(f"SELECT id, name FROM `{mysql.database}`.`{table}` ORDER BY id")


def test_two_concurrent_runs_for_different_tables_move_and_load_only_their_own_files(landing, glue, mysql):
    landing.put("ALPHA_202509011200.csv", b"id,name\n1,a1\n2,a2\n")
    landing.put("BETA_202509011200.csv", b"id,name\n10,b1\n")
    step, resources = _step(glue, mysql), {"landing": landing, "glue": glue, "mysql": mysql}
    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(table: str) -> None:
        results[table] = dg.materialize([step], selection=_chain(table, glue, mysql), resources=resources)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    for table, other in (("alpha", "beta"), ("beta", "alpha")):
        result = results[table]
        assert result.success
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == set(_chain(table, glue, mysql))
        (organized,) = [e for e in result.get_asset_materialization_events() if e.asset_key == s3_key(table)]
        assert organized.materialization.metadata["files_moved_this_run"].value == 1
        # the other table's loose file was neither moved nor reported by this run
        assert not any(other.upper() in k for k in organized.materialization.metadata["left_in_place"].data)
    assert _rows(mysql, "alpha") == [(1, "a1"), (2, "a2")]
    assert _rows(mysql, "beta") == [(10, "b1")]
    assert sorted(o["Key"] for o in landing.list_objects("") if not o["Key"].startswith("_")) == [
        "alpha/ALPHA_202509011200.csv", "beta/BETA_202509011200.csv",
    ]


def test_a_table_whose_load_fails_does_not_stop_the_other_tables_load(landing, glue, mysql):
    landing.put("alpha/a1.csv", b"id,name\n1,a1\n")
    landing.put("beta/b1.csv", b"id,name\n10,b1\n")
    step, resources = _step(glue, mysql), {"landing": landing, "glue": glue, "mysql": mysql}
    assert dg.materialize([step], resources=resources).success

    # beta's id column turns into text: MySQL cannot widen BIGINT to text in place (policy: fail)
    landing.put("beta/b2.csv", b"id,name\nx-11,b2\n")
    landing.put("alpha/a2.csv", b"id,name\n2,a2\n")
    result = dg.materialize([step], resources=resources, raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "beta (mysql)" in message and "alpha" not in message.split("tables failed:")[1]
    assert _rows(mysql, "alpha") == [(1, "a1"), (2, "a2")]  # loaded in the same run
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert mysql_key(mysql.database, "alpha") in materialized
    assert mysql_key(mysql.database, "beta") not in materialized
    checks = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks[(mysql_key(mysql.database, "alpha"), "rows_reconcile")] is True
    assert (mysql_key(mysql.database, "beta"), "rows_reconcile") not in checks


def test_checks_ride_along_and_are_green_after_a_clean_load_and_run_on_their_own(landing, glue, mysql):
    landing.put("alpha/a1.csv", b"id,name,year\n1,a1,2024\n2,a2,2025\n")
    landing.put("beta/year=2025/b1.csv", b"id,name\n10,b1\n")
    step, resources = _step(glue, mysql), {"landing": landing, "glue": glue, "mysql": mysql}
    with dg.instance_for_test() as instance:
        result = dg.materialize([step], resources=resources, instance=instance)
        tags = instance.get_run_by_id(result.run_id).tags

    assert result.success
    assert (tags["sf/table"], tags["sf/trigger"]) == ("alpha,beta", "manual")  # as a UI launch gets them
    assert len([e for e in result.all_events if e.is_step_start]) == 1  # one step for both tables
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} == {
        (t, c) for t in ("alpha", "beta")
        for c in ("files_match_catalog", "files_readable", "schema_vs_previous", "mysql_matches_catalog",
                  "rows_reconcile")
    }
    not_green = [(e.asset_key.to_user_string(), e.check_name, e.description) for e in evaluations if not e.passed]
    assert not_green == []  # bookkeeping columns and the reserved-word partition column `year` included
    assert all(e.description for e in evaluations)

    only_checks = dg.materialize(
        [step], resources=resources, selection=dg.AssetSelection.checks_for_assets(mysql_key(mysql.database, "beta"))
    )
    assert only_checks.get_asset_materialization_events() == []
    assert {e.check_name for e in only_checks.get_asset_check_evaluations()} == {
        "schema_vs_previous", "mysql_matches_catalog", "rows_reconcile",
    }
    assert all(e.passed for e in only_checks.get_asset_check_evaluations())


def test_a_mysql_pool_of_one_keeps_the_tables_mysql_writes_from_overlapping(landing, glue, mysql):
    registry = parse_registry({"tables": {t: {"targets": ["mysql"]} for t in ("alpha", "beta", "gamma")}})
    for table in registry.tables:
        landing.put(f"{table}/a.csv", b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(2000)))
    hops = [CrawlHop(glue.database), *_loaders(glue, mysql)]
    step = build_hop_assets("tables", hops, registry)
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("mysql", 1)
        result = dg.materialize([step], instance=instance, resources={"landing": landing, "glue": glue, "mysql": mysql})
        assert result.success
        spans = sorted(
            (m.metadata["started_at"].value, m.metadata["finished_at"].value)
            for e in result.get_asset_materialization_events()
            if (m := e.step_materialization_data.materialization).asset_key.path[0] == "mysql"
        )
        assert len(spans) == 3
        for (_, first_end), (second_start, _) in zip(spans, spans[1:], strict=False):
            assert second_start >= first_end  # one writer at a time
        assert instance.event_log_storage.get_concurrency_info("mysql").active_slot_count == 0
    assert all(len(_rows(mysql, t)) == 2000 for t in registry.tables)


# ------------------------------------------------------------------------------------------ hop order


def test_hops_are_ordered_by_what_they_require_whatever_order_they_are_listed_in():
    hops = [OrganizeHop(REGISTRY), CrawlHop("g"), CuratedHop("g", "g_curated"), MySQLHop("g", "m"),
            SnowflakeHop("g", "SF", "RAW")]
    depth = {"organize": 0, "crawl": 1, "curated": 2, "mysql": 3, "snowflake": 3}  # the chain's levels
    for listed in itertools.permutations(hops):
        # the whole chain: by level; hops of one level (mysql, snowflake) as listed
        assert in_requires_order(listed) == sorted(listed, key=lambda h: depth[h.name]), [h.name for h in listed]
    for size in range(1, len(hops)):
        for listed in itertools.permutations(hops, size):
            ordered = in_requires_order(listed)
            assert sorted(map(id, ordered)) == sorted(map(id, listed))
            # each hop after those it requires of the listed ones (the others belong to another step),
            # and a listing that already has that order kept as it is
            assert _requires_met(ordered), [h.name for h in listed]
            if _requires_met(listed):
                assert ordered == list(listed), [h.name for h in listed]


def _requires_met(hops) -> bool:
    names = [h.name for h in hops]
    return all(names.index(r) < i for i, h in enumerate(hops) for r in h.requires if r in names)


def test_hops_that_require_each_other_are_a_definition_error():
    class Ping(Hop):
        name, requires = "ping", ("pong",)

    class Pong(Hop):
        name, requires = "pong", ("ping",)

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="ping requires pong; pong requires ping"):
        in_requires_order([Ping(), Pong(), OrganizeHop(REGISTRY)])


def test_a_step_listing_its_hops_backwards_still_runs_each_table_through_all_of_them(landing, glue, mysql):
    landing.put("ALPHA_202509011200.csv", b"id,name\n1,a1\n2,a2\n")
    backwards = [*reversed(_loaders(glue, mysql)), CrawlHop(glue.database), OrganizeHop(REGISTRY)]
    step = build_hop_assets("tables", backwards, REGISTRY)

    result = dg.materialize([step], selection=_chain("alpha", glue, mysql),
                            resources={"landing": landing, "glue": glue, "mysql": mysql})

    assert result.success
    assert [e.asset_key for e in result.get_asset_materialization_events()] == _chain("alpha", glue, mysql)
    assert _rows(mysql, "alpha") == [(1, "a1"), (2, "a2")]
