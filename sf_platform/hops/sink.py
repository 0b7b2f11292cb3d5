"""One loader skeleton for every target of the Iceberg hub (MySQL, Snowflake): ``Sink`` + ``apply_changes``.

A target is at some snapshot of its table's hub (Iceberg) table, recorded in the target's own ledger.
Loading it is always the same sequence, written once here:

1. under the target's per-table exclusion (``Sink.exclusive``: two runs of one table never interleave
   their read-ledger / plan / load / record steps),
2. read the loaded snapshot id from the target's ledger,
3. ask the hub for the changes since then (``changes_since``),
4. make the target's columns match the table's (``ensure_schema``; DDL, outside the transaction: MySQL
   and Snowflake both commit implicitly around DDL) -- or rebuild when they cannot be evolved in place,
5. nothing changed: stop (no transaction, no statement beyond the ledger read and the schema check),
6. else, in ONE transaction: delete the rows of ``removed_keys``, insert the rows of ``batches()``,
   record the new snapshot id in the ledger. A killed run leaves the target at its previous snapshot,
   rows and ledger together;
7. ``full`` (first load, the loaded snapshot expired or not an ancestor, a forced refresh, or a schema
   change the target cannot make in place): ``rebuild`` loads a staging table and swaps it in.

Why the order is safe when a run dies between a rebuild's swap and its ledger write (a swap is DDL, so
a target may not be able to commit it with the ledger row): the next run applies the changes since the
older snapshot again, and "delete every key of the changed files, then insert their rows" is
idempotent -- each key's rows are replaced as a whole by that key's rows at the new snapshot.

Implementing a sink: the methods below, nothing more. ``apply_changes`` owns the order; a sink owns
its SQL. Keep this protocol stable: the MySQL and Snowflake sinks both implement it.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the hub imports pyiceberg (1.5-3 s, ~110 MB): never at definitions time
    import pyarrow as pa

    from sf_platform.hub.changes import HubChanges


class ChangeSource(Protocol):
    """What ``apply_changes`` asks the hub (``sf_platform.hub.changes.Hub`` is one)."""

    def changes_since(self, table: str, loaded_snapshot_id: int | None) -> HubChanges: ...


class Sink(Protocol):
    """One target table (a MySQL table, a Snowflake table) that mirrors one hub table.

    Every method runs inside ``exclusive()``; ``remove_keys``, ``load`` and ``record_snapshot`` run
    inside ``transaction()`` and must not commit on their own.
    """

    name: str  # the target table for messages and metadata, e.g. "sf_platform.orders"

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the table's exclusion (across processes) for the block; a killed run releases it."""

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction for the block: commit when it ends, roll back when it raises."""

    def loaded_snapshot(self) -> int | None:
        """The snapshot id the target's ledger records for the table; None: never loaded (or no table)."""

    def ensure_schema(self, schema: pa.Schema) -> bool:
        """Make the target table exist with the table's columns (create, add, widen), ``schema`` being
        the hub's rows schema. Return True when the table must be rebuilt instead (an incompatible change
        the policy says to rebuild for, or a target that predates the current layout); raise, naming the
        column, when the change is incompatible and the policy says fail. Appends the changes it made to
        ``schema_changes``."""

    def remove_keys(self, keys: Collection[str]) -> int:
        """Delete the rows whose ``_sf_source_key`` is one of ``keys``; the number of rows deleted."""

    def load(self, changes: HubChanges) -> int:
        """Insert the rows of ``changes.batches()``; the number of rows inserted (= ``changes.rows``, or raise)."""

    def record_snapshot(self, snapshot_id: int | None) -> None:
        """Write ``snapshot_id`` to the target's ledger as the table's loaded snapshot."""

    def rebuild(self, changes: HubChanges) -> int:
        """Build a new table from ``changes`` (``full``) beside the live one, swap it in, record
        ``changes.snapshot_id``; the number of rows inserted. On failure the live table is untouched and
        no staging table is left behind."""

    def count_rows(self) -> int:
        """Rows in the target table now (0 when it does not exist)."""

    @property
    def schema_changes(self) -> list[str]:
        """What ``ensure_schema``/``rebuild`` changed in the target this run, one line each."""


@dataclass
class ApplyReport:
    """What one ``apply_changes`` did to one target."""

    table: str  # the registry table
    target: str  # ``Sink.name``
    previous_snapshot_id: int | None = None  # what the ledger said before
    snapshot_id: int | None = None  # what the target is at now
    full: bool = False  # rebuilt from scratch
    rows_inserted: int = 0
    rows_deleted: int = 0
    rows: int = 0  # rows in the target afterwards
    seconds: float = 0.0
    schema_changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.full or self.snapshot_id != self.previous_snapshot_id


def apply_changes(hub: ChangeSource, table: str, sink: Sink, *, full_refresh: bool = False) -> ApplyReport:
    """Bring ``sink`` to the hub table's current snapshot, loading only the changes since the snapshot
    it holds (see the module docstring for the sequence); ``full_refresh`` rebuilds it regardless."""
    started = time.monotonic()
    report = ApplyReport(table=table, target=sink.name)
    with sink.exclusive():
        report.previous_snapshot_id = sink.loaded_snapshot()
        changes = hub.changes_since(table, None if full_refresh else report.previous_snapshot_id)
        rebuild = changes.full or sink.ensure_schema(changes.schema)
        if rebuild and not changes.full:  # the target cannot follow in place: load everything
            changes = hub.changes_since(table, None)
        if rebuild:
            report.full = True
            report.rows_deleted = sink.count_rows()
            report.rows_inserted = sink.rebuild(changes)
        elif _nothing_to_do(changes, report.previous_snapshot_id):
            pass
        else:
            with sink.transaction():
                report.rows_deleted = sink.remove_keys(changes.removed_keys) if changes.removed_keys else 0
                report.rows_inserted = sink.load(changes) if changes.rows else 0
                sink.record_snapshot(changes.snapshot_id)
        report.snapshot_id = changes.snapshot_id
        report.rows = sink.count_rows()
        report.schema_changes = list(sink.schema_changes)
    report.seconds = time.monotonic() - started
    return report


def _nothing_to_do(changes: HubChanges, loaded: int | None) -> bool:
    return changes.snapshot_id == loaded and not changes.removed_keys and not changes.rows
