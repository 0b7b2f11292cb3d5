"""The `sf-platform` command as a user runs it, in its own process, on the session's local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from sf_platform.local import stack

pytestmark = pytest.mark.integration

REGION_CSV = b"R_REGIONKEY|R_NAME|R_COMMENT\n0|AFRICA|lar deposits\n1|AMERICA|hs use ironic\n"


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sf_platform.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture()
def user_env(stack_env, tmp_path):
    """A user's shell: the session's stack, a registry of one table, its own names and DAGSTER_HOME."""
    run = uuid.uuid4().hex[:8]
    registry = tmp_path / "tables.yaml"
    registry.write_text("tables:\n  region:\n    targets: [mysql]\n", encoding="utf-8")
    env = {**os.environ, "SF_TABLES_FILE": str(registry), "SF_LANDING_BUCKET": f"sf-cli-{run}",
           "SF_GLUE_DATABASE": f"sf_cli_{run}", "SF_MYSQL_DATABASE": f"sf_cli_{run}",
           "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    yield env
    for database in (env["SF_MYSQL_DATABASE"], f"{env['SF_MYSQL_DATABASE']}_from_env_file"):
        subprocess.run([sys.executable, "-c", (
            "import os, pymysql; c = pymysql.connect(host=os.environ['SF_MYSQL_HOST'], "
            "port=int(os.environ['SF_MYSQL_PORT']), user=os.environ['SF_MYSQL_USER'], "
            f"password=os.environ['SF_MYSQL_PASSWORD'], autocommit=True); c.cursor().execute('DROP DATABASE IF EXISTS `{database}`')"
        )], env=env, check=False)


def test_a_real_variable_wins_over_the_env_file_for_where_data_goes(user_env, tmp_path):
    env_file = tmp_path / "stack.env"
    stack.write_env_file(env_file, {"SF_MYSQL_DATABASE": f"{user_env['SF_MYSQL_DATABASE']}_from_env_file"})
    env = {**user_env, "SF_ENV_FILE": str(env_file)}
    put = subprocess.run([sys.executable, "-c", (
        "from sf_platform.runtime import open_resources\nfrom sf_platform.settings import Settings\n"
        "with open_resources(Settings.from_env()) as r:\n r.landing.ensure_bucket()\n"
        f" r.landing.put('REGION_202509011200.csv', {REGION_CSV!r})\n")], env=env, capture_output=True, text=True)
    assert put.returncode == 0, put.stderr

    done = _cli(env, "materialize", "--table", "region")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "load_tables: run" in done.stdout and "succeeded" in done.stdout
    summary = _cli(env, "summary")
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines()[1].split() == ["region", "1", "2", "2", "n/a"]
    probe = subprocess.run([sys.executable, "-c", (
        "import os, pymysql; c = pymysql.connect(host=os.environ['SF_MYSQL_HOST'], port=int(os.environ['SF_MYSQL_PORT']), "
        "user=os.environ['SF_MYSQL_USER'], password=os.environ['SF_MYSQL_PASSWORD']); cur = c.cursor(); "
        "cur.execute('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA'); print(sorted(r[0] for r in cur.fetchall()))")],
        env=env, capture_output=True, text=True)
    assert user_env["SF_MYSQL_DATABASE"] in probe.stdout
    assert f"{user_env['SF_MYSQL_DATABASE']}_from_env_file" not in probe.stdout


def test_mistakes_get_one_line_with_the_next_step(user_env):
    typo = _cli(user_env, "materialize", "--table", "regoin")
    assert typo.returncode == 2
    assert typo.stderr.strip() == "sf-platform materialize: unknown table 'regoin'; did you mean region?"

    unreachable = _cli({**user_env, "SF_MYSQL_PORT": str(stack.free_port())}, "summary")
    assert unreachable.returncode == 3
    assert "MySQL at 127.0.0.1:" in unreachable.stderr and "did not answer" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1

    version = _cli(user_env, "--version")
    assert version.returncode == 0 and version.stdout.startswith("sf-platform ")


def test_stack_up_records_the_registry_for_the_next_shell(user_env, tmp_path):
    from dotenv import dotenv_values

    env_file = tmp_path / "recorded.env"
    done = _cli({**user_env, "SF_ENV_FILE": str(env_file)}, "stack", "up")

    assert done.returncode == 0, done.stderr
    recorded = dotenv_values(env_file)
    assert recorded["SF_TABLES_FILE"] == user_env["SF_TABLES_FILE"]
    assert recorded["SF_MYSQL_PORT"] == os.environ["SF_MYSQL_PORT"]


def test_a_relative_registry_path_means_the_current_directory(user_env, tmp_path):
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "mine.yaml").write_text("tables:\n  mine_only:\n    targets: [mysql]\n", encoding="utf-8")

    done = subprocess.run([sys.executable, "-m", "sf_platform.cli", "materialize", "--table", "region"],
                          env={**user_env, "SF_TABLES_FILE": "mine.yaml"}, cwd=here, capture_output=True,
                          text=True, timeout=300)

    assert done.returncode == 2
    assert "unknown table 'region'" in done.stderr and "mine_only" in done.stderr
