"""Does forgeml's cost grow linearly with the rows, and does `forgeml predict` stream in bounded memory?

1. Training: for each size in ``--sizes`` (default 10k, 100k, 1M rows of the table used by
   benchmarks/tabular_speed.py: 17 floats, 2 categorical, a 3-class target) a fresh subprocess
   runs what `forgeml train` runs (``load_data``, ``fit_features``, transform, ``fit``) with the
   same MLP (64, 32), Adam and batch size. Small sizes train more epochs so that every size
   passes over about ``--row-passes`` rows; the epoch time is the median over the epochs after
   the first. Printed: seconds per epoch, microseconds per row, peak RSS (``ru_maxrss`` of that
   subprocess) and the largest size's per-row time over the smallest's (target: within 20%).
2. Prediction: the `forgeml predict` CLI, in a fresh subprocess, on a CSV larger than a memory
   bound (``--bound-mib``, default 1024 MiB; the file is ``--predict-mib``, default 1280 MiB), and
   on a file half that size. Pass: peak RSS stays under the bound on the large file, and the large
   file needs about the memory of the half-size one (it streams: on a busy 2-core machine the peak
   was 814 MiB for 512 MiB and 822 MiB for 1 GiB, about 480 MiB of it torch, pandas and pyarrow).

How the bound is enforced, and why not ``RLIMIT_AS``: a `forgeml predict` process that peaks at
0.5-0.7 GiB resident reserves about 2.5 GiB of address space (VmPeak) and 1.5 GiB of data segment
(VmData): torch's and OpenMP's thread stacks and arenas and pyarrow's allocator reserve space they
never touch. A virtual-memory limit below 2.5 GiB kills the process before it reads a row, and a
file above that would take longer than this benchmark's budget to predict. So the bound is on what
matters, resident memory: the peak RSS of the subprocess (``os.wait4``) is compared with it.

To keep the run short the big file reaches its size with few rows: each row carries a ~4 KiB
free-text ``notes`` column the model does not use (a common shape: a comment field beside the
features). Every byte is still read and parsed, chunk by chunk.

    .venv/bin/python benchmarks/scaling.py                   # about 3-5 minutes on 2 cores
    .venv/bin/python benchmarks/scaling.py --quick           # 2k/20k rows, 64 MiB file (smoke run)
    .venv/bin/python benchmarks/scaling.py --sizes 10000 100000 --threads 1

Writes benchmarks/results/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tabular_speed import HIDDEN, LEARNING_RATE, TARGET, cores, make_csv  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "scaling.json"
FORGEML = Path(sys.executable).with_name("forgeml")
NOTES_BYTES = 4096
SMALL_FRACTION = 2  # the small predict file is half the large one


# ---------------------------------------------------------------- training (one child per size)


def train_child(path: Path, epochs: int, batch_size: int, threads: int, bundle: Path | None) -> None:
    """Train as `forgeml train` does; print epoch seconds and this process's peak RSS as JSON."""
    import resource

    import torch._dynamo  # noqa: F401  (imported by the first optimizer; see tabular_speed.py)

    from forgeml.config import DataConfig, FeaturesConfig, MLPConfig, TrainConfig
    from forgeml.data import load_data
    from forgeml.deploy import write_bundle
    from forgeml.features import fit_features
    from forgeml.models import build_model
    from forgeml.training.loop import fit, seed_everything, set_threads
    from forgeml.training.losses import make_loss
    from forgeml.training.stage import tensor_data

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=LEARNING_RATE,
        early_stopping=None,
        threads=threads,
    )
    set_threads(config.threads)
    started = time.perf_counter()
    splits = load_data(DataConfig(source=str(path), target=TARGET), seed=0)
    pipeline = fit_features(splits.train, FeaturesConfig(), splits.task)
    train = tensor_data(pipeline, splits.train)
    prepare = time.perf_counter() - started
    model_config = MLPConfig(hidden=list(HIDDEN))
    seed_everything(0)
    model = build_model(model_config, pipeline.input_spec, pipeline.target_.output_dim)
    result = fit(model, train, None, make_loss("auto", splits.task), config, seed=0, callbacks=[])
    if bundle is not None:
        write_bundle(bundle, result.model, pipeline, model_config, target=TARGET)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    seconds = [epoch.seconds for epoch in result.history]
    print(
        json.dumps(
            {"train_rows": len(train), "prepare_s": prepare, "epoch_s": seconds, "peak_rss_bytes": peak}
        )
    )


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[str, int, float]:
    """Run ``command``; return its stdout, its own peak RSS in bytes (wait4) and wall seconds."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{err.read().decode()[-4000:]}")
        return out.read().decode(), usage.ru_maxrss * 1024, seconds


def measure_training(folder: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    rows_out = []
    for rows in args.sizes:
        path = folder / f"train_{rows}.csv"
        make_csv(path, rows)
        epochs = max(2, math.ceil(args.row_passes / rows))
        command = [sys.executable, __file__, "--child-train", str(path), "--epochs", str(epochs)]
        command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
        if rows == args.sizes[0]:
            command += ["--bundle", str(folder / "bundle")]  # the model `forgeml predict` runs below
        stdout, _, _ = run_measured(command)
        child = json.loads(stdout.strip().splitlines()[-1])
        epoch = statistics.median(child["epoch_s"][1:])  # the first epoch pays warm-up
        row = {
            "rows": rows,
            "train_rows": child["train_rows"],
            "epochs": epochs,
            "epoch_s": epoch,
            "us_per_train_row": epoch / child["train_rows"] * 1e6,
            "prepare_s": child["prepare_s"],
            "peak_rss_bytes": child["peak_rss_bytes"],
        }
        rows_out.append(row)
        print(
            f"  {rows:>9,} rows: epoch {epoch:.3f} s ({row['us_per_train_row']:.2f} us/row, "
            f"{epochs} epochs), read+features {child['prepare_s']:.2f} s, "
            f"peak RSS {child['peak_rss_bytes'] / 2**20:.0f} MiB",
            flush=True,
        )
        path.unlink()
    return rows_out


# ---------------------------------------------------------------- prediction (the CLI, streamed)


def make_padded_csv(path: Path, target_bytes: int) -> int:
    """The training table's columns plus a ~4 KiB ``notes`` column, written until ``target_bytes``."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    chunk_rows = 20_000
    with tempfile.TemporaryDirectory() as scratch:
        make_csv(Path(scratch) / "chunk.csv", chunk_rows, seed=1)
        chunk = pa_csv.read_csv(Path(scratch) / "chunk.csv").drop_columns([TARGET])
    words = np.random.default_rng(2).choice(np.array(["alpha", "beta", "gamma", "delta"]), NOTES_BYTES // 6)
    note = " ".join(words)[:NOTES_BYTES]
    chunk = chunk.append_column("notes", pa.array([note] * chunk_rows))
    rows = 0
    with pa_csv.CSVWriter(path, chunk.schema) as writer:
        while rows == 0 or path.stat().st_size < target_bytes:
            piece = chunk.slice((rows % chunk_rows), 500)  # ~2 MiB a write: the size lands close
            writer.write_table(piece)
            rows += len(piece)
    return rows


def measure_predict(folder: Path, args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {"bound_bytes": args.bound_mib * 2**20}
    for name, mib in (("small", args.predict_mib / SMALL_FRACTION), ("large", args.predict_mib)):
        source = folder / f"predict_{name}.csv"
        rows = make_padded_csv(source, int(mib * 2**20))
        output = folder / f"predictions_{name}.csv"
        command = [str(FORGEML), "predict", str(folder / "bundle"), str(source), "-o", str(output)]
        # The same thread count as training (OMP_NUM_THREADS is read by torch when it starts).
        _, peak, seconds = run_measured(command, {"OMP_NUM_THREADS": str(args.threads)})
        written = sum(1 for _ in output.open()) - 1
        assert written == rows, (written, rows)
        results[name] = {
            "rows": rows,
            "file_bytes": source.stat().st_size,
            "peak_rss_bytes": peak,
            "seconds": seconds,
            "rows_per_s": rows / seconds,
        }
        print(
            f"  forgeml predict {name}: {source.stat().st_size / 2**20:,.0f} MiB file, {rows:,} rows, "
            f"{seconds:.1f} s, peak RSS {peak / 2**20:.0f} MiB",
            flush=True,
        )
        source.unlink()
        output.unlink()
    return results


# ---------------------------------------------------------------- summary


def report(training: list[dict[str, object]], predict: dict[str, object] | None) -> dict[str, object]:
    first, last = training[0], training[-1]
    growth = float(last["us_per_train_row"]) / float(first["us_per_train_row"])
    summary: dict[str, object] = {
        "per_row_ratio": growth,
        "linear_within_20pct": abs(growth - 1.0) <= 0.2,
    }
    print(f"\n{'rows':>10}{'epoch s':>10}{'us/row':>9}{'epochs':>8}{'peak RSS MiB':>14}")
    for row in training:
        print(
            f"{row['rows']:>10,}{row['epoch_s']:>10.3f}{row['us_per_train_row']:>9.2f}"
            f"{row['epochs']:>8}{row['peak_rss_bytes'] / 2**20:>14.0f}"
        )
    verdict = "within" if summary["linear_within_20pct"] else "outside"
    print(
        f"per-row epoch time at {last['rows']:,} rows / at {first['rows']:,} rows: {growth:.2f} "
        f"({verdict} the 20% target)"
    )
    if predict is not None:
        small, large = predict["small"], predict["large"]
        bound = predict["bound_bytes"]
        summary["predict_file_larger_than_bound"] = large["file_bytes"] > bound
        summary["predict_under_bound"] = large["peak_rss_bytes"] < bound
        summary["predict_memory_growth"] = large["peak_rss_bytes"] / small["peak_rss_bytes"]
        if not summary["predict_file_larger_than_bound"]:
            print("(the predict file is smaller than the bound: this run only shows that it works)")
        print(
            f"forgeml predict: {large['file_bytes'] / 2**20:,.0f} MiB file, peak RSS "
            f"{large['peak_rss_bytes'] / 2**20:.0f} MiB "
            f"({large['peak_rss_bytes'] / large['file_bytes']:.2f}x the file) vs bound "
            f"{bound / 2**20:.0f} MiB: {'under' if summary['predict_under_bound'] else 'NOT under'}; "
            f"{summary['predict_memory_growth']:.2f}x the peak on a file 1/{SMALL_FRACTION} the size"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--row-passes", type=int, default=1_000_000, help="rows trained per size")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=cores(), help="torch threads (default: one per core)")
    parser.add_argument("--predict-mib", type=float, default=1280, help="size of the big predict file")
    parser.add_argument("--bound-mib", type=float, default=1024, help="peak RSS bound for forgeml predict")
    parser.add_argument("--no-predict", action="store_true", help="skip the forgeml predict part")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2k/20k rows, 64 MiB predict file")
    parser.add_argument("--child-train", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_train:
        train_child(args.child_train, args.epochs, args.batch_size, args.threads, args.bundle)
        return
    if args.quick:
        args.sizes, args.row_passes, args.predict_mib = [2_000, 20_000], 100_000, 64
    args.sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(f"training at {', '.join(f'{rows:,}' for rows in args.sizes)} rows ({args.threads} threads)")
        training = measure_training(folder, args)
        predict = None if args.no_predict else measure_predict(folder, args)
    summary = report(training, predict)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "threads": args.threads,
                "batch_size": args.batch_size,
                "hidden": list(HIDDEN),
                "cpus": os.cpu_count(),
                "training": training,
                "predict": predict,
                "summary": summary,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
