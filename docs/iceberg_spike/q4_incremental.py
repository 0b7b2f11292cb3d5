"""Q4: which data files were added / removed between snapshot A (exclusive) and B (inclusive)?"""
import json
from pyiceberg.expressions import EqualTo, AlwaysTrue
from pyiceberg.manifest import ManifestEntryStatus, ManifestContent
from pyiceberg.table import FileScanTask
from pyiceberg.table.snapshots import ancestors_between_ids
from pyiceberg.io.pyarrow import ArrowScan
import pyarrow as pa
from common import catalog, fresh_table, make_rows


def changes_between(tbl, a_id, b_id):
    """Walk B's ancestry back to A; per snapshot read only the manifests it wrote (added_snapshot_id == snap)
    and collect ADDED / DELETED entries. Returns net (added, removed) dicts path -> DataFile.
    Files added and removed inside the window cancel out. Raises if A is not an ancestor of B."""
    snaps = list(ancestors_between_ids(a_id, b_id, tbl.metadata))
    if a_id is not None and (not snaps or snaps[-1].parent_snapshot_id != a_id):
        raise ValueError("A is not an ancestor of B (expired snapshot or rollback?) -> full reload needed")
    added, removed = {}, {}
    for snap in reversed(snaps):  # oldest first
        for m in snap.manifests(tbl.io):
            if m.added_snapshot_id != snap.snapshot_id:
                continue  # manifest carried over from an earlier snapshot
            for e in m.fetch_manifest_entry(tbl.io, discard_deleted=False):
                if e.snapshot_id != snap.snapshot_id:
                    continue  # EXISTING entries rewritten by manifest merge
                p = e.data_file.file_path
                if e.status == ManifestEntryStatus.ADDED:
                    added[p] = e.data_file
                elif e.status == ManifestEntryStatus.DELETED:
                    if p in added:
                        del added[p]         # added and removed within the window: net nothing
                    else:
                        removed[p] = e.data_file
    return added, removed


def read_files(tbl, data_files):
    """Read specific data files with the table's (current) schema: handles evolution + projection."""
    scan = ArrowScan(tbl.metadata, tbl.io, tbl.schema(), AlwaysTrue())
    return scan.to_table([FileScanTask(df) for df in data_files])


if __name__ == "__main__":
    cat = catalog()
    tbl = fresh_table(cat, "orders_q4")
    tbl.append(pa.concat_tables([make_rows(4, "x", start_id=0), make_rows(4, "y", start_id=100)]))
    A = tbl.current_snapshot().snapshot_id
    tbl.append(make_rows(2, "z", start_id=200))                        # append
    with tbl.transaction() as tx:                                      # replace object x (CoW rewrite)
        tx.delete(EqualTo("_sf_source_key", "x"))
        tx.append(make_rows(3, "x", start_id=1000))
    tbl.append(make_rows(1, "w", start_id=5000))
    tbl.delete(EqualTo("_sf_source_key", "w"))                         # added+removed inside window
    B = tbl.current_snapshot().snapshot_id

    added, removed = changes_between(tbl, A, B)
    print("ADDED files:", [(p.rsplit('/', 1)[1][:20], f.record_count) for p, f in added.items()])
    print("REMOVED files:", [(p.rsplit('/', 1)[1][:20], f.record_count) for p, f in removed.items()])
    print("rows in added files:", sorted(read_files(tbl, added.values())["id"].to_pylist()))
    print("rows in removed files (still readable until expire/cleanup):",
          sorted(read_files(tbl, removed.values())["id"].to_pylist()))

    # Cross-check: set difference of the live file lists at A and B (inspect.files(snapshot_id=...))
    fa = set(tbl.inspect.files(snapshot_id=A)["file_path"].to_pylist())
    fb = set(tbl.inspect.files(snapshot_id=B)["file_path"].to_pylist())
    assert fb - fa == set(added) and fa - fb == set(removed), "mismatch"
    print("inspect.files set-difference agrees: +%d -%d" % (len(fb - fa), len(fa - fb)))

    # inspect.entries(snapshot_id) = all entries of that snapshot's manifest list (status 0 existing,1 added,2 deleted)
    ent = tbl.inspect.entries(snapshot_id=B)
    print("inspect.entries(B) status/snapshot:", list(zip(ent["status"].to_pylist(), ent["snapshot_id"].to_pylist())))

    # Built-in incremental_append_scan: only looks at APPEND snapshots -> blind to overwrite/delete.
    inc = tbl.incremental_append_scan(from_snapshot_id_exclusive=A, to_snapshot_id_inclusive=B).to_arrow()
    print("incremental_append_scan ids:", sorted(inc["id"].to_pylist()),
          "(note: ignores removals; the y rows re-written by the CoW overwrite are NOT included, nor is x's delete)")
