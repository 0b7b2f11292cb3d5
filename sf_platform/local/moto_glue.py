"""moto server whose Glue ``UpdateTable`` honours ``VersionId`` the way AWS Glue does.

Stock moto (5.2) ignores ``VersionId``: two writers that both read version 3 both "commit", and one
Iceberg commit silently vanishes (docs/iceberg_spike/REPORT.md section 9: 3 of 30 concurrent appends
lost). AWS Glue refuses the second with ``ConcurrentModificationException``, which pyiceberg turns into
a retry on the new head. This module patches that compare-and-set into moto and starts ``moto.server``
(same arguments), so the local stack behaves as AWS: ``python -m sf_platform.local.moto_glue -H host -p port``.
"""

from __future__ import annotations

import threading

from moto.core.exceptions import JsonRESTError
from moto.glue import responses

_update_lock = threading.Lock()  # moto.server answers requests on threads: check and update atomically


class ConcurrentModificationException(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("ConcurrentModificationException", message)


def _update_table(self):
    """``GlueResponse.update_table`` with AWS Glue's optimistic lock on ``VersionId``."""
    database = self.parameters.get("DatabaseName")
    table_input = self.parameters.get("TableInput")
    version = self.parameters.get("VersionId")
    with _update_lock:
        table = self.glue_backend.get_table(database, table_input.get("Name"))
        if version is not None and str(version) != str(table._current_version):
            raise ConcurrentModificationException(
                f"Table {database}.{table_input.get('Name')}: VersionId {version} is not the current "
                f"version {table._current_version}"
            )
        table.update(table_input)
    return responses.EmptyResult()


def install() -> None:
    responses.GlueResponse.update_table = _update_table


def main() -> None:
    install()
    from moto.server import main as moto_main

    moto_main()


if __name__ == "__main__":
    main()
