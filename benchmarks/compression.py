"""Latency of each compressed variant against its baseline, same runtime, same Predictor.

For each run folder (with ``compressed/`` written by ``forgeml compress``) every variant's bundle
is loaded into a :class:`~forgeml.deploy.Predictor` (ONNX Runtime, ``--threads`` intra-op threads,
the engine the server uses) and timed on one row and on 256 rows (test rows, repeated if fewer).
Rounds are interleaved (baseline, prune, int8, ..., baseline, prune, ...) so machine noise hits all
variants alike; each round times ``--calls`` calls and the table shows the median over rounds,
with the speed-up versus the baseline. Without run folders it trains and compresses the two
examples (digits CNN, breast-cancer MLP) into a temporary folder first.
Writes benchmarks/results/compression.json.

    .venv/bin/python benchmarks/compression.py [runs/digits_cnn ...] [--rounds 7] [--calls 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import forgeml
from forgeml.config import load_config
from forgeml.data import load_data
from forgeml.deploy import Predictor, read_bundle

ROOT = Path(__file__).parents[1]
BATCH = 256
EXAMPLES = {"digits_cnn": 0.4, "breast_cancer_mlp": 0.2}  # example -> distillation width factor


def build_examples(folder: Path) -> list[Path]:
    """Train both examples and compress each (50% structured pruning, int8, a distilled student)."""
    runs = []
    for name, width in EXAMPLES.items():
        config = load_config(ROOT / "examples" / f"{name}.yaml", [f"output_dir={folder}", "train.threads=1"])
        run = forgeml.train(config, console=Console(file=io.StringIO()))
        forgeml.compress(run, prune=0.5, quantize="int8", distill=width, max_drop=0.01)
        runs.append(run.path)
    return runs


def bench_run(run: Path, *, rounds: int, calls: int, threads: int) -> list[dict[str, object]]:
    """Median milliseconds per call for every variant of ``run``, interleaved rounds."""
    summary = json.loads((run / "compressed" / "summary.json").read_text())
    names = [variant["name"] for variant in summary["variants"]]
    config = load_config(run / "config.yaml")
    test = load_data(config.data, seed=config.seed).test
    rows = {1: test.take(np.arange(1)), BATCH: test.take(np.arange(BATCH) % len(test))}
    predictors = {name: Predictor(read_bundle(run / "compressed" / name), threads=threads) for name in names}
    times: dict[tuple[str, int], list[float]] = {(name, size): [] for name in names for size in rows}
    for _ in range(rounds):
        for name in names:
            for size, raw in rows.items():
                predictor = predictors[name]
                predictor.predict(raw)  # warm
                started = time.perf_counter()
                for _ in range(calls if size == 1 else max(1, calls // 10)):
                    predictor.predict(raw)
                elapsed = time.perf_counter() - started
                times[(name, size)].append(elapsed * 1000 / (calls if size == 1 else max(1, calls // 10)))
    median = {key: statistics.median(values) for key, values in times.items()}
    by_name = {variant["name"]: variant for variant in summary["variants"]}
    return [
        {
            "run": run.name,
            "variant": name,
            "engine": predictors[name].engine.name,
            "model_bytes": by_name[name]["model_bytes"],
            "metric": by_name[name]["metric"],
            "single_row_ms": median[(name, 1)],
            f"batch_{BATCH}_ms": median[(name, BATCH)],
            "single_row_speedup": median[(names[0], 1)] / median[(name, 1)],
            f"batch_{BATCH}_speedup": median[(names[0], BATCH)] / median[(name, BATCH)],
        }
        for name in names
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run folders with compressed/ (default: build both examples)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median over them)")
    parser.add_argument("--calls", type=int, default=50, help="1-row calls per round (256-row: a tenth)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forgeml-bench-") as folder:
        runs = args.runs or build_examples(Path(folder))
        results = [
            row
            for run in runs
            for row in bench_run(run, rounds=args.rounds, calls=args.calls, threads=args.threads)
        ]
    table = Table(
        title=f"compressed variants, ONNX Runtime via Predictor, {args.threads} thread(s), median of {args.rounds} rounds"
    )
    for column in (
        "run",
        "variant",
        "accuracy/R²",
        "model.onnx KiB",
        "1-row ms",
        "x",
        f"{BATCH}-row ms",
        "x",
    ):
        table.add_column(column, justify="left" if column in ("run", "variant") else "right")
    for row in results:
        table.add_row(
            str(row["run"]), str(row["variant"]), f"{row['metric']['value']:.4f}", f"{row['model_bytes'] / 1024:.1f}",
            f"{row['single_row_ms']:.3f}", f"{row['single_row_speedup']:.2f}",
            f"{row[f'batch_{BATCH}_ms']:.3f}", f"{row[f'batch_{BATCH}_speedup']:.2f}",
        )  # fmt: skip
    Console(width=140).print(table)
    output = ROOT / "benchmarks" / "results" / "compression.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    settings = {"rounds": args.rounds, "calls": args.calls, "threads": args.threads}
    output.write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
