"""Glue catalog entries: from crawl results and registry overrides to a TableInput, and back.

Builds exactly what a Glue crawler writes for a CSV table (SerDe, formats, the crawler's parameters),
re-applies the registry's overrides on every crawl, and applies the table's schema change policy
against the entry already in the catalog. What we write is merged into the existing entry: fields we
do not manage (a Description, hand-added parameters, a column comment written by a person) survive,
and an entry that would not change is not written (no new table version). Pure: the Glue API calls
live in the resource.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
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
# Of a table's (or partition's) recordCount, the ragged rows (wrong number of fields); only set when
# there are some. recordCount counts them: the loaders load or quarantine every record of a file.
P_RAGGED_ROWS = "sf.ragged_rows"
# What Glue's crawler sets on a table it finds deleted with DeleteBehavior DEPRECATE_IN_DATABASE.
DEPRECATED = "DEPRECATED_BY_CRAWLER"

# Table (and storage descriptor) parameters a crawl owns: rewritten or removed on every crawl. Every
# other parameter, and every "sf."-less key someone adds by hand, is kept.
_CRAWLER_PARAMETERS = frozenset(
    {
        "classification",
        "delimiter",
        "skip.header.line.count",
        "compressionType",
        "typeOfData",
        "areColumnsQuoted",
        "columnsOrdered",
        "objectCount",
        "sizeKey",
        "recordCount",
        "averageRecordSize",
        DEPRECATED,
    }
)
_SERDE_PARAMETERS = frozenset({"field.delim", "separatorChar", "quoteChar", "escapeChar", "serialization.encoding"})
# The keys of a Glue TableInput / PartitionInput: what GetTable / GetPartitions return beyond these
# (CreateTime, VersionId, DatabaseName ...) cannot be written back.
TABLE_INPUT_KEYS = (
    "Name",
    "Description",
    "Owner",
    "LastAccessTime",
    "LastAnalyzedTime",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
)
PARTITION_INPUT_KEYS = ("Values", "LastAccessTime", "StorageDescriptor", "Parameters", "LastAnalyzedTime")

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
        if self.reason:
            # The whole reason; the Comment (255 characters at most) shows its start.
            params[P_REASON] = self.reason
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
            reason=params.get(P_REASON) or column.get("Comment", ""),
            override=params.get(P_OVERRIDE, ""),
        )


@dataclass(frozen=True)
class CrawlStats:
    object_count: int
    size_bytes: int
    record_count: int  # every data record, ragged rows included
    ragged_rows: int = 0  # of record_count, rows with the wrong number of fields


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
        reason = f"{override} ({_inferred(profile)})" if override else profile.reason
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


def _inferred(profile: ColumnProfile) -> str:
    """What the crawl inferred, for a column whose type the registry overrides. The inferred reason's
    misfits are the rows the loaders would quarantine under the *inferred* type; under the registry's
    type (a string takes every value) that claim does not hold, so it is left out: the type, and how
    many values did not fit it and which."""
    candidate = next((c for c in profile.candidates if c.type == profile.type and c.misfits), None)
    if candidate is None:
        return f"inferred {profile.type}: {profile.reason}"
    shown = ", ".join(repr(e if len(e) <= 40 else e[:37] + "...") for e in candidate.examples[:3])
    more = ", ..." if len(candidate.examples) > 3 else ""
    return (
        f"inferred {profile.type}, which {candidate.misfits:,} of {profile.non_null:,} values did not fit: "
        f"{shown}{more}"
    )


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
        # Applied even when nothing is new: the statistics (recordCount, max lengths) stay current.
        by_name = {c.name: c for c in crawled}
        kept = [_refresh_stats(c, by_name.get(c.name)) for c in existing]
        added = [c for c in crawled if c.name in diff.added]
        notes = tuple(
            f"kept {c}: {a} (crawl saw {b})" for c, a, b in diff.retyped if not by_name[c].override
        )
        return CatalogDecision(tuple(kept + added), diff, applied=True, notes=notes)
    return CatalogDecision(tuple(existing), diff, applied=False, notes=("UpdateBehavior LOG: schema change logged only",))


def _refresh_stats(old: CatalogColumn, crawled: CatalogColumn | None) -> CatalogColumn:
    if crawled is None:
        return old
    if crawled.override:  # the registry's word is re-applied after every crawl, whatever the policy
        return CatalogColumn(
            name=old.name,
            type=crawled.type,
            source_name=crawled.source_name,
            max_length=max(old.max_length, crawled.max_length),
            inferred_type=crawled.inferred_type,
            reason=crawled.reason,
            override=crawled.override,
        )
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
    description: str = "",
) -> dict:
    """A Glue TableInput for a CSV table, as a crawler writes it (plus our ``sf.*`` parameters).

    This is what a crawl manages; ``merge_table_input`` lays it over the entry already in the catalog.
    ``description`` is only used for a new entry (see ``merge_table_input``)."""
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
    parameters = {
        "classification": "csv",
        "delimiter": delimiter,
        "skip.header.line.count": "1" if fmt.header else "0",
        "compressionType": fmt.compression,
        "typeOfData": "file",
        "areColumnsQuoted": "true" if fmt.quoted else "false",
        "columnsOrdered": "true",
        **stats_parameters(stats),
        P_ENCODING: fmt.encoding,
        P_HEADER: "present" if fmt.header else "absent",
        P_LINE_TERMINATOR: json.dumps(fmt.line_terminator),
        **(extra_parameters or {}),
    }
    return external_table(
        name=name,
        description=description,
        parameters=parameters,
        partition_keys=partition_keys,
        columns=columns,
        location=location,
        formats=(TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT),
        serde=serde,
        compressed=fmt.compression != "none",
    )


def external_table(
    *,
    name: str,
    description: str,
    parameters: Mapping[str, str],
    partition_keys: Sequence[str],
    columns: Sequence[CatalogColumn],
    location: str,
    formats: tuple[str, str],
    serde: Mapping,
    compressed: bool,
) -> dict:
    """The Glue TableInput every external table here shares (CSV, Parquet, Avro): string-typed
    partition keys, and the table's parameters repeated on its storage descriptor, as a crawler writes."""
    return {
        "Name": name,
        **({"Description": description} if description else {}),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": dict(parameters),
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
        "StorageDescriptor": {
            "Columns": [c.to_glue() for c in columns],
            "Location": location,
            "InputFormat": formats[0],
            "OutputFormat": formats[1],
            "Compressed": compressed,
            "NumberOfBuckets": -1,
            "SerdeInfo": serde,
            "BucketColumns": [],
            "SortColumns": [],
            "Parameters": dict(parameters),
            "StoredAsSubDirectories": False,
        },
    }


def stats_parameters(stats: CrawlStats) -> dict[str, str]:
    """The crawler's size and count parameters, for a table or one partition (``sf.ragged_rows``
    only when some of the records are ragged)."""
    average = stats.size_bytes // stats.record_count if stats.record_count else 0
    return {
        "objectCount": str(stats.object_count),
        "sizeKey": str(stats.size_bytes),
        "recordCount": str(stats.record_count),
        "averageRecordSize": str(average),
        **({P_RAGGED_ROWS: str(stats.ragged_rows)} if stats.ragged_rows else {}),
    }


# ------------------------------------------------------------------------------------------ merging


def as_table_input(table: Mapping) -> dict:
    """A GetTable ``Table`` cut down to what UpdateTable accepts."""
    return {k: copy.deepcopy(table[k]) for k in TABLE_INPUT_KEYS if k in table}


def as_partition_input(partition: Mapping) -> dict:
    return {k: copy.deepcopy(partition[k]) for k in PARTITION_INPUT_KEYS if k in partition}


def is_managed_parameter(key: str) -> bool:
    return key in _CRAWLER_PARAMETERS or key.startswith("sf.")


def merge_table_input(existing: Mapping | None, managed: Mapping) -> dict:
    """The TableInput to write: what the crawl manages (``table_input``) over the existing entry.

    Managed: the columns (their type, our ``sf.*`` parameters and our reason as Comment), partition
    keys, location, formats, SerDe and its delimiter/quote/encoding parameters, the crawler's table
    parameters. Kept: every other field and parameter, a column Comment someone wrote by hand, and the
    Description (the registry's is used only while the entry has none)."""
    managed = copy.deepcopy(dict(managed))
    if existing is None:
        return managed
    merged = as_table_input(existing)
    description = merged.get("Description") or managed.get("Description")
    merged.update({k: v for k, v in managed.items() if k not in ("Parameters", "StorageDescriptor", "Description")})
    if description:
        merged["Description"] = description
    merged["Parameters"] = _merge_parameters(merged.get("Parameters"), managed["Parameters"], is_managed_parameter)
    merged["PartitionKeys"] = _merge_columns(existing.get("PartitionKeys") or [], managed["PartitionKeys"])
    merged["StorageDescriptor"] = _merge_storage(merged.get("StorageDescriptor") or {}, managed["StorageDescriptor"])
    return merged


def _merge_storage(old: Mapping, new: Mapping) -> dict:
    sd = {**old, **new}
    sd["Parameters"] = _merge_parameters(old.get("Parameters"), new["Parameters"], is_managed_parameter)
    old_serde, new_serde = old.get("SerdeInfo") or {}, new["SerdeInfo"]
    sd["SerdeInfo"] = {
        **old_serde,
        **new_serde,
        "Parameters": _merge_parameters(
            old_serde.get("Parameters"), new_serde["Parameters"], _SERDE_PARAMETERS.__contains__
        ),
    }
    sd["Columns"] = _merge_columns(old.get("Columns") or [], new["Columns"])
    return sd


def _merge_parameters(old: Mapping | None, new: Mapping, managed: Callable[[str], bool]) -> dict:
    return {**{k: v for k, v in (old or {}).items() if not managed(k)}, **new}


def _merge_columns(old: Sequence[Mapping], new: Sequence[Mapping]) -> list[dict]:
    """New columns, each keeping the hand-made parts (comment, parameters) of the old column of its name."""
    by_name = {c["Name"]: c for c in old}
    merged = []
    for column in new:
        previous = by_name.get(column["Name"])
        column = copy.deepcopy(dict(column))
        if previous is not None:
            params = _merge_parameters(previous.get("Parameters"), column.get("Parameters") or {}, is_managed_parameter)
            if params:
                column["Parameters"] = params
            if _hand_written_comment(previous):
                column["Comment"] = previous["Comment"]
        merged.append(column)
    return merged


def _hand_written_comment(column: Mapping) -> bool:
    comment = column.get("Comment") or ""
    params = column.get("Parameters") or {}
    if not comment:
        return False
    if P_REASON in params:
        return comment != params[P_REASON][:255]
    # Written before sf.reason existed: our columns carry sf.source_name, and their Comment is ours.
    return P_SOURCE_NAME not in params


def merge_partition_input(existing: Mapping | None, managed: Mapping) -> dict:
    """A PartitionInput: the managed one, keeping hand-added partition parameters."""
    managed = copy.deepcopy(dict(managed))
    if existing is None:
        return managed
    merged = {**as_partition_input(existing), **managed}
    merged["Parameters"] = _merge_parameters(existing.get("Parameters"), managed["Parameters"], is_managed_parameter)
    return merged


def partition_input(
    values: Sequence[str], location: str, table: Mapping, stats: CrawlStats | None
) -> dict:
    """A partition as a crawler registers it: the table's storage descriptor at the partition's
    folder, with the partition's own counts (``stats`` None: a partition whose files are gone).
    Columns carry name and type only: the table holds the explanations, so a new file elsewhere
    (which rewords them) does not rewrite every partition."""
    sd = copy.deepcopy(dict(table["StorageDescriptor"]))
    sd["Location"] = location
    sd["Columns"] = [{"Name": c["Name"], "Type": c["Type"]} for c in sd.get("Columns", [])]
    crawler = {k: v for k, v in (table.get("Parameters") or {}).items() if k in _CRAWLER_PARAMETERS and k != DEPRECATED}
    counts = stats_parameters(stats) if stats is not None else {}
    sd["Parameters"] = {**{k: v for k, v in sd.get("Parameters", {}).items() if k in _CRAWLER_PARAMETERS}, **counts}
    return {"Values": list(values), "StorageDescriptor": sd, "Parameters": {**crawler, **counts}}


def same_entry(old: Mapping, new: Mapping) -> bool:
    """Whether writing ``new`` over ``old`` would change anything (empty values count as absent)."""
    return _canonical(old) == _canonical(new)


def _canonical(value):
    if isinstance(value, Mapping):
        items = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, "", {}, [])}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def deprecated_input(existing: Mapping) -> dict | None:
    """The entry marked deprecated, as a crawler does when the table's data is gone; None if it is already."""
    if DEPRECATED in (existing.get("Parameters") or {}):
        return None
    updated = as_table_input(existing)
    updated["Parameters"] = {**(existing.get("Parameters") or {}), DEPRECATED: "true"}
    return updated


def explain_columns(columns: Sequence[CatalogColumn]) -> str:
    """A Markdown table: per column the catalog type, the inferred type, any override, and why."""
    rows = ["| column | type | inferred | override | why |", "|---|---|---|---|---|"]
    for c in columns:
        cells = [c.name, c.type, c.inferred_type or "-", c.override or "-", c.reason or "-"]
        rows.append("| " + " | ".join(x.replace("|", "/").replace("\n", " ") for x in cells) + " |")
    return "\n".join(rows)


def columns_of(table: Mapping) -> list[CatalogColumn]:
    """The data columns of a Glue table (GetTable's ``Table``), without partition keys."""
    return [CatalogColumn.from_glue(c) for c in table["StorageDescriptor"]["Columns"]]


def partition_keys_of(table: Mapping) -> list[str]:
    return [k["Name"] for k in table.get("PartitionKeys", [])]


def column_schema(columns: Sequence[CatalogColumn]) -> list[tuple[str, str, str]]:
    """(name, type, description) triples for Dagster's column schema metadata."""
    return [(c.name, c.type, c.reason) for c in columns]
