"""Training throughput side by side: forgeml's engine vs a hand-written PyTorch loop vs Lightning.

The document's CNN (Conv32-3x3, pool, Conv64-3x3, pool, Dense64) on 28x28 digit-like images,
batch 32, Adam (lr 1e-3), the same epochs and threads for every contender. Each run is a fresh
process (allocator settings are process-wide and one-way), the contenders are interleaved
(A B C ... A B C ...), the first epoch of each run is a warm-up and is not counted, and medians
over the repetitions are printed with each contender's ratio to the plain hand-written loop.

Contenders:
- ``hand``: a minimal loop over in-memory tensors (randperm, index, forward, loss, backward, step).
- ``hand+malloc``: the same loop with glibc told to keep freed buffers (MALLOC_MMAP_THRESHOLD_,
  MALLOC_TRIM_THRESHOLD_ in the environment).
- ``lightning``: a LightningModule and Trainer over a DataLoader (when lightning is installed).
- ``forgeml``: forgeml's training engine (``forgeml.training.loop.fit``, what ``forgeml train``
  runs) with its default settings; ``forgeml -X``: the same with one speed setting turned off,
  which shows what that setting gives.

Each figure is also shown as a fraction of the machine's measured fp32 matmul rate (see
``ceiling.py``), from the CNN's counted FLOPs per training image.
Run: .venv/bin/python benchmarks/training_speed.py [--repeats 5] [--epochs 3] [--rows 3200]
Writes benchmarks/results/training_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from digits import digit_pixels

RESULTS = Path(__file__).parent / "results"
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}
FORGEML_VARIANTS = {
    "forgeml": [],
    "forgeml -allocator": ["allocator=system"],
    "forgeml -channels_last": ["channels_last=off"],
    "forgeml -fused": ["fused_optimizer=false"],
}
OPTIONAL_VARIANTS = {  # off by default in forgeml; --options measures them too
    "forgeml +bf16": ["precision=bf16"],
    "forgeml +compile": ["compile=true"],
}


def digit_images(rows: int, seed: int = 0):  # noqa: ANN201 - tensors, imported lazily
    """28x28 digit-like images in [0, 1] ``(N, 1, 28, 28)`` and labels (see digits.py)."""
    import numpy as np
    import torch

    images, labels = digit_pixels(rows, seed)
    images = images.astype(np.float32)[:, None] / 255.0
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def document_cnn():  # noqa: ANN201
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )  # fmt: skip


def run_hand(images, labels, epochs: int, batch_size: int) -> list[float]:  # noqa: ANN001
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = document_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(images))
        for start in range(0, len(images), batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(model(images[rows]), labels[rows])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds


def run_lightning(images, labels, epochs: int, batch_size: int) -> list[float]:  # noqa: ANN001
    import lightning as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.loss = document_cnn(), nn.CrossEntropyLoss()

        def training_step(self, batch, index):  # noqa: ANN001, ANN202
            x, y = batch
            return self.loss(self.model(x), y)

        def configure_optimizers(self):  # noqa: ANN202
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class EpochClock(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, module) -> None:  # noqa: ANN001
            self._started = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
            self.seconds.append(time.perf_counter() - self._started)

    torch.manual_seed(0)
    clock = EpochClock()
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
    )  # fmt: skip
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)
    trainer.fit(Module(), loader)
    return clock.seconds


def run_forgeml(images, labels, epochs: int, batch_size: int, settings: list[str]) -> list[float]:  # noqa: ANN001
    from torch import nn

    from forgeml.config import CNNConfig, TrainConfig
    from forgeml.features import InputSpec
    from forgeml.models import build_model
    from forgeml.training.loop import TensorData, fit, seed_everything

    values: dict[str, object] = {"epochs": epochs, "batch_size": batch_size, "learning_rate": 1e-3}
    values["early_stopping"] = None
    values["threads"] = int(os.environ["BENCH_THREADS"])
    for setting in settings:
        key, _, value = setting.partition("=")
        values[key] = {"false": False, "true": True}.get(value, value)
    seed_everything(0)
    model = build_model(CNNConfig(), InputSpec(image_shape=(1, 28, 28)), 10)
    result = fit(
        model, TensorData((images,), labels), None, nn.CrossEntropyLoss(), TrainConfig(**values),
        seed=0, callbacks=[],
    )  # fmt: skip
    return [epoch.seconds for epoch in result.history]


def worker(name: str, rows: int, epochs: int, batch_size: int) -> dict[str, object]:
    import torch

    threads = int(os.environ["BENCH_THREADS"])
    torch.set_num_threads(threads)
    images, labels = digit_images(rows)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    if name in ("hand", "hand+malloc"):
        seconds = run_hand(images, labels, epochs, batch_size)
    elif name == "lightning":
        seconds = run_lightning(images, labels, epochs, batch_size)
    else:
        seconds = run_forgeml(
            images, labels, epochs, batch_size, (FORGEML_VARIANTS | OPTIONAL_VARIANTS)[name]
        )
    steady = seconds[1:]  # the first epoch warms caches, the allocator and oneDNN's kernels
    return {
        "images_per_second": rows * len(steady) / sum(steady),
        "epoch_seconds": seconds,
        "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before,
    }


def spawn(name: str, args: argparse.Namespace, threads: int) -> dict[str, object]:
    env = {**os.environ, "BENCH_THREADS": str(threads), **(MALLOC_ENV if name == "hand+malloc" else {})}
    command = [sys.executable, __file__, "--worker", name, "--rows", str(args.rows)]
    command += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="per run; the first is a warm-up")
    parser.add_argument("--rows", type=int, default=3200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = the cores available")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument("--options", action="store_true", help="also measure bf16 autocast and torch.compile")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.epochs, args.batch_size)))
        return
    from ceiling import cnn_flops_per_training_image, matmul_gflops

    threads = args.threads or len(os.sched_getaffinity(0))
    names = ["hand", "hand+malloc", *FORGEML_VARIANTS, *(OPTIONAL_VARIANTS if args.options else [])]
    try:
        import lightning  # noqa: F401

        names.insert(2, "lightning")
    except ImportError:
        print("lightning is not installed: its row is skipped (pip install -c constraints.txt -e '.[bench]')")
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            runs[name].append(spawn(name, args, threads))
        print(f"  round {repeat + 1}/{args.repeats}: " + ", ".join(
            f"{name} {runs[name][-1]['images_per_second']:.0f}" for name in names
        ), flush=True)  # fmt: skip
    gflops = matmul_gflops(threads)
    flops = cnn_flops_per_training_image()
    reference = (
        statistics.median(run["images_per_second"] for run in runs["hand"]) if "hand" in runs else None
    )
    print(f"\nThe document's CNN, 28x28 images, batch {args.batch_size}, Adam, {threads} threads; "
          f"{args.repeats} interleaved runs, medians. Machine: {gflops:.0f} GFLOP/s fp32 matmul; "
          f"the CNN costs {flops / 1e6:.2f} MFLOP per training image.")  # fmt: skip
    print(f"{'contender':24} {'images/s':>9} {'vs hand':>8} {'of peak':>8} {'page faults':>12}")
    table = {}
    for name, samples in runs.items():
        rate = statistics.median(run["images_per_second"] for run in samples)
        faults = statistics.median(run["page_faults"] for run in samples)
        ratio = rate / reference if reference else float("nan")
        peak = rate * flops / (gflops * 1e9)
        print(f"{name:24} {rate:9.0f} {ratio:7.2f}x {peak:7.1%} {faults:12,.0f}")
        table[name] = {"images_per_second": rate, "ratio_to_hand": ratio, "fraction_of_peak": peak,
                       "page_faults": faults, "runs": samples}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    summary = {"threads": threads, "matmul_gflops": gflops, "cnn_flops_per_image": flops, "contenders": table}
    (RESULTS / "training_speed.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {RESULTS / 'training_speed.json'}")


if __name__ == "__main__":
    main()
