"""The figures behind ``model.type: auto``'s time budget: each candidate's fit seconds on a 50,000-row table.

A generated table (12 numeric columns, 10% missing in two; 4 categorical columns of 5-50 values; a
binary label from both) is split as forgeml splits (70/15/15); every candidate of
:data:`forgeml.training.auto.CANDIDATES` trains with the run's defaults and an unbounded budget, and
its seconds over (training rows x input columns) is the rate :data:`~forgeml.training.auto.SECONDS_PER_CELL`
holds (per epoch for the networks). Run on 2 cores (``taskset -c 0,1``); the sum of the candidates'
seconds is what the default ``train.time_budget`` must cover.

    taskset -c 0,1 .venv/bin/python benchmarks/auto_budget.py --rows 50000
    taskset -c 0,1 .venv/bin/python benchmarks/auto_budget.py --rows 50000 --budget 0   # the default budget

With ``--budget 0`` auto runs as a user's would (the default ``train.time_budget``): the total
seconds say whether a 50,000-row table finishes in about the budget, and the leaderboard which
candidates the budget skipped or stopped.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import forgeml
from forgeml.config import config_from_dict


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 12))
    numeric[rng.random(rows) < 0.1, 0] = np.nan
    numeric[rng.random(rows) < 0.1, 5] = np.nan
    table = pd.DataFrame(numeric, columns=[f"x{index}" for index in range(12)])
    for index, size in enumerate((5, 10, 20, 50)):
        table[f"c{index}"] = rng.integers(0, size, size=rows).astype(str)
    score = (
        np.nan_to_num(numeric[:, 0])
        + numeric[:, 1] * numeric[:, 2]
        + (table["c0"] == "1")
        - numeric[:, 3] ** 2
    )
    table["label"] = np.where(score + rng.normal(size=rows) > 0, "yes", "no")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--budget", type=float, default=3600.0, help="train.time_budget; 0: the default")
    parser.add_argument("--threads", type=int, default=0, help="train.threads; 0: the default (one per core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "table.parquet"
        make_table(args.rows).to_parquet(source)
        config = config_from_dict(
            {
                "data": {"source": str(source), "target": "label"},
                "model": {"type": "auto"},
                "train": ({"time_budget": args.budget} if args.budget else {})
                | ({"threads": args.threads} if args.threads else {}),
                "output_dir": folder,
                "check": {"enabled": False},
            }
        )
        started = time.perf_counter()
        run = forgeml.train(config)
        seconds = time.perf_counter() - started
        train_rows, columns = len(run.splits.train), len(run.pipeline.input_columns)
        board = run.model.leaderboard
        for row in board:  # a network's rate is per epoch; a booster's per fit
            epochs = row["rounds"] if row["type"] == "mlp" else 1
            cells = train_rows * columns * (epochs or 1)
            row["seconds_per_cell"] = None if row["fit_seconds"] is None else row["fit_seconds"] / cells
        print(json.dumps({"rows": args.rows, "train_rows": train_rows, "columns": columns,
                          "budget": config.train.time_budget, "train_seconds": seconds, "leaderboard": board},
                         indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
