"""AWS resources: the landing bucket (over dagster-aws ``S3Resource``) and the Glue Data Catalog.

Each exposes only what the assets need: list/read/move/write objects, and get/create/update tables
and partitions. Credentials come from the deployment's environment (or the default AWS chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import boto3
import dagster as dg
from botocore.config import Config
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects
from pydantic import Field

from sf_platform.core.ledger import SourceObject, normalize_etag

MULTIPART_COPY_THRESHOLD = 5 * 1024**3  # CopyObject's limit; larger objects need UploadPartCopy
MULTIPART_PART_SIZE = 512 * 1024**2


class MoveError(RuntimeError):
    """An object could not be moved safely; the source is left where it was."""


class LandingBucket(dg.ConfigurableResource):
    """The S3 bucket files land in; every table lives under ``<table>/`` in it."""

    s3: S3Resource
    bucket: str = Field(description="Landing bucket name (SF_LANDING_BUCKET)")

    def client(self):
        return self.s3.get_client()

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def list_objects(self, prefix: str = "") -> list[dict]:
        """Every object under ``prefix`` (paged through list_objects_v2), oldest first."""
        return get_objects(self.bucket, prefix=prefix, client=self.client())

    def list_root(self) -> list[dict]:
        """Objects directly at the bucket root (loose landing files), paged; table prefixes not entered."""
        paginator = self.client().get_paginator("list_objects_v2")
        objects = []
        for page in paginator.paginate(Bucket=self.bucket, Delimiter="/"):
            objects.extend(page.get("Contents", []))
        return objects

    def list_prefixes(self) -> list[str]:
        """Top-level folder names (``member/`` -> ``member``)."""
        paginator = self.client().get_paginator("list_objects_v2")
        names = []
        for page in paginator.paginate(Bucket=self.bucket, Delimiter="/"):
            names.extend(p["Prefix"].rstrip("/") for p in page.get("CommonPrefixes", []))
        return names

    def abort_uploads(self, key: str) -> int:
        """Abort unfinished multipart uploads to ``key`` (what an interrupted large copy leaves)."""
        client = self.client()
        uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=key).get("Uploads", [])
        for upload in uploads:
            if upload["Key"] == key:
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
        return len([u for u in uploads if u["Key"] == key])

    def source_objects(self, prefix: str) -> list[SourceObject]:
        return [
            SourceObject(o["Key"], normalize_etag(o["ETag"]), int(o["Size"])) for o in self.list_objects(prefix)
        ]

    def open(self, key: str):
        """A streaming, file-like body of an object (read in chunks, never whole in memory)."""
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"]

    def head(self, key: str) -> dict | None:
        try:
            return self.client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, key: str, body: bytes, **kwargs: Any) -> None:
        self.client().put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)

    def upload_file(self, path: str, key: str) -> None:
        self.client().upload_file(path, self.bucket, key)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=key)

    def ensure_bucket(self) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = client.meta.region_name
            kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            client.create_bucket(Bucket=self.bucket, **kwargs)

    def copy_verified(self, source_key: str, dest_key: str) -> dict:
        """Copy an object within the bucket and verify the copy (size and content checksum).

        Returns the destination's HEAD. Raises MoveError when the copy does not match.
        """
        client = self.client()
        source = self.head(source_key)
        if source is None:
            raise MoveError(f"{source_key}: source object disappeared")
        size = int(source["ContentLength"])
        if size > MULTIPART_COPY_THRESHOLD:
            self._multipart_copy(source_key, dest_key, size)
        else:
            client.copy_object(
                Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": source_key}
            )
        dest = self.head(dest_key)
        if dest is None or int(dest["ContentLength"]) != size:
            raise MoveError(f"{source_key}: copy to {dest_key} has the wrong size")
        if not self.same_content(source, dest, source_key, dest_key):
            raise MoveError(f"{source_key}: copy to {dest_key} has different content")
        return dest

    def same_content(self, source: Mapping, dest: Mapping, source_key: str, dest_key: str) -> bool:
        # Single-part ETags are MD5s of the content: equal ETags prove equal bytes. Multipart ETags depend
        # on the part layout, so compare a streamed SHA-256 of both objects instead.
        src_etag, dst_etag = normalize_etag(source["ETag"]), normalize_etag(dest["ETag"])
        if "-" not in src_etag and "-" not in dst_etag:
            return src_etag == dst_etag
        return self._sha256(source_key) == self._sha256(dest_key)

    def _sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.open(key).iter_chunks(chunk_size=8 * 1024 * 1024):
            digest.update(chunk)
        return digest.hexdigest()

    def _multipart_copy(self, source_key: str, dest_key: str, size: int) -> None:
        client = self.client()
        upload = client.create_multipart_upload(Bucket=self.bucket, Key=dest_key)
        parts = []
        try:
            for number, start in enumerate(range(0, size, MULTIPART_PART_SIZE), start=1):
                end = min(start + MULTIPART_PART_SIZE, size) - 1
                result = client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dest_key,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            client.complete_multipart_upload(
                Bucket=self.bucket, Key=dest_key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
            )
        except Exception:
            client.abort_multipart_upload(Bucket=self.bucket, Key=dest_key, UploadId=upload["UploadId"])
            raise


class GlueCatalog(dg.ConfigurableResource):
    """The AWS Glue Data Catalog (dagster-aws has no Glue resource), on boto3."""

    region_name: str = Field(description="AWS region (SF_AWS_REGION)")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint, e.g. the local moto server")
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    database: str = Field(description="Glue database of the raw tables (SF_GLUE_DATABASE)")

    def client(self):
        return boto3.client(
            "glue",
            region_name=self.region_name,
            endpoint_url=self.endpoint_url or None,
            aws_access_key_id=self.aws_access_key_id or None,
            aws_secret_access_key=self.aws_secret_access_key or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def ensure_database(self, name: str | None = None) -> None:
        try:
            self.client().create_database(DatabaseInput={"Name": name or self.database})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise

    def get_table(self, name: str, database: str | None = None) -> dict | None:
        try:
            return self.client().get_table(DatabaseName=database or self.database, Name=name)["Table"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "EntityNotFoundException":
                return None
            raise

    def create_table(self, table_input: Mapping, database: str | None = None) -> None:
        self.client().create_table(DatabaseName=database or self.database, TableInput=dict(table_input))

    def update_table(self, table_input: Mapping, database: str | None = None) -> None:
        """UpdateTable keeps a new version of the table each time (Glue's table versions)."""
        self.client().update_table(DatabaseName=database or self.database, TableInput=dict(table_input))

    def delete_table(self, name: str, database: str | None = None) -> None:
        self.client().delete_table(DatabaseName=database or self.database, Name=name)

    def table_versions(self, name: str, database: str | None = None) -> list[dict]:
        paginator = self.client().get_paginator("get_table_versions")
        versions = []
        for page in paginator.paginate(DatabaseName=database or self.database, TableName=name):
            versions.extend(page["TableVersions"])
        return versions

    def partitions(self, name: str, database: str | None = None) -> list[dict]:
        paginator = self.client().get_paginator("get_partitions")
        result = []
        for page in paginator.paginate(DatabaseName=database or self.database, TableName=name):
            result.extend(page["Partitions"])
        return result

    def create_partitions(self, name: str, inputs: Sequence[Mapping], database: str | None = None) -> list[str]:
        """BatchCreatePartition in chunks of 100 (the API limit); returns error messages, if any."""
        errors = []
        for chunk in _chunks(list(inputs), 100):
            result = self.client().batch_create_partition(
                DatabaseName=database or self.database, TableName=name, PartitionInputList=chunk
            )
            errors.extend(e["ErrorDetail"]["ErrorMessage"] for e in result.get("Errors", []))
        return errors

    def delete_partitions(self, name: str, values: Sequence[Sequence[str]], database: str | None = None) -> None:
        for chunk in _chunks([{"Values": list(v)} for v in values], 25):
            self.client().batch_delete_partition(
                DatabaseName=database or self.database, TableName=name, PartitionsToDelete=chunk
            )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
