"""The Dagster UI in a real browser: what a user looks at first after loading the demo.

`dagster dev` on the local stack with the demo seeded and two of its tables loaded into MySQL (one
`load_tables` run), then a headless Chromium
(Debian's, driven by Selenium through Debian's chromedriver; see ui_support.py) reads the pages as a
person would: each asset group lists the demo's tables; a MySQL table's page shows its owners, tags,
description, code reference, row count and columns; "Materialize" on a table's page starts a run that
succeeds and whose page shows its step and asset; a check's result carries its one-line description.
Assertions are on visible text (links' targets only where the UI cuts long names in the middle).

Skipped only when /usr/bin/chromium is missing (`apt-get install chromium chromium-driver`; .ci/run
installs them). Run alone with `pytest -m e2e sf_platform_tests/test_ui_browser.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sf_platform.assets.names import GROUPS
from sf_platform.assets.tables import STEP_NAME, chain_hops
from sf_platform.core import demo_data
from sf_platform.core.registry import Registry, load_registry
from sf_platform.runtime import open_resources, seed_demo
from sf_platform.settings import Settings
from sf_platform_tests.ui_support import (
    CHROMIUM,
    DagsterDev,
    chromium,
    dagster_dev,
    isolated_names,
    page_text,
    skip_community_prompt,
    stop_sensor,
    wait_for_run,
    wait_for_text,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium chromium-driver"),
]


OPENED_TABLES = ("member", "region")  # the tables whose MySQL pages the tests open
LOADED_HOPS = ("organize", "crawl", "curated", "mysql")  # MySQL loads from curated (the hub)


@dataclass
class DemoUI:
    dev: DagsterDev
    cfg: Settings
    registry: Registry
    rows: Counter  # demo rows per table
    browser: object  # selenium WebDriver

    def open(self, path: str) -> None:
        self.browser.get(self.dev.url + path)

    def hop(self, name: str):
        return next(h for h in chain_hops(self.registry, self.cfg) if h.name == name)

    def asset_path(self, hop_name: str, table: str) -> str:
        return "/assets/" + "/".join(self.hop(hop_name).key(table).path)


@pytest.fixture(scope="module")
def demo_ui(stack_env, tmp_path_factory):
    """The demo loaded through `dagster dev` on its own bucket and databases, and a browser on it."""
    workdir = tmp_path_factory.mktemp("ui_browser")
    with pytest.MonkeyPatch.context() as env:
        for key, value in isolated_names(workdir).items():
            env.setenv(key, value)
        cfg = Settings.from_env()
        with open_resources(cfg) as r:
            r.mysql.ensure_database()
        try:
            with dagster_dev(workdir) as dev:
                # The sensor would load each demo table in a run of its own beside the one below and
                # queue the test's run behind them; this test is about the UI, not the sensor.
                stop_sensor(dev, "landing_files")
                skip_community_prompt(dev)
                rows = Counter()
                for f in demo_data.generate():
                    rows[f.table] += f.rows
                seed_demo(cfg)
                registry = load_registry(cfg.tables_file)
                # Only the chains the tests open are loaded (the whole demo would double the setup).
                opened = [h.key(t) for t in OPENED_TABLES for h in chain_hops(registry, cfg) if h.name in LOADED_HOPS]
                run_id = dev.client.submit_job_execution(
                    "load_tables", repository_location_name=dev.location, repository_name="__repository__",
                    asset_selection=opened,
                )
                assert wait_for_run(dev.client, run_id, timeout=300) == "SUCCESS"
                with chromium() as browser:
                    yield DemoUI(dev, cfg, registry, rows, browser)
        finally:
            with open_resources(cfg) as r:
                r.mysql.fetch_all(f"DROP DATABASE IF EXISTS `{cfg.mysql_database}`")


def _listed_assets(browser) -> dict[str, str]:
    """The asset list on screen: asset path (from each name's link) -> the name as shown."""
    listed = {}
    for link in browser.find_elements(By.XPATH, "//a[starts-with(@href, '/assets/')]"):
        path = unquote(urlparse(link.get_attribute("href")).path).removeprefix("/assets/").strip("/")
        if "/" in path and link.text.strip():
            listed[path] = link.text.strip()
    return listed


def test_each_group_lists_the_demo_tables(demo_ui):
    tables = sorted(demo_ui.rows)
    assert tables == sorted(demo_ui.registry.tables)
    for hop in chain_hops(demo_ui.registry, demo_ui.cfg):
        group = GROUPS[hop.name]
        demo_ui.open(f"/locations/{demo_ui.dev.location}/asset-groups/{group}/list")
        expected = {"/".join(hop.key(t).path): t for t in tables}
        wait_for_text(demo_ui.browser, group, *tables)
        WebDriverWait(demo_ui.browser, 30).until(lambda b, want=set(expected): set(_listed_assets(b)) == want)
        for path, shown in _listed_assets(demo_ui.browser).items():
            # Long names are cut in the middle ("snowflake / SF_UI_5…DF08 / RAW / member"): the table stays.
            assert shown.endswith(f"/ {expected[path]}"), (group, path, shown)


def test_a_mysql_table_page_shows_owners_tags_description_code_rows_and_columns(demo_ui):
    table = OPENED_TABLES[0]
    config = demo_ui.registry.table(table)
    demo_ui.open(demo_ui.asset_path("mysql", table))
    owners = [o.removeprefix("team:") for o in config.owners]
    tags = [f"sf/{k}: {v}" for k, v in config.tags.items()] + [f"sf/table: {table}"]
    with open_resources(demo_ui.cfg) as r:
        columns = [c["Name"] for c in r.glue.get_table(table)["StorageDescriptor"]["Columns"]]
    text = wait_for_text(
        demo_ui.browser, "Owners", *owners, *tags, config.description, "Source code",
        type(demo_ui.hop("mysql")).__name__, "Row count", "Columns", *columns,
    )
    assert owners and "sf/domain: assessment" in tags  # the demo registry's owners and tags reach the page
    assert f"Row count\n{demo_ui.rows[table]:,}" in text
    assert f"Owners\n{owners[0]}" in text


def test_materialize_from_the_ui_runs_and_checks_describe_their_result(demo_ui):
    table = OPENED_TABLES[1]
    browser = demo_ui.browser
    demo_ui.open(demo_ui.asset_path("mysql", table))
    wait_for_text(browser, "Materialize", "Row count")
    browser.find_element(By.XPATH, "//button[normalize-space()='Materialize']").click()
    wait_for_text(browser, "Launched run", timeout=60)
    browser.find_element(By.XPATH, "//a[normalize-space()='View' and starts-with(@href, '/runs/')]").click()
    WebDriverWait(browser, 30).until(lambda b: "/runs/" in b.current_url)
    run_id = urlparse(browser.current_url).path.rsplit("/", 1)[-1]

    # The run page: its status, the asset it materialized and its one step.
    hop = demo_ui.hop("mysql")
    checks = [spec.name for spec in hop.check_specs(table, demo_ui.registry.table(table))]
    asset_name = " / ".join(hop.key(table).path)
    text = wait_for_text(browser, "Success", asset_name, f"{len(checks)} checks", "Succeeded (1)", timeout=180)
    assert wait_for_run(demo_ui.dev.client, run_id, timeout=30) == "SUCCESS"
    assert STEP_NAME in text.splitlines()
    assert "ASSET_MATERIALIZATION" in text
    assert "Errored (0)" in text

    # The checks that ran with it, each with its one-line result.
    demo_ui.open(demo_ui.asset_path("mysql", table) + "?view=checks&checkDetail=rows_reconcile")
    rows = demo_ui.rows[table]
    text = wait_for_text(browser, "rows_reconcile", "Latest execution", f"{rows:,} rows, as in the hub")
    assert "Passed" in text
    shown = page_text(browser).splitlines()
    assert "rows_reconcile" in checks
    for check in checks:
        assert check in shown and shown[shown.index(check) + 1] == "Succeeded", (check, shown[:40])
