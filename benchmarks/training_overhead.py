"""Per-step overhead of checkpointing (every 100 steps + epoch ends) and of the logging callbacks.

On the document's CNN (examples/digits_cnn.yaml) fed 28x28 digit-like images (``--size 8`` for
sklearn's 8x8 digits, where a step is so short that fixed costs dominate), fixed epochs, early stopping off; per-step time is
measured in the steady state (first step end to last step end, see StepClock). Each variant
runs ``--repeats`` times, interleaved (none, checkpoints, callbacks, none, ...) so machine noise
hits all alike; the table shows the median seconds per step and the overhead versus none.
Writes benchmarks/results/training_overhead.json.

    .venv/bin/python benchmarks/training_overhead.py [--repeats 5] [--epochs 3]
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
from digits import digit_pixels
from rich.console import Console

from forgeml.config import load_config
from forgeml.data import load_data
from forgeml.features import fit_features
from forgeml.training import Callback, Session, TrainState, train_model
from forgeml.training.checkpoint import relevant_config

ROOT = Path(__file__).parents[1]


class StepClock(Callback):
    """Times from the end of the first step to the end of the last: the steady state.

    One-time setup (TensorBoard's import and graph trace, the first checkpoint folder) is not a
    per-step cost, so it stays outside the measured span; checkpoints and epoch-end work inside it count.
    """

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.steps = 0

    def on_step_end(self, state: TrainState) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.steps += 1

    @property
    def seconds_per_step(self) -> float:
        return (self.last - (self.first or self.last)) / max(1, self.steps - 1)


def _time(config, splits, pipeline, run_dir: Path | None) -> float:  # noqa: ANN001
    clock = StepClock()
    train_model(
        pipeline, splits.train, splits.validation, config.model, config.train, seed=config.seed,
        console=Console(file=io.StringIO()), callbacks=[clock],
        session=Session(run_dir=run_dir, config=relevant_config(config.model_dump(mode="json"))),
    )  # fmt: skip
    return clock.seconds_per_step


def _mnist_sized_digits(folder: Path, rows: int) -> str:
    """28x28 digit-like images (see digits.py) written as ``digits28.npz`` (uint8 pixels) in ``folder``."""
    images, labels = digit_pixels(rows)
    path = folder / "digits28.npz"
    np.savez(path, x=images.astype(np.uint8), y=labels)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--size",
        type=int,
        choices=(8, 28),
        default=28,
        help="image side: 8 (sklearn digits) or 28 (MNIST-sized)",
    )
    parser.add_argument("--rows", type=int, default=6000, help="images generated for --size 28")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="forgeml-overhead-")
    source = "sklearn:digits" if args.size == 8 else _mnist_sized_digits(Path(folder), args.rows)
    base = [
        f"data.source={source}",
        f"train.epochs={args.epochs}",
        "train.early_stopping=null",
        "train.threads=1",
        "check.enabled=false",
    ]
    variants = {
        "none": (base, False),
        "checkpoint every 100 steps": ([*base, "train.checkpoint_every=100"], True),
        "callbacks (csv + tensorboard)": ([*base, "train.csv_log=true", "train.tensorboard=true"], True),
    }
    configs = {
        name: load_config(ROOT / "examples/digits_cnn.yaml", overrides)
        for name, (overrides, _) in variants.items()
    }
    first = configs["none"]
    splits = load_data(first.data, seed=first.seed)
    pipeline = fit_features(splits.train, first.features, splits.task)
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for name, (_, writes) in variants.items():
                run_dir = Path(folder) / f"{repeat}-{len(times[name])}-{name[:4]}" if writes else None
                times[name].append(_time(configs[name], splits, pipeline, run_dir))
    none = statistics.median(times["none"])
    rows = {
        name: {
            "median_ms_per_step": statistics.median(v) * 1000,
            "overhead_pct": (statistics.median(v) / none - 1) * 100,
            "runs_ms": [t * 1000 for t in v],
        }
        for name, v in times.items()
    }
    print(f"{'variant':<32} {'ms/step':>9} {'overhead':>9}")
    for name, row in rows.items():
        print(f"{name:<32} {row['median_ms_per_step']:>9.3f} {row['overhead_pct']:>8.2f}%")
    out = ROOT / "benchmarks/results/training_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"epochs": args.epochs, "size": args.size, "repeats": args.repeats, "variants": rows}, indent=2
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
