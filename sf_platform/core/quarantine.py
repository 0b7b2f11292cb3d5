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


# ---- whole files that cannot be read


def unreadable_key(target: str, table: str, source_key: str, etag: str) -> str:
    """Where the record of a source object version that could not be read at all goes: one per
    (target, object version), beside the object's rejected-rows file."""
    return quarantine_key(target, table, source_key, etag).removesuffix(".rejected.csv") + ".unreadable.csv"


def unreadable_record(source_key: str, etag: str, reason: str) -> bytes:
    """The record of an unreadable file: its key, version and why (its bytes stay where they are)."""
    return _csv_bytes([["source_key", "etag", "reason"], [source_key, normalize_etag(etag), reason]])


def quarantine_unreadable(bucket, target: str, table: str, source_key: str, etag: str, reason: str) -> str:
    """Write the record of an unreadable object version once (a later run that fails on the same version
    finds it and writes nothing); -> its key. ``bucket``: the landing bucket (``head``, ``put``)."""
    key = unreadable_key(target, table, source_key, etag)
    if bucket.head(key) is None:
        bucket.put(key, unreadable_record(source_key, etag, reason), ContentType="text/csv")
    return key
