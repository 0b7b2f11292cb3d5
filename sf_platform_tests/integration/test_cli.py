"""The `sf-platform` command as a user runs it, in its own process, on the session's local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

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
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
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


# ---- materialize: progress, log file, summary, exit codes

REGION_WITH_A_RAGGED_ROW = REGION_CSV + b"2|ASIA|one field too many|x\n"


def _land(env: dict, key: str, body: bytes) -> None:
    put = subprocess.run([sys.executable, "-c", (
        "from sf_platform.runtime import open_resources\nfrom sf_platform.settings import Settings\n"
        "with open_resources(Settings.from_env()) as r:\n r.landing.ensure_bucket()\n"
        f" r.landing.put({key!r}, {body!r})\n")], env=env, capture_output=True, text=True)
    assert put.returncode == 0, put.stderr


def _log_of(stdout: str) -> Path:
    line = next(line for line in stdout.splitlines() if line.strip().startswith("log: "))
    return Path(line.split("log: ", 1)[1].strip())


def test_materialize_prints_a_line_per_hop_and_a_summary_and_logs_the_run_to_a_file(user_env, tmp_path):
    env = user_env
    _land(env, "REGION_202509011200.csv", REGION_WITH_A_RAGGED_ROW)

    done = _cli(env, "materialize", "--table", "region")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # not a terminal: one plain line per finished (table, hop), then the summary
    assert "] region organize done: 1 file" in lines[0]
    assert [line.split("] ")[1].split()[:3] for line in lines[:3]] == [
        ["region", "organize", "done:"], ["region", "crawl", "done:"], ["region", "curated", "done:"]]
    # typed once, by curation: the bad row is quarantined there, MySQL loads the hub's 2 rows
    assert "region curated done: 2 rows, 2 loaded, 1 quarantined" in done.stdout
    assert "region mysql done: 2 rows, 2 loaded" in done.stdout
    head = next(line for line in lines if line.startswith("load_tables: run "))
    assert " succeeded in " in head and "4 of 4 hops done" in head, done.stdout
    table = lines[lines.index(head) + 2:lines.index(head) + 4]
    assert table[0].split() == ["table", "organize", "crawl", "curated", "mysql"]
    assert table[1].split() == ["region", "1", "file", "3", "2", "+2", "1q", "2", "+2"]
    quarantine = f"s3://{env['SF_LANDING_BUCKET']}/_quarantine/curated/region/"
    assert f"  quarantined: region curated: 1 row in {quarantine}" in done.stdout
    assert f"check WARN: region curated rows_reconcile: 1 of 3 rows quarantined: {quarantine}" in done.stdout
    assert done.stderr == ""
    log = _log_of(done.stdout)
    assert log.parent == Path(env["SF_STATE_DIR"]) / "logs" and log.name == head.split()[2] + ".log"
    text = log.read_text(encoding="utf-8")
    assert "DEBUG   tables STEP_START" in text and "ASSET_MATERIALIZATION" in text
    assert "progress region mysql running" in text and '"rows_quarantined": 1' in text


def test_materialize_verbose_prints_the_log_and_a_failed_table_exits_non_zero_naming_it(user_env, tmp_path):
    env = user_env
    _land(env, "REGION_202509011200.csv", REGION_CSV)

    verbose = _cli(env, "materialize", "--table", "region", "-v")

    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "tables STEP_START: Started execution of step \"tables\"." in verbose.stdout
    assert "progress region crawl running" in verbose.stdout
    assert "region organize done" not in verbose.stdout  # the log instead of the progress lines
    assert _log_of(verbose.stdout).read_text(encoding="utf-8").count("\n") > 20

    # MySQL goes away after the stack check: the mysql hop fails, the others are done
    broken = {**env, "SF_MYSQL_PORT": str(stack.free_port()), "SF_STEP_RETRIES": "0"}
    failed = _cli(broken, "materialize", "--table", "region")

    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "region mysql failed: " in failed.stdout
    head = next(line for line in failed.stdout.splitlines() if line.startswith("load_tables: run "))
    assert " FAILED in " in head
    assert "  FAILED: region (mysql: " in failed.stdout
    assert failed.stderr.startswith("sf-platform materialize: 1 table failed: region (mysql) (reasons above")


def test_materialize_on_a_terminal_draws_a_live_table_of_every_table_and_hop(user_env, tmp_path):
    registry = tmp_path / "two.yaml"
    registry.write_text("tables:\n  region:\n    targets: [mysql]\n  nation:\n    targets: [mysql]\n", encoding="utf-8")
    env = {**user_env, "SF_TABLES_FILE": str(registry)}
    _land(env, "REGION_202509011200.csv", REGION_CSV)
    _land(env, "NATION_202509011200.csv", b"N_NATIONKEY|N_NAME|N_REGIONKEY\n0|ALGERIA|0\n1|ARGENTINA|1\n2|BRAZIL|1\n")

    code, screen = _on_a_terminal(env, "materialize")

    assert code == 0, screen
    frames = [f for f in screen.split("load_tables ") if ": done, " in f]
    assert frames, screen
    final = frames[-1]
    header = next(line for line in final.splitlines() if "organize" in line)
    assert [w for w in header.replace("┃", " ").split()] == ["table", "organize", "crawl", "curated", "mysql", "time"]
    rows = {line.replace("│", " ").split()[0]: line.replace("│", " ").split()[1:] for line in final.splitlines()
            if line.startswith("│")}
    assert rows["region"][:4] == ["1", "file", "2", "2"]
    assert rows["nation"][:4] == ["1", "file", "3", "3"]
    assert "  log: " in screen and "sf-platform materialize: failed" not in screen


def _on_a_terminal(env: dict, *args: str) -> tuple[int, str]:
    """Run the CLI under a pseudo-terminal of 120 columns; returns the exit code and the screen text
    (colours and cursor moves removed)."""
    import fcntl
    import pty
    import re
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "sf_platform.cli", *args], env={**env, "TERM": "xterm"},
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=600)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode("utf-8", "replace")).replace("\r", "")
