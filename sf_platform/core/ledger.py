"""The load ledger model: which S3 objects a target already holds, and what a run must do.

Each target keeps a ledger table of (table, object key, ETag, rows) written in the same transaction as
the rows themselves. Comparing the bucket listing with the ledger says, per object: load it (new),
reload it (same key, new ETag: delete its old rows first), skip it (unchanged), or drop its rows
(object deleted). Pure: the SQL that reads and writes ledgers lives with each target.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceObject:
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    etag: str
    rows_loaded: int


@dataclass(frozen=True)
class LoadPlan:
    new: tuple[SourceObject, ...]
    replaced: tuple[SourceObject, ...]
    unchanged: tuple[SourceObject, ...]
    deleted: tuple[LedgerEntry, ...]

    @property
    def to_load(self) -> tuple[SourceObject, ...]:
        return self.new + self.replaced


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


def source_id(key: str) -> int:
    """A stable positive 63-bit id of an object key: what MySQL rows carry to say which object they
    came from (a key can be 1,024 bytes; an id keeps the table's primary key short)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def plan_loads(objects: Iterable[SourceObject], ledger: Mapping[str, LedgerEntry]) -> LoadPlan:
    """Compare the objects under a table prefix with the target's ledger for that table."""
    new, replaced, unchanged = [], [], []
    seen = set()
    for obj in sorted(objects, key=lambda o: o.key):
        seen.add(obj.key)
        entry = ledger.get(obj.key)
        if entry is None:
            new.append(obj)
        elif normalize_etag(entry.etag) != normalize_etag(obj.etag):
            replaced.append(obj)
        else:
            unchanged.append(obj)
    deleted = tuple(e for k, e in sorted(ledger.items()) if k not in seen)
    return LoadPlan(tuple(new), tuple(replaced), tuple(unchanged), deleted)
