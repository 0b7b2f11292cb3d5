"""S3 event notifications (as SQS delivers them) -> the objects they announce.

A message body is S3's own event (``{"Records": [...]}``), the same wrapped by SNS (``{"Type":
"Notification", "Message": "<the event>"}``) when S3 notifies a topic the queue subscribes to, or S3's
one-off ``s3:TestEvent``. Only ObjectCreated records for our bucket count; keys arrive URL-encoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from sf_platform.core.sensor_cursor import ListedObject


@dataclass(frozen=True)
class Announced:
    created: list[ListedObject]  # objects created or overwritten
    ignored: int  # records that are not an ObjectCreated of our bucket (removals, other buckets, tests)


def objects_of_message(body: object, bucket: str) -> Announced:
    """The objects one SQS message announces for ``bucket``. Raises ValueError for a body that is no
    S3 event (the caller leaves such messages in the queue rather than guessing)."""
    if not isinstance(body, str):
        raise ValueError("the message has no text body")
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(event, dict) and event.get("Type") == "Notification" and "Message" in event:
        return objects_of_message(event["Message"], bucket)
    if not isinstance(event, dict):
        raise ValueError("not an S3 event (a JSON object with Records)")
    if event.get("Event") == "s3:TestEvent":
        return Announced([], 1)
    records = event.get("Records")
    if not isinstance(records, list):
        raise ValueError("not an S3 event (a JSON object with Records)")
    created, ignored = [], 0
    for record in records:
        if not _is_created_in(record, bucket):
            ignored += 1
            continue
        obj = record["s3"].get("object")
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("key"), str)
            or not isinstance(obj.get("eTag"), str)
        ):
            raise ValueError(f"ObjectCreated record without a key and an eTag: {json.dumps(record)[:300]}")
        created.append(
            ListedObject(unquote_plus(obj["key"]), obj["eTag"], _event_time(record.get("eventTime")))
        )
    return Announced(created, ignored)


def _is_created_in(record: object, bucket: str) -> bool:
    if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
        return False
    s3 = record.get("s3")
    return isinstance(s3, dict) and isinstance(s3.get("bucket"), dict) and s3["bucket"].get("name") == bucket


def _event_time(value: object) -> datetime:
    """eventTime is ISO 8601 in UTC ("2025-08-29T15:11:00.000Z"); without a usable one, now (the safe
    side: the object then counts as recent)."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
