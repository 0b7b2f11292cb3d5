"""Glue catalog entries for folders of Avro or Parquet files, written the way a crawler would.

One builder (``folder_table_input``) serves every such folder: AvroSerDe with the schema literal, or
ParquetHiveSerDe, with the same ``sf.*`` column parameters as crawled tables, so ``catalog.columns_of``
reads it back. An export folder (``exports/<table>/``, part files plus a hidden ``_manifest.json``) takes
its columns from the export's Arrow schema; curated tables (``columnar``) pass the raw table's columns
and partition keys. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from .catalog import CatalogColumn, CrawlStats, external_table, stats_parameters
from .exports import FIELD_SOURCE_NAME, FIELD_SOURCE_TYPE

AVRO_SERDE = "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
AVRO_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat"
AVRO_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
AVRO_CODEC = "deflate"
PARQUET_CODEC = "snappy"


def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue/Hive type of an exported column."""
    t = arrow_type
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    for test, name in (
        (pa.types.is_int64, "bigint"),
        (pa.types.is_int32, "int"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int8, "tinyint"),
        (pa.types.is_float64, "double"),
        (pa.types.is_float32, "float"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_date32, "date"),
        (pa.types.is_string, "string"),
        (pa.types.is_binary, "binary"),
    ):
        if test(t):
            return name
    raise ValueError(f"no Glue type for Arrow type {t}")


def export_columns(schema: pa.Schema) -> list[CatalogColumn]:
    columns = []
    for f in schema:
        meta = f.metadata or {}
        source = meta.get(FIELD_SOURCE_NAME, f.name.encode()).decode()
        source_type = meta.get(FIELD_SOURCE_TYPE, b"").decode()
        reason = f"exported from Snowflake column {source} {source_type}".strip()
        columns.append(CatalogColumn(name=f.name, type=glue_type(f.type), source_name=source, reason=reason))
    return columns


def export_table_input(*, schema: pa.Schema, **entry: Any) -> dict:
    """The TableInput of an export folder: ``folder_table_input`` with the export's Arrow schema as columns."""
    return folder_table_input(columns=export_columns(schema), **entry)


def folder_table_input(
    *,
    name: str,
    location: str,
    columns: Sequence[CatalogColumn],
    file_format: str,
    rows: int,
    objects: int,
    size_bytes: int,
    partition_keys: Sequence[str] = (),
    codec: str | None = None,
    avro_schema: Mapping | None = None,
    extra_parameters: Mapping[str, str] | None = None,
    description: str = "",
) -> dict:
    """A Glue TableInput for a folder of ``file_format`` (avro | parquet) files, partitioned by
    ``partition_keys`` (string-typed hive folders); ``codec`` defaults to the export's."""
    if file_format == "avro":
        if avro_schema is None:
            raise ValueError("an Avro table needs its Avro schema")
        literal = json.dumps(avro_schema, separators=(",", ":"), ensure_ascii=False)
        serde = {"SerializationLibrary": AVRO_SERDE, "Parameters": {"avro.schema.literal": literal}}
        formats = (AVRO_INPUT_FORMAT, AVRO_OUTPUT_FORMAT)
        codec = codec or AVRO_CODEC
        format_params = {"avro.schema.literal": literal}
    elif file_format == "parquet":
        serde = {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}}
        formats = (PARQUET_INPUT_FORMAT, PARQUET_OUTPUT_FORMAT)
        codec = codec or PARQUET_CODEC
        format_params = {}
    else:
        raise ValueError(f"unknown export format {file_format!r}")
    parameters = {
        "classification": file_format,
        "compressionType": codec,
        "typeOfData": "file",
        **stats_parameters(CrawlStats(objects, size_bytes, rows)),
        **format_params,
        **(extra_parameters or {}),
    }
    return external_table(
        name=name,
        description=description,
        parameters=parameters,
        partition_keys=partition_keys,
        columns=columns,
        location=location,
        formats=formats,
        serde=serde,
        compressed=True,
    )
