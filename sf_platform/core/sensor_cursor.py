"""The new-file sensor's cursor: which listed objects are new or changed since the last look.

S3's LastModified has whole-second resolution (many objects share one second), objects can appear in a
listing with a timestamp slightly older than others already seen (LastModified is when an upload
started), and objects get deleted. So the cursor keeps a watermark plus a digest of every (key, ETag)
seen within a lag window before it: an object is new when it is newer than the window, or inside the
window with a (key, ETag) not seen yet. Only the window's objects are kept, as 8-byte digests (12 bytes,
with their LastModified, while a sweep is in progress), so a burst of 100,000 files in one window costs
about 1-1.6 MB of cursor instead of their keys.

A big bucket is not listed in one tick: a *sweep* lists the folders a bounded number of keys per tick and
resumes where the last tick stopped, so a tick's cost does not grow with the bucket. While a sweep runs,
objects are judged against the last complete sweep's watermark and window; the watermark a sweep
commits is never later than the moment it started, because an object that lands behind the sweep's
position is only listed by the next sweep and must still be inside that sweep's window.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sf_platform.core.ledger import normalize_etag

DEFAULT_LAG = timedelta(minutes=5)
# How long a file's expected new key (after organize moves it) is remembered if it never shows up.
EXPECTED_MOVE_TTL = timedelta(hours=1)
_DIGEST_BYTES = 8
_OFFSET = struct.Struct(">i")  # a seen object's LastModified, in seconds from its sweep's start
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ListedObject:
    key: str
    etag: str
    last_modified: datetime


@dataclass
class Sweep:
    """A listing of the table folders in progress, spread over several ticks."""

    folders: tuple[str, ...]  # folders still to list; the first one is resumed after ``after``
    started: datetime  # sensor clock when the sweep began
    after: str = ""  # the last key listed in ``folders[0]`` ("" = from its start)
    watermark: datetime = _EPOCH  # newest LastModified this sweep has listed
    # digests listed at or after the window's start -> their LastModified (epoch seconds)
    seen: dict[bytes, int] = field(default_factory=dict)


@dataclass
class Cursor:
    watermark: datetime = _EPOCH  # newest LastModified the last complete sweep vouches for
    # digests of (key, ETag) it saw inside the window (moved into the sweep's ``seen`` as it re-lists them)
    recent: set[bytes] = field(default_factory=set)
    sweep: Sweep | None = None
    expected: dict[bytes, datetime] = field(default_factory=dict)  # digest -> forget after

    def seen(self, obj: ListedObject) -> bool:
        return digest(obj) in self.recent

    # -- one sweep: begin, observe listed objects (any number of ticks), end -------------------------

    def begin_sweep(self, folders: Iterable[str], now: datetime) -> None:
        # in S3's key order of their contents ("a-b/..." lists before "a/..."), which the sweep walks
        self.sweep = Sweep(tuple(sorted(folders, key=lambda f: f"{f}/")), started=now)

    def observe(self, objects: Iterable[ListedObject], lag: timedelta = DEFAULT_LAG) -> list[ListedObject]:
        """The new or changed ones among ``objects`` (listed by the current sweep), which it records."""
        sweep = self._current()
        window_start = self.watermark - lag
        fresh = []
        for obj in objects:
            sweep.watermark = max(sweep.watermark, obj.last_modified)
            if obj.last_modified < window_start:
                continue
            d = digest(obj)
            # a re-upload of identical bytes (same ETag) is not new either
            already = d in sweep.seen
            if d in self.recent:  # kept once, in the sweep's seen: the cursor does not hold it twice
                self.recent.discard(d)
                already = True
            sweep.seen[d] = int(obj.last_modified.timestamp())
            if not already and self.expected.pop(d, None) is None:
                fresh.append(obj)
        return fresh

    def announce(self, objects: Iterable[ListedObject], lag: timedelta = DEFAULT_LAG) -> list[ListedObject]:
        """The new or changed ones among objects an S3 event announced. They are recorded where the
        sweeps look (the sweep in progress, else the window), so a sweep that lists them later does not
        report them again. An event older than the window (a backlog, a redelivery) announces nothing
        the sweeps have not already reported: an event's time is never before its object's
        LastModified, and the last complete sweep listed everything that old."""
        fresh, window_start = [], self.watermark - lag
        for obj in objects:
            d = digest(obj)
            if obj.last_modified < window_start:
                continue
            if d in self.recent or (self.sweep is not None and d in self.sweep.seen):
                continue
            if self.sweep is not None:
                self.sweep.seen[d] = int(obj.last_modified.timestamp())
            else:
                self.recent.add(d)
            if self.expected.pop(d, None) is None:
                fresh.append(obj)
        return fresh

    def listed_up_to(self, key: str) -> None:
        """The current folder has been listed up to ``key``; the next tick resumes after it."""
        self._current().after = key

    def folder_done(self) -> None:
        sweep = self._current()
        sweep.folders, sweep.after = sweep.folders[1:], ""

    def end_sweep(self, now: datetime, lag: timedelta = DEFAULT_LAG) -> None:
        """Commit a finished sweep: its watermark (capped at its start) and what it saw in the new window."""
        sweep = self._current()
        self.watermark = max(self.watermark, min(sweep.watermark, sweep.started))
        window_start = int((self.watermark - lag).timestamp()) - 1  # seen keeps whole seconds
        self.recent = {d for d, modified in sweep.seen.items() if modified >= window_start}
        self.sweep = None
        self.expected = {d: until for d, until in self.expected.items() if until > now}

    def expect(self, key: str, etag: str, now: datetime) -> None:
        """``key`` will appear with ``etag`` because the platform itself puts it there (organize moving
        a loose file into its folder): not a new file when it is listed."""
        self.expected[_digest(key, etag)] = now + EXPECTED_MOVE_TTL

    def _current(self) -> Sweep:
        if self.sweep is None:
            raise RuntimeError("no sweep in progress: call begin_sweep first")
        return self.sweep

    # -- persistence --------------------------------------------------------------------------------

    def to_json(self) -> str:
        data: dict = {"version": 3, "watermark": self.watermark.isoformat(), "recent": _pack(self.recent)}
        if self.sweep is not None:
            data["sweep"] = {
                "folders": list(self.sweep.folders),
                "after": self.sweep.after,
                "started": self.sweep.started.isoformat(),
                "watermark": self.sweep.watermark.isoformat(),
                "seen": base64.b64encode(
                    b"".join(
                        d + _OFFSET.pack(_offset(m, self.sweep.started))
                        for d, m in sorted(self.sweep.seen.items())
                    )
                ).decode(),
            }
        if self.expected:
            data["expected"] = {
                base64.b64encode(d).decode(): until.isoformat() for d, until in sorted(self.expected.items())
            }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        watermark = datetime.fromisoformat(data["watermark"])
        recent = data.get("recent", "")
        if isinstance(recent, dict):  # version 1 kept {key: etag}
            return cls(watermark, {_digest(k, e) for k, e in recent.items()})
        cursor = cls(watermark, set(_unpack(recent)))
        if sweep := data.get("sweep"):
            started = datetime.fromisoformat(sweep["started"])
            cursor.sweep = Sweep(
                tuple(sweep["folders"]),
                started=started,
                after=sweep["after"],
                watermark=datetime.fromisoformat(sweep["watermark"]),
                seen=dict(_unpack_seen(sweep["seen"], started)),
            )
        cursor.expected = {
            base64.b64decode(d): datetime.fromisoformat(until)
            for d, until in data.get("expected", {}).items()
        }
        return cursor


def advance(
    cursor: Cursor, listing: Iterable[ListedObject], lag: timedelta = DEFAULT_LAG, now: datetime | None = None
) -> tuple[list[ListedObject], Cursor]:
    """One whole sweep in one step (a bucket small enough to list in one tick): the new or changed
    objects of ``listing`` (sorted by key) and the cursor after them."""
    now = now or datetime.now(UTC)
    after = Cursor(cursor.watermark, set(cursor.recent), None, dict(cursor.expected))
    after.begin_sweep([], now)
    fresh = after.observe(listing, lag)
    after.end_sweep(now, lag)
    return sorted(fresh, key=lambda o: o.key), after


def digest(obj: ListedObject) -> bytes:
    return _digest(obj.key, obj.etag)


def _digest(key: str, etag: str) -> bytes:
    # 64 bits: a false "already seen" needs two of the window's objects to collide (~n^2 / 2^65).
    return hashlib.blake2b(f"{key}\t{normalize_etag(etag)}".encode(), digest_size=_DIGEST_BYTES).digest()


def _pack(digests: Iterable[bytes]) -> str:
    return base64.b64encode(b"".join(sorted(digests))).decode()


def _unpack(text: str) -> Sequence[bytes]:
    packed = base64.b64decode(text)
    return [packed[i : i + _DIGEST_BYTES] for i in range(0, len(packed), _DIGEST_BYTES)]


def _unpack_seen(text: str, started: datetime) -> Iterable[tuple[bytes, int]]:
    packed, size, base = base64.b64decode(text), _DIGEST_BYTES + _OFFSET.size, _seconds(started)
    for i in range(0, len(packed), size):
        yield packed[i : i + _DIGEST_BYTES], base + _OFFSET.unpack_from(packed, i + _DIGEST_BYTES)[0]


def _offset(modified: int, started: datetime) -> int:
    # clamped to the 4 bytes (+-68 years): only an event's odd timestamp gets there, and it only
    # decides when the entry leaves the window
    return max(-(2**31), min(2**31 - 1, modified - _seconds(started)))


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
