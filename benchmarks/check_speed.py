"""How fast is `forgeml check` next to simply reading the file with pandas? (a benchmark, not a test)

Generates a 1,000,000-row x 20-column CSV in a temporary folder (14 float, 3 integer and 3
categorical columns), then alternates ``pandas.read_csv`` and ``forgeml.checks.check`` three times
each, every run in a fresh subprocess so peak memory is that run's own. Peak memory is the growth of
the process's peak RSS (``resource.getrusage``) over its peak right after the imports, which counts
pyarrow's allocations that tracemalloc cannot see. Targets: check time <= 3x the pandas read time,
and check peak memory <= 3x the DataFrame's ``memory_usage(deep=True)``.

Then one long field (issue #17): a 4-column table with a short-text column, checked as it is and
with one of its text cells 200,000 characters long. Target: the long field costs at most 2x. (An
unbounded e-mail pattern made this 47 s against 0.1 s: quadratic in the field's length.)

    .venv/bin/python benchmarks/check_speed.py [--rows 1000000] [--text-rows 100000]

Prints a table and writes benchmarks/results/check_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

RESULTS = Path(__file__).parent / "results" / "check_speed.json"
CHILD = """
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
import pandas as pd
from forgeml.checks import check
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if kind == "pandas":
    frame = pd.read_csv(path)
    seconds = time.perf_counter() - start
    extra = {"frame_bytes": int(frame.memory_usage(deep=True).sum())}
else:
    report = check(path, target="label")
    seconds = time.perf_counter() - start
    extra = {"findings": sorted(report.ids()), "errors": len(report.errors)}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_bytes": (peak - base) * 1024, **extra}))
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(14):
        columns[f"f{i}"] = pa.array(rng.normal(i, 1 + i, rows).round(4))
    for i in range(3):
        columns[f"n{i}"] = pa.array(rng.integers(0, 1000 * (i + 1), rows))
    for i, choices in enumerate((["red", "green", "blue"], ["s", "m", "l", "xl"])):
        columns[f"c{i}"] = pa.array(rng.choice(choices, rows))
    columns["label"] = pa.array(rng.choice(["yes", "no"], rows))
    pa_csv.write_csv(pa.table(columns), path)


def make_text_csv(path: Path, rows: int, long_chars: int = 0, seed: int = 0) -> None:
    """A number, a category, a short text and a label; with ``long_chars``, row 10's text that long."""
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    notes = [" ".join(rng.choice(words, 5)) for _ in range(rows)]
    if long_chars:
        notes[10] = ("lorem " * (long_chars // 6 + 1))[:long_chars]
    columns = {
        "x": pa.array(rng.normal(size=rows).round(3)),
        "c": pa.array(rng.choice(["a", "b", "c"], rows)),
        "note": pa.array(notes),
        "label": pa.array(rng.choice(["yes", "no"], rows)),
    }
    pa_csv.write_csv(pa.table(columns), path)


def long_field(folder: Path, rows: int, repeats: int) -> dict[str, object]:
    """check on the text table with and without one 200,000-character field (median seconds)."""
    plain, long = folder / "text.csv", folder / "text_long.csv"
    make_text_csv(plain, rows)
    make_text_csv(long, rows, long_chars=200_000)
    runs: dict[str, list[float]] = {"plain": [], "long": []}
    for _ in range(repeats):
        runs["plain"].append(float(run_child("check", plain)["seconds"]))
        runs["long"].append(float(run_child("check", long)["seconds"]))
    plain_seconds, long_seconds = statistics.median(runs["plain"]), statistics.median(runs["long"])
    return {
        "rows": rows,
        "field_chars": 200_000,
        "check_seconds": plain_seconds,
        "check_seconds_with_long_field": long_seconds,
        "ratio": long_seconds / plain_seconds,
        "target_ratio": 2.0,
    }


def run_child(kind: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--text-rows", type=int, default=100_000, help="rows of the long-field table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wide.csv"
        make_csv(path, args.rows)
        size = path.stat().st_size
        runs: dict[str, list[dict[str, object]]] = {"pandas": [], "check": []}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            for kind in runs:
                runs[kind].append(run_child(kind, path))
        long = long_field(Path(folder), args.text_rows, args.repeats)
    pandas_seconds = statistics.median(r["seconds"] for r in runs["pandas"])
    check_seconds = statistics.median(r["seconds"] for r in runs["check"])
    frame_bytes = runs["pandas"][0]["frame_bytes"]
    check_peak = statistics.median(r["peak_bytes"] for r in runs["check"])
    pandas_peak = statistics.median(r["peak_bytes"] for r in runs["pandas"])
    result = {
        "rows": args.rows,
        "columns": 20,
        "file_bytes": size,
        "repeats": args.repeats,
        "pandas_read_seconds": pandas_seconds,
        "check_seconds": check_seconds,
        "time_ratio": check_seconds / pandas_seconds,
        "frame_bytes": frame_bytes,
        "pandas_peak_bytes": pandas_peak,
        "check_peak_bytes": check_peak,
        "memory_ratio": check_peak / frame_bytes,
        "targets": {"time_ratio": 3.0, "memory_ratio": 3.0},
        "check_findings": runs["check"][0]["findings"],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "long_field": long,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    mib = 1024 * 1024
    print(
        f"{args.rows:,} rows x 20 columns, {size / mib:.0f} MiB CSV; median of {args.repeats} interleaved runs"
    )
    print(f"{'':24}{'seconds':>10}{'peak MiB':>10}")
    print(f"{'pandas.read_csv':24}{pandas_seconds:>10.2f}{pandas_peak / mib:>10.0f}")
    print(f"{'forgeml check':24}{check_seconds:>10.2f}{check_peak / mib:>10.0f}")
    print(f"DataFrame memory_usage(deep=True): {frame_bytes / mib:.0f} MiB")
    print(
        f"time ratio {result['time_ratio']:.2f} (target <= 3); memory ratio {result['memory_ratio']:.2f} (target <= 3)"
    )
    print(
        f"one 200,000-character field in {long['rows']:,} rows: check {long['check_seconds_with_long_field']:.2f} s "
        f"against {long['check_seconds']:.2f} s without it, ratio {long['ratio']:.2f} (target <= 2)"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
