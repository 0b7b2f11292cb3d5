"""Discovery against the real moto server: table prefixes the registry lacks -> proposed registry entries."""

from __future__ import annotations

import gzip

import pytest
import yaml

from sf_platform import cli, runtime
from sf_platform.core.registry import parse_registry
from sf_platform.hops.crawl import discover_tables
from sf_platform.hops.organize import unregistered_prefixes
from sf_platform.settings import Settings

pytestmark = pytest.mark.integration

REGISTRY = {"tables": {"member": {}}}


def _seed(landing) -> None:
    landing.put("member/MEMBER_202508291511.csv", b"MEMBER_ID\n1\n")  # registered: no proposal
    landing.put(
        "orders/ORDERS_202508291511.csv",
        b"ORDER_ID,AMOUNT,ORDERED_ON\n1,9.50,2025-08-29\n2,12.00,2025-08-30\n",
    )
    landing.put(
        "orders/ORDERS_202508301511.csv.gz", gzip.compress(b"ORDER_ID,AMOUNT,ORDERED_ON\n3,1.25,2025-08-31\n")
    )
    landing.put("psy_raw/part-0.csv", b"1,00012,2024-01-01\n2,00013,2024-01-02\n")
    landing.put("events/dt=2024-01-01/a.csv", b"id,kind\n1,click\n")
    landing.put("Bad Name/x.csv", b"a\n1\n")
    landing.put("markers/_SUCCESS", b"")
    landing.put("broken/x.csv", b"")
    landing.put("_sf/profiles/member/profiles.json", b"{}")
    landing.put(
        "NEW_THING_202508291511.csv", b"CODE,LABEL\nA1,first\nB2,second\n"
    )  # organize would make new_thing/
    landing.put("MEMBER_202508300000.csv", b"MEMBER_ID\n2\n")


def test_unregistered_prefixes_get_proposed_entries(landing):
    _seed(landing)
    found = discover_tables(landing, parse_registry(REGISTRY))

    assert list(found.proposals) == ["events", "new_thing", "orders", "psy_raw"]
    orders = found.proposals["orders"]
    assert orders["header"] == "present" and "columns" not in orders
    assert orders["description"].startswith(f"Discovered in s3://{landing.bucket}/orders/ (2 file(s),")
    assert found.proposals["psy_raw"] == {
        "description": found.proposals["psy_raw"]["description"],
        "header": "absent",
        "columns": ["col_1", "col_2", "col_3"],
    }
    assert found.proposals["new_thing"]["header"] == "present"
    assert "hive partitions: dt" in found.evidence["events"]
    assert any(line.strip().startswith("amount: decimal(4,2)") for line in found.evidence["orders"])
    assert "columns: [col_1, col_2, col_3]" in found.to_yaml()
    assert found.skipped == {
        "Bad Name/": "not a valid table name (a-z first, then a-z, 0-9, _; max 64)",
        "markers/": "no data files",
        "broken/": "no readable file among 1 profiled (empty file)",
    }


def test_unregistered_prefixes_are_reported(landing):
    _seed(landing)
    assert unregistered_prefixes(landing, {"member"}) == [
        "Bad Name",
        "broken",
        "events",
        "markers",
        "orders",
        "psy_raw",
    ]


def test_the_proposal_is_valid_registry_yaml_that_crawls(landing, glue):
    from sf_platform.hops.crawl import crawl_table

    _seed(landing)
    text = discover_tables(landing, parse_registry(REGISTRY)).to_yaml()
    assert "  # skipped Bad Name/: not a valid table name" in text
    proposed = yaml.safe_load(text)
    registry = parse_registry({"tables": {**REGISTRY["tables"], **proposed}})  # pasted under `tables:`

    report = crawl_table(landing, glue, "psy_raw", registry.table("psy_raw"))
    assert report.action == "created"
    entry = glue.get_table("psy_raw")
    assert [c["Name"] for c in entry["StorageDescriptor"]["Columns"]] == ["col_1", "col_2", "col_3"]
    assert entry["Parameters"]["recordCount"] == "2"


def test_nothing_to_propose_is_empty(landing):
    landing.put("member/x.csv", b"id\n1\n")
    assert discover_tables(landing, parse_registry(REGISTRY)).to_yaml() == ""


def test_the_cli_command_prints_the_proposals(landing, tmp_path, monkeypatch, capsys):
    tables = tmp_path / "tables.yaml"
    tables.write_text(yaml.safe_dump(REGISTRY))
    monkeypatch.setenv("SF_TABLES_FILE", str(tables))
    monkeypatch.setenv("SF_LANDING_BUCKET", landing.bucket)
    landing.put("orders/x.csv", b"ORDER_ID,AMOUNT\n1,9.5\n")

    assert yaml.safe_load(runtime.discover(Settings.from_env()))["orders"]["header"] == "present"
    assert cli.main(["discover"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# proposed entries for tables.yaml")
    assert "  orders:\n    description: Discovered in" in out
