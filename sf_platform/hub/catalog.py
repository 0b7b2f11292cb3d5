"""``Hub``: the pyiceberg Glue catalog of the curated database, built from our resources' settings.

The Glue client is our ``GlueCatalog`` resource's own (endpoint, region, credentials from the deployment's
environment or the default AWS chain); data files are read and written through pyiceberg's
``PyArrowFileIO`` with the landing bucket's S3 settings. Nothing is hard-coded: on the local stack both
point at the moto server, in production at AWS.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sf_platform.hub.conventions import curated_database, table_prefix
from sf_platform.resources.aws import GlueCatalog, LandingBucket

if TYPE_CHECKING:
    from pyiceberg.catalog.glue import GlueCatalog as IcebergGlueCatalog
    from pyiceberg.table import Table

    from sf_platform.hub.changes import HubChanges


def iceberg_catalog(glue: GlueCatalog, io_properties: dict[str, str | None]) -> IcebergGlueCatalog:
    """pyiceberg's Glue catalog over our Glue resource's client, with the given FileIO properties (those
    set: an unset one leaves pyiceberg to the default AWS chain)."""
    from pyiceberg.catalog.glue import GlueCatalog as IcebergGlueCatalog

    properties = {k: str(v) for k, v in io_properties.items() if v}
    return IcebergGlueCatalog("sf_hub", client=glue.client(), **properties)


class HubError(RuntimeError):
    """A hub table cannot be read or written; the message names the table and the reason."""


class Hub:
    """The hub tables of one deployment: ``(<curated database>, <table>)`` in the Glue catalog, data under
    ``s3://<landing bucket>/_curated/<table>/``."""

    def __init__(self, landing: LandingBucket, glue: GlueCatalog, database: str | None = None):
        from sf_platform import settings

        self.landing, self.glue = landing, glue
        self.database = database or curated_database(glue.database, settings.get("SF_GLUE_CURATED_DATABASE"))
        self._catalog: IcebergGlueCatalog | None = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------------- catalog

    def catalog(self) -> IcebergGlueCatalog:
        """The pyiceberg Glue catalog (built once per Hub; imports pyiceberg)."""
        with self._lock:
            if self._catalog is None:
                self._catalog = iceberg_catalog(self.glue, self.io_properties())
            return self._catalog

    def io_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties from the landing bucket's S3 settings."""
        s3 = self.landing.s3
        return {
            "s3.endpoint": s3.endpoint_url,
            "s3.region": s3.region_name,
            "s3.access-key-id": s3.aws_access_key_id,
            "s3.secret-access-key": s3.aws_secret_access_key,
            "s3.session-token": s3.aws_session_token,
            "s3.profile-name": s3.profile_name,
        }

    def identifier(self, table: str) -> tuple[str, str]:
        return (self.database, table)

    def location(self, table: str) -> str:
        return self.landing.uri(table_prefix(table)).rstrip("/")

    def load(self, table: str) -> Table | None:
        """The hub table, or None when it does not exist (never curated, or still a Hive-style table)."""
        from pyiceberg.exceptions import NoSuchIcebergTableError, NoSuchTableError

        try:
            return self.catalog().load_table(self.identifier(table))
        except (NoSuchTableError, NoSuchIcebergTableError):
            return None

    def require(self, table: str) -> Table:
        found = self.load(table)
        if found is None:
            raise HubError(f"{self.database}.{table} is not a hub (Iceberg) table yet: curate it first")
        return found

    # -------------------------------------------------------------------------------------- reader

    def rows_at(self, table: str, snapshot_id: int | None) -> int | None:
        """The hub table's rows at ``snapshot_id`` (its summary's ``total-records``; 0 for no snapshot);
        None when that snapshot is no longer in the table's metadata (expired)."""
        if snapshot_id is None:
            return 0
        snapshot = self.require(table).snapshot_by_id(snapshot_id)
        return None if snapshot is None or snapshot.summary is None else int(snapshot.summary["total-records"])

    def rows_now(self, table: str) -> int:
        """The hub table's rows at its current snapshot (0: not curated yet, or nothing committed)."""
        found = self.load(table)
        snapshot = found.current_snapshot() if found is not None else None
        return int((snapshot.summary or {}).get("total-records", 0)) if snapshot is not None else 0

    def current_snapshot_id(self, table: str) -> int | None:
        """The id of the hub table's current snapshot (None: no rows were ever committed)."""
        snapshot = self.require(table).current_snapshot()
        return snapshot.snapshot_id if snapshot is not None else None

    def changes_since(self, table: str, loaded_snapshot_id: int | None) -> HubChanges:
        """What a target at ``loaded_snapshot_id`` must delete and insert to equal the table now
        (``hub.changes``)."""
        from sf_platform.hub.changes import changes_since

        return changes_since(self.require(table), loaded_snapshot_id)
