"""Organize hop: move loose landing files into one ``<table>/`` prefix per table, losing nothing.

A move is copy (pinned to the listed ETag), verify (size and checksum), then delete (only while the
source still has the copied content). A run that was killed between the copy and the delete is finished
on the next run (the verified copy exists, so the source is deleted); a killed multipart copy is undone
(its unfinished upload is aborted); a copy that fails verification is removed and the source kept. A
destination that already holds *different* bytes is never overwritten. Names that do not match are
left in place and reported with the reason. Moves run on a small thread pool: they are S3 round trips.
"""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from sf_platform.core.naming import classify_loose_key
from sf_platform.resources.aws import LandingBucket, MoveError

WORKERS = 8


@dataclass
class OrganizeReport:
    moved: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # table -> new keys
    bytes_moved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    finished: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # table -> source keys
    aborted_uploads: list[str] = field(default_factory=list)  # unfinished multipart copies undone
    left_in_place: dict[str, str] = field(default_factory=dict)  # key -> reason
    failed: dict[str, str] = field(default_factory=dict)  # key -> error (source kept)
    listed: int = 0  # root objects seen

    def tables(self) -> set[str]:
        return set(self.moved)

    def summary(self, table: str) -> dict:
        """This run's numbers for one table (for its materialization)."""
        return {
            "files_moved": len(self.moved.get(table, [])),
            "bytes_moved": self.bytes_moved.get(table, 0),
            "interrupted_moves_finished": len(self.finished.get(table, [])),
        }


@dataclass(frozen=True)
class _Outcome:
    key: str
    table: str
    dest: str
    size: int
    status: str  # moved | finished | conflict | failed
    detail: str = ""


def organize(
    bucket: LandingBucket, pattern: str, *, tables: set[str] | None = None, workers: int = WORKERS
) -> OrganizeReport:
    """Move every loose root object that names one of ``tables`` (None: any table) into that table's
    prefix. Files of other tables are not touched: a run moves only the files of the tables it loads,
    so runs for different tables never move each other's files."""
    report = OrganizeReport()
    planned: list[tuple[dict, str, str]] = []
    objects = bucket.list_root()
    report.listed = len(objects)
    for obj in objects:
        match = classify_loose_key(obj["Key"], pattern)
        if match.table is None:
            report.left_in_place[obj["Key"]] = match.reason
        elif tables is None or match.table in tables:
            planned.append((obj, match.table, match.destination))
    if not planned:
        return report
    destinations = [dest for _, _, dest in planned]
    report.aborted_uploads = _abort_unfinished_copies(bucket, set(destinations))
    there = _existing_destinations(bucket, destinations)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="organize") as pool:
        outcomes = list(pool.map(lambda item: _move(bucket, *item, there.get(item[2])), planned))
    for outcome in outcomes:
        _record(report, outcome)
    return report


def _abort_unfinished_copies(bucket: LandingBucket, destinations: set[str]) -> list[str]:
    """An unfinished multipart upload to a destination is a large copy killed mid-way: undo it."""
    aborted = []
    for upload in bucket.list_uploads():
        if upload["Key"] in destinations:
            bucket.abort_upload(upload["Key"], upload["UploadId"])
            aborted.append(upload["Key"])
    return aborted


def _existing_destinations(bucket: LandingBucket, destinations: list[str]) -> dict[str, dict]:
    """Destination key -> the object already there: one listing per table folder instead of a HEAD
    per file, starting at the planned names' common prefix so an old, large folder is not listed whole."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for dest in destinations:
        by_folder[dest[: dest.rfind("/") + 1]].append(dest)
    wanted = set(destinations)
    found = {}
    for names in by_folder.values():
        for obj in bucket.list_objects(os.path.commonprefix(names), delimiter="/"):
            if obj["Key"] in wanted:
                found[obj["Key"]] = obj
    return found


def _move(bucket: LandingBucket, obj: dict, table: str, dest: str, existing: dict | None) -> _Outcome:
    key, size, etag = obj["Key"], int(obj["Size"]), obj["ETag"]
    try:
        status, detail = _copy_unless_there(bucket, obj, dest, existing)
        if status == "conflict":
            return _Outcome(key, table, dest, size, status, detail)
        bucket.delete(key, if_match=etag)
    except MoveError as exc:
        return _Outcome(key, table, dest, size, "failed", str(exc))
    except (ClientError, BotoCoreError) as exc:  # S3 said no, or could not be reached: the source stays
        return _Outcome(key, table, dest, size, "failed", f"{key}: {exc}")
    return _Outcome(key, table, dest, size, status)


def _copy_unless_there(bucket: LandingBucket, obj: dict, dest: str, existing: dict | None) -> tuple[str, str]:
    """-> ("moved" | "finished" | "conflict", detail). "finished": an earlier run's verified copy is
    already at ``dest``; "conflict": ``dest`` holds other bytes, which must not be overwritten."""
    if existing is None:
        bucket.copy_verified(obj["Key"], dest, source=obj)
        return "moved", ""
    if int(existing["Size"]) == int(obj["Size"]) and bucket.same_content(obj, existing, obj["Key"], dest):
        return "finished", ""
    return "conflict", f"{dest} already exists with different content; not overwritten (rename or remove one)"


def _record(report: OrganizeReport, outcome: _Outcome) -> None:
    if outcome.status == "conflict":
        report.left_in_place[outcome.key] = outcome.detail
        return
    if outcome.status == "failed":
        report.failed[outcome.key] = outcome.detail
        return
    if outcome.status == "finished":
        report.finished[outcome.table].append(outcome.key)
    report.moved[outcome.table].append(outcome.dest)
    report.bytes_moved[outcome.table] += outcome.size


def unregistered_prefixes(bucket: LandingBucket, tables: set[str]) -> list[str]:
    """Top-level folders that are not registered tables (hidden ``_``/``.`` folders aside): data the
    registry does not cover yet, for ``sf-platform discover``."""
    return sorted(p for p in bucket.list_prefixes() if p not in tables and not p.startswith(("_", ".")))
