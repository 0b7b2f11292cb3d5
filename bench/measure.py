"""Helpers the benchmarks share: a CSV's first rows, this process's memory (now, peak, peak reset), rows/s
figures, a hop run in
a child process, and the landing bucket and Glue catalog of a benchmark's settings."""

from __future__ import annotations

import json
import subprocess
import sys
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


def reset_peak_rss() -> None:
    """Start this process's peak resident memory again from its resident memory now (Linux: writing 5 to
    /proc/self/clear_refs resets VmHWM), so the next ``peak_rss_mb`` is the peak of what ran since."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


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


def run_child(script: str, job: dict, label: str) -> dict:
    """``script --child JOB`` in its own process, so its peak RSS is its own; -> the JSON object its
    last line prints. Exits with the child's output if it fails."""
    command = [sys.executable, script, "--child", json.dumps(job)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{label} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def landing_and_glue(settings: dict, glue_database: str):
    """The LandingBucket and GlueCatalog of a benchmark's settings (``aws``: the connection, ``bucket``)."""
    from dagster_aws.s3 import S3Resource

    from sf_platform.resources.aws import GlueCatalog, LandingBucket

    landing = LandingBucket(s3=S3Resource(**settings["aws"]), bucket=settings["bucket"])
    return landing, GlueCatalog(**settings["aws"], database=glue_database)
