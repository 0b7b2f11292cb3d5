"""`sf-platform demo` end to end on the local stack: every hop holds every demo row."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sf_platform.core import demo_data
from sf_platform.core.ddl import snowflake_table_ref
from sf_platform.core.registry import load_registry
from sf_platform.runtime import open_resources
from sf_platform.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_demo_loads_every_table_into_every_hop(stack_env):
    result = subprocess.run(
        [sys.executable, "-m", "sf_platform.cli", "demo"],
        cwd=Path(stack_env["SF_STATE_DIR"]),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "make ui" in result.stdout

    expected_rows = Counter()
    expected_files = Counter()
    for f in demo_data.generate():
        expected_rows[f.table] += f.rows
        expected_files[f.table] += 1

    cfg = Settings.from_env()
    registry = load_registry(cfg.tables_file)
    with open_resources(cfg) as r:
        assert [o["Key"] for o in r.landing.list_root()] == [], "every loose file was organized"
        for table in registry.tables:
            files = r.landing.list_objects(f"{table}/")
            assert len(files) == expected_files[table], table
            entry = r.glue.get_table(table)
            assert int(entry["Parameters"]["recordCount"]) == expected_rows[table], table
            mysql_rows = r.mysql.fetch_all(f"SELECT COUNT(*) FROM `{cfg.mysql_database}`.`{table}`")[0][0]
            assert mysql_rows == expected_rows[table], table
            with r.snowflake.get_connection() as conn:
                cur = conn.cursor()
                cur.execute(f"SELECT COUNT(*) FROM {snowflake_table_ref(cfg.snowflake_database, cfg.snowflake_schema, table)}")
                assert cur.fetchone()[0] == expected_rows[table], table
        # The summary printed by the demo shows the same numbers.
        for table in registry.tables:
            line = next(line for line in result.stdout.splitlines() if line.startswith(table + " "))
            assert line.split()[1:] == [
                str(expected_files[table]),
                str(expected_rows[table]),
                str(expected_rows[table]),
                str(expected_rows[table]),
            ]
