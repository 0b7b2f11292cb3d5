"""core.transient: which failures the table step retries (transient) and which it does not (permanent)."""

from __future__ import annotations

import botocore.exceptions
import pymysql
import pytest
import snowflake.connector.errors as sf_errors

from sf_platform.core import transient


def _client_error(code: str, operation: str = "PutObject") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "m"}}, operation)


TRANSIENT = [
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionRefusedError(111, "Connection refused"),
    BrokenPipeError(32, "Broken pipe"),
    TimeoutError("timed out"),
    pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '10.0.0.1' ([Errno 111] Connection refused)"),
    pymysql.err.OperationalError(2006, "MySQL server has gone away"),
    pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
    pymysql.err.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction"),
    pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction"),
    pymysql.err.OperationalError(1040, "Too many connections"),
    _client_error("SlowDown"),
    _client_error("Throttling", "GetTable"),
    _client_error("ThrottlingException", "UpdateTable"),
    _client_error("RequestTimeout"),
    _client_error("ServiceUnavailable"),
    _client_error("InternalError"),
    _client_error("ConcurrentModificationException", "BatchCreatePartition"),
    botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
    botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"),
    botocore.exceptions.ConnectionClosedError(endpoint_url="https://s3.amazonaws.com"),
    # an S3 body that breaks off while it is read (what botocore raises from StreamingBody.read)
    botocore.exceptions.ResponseStreamingError(error="('Connection broken: IncompleteRead(1 bytes read, 9 more expected)')"),
    _client_error("503", "GetObject"),
    botocore.exceptions.IncompleteReadError(actual_bytes=5, expected_bytes=9),  # the body ended early
    sf_errors.OperationalError(msg="Failed to get the response. Hanging? method: post", errno=250003),
    sf_errors.OperationalError(msg="Could not connect to Snowflake backend after 2 attempt(s)", errno=250001),
    sf_errors.DatabaseError(msg="Statement reached its statement or warehouse timeout of 60 second(s)", errno=625),
]

PERMANENT = [
    pymysql.err.OperationalError(1045, "Access denied for user 'loader'@'10.0.0.2' (using password: YES)"),
    pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax; check the manual"),
    pymysql.err.OperationalError(1050, "Table 'member' already exists"),
    pymysql.err.OperationalError(1118, "Row size too large"),
    pymysql.err.DataError(1406, "Data too long for column 'name' at row 1"),
    _client_error("AccessDenied"),
    _client_error("InvalidAccessKeyId"),
    _client_error("SignatureDoesNotMatch"),
    _client_error("NoSuchBucket"),
    _client_error("EntityNotFoundException", "GetTable"),
    sf_errors.DatabaseError(msg="Failed to connect to DB. Incorrect username or password was specified.", errno=250001),
    sf_errors.ProgrammingError(msg="SQL compilation error: syntax error line 1 at position 7", errno=1003),
    ValueError("could not convert string to float: 'abc'"),
    # an object whose bytes do not match their checksum: not worth reading again at once
    botocore.exceptions.FlexibleChecksumError(error_msg="Expected checksum abc= did not match calculated checksum: xyz="),
    EOFError("Compressed file ended before the end-of-stream marker was reached"),
    KeyError("member"),
    RuntimeError("something unexpected"),
]


def _ids(values):
    return [f"{type(v).__name__}-{i}" for i, v in enumerate(values)]


@pytest.mark.parametrize("exc", TRANSIENT, ids=_ids(TRANSIENT))
def test_transient_errors_are_retried(exc):
    assert transient.classify(exc).transient, transient.classify(exc)
    # the table step only keeps "TypeName: message" for a failed table: the text says the same
    assert transient.classify_text(f"{type(exc).__name__}: {exc}").transient or type(exc).__module__.startswith(
        "snowflake"
    )


@pytest.mark.parametrize("exc", PERMANENT, ids=_ids(PERMANENT))
def test_permanent_errors_are_not_retried(exc):
    assert not transient.classify(exc).transient, transient.classify(exc)
    assert not transient.classify_text(f"{type(exc).__name__}: {exc}").transient


def test_snowflake_text_as_the_step_records_it():
    text = "OperationalError: 250003 (08001): Failed to get the response. Hanging? method: post, url: https://x"
    assert transient.classify_text(text).transient
    text = "DatabaseError: 250001 (08001): Failed to connect to DB: x:443. Incorrect username or password was specified."
    assert not transient.classify_text(text).transient


def test_a_wrapped_transient_error_is_transient():
    try:
        try:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        except pymysql.MySQLError as inner:
            raise RuntimeError("member: load failed") from inner
    except RuntimeError as outer:
        assert transient.classify(outer).transient
    # as the MySQL hop words it: the inner type and message kept in its own
    wrapped = "MirrorError: member/a.csv: cannot be read: ReadTimeoutError: Read timeout on endpoint URL: \"None\""
    assert transient.classify_text(wrapped).transient


def test_permanent_wins_over_transient_in_one_chain():
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            raise pymysql.err.OperationalError(1045, "Access denied for user 'x'")  # noqa: B904
    except pymysql.MySQLError as exc:
        assert not transient.classify(exc).transient


def test_all_transient_needs_every_failure_transient():
    reset = "OperationalError: (2013, 'Lost connection to MySQL server during query')"
    denied = "OperationalError: (1045, \"Access denied for user 'x'@'y' (using password: YES)\")"
    slow = "ClientError: An error occurred (SlowDown) when calling the PutObject operation: Please reduce your request rate."
    assert transient.all_transient([reset, slow])
    assert not transient.all_transient([reset, denied])
    assert not transient.all_transient([])


def test_names_of_objects_do_not_decide():
    # resources/aws.py names the object in a botocore error; a key that reads like a permanent marker
    # must not make a throttled GET permanent, nor a denied one transient.
    slow = _client_error("SlowDown", "GetObject")
    slow.args = (f"s3://landing/authentication/syntax error.csv: {slow.args[0]}",)
    assert transient.classify(slow).transient
    denied = _client_error("AccessDenied", "GetObject")
    denied.args = (f"s3://landing/timeout/connection reset.csv: {denied.args[0]}",)
    assert not transient.classify(denied).transient


def test_a_source_read_that_broke_off_is_transient_whatever_its_key():
    # core/source_file.TransientReadError as the table step records it: the cause was classified already.
    text = ("TransientReadError: access_denied/a.csv: the read broke off (transient, retried): "
            "ResponseStreamingError: An error occurred while reading from response stream")
    assert transient.classify_text(text) == transient.Verdict(True, "a source read broke off")
    assert transient.all_transient([text])
    # A bad file is not: SourceReadError keeps its reason's own verdict.
    assert not transient.classify_text("SourceReadError: t/a.csv.gz: cannot be read: gzip data is truncated").transient
