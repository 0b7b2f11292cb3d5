"""The deploy/ files agree with the code and carry no secret (no service needed; make test runs these)."""

from __future__ import annotations

import re

import pytest
import yaml

from sf_platform import deployments, settings
from sf_platform.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def test_the_production_instance_config_is_valid_dagster_config(monkeypatch, tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["granularity"] == "op"  # the step claims slots itself
    assert config["telemetry"]["enabled"] is False
    assert config["run_retries"]["enabled"] and not config["run_retries"]["retry_on_asset_or_op_failure"]
    # Dead or never-started run workers are failed by the daemon, not left STARTED; DefaultRunLauncher
    # cannot resume a run, so resume attempts would only delay the failure.
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert config["run_monitoring"]["start_timeout_seconds"] > 0


@pytest.mark.parametrize("name", ["values.yaml", "values-celery.yaml"])
def test_helm_instances_monitor_runs(name):
    values = {**yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text()),
              **yaml.safe_load((DEPLOY / "helm" / name).read_text())}
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    assert values["runLauncher"]["type"] in ("K8sRunLauncher", "CeleryK8sRunLauncher")  # they check their Jobs


def test_celery_workers_and_executor_share_task_settings():
    worker = yaml.safe_load((DEPLOY / "celery-worker.yaml").read_text())["execution"]["config"]
    assert worker["config_source"] == deployments.CELERY_CONFIG_SOURCE
    assert worker["broker"] == {"env": "SF_CELERY_BROKER_URL"}
    assert worker["backend"] == {"env": "SF_CELERY_BACKEND_URL"}


@pytest.mark.parametrize("name", deployments.EXECUTORS)
def test_every_executor_choice_builds(monkeypatch, name):
    if "celery" in name:
        pytest.importorskip("dagster_celery")  # the deploy extra
    if "k8s" in name:
        pytest.importorskip("dagster_k8s")
    monkeypatch.setenv("SF_EXECUTOR", name)
    assert deployments.executor(None).name == name


def test_an_unknown_executor_is_refused(monkeypatch):
    monkeypatch.setenv("SF_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="SF_EXECUTOR must be one of"):
        deployments.executor(None)


def test_the_image_runs_as_non_root_and_bakes_no_secret():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert "constraints.txt" in dockerfile and "'.[deploy]'" in dockerfile
    assert "sf_platform.definitions" in dockerfile
    secrets = [name for name, (_, doc) in settings.VARIABLES.items() if "secret" in doc]
    for name in [*secrets, "DAGSTER_PG_PASSWORD", "SF_CELERY_BROKER_URL"]:
        assert name not in dockerfile, name


def _walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("name", ["values.yaml", "values-celery.yaml"])
def test_helm_values_take_secrets_from_kubernetes_secrets(name):
    values = yaml.safe_load((DEPLOY / "helm" / name).read_text())
    for path, value in _walk(values):
        if re.search(r"password|secret_access|token", path, re.I):
            assert value in ("", None, False), f"{name}: {path} holds a literal secret"
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert deployment["envSecrets"] == [{"name": "sf-platform-env"}]
        assert "sf_platform.definitions" in deployment["codeServerArgs"]
        assert deployment["securityContext"]["runAsUser"] == 10001
        assert deployment["env"]["SF_EXECUTOR"] in deployments.EXECUTORS
