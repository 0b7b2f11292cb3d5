"""Glue catalog entries: from crawl results and registry overrides to a TableInput, and back.

Builds exactly what a Glue crawler writes for a CSV table (SerDe, formats, the crawler's parameters),
re-applies the registry's overrides on every crawl, and applies the table's schema change policy
against the entry already in the catalog. Pure: the Glue API calls live in the resource.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import types as glue_types
from .identifiers import normalize_names
from .inference import ColumnProfile, CsvFormat
from .registry import TableConfig, UpdateBehavior

LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

# Column/table parameters this platform adds; the prefix keeps them apart from Glue's own.
P_SOURCE_NAME = "sf.source_name"
P_MAX_LENGTH = "sf.max_length"
P_INFERRED = "sf.inferred_type"
P_REASON = "sf.reason"
P_OVERRIDE = "sf.override"
P_ENCODING = "sf.encoding"
P_HEADER = "sf.header"
P_LINE_TERMINATOR = "sf.line_terminator"

_JAVA_CHARSET = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "cp949": "MS949"}


@dataclass(frozen=True)
class CatalogColumn:
    """A column as the catalog holds it: safe name, Glue type, and what the crawl learned."""

    name: str
    type: str
    source_name: str = ""
    max_length: int = 0
    inferred_type: str = ""
    reason: str = ""
    override: str = ""

    def to_glue(self) -> dict:
        params = {P_SOURCE_NAME: self.source_name, P_MAX_LENGTH: str(self.max_length)}
        if self.inferred_type:
            params[P_INFERRED] = self.inferred_type
        if self.override:
            params[P_OVERRIDE] = self.override
        return {"Name": self.name, "Type": self.type, "Comment": self.reason[:255], "Parameters": params}

    @classmethod
    def from_glue(cls, column: Mapping) -> CatalogColumn:
        params = column.get("Parameters") or {}
        return cls(
            name=column["Name"],
            type=column["Type"],
            source_name=params.get(P_SOURCE_NAME, column["Name"]),
            max_length=int(params.get(P_MAX_LENGTH, 0) or 0),
            inferred_type=params.get(P_INFERRED, ""),
            reason=column.get("Comment", ""),
            override=params.get(P_OVERRIDE, ""),
        )


@dataclass(frozen=True)
class CrawlStats:
    object_count: int
    size_bytes: int
    record_count: int


@dataclass(frozen=True)
class SchemaDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, old type, new type)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped)

    def as_dict(self) -> dict:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": [f"{c}: {a} -> {b}" for c, a, b in self.retyped],
        }


@dataclass(frozen=True)
class CatalogDecision:
    """What the crawl will write: the columns, the diff against the catalog, and whether it is applied."""

    columns: tuple[CatalogColumn, ...]
    diff: SchemaDiff
    applied: bool
    notes: tuple[str, ...] = field(default=())


def source_to_catalog_names(source_names: Sequence[str], config: TableConfig) -> list[str]:
    """The catalog names for a file's header (normalized, then renamed by the registry)."""
    names = [config.renames.get(n, n) for n in normalize_names(source_names)]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"registry renames give two columns the same name: {clashes}; fix `renames`")
    return names


def apply_overrides(profiles: Sequence[ColumnProfile], config: TableConfig) -> list[CatalogColumn]:
    """Crawl profiles to catalog columns with the registry's renames, forced strings and types."""
    names = source_to_catalog_names([p.name for p in profiles], config)
    columns = []
    for name, profile in zip(names, profiles, strict=True):
        type_string, override = profile.type, ""
        if name in config.types:
            type_string, override = str(glue_types.parse(config.types[name])), "type set by registry"
        elif config.forces_string(name) and profile.type != "string":
            type_string, override = "string", "forced to string by registry"
        reason = profile.reason if not override else f"{override} (inferred {profile.type}: {profile.reason})"
        columns.append(
            CatalogColumn(
                name=name,
                type=type_string,
                source_name=profile.name,
                max_length=profile.max_length,
                inferred_type=profile.type,
                reason=reason,
                override=override,
            )
        )
    return columns


def diff_columns(old: Sequence[CatalogColumn], new: Sequence[CatalogColumn]) -> SchemaDiff:
    old_types = {c.name: c.type for c in old}
    new_types = {c.name: c.type for c in new}
    return SchemaDiff(
        added=tuple(n for n in new_types if n not in old_types),
        removed=tuple(n for n in old_types if n not in new_types),
        retyped=tuple((n, old_types[n], t) for n, t in new_types.items() if n in old_types and old_types[n] != t),
    )


def decide_columns(
    existing: Sequence[CatalogColumn] | None, crawled: Sequence[CatalogColumn], config: TableConfig
) -> CatalogDecision:
    """Apply the table's UpdateBehavior to the crawled columns against the catalog's current ones."""
    if existing is None:
        return CatalogDecision(tuple(crawled), diff_columns([], crawled), applied=True)
    diff = diff_columns(existing, crawled)
    behavior = config.schema_change.update_behavior
    if diff.empty:
        # Refresh the statistics (max lengths, reasons) even when the schema is unchanged.
        return CatalogDecision(tuple(crawled), diff, applied=True)
    if behavior is UpdateBehavior.UPDATE_IN_DATABASE:
        return CatalogDecision(tuple(crawled), diff, applied=True)
    if behavior is UpdateBehavior.MERGE_NEW_COLUMNS:
        by_name = {c.name: c for c in crawled}
        kept = [_refresh_stats(c, by_name.get(c.name)) for c in existing]
        added = [c for c in crawled if c.name in diff.added]
        notes = tuple(f"kept {c}: {a} (crawl saw {b})" for c, a, b in diff.retyped)
        return CatalogDecision(tuple(kept + added), diff, applied=bool(added), notes=notes)
    return CatalogDecision(tuple(existing), diff, applied=False, notes=("UpdateBehavior LOG: schema change logged only",))


def _refresh_stats(old: CatalogColumn, crawled: CatalogColumn | None) -> CatalogColumn:
    if crawled is None:
        return old
    return CatalogColumn(
        name=old.name,
        type=old.type,
        source_name=old.source_name,
        max_length=max(old.max_length, crawled.max_length),
        inferred_type=crawled.inferred_type,
        reason=old.reason,
        override=old.override,
    )


def table_input(
    *,
    name: str,
    location: str,
    columns: Sequence[CatalogColumn],
    partition_keys: Sequence[str],
    fmt: CsvFormat,
    stats: CrawlStats,
    extra_parameters: Mapping[str, str] | None = None,
) -> dict:
    """A Glue TableInput for a CSV table, as a crawler writes it (plus our ``sf.*`` parameters)."""
    delimiter = fmt.delimiter
    if fmt.quoted:
        serde = {
            "SerializationLibrary": OPEN_CSV_SERDE,
            "Parameters": {"separatorChar": delimiter, "quoteChar": '"', "escapeChar": "\\"},
        }
    else:
        serde = {"SerializationLibrary": LAZY_SIMPLE_SERDE, "Parameters": {"field.delim": delimiter}}
    if fmt.encoding not in ("utf-8", "utf-8-sig"):
        serde["Parameters"]["serialization.encoding"] = _JAVA_CHARSET.get(fmt.encoding, fmt.encoding)
    average = stats.size_bytes // stats.record_count if stats.record_count else 0
    parameters = {
        "classification": "csv",
        "delimiter": delimiter,
        "skip.header.line.count": "1" if fmt.header else "0",
        "compressionType": fmt.compression,
        "typeOfData": "file",
        "areColumnsQuoted": "true" if fmt.quoted else "false",
        "columnsOrdered": "true",
        "objectCount": str(stats.object_count),
        "sizeKey": str(stats.size_bytes),
        "recordCount": str(stats.record_count),
        "averageRecordSize": str(average),
        P_ENCODING: fmt.encoding,
        P_HEADER: "present" if fmt.header else "absent",
        P_LINE_TERMINATOR: json.dumps(fmt.line_terminator),
        **(extra_parameters or {}),
    }
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
        "StorageDescriptor": {
            "Columns": [c.to_glue() for c in columns],
            "Location": location,
            "InputFormat": TEXT_INPUT_FORMAT,
            "OutputFormat": TEXT_OUTPUT_FORMAT,
            "Compressed": fmt.compression != "none",
            "NumberOfBuckets": -1,
            "SerdeInfo": serde,
            "BucketColumns": [],
            "SortColumns": [],
            "Parameters": dict(parameters),
            "StoredAsSubDirectories": False,
        },
    }


def columns_of(table: Mapping) -> list[CatalogColumn]:
    """The data columns of a Glue table (GetTable's ``Table``), without partition keys."""
    return [CatalogColumn.from_glue(c) for c in table["StorageDescriptor"]["Columns"]]


def partition_keys_of(table: Mapping) -> list[str]:
    return [k["Name"] for k in table.get("PartitionKeys", [])]


def column_schema(columns: Sequence[CatalogColumn]) -> list[tuple[str, str, str]]:
    """(name, type, description) triples for Dagster's column schema metadata."""
    return [(c.name, c.type, c.reason) for c in columns]
