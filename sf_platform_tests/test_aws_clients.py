"""The AWS resources' boto3 clients: one per connection settings in a process, made again after a fork,
parsing timestamps like botocore does; against the moto server, S3 errors naming their object and
copy_verified never leaving an unverified copy behind."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from dagster_aws.s3 import S3Resource
from hypothesis import given
from hypothesis import strategies as st

from sf_platform.resources.aws import GlueCatalog, LandingBucket, LandingEvents, parse_timestamp


def _glue(**settings) -> GlueCatalog:
    # A key id of its own per call, so no other test's client is shared.
    defaults = {
        "region_name": "us-east-1",
        "aws_access_key_id": uuid.uuid4().hex,
        "aws_secret_access_key": "x",
        "database": "raw",
    }
    return GlueCatalog(**(defaults | settings))


def test_one_client_per_connection_settings():
    glue = _glue()
    assert glue.client() is glue.client()
    assert _glue(aws_access_key_id=glue.aws_access_key_id, database="other").client() is glue.client()
    assert _glue().client() is not glue.client()
    connection = {k: getattr(glue, k) for k in ("region_name", "aws_access_key_id", "aws_secret_access_key")}
    events = LandingEvents(**connection, queue_url="https://sqs/q1")
    assert events.client() is LandingEvents(**connection, queue_url="https://sqs/q2").client()
    assert events.client().meta.service_model.service_name == "sqs"
    assert glue.client().meta.service_model.service_name == "glue"
    s3 = S3Resource(region_name="us-east-1", aws_access_key_id=uuid.uuid4().hex, aws_secret_access_key="x")
    landing = LandingBucket(s3=s3, bucket="b")
    assert landing.client() is LandingBucket(s3=landing.s3, bucket="other").client()


def test_threads_share_one_client():
    glue = _glue()
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: glue.client(), range(32)))
    assert all(c is clients[0] for c in clients)


def test_a_forked_child_makes_its_own_client():
    glue = _glue()
    parent = glue.client()
    pid = os.fork()
    if pid == 0:  # the child: exit at once, without pytest's teardown
        os._exit(0 if glue.client() is not parent and glue.client() is glue.client() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert glue.client() is parent


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["iso_z", "iso_ms_z", "rfc1123", "iso_offset"]),
)
def test_fast_timestamp_parser_agrees_with_botocore(moment, style):
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    text = {
        "iso_z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso_ms_z": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "rfc1123": moment.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "iso_offset": moment.strftime("%Y-%m-%dT%H:%M:%S+09:00"),
    }[style]
    ours, theirs = parse_timestamp(text), botocore_parse_timestamp(text)
    assert ours == theirs and ours.utcoffset() is not None


# ----------------------------------------------------------------- S3 against the moto server


def _own_bucket(stack_env, landing=None, **s3_settings) -> LandingBucket:
    """A LandingBucket with a boto3 client of its own (a key id of its own), on ``landing``'s bucket:
    event hooks registered on it touch no other test's client."""
    s3 = S3Resource(
        region_name=stack_env["SF_AWS_REGION"],
        endpoint_url=s3_settings.pop("endpoint_url", stack_env["SF_AWS_ENDPOINT_URL"]),
        aws_access_key_id=uuid.uuid4().hex,
        aws_secret_access_key="x",
        **s3_settings,
    )
    return LandingBucket(s3=s3, bucket=landing.bucket if landing is not None else f"sf-t-{uuid.uuid4().hex[:10]}")


def _break_after(bucket: LandingBucket, operation: str, message: str) -> None:
    """The connection 'resets' after S3 has answered ``operation``: the request took effect, the caller
    never learns it (a botocore event hook on the real client)."""

    def reset(**_):
        raise ConnectionResetError(104, message)

    bucket.client().meta.events.register(f"after-call.s3.{operation}", reset)


@pytest.mark.integration
def test_botocore_errors_name_the_object(stack_env, landing):
    from botocore.exceptions import ClientError, EndpointConnectionError

    missing = f"s3://{landing.bucket}/member/missing.csv"
    with pytest.raises(ClientError) as raised:
        landing.open("member/missing.csv")
    assert str(raised.value).startswith(f"{missing}: An error occurred (NoSuchKey) when calling the GetObject")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"  # type and code kept for callers

    nowhere = _own_bucket(stack_env)  # a bucket that does not exist
    with pytest.raises(ClientError, match=rf"^s3://{nowhere.bucket}/member/a.csv: An error occurred \(NoSuchBucket\)"):
        nowhere.put("member/a.csv", b"id\n1\n")
    with pytest.raises(ClientError, match=rf"^s3://{nowhere.bucket}/member/: An error occurred \(NoSuchBucket\)"):
        nowhere.list_objects("member/")
    with pytest.raises(ClientError, match=rf"^s3://{nowhere.bucket}/member/a.csv: .*NoSuchBucket"):
        nowhere.delete("member/a.csv", if_match='"0123"')

    from sf_platform.local.stack import free_port

    closed = _own_bucket(stack_env, landing, endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    with pytest.raises(EndpointConnectionError, match=rf"^s3://{landing.bucket}/member/a.csv: Could not connect"):
        closed.head("member/a.csv")


@pytest.mark.integration
def test_copy_verified_removes_a_copy_made_before_the_connection_broke(stack_env, landing):
    landing.put("SRC_202509011200.csv", b"id\n1\n2\n")
    source = landing.head("SRC_202509011200.csv")
    bucket = _own_bucket(stack_env, landing)
    _break_after(bucket, "CopyObject", "connection reset after the copy was made")
    with pytest.raises(ConnectionResetError, match="after the copy was made"):
        bucket.copy_verified("SRC_202509011200.csv", "src/copy.csv", source)
    assert landing.head("src/copy.csv") is None
    assert landing.open("SRC_202509011200.csv").read() == b"id\n1\n2\n"


@pytest.mark.integration
def test_copy_verified_removes_its_copy_when_verifying_it_fails(stack_env, landing):
    # A multipart object: its ETag is no MD5, a copy's differs, so the copy is verified (HEAD, then
    # both objects' SHA-256), and the connection resets during that HEAD.
    client = landing.client()
    part = b"a" * (5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket=landing.bucket, Key="SRC_202509011200.csv")
    parts = [
        {"PartNumber": n, "ETag": client.upload_part(Bucket=landing.bucket, Key="SRC_202509011200.csv",
                                                      UploadId=upload["UploadId"], PartNumber=n, Body=body)["ETag"]}
        for n, body in ((1, b"id\n" + part), (2, b"1\n"))
    ]
    client.complete_multipart_upload(Bucket=landing.bucket, Key="SRC_202509011200.csv",
                                     UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
    source = landing.head("SRC_202509011200.csv")
    assert source["ETag"].endswith('-2"')

    assert landing.copy_verified("SRC_202509011200.csv", "src/good.csv", source)["ContentLength"] == len(part) + 5
    assert landing.head("src/good.csv")["ContentLength"] == len(part) + 5  # verified, kept

    bucket = _own_bucket(stack_env, landing)
    _break_after(bucket, "HeadObject", "connection reset while verifying the copy")
    with pytest.raises(ConnectionResetError, match="while verifying"):
        bucket.copy_verified("SRC_202509011200.csv", "src/copy.csv", source)
    assert landing.head("src/copy.csv") is None
    assert landing.head("SRC_202509011200.csv")["ETag"] == source["ETag"]
