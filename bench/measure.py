"""Helpers the benchmarks share: a CSV's first rows, this process's memory, rows/s figures."""

from __future__ import annotations

from pathlib import Path


def head_rows(path: Path, rows: int, out: Path) -> Path:
    """The header and the first ``rows`` data rows of a CSV file (lineitem has no quoted newlines)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with path.open("rb") as source, out.open("wb") as sink:
        for number, text in enumerate(source):
            if number > rows:
                break
            sink.write(text)
    return out


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux)."""
    return _status_mb("VmHWM:")


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for entry in status:
            if entry.startswith(field):
                return round(int(entry.split()[1]) / 1024, 1)
    return 0.0


def rate(rows: int, seconds: float) -> dict:
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def line(label: str, figure: dict, note: str = "") -> None:
    print(
        f"{label:44s} {figure['rows']:>10,} rows {figure['seconds']:8.2f} s {figure['rows_per_s']:>10,} rows/s  {note}"
    )
