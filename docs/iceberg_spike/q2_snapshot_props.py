"""Q2: one-transaction append carrying custom snapshot summary properties; read back; size limits."""
import json, time
from common import catalog, fresh_table, make_rows, glue

cat = catalog()
tbl = fresh_table(cat, "orders_q2")
objs = [(f"raw/orders/2024/01/{i:05d}.csv", f'"etag{i:032x}"') for i in range(3)]
tbl.append(make_rows(10), snapshot_properties={"sf.objects": json.dumps(objs), "sf.run_id": "run-123"})

t = cat.load_table("curated.orders_q2")
s = t.current_snapshot()
print("operation:", s.summary.operation)
print("summary keys:", sorted(s.summary.additional_properties))
print("sf.objects roundtrip ok:", json.loads(s.summary["sf.objects"]) == [list(o) for o in objs])
for snap in t.snapshots():
    print(" snapshot", snap.snapshot_id, snap.summary.operation, snap.summary.get("sf.run_id"))

# Also inside an explicit transaction (several ops, each its own snapshot w/ its own props)
with t.transaction() as tx:
    tx.append(make_rows(2, source_key="b"), snapshot_properties={"sf.objects": json.dumps([["b", "e1"]])})
t = cat.load_table("curated.orders_q2")
print("tx append summary sf.objects:", t.current_snapshot().summary["sf.objects"])

# Size probe: property values live in metadata.json (snapshot summary) -> every later metadata.json
# rewrite carries every retained snapshot's summary. Not in Glue parameters (only metadata_location).
for n in (1_000, 10_000, 50_000):
    objs = [(f"raw/orders/2024/01/{i:07d}.csv", f'"{i:032x}"') for i in range(n)]
    payload = json.dumps(objs)
    t0 = time.perf_counter()
    t.append(make_rows(1, source_key=f"size{n}"), snapshot_properties={"sf.objects": payload})
    dt_commit = time.perf_counter() - t0
    t0 = time.perf_counter()
    t = cat.load_table("curated.orders_q2")
    dt_load = time.perf_counter() - t0
    ok = json.loads(t.current_snapshot().summary["sf.objects"]) == [list(o) for o in objs]
    import boto3
    from common import ensure_bucket, BUCKET
    key = t.metadata_location.split(f"{BUCKET}/", 1)[1]
    size = ensure_bucket().head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    print(f"n={n:>6} payload={len(payload)/1e6:.2f} MB roundtrip={ok} commit={dt_commit:.2f}s "
          f"load={dt_load:.2f}s metadata.json={size/1e6:.2f} MB")
gp = glue().get_table(DatabaseName="curated", Name="orders_q2")["Table"]["Parameters"]
print("Glue parameter keys:", sorted(gp))
