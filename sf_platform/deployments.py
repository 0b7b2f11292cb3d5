"""The one place resources are chosen per deployment (``SF_ENV``): ``local`` or ``prod``.

Both use the same resource classes; they differ in where the services are. Values come from the
environment through ``dg.EnvVar`` when set, so secrets are resolved at run time and never stored.
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
