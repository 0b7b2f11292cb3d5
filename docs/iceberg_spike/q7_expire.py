"""Q7: expire snapshots (tbl.maintenance.expire_snapshots()) - what does it remove (metadata? files?)."""
import datetime as dt, time
from pyiceberg.expressions import EqualTo
from common import catalog, fresh_table, make_rows, ensure_bucket, BUCKET

cat = catalog(); s3 = ensure_bucket()
def keys(prefix): return sorted(o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix) for o in p.get("Contents", []))

t = fresh_table(cat, "orders_q7")
for i in range(4):
    t.append(make_rows(3, source_key=f"k{i}", start_id=i * 10))
t.delete(EqualTo("_sf_source_key", "k0"))          # k0's file is no longer live
ids = [s.snapshot_id for s in t.snapshots()]
print("snapshots before:", len(ids), "data objects:", len(keys("_curated/orders_q7/data/")),
      "metadata objects:", len(keys("_curated/orders_q7/metadata/")))

t.maintenance.expire_snapshots().by_ids(ids[:2]).commit()
t = cat.load_table("curated.orders_q7")
print("after by_ids(first 2): snapshots:", len(t.snapshots()))
try:
    t.maintenance.expire_snapshots().by_id(t.current_snapshot().snapshot_id).commit()
except ValueError as e:
    print("expiring current snapshot:", e)

time.sleep(0.01)
t.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.timezone.utc)).commit()
t = cat.load_table("curated.orders_q7")
print("after older_than(now): snapshots:", [(s.snapshot_id, s.summary.operation.value) for s in t.snapshots()],
      "history entries:", len(t.history()))
print("data objects still on S3:", len(keys("_curated/orders_q7/data/")),
      "live data files:", t.inspect.files().num_rows,
      "metadata objects:", len(keys("_curated/orders_q7/metadata/")))
print("=> expire only rewrites metadata (RemoveSnapshots); it does NOT delete data/manifest files. "
      "Orphan cleanup = list prefix minus files reachable from all remaining snapshots (inspect.all_files/all_manifests).")

# metadata.json retention knobs (write side):
with t.transaction() as tx:
    tx.set_properties({"write.metadata.delete-after-commit.enabled": "true",
                       "write.metadata.previous-versions-max": "2"})
for i in range(3):
    t.append(make_rows(1, source_key="m", start_id=900 + i))
print("metadata.json objects with previous-versions-max=2 + delete-after-commit:",
      len([k for k in keys("_curated/orders_q7/metadata/") if k.endswith(".metadata.json")]))

# Sketch of orphan detection (dry run)
t = cat.load_table("curated.orders_q7")
reachable = set(t.inspect.all_files()["file_path"].to_pylist())
data_keys = {f"s3://{BUCKET}/{k}" for k in keys("_curated/orders_q7/data/")}
print("orphan data files (dry run):", len(data_keys - reachable))
