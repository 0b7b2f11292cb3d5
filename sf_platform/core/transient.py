"""Is a failure worth retrying? Transient (the service was busy or the network blinked) vs permanent.

Dagster's ``RetryPolicy`` retries a step whatever made it fail; the table step (``assets/hop.py``) asks
this module instead, and requests a retry only when *every* failed table failed transiently: a retry
redoes only unfinished work (every hop is idempotent through its ledger), but retrying a bad password
or a bad DDL only delays the failure and hammers the target.

Transient:
- the network: connection reset / refused / aborted, broken pipe, timeouts, a server closing the
  connection (Python's own errors, urllib3's and botocore's connection and read-timeout errors);
- MySQL: 2002/2003 (cannot connect), 2006 (server has gone away), 2013/2055 (lost connection),
  1040 (too many connections), 1053 (server shutdown), 1205 (lock wait timeout), 1213 (deadlock);
- AWS: throttling (Throttling, ThrottlingException, SlowDown, RequestLimitExceeded,
  TooManyRequestsException, ...), RequestTimeout, InternalError, ServiceUnavailable, Glue's
  ConcurrentModificationException;
- Snowflake: connector errors about the connection or a timeout (250001 could not connect, 250003 no
  response, ``connection`` / ``timeout`` in the message).

Permanent, and it wins when a message shows both: MySQL 1045 (access denied) and every other MySQL
error code, DDL and SQL errors, bad credentials anywhere (``Incorrect username or password``,
InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied), a missing bucket or key, and anything this
module does not recognize (an unknown failure is not retried).

Classification works on an exception (walking its ``__cause__`` / ``__context__`` chain) or on the text
the table step records for a failed table (``"TypeName: message"``, where a hop that wraps an error keeps
the inner one's type and message).

Names in a message do not decide: ``s3://bucket/key`` (how ``resources/aws.py`` names an object) is left
out before the markers are looked for, so a table called ``authentication`` fails like any other. A
``TransientReadError`` (``core/source_file.py``: a read of a source object that broke off) was
classified here from its cause when it was raised, so its text is transient whatever key it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# MySQL client/server error codes (pymysql puts them first in the exception's args: "(2013, '...')")
MYSQL_TRANSIENT = {
    1040: "too many connections",
    1053: "server shutdown in progress",
    1205: "lock wait timeout",
    1213: "deadlock",
    2002: "cannot connect (socket)",
    2003: "cannot connect",
    2006: "server has gone away",
    2013: "lost connection during query",
    2055: "lost connection",
}

# exception type names (Python, urllib3, botocore, requests) that mean the network blinked
TRANSIENT_TYPES = {
    "ConnectionError", "ConnectionResetError", "ConnectionRefusedError", "ConnectionAbortedError",
    "BrokenPipeError", "TimeoutError", "timeout", "IncompleteRead", "RemoteDisconnected",
    "ProtocolError", "ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError",
    "ConnectionClosedError", "ResponseStreamingError", "IncompleteReadError", "ReadTimeout", "ConnectTimeout",
    "NewConnectionError", "MaxRetryError",
}

# AWS error codes (botocore ClientError: "An error occurred (SlowDown) when calling ...")
AWS_TRANSIENT = {
    "Throttling", "ThrottlingException", "ThrottledException", "SlowDown", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestThrottled",
    "RequestThrottledException", "BandwidthLimitExceeded", "EC2ThrottledException",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError",
    "InternalFailure", "InternalServiceException", "ServiceUnavailable", "ServiceUnavailableException",
    "ConcurrentModificationException", "503", "500", "502", "504",
}

# markers of a permanent failure anywhere in the text (checked first)
PERMANENT_MARKERS = (
    "incorrect username or password",
    "access denied",
    "accessdenied",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "unrecognizedclientexception",
    "invalidclienttokenid",
    "nosuchbucket",
    "sql compilation error",
    "syntax error",
    "authentication",
)

SNOWFLAKE_TRANSIENT_CODES = {"250001", "250003", "251005", "251006"}  # could not connect / no response
SNOWFLAKE_TRANSIENT_WORDS = ("connection", "timeout", "timed out", "could not connect", "failed to connect")

_S3_URI = re.compile(r"s3://\S+")
_DECIDED_TRANSIENT = re.compile(r"(?:^|[\s:(])TransientReadError:")
_MYSQL_CODE = re.compile(r"\((\d{4}),\s*['\"]")
_AWS_CODE = re.compile(r"An error occurred \(([A-Za-z0-9]+)\)")
_SNOWFLAKE_CODE = re.compile(r"\b(\d{6})(?: \([0-9A-Z]{5}\))?:")
_TYPE_NAME = re.compile(r"(?:^|[\s:(])([A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|timeout|Read|Disconnected))(?=[:(\s]|$)")


@dataclass(frozen=True)
class Verdict:
    transient: bool
    reason: str


def classify_text(text: str) -> Verdict:
    """Transient or permanent, from a failure's text (``"TypeName: message"``, possibly wrapping others)."""
    if _DECIDED_TRANSIENT.search(text):
        return Verdict(True, "a source read broke off")
    text = _S3_URI.sub("s3://<object>", text)
    lowered = text.lower()
    for code in _MYSQL_CODE.findall(text):
        if int(code) not in MYSQL_TRANSIENT:
            return Verdict(False, f"MySQL error {code}")
    for marker in PERMANENT_MARKERS:
        if marker in lowered:
            return Verdict(False, marker)
    for code in _AWS_CODE.findall(text):
        if code not in AWS_TRANSIENT:
            return Verdict(False, f"AWS error {code}")
    for code in _MYSQL_CODE.findall(text):
        return Verdict(True, f"MySQL {code}: {MYSQL_TRANSIENT[int(code)]}")
    for code in _AWS_CODE.findall(text):
        return Verdict(True, f"AWS {code}")
    if "snowflake" in lowered or _SNOWFLAKE_CODE.search(text):
        codes = set(_SNOWFLAKE_CODE.findall(text))
        if codes & SNOWFLAKE_TRANSIENT_CODES:
            return Verdict(True, f"Snowflake {sorted(codes & SNOWFLAKE_TRANSIENT_CODES)[0]}")
        if any(w in lowered for w in SNOWFLAKE_TRANSIENT_WORDS):
            return Verdict(True, "Snowflake connection/timeout")
    for name in _TYPE_NAME.findall(text):
        if name in TRANSIENT_TYPES:
            return Verdict(True, name)
    if "connection reset" in lowered or "broken pipe" in lowered:
        return Verdict(True, "connection reset")
    return Verdict(False, "not a known transient error")


def classify(exc: BaseException) -> Verdict:
    """Transient or permanent, from an exception and the chain of errors that caused it: permanent if
    any link is, transient if any link is and none is permanent."""
    verdicts = [classify_text(_describe(e)) for e in _chain(exc)]
    permanent = [v for v in verdicts if not v.transient and v.reason != "not a known transient error"]
    if permanent:
        return permanent[0]
    transient = [v for v in verdicts if v.transient]
    return transient[0] if transient else verdicts[0]


def all_transient(texts: Iterable[str]) -> bool:
    """True when there is at least one failure and every one is transient (what makes a retry worth it)."""
    verdicts = [classify_text(t) for t in texts]
    return bool(verdicts) and all(v.transient for v in verdicts)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    module = type(exc).__module__ or ""
    if module.startswith("snowflake"):
        text = f"snowflake {text}"
    errno = getattr(exc, "errno", None)
    if module.startswith("snowflake") and errno:
        text += f" {errno}:"
    return text


def _chain(exc: BaseException) -> list[BaseException]:
    seen, out, current = set(), [], exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out
