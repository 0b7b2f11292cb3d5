"""The hub's incremental reader: what a target (MySQL, Snowflake) must delete and insert to move from the
snapshot it loaded to the table's current one.

Why not pyiceberg's ``incremental_append_scan``: it reads only APPEND snapshots, so it misses removed
files and copy-on-write rewrites, and returns rows deleted later in the window
(docs/iceberg_spike/REPORT.md section 4). Instead the manifests of every snapshot after the loaded one
are diffed at file level, oldest first:

- a file added in the window is inserted, unless a later snapshot of the window removed it again;
- a file removed in the window that the target holds: its keys are deleted from the target;
- every key of an added file is deleted too before inserting (a copy-on-write delete moves the rows of
  other objects that shared a file with a replaced one into a new file: the target must not hold them
  twice);
- a compaction snapshot (``sf.operation=compaction``) that only rewrites files the target already holds
  changes no row: its new files count as held, nothing is deleted or inserted. (Our compaction commits
  one snapshot that removes and adds; a compaction mixing files the target does not hold yet is
  handled like any other rewrite: correct, only more rows move.)
- closure, so that "delete the keys, insert the rows" is exact: an object's rows may span several data
  files (``write.target-file-size-bytes``), and a rewrite may take only one of them (a neighbour in that
  file replaced, a compaction of some files). Deleting the object's key then deletes its rows in the
  untouched files too (issue 14: 3,000 rows deleted, 33 inserted). So every current data file holding a
  key to delete is inserted as well, and its keys are deleted, until no file is added. Candidate files
  are pruned by the manifests' lower/upper bounds of ``_sf_source_key`` (full bounds on our tables, see
  ``writer.TABLE_PROPERTIES``; truncated bounds still bracket the keys) before their key column is read.

The loaded snapshot must still be in the table's metadata and an ancestor of the current one; otherwise
(expired by retention, the table rebuilt) the answer is ``full=True``: rebuild the target from the
current snapshot. Files removed after a retained snapshot stay on S3 (orphan removal only deletes files
no retained snapshot references), so their keys can be read.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sf_platform.hub.catalog import Hub, HubError
from sf_platform.hub.conventions import COMPACTION, OPERATION, SOURCE_KEY
from sf_platform.hub.stream import read_batches

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

__all__ = ["Hub", "HubChanges", "HubError", "changes_since", "plain_schema"]

KEY_READERS = 4  # data files whose source keys are read at a time


@dataclass(frozen=True)
class HubChanges:
    """Delete ``removed_keys`` (rows whose ``_sf_source_key`` is in it), then insert ``batches()``: a
    target at the loaded snapshot then equals the table at ``snapshot_id``. ``full``: rebuild the target
    from scratch with ``batches()`` instead (``removed_keys`` is then empty)."""

    snapshot_id: int | None
    full: bool
    removed_keys: frozenset[str]
    schema: pa.Schema  # catalog columns + _sf_source_key, _sf_row: the table's current schema
    data_files: tuple[str, ...]  # s3:// URIs of the Parquet files holding the rows to insert
    rows: int  # rows to insert
    _table: Any = field(default=None, repr=False, compare=False)
    _files: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows to insert, in ``schema`` (older files lacking newer columns read as null), one data
        file at a time and ``hub.stream.BATCH_ROWS`` rows at a time: memory is bounded by a batch, not by
        a file or the change."""
        for data_file in self._files:
            yield from read_batches(self._table, data_file, self.schema)


def changes_since(table: Table, loaded_snapshot_id: int | None) -> HubChanges:
    """The changes of the pyiceberg ``table`` since ``loaded_snapshot_id`` (None: nothing loaded yet)."""
    current = table.current_snapshot()
    schema = plain_schema(table)
    current_id = current.snapshot_id if current is not None else None
    if loaded_snapshot_id is not None and loaded_snapshot_id == current_id:
        return HubChanges(current_id, False, frozenset(), schema, (), 0, table)
    window = _window(table, current, loaded_snapshot_id)
    if window is None:
        files = _live_files(table)
        return _changes(table, current_id, True, frozenset(), schema, files)
    added, removed = _diff(table, window)
    keys, inserts = _close(table, added, removed)
    return _changes(table, current_id, False, frozenset(keys), schema, inserts)


def plain_schema(table: Table) -> pa.Schema:
    """The table's current schema in Arrow, strings as ``string`` (pyiceberg reads ``large_string``)."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    arrow = schema_to_pyarrow(table.schema(), include_field_ids=False)
    return pa.schema([pa.field(f.name, _plain(f.type), nullable=f.nullable) for f in arrow])


def _plain(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    return t


def _changes(table, snapshot_id, full, keys, schema, files) -> HubChanges:
    return HubChanges(
        snapshot_id=snapshot_id, full=full, removed_keys=keys, schema=schema,
        data_files=tuple(f.file_path for f in files), rows=sum(int(f.record_count) for f in files),
        _table=table, _files=tuple(files),
    )


def _window(table: Table, current: Snapshot | None, loaded: int | None) -> list[Snapshot] | None:
    """The snapshots after ``loaded`` up to ``current``, oldest first; None when ``loaded`` is None, no
    longer in the metadata, or not an ancestor of the current snapshot (a full load is needed)."""
    if loaded is None or current is None or table.metadata.snapshot_by_id(loaded) is None:
        return None
    window, snapshot = [], current
    while snapshot.snapshot_id != loaded:
        window.append(snapshot)
        parent = snapshot.parent_snapshot_id
        snapshot = table.metadata.snapshot_by_id(parent) if parent is not None else None
        if snapshot is None:
            return None
    return window[::-1]


def _diff(table: Table, window: list[Snapshot]) -> tuple[dict[str, DataFile], dict[str, DataFile]]:
    """(files to insert, files the target holds whose keys go) over the window, by path."""
    added: dict[str, DataFile] = {}  # added in the window, still live: their rows are inserted
    removed: dict[str, DataFile] = {}  # held by the target, removed in the window: their keys go
    for snapshot in window:
        adds, deletes = _snapshot_files(table, snapshot)
        compaction = (snapshot.summary or {}).get(OPERATION) == COMPACTION
        if compaction and adds and not any(path in added for path in deletes):
            continue  # the target holds every rewritten row already: the new files count as held
        for path, data_file in deletes.items():
            if added.pop(path, None) is None:
                removed[path] = data_file
        added.update(adds)
    return added, removed


def _snapshot_files(table: Table, snapshot: Snapshot) -> tuple[dict[str, DataFile], dict[str, DataFile]]:
    """The data files ``snapshot`` itself added and removed (entries of its own manifests only)."""
    from pyiceberg.manifest import ManifestContent, ManifestEntryStatus

    adds: dict[str, DataFile] = {}
    deletes: dict[str, DataFile] = {}
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id or manifest.content != ManifestContent.DATA:
            continue  # carried over from an earlier snapshot
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id:
                continue
            if entry.status == ManifestEntryStatus.ADDED:
                adds[entry.data_file.file_path] = entry.data_file
            elif entry.status == ManifestEntryStatus.DELETED:
                deletes[entry.data_file.file_path] = entry.data_file
    return adds, deletes


def _close(table: Table, added: dict[str, DataFile], removed: dict[str, DataFile]) -> tuple[set[str], list[DataFile]]:
    """(keys to delete, files to insert): the keys of the removed and added files, then every current
    file holding one of those keys joins the inserts and its keys the deletes, until nothing joins. Then
    each deleted key's current rows are all inserted, and every inserted row's key is deleted first."""
    inserts = dict(added)
    keys = set().union(*_keys_by_file(table, [*removed.values(), *added.values()]))
    if not keys:
        return keys, list(inserts.values())
    field_id = table.schema().find_field(SOURCE_KEY).field_id
    others = {f.file_path: f for f in _live_files(table) if f.file_path not in inserts}
    read: dict[str, set[str]] = {}  # keys of the files read so far that did not join
    new = keys
    while new and others:
        probe = sorted(k.encode() for k in new)
        candidates = [f for f in others.values() if _may_hold(f, field_id, probe)]
        unread = [f for f in candidates if f.file_path not in read]
        read.update(zip((f.file_path for f in unread), _keys_by_file(table, unread), strict=True))
        joining = [f for f in candidates if read[f.file_path] & new]
        found: set[str] = set()
        for data_file in joining:
            inserts[data_file.file_path] = others.pop(data_file.file_path)
            found |= read.pop(data_file.file_path)
        new = found - keys
        keys |= new
    return keys, list(inserts.values())


def _may_hold(data_file: DataFile, field_id: int, probe: list[bytes]) -> bool:
    """Whether ``data_file``'s bounds of the source key admit one of ``probe`` (sorted UTF-8 keys; UTF-8
    byte order is the bounds' order). No bounds: it may."""
    lower = (data_file.lower_bounds or {}).get(field_id)
    upper = (data_file.upper_bounds or {}).get(field_id)
    if lower is None or upper is None:
        return True
    at = bisect.bisect_left(probe, lower)
    return at < len(probe) and probe[at] <= upper


def _live_files(table: Table) -> list[DataFile]:
    if table.current_snapshot() is None:
        return []
    return [task.file for task in table.scan().plan_files()]


def _keys_by_file(table: Table, files: list[DataFile]) -> list[set[str]]:
    """The distinct ``_sf_source_key`` values of each of ``files`` (only that column is read)."""
    if not files:
        return []
    with ThreadPoolExecutor(max_workers=KEY_READERS, thread_name_prefix="hub-keys") as pool:
        return list(pool.map(lambda f: _file_keys(table, f.file_path), files))


def _file_keys(table: Table, path: str) -> set[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        with table.io.new_input(path).open() as stream:
            column = pq.ParquetFile(stream).read(columns=[SOURCE_KEY]).column(SOURCE_KEY)
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise HubError(f"{table.name()}: cannot read the source keys of data file {path}: {exc}") from exc
    return {k for k in pc.unique(column).to_pylist() if k is not None}
