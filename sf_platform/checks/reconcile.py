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


def reconcile_with_hub(
    key: dg.AssetKey,
    target: str,
    rows: int,
    snapshot_id: int | None,
    hub_rows: int | None,
    *,
    loaded: bool,
    hub_rows_now: int = 0,
    merged: bool = False,
) -> dg.AssetCheckResult:
    """A target of the hub (MySQL, Snowflake): its ``rows`` = the hub's ``total-records`` at the
    snapshot its ledger records (``hub_rows``; None: that snapshot expired from the hub's metadata). A
    merge table keeps one row per key, so it may hold fewer rows, never more. ``loaded`` False (no ledger
    row): passes only when the target and the hub (``hub_rows_now``) are both empty."""
    rule = "rows <= hub rows at the snapshot (merge on keys)" if merged else "rows = hub rows at the snapshot"
    metadata = {"rows_in_target": rows, "snapshot_id": str(snapshot_id or ""), "rule": rule}
    common = {"asset_key": key, "check_name": ROWS_RECONCILE}
    if not loaded:
        if rows == 0 and hub_rows_now == 0:
            return dg.AssetCheckResult(passed=True, metadata=metadata, **common,
                                       description=f"{target} and the hub are both empty")
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata, **common,
                                   description=f"{target} was never loaded from the hub ({hub_rows_now:,} rows there)")
    if hub_rows is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata, **common,
                                   description=f"snapshot {snapshot_id} {target} holds is no longer in the hub's "
                                               "metadata (expired): the next load rebuilds the table")
    metadata |= {"rows_in_hub": hub_rows, "difference": hub_rows - rows}
    if rows > hub_rows if merged else rows != hub_rows:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata, **common,
                                   description=f"{rows:,} rows in {target} vs {hub_rows:,} in the hub at snapshot "
                                               f"{snapshot_id} ({rows - hub_rows:+,})")
    return dg.AssetCheckResult(passed=True, metadata=metadata, **common,
                               description=f"{rows:,} rows, as in the hub at snapshot {snapshot_id}")
