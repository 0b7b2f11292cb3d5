"""The hub's load plan: which S3 objects a hub table already holds, and what a curate run must do.

The hub keeps a ledger of (object key, ETag, rows) committed in the same Iceberg snapshot as the rows
(``hub/ledger.py``). Comparing the bucket listing with it says, per object: curate it (new), replace it
(same key, new ETag: its old rows go in the same commit), skip it (unchanged), or drop its rows (object
deleted). MySQL and Snowflake never list the bucket: their ledgers hold the hub snapshot they loaded
(``hops/sink.py``). Pure: reading and writing the hub's ledger lives in ``hub/ledger.py``.
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
    """Compare the objects under a table prefix with the hub table's ledger."""
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
