"""Snowflake resource: the same settings as dagster-snowflake's ``SnowflakeResource``, connecting
with ``snowflake.connector`` itself.

Why not ``dagster_snowflake``: importing it pulls in Snowpark and the Snowflake REST API library. Measured
on the 2-core machine (``/usr/bin/time python -c "import sf_platform.definitions, X"``): with the
connector alone a process reaches 266 MB and 5.8 s; with ``dagster_snowflake`` 329 MB and 9.7 s. The
platform uses nothing of it but ``get_connection``, which is ``snowflake.connector.connect`` with these
arguments; the connector itself is imported on first connection, so steps that never touch Snowflake
do not carry it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field


class SnowflakeDatabase(dg.ConfigurableResource):
    """The Snowflake database and schema the catalog tables are loaded into (real or fakesnow)."""

    account: str | None = Field(default=None, description="SF_SNOWFLAKE_ACCOUNT")
    user: str = Field(description="SF_SNOWFLAKE_USER")
    password: str | None = Field(default=None, description="SF_SNOWFLAKE_PASSWORD")
    database: str | None = Field(default=None, description="SF_SNOWFLAKE_DATABASE")
    schema_: str | None = Field(default=None, alias="schema", description="SF_SNOWFLAKE_SCHEMA")
    warehouse: str | None = Field(default=None, description="SF_SNOWFLAKE_WAREHOUSE")
    role: str | None = Field(default=None, description="SF_SNOWFLAKE_ROLE")
    additional_snowflake_connection_args: dict[str, Any] | None = Field(
        default=None,
        description="Passed to snowflake.connector.connect (the local stack's host/port/protocol)",
    )

    def connect_args(self) -> dict[str, Any]:
        settings = {
            "account": self.account,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "schema": self.schema_,
            "warehouse": self.warehouse,
            "role": self.role,
        }
        return {k: v for k, v in settings.items() if v is not None} | (self.additional_snowflake_connection_args or {})

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        """A ``snowflake.connector`` connection, committed on success and closed on exit (as
        dagster-snowflake's ``get_connection`` does)."""
        import snowflake.connector

        conn = snowflake.connector.connect(**self.connect_args())
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()
