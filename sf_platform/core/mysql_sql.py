"""The MySQL statements of the hub's MySQL target (``hops/mysql_sink.py``), one function each.

Table DDL built from catalog columns (CREATE, ADD/MODIFY COLUMN, the row-size fitting) stays in
``ddl.py``, its one home; this module holds the statements of the load itself: the snapshot ledger, the
named lock, the deletes of removed keys, the swap of a rebuilt table, and the information_schema reads.

Every identifier is quoted by ``identifiers.quote_mysql``; no value is ever formatted into a statement.
Statements run with parameters (``%s``) double a ``%`` in identifiers, as pymysql formats them with ``%``.
"""

from __future__ import annotations

import hashlib

from .ddl import MYSQL_SOURCE_ID_COLUMN
from .identifiers import quote_mysql

# One row per mirrored table: the hub snapshot the table holds and its row count, written in the same
# transaction as its rows (so the count is exact without a COUNT(*), which scans the whole table: a load
# with nothing new reads one row). The per-object ``_sf_ledger`` of the file-reading mirror is no longer
# written.
SNAPSHOT_LEDGER_TABLE = "_sf_snapshots"
# Source ids per DELETE: 1,000 ids are 1,000 key ranges of the primary key, one short statement.
DELETE_IDS_PER_STATEMENT = 1000


def _q(name: str) -> str:
    return quote_mysql(name).replace("%", "%%")


def ref(database: str, table: str) -> str:
    """``database``.``table``, for a statement run without parameters."""
    return f"{quote_mysql(database)}.{quote_mysql(table)}"


def ref_params(database: str, table: str) -> str:
    """``database``.``table``, for a statement run with parameters."""
    return f"{_q(database)}.{_q(table)}"


def snapshot_ledger_table(database: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {ref(database, SNAPSHOT_LEDGER_TABLE)} (\n"
        "  `table_name` VARCHAR(64) NOT NULL,\n"
        "  `snapshot_id` BIGINT NULL,\n"
        "  `table_rows` BIGINT NOT NULL,\n"
        "  `loaded_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n"
        "  `run_id` VARCHAR(64) NOT NULL,\n"
        "  PRIMARY KEY (`table_name`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def read_snapshot(database: str) -> str:
    """(snapshot_id, table_rows) of a table: one ``%s``, the table name; no row = never loaded."""
    return f"SELECT snapshot_id, table_rows FROM {ref_params(database, SNAPSHOT_LEDGER_TABLE)} WHERE table_name = %s"


def record_snapshot(database: str) -> str:
    """Upsert a table's ledger row: ``%s`` parameters table_name, snapshot_id, table_rows, run_id."""
    return (
        f"INSERT INTO {ref_params(database, SNAPSHOT_LEDGER_TABLE)} (table_name, snapshot_id, table_rows, run_id) "
        "VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE snapshot_id = VALUES(snapshot_id), "
        "table_rows = VALUES(table_rows), run_id = VALUES(run_id), loaded_at = CURRENT_TIMESTAMP(6)"
    )


def forget_snapshot(database: str) -> str:
    """Delete a table's ledger row: one ``%s``, the table name."""
    return f"DELETE FROM {ref_params(database, SNAPSHOT_LEDGER_TABLE)} WHERE table_name = %s"


def lock_name(database: str, table: str) -> str:
    """The named lock (GET_LOCK) that serializes loads of one table across processes; hashed, as
    lock names are limited to 64 characters."""
    return "sf_mirror:" + hashlib.sha1(f"{database}.{table}".encode()).hexdigest()


def delete_source_ids(database: str, table: str, count: int) -> str:
    """Delete the rows of ``count`` source objects: ``count`` ``%s`` parameters, each a source id (one
    primary-key range each)."""
    if count < 1:
        raise ValueError("at least one source id")
    ids = ", ".join(["%s"] * count)
    return f"DELETE FROM {ref_params(database, table)} WHERE {_q(MYSQL_SOURCE_ID_COLUMN)} IN ({ids})"


def swap_tables(database: str, live: str, staging: str, old: str, *, live_exists: bool) -> str:
    """One atomic RENAME TABLE that puts ``staging`` in place of ``live`` (the previous live table
    becomes ``old``, to be dropped)."""
    if not live_exists:
        return f"RENAME TABLE {ref(database, staging)} TO {ref(database, live)}"
    return (
        f"RENAME TABLE {ref(database, live)} TO {ref(database, old)}, "
        f"{ref(database, staging)} TO {ref(database, live)}"
    )


def drop_table(database: str, table: str) -> str:
    return f"DROP TABLE IF EXISTS {ref(database, table)}"


def count_rows(database: str, table: str) -> str:
    return f"SELECT COUNT(*) FROM {ref(database, table)}"


# information_schema reads: two ``%s`` each, the database and the table.
COLUMN_TYPES = (
    "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
)
STRING_LIMITS = (
    "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
    "AND CHARACTER_MAXIMUM_LENGTH IS NOT NULL"
)
TABLE_EXISTS = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def string_limit(data_type: str, chars: int, octets: int) -> tuple[str, int]:
    """How MySQL bounds a string column: ("chars", n) for VARCHAR/CHAR, ("bytes", n) for the TEXT types."""
    if data_type.lower() in ("varchar", "char"):
        return "chars", int(chars)
    return "bytes", int(octets)


def too_long(chars: int, octets: int, limit: tuple[str, int] | None) -> bool:
    """Whether a value of ``chars`` characters and ``octets`` UTF-8 bytes overflows ``limit``."""
    if limit is None:
        return False
    kind, size = limit
    return (chars if kind == "chars" else octets) > size
