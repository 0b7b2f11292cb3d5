"""What one run did to each table, hop by hop: the state behind ``sf-platform materialize``'s live
table and the summary it ends with.

A board has one row per table and one column per hop; each cell goes queued -> running -> done,
failed or skipped, and keeps the rows, loaded rows, quarantined rows (with the quarantine objects)
and the start and end time. Failing checks are kept with their one-line description. Writers (the
run's event listener, the hop progress log) and the display's refresh thread share a board, so every
method takes its lock. Pure: no Dagster; times are passed in.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

QUEUED, RUNNING, DONE, FAILED, SKIPPED = "queued", "running", "done", "failed", "skipped"
FINAL = (DONE, FAILED, SKIPPED)


@dataclass
class Cell:
    state: str = QUEUED
    rows: int | None = None  # rows in the target after the hop (dagster/row_count)
    files: int | None = None  # organize: files in the table's folder
    loaded: int | None = None  # rows this run added (rows_loaded / rows_written / rows_inserted / rows_exported)
    quarantined: int = 0
    quarantine_keys: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    reason: str = ""  # why it failed or was skipped

    def seconds(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.finished if self.finished is not None else now) - self.started


@dataclass(frozen=True)
class FailedCheck:
    table: str
    hop: str
    name: str
    description: str
    severity: str = "ERROR"


class Board:
    """The cells of one run: ``cells[(table, hop)]`` for every (table, hop) the run selected."""

    def __init__(self, job: str, run_id: str, pairs: list[tuple[str, str]], hops: list[str], started: float):
        self.job, self.run_id, self.started = job, run_id, started
        self.tables = list(dict.fromkeys(t for t, _ in pairs))
        self.hops = [h for h in hops if any(p[1] == h for p in pairs)]
        self.cells: dict[tuple[str, str], Cell] = {p: Cell() for p in pairs}
        self.failed_checks: list[FailedCheck] = []
        self.checks = 0
        self.finished: float | None = None
        self.error = ""  # a run-level failure that no cell explains (resources, the step itself)
        self._lock = threading.Lock()

    def __contains__(self, pair: tuple[str, str]) -> bool:
        return pair in self.cells

    def start(self, table: str, hop: str, at: float) -> None:
        with self._lock:
            cell = self.cells.get((table, hop))
            if cell is not None and cell.state == QUEUED:
                cell.state, cell.started = RUNNING, at

    def done(self, table: str, hop: str, metadata: Mapping, at: float) -> Cell | None:
        """A materialization: its metadata (plain values) fills the cell."""
        with self._lock:
            cell = self.cells.get((table, hop))
            if cell is None:
                return None
            cell.state = DONE
            cell.started = _number(metadata.get("started_at"), cell.started if cell.started is not None else at)
            cell.finished = _number(metadata.get("finished_at"), at)
            cell.rows = _int(metadata.get("dagster/row_count"))
            cell.files = _int(metadata.get("files"))
            cell.loaded = _int(next((metadata[k] for k in ("rows_loaded", "rows_written", "rows_inserted", "rows_exported") if k in metadata), None))
            cell.quarantined = _int(metadata.get("rows_quarantined")) or 0
            keys = metadata.get("quarantine_keys")
            cell.quarantine_keys = [str(k) for k in keys] if isinstance(keys, list) else []
            return cell

    def fail(self, table: str, hop: str, reason: str, at: float) -> None:
        self._end(table, hop, FAILED, reason, at)

    def skip(self, table: str, hop: str, reason: str, at: float) -> None:
        self._end(table, hop, SKIPPED, reason, at)

    def _end(self, table: str, hop: str, state: str, reason: str, at: float) -> None:
        with self._lock:
            cell = self.cells.get((table, hop))
            if cell is not None and cell.state not in (DONE, FAILED):
                cell.state, cell.reason, cell.finished = state, reason, at

    def check(self, table: str, hop: str, name: str, passed: bool, description: str, severity: str) -> None:
        with self._lock:
            self.checks += 1
            if not passed:
                self.failed_checks.append(FailedCheck(table, hop, name, description, severity))

    def finish(self, at: float, error: str = "") -> None:
        """The run ended: cells still queued or running were never finished by it."""
        with self._lock:
            self.finished, self.error = at, error
            for cell in self.cells.values():
                if cell.state not in FINAL:
                    cell.state, cell.finished = SKIPPED, at
                    cell.reason = cell.reason or "the run ended before this hop"

    def snapshot(self) -> dict[tuple[str, str], Cell]:
        """A copy of the cells, for a display thread."""
        with self._lock:
            return {p: Cell(**vars(c)) for p, c in self.cells.items()}

    def failed_tables(self) -> dict[str, tuple[str, str]]:
        """table -> (hop, reason) of its first failed hop."""
        with self._lock:
            out: dict[str, tuple[str, str]] = {}
            for (table, hop), cell in self.cells.items():
                if cell.state == FAILED and table not in out:
                    out[table] = (hop, cell.reason)
            return out

    def seconds(self, now: float) -> float:
        return (self.finished if self.finished is not None else now) - self.started


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _number(value, default: float | None) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


# ---- how a board is shown: one home for the words and numbers of a cell


def cell_text(cell: Cell, now: float) -> str:
    """What the live table and the summary show for a cell."""
    if cell.state == RUNNING:
        return f"running {cell.seconds(now):.1f}s"
    if cell.state in (FAILED, SKIPPED, QUEUED):
        return cell.state
    parts = []
    if cell.rows is not None:
        parts.append(f"{cell.rows:,}")
    elif cell.files is not None:
        parts.append(_files(cell.files))
    else:
        parts.append("done")
    if cell.loaded:
        parts.append(f"+{cell.loaded:,}")
    if cell.quarantined:
        parts.append(f"{cell.quarantined:,}q")
    return " ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _files(n: int) -> str:
    return _count(n, "file")


def hop_line(table: str, hop: str, cell: Cell, now: float, since: float) -> str:
    """One plain line for a finished (table, hop), stamped with the seconds since ``since`` (the run's
    start): the progress output when stdout is not a terminal."""
    seconds = cell.seconds(now)
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    text = cell_text(cell, now)
    if cell.state == DONE:
        rows = f"{cell.rows:,} rows" if cell.rows is not None else (_files(cell.files) if cell.files is not None else "")
        loaded = f", {cell.loaded:,} loaded" if cell.loaded else ""
        quarantined = f", {cell.quarantined:,} quarantined" if cell.quarantined else ""
        text = f"done: {rows}{loaded}{quarantined}".rstrip(": ")
    elif cell.reason:
        text = f"{cell.state}: {cell.reason}"
    return f"[{now - since:6.1f}s] {table} {hop} {text}{took}"


def quarantine_location(uri_of, keys: list[str]) -> str:
    """Where a cell's quarantined rows are: the one object, or the folder holding all of them."""
    if not keys:
        return ""
    if len(keys) == 1:
        return uri_of(keys[0])
    common = keys[0]
    for key in keys[1:]:
        while not key.startswith(common):
            common = common[:-1]
    folder = common[: common.rfind("/") + 1]
    return f"{uri_of(folder)} ({len(keys)} objects)"


def summary_lines(board: Board, uri_of, log_path: str = "", *, table: bool = True) -> list[str]:
    """The end of a run: rows per hop per table (``table``; a live display has just drawn them),
    quarantined rows and where they are, failing checks, failed tables, time and the log file."""
    now = board.finished if board.finished is not None else board.started
    cells = board.snapshot()
    failed = board.failed_tables()
    state = "FAILED" if failed or board.error else "succeeded"
    done = sum(c.state == DONE for c in cells.values())
    lines = [f"{board.job}: run {board.run_id} {state} in {board.seconds(now):.1f} s: {done} of {len(cells)} hops "
             f"done, {board.checks} checks ({len(board.failed_checks)} not passed)"]
    if log_path:
        lines.append(f"  log: {log_path}")
    if table:
        lines += _rows_table(board, cells, now)
    for (t, hop), cell in cells.items():
        if cell.quarantined:
            where = quarantine_location(uri_of, cell.quarantine_keys) or "see the log"
            lines.append(f"  quarantined: {t} {hop}: {_count(cell.quarantined, 'row')} in {where}")
    for check in board.failed_checks:
        lines.append(f"  check {check.severity}: {check.table} {check.hop} {check.name}: {check.description}")
    for t, (hop, reason) in failed.items():
        lines.append(f"  FAILED: {t} ({hop}: {reason})" if reason else f"  FAILED: {t} ({hop})")
    if board.error and not failed:
        lines.append(f"  FAILED: {board.error}")
    return lines


def _rows_table(board: Board, cells: dict, now: float) -> list[str]:
    lines = []
    header = ["table", *board.hops]
    rows = [[t, *(cell_text(cells[(t, h)], now) if (t, h) in cells else "-" for h in board.hops)] for t in board.tables]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    lines.append("  (rows in the target after the run; +N written by this run; Nq quarantined)")
    return lines
