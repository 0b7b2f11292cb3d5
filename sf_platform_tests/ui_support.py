"""What the UI tests (and docs/screenshot.py) share: `dagster dev` on the local stack, its GraphQL
endpoint, and a headless Chromium driven through Selenium.

Why Selenium with Debian's `chromium-driver` and not Playwright: Debian ships chromedriver built from
the same source as its `chromium` (156.0.8078.108 today: the same version, always), while Playwright
1.65 is built against Chromium 159 and only promises to work with its own download, which the closed
network (and the project's rule) forbids. The browser is started with background networking off and a
fresh profile: nothing it does reaches beyond the loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
from dagster_graphql import DagsterGraphQLClient

from sf_platform.local import dagster_home
from sf_platform.local.stack import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def isolated_names(tmp_path: Path) -> dict[str, str]:
    """Settings that give one UI test its own bucket, databases and DAGSTER_HOME on the shared stack."""
    run = uuid.uuid4().hex[:8]
    return {
        "SF_LANDING_BUCKET": f"sf-ui-{run}",
        "SF_GLUE_DATABASE": f"sf_ui_{run}",
        "SF_MYSQL_DATABASE": f"sf_ui_{run}",
        "SF_SNOWFLAKE_DATABASE": f"SF_UI_{run.upper()}",
        "SF_SENSOR_INTERVAL_SECONDS": "5",
        "DAGSTER_HOME": str(dagster_home.prepare(tmp_path / "dagster_home")),
    }


@dataclass(frozen=True)
class DagsterDev:
    """A running `dagster dev`: where it answers and its loaded code location."""

    port: int
    location: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.port)


@contextlib.contextmanager
def dagster_dev(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[DagsterDev]:
    """`dagster dev` (webserver + daemon) on a free port, run from ``workdir``; stopped on exit.

    Dagster reads `.env` from its working directory over the environment; a developer's repo-root .env
    must not redirect a test, so it runs from ``workdir`` with a workspace file of its own.
    """
    workspace = workdir / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: sf_platform.definitions\n"
        f"      working_directory: {workdir}\n"
    )
    port = free_port()
    log_path = workdir / "dagster_dev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=workdir, env=dict(env if env is not None else os.environ),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            location = wait_for_location(port, proc, log_path)
            yield DagsterDev(port, location)
        finally:
            stop_process_group(proc)


def stop_process_group(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM the process group ``proc`` leads (webserver, daemon, code server), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    response = requests.post(
        f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    response.raise_for_status()
    return response.json()["data"]


def wait_for_location(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 240) -> str:
    """The name of the code location once the webserver has loaded it; fails with the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dagster dev exited: {log_path.read_text()[-3000:]}"
        try:
            entries = graphql(port, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        except (requests.RequestException, KeyError, TypeError):
            time.sleep(1)
            continue
        for entry in entries:
            loaded = entry["locationOrLoadError"] or {}
            assert loaded.get("__typename") != "PythonError", loaded.get("message")
            if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
                return entry["name"]
        time.sleep(1)
    raise AssertionError(f"code location did not load in {timeout} s: {log_path.read_text()[-3000:]}")


def wait_for_run(client: DagsterGraphQLClient, run_id: str, timeout: float = 900) -> str:
    """The run's final status (SUCCESS, FAILURE or CANCELED)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


SENSOR_STATE_QUERY = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { __typename ... on Sensor { sensorState { id } } }
}
"""
STOP_SENSOR = """
mutation Stop($id: String!) { stopSensor(id: $id) { __typename ... on PythonError { message } } }
"""


def stop_sensor(dev: DagsterDev, name: str) -> None:
    """Turn a sensor off, as its toggle in the UI does."""
    selector = {"repositoryLocationName": dev.location, "repositoryName": "__repository__", "sensorName": name}
    sensor = graphql(dev.port, SENSOR_STATE_QUERY, {"selector": selector})["sensorOrError"]
    assert sensor["__typename"] == "Sensor", sensor
    stopped = graphql(dev.port, STOP_SENSOR, {"id": sensor["sensorState"]["id"]})["stopSensor"]
    assert stopped["__typename"] == "StopSensorMutationResult", stopped


def skip_community_prompt(dev: DagsterDev) -> None:
    """The webserver asks a new instance's first visitor to join its newsletter (a modal over every page
    on 127.0.0.1); answer it once for the instance, as its "Skip" button does."""
    assert graphql(dev.port, "mutation { setNuxSeen }")["setNuxSeen"] is True


@contextlib.contextmanager
def chromium(width: int = 1600, height: int = 1000) -> Iterator:
    """A headless Chromium (Debian's, through its own chromedriver) with a fresh profile; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        raise FileNotFoundError(f"{CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="sf-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # Service(path) skips Selenium Manager, which would otherwise try to download a driver.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        # --window-size is the window's outer size; the page itself gets exactly width x height.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_text(driver) -> str:
    """What the page shows (rendered text, one element per line)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except (StaleElementReferenceException, WebDriverException):  # the page is being re-rendered
        return ""


def wait_for_text(driver, *texts: str, timeout: float = 60) -> str:
    """Wait until the page shows every one of ``texts``; -> the page's text. Fails naming what is missing."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        shown = page_text(driver)
        if all(t in shown for t in texts):
            return shown
        time.sleep(0.5)
    missing = [t for t in texts if t not in shown]
    raise AssertionError(f"{driver.current_url} does not show {missing} after {timeout} s; it shows:\n{shown[:3000]}")
