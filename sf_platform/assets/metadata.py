"""Materialization metadata shared by every hop: table name, row count and column schema, the same way."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def table_metadata(table_name: str, row_count: int | None, columns: Iterable[tuple[str, str, str]]) -> dict:
    """The standard ``dagster/*`` entries; ``columns`` are (name, type, description) triples."""
    metadata: dict = {
        "dagster/table_name": table_name,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=n, type=t, description=d or None) for n, t, d in columns]
        ),
    }
    if row_count is not None:
        metadata["dagster/row_count"] = dg.MetadataValue.int(int(row_count))
    return metadata

def throughput(rows: int, seconds: float) -> dg.MetadataValue:
    return dg.MetadataValue.float(round(rows / seconds, 1) if seconds > 0 else 0.0)
