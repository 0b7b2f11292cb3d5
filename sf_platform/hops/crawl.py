"""Crawl hop: profile every file under a table prefix and write the table's Glue catalog entry.

What a Glue crawler does, but over all rows, with the registry's overrides re-applied on every crawl,
the table's schema change policy honoured, and hive partitions registered (with their own counts).
Counts are of every data record, ragged rows (wrong number of fields) included, since curation
keeps or quarantines each record; how many are ragged is the ``sf.ragged_rows`` parameter.
The entry is merged into the one in the catalog, so hand edits we do not manage survive, and it is
only written when it changes (each write is a new table version). Files with problems are reported
per file; the good files still make the entry. A file that cannot be read to its end (S3 refusing it,
bad gzip, not text, a row over SF_MAX_FIELD_BYTES) is unreadable: reported with its reason (worded by
``core/source_file.unreadable_reason``, as curation words it) in ``CrawlReport.unreadable``, left out
of the entry and of its counts (never counted as a short file). A GET or read that breaks off for a
reason that is not the file's (the connection reset, a timeout, throttling, a 5xx) is no verdict on the
file: the table's crawl fails with ``TransientReadError`` naming the object, which the table step
retries (``assets/hop.py``, ``core/transient.py``); what was profiled before it is cached for the retry.
Rows holding bytes that are not valid in the file's encoding are records (curation quarantines them).
Profiles are cached by ETag under
``_sf/profiles/<table>/`` so an unchanged file is not read again. Discovery (``discover_tables``)
profiles prefixes the registry does not know and proposes entries for them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from botocore.exceptions import ClientError

from sf_platform.core import catalog as cat
from sf_platform.core import inference
from sf_platform.core.identifiers import TABLE_NAME
from sf_platform.core.inference import CsvFormat, FileProfile, merge_columns
from sf_platform.core.naming import classify_loose_key, is_data_key, partition_location, partition_values
from sf_platform.core.registry import DeleteBehavior, Registry, TableConfig
from sf_platform.core.source_file import SourceReadError, open_source
from sf_platform.resources.aws import GlueCatalog, LandingBucket

# Files profiled at once: small ones 8 at a time, large ones (>= LARGE_OBJECT_BYTES) 2, in a pool of their
# own: a profile holds a few 4 MB blocks in flight, ~140 MB of RSS once a file is past ~10 blocks, so many
# large files at once add up. Crawling 4 lineitem objects of 190 MB (crawl_table, private moto, jemalloc
# pool): peak 571/534 MB two at a time vs 614/632 MB four at a time, no slower (3.4-4.7 s vs 4.4-5.0 s).
PROFILE_WORKERS = 8
LARGE_PROFILE_WORKERS = 2
LARGE_OBJECT_BYTES = 32 << 20
PROFILE_CACHE_ROOT = "_sf/profiles"


def profile_cache_key(table: str) -> str:
    """The S3 key of ``table``'s crawl profile cache (one home for its layout: crawl, checks, sensor)."""
    return f"{PROFILE_CACHE_ROOT}/{table}/profiles.json"
# Profiles made by other code are not reused: the cache is keyed by the inference module's source.
_INFERENCE_DIGEST = hashlib.sha256(Path(inference.__file__).read_bytes()).hexdigest()[:16]


@dataclass
class CrawlReport:
    table: str
    location: str
    files: int = 0
    bytes: int = 0
    rows: int = 0  # data records of the readable files: well-formed, ragged, undecodable (recordCount)
    bad_rows: int = 0  # of rows, the ragged ones (wrong number of fields; the catalog's sf.ragged_rows)
    columns: tuple[cat.CatalogColumn, ...] = ()
    partition_keys: tuple[str, ...] = ()
    partitions_added: int = 0
    partitions_updated: int = 0
    partitions_removed: int = 0  # deleted, or newly marked deprecated (see notes)
    format: CsvFormat | None = None
    header_reason: str = ""
    action: str = ""  # created | updated | unchanged | logged | deprecated | deleted | empty | unreadable
    version: str = ""  # the table's VersionId after the crawl
    diff: cat.SchemaDiff = field(default_factory=cat.SchemaDiff)
    notes: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)  # key -> problems
    unreadable: dict[str, str] = field(default_factory=dict)  # key -> why the file could not be read
    undecodable_rows: int = 0  # of rows, those holding bytes not valid in their file's encoding
    profiles_reused: int = 0  # unchanged files not read again (cached by ETag)

    def problem(self, key: str, text: str) -> None:
        self.problems.setdefault(key, []).append(text)


@dataclass(frozen=True)
class _File:
    key: str
    size: int
    profile: FileProfile
    partition: tuple[str, ...]  # partition values, in the table's key order
    folder: str  # the partition's folder (the table prefix when unpartitioned)


def crawl_table(
    bucket: LandingBucket, catalog: GlueCatalog, table: str, config: TableConfig, *, use_cache: bool = True
) -> CrawlReport:
    prefix = f"{table}/"
    report = CrawlReport(table=table, location=bucket.uri(prefix))
    catalog.ensure_database()
    existing = catalog.get_table(table)
    objects = [o for o in bucket.list_objects(prefix) if is_data_key(o["Key"])]
    if not objects:
        return _data_gone(report, catalog, existing, config)

    keys, objects = _partition_layout(objects, prefix, report)
    profiles = _profiles(bucket, table, objects, config, report, use_cache)
    files = [_file(o, profiles[o["Key"]], prefix, keys) for o in objects]
    for f in files:
        for text in f.profile.problems:
            report.problem(f.key, text)
        if f.profile.unreadable:
            report.unreadable[f.key] = f.profile.unreadable
    # The entry describes the files it was made from: unreadable ones are named, not counted.
    counted = [f for f in files if not f.profile.unreadable]
    report.files, report.bytes = len(counted), sum(f.size for f in counted)
    readable = [f for f in counted if f.profile.columns]
    if not readable:
        report.files, report.bytes = len(files), sum(f.size for f in files)
        return _unreadable(report, existing)

    fmt = _table_format([f.profile for f in readable])
    _note_format_outliers(readable, fmt, report)
    report.format, report.partition_keys = fmt, keys
    report.header_reason = next(
        f.profile.header_reason for f in readable if f.profile.format.header == fmt.header
    )
    # Ragged rows are records too: curation quarantines them, so recordCount = loaded + quarantined.
    report.rows = sum(_records(f.profile) for f in readable)
    report.bad_rows = sum(f.profile.bad_rows for f in readable)
    report.undecodable_rows = sum(f.profile.undecodable_rows for f in readable)
    entry = _write_table(catalog, table, config, existing, [f.profile for f in readable], report)
    if keys:
        _sync_partitions(bucket, catalog, table, entry, counted, config, report)
    return report


# ------------------------------------------------------------------------------------------ files


def _records(profile: FileProfile) -> int:
    """A file's data records: its well-formed, ragged and undecodable rows (header and blank lines not
    counted): what curation keeps plus what it quarantines."""
    return profile.records


def _partition_layout(
    objects: list[dict], prefix: str, report: CrawlReport
) -> tuple[tuple[str, ...], list[dict]]:
    """The table's partition keys (the layout most files share) and the files that follow it; the
    others are reported and left out (a partitioned table only reads its partitions' folders)."""
    layouts = {o["Key"]: tuple(partition_values(o["Key"], prefix)) for o in objects}
    keys = Counter(layouts.values()).most_common(1)[0][0]
    for key, layout in layouts.items():
        if layout != keys:
            report.problem(
                key,
                f"partition folders ({', '.join(layout) or 'none'}) differ from the table's "
                f"({', '.join(keys) or 'none'}); file left out of the catalog entry",
            )
    return keys, [o for o in objects if layouts[o["Key"]] == keys]


def _file(obj: dict, profile: FileProfile, prefix: str, keys: tuple[str, ...]) -> _File:
    values = partition_values(obj["Key"], prefix)
    return _File(
        key=obj["Key"],
        size=int(obj["Size"]),
        profile=profile,
        partition=tuple(values[k] for k in keys),
        folder=partition_location(obj["Key"], prefix),
    )


def _profiles(
    bucket: LandingBucket,
    table: str,
    objects: list[dict],
    config: TableConfig,
    report: CrawlReport,
    use_cache: bool,
) -> dict[str, FileProfile]:
    """Key -> profile of every object: from the cache when its ETag is unchanged, else read (in parallel).
    A read that breaks off (TransientReadError) cancels the reads not yet started and is raised once
    the running ones end, after every profile made is cached: the retry reads only the rest."""
    cache = _ProfileCache(bucket, table, config) if use_cache else None
    found = cache.lookup(objects) if cache else {}
    report.profiles_reused = len(found)
    missing = [o for o in objects if o["Key"] not in found]
    futures: list = []
    try:
        with (
            ThreadPoolExecutor(max_workers=PROFILE_WORKERS, thread_name_prefix="crawl") as small,
            ThreadPoolExecutor(max_workers=LARGE_PROFILE_WORKERS, thread_name_prefix="crawl-large") as large,
        ):
            futures = [
                (o["Key"], (large if _is_large(o) else small).submit(profile_object, bucket, o["Key"], config))
                for o in missing
            ]
            for key, future in futures:
                if future.exception() is not None:  # waits for it
                    for _, later in futures:
                        later.cancel()
                found[key] = future.result()  # raises its failure
    finally:
        found.update((k, f.result()) for k, f in futures if not f.cancelled() and f.exception() is None)
        if cache:
            note = cache.store([o for o in objects if o["Key"] in found], found)
            if note:
                report.notes.append(note)
    return found


def _is_large(obj: dict) -> bool:
    return int(obj.get("Size", 0)) >= LARGE_OBJECT_BYTES


def profile_object(bucket: LandingBucket, key: str, config: TableConfig) -> FileProfile:
    """One object's profile; S3 refusing it is a problem of that file (an unreadable profile, read again
    next crawl), not of the crawl. A GET or read that breaks off for a reason that is not the file's
    raises TransientReadError naming ``key`` (``source_file.open_source`` decides). The object is
    opened again when a quoted value with line breaks needs bigger blocks (see
    ``inference.iter_string_blocks``)."""
    opened = []

    def reopen():
        opened.append(open_source(bucket, key))
        return opened[-1]

    try:
        body = open_source(bucket, key)
    except SourceReadError as exc:
        return inference.failed_profile(exc.reason, header=config.header, read_failed=True)
    try:
        return inference.profile_stream(
            body,
            header=config.header,
            column_names=config.columns or None,
            encoding=config.encoding,
            reopen=reopen,
        )
    finally:
        for stream in (body, *opened):
            stream.close()


def crawled_etags(bucket: LandingBucket, table: str) -> dict[str, str]:
    """Object key -> ETag of every file the last crawl of ``table`` profiled (from its profile cache;
    {} when there is none): what the sensor's first tick takes as already done."""
    data = bucket.read_json(profile_cache_key(table))
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {k: str(v.get("etag", "")) for k, v in files.items() if isinstance(v, dict)}


class _ProfileCache:
    """Profiles by (key, ETag) in one small JSON object per table, valid for the same registry
    header/column settings and the same inference code."""

    def __init__(self, bucket: LandingBucket, table: str, config: TableConfig) -> None:
        self.bucket = bucket
        self.key = profile_cache_key(table)
        self.fingerprint = json.dumps(
            [_INFERENCE_DIGEST, config.header, list(config.columns), config.encoding, inference.max_field_bytes()]
        )
        self.entries: dict[str, dict] = {}

    def lookup(self, objects: Iterable[dict]) -> dict[str, FileProfile]:
        data = self.bucket.read_json(self.key)
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return {}
        self.entries = data.get("files") or {}
        found = {}
        for obj in objects:
            entry = self.entries.get(obj["Key"])
            if isinstance(entry, dict) and entry.get("etag") == obj["ETag"]:
                try:
                    found[obj["Key"]] = inference.profile_from_dict(entry["profile"])
                except (KeyError, TypeError, ValueError):
                    continue
        return found

    def store(self, objects: Iterable[dict], profiles: dict[str, FileProfile]) -> str:
        """Write the cache when it changed; -> a note when it could not be written."""
        entries = {
            o["Key"]: {"etag": o["ETag"], "profile": inference.profile_to_dict(profiles[o["Key"]])}
            for o in objects
            if not profiles[o["Key"]].read_failed  # not the file's bytes: read again next crawl
        }
        if entries == self.entries:
            return ""
        body = {"fingerprint": self.fingerprint, "files": entries}
        try:
            self.bucket.put(self.key, _json_bytes(body), ContentType="application/json")
        except ClientError as exc:
            return f"profile cache not written ({exc}); the next crawl reads every file again"
        return ""


def _json_bytes(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _table_format(profiles: list[FileProfile]) -> CsvFormat:
    """The format most files share; quoted when any file of that delimiter quotes (OpenCSVSerde reads
    unquoted fields too, LazySimpleSerDe would keep the quotes of the quoted files)."""
    fmt = Counter(p.format for p in profiles).most_common(1)[0][0]
    quoted = any(p.format.quoted for p in profiles if p.format.delimiter == fmt.delimiter)
    return replace(fmt, quoted=quoted)


def _note_format_outliers(files: list[_File], fmt: CsvFormat, report: CrawlReport) -> None:
    """A table has one delimiter, header setting and encoding; a file that differs is read right by
    curation (it sniffs each file) but not by engines reading the catalog entry."""
    for f in files:
        other = f.profile.format
        differs = []
        if other.delimiter != fmt.delimiter:
            differs.append(f"delimiter {other.delimiter!r} (table {fmt.delimiter!r})")
        if other.header != fmt.header:
            differs.append(
                f"header {'present' if other.header else 'absent'} (table {'present' if fmt.header else 'absent'})"
            )
        if _charset(other.encoding) != _charset(fmt.encoding):
            differs.append(f"encoding {other.encoding} (table {fmt.encoding})")
        if differs:
            report.problem(f.key, "format differs from the table's: " + ", ".join(differs))


def _charset(encoding: str) -> str:
    return "utf-8" if encoding.startswith("utf-8") else encoding


# ------------------------------------------------------------------------------------------ the table


def _write_table(
    catalog: GlueCatalog,
    table: str,
    config: TableConfig,
    existing: dict | None,
    profiles: list[FileProfile],
    report: CrawlReport,
) -> dict:
    """Decide, merge and write the table entry; -> the entry now in force (for the partitions)."""
    # Types decided over every file's values at the table's type_tolerance (misfits named in the reasons).
    merged = merge_columns(profiles, config.type_tolerance)
    crawled = cat.apply_overrides(merged, config)
    report.notes.extend(
        f"{c.name}: {c.reason}" for c, p in zip(crawled, merged, strict=True) if not c.override and inference.misfits(p)
    )
    clashing = [c.name for c in crawled if c.name in report.partition_keys]
    if clashing:
        # Partition keys are columns too; a data column with the same name would make the table invalid.
        report.notes.append(f"data column(s) {clashing} left out: a partition key has the same name")
        crawled = [c for c in crawled if c.name not in report.partition_keys]
    decision = cat.decide_columns(cat.columns_of(existing) if existing else None, crawled, config)
    report.diff, report.notes = decision.diff, report.notes + list(decision.notes)
    stats = cat.CrawlStats(
        object_count=report.files, size_bytes=report.bytes, record_count=report.rows, ragged_rows=report.bad_rows
    )
    managed = cat.table_input(
        name=table,
        location=report.location,
        columns=decision.columns,
        partition_keys=report.partition_keys,
        fmt=report.format,
        stats=stats,
        description=config.description,
    )
    entry = cat.merge_table_input(existing, managed)
    report.columns = decision.columns
    if existing is None:
        catalog.create_table(entry)
        report.action = "created"
    elif not decision.applied:
        report.action, report.columns, entry = "logged", tuple(cat.columns_of(existing)), existing
    elif cat.same_entry(cat.as_table_input(existing), entry):
        report.action, entry = "unchanged", existing
    else:
        catalog.update_table(entry)
        report.action = "updated"
    report.version = _version(catalog, table, existing, report.action)
    return entry


def _version(catalog: GlueCatalog, table: str, existing: dict | None, action: str) -> str:
    if action in ("created", "updated"):
        current = catalog.get_table(table)
        return str((current or {}).get("VersionId", ""))
    return str((existing or {}).get("VersionId", ""))


def _sync_partitions(
    bucket: LandingBucket,
    catalog: GlueCatalog,
    table: str,
    entry: dict,
    files: list[_File],
    config: TableConfig,
    report: CrawlReport,
) -> None:
    """Register new partitions, refresh changed ones, and apply the DeleteBehavior to vanished ones.
    New partitions are added whatever the schema change policy, as Glue's crawler does; existing ones
    follow the table only when the table itself was updated."""
    wanted = _partitions(files)
    present = {tuple(p["Values"]): p for p in catalog.partitions(table)}
    create, update = [], []
    for values, (folder, stats) in sorted(wanted.items()):
        partition = cat.partition_input(values, bucket.uri(folder), entry, stats)
        old = present.get(values)
        if old is None:
            create.append(partition)
        elif report.action != "logged":
            merged = cat.merge_partition_input(old, partition)
            if not cat.same_entry(cat.as_partition_input(old), merged):
                update.append(merged)
    errors = catalog.create_partitions(table, create) + catalog.update_partitions(table, update)
    report.partitions_added, report.partitions_updated = len(create), len(update)
    report.notes.extend(f"partition error: {e}" for e in errors)
    gone = [values for values in present if values not in wanted]
    if gone:
        _partitions_gone(catalog, table, [present[v] for v in gone], config, report)


def _partitions(files: list[_File]) -> dict[tuple[str, ...], tuple[str, cat.CrawlStats]]:
    """Partition values -> (folder, the partition's counts; records as for the table)."""
    folders: dict[tuple[str, ...], str] = {}
    counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for f in files:
        folders.setdefault(f.partition, f.folder)
        total = counts[f.partition]
        total[0] += 1
        total[1] += f.size
        total[2] += _records(f.profile)
        total[3] += f.profile.bad_rows
    return {v: (folders[v], cat.CrawlStats(*counts[v])) for v in folders}


def _partitions_gone(
    catalog: GlueCatalog, table: str, gone: list[dict], config: TableConfig, report: CrawlReport
) -> None:
    behavior = config.schema_change.delete_behavior
    values = [p["Values"] for p in gone]
    if behavior is DeleteBehavior.DELETE_FROM_DATABASE:
        catalog.delete_partitions(table, values)
        report.partitions_removed = len(gone)
        report.notes.append(f"{len(gone)} partition(s) no longer in S3 deleted")
    elif behavior is DeleteBehavior.DEPRECATE_IN_DATABASE:
        marked = [
            {
                **cat.as_partition_input(p),
                "Parameters": {**(p.get("Parameters") or {}), cat.DEPRECATED: "true"},
            }
            for p in gone
            if cat.DEPRECATED not in (p.get("Parameters") or {})
        ]
        report.notes.extend(f"partition error: {e}" for e in catalog.update_partitions(table, marked))
        report.partitions_removed = len(marked)
        report.notes.append(
            f"{len(gone)} partition(s) no longer in S3 marked {cat.DEPRECATED} ({len(marked)} this crawl)"
        )
    else:
        report.notes.append(f"{len(gone)} partition(s) no longer in S3 kept (DeleteBehavior LOG): {values}")


def _data_gone(
    report: CrawlReport, catalog: GlueCatalog, existing: dict | None, config: TableConfig
) -> CrawlReport:
    """No data files under the prefix at all: apply the DeleteBehavior to an existing entry."""
    behavior = config.schema_change.delete_behavior
    if existing is None:
        report.action = "empty"
        report.notes.append("no data files under the prefix; no catalog entry written")
        return report
    report.columns = tuple(cat.columns_of(existing))
    if behavior is DeleteBehavior.DELETE_FROM_DATABASE:
        catalog.delete_table(report.table)
        report.action = "deleted"
        report.notes.append(
            "no data files under the prefix; catalog entry deleted (DeleteBehavior DELETE_FROM_DATABASE)"
        )
    elif behavior is DeleteBehavior.DEPRECATE_IN_DATABASE:
        marked = cat.deprecated_input(existing)
        if marked is not None:  # marked once: a second crawl of the empty prefix makes no new version
            catalog.update_table(marked)
        report.action = "deprecated"
        report.notes.append(f"no data files under the prefix; catalog entry marked {cat.DEPRECATED}")
        report.version = _version(catalog, report.table, existing, "updated" if marked else "unchanged")
    else:
        report.action = "logged"
        report.notes.append("no data files under the prefix; catalog entry kept (DeleteBehavior LOG)")
        report.version = str(existing.get("VersionId", ""))
    return report


def _unreadable(report: CrawlReport, existing: dict | None) -> CrawlReport:
    """Files exist but none holds a row or a header: keep whatever the catalog has (never delete on bad input)."""
    report.action = "unreadable"
    report.notes.append(
        f"none of the {report.files} file(s) is readable (see file problems); catalog entry not changed"
    )
    if existing is not None:
        report.columns = tuple(cat.columns_of(existing))
        report.version = str(existing.get("VersionId", ""))
    return report


# ------------------------------------------------------------------------------------------ discovery


@dataclass
class Discovery:
    """Proposed registry entries for tables found in the bucket but missing from the registry."""

    bucket: str
    proposals: dict[str, dict] = field(default_factory=dict)  # table -> registry entry
    evidence: dict[str, list[str]] = field(default_factory=dict)  # table -> why (YAML comments)
    skipped: dict[str, str] = field(default_factory=dict)  # prefix or key -> reason

    def to_yaml(self) -> str:
        """The proposals as YAML to paste under ``tables:`` (indented two spaces), reasons as comments."""
        lines = [f"  # skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        for table, entry in self.proposals.items():
            lines += [f"  # {line}" for line in self.evidence.get(table, [])]
            text = yaml.dump(
                {table: entry}, Dumper=_ProposalDumper, sort_keys=False, allow_unicode=True, width=1000
            )
            lines += ["  " + line for line in text.splitlines()]
        return "\n".join(lines) + "\n" if lines else ""


class _ProposalDumper(yaml.SafeDumper):
    """Block mappings, but lists on one line (``columns: [a, b]``), as tables.yaml writes them."""


_ProposalDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)
)


def discover_tables(bucket: LandingBucket, registry: Registry, *, sample: int = 20) -> Discovery:
    """Table prefixes (and loose files organize would move) unknown to the registry, each profiled
    (its ``sample`` newest files) into a proposed entry. Nothing is written anywhere."""
    found = Discovery(bucket=bucket.bucket)
    candidates = _unregistered(bucket, registry, found)
    for table, objects in sorted(candidates.items()):
        newest = objects[-sample:]
        profiles = [profile_object(bucket, o["Key"], TableConfig()) for o in newest]
        readable = [p for p in profiles if p.columns]
        if not readable:
            problems = sorted({text for p in profiles for text in p.problems})
            found.skipped[f"{table}/"] = (
                f"no readable file among {len(newest)} profiled ({'; '.join(problems)})"
            )
            continue
        found.proposals[table], found.evidence[table] = _proposal(bucket, table, objects, newest, readable)
    return found


def _unregistered(bucket: LandingBucket, registry: Registry, found: Discovery) -> dict[str, list[dict]]:
    """Table -> its data objects (oldest first), for prefixes and loose files the registry lacks."""
    candidates: dict[str, list[dict]] = {}
    loose, prefixes = bucket.list_top_level()
    for prefix in prefixes:
        if prefix in registry.tables or prefix.startswith(("_", ".")):
            continue
        if not TABLE_NAME.match(prefix):
            found.skipped[f"{prefix}/"] = "not a valid table name (a-z first, then a-z, 0-9, _; max 64)"
            continue
        objects = [o for o in bucket.list_objects(f"{prefix}/") if is_data_key(o["Key"])]
        if objects:
            candidates[prefix] = objects
        else:
            found.skipped[f"{prefix}/"] = "no data files"
    for obj in loose:
        table = classify_loose_key(obj["Key"], registry.landing.loose_file_pattern).table
        if table and table not in registry.tables:
            candidates.setdefault(table, []).append(obj)
    return candidates


def _proposal(
    bucket: LandingBucket, table: str, objects: list[dict], sampled: list[dict], profiles: list[FileProfile]
) -> tuple[dict, list[str]]:
    fmt = _table_format(profiles)
    columns = merge_columns([p for p in profiles if p.format.header == fmt.header], TableConfig().type_tolerance)
    size = sum(int(o["Size"]) for o in objects)
    entry: dict = {
        "description": f"Discovered in s3://{bucket.bucket}/{table}/ ({len(objects)} file(s), {size} bytes); describe me.",
        # Pinned, so later files cannot flip the decision; change it if the guess is wrong.
        "header": "present" if fmt.header else "absent",
    }
    if not fmt.header:
        entry["columns"] = [c.name for c in columns]  # placeholders: name them
    header_reason = next(p.header_reason for p in profiles if p.format.header == fmt.header)
    evidence = [
        f"{table}: {len(sampled)} of {len(objects)} file(s) profiled: delimiter {fmt.delimiter!r}, "
        f"{fmt.encoding}, {'quoted' if fmt.quoted else 'unquoted'}, compression {fmt.compression}",
        header_reason,
    ]
    partition_keys = list(partition_values(objects[-1]["Key"], f"{table}/"))
    if partition_keys:
        evidence.append(f"hive partitions: {', '.join(partition_keys)}")
    evidence += [
        f"  {c.name}: {c.type} ({c.reason})"[:200] for c in cat.apply_overrides(columns, TableConfig())
    ]
    return entry, evidence
