"""The new-file sensor's cursor: which objects in a listing are new or changed since the last tick.

S3's LastModified has whole-second resolution (many objects share one second), objects can appear in a
listing with a timestamp slightly older than others already seen (LastModified is when an upload
started), and objects get deleted. So the cursor keeps a watermark plus a digest of every (key, ETag)
seen within a lag window before it: an object is new when it is newer than the window, or inside the
window with a (key, ETag) not seen yet. Only the window's objects are kept, as 8-byte digests, so a
burst of 100,000 files in one window costs about 1 MB of cursor instead of their keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_LAG = timedelta(minutes=5)
_DIGEST_BYTES = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ListedObject:
    key: str
    etag: str
    last_modified: datetime


@dataclass
class Cursor:
    watermark: datetime = _EPOCH  # newest LastModified seen
    recent: frozenset[bytes] = frozenset()  # digests of (key, ETag) seen with LastModified in the window

    def seen(self, obj: ListedObject) -> bool:
        return digest(obj) in self.recent

    def to_json(self) -> str:
        packed = base64.b64encode(b"".join(sorted(self.recent))).decode()
        return json.dumps({"watermark": self.watermark.isoformat(), "recent": packed, "version": 2})

    @classmethod
    def from_json(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        watermark = datetime.fromisoformat(data["watermark"])
        recent = data.get("recent") or {}
        if isinstance(recent, dict):  # version 1 kept {key: etag}
            return cls(watermark, frozenset(_digest(k, e) for k, e in recent.items()))
        packed = base64.b64decode(recent)
        return cls(
            watermark, frozenset(packed[i : i + _DIGEST_BYTES] for i in range(0, len(packed), _DIGEST_BYTES))
        )


def advance(
    cursor: Cursor, listing: Iterable[ListedObject], lag: timedelta = DEFAULT_LAG
) -> tuple[list[ListedObject], Cursor]:
    """New or changed objects of ``listing`` (sorted by key), and the cursor after them."""
    objects = list(listing)
    window_start = cursor.watermark - lag
    # A re-upload of identical bytes (same ETag) is not new; run keys catch the rest.
    fresh = [o for o in objects if o.last_modified >= window_start and not cursor.seen(o)]
    watermark = max([cursor.watermark, *(o.last_modified for o in objects)])
    new_window_start = watermark - lag
    # Keep what is still inside the window; deleted objects simply drop out of the listing.
    recent = frozenset(digest(o) for o in objects if o.last_modified >= new_window_start)
    return sorted(fresh, key=lambda o: o.key), Cursor(watermark, recent)


def digest(obj: ListedObject) -> bytes:
    return _digest(obj.key, obj.etag)


def _digest(key: str, etag: str) -> bytes:
    # 64 bits: a false "already seen" needs two of the window's objects to collide (~n^2 / 2^65).
    return hashlib.blake2b(f"{key}\t{_clean(etag)}".encode(), digest_size=_DIGEST_BYTES).digest()


def _clean(etag: str) -> str:
    return etag.strip().strip('"')
