"""Upkeep of a hub table after a curate commit: compaction, snapshot expiry, orphan removal.

pyiceberg 0.12 has no compaction API and its snapshot expiry deletes no file (REPORT.md sections 5, 7):

- Compaction: when the table holds more data files than ``ceil(bytes / target) + 2``
  (``core.columnar.compaction_groups``), each partition's small files are read one at a time and
  rewritten into target-size files, and ONE snapshot removes the old and adds the new ones, tagged
  ``sf.operation=compaction`` and carrying the ledger pointer forward. Every row is kept (the rows are the
  files' rows, read in the current schema). A writer that committed meanwhile makes it fail (the files it
  removes must still be live): it is skipped, the next run tries again.
- Expiry: snapshots older than SF_HUB_SNAPSHOT_RETENTION_HOURS are removed from the metadata (the current
  one never). A target that loaded an expired snapshot reloads in full (``hub.changes``).
- Orphans: after an expiry, every object under the table's data/metadata prefix and its ledger folder that
  no retained snapshot, metadata file or ledger pointer references, and that is older than
  SF_HUB_ORPHAN_AGE_HOURS (a younger one may belong to a commit in flight), is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from sf_platform.core import columnar
from sf_platform.hub import ledger as hub_ledger
from sf_platform.hub.conventions import COMPACTION, orphan_age_hours, snapshot_retention_hours, table_prefix
from sf_platform.hub.files import DataFileWriter
from sf_platform.hub.writer import (
    commit_files,
    conflict_errors,
    delete_keys,
    live_files,
    partition_of,
    read_file,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table


@dataclass
class Upkeep:
    compacted_files: int = 0  # data files rewritten
    compaction_files_written: int = 0
    compaction_skipped: str = ""  # why a compaction did not commit
    snapshots_expired: int = 0
    orphans_removed: int = 0


def compact(table: Table, bucket, target_bytes: int, upkeep: Upkeep) -> Table:
    files = live_files(table)
    by_path = {f.file_path: f for f in files}
    groups = columnar.compaction_groups(
        [(f.file_path, partition_of(table, f), int(f.file_size_in_bytes)) for f in files], target_bytes
    )
    if not groups:
        return table
    writer = DataFileWriter(table, bucket, target_bytes=target_bytes)
    removed = []
    try:
        for group in groups:
            for path in group:
                data_file = by_path[path]
                removed.append(data_file)
                for batch in read_file(table, data_file):
                    writer.write(batch, partition_of(table, data_file))
        added = writer.close()
        summary = table.current_snapshot().summary if table.current_snapshot() else None
        table = commit_files(table, removed=removed, added=added, properties=hub_ledger.carried(summary, COMPACTION))
    except conflict_errors() as exc:
        writer.abort()
        upkeep.compaction_skipped = f"another writer committed first: {exc}"
        return table.refresh()
    except BaseException:
        writer.abort()
        raise
    upkeep.compacted_files, upkeep.compaction_files_written = len(removed), len(added)
    return table


def expire(table: Table, bucket, upkeep: Upkeep, *, now: datetime | None = None) -> Table:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=snapshot_retention_hours())
    before = len(table.snapshots())
    try:
        table.maintenance.expire_snapshots().older_than(cutoff).commit()
    except conflict_errors():
        return table.refresh()
    table = table.refresh()
    upkeep.snapshots_expired = before - len(table.snapshots())
    if upkeep.snapshots_expired:
        upkeep.orphans_removed = remove_orphans(table, bucket, now=now)
    return table


def remove_orphans(table: Table, bucket, *, now: datetime | None = None) -> int:
    """Delete the table's objects no retained snapshot references, older than the safety age."""
    now = now or datetime.now(UTC)
    referenced = _referenced(table)
    name = table.name()[-1]
    cutoff = now - timedelta(hours=orphan_age_hours())
    candidates = bucket.list_objects(table_prefix(name)) + bucket.list_objects(f"{hub_ledger.LEDGER_ROOT}/{name}/")
    orphans = [o["Key"] for o in candidates if o["Key"] not in referenced and o["LastModified"] < cutoff]
    delete_keys(bucket, orphans)
    return len(orphans)


def _referenced(table: Table) -> set[str]:
    """Keys (in the landing bucket) of every object the table's metadata still references: metadata
    files, manifest lists, manifests, data files and the ledgers named by retained snapshots."""
    paths = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    ledgers = set()
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        if key := (snapshot.summary or {}).get(hub_ledger.P_LEDGER):
            ledgers.add(key)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            # Live entries only: a file a retained snapshot deleted was live in its parent, which is
            # either retained too (and lists it) or expired (a target there reloads in full).
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                paths.add(entry.data_file.file_path)
    return {urlparse(p).path.lstrip("/") for p in paths if p} | ledgers
