"""Snowflake resource: dagster-snowflake's ``SnowflakeResource``, imported only by the steps that connect.

Importing ``dagster_snowflake`` pulls in Snowpark and the Snowflake REST API library: about 150 MB of
resident memory and seconds of start-up. Every step process loads the whole code location, so with the
import at module level a MySQL mirror or crawl step would carry it too. This resource holds the same
settings and builds the real ``SnowflakeResource`` on first connection.
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

    def snowflake_resource(self):
        """The dagster-snowflake resource with these settings."""
        from dagster_snowflake import SnowflakeResource

        settings = {
            "account": self.account,
            "user": self.user,
            "password": self.password,
            "database": self.database,
            "schema": self.schema_,
            "warehouse": self.warehouse,
            "role": self.role,
            "additional_snowflake_connection_args": self.additional_snowflake_connection_args,
        }
        return SnowflakeResource(**{k: v for k, v in settings.items() if v is not None})

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        """A ``snowflake.connector`` connection, closed on exit."""
        with self.snowflake_resource().get_connection() as conn:
            yield conn
