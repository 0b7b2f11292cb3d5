"""The hub's ledger: which source object versions (key, ETag) a hub table holds, committed WITH the rows.

A curate commit writes the ledger as an immutable object named by its content
(``_sf/hub/<table>/ledger-<sha256>.json.gz``) BEFORE the commit, and the commit's snapshot summary points
at it (``sf.ledger``) with a few counts. The Iceberg commit is the one atomic step: a run killed before
it leaves an unreferenced ledger object (ignored, removed as an orphan); after it, rows and ledger are
both there. Why not the (key, ETag) pairs in the summary itself: every retained snapshot's summary is
rewritten into every later ``metadata.json`` (docs/iceberg_spike/REPORT.md section 2), so 10,000 objects
x 30 snapshots would make each commit write tens of MB. Every commit we make (compaction too) carries
the pointer forward, so the current snapshot always names the ledger of the rows it holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from sf_platform.core.ledger import LedgerEntry
from sf_platform.hub.conventions import OPERATION

LEDGER_ROOT = "_sf/hub"
P_LEDGER = "sf.ledger"  # snapshot summary: key of the ledger object in the landing bucket
P_OBJECTS = "sf.objects"  # ... source objects in the table
P_ROWS = "sf.rows"  # ... rows in the table (= total-records)
P_QUARANTINED = "sf.rows-quarantined"  # ... rows of those objects quarantined by curation
P_RAW_BYTES = "sf.raw-bytes"  # ... source bytes of those objects
CARRIED = (P_LEDGER, P_OBJECTS, P_ROWS, P_QUARANTINED, P_RAW_BYTES)


class LedgerError(RuntimeError):
    """The ledger a snapshot names cannot be read: the hub table cannot be curated incrementally."""


@dataclass(frozen=True)
class Curated:
    """One source object version in the hub table."""

    etag: str
    rows: int
    rejected: int = 0  # rows quarantined at curation
    raw_bytes: int = 0
    quarantine_key: str = ""


@dataclass
class HubLedger:
    objects: dict[str, Curated] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        data = {k: asdict(v) for k, v in sorted(self.objects.items())}
        return gzip.compress(json.dumps({"objects": data}, separators=(",", ":")).encode(), mtime=0)

    @classmethod
    def from_bytes(cls, body: bytes) -> HubLedger:
        data = json.loads(gzip.decompress(body))
        return cls({k: Curated(**v) for k, v in data["objects"].items()})

    def key(self, table: str) -> str:
        digest = hashlib.sha256(self.to_bytes()).hexdigest()[:32]
        return f"{LEDGER_ROOT}/{table}/ledger-{digest}.json.gz"

    def entries(self) -> dict[str, LedgerEntry]:
        """What ``core.ledger.plan_loads`` compares the listing against."""
        return {k: LedgerEntry(k, v.etag, v.rows) for k, v in self.objects.items()}

    def totals(self) -> tuple[int, int, int]:
        """(rows, rows quarantined, raw bytes) over every object."""
        values = self.objects.values()
        return sum(v.rows for v in values), sum(v.rejected for v in values), sum(v.raw_bytes for v in values)

    def summary(self, table: str, operation: str) -> dict[str, str]:
        """The snapshot summary properties of a commit holding exactly these objects."""
        rows, rejected, raw = self.totals()
        return {
            OPERATION: operation, P_LEDGER: self.key(table), P_OBJECTS: str(len(self.objects)),
            P_ROWS: str(rows), P_QUARANTINED: str(rejected), P_RAW_BYTES: str(raw),
        }


def carried(summary: Mapping[str, str] | None, operation: str) -> dict[str, str]:
    """The properties a commit that changes no object (compaction) carries forward from ``summary``."""
    summary = summary or {}
    return {OPERATION: operation} | {k: summary[k] for k in CARRIED if summary.get(k) is not None}


def save(bucket, table: str, ledger: HubLedger) -> str:
    """Write the ledger object (idempotent: named by content) and return its key."""
    key = ledger.key(table)
    if bucket.head(key) is None:
        bucket.put(key, ledger.to_bytes(), ContentType="application/gzip")
    return key


def load(bucket, summary: Mapping[str, str] | None) -> HubLedger:
    """The ledger a snapshot summary names (no summary / no pointer: an empty table, an empty ledger)."""
    key = (summary or {}).get(P_LEDGER)
    if not key:
        return HubLedger()
    try:
        return HubLedger.from_bytes(bucket.client().get_object(Bucket=bucket.bucket, Key=key)["Body"].read())
    except Exception as exc:
        raise LedgerError(f"cannot read the hub ledger {bucket.uri(key)}: {exc}") from exc
