"""MySQL / RDS resource: connections with LOAD DATA LOCAL INFILE enabled, utf8mb4 and strict mode.

Strict mode makes the server refuse a bad value instead of silently coercing it, which is what lets
the mirror promise "nothing silently coerced". With ``LOCAL`` the server cannot stop the client's
stream, so it downgrades data errors to warnings: ``load_data_local`` returns them, and the caller
must roll back when there are any.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import pymysql
from pydantic import Field

from sf_platform.core.identifiers import quote_mysql

STRICT_SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)
_PIPE_BYTES = 1 << 20  # a larger pipe buffer means fewer context switches between writer and reader
_F_SETPIPE_SZ = 1031  # Linux only


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


@dataclass(frozen=True)
class LoadResult:
    rows: int  # rows the server reports as loaded
    warnings: tuple[tuple, ...]  # (level, code, message), at most the first 20


def load_data_local(cursor, sql: str, args: Sequence, chunks: Iterable[bytes]) -> LoadResult:
    """Run ``LOAD DATA LOCAL INFILE %s ...`` (``sql``; ``args`` fill its other parameters) with the
    file's bytes taken from ``chunks`` as they are produced, through a named pipe, in bounded memory.

    ``chunks`` is consumed on a helper thread. If it raises, the server has received only part of the
    data: the error is re-raised here after the statement ends, and the caller must roll back.
    """
    with tempfile.TemporaryDirectory(prefix="sf_mysql_") as folder:
        fifo = os.path.join(folder, "rows.csv")
        os.mkfifo(fifo, 0o600)
        failure: list[BaseException] = []
        writer = threading.Thread(
            target=_feed, args=(fifo, chunks, failure), name="load-data-feed", daemon=True
        )
        writer.start()
        try:
            cursor.execute(sql, (fifo, *args))
        except BaseException:
            _unblock(fifo)
            writer.join()
            raise
        writer.join()
        if failure:
            raise failure[0]
        rows = cursor.rowcount
        warnings: tuple = ()
        if cursor.warning_count:
            cursor.execute("SHOW WARNINGS LIMIT 20")
            warnings = tuple(cursor.fetchall())
    return LoadResult(rows, warnings)


def _feed(fifo: str, chunks: Iterable[bytes], failure: list[BaseException]) -> None:
    try:
        with open(fifo, "wb", buffering=0) as sink:
            _grow_pipe(sink.fileno())
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[sink.write(view) :]
    except BaseException as exc:  # handed to the caller, which raises it after the statement ends
        failure.append(exc)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, OSError):
        pass  # not Linux, or over the system's limit: the default buffer works, a little slower


def _unblock(fifo: str) -> None:
    """Open and close the pipe's read end, so a writer still waiting in open() fails instead of hanging."""
    try:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        pass
