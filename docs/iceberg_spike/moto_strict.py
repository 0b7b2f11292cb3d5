"""moto server whose Glue UpdateTable enforces VersionId like real AWS Glue (ConcurrentModificationException).
Usage: python moto_strict.py -H 127.0.0.1 -p PORT"""
import threading
from moto.core.exceptions import JsonRESTError
from moto.glue import models, responses

_lock = threading.Lock()

def update_table(self):  # GlueResponse.update_table with VersionId check (atomic compare-and-set)
    database_name = self.parameters.get("DatabaseName")
    table_input = self.parameters.get("TableInput")
    version_id = self.parameters.get("VersionId")
    with _lock:
        table = self.glue_backend.get_table(database_name, table_input.get("Name"))
        if version_id is not None and str(version_id) != str(table._current_version):
            raise JsonRESTError("ConcurrentModificationException",
                                f"VersionId {version_id} != current {table._current_version}")
        table.update(table_input)
    return responses.EmptyResult()

responses.GlueResponse.update_table = update_table

if __name__ == "__main__":
    from moto.server import main
    main()
