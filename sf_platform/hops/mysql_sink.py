"""The MySQL target of the hub: a ``Sink`` (``hops/sink.py``) over one connection and one table.

Rows come typed from the hub (``HubChanges.batches()``): nothing here parses or types CSV, and no row
the hub quarantined ever reaches MySQL. Each batch becomes CSV text (``conversion.mysql_ready``) and
flows through a named pipe into one ``LOAD DATA LOCAL INFILE`` per load (``resources.mysql``), the
fastest way into MySQL we measured; each row carries its object's key, its row number and the key's
source id. Rows are keyed by (source id, row): deleting an object's rows is one key range, and no row
can be in the table twice.

The table's columns come from the Glue catalog entry (``hops/mysql_columns.py``), so the
``mysql_matches_catalog`` check compares like with like. New catalog columns are added and widened
ones widened in place; a change MySQL cannot make without losing data fails naming the column, or
rebuilds the table when the registry says ``mysql: {on_incompatible_change: rebuild}``.

Strings longer than their MySQL column (values longer than the catalog's crawl saw) are never
truncated: each batch is checked before it is sent; on the first value too long the transaction is
rolled back, the changes are measured, the columns widened with ALTER TABLE (DDL commits implicitly,
so only with nothing pending), and the delete and load done again.

A rebuild loads a staging table and swaps it in with one RENAME TABLE; a failure drops the staging
table and leaves the live one untouched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pymysql

from sf_platform.core import batching, ddl, mysql_sql
from sf_platform.core import types as glue_types
from sf_platform.core.conversion import mysql_ready
from sf_platform.core.ledger import source_id
from sf_platform.core.registry import TableConfig
from sf_platform.hops.mysql_columns import IncompatibleChange, MirrorColumn, MirrorError, work_tables
from sf_platform.resources.mysql import load_data_local

if TYPE_CHECKING:
    from sf_platform.hub.changes import HubChanges

LOCK_TIMEOUT_S = 3600
FLUSH_ROWS = 16384  # rows gathered into one CSV write to the pipe
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed", null_string="NULL", batch_size=16384)
# The hub's bookkeeping columns (contract: every hub table ends with them).
HUB_KEY, HUB_ROW = ddl.SOURCE_KEY_COLUMN, ddl.MYSQL_ROW_COLUMN


class _TooLong(Exception):
    """A value does not fit its MySQL column: roll back, widen, load again."""


class MySQLSink:
    """``mysql.database``.``table`` as a target of the hub table ``table``. All statements run on
    ``conn``, which holds the table's named lock inside ``exclusive()``."""

    def __init__(
        self, conn, database: str, table: str, columns: Sequence[MirrorColumn], config: TableConfig, run_id: str,
        *, full_refresh: bool = False,
    ):
        self.conn, self.database, self.table = conn, database, table
        self.columns, self.config, self.run_id = list(columns), config, run_id
        self.full_refresh = full_refresh  # asked for: a rebuild needs no policy's consent
        self.name = f"{database}.{table}"
        self.schema_changes: list[str] = []
        self._by_catalog = {c.catalog: c for c in self.columns}
        # Rows per the ledger (None: unknown), and what the open transaction deleted and inserted: the
        # ledger row records the count the transaction leaves, without a COUNT(*) scan.
        self._ledger_rows: int | None = None
        self._deleted = self._inserted = 0

    # ---------------------------------------------------------------- Sink

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The table's named lock (held by the connection: a killed run releases it), then the ledger
        table and no leftovers of a killed rebuild."""
        name = mysql_sql.lock_name(self.database, self.table)
        if self._fetch("SELECT GET_LOCK(%s, %s)", (name, LOCK_TIMEOUT_S))[0][0] != 1:
            raise MirrorError(f"timed out waiting for another run on {self.name}")
        try:
            self._execute(mysql_sql.snapshot_ledger_table(self.database))
            for leftover in work_tables(self.table):
                self._execute(mysql_sql.drop_table(self.database, leftover))
            yield
        finally:
            # The lock dies with the connection anyway; a failure here must not hide the run's own error.
            with suppress(pymysql.MySQLError, OSError):
                self._fetch("SELECT RELEASE_LOCK(%s)", (name,))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._deleted = self._inserted = 0
        try:
            yield
            self.conn.commit()
        except BaseException:
            self._rollback()
            raise

    def loaded_snapshot(self) -> int | None:
        if not self._exists(self.table):
            return None
        rows = self._fetch(mysql_sql.read_snapshot(self.database), (self.table,))
        self.conn.commit()  # end the read's snapshot: later reads must see other runs' commits
        if not rows:
            return None
        self._ledger_rows = int(rows[0][1])
        return int(rows[0][0]) if rows[0][0] is not None else None

    def ensure_schema(self, schema: pa.Schema) -> bool:
        """Create the table, or add and widen its columns; True when it must be rebuilt instead."""
        if not self._exists(self.table):
            self._execute(ddl.mysql_create_table(self.database, self.table, [c.spec for c in self.columns]))
            return False
        if not set(ddl.MYSQL_BOOKKEEPING_COLUMNS) <= set(self.column_types(self.table)):
            self.schema_changes.append("rebuilt: the table predates the (source id, row) key")
            return True
        try:
            self.schema_changes += self._evolve(self.table)
        except IncompatibleChange as exc:
            if self.config.mysql.on_incompatible_change != "rebuild":
                raise
            self.schema_changes.append(f"rebuilt: {exc}")
            return True
        return False

    def remove_keys(self, keys: Collection[str]) -> int:
        deleted = 0
        ids = sorted({source_id(k) for k in keys})
        with self.conn.cursor() as cur:
            for part in batching.chunks(ids, mysql_sql.DELETE_IDS_PER_STATEMENT):
                cur.execute(mysql_sql.delete_source_ids(self.database, self.table, len(part)), part)
                deleted += cur.rowcount
        self._deleted += deleted
        return deleted

    def load(self, changes: HubChanges) -> int:
        """Insert the changes' rows; a value too long for its column rolls the transaction back, widens
        the column and deletes ``changes.removed_keys`` again before loading again (same transaction
        for the caller: nothing is committed here)."""
        try:
            self._inserted = self._load_rows(self.table, changes)
            return self._inserted
        except _TooLong:
            self._rollback()
        self.schema_changes += self._widen_for(changes, self.table)
        self._deleted = 0
        if changes.removed_keys:
            self.remove_keys(changes.removed_keys)
        try:
            self._inserted = self._load_rows(self.table, changes)
            return self._inserted
        except _TooLong as exc:
            raise MirrorError(f"{self.name}: column {exc.args[0]!r} is still too short after widening it") from None

    def record_snapshot(self, snapshot_id: int | None) -> None:
        if self._ledger_rows is None:  # no ledger row yet: count once (inside the transaction: its own rows)
            rows = int(self._fetch(mysql_sql.count_rows(self.database, self.table), ())[0][0])
        else:
            rows = self._ledger_rows - self._deleted + self._inserted
        self._write_ledger(snapshot_id, rows)

    def _write_ledger(self, snapshot_id: int | None, rows: int) -> None:
        with self.conn.cursor() as cur:
            cur.execute(mysql_sql.record_snapshot(self.database), (self.table, snapshot_id, rows, self.run_id))
        self._ledger_rows, self._deleted, self._inserted = rows, 0, 0

    def rebuild(self, changes: HubChanges) -> int:
        """Also when the hub asks for a full load (first load, the hub rebuilt): a column of the live table
        the catalog changed incompatibly is rebuilt only when the policy or a full refresh says so."""
        if not self.full_refresh and self._exists(self.table):
            self._consent_to_rebuild()
        staging, old = work_tables(self.table)
        try:
            self._execute(
                ddl.mysql_create_table(self.database, staging, [c.spec for c in self.columns], if_not_exists=False)
            )
            try:
                inserted = self._load_rows(staging, changes)
            except _TooLong:
                self._rollback()
                self.schema_changes += self._widen_for(changes, staging)
                inserted = self._load_rows(staging, changes)
            self.conn.commit()
            live = self._exists(self.table)
            self._execute(mysql_sql.swap_tables(self.database, self.table, staging, old, live_exists=live))
            self._execute(mysql_sql.drop_table(self.database, old))
            # After the swap (DDL commits on its own): a run killed in between loads the changes since
            # the older snapshot again, which is idempotent (hops/sink.py).
            self._write_ledger(changes.snapshot_id, inserted)
            self.conn.commit()
        except BaseException:
            self._rollback()
            with suppress(pymysql.MySQLError, OSError):
                self._execute(mysql_sql.drop_table(self.database, staging))
            raise
        return inserted

    def count_rows(self) -> int:
        """From the ledger row, exact (written with the rows); COUNT(*) for a table without one."""
        if self._ledger_rows is not None:
            return self._ledger_rows
        if not self._exists(self.table):
            return 0
        count = int(self._fetch(mysql_sql.count_rows(self.database, self.table), ())[0][0])
        self.conn.commit()
        return count

    # ---------------------------------------------------------------- loading

    def _stream_columns(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """(hub column, MySQL column) of each hub data column the mirror has, in the hub's order. A hub
        column the catalog no longer has is not mirrored (its MySQL column, if any, keeps NULLs)."""
        return [
            (f.name, self._by_catalog[f.name].mysql)
            for f in schema
            if f.name not in (HUB_KEY, HUB_ROW) and f.name in self._by_catalog
        ]

    def _load_rows(self, target: str, changes: HubChanges) -> int:
        if not changes.rows:
            return 0
        pairs = self._stream_columns(changes.schema)
        columns = [m for _, m in pairs] + [HUB_KEY, HUB_ROW, ddl.MYSQL_SOURCE_ID_COLUMN]
        limits = self._string_limits(target)
        checks = [
            (hub, limits[m.lower()])
            for hub, m in pairs
            if m.lower() in limits and glue_types.parse(self._by_catalog[hub].type).name == "string"
        ]
        sent = [0]
        chunks = _csv_chunks(changes.batches(), [h for h, _ in pairs], checks, sent)
        with self.conn.cursor() as cur:
            result = load_data_local(cur, ddl.mysql_load_data(self.database, target, columns, []), (), chunks)
        if result.warnings:
            shown = "; ".join(f"{code}: {message}" for _, code, message in result.warnings[:5])
            raise MirrorError(f"{self.name}: MySQL refused values of the hub's rows, nothing was loaded: {shown}")
        if result.rows != sent[0] or sent[0] != changes.rows:
            raise MirrorError(
                f"{self.name}: the hub announced {changes.rows} rows, {sent[0]} were sent and MySQL loaded "
                f"{result.rows}; nothing was loaded"
            )
        return result.rows

    # ---------------------------------------------------------------- schema

    def _consent_to_rebuild(self) -> None:
        """Raise IncompatibleChange (policy ``fail``) when the live table has a column the catalog changed
        in a way MySQL cannot widen; note the rebuild (policy ``rebuild``)."""
        current = {name.lower(): ctype for name, ctype in self.column_types(self.table).items()}
        for column in self.columns:
            found = current.get(column.mysql.lower())
            if found is None:
                continue
            try:
                glue_types.mysql_widening(found, column.spec.mysql_type)
            except ValueError:
                problem = _incompatible(
                    self.database, self.table, column.mysql, column.catalog, found, column.spec.mysql_type
                )
                if self.config.mysql.on_incompatible_change != "rebuild":
                    raise problem from None
                if not any(c.startswith("rebuilt: ") for c in self.schema_changes):
                    self.schema_changes.append(f"rebuilt: {problem}")

    def _evolve(self, table: str) -> list[str]:
        """Add new catalog columns and widen changed ones; raise IncompatibleChange naming the column
        when a change would lose data."""
        existing = {name.lower(): (name, ctype) for name, ctype in self.column_types(table).items()}
        changes = []
        for column in self.columns:
            found = existing.pop(column.mysql.lower(), None)
            if found is None:
                self._execute(ddl.mysql_add_column(self.database, table, column.spec))
                changes.append(f"added {column.mysql} {column.spec.mysql_type}")
                continue
            changes += self._widen(table, column.mysql, found[1], column.spec.mysql_type, column.catalog)
        return changes

    def _widen(self, table: str, name: str, current: str, wanted: str, catalog_name: str) -> list[str]:
        try:
            widened = glue_types.mysql_widening(current, wanted)
        except ValueError:
            raise _incompatible(self.database, table, name, catalog_name, current, wanted) from None
        if widened is None:
            return []
        self._execute(ddl.mysql_modify_column(self.database, table, name, widened))
        return [f"widened {name} {current} -> {widened}"]

    def _widen_for(self, changes: HubChanges, target: str) -> list[str]:
        """Measure every string of the changes' rows and widen the columns their values do not fit."""
        pairs = dict(self._stream_columns(changes.schema))
        strings = [h for h in pairs if glue_types.parse(self._by_catalog[h].type).name == "string"]
        longest: dict[str, tuple[int, int]] = {}
        for batch in changes.batches():
            for hub in strings:
                column = batch.column(hub)
                chars = pc.max(pc.utf8_length(column)).as_py() or 0
                octets = pc.max(pc.binary_length(column)).as_py() or 0
                seen = longest.get(hub, (0, 0))
                longest[hub] = (max(seen[0], chars), max(seen[1], octets))
        limits = self._string_limits(target)
        current = self.column_types(target)
        widened = []
        for hub, (chars, octets) in longest.items():
            name = pairs[hub]
            if mysql_sql.too_long(chars, octets, limits.get(name.lower())):
                wanted = glue_types.mysql_string_type(max(chars, -(-octets // glue_types.UTF8MB4_BYTES_PER_CHAR)))
                for change in self._widen(target, name, current[name], wanted, hub):
                    widened.append(f"{change} (the hub's values are longer than the catalog says)")
        return widened

    def column_types(self, table: str | None = None) -> dict[str, str]:
        """MySQL column -> COLUMN_TYPE (upper case), in table order."""
        rows = self._fetch(mysql_sql.COLUMN_TYPES, (self.database, table or self.table))
        return {name: ctype.upper() for name, ctype in rows}

    def _string_limits(self, table: str) -> dict[str, tuple[str, int]]:
        rows = self._fetch(mysql_sql.STRING_LIMITS, (self.database, table))
        return {name.lower(): mysql_sql.string_limit(dtype, chars, octets) for name, dtype, chars, octets in rows}

    # ---------------------------------------------------------------- SQL helpers

    def _exists(self, table: str) -> bool:
        return bool(self._fetch(mysql_sql.TABLE_EXISTS, (self.database, table))[0][0])

    def _rollback(self) -> None:
        with suppress(pymysql.MySQLError, OSError):
            self.conn.rollback()

    def _execute(self, sql: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def _fetch(self, sql: str, args: tuple) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())


def _incompatible(database: str, table: str, name: str, catalog_name: str, current: str, wanted: str):
    return IncompatibleChange(
        f"{database}.{table}: column {name!r} (catalog {catalog_name!r}) changed from {current} to "
        f"{wanted}, which MySQL cannot hold without losing data; set `mysql: {{on_incompatible_change: "
        "rebuild}` for the table in the registry, or run with full_refresh, to rebuild it"
    )


def _csv_chunks(
    batches: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    checks: Sequence[tuple[str, tuple[str, int]]],
    sent: list[int],
) -> Iterator[bytes]:
    """The hub's batches as LOAD DATA's CSV stream: ``columns``, then key, row and source id.
    ``sent[0]`` counts the rows yielded. Raises _TooLong (the hub column) on a string over its limit."""
    gathered: list[pa.RecordBatch] = []
    waiting = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        for hub, limit in checks:
            _check_length(batch.column(hub), hub, limit)
        gathered.append(_stream_batch(batch, columns))
        waiting += batch.num_rows
        if waiting >= FLUSH_ROWS:
            yield _csv(gathered)
            sent[0] += waiting
            gathered, waiting = [], 0
    if gathered:
        yield _csv(gathered)
        sent[0] += waiting


def _check_length(column: pa.Array, hub: str, limit: tuple[str, int]) -> None:
    kind, size = limit
    measure = pc.utf8_length if kind == "chars" else pc.binary_length
    longest = pc.max(measure(column)).as_py()
    if longest is not None and longest > size:
        raise _TooLong(hub)


def _stream_batch(batch: pa.RecordBatch, columns: Sequence[str]) -> pa.RecordBatch:
    """One hub batch as the stream's fields: the mirrored columns in MySQL's text forms, then the
    source key, the row number and the key's source id."""
    data = pa.RecordBatch.from_arrays([_naive(batch.column(c)) for c in columns], names=list(columns))
    keys = batch.column(HUB_KEY)
    encoded = pc.dictionary_encode(keys)
    ids = pa.array([source_id(k) for k in encoded.dictionary.to_pylist()], pa.int64())
    extra = [keys, batch.column(HUB_ROW), pc.take(ids, encoded.indices)]
    ready = mysql_ready(data) if columns else data
    return pa.RecordBatch.from_arrays(
        [*ready.columns, *extra], names=[*ready.schema.names, HUB_KEY, HUB_ROW, ddl.MYSQL_SOURCE_ID_COLUMN]
    )


def _naive(column: pa.Array) -> pa.Array:
    """Timestamps with a time zone as UTC wall time (the session's time zone is UTC; DATETIME has none)."""
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        return pc.cast(column, pa.timestamp(column.type.unit))
    return column


def _csv(batches: Sequence[pa.RecordBatch]) -> pa.Buffer:
    """Record batches as CSV lines (one schema but for null-only columns: written one by one then)."""
    out = pa.BufferOutputStream()
    schema = batches[0].schema
    if all(b.schema == schema for b in batches):
        pacsv.write_csv(pa.Table.from_batches(batches, schema), out, _CSV)
    else:
        for batch in batches:
            pacsv.write_csv(batch, out, _CSV)
    return out.getvalue()
