"""The new-file sensor's cursor: which objects in a listing are new or changed since the last tick.

S3's LastModified has whole-second resolution (many objects share one second), objects can appear in a
listing with a timestamp slightly older than others already seen, and objects get deleted. So the
cursor keeps a watermark plus every (key, ETag) seen within a lag window before it: an object is new
when it is newer than the window, or inside the window with a (key, ETag) not seen yet. The cursor
stays small however big the bucket is (only the window's keys are kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_LAG = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ListedObject:
    key: str
    etag: str
    last_modified: datetime


@dataclass
class Cursor:
    watermark: datetime = _EPOCH  # newest LastModified seen
    recent: dict[str, str] = field(default_factory=dict)  # key -> etag seen with LastModified in the window

    def to_json(self) -> str:
        return json.dumps({"watermark": self.watermark.isoformat(), "recent": self.recent}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(datetime.fromisoformat(data["watermark"]), dict(data.get("recent", {})))


def advance(
    cursor: Cursor, listing: Iterable[ListedObject], lag: timedelta = DEFAULT_LAG
) -> tuple[list[ListedObject], Cursor]:
    """New or changed objects of ``listing`` (sorted by key), and the cursor after them."""
    objects = list(listing)
    window_start = cursor.watermark - lag
    # A re-upload of identical bytes (same ETag) is not new; run keys catch the rest.
    fresh = [o for o in objects if o.last_modified >= window_start and cursor.recent.get(o.key) != _clean(o.etag)]
    watermark = max([cursor.watermark, *(o.last_modified for o in objects)])
    new_window_start = watermark - lag
    # Keep what is still inside the window; deleted objects simply drop out of the listing.
    recent = {o.key: _clean(o.etag) for o in objects if o.last_modified >= new_window_start}
    return sorted(fresh, key=lambda o: o.key), Cursor(watermark, recent)


def _clean(etag: str) -> str:
    return etag.strip().strip('"')
