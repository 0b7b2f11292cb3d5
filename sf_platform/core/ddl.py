"""DDL text for the mirrors, built from catalog columns through the one type mapping.

Every identifier is quoted by ``identifiers``; no value is ever formatted into these statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import types as glue_types
from .identifiers import quote_mysql, quote_snowflake, snowflake_name

# Every mirrored row records the S3 object it came from, so a replaced object's rows can be removed.
SOURCE_KEY_COLUMN = "_sf_source_key"
MYSQL_LEDGER_TABLE = "_sf_ledger"
SNOWFLAKE_LEDGER_TABLE = "_SF_LEDGER"


@dataclass(frozen=True)
class ColumnSpec:
    """A target column: catalog name, Glue type and the longest value seen (sizes MySQL VARCHARs)."""

    name: str
    type: str
    max_length: int = 0

    @property
    def mysql_type(self) -> str:
        return glue_types.to_mysql(self.type, self.max_length)

    @property
    def snowflake_type(self) -> str:
        return glue_types.to_snowflake(self.type)


def mysql_create_table(database: str, table: str, columns: Sequence[ColumnSpec], *, if_not_exists=True) -> str:
    body = [f"  {quote_mysql(c.name)} {c.mysql_type} NULL" for c in columns]
    body.append(f"  {quote_mysql(SOURCE_KEY_COLUMN)} VARCHAR(1024) NOT NULL")
    body.append(f"  KEY {quote_mysql('ix' + SOURCE_KEY_COLUMN)} ({quote_mysql(SOURCE_KEY_COLUMN)}(255))")
    exists = "IF NOT EXISTS " if if_not_exists else ""
    return (
        f"CREATE TABLE {exists}{quote_mysql(database)}.{quote_mysql(table)} (\n"
        + ",\n".join(body)
        + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def mysql_add_column(database: str, table: str, column: ColumnSpec) -> str:
    return (
        f"ALTER TABLE {quote_mysql(database)}.{quote_mysql(table)} "
        f"ADD COLUMN {quote_mysql(column.name)} {column.mysql_type} NULL"
    )


def mysql_modify_column(database: str, table: str, name: str, mysql_type: str) -> str:
    return (
        f"ALTER TABLE {quote_mysql(database)}.{quote_mysql(table)} "
        f"MODIFY COLUMN {quote_mysql(name)} {mysql_type} NULL"
    )


def mysql_ledger_table(database: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {quote_mysql(database)}.{quote_mysql(MYSQL_LEDGER_TABLE)} (\n"
        "  `table_name` VARCHAR(64) NOT NULL,\n"
        "  `object_key` VARCHAR(1024) NOT NULL,\n"
        "  `etag` VARCHAR(128) NOT NULL,\n"
        "  `rows_loaded` BIGINT NOT NULL,\n"
        "  `rows_quarantined` BIGINT NOT NULL,\n"
        "  `bytes` BIGINT NOT NULL,\n"
        "  `loaded_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n"
        "  `run_id` VARCHAR(64) NOT NULL,\n"
        "  PRIMARY KEY (`table_name`, `object_key`(512))\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def snowflake_create_table(database: str, schema: str, table: str, columns: Sequence[ColumnSpec]) -> str:
    body = [f"  {quote_snowflake(snowflake_name(c.name))} {c.snowflake_type}" for c in columns]
    body.append(f"  {quote_snowflake(snowflake_name(SOURCE_KEY_COLUMN))} VARCHAR NOT NULL")
    return (
        f"CREATE TABLE IF NOT EXISTS {snowflake_table_ref(database, schema, table)} (\n" + ",\n".join(body) + "\n)"
    )


def snowflake_table_ref(database: str, schema: str, table: str) -> str:
    return ".".join(quote_snowflake(snowflake_name(p)) for p in (database, schema, table))


def snowflake_ledger_table(database: str, schema: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {snowflake_table_ref(database, schema, SNOWFLAKE_LEDGER_TABLE)} (\n"
        '  "TABLE_NAME" VARCHAR NOT NULL,\n'
        '  "OBJECT_KEY" VARCHAR NOT NULL,\n'
        '  "ETAG" VARCHAR NOT NULL,\n'
        '  "ROWS_LOADED" NUMBER(38,0) NOT NULL,\n'
        '  "ROWS_QUARANTINED" NUMBER(38,0) NOT NULL,\n'
        '  "BYTES" NUMBER(38,0) NOT NULL,\n'
        '  "LOADED_AT" TIMESTAMP_NTZ NOT NULL,\n'
        '  "RUN_ID" VARCHAR NOT NULL\n'
        ")"
    )
