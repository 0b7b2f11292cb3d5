"""Read-only inspection of the targets: the columns a MySQL or Snowflake table has now, for the
``mysql_matches_catalog`` and ``snowflake_matches_catalog`` checks."""

from __future__ import annotations

from sf_platform.core import mysql_sql
from sf_platform.core.identifiers import quote_snowflake, snowflake_name
from sf_platform.resources.mysql import MySQLResource


def mysql_columns(mysql: MySQLResource, table: str) -> dict[str, str]:
    """Column name -> COLUMN_TYPE of a mirrored table ({} when the table does not exist)."""
    rows = mysql.fetch_all(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (mysql.database, table),
    )
    return {name: str(ctype) for name, ctype in rows}


def mysql_loaded_snapshot_and_rows(mysql: MySQLResource, table: str) -> tuple[int | None, int]:
    """(the hub snapshot MySQL's ledger records for ``table`` or None, rows in the table), read in one
    transaction so they agree."""
    with mysql.connect() as conn, conn.cursor() as cur:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute(mysql_sql.TABLE_EXISTS, (mysql.database, table))
        if not cur.fetchone()[0]:
            return None, 0
        cur.execute(mysql_sql.TABLE_EXISTS, (mysql.database, mysql_sql.SNAPSHOT_LEDGER_TABLE))
        loaded = None
        if cur.fetchone()[0]:
            cur.execute(mysql_sql.read_snapshot(mysql.database), (table,))
            row = cur.fetchone()
            loaded = int(row[0]) if row and row[0] is not None else None
        cur.execute(mysql_sql.count_rows(mysql.database, table))
        rows = int(cur.fetchone()[0])
        conn.commit()
        return loaded, rows


def snowflake_columns(conn, database: str, schema: str, table: str) -> dict[str, str]:
    cur = conn.cursor()
    cur.execute(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM {quote_snowflake(snowflake_name(database))}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (snowflake_name(schema), snowflake_name(table)),
    )
    return {name: str(dtype) for name, dtype in cur.fetchall()}
