"""Regenerate docs/asset-graph.png, the README's picture of the asset graph, from the demo.

Run after `make demo` (or use `make screenshot`, which runs the demo first):

    .venv/bin/python docs/screenshot.py [output.png]

It serves the UI on the demo's stack exactly as `sf-platform ui` does (same settings, same DAGSTER_HOME,
on a free port), opens the global asset lineage in a headless Chromium (Debian's `chromium` and
`chromium-driver`, as the browser test uses) with every group expanded, so each table shows in each of
its groups, and saves the page. The webserver is stopped afterwards; the stack keeps running.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # sf_platform_tests is not installed: it is the repository's

from sf_platform.assets.names import GROUPS  # noqa: E402
from sf_platform.local.stack import free_port  # noqa: E402
from sf_platform_tests.ui_support import (  # noqa: E402
    DagsterDev,
    chromium,
    skip_community_prompt,
    stop_process_group,
    wait_for_location,
    wait_for_text,
)

WIDTH, HEIGHT = 1600, 1100
# Groups shown open, each table a node: the chain through the hub (curated) to the MySQL mirror. The
# other groups (snowflake, exports) stay closed boxes: all open, the graph is three groups tall and its
# names too small to read at README width.
OPEN_GROUPS = [GROUPS[hop] for hop in ("landing", "organize", "crawl", "curated", "mysql")]


def main(output: Path) -> None:
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"sf-screenshot-{port}.log"
    sf_platform = Path(sys.executable).with_name("sf-platform")
    with open(log_path, "wb") as log:
        ui = subprocess.Popen(
            [str(sf_platform), "ui", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        dev = DagsterDev(port, wait_for_location(port, ui, log_path))
        skip_community_prompt(dev)
        with chromium(WIDTH, HEIGHT) as browser:
            capture(browser, dev, output)
    finally:
        stop_process_group(ui)
    print(f"wrote {output} ({output.stat().st_size:,} bytes)")


def capture(browser, dev: DagsterDev, output: Path) -> None:
    from selenium.webdriver.common.by import By

    expanded = ",".join(f"global@global:{group}" for group in OPEN_GROUPS)
    browser.get(f"{dev.url}/asset-groups?expanded={quote(expanded, safe='@:,')}")
    wait_for_text(browser, "Global asset lineage", *OPEN_GROUPS, timeout=120)
    # More room for the graph: the navigation collapsed (the UI remembers it; laid out again, the
    # graph is centred in the wider view), then one step out so the closed groups above and below fit.
    browser.find_element(By.XPATH, "//button[normalize-space()='Hide navigation']").click()
    browser.refresh()
    wait_for_text(browser, "Global asset lineage", *OPEN_GROUPS, timeout=120)
    browser.find_element(By.XPATH, "//button[.//*[@aria-label='zoom_out']]").click()
    time.sleep(5)  # statuses arrive after the graph; the zoom animates
    output.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(output))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "docs" / "asset-graph.png")
