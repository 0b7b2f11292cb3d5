"""DDL text for the MySQL and Snowflake mirrors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core import ddl
from sf_platform.core.ddl import ColumnSpec

HOSTILE = ColumnSpec('we`ird "name"; DROP TABLE x; --', "string", 10)


def _body_lines(statement: str) -> list[str]:
    return statement.split("\n")[1:-1]


def test_mysql_create_table():
    sql = ddl.mysql_create_table(
        "sf_db",
        "member",
        [ColumnSpec("member_id", "bigint"), ColumnSpec("member_name", "string", 3), ColumnSpec("score", "decimal(5,2)")],
    )
    assert sql == (
        "CREATE TABLE IF NOT EXISTS `sf_db`.`member` (\n"
        "  `member_id` BIGINT NULL,\n"
        "  `member_name` VARCHAR(16) NULL,\n"
        "  `score` DECIMAL(5,2) NULL,\n"
        "  `_sf_source_key` VARCHAR(1024) NOT NULL,\n"
        "  `_sf_source_id` BIGINT NOT NULL,\n"
        "  `_sf_row` BIGINT NOT NULL,\n"
        "  PRIMARY KEY (`_sf_source_id`, `_sf_row`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def test_mysql_load_data_statement():
    sql = ddl.mysql_load_data("sf_db", "member", ["member_id", "na`me", "_sf_row"], ["_sf_source_key", "dt"])
    assert sql == (
        "LOAD DATA LOCAL INFILE %s INTO TABLE `sf_db`.`member` CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
        "(`member_id`, `na``me`, `_sf_row`) SET `_sf_source_key` = %s, `dt` = %s"
    )
    assert ddl.mysql_load_data("d", "t", ["a"], []).endswith("(`a`)")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["member_id", "회원_id", "select_", "c_2nd"], ["member_id", "회원_id", "select_", "c_2nd"]),
        (["a b", "x`y", 'say "hi"', "select", "spaced "], ["a_b", "x_y", "say_hi", "select_", "spaced"]),
        (["Order", "order", "ORDER"], ["order_", "order__2", "order__3"]),
        (["id", "ID", "Id"], ["id", "id_2", "id_3"]),
        (["e", "é"], ["e", "é_2"]),  # MySQL 8 compares column names ignoring accents
        (["_sf_row", "sf_row", "_sf_source_key"], ["sf_row", "sf_row_2", "sf_source_key"]),
        (["😀", ""], ["col_1", "col_2"]),
    ],
)
def test_mysql_column_names(names, expected):
    assert ddl.mysql_column_names(names) == expected


def test_mysql_column_names_shorten_long_names_deterministically():
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    names = ddl.mysql_column_names([long_a, long_b, long_a])
    assert all(len(n) <= 64 for n in names) and len(set(names)) == 3
    assert names == ddl.mysql_column_names([long_a, long_b, long_a])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), max_size=12))
def test_mysql_column_names_are_always_usable_and_distinct(names):
    mapped = ddl.mysql_column_names(names)
    assert len(mapped) == len(names)
    keys = [ddl._mysql_name_key(n) for n in mapped + list(ddl.MYSQL_BOOKKEEPING_COLUMNS)]
    assert len(set(keys)) == len(keys)
    for name in mapped:
        ddl.quote_mysql(name)  # raises on names MySQL cannot hold
    assert ddl.mysql_column_names(mapped) == mapped  # mapped names stay as they are


def test_mysql_create_table_without_if_not_exists():
    sql = ddl.mysql_create_table("d", "t__sf_staging", [ColumnSpec("a", "int")], if_not_exists=False)
    assert sql.startswith("CREATE TABLE `d`.`t__sf_staging` (")


def test_mysql_ddl_quotes_hostile_names():
    sql = ddl.mysql_create_table("db`x", "ta`ble", [HOSTILE])
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `db``x`.`ta``ble` (")
    assert '  `we``ird "name"; DROP TABLE x; --` VARCHAR(32) NULL,' in sql
    assert "utf8mb4" in sql
    # Outside the backtick-quoted names only our own SQL remains.
    outside = re.sub(r"`(?:[^`]|``)*`", "`?`", sql)
    assert "DROP" not in outside and ";" not in outside


def test_mysql_alter_statements():
    assert ddl.mysql_add_column("db", "t", ColumnSpec("new col", "date")) == (
        "ALTER TABLE `db`.`t` ADD COLUMN `new col` DATE NULL"
    )
    assert ddl.mysql_modify_column("db", "t", "c`1", "BIGINT") == "ALTER TABLE `db`.`t` MODIFY COLUMN `c``1` BIGINT NULL"


def test_every_type_in_mysql_and_snowflake_ddl():
    columns = [
        ColumnSpec("a", "bigint"),
        ColumnSpec("b", "int"),
        ColumnSpec("c", "double"),
        ColumnSpec("d", "decimal(12,2)"),
        ColumnSpec("e", "boolean"),
        ColumnSpec("f", "date"),
        ColumnSpec("g", "timestamp"),
        ColumnSpec("h", "string", 600),
    ]
    mysql = _body_lines(ddl.mysql_create_table("d", "t", columns))
    assert mysql[:8] == [
        "  `a` BIGINT NULL,",
        "  `b` INT NULL,",
        "  `c` DOUBLE NULL,",
        "  `d` DECIMAL(12,2) NULL,",
        "  `e` TINYINT(1) NULL,",
        "  `f` DATE NULL,",
        "  `g` DATETIME(6) NULL,",
        "  `h` TEXT NULL,",
    ]
    snowflake = _body_lines(ddl.snowflake_create_table("db", "raw", "t", columns))
    assert snowflake == [
        '  "A" NUMBER(38,0),',
        '  "B" NUMBER(38,0),',
        '  "C" FLOAT,',
        '  "D" NUMBER(12,2),',
        '  "E" BOOLEAN,',
        '  "F" DATE,',
        '  "G" TIMESTAMP_NTZ,',
        '  "H" VARCHAR,',
        '  "_SF_SOURCE_KEY" VARCHAR NOT NULL',
    ]


def test_snowflake_create_table_upper_cases_and_quotes_names():
    sql = ddl.snowflake_create_table("sf_db", "raw", "member", [ColumnSpec("회원_id", "int"), HOSTILE])
    assert sql.startswith('CREATE TABLE IF NOT EXISTS "SF_DB"."RAW"."MEMBER" (\n')
    assert '  "회원_ID" NUMBER(38,0),' in sql
    assert '  "WE`IRD ""NAME""; DROP TABLE X; --" VARCHAR,' in sql
    assert '"_SF_SOURCE_KEY" VARCHAR NOT NULL' in sql
    outside = re.sub(r'"(?:[^"]|"")*"', '"?"', sql)
    assert "DROP" not in outside


def test_snowflake_table_ref():
    assert ddl.snowflake_table_ref("db", "raw", 'x"y') == '"DB"."RAW"."X""Y"'


def test_ddl_refuses_names_mysql_cannot_hold():
    with pytest.raises(ValueError):
        ddl.mysql_create_table("db", "t", [ColumnSpec("x" * 65, "int")])
    with pytest.raises(ValueError):
        ddl.mysql_create_table("db", "t", [ColumnSpec("trailing ", "int")])


def test_column_spec_types():
    spec = ColumnSpec("s", "string", 100)
    assert (spec.mysql_type, spec.snowflake_type) == ("VARCHAR(208)", "VARCHAR")


# ------------------------------------------------------------------------------------------ row size


def _types(sql: str) -> list[str]:
    return [re.match(r"  `[^`]+` (\S+) NULL", line).group(1) for line in _body_lines(sql)[:-4]]


def test_many_wide_strings_fit_mysqls_65535_byte_row():
    # 15 VARCHAR(1024) columns are 61,470 bytes plus the source key: over MySQL's row limit.
    columns = [ColumnSpec(f"s{i}", "string", 512) for i in range(15)]
    assert all(c.mysql_type == "VARCHAR(1024)" for c in columns)
    types = _types(ddl.mysql_create_table("d", "t", columns))
    assert types.count("TEXT") == 1
    assert types.count("VARCHAR(1024)") == 14


def test_many_short_strings_fit_innodbs_in_page_limit():
    # 200 VARCHAR(16) columns are 64 bytes each kept in the page: over InnoDB's ~8,126 bytes.
    columns = [ColumnSpec(f"s{i}", "string", 8) for i in range(200)]
    types = _types(ddl.mysql_create_table("d", "t", columns))
    assert set(types) == {"TEXT", "VARCHAR(16)"}
    assert _row_sizes(types)[1] <= ddl.INNODB_IN_PAGE_BYTES
    # Only as many as needed became TEXT: one VARCHAR more would not fit.
    one_fewer = types[:]
    one_fewer[one_fewer.index("TEXT")] = "VARCHAR(16)"
    assert _row_sizes(one_fewer)[1] > ddl.INNODB_IN_PAGE_BYTES


def test_the_widest_strings_become_text_first():
    columns = [ColumnSpec(f"n{i}", "bigint") for i in range(10)]
    columns += [ColumnSpec("small", "string", 5)] + [ColumnSpec(f"w{i}", "string", 512) for i in range(15)]
    types = ddl.mysql_table_types(columns)
    assert types[:11] == ["BIGINT"] * 10 + ["VARCHAR(16)"]


def test_small_tables_keep_their_sized_types():
    columns = [ColumnSpec(f"s{i}", "string", 100) for i in range(20)] + [ColumnSpec("n", "bigint")]
    assert ddl.mysql_table_types(columns) == [c.mysql_type for c in columns]


def _row_sizes(types: list[str]) -> tuple[int, int]:
    null_bytes = (len(types) + 7) // 8
    bookkeeping = ["VARCHAR(1024)", "BIGINT", "BIGINT"]
    server = sum(ddl._row_bytes(t)[0] for t in types + bookkeeping) + null_bytes
    in_page = sum(ddl._row_bytes(t)[1] for t in types + bookkeeping) + null_bytes + 24
    return server, in_page


column_specs = st.lists(
    st.one_of(
        st.builds(ColumnSpec, st.just("s"), st.just("string"), st.integers(0, 2000)),
        st.builds(ColumnSpec, st.just("n"), st.sampled_from(["bigint", "int", "double", "date", "timestamp"])),
        st.builds(ColumnSpec, st.just("d"), st.sampled_from(["decimal(38,10)", "decimal(5,2)"])),
    ),
    max_size=400,
)


@settings(max_examples=60, deadline=None)
@given(column_specs)
def test_new_tables_always_fit_when_strings_can_make_them_fit(columns):
    types = ddl.mysql_table_types(columns)
    assert len(types) == len(columns)
    for spec, chosen in zip(columns, types, strict=True):
        if chosen != spec.mysql_type:
            assert spec.type == "string" and chosen == "TEXT"  # only strings change, only to TEXT
    server, in_page = _row_sizes(types)
    assert server <= ddl.MYSQL_ROW_BYTES
    if any(t.startswith("VARCHAR(") and ddl._row_bytes(t)[1] > 22 for t in types):
        assert in_page <= ddl.INNODB_IN_PAGE_BYTES
