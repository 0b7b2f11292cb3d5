"""The local stack's moto refuses a Glue UpdateTable with a stale VersionId (as AWS Glue does), so
concurrent Iceberg commits conflict instead of silently losing one."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def test_stale_glue_version_is_refused(glue):
    client = glue.client()
    table_input = {"Name": "t", "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}]}}
    glue.create_table(table_input)
    version = client.get_table(DatabaseName=glue.database, Name="t")["Table"]["VersionId"]
    client.update_table(DatabaseName=glue.database, TableInput=table_input, VersionId=version)
    with pytest.raises(ClientError) as refused:
        client.update_table(DatabaseName=glue.database, TableInput=table_input, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "ConcurrentModificationException"
    client.update_table(DatabaseName=glue.database, TableInput=table_input)  # no VersionId: unconditional
