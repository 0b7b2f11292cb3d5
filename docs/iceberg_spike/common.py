"""Shared helpers: GlueCatalog against a local moto server (S3 + Glue)."""
import os
import boto3
import pyarrow as pa
from decimal import Decimal
import datetime as dt

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = int(os.environ.get("MOTO_PORT") or open(os.path.join(HERE, "port")).read().strip())
ENDPOINT = f"http://127.0.0.1:{PORT}"
BUCKET = "spike-bucket"
REGION = "us-east-1"

CATALOG_PROPS = {
    "type": "glue",
    "glue.endpoint": ENDPOINT,
    "glue.region": REGION,
    "glue.access-key-id": "testing",
    "glue.secret-access-key": "testing",
    "s3.endpoint": ENDPOINT,
    "s3.region": REGION,
    "s3.access-key-id": "testing",
    "s3.secret-access-key": "testing",
    # PyArrowFileIO (default for s3://) -> path-style is what you get with a custom endpoint;
    # s3.force-virtual-addressing defaults to False. No "s3.path-style-access" key needed.
}


def catalog(name="spike"):
    from pyiceberg.catalog import load_catalog
    return load_catalog(name, **CATALOG_PROPS)


def ensure_bucket():
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def glue():
    return boto3.client("glue", endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


ARROW_SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("qty", pa.int32()),
    pa.field("amount", pa.decimal128(12, 2)),
    pa.field("order_date", pa.date32()),
    pa.field("updated_at", pa.timestamp("us")),
    pa.field("region", pa.string()),
    pa.field("active", pa.bool_()),
    pa.field("_sf_source_key", pa.string()),
])


def make_rows(n, source_key="obj/a.csv", region="eu", start_id=0):
    return pa.Table.from_pylist([
        {
            "id": start_id + i,
            "qty": i,
            "amount": Decimal(f"{i}.25"),
            "order_date": dt.date(2024, 1, 1) + dt.timedelta(days=i % 30),
            "updated_at": dt.datetime(2024, 1, 1, 12, 0, 0) + dt.timedelta(seconds=i),
            "region": region,
            "active": i % 2 == 0,
            "_sf_source_key": source_key,
        }
        for i in range(n)
    ], schema=ARROW_SCHEMA)


def fresh_table(cat, name, namespace="curated", partition_on="region", properties=None):
    """Drop+create an Iceberg table at s3://bucket/_curated/<name>/ with identity partition on region."""
    from pyiceberg.partitioning import PartitionSpec, PartitionField
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
    ensure_bucket()
    try:
        cat.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    try:
        cat.drop_table((namespace, name))   # drop_table leaves files on S3; wipe the prefix so reruns are clean
    except NoSuchTableError:
        pass
    s3 = ensure_bucket()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"_curated/{name}/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})
    # Convert Arrow -> Iceberg schema with real field ids so the partition spec can reference them at
    # create time (spec-id 0, no spec evolution). create_table re-assigns fresh ids in the same order.
    from pyiceberg.catalog import Catalog
    from pyiceberg.schema import assign_fresh_schema_ids
    ice_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(ARROW_SCHEMA))
    spec = PartitionSpec()
    if partition_on:
        spec = PartitionSpec(PartitionField(source_id=ice_schema.find_field(partition_on).field_id,
                                            field_id=1000, transform=IdentityTransform(), name=partition_on))
    tbl = cat.create_table(
        (namespace, name),
        schema=ice_schema,
        partition_spec=spec,
        location=f"s3://{BUCKET}/_curated/{name}",
        properties=properties or {},
    )
    return tbl
