"""Dagster's concurrency pools, for one hop of one table inside the table step.

Dagster applies an op's ``pool`` to a whole step; here a step carries many tables through several
hops, so each hop that writes a target claims a slot of that target's pool (``mysql``, ``snowflake``)
for the time of its own write, through the same instance machinery the executor uses
(``InstanceConcurrencyContext``). A pool with no limit set (``dagster instance concurrency set mysql 2``,
or ``concurrency.pools.default_limit`` in dagster.yaml) costs nothing. Claims show in the UI's pool
page under the step key ``tables[<hop>:<table>]``; a claim of a killed run is freed when the run ends
(``concurrency.pools.free_slots_after_run_end_seconds`` on a deployment with the daemon).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

POLL_SECONDS = 1.0


@contextmanager
def pool_slot(instance, dagster_run, pool: str, step_key: str, log: Callable[[str, str], None]) -> Iterator[None]:
    """Hold one slot of ``pool`` for ``step_key`` of the run while the block runs."""
    with InstanceConcurrencyContext(instance, dagster_run) as slots:
        waited = 0.0
        while not slots.claim(pool, step_key):
            if waited == 0.0:
                log("info", f"{step_key}: waiting for a slot of pool {pool!r}")
            time.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        try:
            yield
        finally:
            slots.free_step(step_key)
