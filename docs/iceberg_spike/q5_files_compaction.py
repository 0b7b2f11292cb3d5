"""Q5: write.target-file-size-bytes; 1,200 tiny appends in one transaction; compaction via overwrite."""
import json, time, sys
import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, EqualTo
from common import catalog, fresh_table, make_rows, ensure_bucket, BUCKET

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1200       # batches for (b2)/(b3)
N_TX = int(sys.argv[2]) if len(sys.argv) > 2 else 60     # batches for (b): O(N^2), keep small
cat = catalog()
s3 = ensure_bucket()


def obj_sizes(prefix):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


# (a) target-file-size honoured? (measured on in-memory Arrow bytes, not parquet bytes)
big = make_rows(40_000)
print(f"arrow nbytes of 40k rows: {big.nbytes/1e6:.2f} MB")
for target in (None, 1_000_000, 256_000):
    props = {"write.target-file-size-bytes": str(target)} if target else {}
    t = fresh_table(cat, "orders_q5a", properties=props)
    t.append(big)
    f = t.inspect.files()
    print(f" target={target}: files={f.num_rows} records/file={f['record_count'].to_pylist()} "
          f"parquet bytes/file={f['file_size_in_bytes'].to_pylist()}")

# (b) N tiny batches appended one by one inside ONE transaction
batches = [make_rows(5, source_key=f"obj/{i:05d}.csv", start_id=i * 10) for i in range(N)]
t = fresh_table(cat, "orders_q5b")
t0 = time.perf_counter()
with t.transaction() as tx:
    for i, b in enumerate(batches[:N_TX]):
        tx.append(b, snapshot_properties={"sf.objects": json.dumps([[f"obj/{i:05d}.csv", "e"]])})
dt_tx = time.perf_counter() - t0
t = cat.load_table("curated.orders_q5b")
meta = obj_sizes("_curated/orders_q5b/metadata/")
ml = [v for k, v in meta.items() if k.rsplit("/", 1)[1].startswith("snap-")]
mj = [v for k, v in meta.items() if k.endswith(".metadata.json")]
print(f"(b) {N_TX} tx.append() in one transaction: {dt_tx:.1f}s, data files={t.inspect.files().num_rows}, "
      f"snapshots={len(t.snapshots())}, manifests in current snapshot={len(t.current_snapshot().manifests(t.io))}, "
      f"manifest-lists total={sum(ml)/1e6:.1f} MB, final metadata.json={max(mj)/1e6:.2f} MB")
t0 = time.perf_counter(); n = t.scan().to_arrow().num_rows; dt_scan = time.perf_counter() - t0
print(f"    full scan of {N_TX} tiny files: {n} rows in {dt_scan:.1f}s")

# (b2) same batches concatenated -> one append
t2 = fresh_table(cat, "orders_q5c")
t0 = time.perf_counter()
t2.append(pa.concat_tables(batches), snapshot_properties={"sf.objects": json.dumps([[f"obj/{i:05d}.csv", "e"] for i in range(N)])})
print(f"(b2) one append of concat'ed {N} batches: {time.perf_counter()-t0:.2f}s, data files={t2.inspect.files().num_rows}")

# (b3) N batches -> N data files but ONE snapshot: one fast_append producer, files written per batch.
#      Uses the private pyiceberg.io.pyarrow._dataframe_to_data_files (same call tx.append makes).
#      GOTCHA: file name = {task:05d}-{counter}-{write_uuid}.parquet; calling it per batch with the same
#      write_uuid and no shared counter makes EVERY batch write the SAME S3 key (silent overwrite; the
#      manifest then lists one path 1,200 times and scans return the last batch 1,200x). Share a counter.
import itertools
from pyiceberg.io.pyarrow import _dataframe_to_data_files
counter = itertools.count(0)
t3 = fresh_table(cat, "orders_q5d")
t0 = time.perf_counter()
with t3.transaction() as tx:
    with tx.update_snapshot(snapshot_properties={"sf.objects": json.dumps([[f"obj/{i:05d}.csv", "e"] for i in range(N)])}).fast_append() as fa:
        for b in batches:
            for f in _dataframe_to_data_files(table_metadata=tx.table_metadata, write_uuid=fa.commit_uuid, df=b, io=t3.io, counter=counter):
                fa.append_data_file(f)
t3 = cat.load_table("curated.orders_q5d")
print(f"(b3) {N} batches via one fast_append producer: {time.perf_counter()-t0:.1f}s, data files={t3.inspect.files().num_rows}, "
      f"snapshots={len(t3.snapshots())}, rows={t3.scan().count()}, "
      f"distinct paths={len(set(t3.inspect.files()['file_path'].to_pylist()))}, distinct ids={len(set(t3.scan().to_arrow()['id'].to_pylist()))}")
t = t3  # compact the 1,200-file table

# (c) compaction: no rewrite_data_files in this version -> overwrite everything with itself, atomically
import pyiceberg.table as pt
print("has rewrite_data_files/compact:", [a for a in ("rewrite_data_files", "compact", "rewrite_manifests")
                                           if hasattr(pt.Table, a) or hasattr(t.maintenance, a)])
base = t.current_snapshot().snapshot_id
t0 = time.perf_counter()
data = t.scan(snapshot_id=base).to_arrow()
t_read = time.perf_counter() - t0
with t.transaction() as tx:
    tx.overwrite(data, overwrite_filter=AlwaysTrue(), snapshot_properties={"sf.compaction": "true"})
dt_c = time.perf_counter() - t0
t = cat.load_table("curated.orders_q5d")
print(f"(c) compaction via tx.overwrite(scan, AlwaysTrue()): read {t_read:.1f}s, total {dt_c:.1f}s, "
      f"files now={t.inspect.files().num_rows}, rows={t.scan().count()}, "
      f"new snapshot ops={[s.summary.operation.value for s in t.snapshots()[-2:]]}, "
      f"deleted-data-files={t.snapshots()[-2].summary.get('deleted-data-files')}, "
      f"distinct ids={len(set(t.scan().to_arrow()['id'].to_pylist()))}")
# per-partition flavour (only rewrite region='eu'):
t0 = time.perf_counter()
part = t.scan(row_filter=EqualTo("region", "eu")).to_arrow()
t.overwrite(part, overwrite_filter=EqualTo("region", "eu"))
print(f"    per-partition overwrite region=eu: {time.perf_counter()-t0:.2f}s")
