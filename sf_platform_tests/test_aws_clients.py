"""The AWS resources' boto3 clients: one per connection settings in a process, made again after a fork,
parsing timestamps like botocore does."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

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
