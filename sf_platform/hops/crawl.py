"""Crawl hop: profile every file under a table prefix and write the table's Glue catalog entry.

What a Glue crawler does, but over all rows, with the registry's overrides re-applied on every crawl,
the table's schema change policy honoured, and hive partitions registered. Files with problems are
reported per file; the good files still make the entry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sf_platform.core import catalog as cat
from sf_platform.core.inference import CsvFormat, FileProfile, merge_columns, profile_stream
from sf_platform.core.naming import is_data_key, partition_values
from sf_platform.core.registry import DeleteBehavior, TableConfig
from sf_platform.resources.aws import GlueCatalog, LandingBucket


@dataclass
class CrawlReport:
    table: str
    location: str
    files: int = 0
    bytes: int = 0
    rows: int = 0
    bad_rows: int = 0
    columns: tuple[cat.CatalogColumn, ...] = ()
    partition_keys: tuple[str, ...] = ()
    partitions_added: int = 0
    partitions_removed: int = 0
    format: CsvFormat | None = None
    header_reason: str = ""
    action: str = ""  # created | updated | unchanged | logged | deprecated | deleted | empty
    diff: cat.SchemaDiff = field(default_factory=cat.SchemaDiff)
    notes: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)  # key -> problems


def crawl_table(bucket: LandingBucket, catalog: GlueCatalog, table: str, config: TableConfig) -> CrawlReport:
    prefix = f"{table}/"
    report = CrawlReport(table=table, location=bucket.uri(prefix))
    catalog.ensure_database()
    existing = catalog.get_table(table)
    objects = [o for o in bucket.list_objects(prefix) if is_data_key(o["Key"])]

    profiles: list[FileProfile] = []
    partition_keys: list[str] = []
    partition_paths: dict[tuple[str, ...], str] = {}
    file_partitions: list[dict[str, str]] = []
    for obj in objects:
        key = obj["Key"]
        body = bucket.open(key)
        try:
            profile = profile_stream(body, header=config.header, column_names=config.columns or None)
        finally:
            body.close()
        report.files += 1
        report.bytes += int(obj["Size"])
        if profile.problems:
            report.problems[key] = list(profile.problems)
        parts = partition_values(key, prefix)
        file_partitions.append(parts)
        for name in parts:
            if name not in partition_keys:
                partition_keys.append(name)
        if profile.rows == 0 and not profile.columns:
            continue
        profiles.append(profile)
        report.rows += profile.rows
        report.bad_rows += profile.bad_rows
        folder = key[: key.rfind("/") + 1]
        partition_paths.setdefault(tuple(parts.get(k, "") for k in partition_keys), folder)

    if not profiles:
        return _no_data(report, catalog, existing, config)

    # Partition keys are columns too; a data column with the same name would make the table invalid.
    crawled = [c for c in cat.apply_overrides(merge_columns(profiles), config) if c.name not in partition_keys]
    report.format = _table_format(profiles)
    report.header_reason = profiles[0].header_reason
    report.partition_keys = tuple(partition_keys)

    decision = cat.decide_columns(cat.columns_of(existing) if existing else None, crawled, config)
    report.diff, report.notes = decision.diff, list(decision.notes)
    stats = cat.CrawlStats(object_count=report.files, size_bytes=report.bytes, record_count=report.rows)
    table_input = cat.table_input(
        name=table,
        location=report.location,
        columns=decision.columns,
        partition_keys=partition_keys,
        fmt=report.format,
        stats=stats,
    )
    report.columns = decision.columns
    if existing is None:
        catalog.create_table(table_input)
        report.action = "created"
    elif not decision.applied:
        report.action = "logged"
        report.columns = tuple(cat.columns_of(existing))
    elif _differs(existing, table_input):
        catalog.update_table(table_input)
        report.action = "updated"
    else:
        report.action = "unchanged"

    if partition_keys and report.action != "logged":
        _sync_partitions(bucket, catalog, table, table_input, partition_paths, config, report)
    return report


def _table_format(profiles: list[FileProfile]) -> CsvFormat:
    """The format most files share (a table's files normally agree; outliers are still read per file)."""
    return Counter(p.format for p in profiles).most_common(1)[0][0]


def _differs(existing: dict, table_input: dict) -> bool:
    """Compare only what we write, so an unchanged crawl does not create a new table version."""
    if existing.get("Parameters", {}) != table_input["Parameters"]:
        return True
    if [k["Name"] for k in existing.get("PartitionKeys", [])] != [k["Name"] for k in table_input["PartitionKeys"]]:
        return True
    old_sd, new_sd = existing["StorageDescriptor"], table_input["StorageDescriptor"]
    old_cols = [(c["Name"], c["Type"], c.get("Parameters", {})) for c in old_sd["Columns"]]
    new_cols = [(c["Name"], c["Type"], c.get("Parameters", {})) for c in new_sd["Columns"]]
    return old_cols != new_cols or old_sd.get("SerdeInfo") != new_sd["SerdeInfo"]


def _sync_partitions(bucket, catalog, table, table_input, paths, config, report) -> None:
    present = {tuple(p["Values"]) for p in catalog.partitions(table)}
    wanted = dict(paths)
    base_sd = table_input["StorageDescriptor"]
    inputs = []
    for values, folder in sorted(wanted.items()):
        if values in present:
            continue
        sd = {**base_sd, "Location": bucket.uri(folder)}
        inputs.append({"Values": list(values), "StorageDescriptor": sd, "Parameters": {}})
    errors = catalog.create_partitions(table, inputs)
    report.partitions_added = len(inputs) - len(errors)
    report.notes.extend(f"partition error: {e}" for e in errors)
    gone = [v for v in present if v not in wanted]
    if gone and config.schema_change.delete_behavior is DeleteBehavior.DELETE_FROM_DATABASE:
        catalog.delete_partitions(table, gone)
        report.partitions_removed = len(gone)
    elif gone:
        report.notes.append(f"{len(gone)} partition(s) no longer in S3 kept ({config.schema_change.delete_behavior.value})")


def _no_data(report: CrawlReport, catalog: GlueCatalog, existing: dict | None, config: TableConfig) -> CrawlReport:
    """The prefix has no readable data: apply the DeleteBehavior to an existing entry."""
    behavior = config.schema_change.delete_behavior
    if existing is None:
        report.action = "empty"
        report.notes.append("no readable data files under the prefix; no catalog entry written")
    elif behavior is DeleteBehavior.DELETE_FROM_DATABASE:
        catalog.delete_table(report.table)
        report.action = "deleted"
    elif behavior is DeleteBehavior.DEPRECATE_IN_DATABASE:
        updated = {k: v for k, v in existing.items() if k in _TABLE_INPUT_KEYS}
        updated["Parameters"] = {**existing.get("Parameters", {}), "DEPRECATED_BY_CRAWLER": "true"}
        catalog.update_table(updated)
        report.action = "deprecated"
    else:
        report.action = "logged"
        report.notes.append("no readable data files under the prefix; catalog entry kept (DeleteBehavior LOG)")
    if existing is not None:
        report.columns = tuple(cat.columns_of(existing))
    return report


_TABLE_INPUT_KEYS = {
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "TableType",
    "Parameters",
}
