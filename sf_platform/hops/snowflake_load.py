"""Snowflake load hop: a hub (Iceberg) table becomes a Snowflake table by COPY of the hub's Parquet data
files, only the changes since the snapshot the Snowflake table holds.

The sequence (ledger, changes, schema, one transaction, rebuild) is ``hops.sink.apply_changes``; this
module is the Snowflake ``Sink``:

- rows arrive only through ``COPY INTO ... MATCH_BY_COLUMN_NAME`` of the hub's new data files
  (``changes.data_files``), never row INSERTs; the stage mode (``snowflake.stage``) decides how COPY
  reaches them (``snowflake_stage``: in place on the landing bucket, or downloaded and PUT);
- the rows of ``removed_keys`` are deleted, the files copied and the snapshot id recorded in the ledger
  (``_SF_HUB_LEDGER``, one row per table) in ONE transaction, which commits only while this run still
  holds the table's lock (``snowflake_lock``);
- the whole plan-load-record sequence holds the table's lock; staging tables are named per call
  (``<table>__SF_<purpose>_<nonce>``), and the stage files a call PUTs live under
  ``<table>/<run_id>/<nonce>/`` and only those are removed by it.

Write modes (``snowflake.write_mode``):

- ``append``: the hub's changes as they are (delete the changed objects' rows, copy their new rows).
- ``replace``: whenever the hub moved on (or the columns differ), the whole table is copied into a
  staging table that is swapped in (``ALTER TABLE ... SWAP WITH``).
- ``merge``: the changed rows are copied into a transient staging table and upserted on ``merge_keys``
  with one ``MERGE``. For one key the row of the latest object key wins (then the latest row in it),
  within a load and across loads, so rows the hub merely rewrote into a new file never overwrite a
  later object's values. Rows of removed objects stay (merged rows are state, not a copy of files);
  rows with an empty merge key are counted and not merged. The MERGE and the ledger row need no shared
  transaction: merging the same rows again leaves the same table (fakesnow cannot MERGE inside one).

A full load (first load, the loaded snapshot expired, a forced refresh) builds a new table beside the
live one and swaps it in; then the ledger row is written (see ``sink`` for why a crash in between is
safe). Columns follow the hub's schema: new columns are added, NUMBER precision is widened in place,
other type changes fail naming the column (``replace`` rebuilds; a hub rebuild reaches targets as a
full load).

fakesnow gaps, each detected on its specific error and reported, never hidden: it cannot parse
``SWAP WITH`` (two ``RENAME``s in one transaction instead; ``swap_method``) nor ``REMOVE @stage``
(``notes``).
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sf_platform.core import ddl
from sf_platform.core import snowflake_sql as sql
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.core.registry import TableConfig
from sf_platform.hops.sink import apply_changes
from sf_platform.hops.snowflake_lock import TableLock
from sf_platform.hops.snowflake_stage import Stage
from sf_platform.hub.conventions import BOOKKEEPING
from sf_platform.resources.aws import LandingBucket

if TYPE_CHECKING:
    import pyarrow as pa

    from sf_platform.hub.changes import Hub, HubChanges

STAGE_NAME = "SF_PLATFORM_STAGE"
SWAP_FALLBACK = "RENAME x2 in one transaction (fakesnow cannot parse ALTER TABLE ... SWAP WITH)"


class SnowflakeLoadError(RuntimeError):
    """The load cannot proceed; the message names the table and the reason."""


@dataclass
class SnowflakeReport:
    table: str
    database: str
    schema: str
    write_mode: str = "append"
    stage_mode: str = "internal"
    previous_snapshot_id: int | None = None
    snapshot_id: int | None = None
    full: bool = False  # rebuilt from the hub's current snapshot and swapped in
    up_to_date: bool = False  # nothing to do, answered without the table's lock
    rows_in_table: int = 0
    rows_copied: int = 0  # rows COPY loaded (merge: into the staging table)
    rows_inserted: int = 0  # append/replace: = rows_copied; merge: new keys
    rows_updated: int = 0  # merge
    rows_deleted: int = 0
    duplicate_key_rows: int = 0  # merge: rows that lost to a later row with the same key in one load
    null_key_rows: int = 0  # merge: rows with an empty merge key, not merged
    files_copied: int = 0
    lock_wait_seconds: float = 0.0
    seconds: float = 0.0
    swap_method: str = ""
    schema_changes: list[str] = field(default_factory=list)
    columns: list[ddl.ColumnSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # fallbacks taken, and why

    @property
    def qualified_name(self) -> str:
        return ".".join(snowflake_name(p) for p in (self.database, self.schema, self.table))


def load_table(
    hub: Hub,
    bucket: LandingBucket,
    connection,
    database: str,
    schema: str,
    table: str,
    config: TableConfig,
    *,
    run_id: str = "",
    full_refresh: bool = False,
) -> SnowflakeReport:
    """Bring ``table``'s Snowflake copy to the hub table's current snapshot (``connection``: DB-API)."""
    started = time.monotonic()
    sink = SnowflakeSink(hub, bucket, connection.cursor(), database, schema, table, config, run_id or uuid.uuid4().hex)
    report = sink.report
    sink.prepare_schema()
    if not full_refresh and sink.up_to_date():  # most runs of most tables: no lock statements
        report.up_to_date = True
    else:
        applied = apply_changes(hub, table, sink, full_refresh=full_refresh)
        report.previous_snapshot_id, report.snapshot_id = applied.previous_snapshot_id, applied.snapshot_id
        report.full, report.rows_deleted = applied.full, applied.rows_deleted
        report.schema_changes = applied.schema_changes
    report.rows_in_table = sink.count_rows()
    report.files_copied = sink.stage.files_copied
    report.notes += [n for n in sink.stage.notes if n not in report.notes]
    report.seconds = time.monotonic() - started
    return report


class SnowflakeSink:
    """``hops.sink.Sink`` for one Snowflake table (one load call: its names and counts are this call's)."""

    def __init__(self, hub: Hub, bucket: LandingBucket, cur, database: str, schema: str, table: str,
                 config: TableConfig, run_id: str):
        self.hub, self.cur, self.table, self.config, self.run_id = hub, cur, table, config, run_id
        self.database, self.schema = database, schema
        self.target_cfg = config.snowflake
        self.nonce = uuid.uuid4().hex[:12]  # this call's: staging names, lock owner, stage directory
        self.report = SnowflakeReport(table=table, database=database, schema=schema,
                                      write_mode=self.target_cfg.write_mode, stage_mode=self.target_cfg.stage)
        self.name = self.report.qualified_name
        self.columns: list[ddl.ColumnSpec] = []
        self.lock = TableLock(cur, self.ref(sql.LOCKS_TABLE), table, f"{run_id}/{self.nonce}", run_id, self.name)
        self.stage = Stage(cur, bucket, self._stage_ref(), self.target_cfg.stage == "external",
                           f"{table}/{run_id}/{self.nonce}/", self.name, self.lock.heartbeat)
        self._merge = self.target_cfg.write_mode == "merge"
        self._loaded: int | None = None

    # ---- names

    def ref(self, table: str) -> str:
        return ddl.snowflake_table_ref(self.database, self.schema, table)

    @property
    def target(self) -> str:
        return self.ref(self.table)

    @property
    def ledger(self) -> str:
        return self.ref(sql.HUB_LEDGER_TABLE)

    def staging_name(self, purpose: str) -> str:
        return f"{self.table}__sf_{purpose}_{self.nonce}"

    def _stage_ref(self) -> str:
        if self.target_cfg.stage == "external":
            parts = self.target_cfg.external_stage.split(".")
            return sql.qualified(".".join([self.database, self.schema][: 3 - len(parts)] + parts))
        return self.ref(STAGE_NAME)

    # ---- outside the lock

    def prepare_schema(self) -> None:
        """The objects every load of the schema shares (idempotent: overlapping runs may both do it)."""
        db, schema = (quote_snowflake(snowflake_name(p)) for p in (self.database, self.schema))
        self.cur.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{schema}")
        self.cur.execute(sql.hub_ledger_table(self.ledger))
        self.cur.execute(sql.locks_table(self.ref(sql.LOCKS_TABLE)))
        if self.target_cfg.stage == "internal":
            self.cur.execute(f"CREATE STAGE IF NOT EXISTS {self.stage.stage_ref}")
        elif self.target_cfg.storage_integration:
            self.cur.execute(*sql.create_external_stage(
                self.stage.stage_ref, self.stage.bucket.uri(), self.target_cfg.storage_integration))

    def up_to_date(self) -> bool:
        """The ledger's snapshot is the hub's current one and the table has the hub's columns at their
        types: a load would change nothing. Read without the lock, from committed state only (a load's
        rows and ledger row commit together), so a True is never wrong; a False takes the locked path."""
        loaded = self.loaded_snapshot()
        if loaded is None:
            return False
        changes = self.hub.changes_since(self.table, loaded)
        if changes.snapshot_id != loaded or changes.removed_keys or changes.rows:
            return False
        self._use_columns(changes.schema)
        self.report.previous_snapshot_id = self.report.snapshot_id = loaded
        existing = self._existing_columns(self.table)
        if not existing:
            return False
        if self._rebuilds_on_change:
            return not sql.column_diff(existing, self.columns)
        try:
            return not sql.evolution(existing, self.columns)
        except ValueError:  # the locked path reports it
            return False

    # ---- the Sink protocol

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        try:
            with self.lock.held():
                self._drop_leftover_staging()
                yield
        finally:
            self.report.lock_wait_seconds = self.lock.waited_seconds
            self.stage.clean()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        # merge: the MERGE runs on its own (see the module docstring), the ledger row in its own transaction
        return contextlib.nullcontext() if self._merge else self._own_transaction()

    @contextlib.contextmanager
    def _own_transaction(self) -> Iterator[None]:
        self.cur.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.cur.execute("ROLLBACK")
            raise
        self.cur.execute("COMMIT")

    def loaded_snapshot(self) -> int | None:
        self.cur.execute(*sql.hub_ledger_read(self.ledger, self.table))
        row = self.cur.fetchone()
        self._loaded = None if row is None or row[0] is None else int(row[0])
        return self._loaded

    def ensure_schema(self, schema: pa.Schema) -> bool:
        self._use_columns(schema)
        existing = self._existing_columns(self.table)
        if not existing:
            return True  # the ledger says loaded, the table is gone: build it again
        if self._rebuilds_on_change:
            return bool(sql.column_diff(existing, self.columns)) or self._loaded != self.hub.current_snapshot_id(self.table)
        try:
            steps = sql.evolution(existing, self.columns)
        except ValueError as exc:
            raise SnowflakeLoadError(
                f"{self.name}: {exc}; set snowflake.write_mode: replace to rebuild the table on such changes"
            ) from None
        for column, wider in steps:
            name = snowflake_name(column.name)
            if wider is None:
                self.cur.execute(ddl.snowflake_add_column(self.database, self.schema, self.table, column))
                self.report.schema_changes.append(f"added {name} {column.snowflake_type}")
            else:
                self.cur.execute(ddl.snowflake_alter_column_type(self.database, self.schema, self.table, name, wider))
                self.report.schema_changes.append(f"widened {name} {existing[name]} -> {wider}")
        return False

    def remove_keys(self, keys: Collection[str]) -> int:
        if self._merge:
            return 0  # merged rows are state: a removed object's rows stay
        deleted = 0
        for chunk in sql.chunks(sorted(keys)):
            self.cur.execute(*sql.delete_by_keys(self.target, ddl.SOURCE_KEY_COLUMN, chunk))
            deleted += _affected(self.cur)
        return deleted

    def load(self, changes: HubChanges) -> int:
        if self._merge:
            self._merge_into(self.target, changes)
        else:
            self._copy(self.target, changes)
        return changes.rows

    def record_snapshot(self, snapshot_id: int | None) -> None:
        with self._own_transaction() if self._merge else contextlib.nullcontext():
            for statement in sql.hub_ledger_write(self.ledger, self.table, snapshot_id, self.report.rows_copied, self.run_id):
                self.cur.execute(*statement)
            self.lock.heartbeat()

    def rebuild(self, changes: HubChanges) -> int:
        self._use_columns(changes.schema)  # a full load reaches here without ensure_schema
        staging_name = self.staging_name("staging")
        staging = self.ref(staging_name)
        # Not transient: after the swap this table is the live one.
        self.cur.execute(ddl.snowflake_create_table(self.database, self.schema, staging_name, self.columns, replace=True))
        try:
            if self._merge:
                self._merge_into(staging, changes)
            else:
                self._copy(staging, changes)
            existed = bool(self._existing_columns(self.table))
            self.cur.execute(ddl.snowflake_create_table(self.database, self.schema, self.table, self.columns))
            self.lock.heartbeat()
            self.report.swap_method = self._swap(staging_name)
        finally:
            self.cur.execute(f"DROP TABLE IF EXISTS {staging}")  # after the swap: the previous table
        self.report.schema_changes.append("rebuilt" if existed else "created")
        with self.transaction():
            self.record_snapshot(changes.snapshot_id)
        return changes.rows

    def count_rows(self) -> int:
        if not self._existing_columns(self.table):
            return 0
        self.cur.execute(f"SELECT COUNT(*) FROM {self.target}")
        return int(self.cur.fetchone()[0])

    @property
    def schema_changes(self) -> list[str]:
        return self.report.schema_changes

    # ---- the work

    def _use_columns(self, schema: pa.Schema) -> None:
        self.columns = sql.hub_column_specs(schema, BOOKKEEPING)
        self.report.columns = self.columns

    @property
    def _rebuilds_on_change(self) -> bool:
        return self.target_cfg.write_mode == "replace"

    def _copy(self, into_ref: str, changes: HubChanges) -> None:
        copied = self.stage.copy(into_ref, changes.data_files, changes.rows)
        self.report.rows_copied += copied
        self.report.rows_inserted += copied

    def _merge_into(self, into_ref: str, changes: HubChanges) -> None:
        """Copy the changed rows into a transient staging table, then upsert them into ``into_ref``."""
        if not changes.rows:
            return
        keys = list(self.target_cfg.merge_keys)
        missing = [k for k in keys if k not in {c.name for c in self.columns}]
        if missing:
            raise SnowflakeLoadError(f"{self.name}: merge_keys {missing} are not columns of the hub table")
        staging_name = self.staging_name("merge")
        staging = self.ref(staging_name)
        self.cur.execute(ddl.snowflake_create_table(
            self.database, self.schema, staging_name, self.columns, replace=True, transient=True,
            extra_columns=[(sql.SOURCE_ROW_COLUMN, "NUMBER(38,0)")],
        ))
        try:
            self.report.rows_copied += self.stage.copy(staging, changes.data_files, changes.rows)
            order = [ddl.SOURCE_KEY_COLUMN, sql.SOURCE_ROW_COLUMN]
            self.cur.execute(sql.null_key_rows(staging, keys))
            self.report.null_key_rows += int(self.cur.fetchone()[0])
            self.cur.execute(sql.superseded_rows(staging, keys, order))
            self.report.duplicate_key_rows += int(self.cur.fetchone()[0])
            names = [c.name for c in self.columns] + [ddl.SOURCE_KEY_COLUMN]
            self.lock.heartbeat()
            self.cur.execute(sql.merge_statement(into_ref, staging, names, keys, order, ddl.SOURCE_KEY_COLUMN))
            inserted, updated = (list(self.cur.fetchone() or []) + [0, 0])[:2]
            self.report.rows_inserted += int(inserted)
            self.report.rows_updated += int(updated)
        finally:
            self.cur.execute(f"DROP TABLE IF EXISTS {staging}")

    def _swap(self, staging_name: str) -> str:
        """Swap the staging table in; returns how. Real Snowflake: one atomic SWAP WITH."""
        target, staging = self.target, self.ref(staging_name)
        try:
            self.cur.execute(sql.swap_statement(target, staging))
            return "SWAP WITH"
        except Exception as exc:
            if not sql.is_swap_unsupported(exc):
                raise
        old = self.ref(self.staging_name("old"))
        self.cur.execute(f"DROP TABLE IF EXISTS {old}")
        with self._own_transaction():
            self.cur.execute(sql.rename_statement(target, old))
            self.cur.execute(sql.rename_statement(staging, target))
            self.cur.execute(sql.rename_statement(old, staging))
        if SWAP_FALLBACK not in self.report.notes:
            self.report.notes.append(SWAP_FALLBACK)
        return SWAP_FALLBACK

    def _drop_leftover_staging(self) -> None:
        """Drop the staging tables of killed loads of this table (safe: no other load of it is running)."""
        self.cur.execute(
            f"SELECT TABLE_NAME FROM {quote_snowflake(snowflake_name(self.database))}.INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = %s",
            (snowflake_name(self.schema),),
        )
        leftover = re.compile(rf"^{re.escape(snowflake_name(self.table))}__SF_(MERGE|STAGING|OLD)_[0-9A-F]{{12}}$")
        for (name,) in self.cur.fetchall():
            if leftover.match(name):
                self.cur.execute(f"DROP TABLE IF EXISTS {self.ref(name)}")

    def _existing_columns(self, table: str) -> dict[str, str]:
        """Column name -> Snowflake type of an existing table (empty when it does not exist)."""
        self.cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
            f"FROM {quote_snowflake(snowflake_name(self.database))}.INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (snowflake_name(self.schema), snowflake_name(table)),
        )
        return {name: sql.existing_type(dtype, p, s) for name, dtype, p, s in self.cur.fetchall()}


def _affected(cur) -> int:
    """Rows a DML statement changed, from its result row (Snowflake answers DELETE with one)."""
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else max(cur.rowcount or 0, 0)


# ---- what the checks read


@dataclass(frozen=True)
class LoadedState:
    """What the Snowflake table holds: ``loaded`` (the ledger has the table), the hub snapshot id it
    records (None: the hub table had no snapshot yet) and the rows in the table."""

    loaded: bool
    snapshot_id: int | None
    rows: int


def loaded_state(connection, database: str, schema: str, table: str) -> LoadedState:
    cur = connection.cursor()
    ref = ddl.snowflake_table_ref(database, schema, table)
    cur.execute(
        f"SELECT COUNT(*) FROM {quote_snowflake(snowflake_name(database))}.INFORMATION_SCHEMA.TABLES "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN (%s, %s)",
        (snowflake_name(schema), snowflake_name(table), sql.HUB_LEDGER_TABLE),
    )
    if int(cur.fetchone()[0]) < 2:
        return LoadedState(False, None, 0)
    cur.execute(*sql.hub_ledger_read(ddl.snowflake_table_ref(database, schema, sql.HUB_LEDGER_TABLE), table))
    row = cur.fetchone()
    cur.execute(f"SELECT COUNT(*) FROM {ref}")
    rows = int(cur.fetchone()[0])
    return LoadedState(row is not None, None if row is None or row[0] is None else int(row[0]), rows)


def hub_rows_at(hub: Hub, table: str, snapshot_id: int | None) -> int | None:
    """``Hub.rows_at``: the hub table's rows at the snapshot a target holds."""
    return hub.rows_at(table, snapshot_id)
