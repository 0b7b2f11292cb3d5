"""The local DAGSTER_HOME: where runs, sensor cursors and check results of the local stack are kept.

Runs are queued one at a time on a laptop: the same table is never loaded by two runs at once (the
sensor and a manual "materialize all" can both ask for it), and two cores are busy enough with one.
One at a time means a run that died without saying so (SIGKILL, `dagster dev` killed, a reboot) would
hold the queue for ever; the daemon's run monitoring, with the launcher of ``local/run_launcher.py``,
marks such a run failed within ``poll_interval_seconds`` of its worker's death so the queue moves on.

A dagster.yaml this module wrote (its first line says so) is rewritten with the current settings; one
the user wrote is kept as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = "# Written by sf-platform (sf_platform/local/dagster_home.py); local stack only."
DAGSTER_YAML = f"""\
{MARKER}
# Rewritten by sf-platform when it changes; delete the line above to keep edits of your own.
run_queue:
  max_concurrent_runs: 1
run_launcher:
  module: sf_platform.local.run_launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 5
  start_timeout_seconds: 180
  cancel_timeout_seconds: 120
  max_resume_run_attempts: 0
  free_slots_after_run_end_seconds: 30
telemetry:
  enabled: false
"""


def prepare(home: Path) -> Path:
    """Create ``home`` with its dagster.yaml (kept if the user wrote one of their own)."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = config.read_text(encoding="utf-8") if config.exists() else None
    if current is None or (current.startswith(MARKER) and current != DAGSTER_YAML):
        # Whole or not at all: a webserver or daemon starting at the same moment may be reading it.
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        partial.write_text(DAGSTER_YAML, encoding="utf-8")
        os.replace(partial, config)
    return home
