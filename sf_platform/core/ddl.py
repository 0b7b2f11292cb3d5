"""DDL text for the mirrors, built from catalog columns through the one type mapping.

Every identifier is quoted by ``identifiers``; no value is ever formatted into these statements.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from . import types as glue_types
from .identifiers import MAX_NAME_CHARS, normalize_name, quote_mysql, quote_snowflake, snowflake_name

# Every mirrored row records the S3 object it came from, so a replaced object's rows can be removed.
SOURCE_KEY_COLUMN = "_sf_source_key"
SOURCE_KEY_MYSQL_TYPE = "VARCHAR(1024)"

# MySQL rows are keyed by (source id, row): the source id is a hash of the object key
# (``ledger.source_id``), the row its data row number in the object. The primary key keeps an
# object's rows together, so replacing an object deletes one key range instead of scanning the table,
# inserts append in key order, and a row can never be in the table twice.
MYSQL_SOURCE_ID_COLUMN = "_sf_source_id"
MYSQL_ROW_COLUMN = "_sf_row"
MYSQL_BOOKKEEPING_COLUMNS = (SOURCE_KEY_COLUMN, MYSQL_SOURCE_ID_COLUMN, MYSQL_ROW_COLUMN)

# MySQL checks two row size limits at CREATE TABLE: 65,535 bytes over all columns (a TEXT counts 12 at
# most) and, in InnoDB with 16 KB pages, about 8,126 bytes kept in the page, where strings of up to 255
# bytes are stored whole while longer ones and TEXT leave a 20-byte pointer. Wide files break them
# (15 VARCHAR(1024) or 125 VARCHAR(16) columns), so the widest VARCHARs of a new table become TEXT
# until the row fits; ``mysql_widening`` treats TEXT as holding any VARCHAR, so they stay TEXT.
MYSQL_ROW_BYTES = 65_535
INNODB_IN_PAGE_BYTES = 8_000  # 8,126 less headroom for differences between server versions
_INNODB_ROW_OVERHEAD = 24  # hidden row id, transaction id and roll pointer, record header
_OFF_PAGE_POINTER = 22  # 20-byte pointer plus length bytes
_FIXED_BYTES = {
    "TINYINT(1)": 1, "TINYINT": 1, "SMALLINT": 2, "INT": 4, "BIGINT": 8,
    "FLOAT": 4, "DOUBLE": 8, "DATE": 3, "DATETIME(6)": 8,
}


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


def mysql_table_types(columns: Sequence[ColumnSpec]) -> list[str]:
    """The MySQL types of a new table's columns: each ``mysql_type``, with the widest VARCHARs turned
    into TEXT while the row would break MySQL's row size limits."""
    types = [c.mysql_type for c in columns]
    null_bytes = (len(columns) + 7) // 8
    bookkeeping = [_row_bytes(t) for t in (SOURCE_KEY_MYSQL_TYPE, "BIGINT", "BIGINT")]
    limits = (
        (0, MYSQL_ROW_BYTES - null_bytes - sum(b[0] for b in bookkeeping)),
        (1, INNODB_IN_PAGE_BYTES - _INNODB_ROW_OVERHEAD - null_bytes - sum(b[1] for b in bookkeeping)),
    )
    for index, budget in limits:
        while sum(_row_bytes(t)[index] for t in types) > budget:
            candidates = [i for i, t in enumerate(types) if t.startswith("VARCHAR(")]
            if index == 1:
                candidates = [i for i in candidates if _row_bytes(types[i])[1] > _OFF_PAGE_POINTER]
            if not candidates:
                break  # too many fixed-size columns: MySQL's own error says so
            types[max(candidates, key=lambda i: _row_bytes(types[i])[index])] = "TEXT"
    return types


def _row_bytes(mysql_type: str) -> tuple[int, int]:
    """(bytes toward the 65,535 row limit, bytes kept in an InnoDB page) of one nullable column."""
    if mysql_type.startswith("VARCHAR("):
        size = int(mysql_type[len("VARCHAR(") : -1]) * glue_types.UTF8MB4_BYTES_PER_CHAR
        if size <= 255:
            return size + 1, size + 1
        return size + 2, _OFF_PAGE_POINTER
    if mysql_type.endswith("TEXT"):
        return 12, _OFF_PAGE_POINTER
    if mysql_type.startswith("DECIMAL("):
        precision, scale = (int(p) for p in mysql_type[len("DECIMAL(") : -1].split(","))
        size = _decimal_bytes(precision - scale) + _decimal_bytes(scale)
        return size, size
    return _FIXED_BYTES[mysql_type], _FIXED_BYTES[mysql_type]


def _decimal_bytes(digits: int) -> int:
    # MySQL packs each 9 digits into 4 bytes and the leftover digits into 1 to 4 bytes.
    return digits // 9 * 4 + (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)[digits % 9]


def mysql_create_table(database: str, table: str, columns: Sequence[ColumnSpec], *, if_not_exists=True) -> str:
    """A mirror table: ``columns`` (named as in MySQL, see ``mysql_column_names``) and the bookkeeping
    columns, keyed by (source id, row)."""
    types = mysql_table_types(columns)
    body = [f"  {quote_mysql(c.name)} {t} NULL" for c, t in zip(columns, types, strict=True)]
    body.append(f"  {quote_mysql(SOURCE_KEY_COLUMN)} {SOURCE_KEY_MYSQL_TYPE} NOT NULL")
    body.append(f"  {quote_mysql(MYSQL_SOURCE_ID_COLUMN)} BIGINT NOT NULL")
    body.append(f"  {quote_mysql(MYSQL_ROW_COLUMN)} BIGINT NOT NULL")
    body.append(f"  PRIMARY KEY ({quote_mysql(MYSQL_SOURCE_ID_COLUMN)}, {quote_mysql(MYSQL_ROW_COLUMN)})")
    exists = "IF NOT EXISTS " if if_not_exists else ""
    return (
        f"CREATE TABLE {exists}{quote_mysql(database)}.{quote_mysql(table)} (\n"
        + ",\n".join(body)
        + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def mysql_column_names(names: Sequence[str]) -> list[str]:
    """Deterministic, collision-free MySQL column names for catalog column names, in order.

    Catalog names written by the crawl are already safe and stay as they are. Anything else (longer
    than 64 characters, reserved words, spaces, backticks, quotes, a trailing space, characters beyond
    the BMP) is normalized like a header; names MySQL would see as equal (it compares column names
    ignoring case) and the bookkeeping columns get a numbered suffix.
    """
    seen = {_mysql_name_key(n) for n in MYSQL_BOOKKEEPING_COLUMNS}
    result = []
    for position, name in enumerate(names, start=1):
        base = normalize_name(name, position)
        candidate, n = base, 1
        while _mysql_name_key(candidate) in seen:
            n += 1
            suffix = f"_{n}"
            candidate = base[: MAX_NAME_CHARS - len(suffix)] + suffix
        seen.add(_mysql_name_key(candidate))
        result.append(candidate)
    return result


def _mysql_name_key(name: str) -> str:
    # Case- and accent-insensitive: MySQL 8 and MariaDB differ in how they compare column names, and a
    # name kept apart needlessly costs nothing.
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def mysql_load_data(database: str, table: str, columns: Sequence[str], constants: Sequence[str]) -> str:
    """``LOAD DATA LOCAL INFILE %s`` for the mirror's row stream (RFC 4180 CSV, UTF-8, ``\\n`` line ends,
    unquoted ``NULL`` for nulls): the fields fill ``columns`` in order and each of ``constants`` is set
    from a further ``%s`` parameter."""
    assignments = ", ".join(f"{quote_mysql(c)} = %s" for c in constants)
    return (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote_mysql(database)}.{quote_mysql(table)} "
        "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        "LINES TERMINATED BY '\\n' "
        f"({', '.join(quote_mysql(c) for c in columns)})" + (f" SET {assignments}" if constants else "")
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


def snowflake_create_table(
    database: str,
    schema: str,
    table: str,
    columns: Sequence[ColumnSpec],
    *,
    replace: bool = False,
    transient: bool = False,
    extra_columns: Sequence[tuple[str, str]] = (),
) -> str:
    """The table for catalog ``columns`` plus the source key. Staging tables use ``replace`` (a fresh
    table, whatever a killed run left) and, when they never become the live table, ``transient`` (no
    Fail-safe storage for data that lives one load)."""
    body = [f"  {quote_snowflake(snowflake_name(c.name))} {c.snowflake_type}" for c in columns]
    body.append(f"  {quote_snowflake(snowflake_name(SOURCE_KEY_COLUMN))} VARCHAR NOT NULL")
    body += [f"  {quote_snowflake(snowflake_name(name))} {sql_type}" for name, sql_type in extra_columns]
    kind = "TRANSIENT TABLE" if transient else "TABLE"
    create = f"CREATE OR REPLACE {kind}" if replace else f"CREATE {kind} IF NOT EXISTS"
    return f"{create} {snowflake_table_ref(database, schema, table)} (\n" + ",\n".join(body) + "\n)"


def snowflake_add_column(database: str, schema: str, table: str, column: ColumnSpec) -> str:
    return (
        f"ALTER TABLE {snowflake_table_ref(database, schema, table)} "
        f"ADD COLUMN {quote_snowflake(snowflake_name(column.name))} {column.snowflake_type}"
    )


def snowflake_alter_column_type(database: str, schema: str, table: str, name: str, snowflake_type: str) -> str:
    return (
        f"ALTER TABLE {snowflake_table_ref(database, schema, table)} "
        f"ALTER COLUMN {quote_snowflake(snowflake_name(name))} SET DATA TYPE {snowflake_type}"
    )


def snowflake_table_ref(database: str, schema: str, table: str) -> str:
    return ".".join(quote_snowflake(snowflake_name(p)) for p in (database, schema, table))
