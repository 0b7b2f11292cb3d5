"""MySQL / RDS resource: connections with LOAD DATA LOCAL INFILE enabled, utf8mb4 and strict mode.

Strict mode makes the server refuse a bad value instead of silently coercing it, which is what lets
the mirror promise "nothing silently coerced".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pymysql
from pydantic import Field

from sf_platform.core.identifiers import quote_mysql

STRICT_SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"


class MySQLResource(dg.ConfigurableResource):
    """A MySQL-compatible server (RDS MySQL, MariaDB) the catalog tables are mirrored into."""

    host: str = Field(description="SF_MYSQL_HOST")
    port: int = Field(default=3306, description="SF_MYSQL_PORT")
    user: str = Field(description="SF_MYSQL_USER")
    password: str = Field(default="", description="SF_MYSQL_PASSWORD")
    database: str = Field(description="SF_MYSQL_DATABASE: the database the mirrors live in")
    connect_timeout: int = 10

    @contextmanager
    def connect(self, *, database: bool = True) -> Iterator[pymysql.connections.Connection]:
        """A transaction-capable connection (autocommit off), closed afterwards."""
        conn = pymysql.connect(
            host=self.host,
            port=int(self.port),
            user=self.user,
            password=self.password,
            database=self.database if database else None,
            charset="utf8mb4",
            local_infile=True,
            autocommit=False,
            connect_timeout=self.connect_timeout,
            init_command=f"SET SESSION sql_mode='{STRICT_SQL_MODE}', time_zone='+00:00'",
        )
        try:
            yield conn
        finally:
            conn.close()

    def ensure_database(self) -> None:
        with self.connect(database=False) as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote_mysql(self.database)} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            conn.commit()

    def fetch_all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
