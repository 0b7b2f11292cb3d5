"""Quarantine files: rows that could not be typed, kept with their line number and the reason."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from .conversion import RejectedRow
from .ledger import normalize_etag

QUARANTINE_ROOT = "_quarantine"


def quarantine_key(target: str, table: str, source_key: str, etag: str) -> str:
    """Where a source object's rejected rows go: one file per (target, object version)."""
    # S3 returns ETags in quotes; the quote must not end up in the key (nor make two keys for one version).
    return f"{QUARANTINE_ROOT}/{target}/{table}/{source_key}.{normalize_etag(etag)[:12]}.rejected.csv"


def quarantine_csv(source_key: str, column_names: Sequence[str], rows: Sequence[RejectedRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source_key", "line", "reason", *column_names])
    for row in rows:
        writer.writerow([source_key, row.line, row.reason, *("" if v is None else v for v in row.values)])
    return out.getvalue().encode("utf-8")
