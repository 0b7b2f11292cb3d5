"""The definitions load from the registry without any network call, with every layer present."""

from __future__ import annotations

import dagster as dg
import pytest

from sf_platform.core.registry import load_registry
from sf_platform.definitions import build_definitions
from sf_platform.settings import REPO_ROOT, Settings


@pytest.fixture()
def cfg(monkeypatch) -> Settings:
    # Unroutable endpoints: building definitions must not touch any service.
    monkeypatch.setenv("SF_ENV", "local")
    monkeypatch.setenv("SF_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SF_TABLES_FILE", str(REPO_ROOT / "tables.yaml"))
    monkeypatch.setenv("SF_GLUE_DATABASE", "sf_raw")
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
    assert dg.AssetKey(["glue", "sf_raw", "member"]) in mysql_member.parent_keys
    glue_member = graph.get(dg.AssetKey(["glue", "sf_raw", "member"]))
    assert dg.AssetKey(["s3", "member"]) in glue_member.parent_keys


def test_prod_deployment_builds_without_local_endpoints(cfg, monkeypatch):
    monkeypatch.setenv("SF_ENV", "prod")
    monkeypatch.delenv("SF_AWS_ENDPOINT_URL")
    defs = build_definitions(Settings.from_env())
    dg.Definitions.validate_loadable(defs)
