"""Deployment settings read from ``SF_*`` environment variables (and a ``.env`` written by the stack).

Only names and switches live here: what the definitions need at load time to build asset keys (which
databases and schemas exist). Secrets are never read here; resources get them through ``dg.EnvVar``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

REPO_ROOT = Path(__file__).resolve().parent.parent

# name -> (default, description); the README's configuration table mirrors this.
VARIABLES: dict[str, tuple[str, str]] = {
    "SF_ENV": ("local", "local (embedded stack) or prod: selects the resource set"),
    "SF_TABLES_FILE": ("tables.yaml", "path of the table registry (relative to the repo root or absolute)"),
    "SF_STATE_DIR": (".sf_local", "local stack state: service data, logs, DAGSTER_HOME"),
    "SF_ENV_FILE": (".env", "where `sf-platform stack up` writes the local settings"),
    "SF_AWS_REGION": ("us-east-1", "AWS region of the bucket and the Glue catalog"),
    "SF_AWS_ENDPOINT_URL": ("", "custom S3/Glue endpoint (the local moto server); empty = real AWS"),
    "SF_AWS_ACCESS_KEY_ID": ("", "AWS key id; empty = the default AWS credential chain"),
    "SF_AWS_SECRET_ACCESS_KEY": ("", "AWS secret key (secret); empty = the default AWS credential chain"),
    "SF_LANDING_BUCKET": ("sf-landing", "bucket files land in; tables live under <table>/"),
    "SF_GLUE_DATABASE": ("sf_raw", "Glue database of the crawled tables"),
    "SF_GLUE_CURATED_DATABASE": (
        "",
        "Glue database of the curated Iceberg tables (the hub); empty = <SF_GLUE_DATABASE>_curated",
    ),
    "SF_HUB_TARGET_FILE_MB": ("128", "size of the hub's Parquet data files; more small files than ceil(bytes/size)+2 are compacted"),
    "SF_HUB_SNAPSHOT_RETENTION_HOURS": ("168", "how long the hub keeps old Iceberg snapshots (time travel, targets behind)"),
    "SF_HUB_ORPHAN_AGE_HOURS": ("72", "files no kept snapshot uses are deleted once older than this"),
    "SF_REDSHIFT_IAM_ROLE": ("", "IAM role ARN Redshift assumes in `sf-platform spectrum-ddl` statements"),
    "SF_TABLE_THREADS": ("3", "tables a run works on at once (each table's hops run in order)"),
    "SF_MAX_FIELD_BYTES": ("67108864", "longest row (so field) any hop reads, in bytes; a longer row makes its file unreadable"),
    "SF_EXECUTOR": (
        "in_process",
        "executor of the jobs: in_process (a run is one step, in the run's process), multiprocess, "
        "celery (the step goes to a Celery worker), celery_k8s or k8s (the step runs in its own Kubernetes Job)",
    ),
    "SF_CELERY_BROKER_URL": (
        "pyamqp://guest@localhost:5672//",
        "Celery broker of the celery executors (secret when it holds a password)",
    ),
    "SF_CELERY_BACKEND_URL": ("rpc://", "Celery result backend of the celery executors"),
    "SF_STEP_RETRIES": ("3", "times a table step that failed only with transient errors is retried"),
    "SF_STEP_RETRY_SECONDS": ("30", "first wait before such a retry (doubled on each further retry)"),
    "SF_SENSOR_INTERVAL_SECONDS": ("30", "how often the landing_files sensor lists the bucket"),
    "SF_SENSOR_LAG_SECONDS": (
        "300",
        "how far behind the newest LastModified the sensor still looks for objects it has not seen "
        "(S3 stamps an object with its upload's start: raise it above your longest upload)",
    ),
    "SF_SENSOR_LIST_BUDGET": (
        "20000",
        "most keys the landing_files sensor lists per tick; a bigger bucket is swept over several ticks",
    ),
    "SF_LANDING_QUEUE_URL": (
        "",
        "SQS queue receiving the landing bucket's S3 ObjectCreated notifications; empty = listing only",
    ),
    "SF_MYSQL_HOST": ("127.0.0.1", "MySQL/RDS host"),
    "SF_MYSQL_PORT": ("3306", "MySQL/RDS port"),
    "SF_MYSQL_USER": ("root", "MySQL user"),
    "SF_MYSQL_PASSWORD": ("", "MySQL password (secret)"),
    "SF_MYSQL_DATABASE": ("sf_mirror", "MySQL database the mirrors are written to"),
    "SF_SNOWFLAKE_ACCOUNT": ("fakesnow", "Snowflake account identifier"),
    "SF_SNOWFLAKE_USER": ("fake", "Snowflake user"),
    "SF_SNOWFLAKE_PASSWORD": ("", "Snowflake password (secret)"),
    "SF_SNOWFLAKE_DATABASE": ("SF_DEMO", "Snowflake database tables are loaded into"),
    "SF_SNOWFLAKE_SCHEMA": ("RAW", "Snowflake schema tables are loaded into"),
    "SF_SNOWFLAKE_WAREHOUSE": ("", "Snowflake warehouse (empty = the user's default)"),
    "SF_SNOWFLAKE_ROLE": ("", "Snowflake role (empty = the user's default)"),
    "SF_SNOWFLAKE_HOST": ("", "local only: host of the fakesnow server"),
    "SF_SNOWFLAKE_PORT": ("", "local only: port of the fakesnow server"),
    "SF_SNOWFLAKE_PROTOCOL": ("", "local only: http for the fakesnow server"),
}


PATH_VARIABLES = ("SF_TABLES_FILE", "SF_STATE_DIR", "SF_ENV_FILE")


def absolute_paths_from(folder: Path) -> None:
    """Make the path settings a user gave relative (``SF_TABLES_FILE=my.yaml sf-platform ...``) absolute
    against ``folder`` (the command's working directory), so they mean what the user meant and the run
    processes, which start elsewhere, inherit the same files. Unset ones keep their defaults, which are
    relative to the repository."""
    for name in PATH_VARIABLES:
        value = os.environ.get(name)
        if value and not Path(value).is_absolute():
            os.environ[name] = str((folder / value).resolve())


def env_file() -> Path:
    return _repo_path(os.environ.get("SF_ENV_FILE") or VARIABLES["SF_ENV_FILE"][0])


def load_env_file() -> None:
    """Read the ``.env`` written by ``sf-platform stack up``; real environment variables win."""
    env_file_path = env_file()
    if env_file_path.exists():
        load_dotenv(env_file_path, override=False)


def get(name: str) -> str:
    return os.environ.get(name) or VARIABLES[name][0]


@dataclass(frozen=True)
class Settings:
    env: str
    tables_file: Path
    state_dir: Path
    landing_bucket: str
    glue_database: str
    mysql_database: str
    snowflake_database: str
    snowflake_schema: str

    @classmethod
    def from_env(cls) -> Settings:
        load_env_file()
        env = get("SF_ENV")
        if env not in ("local", "prod"):
            raise ValueError(f"SF_ENV must be 'local' or 'prod', not {env!r}")
        return cls(
            env=env,
            tables_file=_repo_path(get("SF_TABLES_FILE")),
            state_dir=_repo_path(get("SF_STATE_DIR")),
            landing_bucket=get("SF_LANDING_BUCKET"),
            glue_database=get("SF_GLUE_DATABASE"),
            mysql_database=get("SF_MYSQL_DATABASE"),
            snowflake_database=get("SF_SNOWFLAKE_DATABASE"),
            snowflake_schema=get("SF_SNOWFLAKE_SCHEMA"),
        )


def _repo_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path
