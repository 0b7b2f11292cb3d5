"""The crawl hop: one ``glue/<db>/<table>`` catalog entry per registered table, and its checks: the landed
files' columns fit it (``files_match_catalog``, blocking: the loads of that table wait), and every file
could be read (``files_readable``, a WARN naming the unreadable files; curation goes on without them)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from sf_platform.assets.hop import Hop, Outcome, TableRun, check_result
from sf_platform.assets.metadata import table_metadata
from sf_platform.assets.names import glue_key, s3_key
from sf_platform.core import drift
from sf_platform.core.catalog import column_schema, columns_of, explain_columns
from sf_platform.core.inference import UnreadableFile, profile_from_dict
from sf_platform.core.naming import is_data_key
from sf_platform.core.registry import TableConfig
from sf_platform.core.source_file import SourceReadError, open_source, read_head, read_layout
from sf_platform.hops.crawl import CrawlReport, crawl_table, profile_cache_key

FILES_MATCH_CATALOG = "files_match_catalog"
FILES_READABLE = "files_readable"
HEAD_BYTES = 64 * 1024
HEAD_READERS = 16  # file heads read at once (S3 round trips)


class CrawlHop(Hop):
    name = "crawl"
    requires = ("organize",)
    resource_keys = frozenset({"landing", "glue"})
    kinds = frozenset({"glue"})
    tracks_schema = True

    def __init__(self, glue_database: str):
        self.glue_database = glue_database

    def key(self, table: str) -> dg.AssetKey:
        return glue_key(self.glue_database, table)

    def deps(self, table: str) -> list[dg.AssetKey]:
        return [s3_key(table)]

    def table_name(self, table: str) -> str:
        return f"{self.glue_database}.{table}"

    def description(self, table: str, config: TableConfig) -> str:
        return f"Glue Data Catalog entry of {table}: dialect, encoding, header, types over all rows."

    def checks(self, table: str, config: TableConfig) -> list[dg.AssetCheckSpec]:
        return [
            dg.AssetCheckSpec(
                FILES_MATCH_CATALOG, asset=self.key(table), blocking=True,
                description="Columns in the landed files vs the catalog entry. Blocks the loads when files carry "
                "columns the catalog will not take (UpdateBehavior LOG), so no data is silently dropped.",
            ),
            dg.AssetCheckSpec(
                FILES_READABLE, asset=self.key(table),
                description="Every landed file could be read by the crawl (WARN naming the unreadable ones: "
                "S3 refusing the object, a bad gzip, not text, a row over SF_MAX_FIELD_BYTES). They are left "
                "out of recordCount and of the hub (so of every target), and curated once a readable version "
                "replaces them. A read that breaks off (reset, timeout, throttling, 5xx) is no verdict on a "
                "file: the crawl fails and the step retries it.",
            ),
        ]

    def materialize(self, run: TableRun) -> Outcome:
        glue = run.resources.glue
        report = crawl_table(run.resources.landing, glue, run.table, run.config)
        for key, problems in report.problems.items():
            run.log("warning", f"{key}: {'; '.join(problems)}")
        for note in report.notes:
            run.log("info", f"{run.table}: {note}")
        fmt = report.format
        metadata = table_metadata(f"{glue.database}.{run.table}", report.rows, column_schema(report.columns)) | {
            "action": report.action,
            "table_version": report.version,
            "files": report.files,
            "bytes": report.bytes,
            "bad_rows": report.bad_rows,
            "files_with_problems": len(report.problems),
            "profiles_reused": report.profiles_reused,
            "encoding": fmt.encoding if fmt else "",
            "delimiter": repr(fmt.delimiter) if fmt else "",
            "quoted": bool(fmt and fmt.quoted),
            "compression": fmt.compression if fmt else "",
            "header": report.header_reason,
            "partition_keys": list(report.partition_keys),
            "partitions_added": report.partitions_added,
            "partitions_updated": report.partitions_updated,
            "partitions_removed": report.partitions_removed,
            "schema_diff": dg.MetadataValue.json(report.diff.as_dict()),
            "notes": dg.MetadataValue.json(report.notes),
            "file_problems": dg.MetadataValue.json(report.problems),
            "unreadable_files": dg.MetadataValue.json(report.unreadable),
            "unreadable_file_count": len(report.unreadable),
            "columns_explained": dg.MetadataValue.md(explain_columns(report.columns)),
            "location": report.location,
        }
        for key, reason in report.unreadable.items():
            run.log("warning", f"{key}: unreadable, left out of the catalog counts and the loads: {reason}")
        if report.action == "empty" and glue.get_table(run.table) is None:
            run.log("info", f"{run.table}: no files yet; nothing to load")
            return Outcome(metadata, report, proceed=False)
        return Outcome(metadata, report)

    def evaluate(self, run: TableRun, names: set[str], outcome: Outcome | None) -> list[dg.AssetCheckResult]:
        results = []
        if FILES_MATCH_CATALOG in names:
            result = self._files_vs_catalog(run)
            if outcome is not None and not result.passed and result.severity == dg.AssetCheckSeverity.ERROR:
                outcome.proceed = False
                run.log("error", f"{run.table}: loads blocked by {FILES_MATCH_CATALOG}: {result.description}")
            results.append(result)
        if FILES_READABLE in names:
            results.append(self._files_readable(run, outcome))
        return results

    def _files_readable(self, run: TableRun, outcome: Outcome | None) -> dg.AssetCheckResult:
        """WARN naming the files the crawl could not read: from this materialization's crawl, or, run on
        its own, from the last crawl's profile cache (files whose version has not changed since)."""
        key = self.key(run.table)
        report = outcome.report if outcome is not None else None
        if isinstance(report, CrawlReport):
            unreadable, source = dict(report.unreadable), "this crawl"
        else:
            unreadable = _cached_unreadable(run.resources.landing, run.table)
            if unreadable is None:
                return dg.AssetCheckResult(
                    asset_key=key, check_name=FILES_READABLE, passed=True,
                    description="no crawl recorded yet: materialize the catalog entry to check the files",
                )
            source = "the last crawl"
        return files_readable_result(key, unreadable, source)
    def _files_vs_catalog(self, run: TableRun) -> dg.AssetCheckResult:
        landing, glue, config = run.resources.landing, run.resources.glue, run.config
        entry = glue.get_table(run.table)
        key = self.key(run.table)
        keys = [o["Key"] for o in landing.list_objects(f"{run.table}/") if is_data_key(o["Key"])]
        if entry is None and not keys:
            return dg.AssetCheckResult(asset_key=key, check_name=FILES_MATCH_CATALOG, passed=True,
                                       description="no files yet")
        if entry is None:
            return check_result(key, FILES_MATCH_CATALOG, drift.Drift(), "error", reason="no catalog entry")
        expected = {c.name: "column" for c in columns_of(entry)}
        with ThreadPoolExecutor(max_workers=HEAD_READERS, thread_name_prefix="sf-head") as pool:
            names = dict(zip(keys, pool.map(lambda k: _catalog_names(landing, k, config), keys), strict=True))
        seen = {n: "column" for columns in names.values() for n in columns}
        per_file = {k: extra for k, columns in names.items() if (extra := [n for n in columns if n not in expected])}
        found = drift.compare(expected, seen)
        level = drift.files_vs_catalog_severity(found, config.schema_change.update_behavior)
        return check_result(key, FILES_MATCH_CATALOG, found, level,
                            files_with_new_columns=dg.MetadataValue.json(per_file),
                            update_behavior=config.schema_change.update_behavior.value)


def files_readable_result(key: dg.AssetKey, unreadable: dict[str, str], source: str) -> dg.AssetCheckResult:
    """The ``files_readable`` result: passed, or a WARN naming how many files and the first one."""
    metadata = {"unreadable_files": dg.MetadataValue.json(unreadable), "unreadable_file_count": len(unreadable)}
    if not unreadable:
        return dg.AssetCheckResult(asset_key=key, check_name=FILES_READABLE, passed=True, metadata=metadata,
                                   description=f"every file was read by {source}")
    first = min(unreadable)
    more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
    return dg.AssetCheckResult(
        asset_key=key, check_name=FILES_READABLE, passed=False, severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=f"{len(unreadable)} file(s) unreadable, left out of the counts and loads: {first}{more}: "
        f"{unreadable[first]}"[:300],
    )


def _cached_unreadable(landing, table: str) -> dict[str, str] | None:
    """Key -> reason of the files the last crawl found unreadable and that are still there unchanged
    (from its profile cache); None when there is no cache. A file S3 refused is not cached (``read_failed``:
    not its bytes' fault, read again next crawl): only a materialization's check sees those."""
    data = landing.read_json(profile_cache_key(table))
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    current = {o["Key"]: o["ETag"] for o in landing.list_objects(f"{table}/") if is_data_key(o["Key"])}
    found = {}
    for name, entry in files.items():
        if not isinstance(entry, dict) or current.get(name) != entry.get("etag"):
            continue
        try:
            reason = profile_from_dict(entry["profile"]).unreadable
        except (KeyError, TypeError, ValueError):
            continue
        if reason:
            found[name] = reason
    return found


def _catalog_names(landing, key: str, config: TableConfig) -> list[str]:
    """The catalog names of a file's columns, from its first bytes; none for a file that cannot be read
    (``files_readable`` names it)."""
    try:
        body = open_source(landing, key)
        try:
            return list(read_layout(read_head(body, HEAD_BYTES), config, key=key).catalog_names)
        finally:
            body.close()
    except (SourceReadError, UnreadableFile):
        return []
