"""Benchmark full-file CSV inference (sf_platform.core.inference.profile_stream) on TPC-H lineitem.

Generates lineitem as CSV with the tpchgen-cli package into bench/data/ (reused when present), profiles
the whole file, and for comparison times a plain pyarrow streaming parse (every column as string, the
floor for profile_stream), pyarrow.csv.read_csv with its own type inference, and pandas.read_csv when
there is memory for it. Prints MB/s and ratios and writes bench/results/bench_crawl.json.

    .venv/bin/python bench/bench_crawl.py [--scale 1.5] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from sf_platform.core.inference import profile_stream  # noqa: E402

MIN_BYTES = 1 << 30
TARGET_MB_S = 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.5, help="TPC-H scale factor (1.5 gives ~1.15 GB)")
    parser.add_argument("--skip-pandas", action="store_true", help="do not time pandas.read_csv")
    args = parser.parse_args()

    path = lineitem_csv(args.scale)
    size = path.stat().st_size
    print(f"{path.relative_to(BENCH.parent)}: {size / 1e6:,.0f} MB, {os.cpu_count()} cores")
    if size < MIN_BYTES:
        print("warning: under 1 GiB; use a larger --scale for the reference figure")

    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"note: load average {load_before:.2f}; other work on this machine slows every figure")
    profile_s, result = timed(lambda: profile(path))
    figures = {
        "file": str(path.relative_to(BENCH.parent)),
        "file_bytes": size,
        "rows": result.rows,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "load_average_before": round(load_before, 2),
        "profile_stream": rate(size, profile_s),
        "columns": {c.name: c.type for c in result.columns},
        "problems": list(result.problems),
    }
    report("profile_stream", size, profile_s)
    for column in result.columns:
        print(f"    {column.name:16s} {column.type:14s} {column.reason}")

    floor_s, rows = timed(lambda: arrow_strings(path))
    figures["pyarrow_open_csv_all_strings"] = rate(size, floor_s)
    report("pyarrow open_csv, all strings", size, floor_s)
    assert rows == result.rows, (rows, result.rows)

    arrow_s, _ = timed(lambda: pacsv.read_csv(path).num_rows)
    figures["pyarrow_read_csv"] = rate(size, arrow_s)
    report("pyarrow read_csv", size, arrow_s)

    ratios = {
        "profile_vs_open_csv_strings": round(profile_s / floor_s, 2),
        "profile_vs_read_csv": round(profile_s / arrow_s, 2),
    }
    if args.skip_pandas:
        print("pandas read_csv: skipped (--skip-pandas)")
    elif available_memory() < 6 * size:
        print(f"pandas read_csv: skipped, {available_memory() / 1e9:.1f} GB available is too little")
    else:
        pandas_s, _ = timed(lambda: pandas_rows(path))
        figures["pandas_read_csv"] = rate(size, pandas_s)
        report("pandas read_csv", size, pandas_s)
        ratios["pandas_vs_profile"] = round(pandas_s / profile_s, 2)
    figures["ratios"] = ratios
    for name, value in ratios.items():
        print(f"  {name}: {value}x")

    figures["load_average_after"] = round(os.getloadavg()[0], 2)
    mb_s = figures["profile_stream"]["mb_per_s"]
    figures["meets_target"] = mb_s >= TARGET_MB_S
    out = BENCH / "results" / "bench_crawl.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"profile_stream: {mb_s:.1f} MB/s (target {TARGET_MB_S:.0f}); wrote {out.relative_to(BENCH.parent)}"
    )
    return 0 if figures["meets_target"] else 1


def lineitem_csv(scale: float) -> Path:
    folder = BENCH / "data" / f"sf{scale:g}"
    path = folder / "lineitem.csv"
    if path.exists() and path.stat().st_size > 0:
        return path
    tool = shutil.which(
        "tpchgen-cli", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if tool is None:
        sys.exit("tpchgen-cli not found: install it with `.venv/bin/pip install tpchgen-cli`")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating TPC-H lineitem at scale {scale:g} into {folder} ...")
    subprocess.run(
        [
            tool,
            "csv",
            "-s",
            f"{scale:g}",
            "-T",
            "lineitem",
            "-o",
            str(folder),
            "--no-progress",
            "--overwrite",
        ],
        check=True,
    )
    return path


def profile(path: Path):
    with path.open("rb") as stream:
        return profile_stream(stream)


def arrow_strings(path: Path) -> int:
    """The floor for profile_stream: stream-parse every column as a string and do nothing else."""
    with path.open("rb") as stream:
        names = stream.readline().decode().strip().split(",")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    return sum(batch.num_rows for batch in reader)


def pandas_rows(path: Path) -> int:
    import pandas

    return len(pandas.read_csv(path))


def timed(work):
    start = time.perf_counter()
    value = work()
    return time.perf_counter() - start, value


def rate(size: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "mb_per_s": round(size / seconds / 1e6, 1)}


def report(label: str, size: int, seconds: float) -> None:
    print(f"{label:32s} {seconds:7.2f} s  {size / seconds / 1e6:7.1f} MB/s")


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
