"""Q3: replace one source object's rows: delete(_sf_source_key=='x') + append in ONE transaction."""
import json
from pyiceberg.expressions import EqualTo
from common import catalog, fresh_table, make_rows, ensure_bucket, BUCKET
import pyarrow as pa, pyarrow.compute as pc

cat = catalog()
tbl = fresh_table(cat, "orders_q3")
# Two source objects in the SAME data file + one object in its own file (separate append).
both = pa.concat_tables([make_rows(4, "x", start_id=0), make_rows(4, "y", start_id=100)])
tbl.append(both, snapshot_properties={"sf.objects": json.dumps([["x", "e1"], ["y", "e1"]])})
tbl.append(make_rows(3, "z", start_id=200), snapshot_properties={"sf.objects": json.dumps([["z", "e1"]])})
A = tbl.current_snapshot().snapshot_id

# (a) object x shares a file with y -> copy-on-write rewrite of that file
with tbl.transaction() as tx:
    tx.delete(EqualTo("_sf_source_key", "x"), snapshot_properties={"sf.objects": json.dumps([["x", "e2"]])})
    tx.append(make_rows(2, "x", start_id=1000), snapshot_properties={"sf.objects": json.dumps([["x", "e2"]])})
tbl = cat.load_table("curated.orders_q3")
# (b) object z owns a whole file -> delete just drops the file from the manifest (no rewrite)
with tbl.transaction() as tx:
    tx.delete("_sf_source_key == 'z'")
    tx.append(make_rows(1, "z", start_id=2000))
tbl = cat.load_table("curated.orders_q3")

print("props write.delete.mode:", tbl.properties.get("write.delete.mode", "<unset> (pyiceberg default copy-on-write)"))
for s in tbl.snapshots():
    sm = s.summary
    print(f" snap {s.snapshot_id} parent={s.parent_snapshot_id} op={sm.operation.value:9s} "
          f"+files={sm.get('added-data-files','0')} -files={sm.get('deleted-data-files','0')} "
          f"+rec={sm.get('added-records','0')} -rec={sm.get('deleted-records','0')} "
          f"+delfiles={sm.get('added-delete-files','0')} pos-deletes={sm.get('total-position-deletes')} "
          f"total-rec={sm.get('total-records')} sf.objects={sm.get('sf.objects')}")
out = tbl.scan().to_arrow()
print("final rows by key:", dict(zip(*[c.to_pylist() for c in out.group_by('_sf_source_key').aggregate([('id','count')]).columns[::-1]])) if False else
      sorted(pc.value_counts(out['_sf_source_key']).to_pylist(), key=lambda d: d['values']))
print("ids:", sorted(out["id"].to_pylist()))
print("data files now:", tbl.inspect.files().select(["file_path", "record_count", "content"]).to_pylist())
# Transaction atomicity: one Glue update per transaction?
from common import glue
print("Glue table versions:", len(glue().get_table_versions(DatabaseName="curated", TableName="orders_q3")["TableVersions"]))

# (c) the one-call form: tx.overwrite(df, overwrite_filter=...) == delete(filter) + append(df)
before = len(tbl.snapshots())
tbl.overwrite(make_rows(3, "y", start_id=3000), overwrite_filter=EqualTo("_sf_source_key", "y"),
              snapshot_properties={"sf.objects": json.dumps([["y", "e2"]])})
tbl = cat.load_table("curated.orders_q3")
print("overwrite() produced ops:", [s.summary.operation.value for s in tbl.snapshots()[before:]],
      "rows now:", tbl.scan().count())

# (d) write.delete.mode=merge-on-read: does pyiceberg write positional deletes?
import logging; logging.basicConfig(level=logging.WARNING)
with tbl.transaction() as tx:
    tx.set_properties({"write.delete.mode": "merge-on-read"})
tbl = cat.load_table("curated.orders_q3")
tbl.delete(EqualTo("id", 3000))
s = tbl.current_snapshot().summary
print("MoR delete ->", s.operation.value, "added-delete-files:", s.get("added-delete-files"),
      "added-position-deletes:", s.get("added-position-delete-files"), "rows now:", tbl.scan().count())
