"""The definitions load from the registry without any network call, with every layer present."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.assets.hop import Hop, build_table_step
from sf_platform.core.registry import load_registry, parse_registry
from sf_platform.definitions import build_definitions
from sf_platform.settings import REPO_ROOT, Settings


@pytest.fixture()
def cfg(monkeypatch) -> Settings:
    # Unroutable endpoints: building definitions must not touch any service.
    monkeypatch.setenv("SF_ENV", "local")
    monkeypatch.setenv("SF_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SF_TABLES_FILE", str(REPO_ROOT / "tables.yaml"))
    monkeypatch.setenv("SF_GLUE_DATABASE", "sf_raw")
    monkeypatch.setenv("SF_LANDING_BUCKET", "sf-landing")
    monkeypatch.setenv("SF_GLUE_CURATED_DATABASE", "")
    monkeypatch.setenv("SF_MYSQL_DATABASE", "sf_mirror")
    monkeypatch.setenv("SF_SNOWFLAKE_DATABASE", "SF_DEMO")
    monkeypatch.setenv("SF_SNOWFLAKE_SCHEMA", "RAW")
    return Settings.from_env()


def test_definitions_load_with_every_layer(cfg):
    defs = build_definitions(cfg)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    tables = load_registry(cfg.tables_file).tables
    for table, config in tables.items():
        assert f"s3/{table}" in keys
        assert f"glue/sf_raw/{table}" in keys
        assert (f"mysql/sf_mirror/{table}" in keys) == ("mysql" in config.targets)
        assert (f"snowflake/SF_DEMO/RAW/{table}" in keys) == ("snowflake" in config.targets)
    assert "landing" in keys


def test_every_asset_has_a_kind_and_lineage(cfg):
    defs = build_definitions(cfg)
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.kinds, f"{key.to_user_string()} has no kinds"
    mysql_member = graph.get(dg.AssetKey(["mysql", "sf_mirror", "member"]))
    assert dg.AssetKey(["curated", "member"]) in mysql_member.parent_keys  # MySQL loads from the hub
    glue_member = graph.get(dg.AssetKey(["glue", "sf_raw", "member"]))
    assert dg.AssetKey(["s3", "member"]) in glue_member.parent_keys


def test_prod_deployment_builds_without_local_endpoints(cfg, monkeypatch):
    monkeypatch.setenv("SF_ENV", "prod")
    monkeypatch.delenv("SF_AWS_ENDPOINT_URL")
    defs = build_definitions(Settings.from_env())
    dg.Definitions.validate_loadable(defs)


def test_every_table_asset_tells_its_story_before_any_run(cfg):
    defs = build_definitions(cfg)
    graph = defs.resolve_asset_graph()
    tables = load_registry(cfg.tables_file).tables
    names = {
        "s3": "s3://sf-landing/{t}/", "glue": "sf_raw.{t}", "mysql": "sf_mirror.{t}",
        "snowflake": "SF_DEMO.RAW.{T}", "curated": "sf_raw_curated.{t}",
    }
    checks = {
        "glue": {"files_match_catalog", "files_readable", "schema_vs_previous"},
        "mysql": {"mysql_matches_catalog", "rows_reconcile", "schema_vs_previous"},
        "snowflake": {"snowflake_matches_catalog", "rows_reconcile", "schema_vs_previous"},
        "s3": set(), "curated": {"rows_reconcile"},
    }
    seen = 0
    for key in graph.get_all_asset_keys():
        table, node = key.path[-1], graph.get(key)
        if key.path[0] not in names or node.group_name == "exports":  # exports: test_snowflake_export.py
            continue
        seen += 1
        assert node.tags["sf/table"] == table and node.tags["sf/domain"] == "assessment"
        assert list(node.owners) == list(tables[table].owners) == ["team:data-platform"]
        assert node.metadata["dagster/table_name"] == names[key.path[0]].format(t=table, T=table.upper())
        assert node.metadata["dagster/code_references"].code_references[0].file_path.endswith(".py")
        assert tables[table].description in node.description
        assert {c.name for c in node.check_keys} == checks[key.path[0]], key
    assert seen == sum(3 + len(c.targets) for c in tables.values())
    assert {j.name for j in defs.jobs} == {"load_tables", "export_tables"}


def test_a_check_on_an_asset_outside_the_step_is_refused_naming_it():
    class Stray(Hop):  # a hop whose check is on another hop's asset
        name = "stray"

        def key(self, table):
            return dg.AssetKey(["stray", table])

        def deps(self, table):
            return []

        def description(self, table, config):
            return "stray"

        def checks(self, table, config):
            return [dg.AssetCheckSpec("rows", asset=dg.AssetKey(["elsewhere", table]))]

    registry = parse_registry({"tables": {"member": {}}})
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"step odd: .*\['elsewhere/member'\]"):
        build_table_step("odd", [Stray()], registry, {"stray": "stray"})
