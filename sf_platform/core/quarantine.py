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
    return quarantine_header(column_names) + quarantine_rows(source_key, rows)


def quarantine_header(column_names: Sequence[str]) -> bytes:
    """The first line of a quarantine file; ``quarantine_rows`` adds rows to it as they come."""
    return _csv_bytes([["source_key", "line", "reason", *column_names]])


def quarantine_rows(source_key: str, rows: Sequence[RejectedRow]) -> bytes:
    return _csv_bytes(
        [source_key, row.line, row.reason, *("" if v is None else v for v in row.values)] for row in rows
    )


def _csv_bytes(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")
