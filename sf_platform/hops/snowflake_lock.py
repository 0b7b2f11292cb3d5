"""One load of a Snowflake table at a time: the per-table lock over ``_SF_LOCKS`` (statements and the
bakery rule in ``core.snowflake_sql``).

Two runs loading one table must not both read the snapshot ledger, both load the same changes and
record them twice. A run inserts its claim, takes a ticket, and waits while a live claim with a lower
ticket (or one still choosing) exists; a claim without a heartbeat for ``LEASE_SECONDS`` belongs to a
dead run and is ignored. The holder renews its heartbeat inside every load transaction
(``TableLock.heartbeat``: that transaction commits only if the claim is still fresh), so a run that
lost its claim can never commit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from sf_platform.core import snowflake_sql as sql

LEASE_SECONDS = 900
MARGIN_SECONDS = 60  # a load transaction commits only with a heartbeat at most LEASE - MARGIN old
WAIT_SECONDS = 3600  # longest wait for other runs' loads of the table
POLL_SECONDS = (0.02, 1.0)  # first and longest pause between looks at the claims


class LockError(RuntimeError):
    """The table's lock could not be held; the message names the table and why."""


class TableLock:
    """The lock of ``table`` for the claim ``owner`` (unique per load call) of run ``run_id``."""

    def __init__(self, cur, locks_ref: str, table: str, owner: str, run_id: str, name: str):
        self.cur, self.locks_ref, self.table, self.owner, self.run_id, self.name = cur, locks_ref, table, owner, run_id, name
        self.waited_seconds = 0.0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Claim, wait for the runs ahead, hold for the block, release (also when the block raises)."""
        started = time.monotonic()
        self.cur.execute(*sql.lock_claim(self.locks_ref, self.table, self.owner, self.run_id))
        try:
            self.cur.execute(*sql.lock_max_ticket(self.locks_ref, self.table))
            ticket = int(self.cur.fetchone()[0] or 0) + 1
            self.cur.execute(*sql.lock_take_ticket(self.locks_ref, self.owner, ticket))
            self._wait_for_turn()
            self.waited_seconds = time.monotonic() - started
            self.cur.execute(*sql.lock_clear_stale(self.locks_ref, self.table, LEASE_SECONDS * 1000))
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the load's own error is the one to report
                self.cur.execute(*sql.lock_release(self.locks_ref, self.owner))
            raise
        self.cur.execute(*sql.lock_release(self.locks_ref, self.owner))

    def heartbeat(self) -> None:
        """Renew the claim; inside a load transaction, the check that lets it commit."""
        fresh_ms = (LEASE_SECONDS - MARGIN_SECONDS) * 1000
        self.cur.execute(*sql.lock_heartbeat(self.locks_ref, self.owner, fresh_ms))
        if int((self.cur.fetchone() or [0])[0] or 0) != 1:
            raise LockError(
                f"{self.name}: this run's lock on the table lapsed (no heartbeat for "
                f"{LEASE_SECONDS - MARGIN_SECONDS} s), so another run may be loading it; nothing of the "
                "current step was committed"
            )

    def _wait_for_turn(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        pause, longest = POLL_SECONDS
        while True:
            self.cur.execute(*sql.lock_claims(self.locks_ref, self.table))
            rows = self.cur.fetchall()
            now_ms = int(rows[0][5]) if rows else 0
            claims = [sql.LockClaim(o, r, None if t is None else int(t), bool(c), int(h)) for o, r, t, c, h, _ in rows]
            try:
                blockers = sql.lock_blockers(claims, self.owner, now_ms, LEASE_SECONDS * 1000)
            except LookupError:
                raise LockError(f"{self.name}: this run's lock claim disappeared") from None
            if not blockers:
                return
            if time.monotonic() > deadline:
                runs = sorted({b.run_id for b in blockers})
                raise LockError(
                    f"{self.name}: waited {WAIT_SECONDS} s for other loads of this table to finish (runs "
                    f"{runs}); a run that died frees the table {LEASE_SECONDS} s after its last heartbeat "
                    f"(rows of {sql.LOCKS_TABLE})"
                )
            time.sleep(pause)
            pause = min(pause * 2, longest)
            self.heartbeat()
