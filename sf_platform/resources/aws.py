"""AWS resources: the landing bucket (over dagster-aws ``S3Resource``), its S3 event queue (SQS) and the
Glue Data Catalog.

Each exposes only what the assets need: list/read/move/write objects, and get/create/update tables
and partitions. Credentials come from the deployment's environment (or the default AWS chain).

A botocore error from an S3 operation of the landing bucket names the object (``s3://bucket/key``, or
the prefix or bucket a listing was about) in its message: botocore's own says only the operation
("An error occurred (SlowDown) when calling the GetObject operation"), and one run touches thousands
of objects. The error keeps its type and code, so callers and ``core/transient.py`` read it as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import dagster as dg
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from dagster_aws.s3 import S3Resource
from pydantic import Field

from sf_platform.core import batching
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
        # S3Resource builds a new boto3 session per client (0.1-0.5 s): reuse one (see _shared_client).
        return _shared_client(self.s3, lambda: _fast_timestamps(self.s3.get_client()))

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def list_objects(self, prefix: str = "", *, delimiter: str = "") -> list[dict]:
        """Every object under ``prefix`` (paged through list_objects_v2), oldest first. With a
        ``delimiter`` ("/"), only the objects directly in that folder."""
        paginator = self.client().get_paginator("list_objects_v2")
        objects = []
        with self._naming(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter=delimiter):
                objects.extend(page.get("Contents", []))
        return sorted(objects, key=lambda o: (o["LastModified"], o["Key"]))

    def list_page(self, prefix: str, *, after: str = "", max_keys: int = 1000) -> tuple[list[dict], bool]:
        """One page of the objects under ``prefix`` in key order, starting after the key ``after``;
        -> (objects, whether more follow)."""
        kwargs = {"StartAfter": after} if after else {}
        with self._naming(prefix):
            page = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=max_keys, **kwargs)
        return page.get("Contents", []), page.get("IsTruncated", False)

    def list_top_level(self) -> tuple[list[dict], list[str]]:
        """Objects directly at the bucket root (loose landing files) and the top-level folder names
        (``member/`` -> ``member``), in one paged listing; folders are not entered."""
        paginator = self.client().get_paginator("list_objects_v2")
        objects, folders = [], []
        with self._naming(""):
            for page in paginator.paginate(Bucket=self.bucket, Delimiter="/"):
                objects.extend(page.get("Contents", []))
                folders.extend(p["Prefix"].rstrip("/") for p in page.get("CommonPrefixes", []))
        return objects, folders

    def list_root(self) -> list[dict]:
        """Objects directly at the bucket root (loose landing files)."""
        return self.list_top_level()[0]

    def list_prefixes(self) -> list[str]:
        """Top-level folder names (``member/`` -> ``member``)."""
        return self.list_top_level()[1]

    def list_uploads(self, prefix: str = "") -> list[dict]:
        """Unfinished multipart uploads (``Key``, ``UploadId``) under ``prefix``, paged."""
        paginator = self.client().get_paginator("list_multipart_uploads")
        uploads = []
        with self._naming(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                uploads.extend(page.get("Uploads", []))
        return uploads

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._naming(key):
            self.client().abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def abort_uploads(self, key: str) -> int:
        """Abort unfinished multipart uploads to ``key`` (what an interrupted large copy leaves)."""
        uploads = [u for u in self.list_uploads(key) if u["Key"] == key]
        for upload in uploads:
            self.abort_upload(key, upload["UploadId"])
        return len(uploads)

    def source_objects(self, prefix: str) -> list[SourceObject]:
        return [
            SourceObject(o["Key"], normalize_etag(o["ETag"]), int(o["Size"]))
            for o in self.list_objects(prefix)
        ]

    def open(self, key: str, **get_args: Any):
        """A streaming, file-like body of an object (read in chunks, never whole in memory); ``get_args``
        go to GetObject (``IfMatch``: only that version)."""
        with self._naming(key):
            return self.client().get_object(Bucket=self.bucket, Key=key, **get_args)["Body"]

    def head(self, key: str) -> dict | None:
        with self._naming(key):
            try:
                return self.client().head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    def read_json(self, key: str) -> Any | None:
        """A small JSON object, or None when it is missing or not valid JSON."""
        with self._naming(key):
            try:
                body = self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        try:
            return json.loads(body)
        except ValueError:
            return None

    def put(self, key: str, body: bytes, **kwargs: Any) -> None:
        with self._naming(key):
            self.client().put_object(Bucket=self.bucket, Key=key, Body=body, **kwargs)

    def upload_file(self, path: str, key: str) -> None:
        with self._naming(key):
            self.client().upload_file(path, self.bucket, key)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete ``key``; with ``if_match`` (an ETag) only while the object still has that content."""
        with self._naming(key):
            if if_match is None:
                self.client().delete_object(Bucket=self.bucket, Key=key)
                return
            try:
                self.client().delete_object(Bucket=self.bucket, Key=key, IfMatch=if_match)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code == "PreconditionFailed":
                    raise MoveError(f"{key}: changed while it was being moved; kept") from None
                if code != "NotImplemented":  # a store without conditional deletes: delete as before
                    raise
                self.client().delete_object(Bucket=self.bucket, Key=key)

    def ensure_bucket(self) -> None:
        client = self.client()
        with self._naming(None):
            try:
                client.head_bucket(Bucket=self.bucket)
            except ClientError:
                region = client.meta.region_name
                kwargs = (
                    {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                )
                client.create_bucket(Bucket=self.bucket, **kwargs)

    @contextmanager
    def _naming(self, key: str | None) -> Iterator[None]:
        """Put the object (``key``; a prefix for a listing, None for the bucket itself) at the front of
        the message of a botocore or boto3 error raised inside; the error keeps its type and code."""
        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            name_object(exc, self.uri(key or ""))
            raise

    def copy_verified(self, source_key: str, dest_key: str, source: Mapping | None = None) -> dict:
        """Copy an object within the bucket and verify the copy (size and content checksum).

        ``source`` is the object as listed or headed (``Size``/``ContentLength`` and ``ETag``); the copy
        must hold exactly that content. Returns the copy's ``ETag`` and ``ContentLength``. Raises
        MoveError when the copy does not match or S3 refuses it; any other error while copying or
        verifying (the connection breaking, a HEAD or a checksum read failing, the run being stopped)
        propagates. In every case the copy is removed first and the source kept: an unverified copy is
        never left behind.
        """
        source = source if source is not None else self.head(source_key)
        if source is None:
            raise MoveError(f"{source_key}: source object disappeared")
        size = _size(source)
        try:
            etag = self._copy(source_key, dest_key, size, source["ETag"])
        except BaseException as exc:
            # The copy may have been made before the error (a response lost on the way back). ``dest_key``
            # did not exist before (callers copy only to free names), so removing it removes only the copy.
            self._remove_copy(dest_key, None)
            if isinstance(exc, ClientError):
                raise MoveError(f"{source_key}: copy to {dest_key} failed: {exc}") from exc
            raise
        if normalize_etag(etag) == normalize_etag(source["ETag"]):
            # The copy's checksum is the source's (both MD5s, or both of the same parts): same bytes,
            # so the same size; no need to ask again.
            return {"ETag": etag, "ContentLength": size}
        try:
            dest = self.head(dest_key)
            problem = None
            if dest is None or _size(dest) != size:
                problem = "has the wrong size"
            elif not self.same_content(source, dest, source_key, dest_key):
                problem = "has different content"
        except BaseException:
            self._remove_copy(dest_key, etag)
            raise
        if problem:
            kept = self._remove_copy(dest_key, dest["ETag"]) if dest is not None else None
            removed = f"copy could not be removed ({kept})" if kept else "copy removed"
            raise MoveError(f"{source_key}: copy to {dest_key} {problem}; {removed}, source kept")
        return {"ETag": dest["ETag"], "ContentLength": size}

    def _remove_copy(self, dest_key: str, etag: str | None) -> str | None:
        """Remove a copy that could not be verified (only while it is still the copy made, when its ETag
        is known); -> why it could not be, or None. A failure to remove must not hide the error that
        made it necessary, so it is returned, not raised."""
        try:
            self.delete(dest_key, if_match=etag)
        except Exception as exc:  # noqa: BLE001 - the caller raises the original error
            return f"{type(exc).__name__}: {exc}"
        return None

    def _copy(self, source_key: str, dest_key: str, size: int, etag: str) -> str:
        """Copy ``source_key`` (only while it has ``etag``) to ``dest_key``; -> the copy's ETag."""
        if size > MULTIPART_COPY_THRESHOLD:
            return self._multipart_copy(source_key, dest_key, size, etag)
        with self._naming(source_key):
            result = self.client().copy_object(
                Bucket=self.bucket,
                Key=dest_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                CopySourceIfMatch=etag,
            )
        return result["CopyObjectResult"]["ETag"]

    def same_content(self, source: Mapping, dest: Mapping, source_key: str, dest_key: str) -> bool:
        """Equal ETags prove equal bytes. Different single-part, unencrypted-or-SSE-S3 ETags are
        different MD5s, so different bytes. Otherwise (multipart ETags depend on the part layout, SSE-KMS
        ETags are no MD5) compare a streamed SHA-256 of both objects."""
        src_etag, dst_etag = normalize_etag(source["ETag"]), normalize_etag(dest["ETag"])
        if src_etag == dst_etag:
            return True
        if _etag_is_md5(source) and _etag_is_md5(dest):
            return False
        return self._sha256(source_key) == self._sha256(dest_key)

    def _sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        body = self.open(key)
        with self._naming(key):
            for chunk in body.iter_chunks(chunk_size=8 * 1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def _multipart_copy(self, source_key: str, dest_key: str, size: int, etag: str) -> str:
        with self._naming(source_key):
            return self._multipart_copy_named(source_key, dest_key, size, etag)

    def _multipart_copy_named(self, source_key: str, dest_key: str, size: int, etag: str) -> str:
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
                    CopySourceIfMatch=etag,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            result = client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=dest_key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except Exception:
            client.abort_multipart_upload(Bucket=self.bucket, Key=dest_key, UploadId=upload["UploadId"])
            raise
        return result["ETag"]


def name_object(exc: BaseException, uri: str) -> None:
    """Put ``uri`` at the front of ``exc``'s message, once (an error passing through two operations,
    or named by an outer one, keeps the first name)."""
    message = str(exc.args[0]) if exc.args else ""
    if uri and not message.startswith("s3://"):
        exc.args = (f"{uri}: {message}", *exc.args[1:])


_CLIENTS: dict[tuple[str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(
    config: dg.ConfigurableResource, build: Callable[[], Any], exclude: set[str] | None = None
):
    """One boto3 client per resource class and connection settings (``exclude``: fields that are not
    any), for the life of the process: every resource instance, step and thread of the process shares
    it (boto3 clients are thread-safe). The key is a digest, so no secret is kept beyond the client."""
    digest = hashlib.sha256(config.model_dump_json(exclude=exclude).encode()).hexdigest()
    key = (type(config).__name__, digest)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = build()
        return _CLIENTS[key]


def _fast_timestamps(client):
    """Parse the response timestamps (every listed object's LastModified) with ``datetime.fromisoformat``
    instead of botocore's dateutil-based parser, which is over half of the client's CPU when listing a
    large bucket (measured in bench/bench_sensor.py). botocore exposes the parser only on the response
    parser factory its endpoint holds; if that ever moves, the client keeps the default parser."""
    factory = getattr(getattr(client, "_endpoint", None), "_response_parser_factory", None)
    if factory is not None:
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    return client


def parse_timestamp(value: str) -> datetime:
    """An AWS timestamp as an aware UTC datetime: ISO 8601 fast, anything else through botocore's parser."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return botocore_parse_timestamp(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _forget_clients() -> None:
    """In a forked child: the parent's clients hold the parent's connections, and the lock may have
    been held by a parent thread at the fork."""
    global _CLIENTS_LOCK
    _CLIENTS.clear()
    _CLIENTS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_clients)


def _size(obj: Mapping) -> int:
    """Size of a listed (``Size``) or headed (``ContentLength``) object."""
    return int(obj["Size"] if "Size" in obj else obj["ContentLength"])


def _etag_is_md5(obj: Mapping) -> bool:
    """Whether the ETag is the MD5 of the content: single-part, and not SSE-KMS/SSE-C encrypted.
    A listing carries no encryption headers: only a HEAD can vouch for that."""
    if "-" in normalize_etag(obj["ETag"]) or "ContentLength" not in obj:
        return False
    return obj.get("ServerSideEncryption") in (None, "AES256") and not obj.get("SSECustomerAlgorithm")


class AwsServiceResource(dg.ConfigurableResource):
    """Connection settings of an AWS service that dagster-aws has no resource for (Glue, SQS), and its
    boto3 client: one per process and connection settings (see ``_shared_client``)."""

    region_name: str = Field(description="AWS region (SF_AWS_REGION)")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint, e.g. the local moto server")
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def service_client(self, service: str):
        # The subclass's own fields (a database, a queue) do not change the connection.
        own = set(type(self).model_fields) - set(AwsServiceResource.model_fields)
        return _shared_client(self, lambda: self._new_client(service), exclude=own)

    def _new_client(self, service: str):
        # A session of its own: boto3's default session is not thread-safe.
        return boto3.session.Session().client(
            service,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url or None,
            aws_access_key_id=self.aws_access_key_id or None,
            aws_secret_access_key=self.aws_secret_access_key or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )


class LandingEvents(AwsServiceResource):
    """The SQS queue the landing bucket's S3 event notifications go to (optional: without a queue URL the
    sensor relies on listing alone)."""

    queue_url: str | None = Field(default=None, description="SQS queue URL (SF_LANDING_QUEUE_URL)")

    @property
    def enabled(self) -> bool:
        return bool(self.queue_url)

    def client(self):
        return self.service_client("sqs")

    def receive(self, limit: int, visibility_seconds: int) -> list[dict]:
        """Up to ``limit`` waiting messages (10 per call, no long polling: a sensor tick must not wait).
        Each stays invisible to other readers for ``visibility_seconds`` unless deleted."""
        messages: list[dict] = []
        while len(messages) < limit:
            batch = (
                self.client()
                .receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, limit - len(messages)),
                    VisibilityTimeout=visibility_seconds,
                    WaitTimeSeconds=0,
                )
                .get("Messages", [])
            )
            if not batch:
                break
            messages.extend(batch)
        return messages

    def delete(self, messages: Sequence[dict]) -> None:
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            self.client().delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )


class GlueCatalog(AwsServiceResource):
    """The AWS Glue Data Catalog (dagster-aws has no Glue resource), on boto3."""

    database: str = Field(description="Glue database of the raw tables (SF_GLUE_DATABASE)")

    def client(self):
        return self.service_client("glue")

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

    def create_partitions(
        self, name: str, inputs: Sequence[Mapping], database: str | None = None
    ) -> list[str]:
        """BatchCreatePartition in chunks of 100 (the API limit); returns error messages, if any."""
        errors = []
        for chunk in batching.chunks(list(inputs), 100):
            result = self.client().batch_create_partition(
                DatabaseName=database or self.database, TableName=name, PartitionInputList=chunk
            )
            errors.extend(e["ErrorDetail"]["ErrorMessage"] for e in result.get("Errors", []))
        return errors

    def update_partitions(
        self, name: str, inputs: Sequence[Mapping], database: str | None = None
    ) -> list[str]:
        """BatchUpdatePartition (each input replaces the partition with the same values) in chunks of 100;
        returns error messages, if any."""
        errors = []
        entries = [{"PartitionValueList": list(p["Values"]), "PartitionInput": dict(p)} for p in inputs]
        for chunk in batching.chunks(entries, 100):
            result = self.client().batch_update_partition(
                DatabaseName=database or self.database, TableName=name, Entries=chunk
            )
            errors.extend(e["ErrorDetail"]["ErrorMessage"] for e in result.get("Errors", []))
        return errors

    def delete_partitions(
        self, name: str, values: Sequence[Sequence[str]], database: str | None = None
    ) -> None:
        for chunk in batching.chunks([{"Values": list(v)} for v in values], 25):
            self.client().batch_delete_partition(
                DatabaseName=database or self.database, TableName=name, PartitionsToDelete=chunk
            )


