"""Read-only inspection of the targets for checks: their columns, row counts and quarantined rows."""

from __future__ import annotations

from sf_platform.core.ddl import MYSQL_LEDGER_TABLE, SNOWFLAKE_LEDGER_TABLE, snowflake_table_ref
from sf_platform.core.identifiers import quote_mysql, quote_snowflake, snowflake_name
from sf_platform.resources.mysql import MySQLResource


def mysql_columns(mysql: MySQLResource, table: str) -> dict[str, str]:
    """Column name -> COLUMN_TYPE of a mirrored table ({} when the table does not exist)."""
    rows = mysql.fetch_all(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (mysql.database, table),
    )
    return {name: str(ctype) for name, ctype in rows}


def mysql_counts(mysql: MySQLResource, table: str) -> tuple[int, int]:
    """(rows in the table, rows quarantined by the loads recorded in the ledger)."""
    rows = mysql.fetch_all(f"SELECT COUNT(*) FROM {quote_mysql(mysql.database)}.{quote_mysql(table)}")[0][0]
    quarantined = mysql.fetch_all(
        f"SELECT COALESCE(SUM(rows_quarantined), 0) FROM {quote_mysql(mysql.database)}.{quote_mysql(MYSQL_LEDGER_TABLE)} "
        "WHERE table_name = %s",
        (table,),
    )[0][0]
    return int(rows), int(quarantined)


def snowflake_columns(conn, database: str, schema: str, table: str) -> dict[str, str]:
    cur = conn.cursor()
    cur.execute(
        f"SELECT COLUMN_NAME, DATA_TYPE FROM {quote_snowflake(snowflake_name(database))}.INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (snowflake_name(schema), snowflake_name(table)),
    )
    return {name: str(dtype) for name, dtype in cur.fetchall()}


def snowflake_counts(conn, database: str, schema: str, table: str) -> tuple[int, int]:
    cur = conn.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {snowflake_table_ref(database, schema, table)}")
    rows = int(cur.fetchone()[0])
    cur.execute(
        f'SELECT COALESCE(SUM("ROWS_QUARANTINED"), 0) FROM {snowflake_table_ref(database, schema, SNOWFLAKE_LEDGER_TABLE)} '
        'WHERE "TABLE_NAME" = %s',
        (table,),
    )
    return rows, int(cur.fetchone()[0])
