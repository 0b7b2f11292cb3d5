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


def objects_of_message(body: str, bucket: str) -> Announced:
    """The objects one SQS message announces for ``bucket``. Raises ValueError for a body that is no
    S3 event at all (the caller keeps such messages out of the way rather than guessing)."""
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
        s3 = record.get("s3", {}) if isinstance(record, dict) else {}
        name = str(record.get("eventName", "")) if isinstance(record, dict) else ""
        if not name.startswith("ObjectCreated:") or s3.get("bucket", {}).get("name") != bucket:
            ignored += 1
            continue
        obj = s3.get("object", {})
        if "key" not in obj or "eTag" not in obj:
            raise ValueError(f"ObjectCreated record without key and eTag: {record}")
        created.append(
            ListedObject(unquote_plus(obj["key"]), obj["eTag"], _event_time(record.get("eventTime")))
        )
    return Announced(created, ignored)


def _event_time(value: str | None) -> datetime:
    """eventTime is ISO 8601 in UTC ("2025-08-29T15:11:00.000Z"); without one, now."""
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
