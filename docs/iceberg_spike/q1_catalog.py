"""Q1: GlueCatalog against moto: create namespace + partitioned table, check Glue params, load_table."""
import json
from common import catalog, fresh_table, glue, make_rows, BUCKET

cat = catalog()
tbl = fresh_table(cat, "orders")
print("schema:\n", tbl.schema())
print("spec:", tbl.spec())
print("location:", tbl.location(), "| FileIO:", type(tbl.io).__name__)
print("metadata_location:", tbl.metadata_location)

g = glue().get_table(DatabaseName="curated", Name="orders")["Table"]
print("Glue TableType:", g.get("TableType"))
print("Glue Parameters:", json.dumps(g.get("Parameters"), indent=1))
print("Glue VersionId:", g.get("VersionId"))
print("Glue StorageDescriptor.Location:", g["StorageDescriptor"].get("Location"))
print("Glue columns:", [(c["Name"], c["Type"]) for c in g["StorageDescriptor"]["Columns"]])

tbl.append(make_rows(5))
t2 = cat.load_table("curated.orders")
print("reloaded metadata_location:", t2.metadata_location)
g2 = glue().get_table(DatabaseName="curated", Name="orders")["Table"]
print("Glue metadata_location after append:", g2["Parameters"]["metadata_location"])
print("Glue previous_metadata_location:", g2["Parameters"].get("previous_metadata_location"))
print("Glue VersionId after append:", g2.get("VersionId"))
assert g2["Parameters"]["metadata_location"] == t2.metadata_location
out = t2.scan().to_arrow()
print("rows:", out.num_rows, out.schema)
print(out.slice(0, 2).to_pylist())
print("list_tables:", cat.list_tables("curated"), "list_namespaces:", cat.list_namespaces())
import boto3
from common import ensure_bucket
s3 = ensure_bucket()
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="_curated/orders/")["Contents"]]
print("objects:\n ", "\n  ".join(keys))
