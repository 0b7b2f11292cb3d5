"""Reconciliation: rows in the files (catalog recordCount) = rows loaded + rows quarantined.

recordCount counts every data record of the files, ragged rows (wrong number of fields) included:
curation quarantines those, so they are on the right-hand side too."""

from __future__ import annotations

import dagster as dg

from sf_platform.core.catalog import P_RAGGED_ROWS

ROWS_RECONCILE = "rows_reconcile"


def reconcile(
    record_count: int,
    rows: int,
    quarantined: int,
    quarantine_uri: str,
    *,
    merged: bool = False,
    ragged: int = 0,
    asset_key: dg.AssetKey | None = None,
) -> dg.AssetCheckResult:
    """Rows in the files = rows in the target + quarantined rows. A merge table keeps one row per key,
    so there the target may hold fewer rows, never more. ``ragged``: of record_count, the ragged rows
    the crawl found (shown, not part of the rule)."""
    difference = record_count - quarantined - rows
    metadata = {
        "catalog_record_count": record_count,
        "catalog_ragged_rows": ragged,
        "rows_in_target": rows,
        "rows_quarantined": quarantined,
        "difference": difference,
        "rule": "rows + quarantined <= recordCount (merge on keys)" if merged else "rows + quarantined = recordCount",
    }
    common = {"asset_key": asset_key, "check_name": ROWS_RECONCILE} if asset_key else {}
    mismatch = rows + quarantined > record_count if merged else rows + quarantined != record_count
    if mismatch:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata, **common,
            description=f"{rows:,} rows + {quarantined:,} quarantined vs {record_count:,} in the files "
            f"({-difference:+,})",
        )
    if quarantined:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={**metadata, "quarantine": quarantine_uri},
            description=f"{quarantined:,} of {record_count:,} rows quarantined: {quarantine_uri}", **common,
        )
    return dg.AssetCheckResult(passed=True, metadata=metadata, description=f"{rows:,} rows, as in the files", **common)


def record_count(glue, table: str) -> tuple[int, int]:
    """(recordCount, of it the ragged rows) of the table's catalog entry; (0, 0) without one."""
    entry = glue.get_table(table)
    params = (entry or {}).get("Parameters") or {}
    return int(params.get("recordCount", 0)), int(params.get(P_RAGGED_ROWS, 0))
