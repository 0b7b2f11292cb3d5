"""The one place resources (``SF_ENV``: ``local`` or ``prod``) and the executor (``SF_EXECUTOR``) are
chosen per deployment.

Both resource sets use the same resource classes; they differ in where the services are. Values come
from the environment through ``dg.EnvVar`` when set, so secrets are resolved at run time and never stored.
The executor decides where a run's step executes: in the run's own process (``in_process``, the
default: a load run is one step, see ``assets/hop.py``), on a Celery worker (``celery``: workers on a
broker, ``dagster-celery worker start -y deploy/celery-worker.yaml``), or in a Kubernetes Job of its own
(``k8s`` with the K8sRunLauncher, ``celery_k8s`` with the CeleryK8sRunLauncher). The distributed ones come
from the ``deploy`` extra (``pip install -c constraints.txt '.[deploy]'``) and are imported only when chosen.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from sf_platform import settings
from sf_platform.resources.aws import GlueCatalog, LandingBucket, LandingEvents
from sf_platform.resources.mysql import MySQLResource
from sf_platform.resources.snowflake import SnowflakeDatabase


def _env(name: str):
    """``dg.EnvVar(name)`` when the variable is set, else the documented default (or None if empty)."""
    if os.environ.get(name):
        return dg.EnvVar(name)
    return settings.VARIABLES[name][0] or None


def _env_int(name: str):
    return dg.EnvVar.int(name) if os.environ.get(name) else int(settings.VARIABLES[name][0])


EXECUTORS = ("in_process", "multiprocess", "celery", "celery_k8s", "k8s")

# Celery settings shared by the executor (the client side) and the workers (deploy/celery-worker.yaml
# repeats them; test_deploy_files checks they agree). A step's task is acknowledged only when it has
# finished, and given back to the broker when its worker dies, so a lost worker's step runs again on
# another worker (every hop is idempotent through its ledger); one task per worker process at a time.
CELERY_CONFIG_SOURCE = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}


def executor(cfg: settings.Settings) -> dg.ExecutorDefinition:
    """The executor of the named jobs, from ``SF_EXECUTOR``."""
    name = settings.get("SF_EXECUTOR")
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name not in EXECUTORS:
        raise ValueError(f"SF_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")
    try:
        if name == "celery":
            from dagster_celery import celery_executor

            return celery_executor.configured(_celery_config(), name="celery")
        if name == "celery_k8s":
            from dagster_celery_k8s import celery_k8s_job_executor

            # image, namespace and env secrets come from the CeleryK8sRunLauncher (deploy/helm)
            return celery_k8s_job_executor.configured(_celery_config(), name="celery_k8s")
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor  # image, namespace and env secrets come from the K8sRunLauncher
    except ImportError as exc:
        raise ImportError(
            f"SF_EXECUTOR={name} needs the deploy extra: pip install -c constraints.txt '.[deploy]' ({exc})"
        ) from exc


def _celery_config() -> dict:
    # Read from the environment of the process that runs the executor (the run worker), at run time:
    # a broker password never lands in the run's stored config.
    return {
        "broker": {"env": "SF_CELERY_BROKER_URL"} if os.environ.get("SF_CELERY_BROKER_URL")
        else settings.VARIABLES["SF_CELERY_BROKER_URL"][0],
        "backend": {"env": "SF_CELERY_BACKEND_URL"} if os.environ.get("SF_CELERY_BACKEND_URL")
        else settings.VARIABLES["SF_CELERY_BACKEND_URL"][0],
        "config_source": dict(CELERY_CONFIG_SOURCE),
    }


def resources(cfg: settings.Settings) -> dict:
    aws = dict(  # S3, SQS and Glue share one connection
        region_name=_env("SF_AWS_REGION"),
        endpoint_url=_env("SF_AWS_ENDPOINT_URL"),
        aws_access_key_id=_env("SF_AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_env("SF_AWS_SECRET_ACCESS_KEY"),
    )
    return {
        "landing": LandingBucket(s3=S3Resource(**aws), bucket=_env("SF_LANDING_BUCKET")),
        "landing_events": LandingEvents(**aws, queue_url=_env("SF_LANDING_QUEUE_URL")),
        "glue": GlueCatalog(**aws, database=_env("SF_GLUE_DATABASE")),
        "mysql": MySQLResource(
            host=_env("SF_MYSQL_HOST"),
            port=_env_int("SF_MYSQL_PORT"),
            user=_env("SF_MYSQL_USER"),
            password=_env("SF_MYSQL_PASSWORD") or "",
            database=_env("SF_MYSQL_DATABASE"),
        ),
        "snowflake": _snowflake(cfg),
    }


def _snowflake(cfg: settings.Settings) -> SnowflakeDatabase:
    common = dict(
        account=_env("SF_SNOWFLAKE_ACCOUNT"),
        user=_env("SF_SNOWFLAKE_USER"),
        # Always an EnvVar: resolved at run time, so definitions load (and validate) without the secret.
        password=dg.EnvVar("SF_SNOWFLAKE_PASSWORD"),
        database=_env("SF_SNOWFLAKE_DATABASE"),
        schema=_env("SF_SNOWFLAKE_SCHEMA"),
        warehouse=_env("SF_SNOWFLAKE_WAREHOUSE"),
        role=_env("SF_SNOWFLAKE_ROLE"),
    )
    if cfg.env == "prod":
        return SnowflakeDatabase(**common)
    # The local stack's fakesnow server speaks Snowflake's HTTP protocol on a loopback port; the real
    # connector reaches it through these connection arguments (not secrets: loopback host and port).
    local_args = {
        "host": settings.get("SF_SNOWFLAKE_HOST") or "127.0.0.1",
        "protocol": settings.get("SF_SNOWFLAKE_PROTOCOL") or "http",
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        "network_timeout": 60,
    }
    if settings.get("SF_SNOWFLAKE_PORT"):
        local_args["port"] = int(settings.get("SF_SNOWFLAKE_PORT"))
    return SnowflakeDatabase(**common, additional_snowflake_connection_args=local_args)
