"""The local DAGSTER_HOME: where runs, sensor cursors and check results of the local stack are kept.

Runs are queued one at a time on a laptop: the same table is never loaded by two runs at once (the
sensor and a manual "materialize all" can both ask for it), and two cores are busy enough with one.
"""

from __future__ import annotations

from pathlib import Path

DAGSTER_YAML = """\
# Written by sf-platform (sf_platform/local/dagster_home.py); local stack only.
run_queue:
  max_concurrent_runs: 1
telemetry:
  enabled: false
"""


def prepare(home: Path) -> Path:
    """Create ``home`` with its dagster.yaml (kept if the user already wrote one)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    return home
