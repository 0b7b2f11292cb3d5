"""Organize hop: move loose landing files into one ``<table>/`` prefix per table, losing nothing.

A move is copy, verify (size and checksum), then delete. A run that was killed between the copy and
the delete is finished on the next run (the verified copy exists, so the source is deleted); a killed
multipart copy is undone (its unfinished upload is aborted). Names that do not match are left in place
and reported with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sf_platform.core.naming import classify_loose_key
from sf_platform.resources.aws import LandingBucket, MoveError


@dataclass
class OrganizeReport:
    moved: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # table -> keys
    bytes_moved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    finished: list[str] = field(default_factory=list)  # interrupted moves completed this run
    left_in_place: dict[str, str] = field(default_factory=dict)  # key -> reason
    failed: dict[str, str] = field(default_factory=dict)  # key -> error (source kept)

    def tables(self) -> set[str]:
        return set(self.moved)


def organize(bucket: LandingBucket, pattern: str) -> OrganizeReport:
    """Move every loose root object that names a table into that table's prefix."""
    report = OrganizeReport()
    for obj in bucket.list_root():
        key = obj["Key"]
        match = classify_loose_key(key, pattern)
        if match.table is None:
            report.left_in_place[key] = match.reason
            continue
        dest = match.destination
        try:
            bucket.abort_uploads(dest)
            if _already_copied(bucket, key, dest):
                report.finished.append(key)
            else:
                bucket.copy_verified(key, dest)
            bucket.delete(key)
        except MoveError as exc:
            report.failed[key] = str(exc)
            continue
        report.moved[match.table].append(dest)
        report.bytes_moved[match.table] += int(obj["Size"])
    return report


def _already_copied(bucket: LandingBucket, key: str, dest: str) -> bool:
    """True when ``dest`` already holds exactly the source's bytes (an interrupted move)."""
    dest_head = bucket.head(dest)
    if dest_head is None:
        return False
    source_head = bucket.head(key)
    if source_head is None or int(source_head["ContentLength"]) != int(dest_head["ContentLength"]):
        return False
    return bucket.same_content(source_head, dest_head, key, dest)
