"""What ``sf-platform materialize`` shows while a run works, and the run's log file.

Where progress comes from, in the CLI's own process (the run executes there, see ``runs.py``):

- the run's events, handed over by ``DagsterInstance.add_event_listener`` as each is written (an
  ASSET_MATERIALIZATION fills a cell with its rows, an ASSET_CHECK_EVALUATION that did not pass is
  kept, a step of one table marks that table's cells running / failed): no polling of the event log.
  A step executed in another process (``SF_EXECUTOR`` other than in_process) writes its events
  there; those are read once from the event log when the run ends (``catch_up``), so the summary and
  log file are whole but the live table shows only what this process heard;
- the ``sf_platform.progress`` log records of the table step (``assets/hop.py``): a (table, hop)
  started, failed or was skipped. They are plain Python log records, not Dagster events, so they add
  no write to the event log (each costs ~25 ms of SQLite on the demo machine, see bench_runs.py).

Three ways to show it: a live ``rich`` table when stdout is a terminal (rows = tables, columns = hops,
refreshed 4 times a second by rich's own thread from a snapshot of the board); one plain line per
finished (table, hop) when it is not; with ``-v``, every line of the log as it is written. Every run
writes its whole log, DEBUG events included, to ``<state dir>/logs/<run id>.log``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import IO

from sf_platform.core.run_board import DONE, FAILED, QUEUED, RUNNING, SKIPPED, Board, cell_text, hop_line

PROGRESS_LOGGER = "sf_platform.progress"  # the logger assets/hop.py writes (table, hop) states to
LIVE, PLAIN, VERBOSE = "live", "plain", "verbose"
_STYLE = {QUEUED: "dim", RUNNING: "yellow", DONE: "green", FAILED: "bold red", SKIPPED: "dim"}


def choose_mode(verbose: bool, stream: IO = sys.stdout) -> str:
    if verbose:
        return VERBOSE
    return LIVE if stream.isatty() else PLAIN


def log_line(entry) -> str:
    """One line of the log file for one event of the run (a Dagster ``EventLogEntry``)."""
    event = entry.dagster_event
    kind = event.event_type_value if event is not None else "LOG"
    level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level)
    line = f"{_when(entry.timestamp)} {level:<7} {entry.step_key or '-'} {kind}: {entry.message}"
    details = _details(event)
    if details:
        line += " " + json.dumps(details, default=str, ensure_ascii=False)
    if entry.error_info is not None:
        line += "\n" + entry.error_info.to_string()
    return line


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="milliseconds")


def _details(event) -> dict:
    if event is None:
        return {}
    if event.is_step_materialization:
        m = event.step_materialization_data.materialization
        return {"asset": m.asset_key.to_user_string(), **_plain(m.metadata)}
    if event.event_type_value == "ASSET_CHECK_EVALUATION":
        ev = event.event_specific_data
        return {"asset": ev.asset_key.to_user_string(), "check": ev.check_name, "passed": ev.passed,
                "severity": ev.severity.value, "description": ev.description}
    return {}


def _plain(metadata) -> dict:
    out = {}
    for key, value in metadata.items():
        value = getattr(value, "value", value)
        out[key] = value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value)
    return out


class RunWatch:
    """One run as the CLI shows it: a board filled from the run's events and the step's progress
    records, shown live / as plain lines / as the log itself, and the log file."""

    def __init__(self, board: Board, layout, log_path: Path, mode: str, out: IO = sys.stdout):
        self.board, self.layout, self.log_path, self.mode, self.out = board, layout, log_path, mode, out
        self._file: IO | None = None
        self._heard: set[tuple] = set()
        self._live = None
        self._handler = _ProgressHandler(self)
        self._logger = logging.getLogger(PROGRESS_LOGGER)
        self._saved = (self._logger.level, self._logger.propagate)

    def __enter__(self) -> RunWatch:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.log_path.open("a", encoding="utf-8")
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.DEBUG)
        self._logger.propagate = False
        if self.mode == LIVE:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(get_renderable=self.render, console=Console(file=self.out), refresh_per_second=4,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]
        self.board.finish(time.time(), self.board.error)
        if self._live is not None:
            self._live.stop()  # draws the final frame
        if self._file is not None:
            self._file, file = None, self._file
            file.close()

    # ---- what arrives

    def on_event(self, entry) -> None:
        """The instance's listener: every event of the run, in the thread that wrote it. It runs inside
        Dagster's event logging, so a mistake here is written to the log and never reaches the run."""
        try:
            self._on_event(entry)
        except Exception as exc:  # noqa: BLE001 - the display must never fail the run
            self._write(f"progress display: {type(exc).__name__}: {exc}")

    def catch_up(self, entries) -> None:
        """After the run: the events it stored that this process never heard (a step executed in
        another process: ``SF_EXECUTOR`` multiprocess, celery, k8s), so the board and log are whole."""
        entries = list(entries)
        if len(entries) <= len(self._heard):
            return
        for entry in entries:
            if _identity(entry) not in self._heard:
                self.on_event(entry)

    def _on_event(self, entry) -> None:
        self._heard.add(_identity(entry))
        self._write(log_line(entry))
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type_value
        if event.is_step_materialization:
            m = event.step_materialization_data.materialization
            pair = self.layout.cells.get(m.asset_key)
            if pair and self.board.done(*pair, _plain(m.metadata), entry.timestamp):
                self._finished(*pair)
        elif kind == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            pair = self.layout.cells.get(ev.asset_key)
            if pair:
                self.board.check(*pair, ev.check_name, ev.passed, ev.description or "", ev.severity.value)
        elif kind == "STEP_START":
            for pair in self.layout.steps.get(entry.step_key, []):
                self.board.start(*pair, entry.timestamp)
        elif kind == "STEP_FAILURE":
            error = event.step_failure_data.error
            message = error.message.strip().splitlines()[0] if error and error.message.strip() else "step failed"
            pairs = self.layout.steps.get(entry.step_key, [])
            for pair in pairs:
                self.board.fail(*pair, message, entry.timestamp)
                self._finished(*pair)
            if not pairs and not self.board.failed_tables():
                self.board.error = message
        elif kind in ("PIPELINE_FAILURE", "RUN_FAILURE") and not self.board.failed_tables() and not self.board.error:
            self.board.error = entry.message

    def on_progress(self, table: str, hop: str, state: str, reason: str, at: float) -> None:
        """A (table, hop) state from the table step's progress records."""
        self._write(f"{_when(at)} DEBUG   progress {table} {hop} {state}" + (f": {reason}" if reason else ""))
        if state == RUNNING:
            self.board.start(table, hop, at)
        elif state in (FAILED, SKIPPED):
            (self.board.fail if state == FAILED else self.board.skip)(table, hop, reason, at)
            self._finished(table, hop)

    # ---- what is shown

    def _write(self, line: str) -> None:
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        if self.mode == VERBOSE:
            print(line, file=self.out, flush=True)

    def _finished(self, table: str, hop: str) -> None:
        if self.mode == PLAIN and (table, hop) in self.board:
            line = hop_line(table, hop, self.board.snapshot()[(table, hop)], time.time(), self.board.started)
            print(line, file=self.out, flush=True)

    def render(self):
        from rich.table import Table
        from rich.text import Text

        now = time.time()
        cells = self.board.snapshot()
        state = "running" if self.board.finished is None else ("FAILED" if self.board.failed_tables() or self.board.error else "done")
        table = Table(title=f"{self.board.job} {self.board.run_id[:8]}: {state}, {self.board.seconds(now):.1f} s",
                      title_justify="left")
        table.add_column("table")
        for hop in self.board.hops:
            table.add_column(hop, justify="right")
        table.add_column("time", justify="right")
        for name in self.board.tables:
            row = [Text(name)]
            started, ended = [], []
            for hop in self.board.hops:
                cell = cells.get((name, hop))
                if cell is None:
                    row.append(Text("-", style="dim"))
                    continue
                row.append(Text(cell_text(cell, now), style=_STYLE[cell.state]))
                if cell.started is not None:
                    started.append(cell.started)
                    ended.append(cell.finished if cell.finished is not None else now)
            row.append(Text(f"{max(ended) - min(started):.1f}s" if started else ""))
            table.add_row(*row)
        return table


def _identity(entry) -> tuple:
    event = entry.dagster_event
    return entry.timestamp, entry.step_key, event.event_type_value if event else "LOG", entry.user_message


class _ProgressHandler(logging.Handler):
    def __init__(self, watch: RunWatch):
        super().__init__(logging.DEBUG)
        self.watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        table, hop = getattr(record, "sf_table", None), getattr(record, "sf_hop", None)
        if table and hop:
            self.watch.on_progress(table, hop, getattr(record, "sf_state", ""), getattr(record, "sf_reason", ""),
                                   record.created)
